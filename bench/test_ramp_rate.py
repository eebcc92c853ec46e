#!/usr/bin/python3
"""Self-test of the bench's ramp rules (bench/ramp_rate.py): the pass rule,
the coarse sustainable rate, the bisection driven by a pass/fail oracle, and
bench/report.py rendering results from before the bisection (as the
committed bench/results/latest.json) and after it. Run by CTest (bench_ramp_rate)."""
import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ramp_rate  # noqa: E402


def step(hz, offered, delivered, p99=10.0):
    return {"rate_hz": hz, "offered_msgs_per_s": offered, "delivered_msgs_per_s_per_client": delivered,
            "p99_ms": p99}


def edge_oracle(edge_hz, calls):
    """A subject that sustains every rate up to edge_hz and no higher."""
    def probe(hz):
        calls.append(hz)
        return hz <= edge_hz
    return probe


class StepRule(unittest.TestCase):
    def test_95_percent_and_p99(self):
        self.assertTrue(ramp_rate.step_ok(step(10, 10000, 9500)))
        self.assertFalse(ramp_rate.step_ok(step(10, 10000, 9499)))
        self.assertFalse(ramp_rate.step_ok(step(10, 10000, 10000, p99=1000.1)))
        self.assertTrue(ramp_rate.step_ok(step(10, 10000, 10000, p99=1000)))
        self.assertFalse(ramp_rate.step_ok(step(10, 10000, 10000, p99=-1)))  # nothing delivered

    def test_sustainable_stops_at_first_failure(self):
        steps = [step(1, 999, 999), step(2, 1998, 1990), step(5, 4990, 3000), step(7.5, 7400, 7400)]
        self.assertEqual(ramp_rate.sustainable(steps), 1998)
        self.assertEqual(ramp_rate.sustainable(steps[2:]), 0.0)
        self.assertEqual(ramp_rate.bracket(steps), (2, 5))
        self.assertEqual(ramp_rate.bracket(steps[2:]), (0.0, 5))
        self.assertEqual(ramp_rate.bracket(steps[:2]), (2, None))


class Bisection(unittest.TestCase):
    def test_three_probes_between_10_and_15_hz(self):
        calls = []
        probes, lo, hi = ramp_rate.bisect(10, 15, 1000, edge_oracle(13.2, calls), 3)
        self.assertEqual(probes, [(12.5, True), (13.75, False), (13.125, True)])
        self.assertEqual(calls, [12.5, 13.75, 13.125])
        self.assertEqual((lo, hi), (13.125, 13.75))  # 625 readings/s wide, the edge inside

    def test_edge_always_inside_and_resolution_met(self):
        # Every edge of the 10-15 Hz bracket at 1,000 devices, with probes to spare: the
        # bracket left holds the edge and is at most max(1,000, 5 % of lo) readings/s wide.
        for i in range(100):
            edge = 10 + 5 * i / 100
            probes, lo, hi = ramp_rate.bisect(10, 15, 1000, edge_oracle(edge, []), 10)
            self.assertTrue(lo <= edge < hi, (edge, lo, hi))
            self.assertLessEqual((hi - lo) * 1000, max(1000, 0.05 * lo * 1000))
            self.assertLessEqual(len(probes), 3)

    def test_relative_tolerance_and_probe_cap(self):
        # 20-30 Hz: 10,000 wide; three halvings leave 1,250, under 5 % of the 28,750 passed.
        probes, lo, hi = ramp_rate.bisect(20, 30, 1000, edge_oracle(29.9, []), 10)
        self.assertEqual([hz for hz, _ in probes], [25, 27.5, 28.75])
        self.assertEqual((lo, hi), (28.75, 30))
        # The same bracket failing low: 1,250 is more than 5 % of 20,000, so a fourth probe.
        probes, lo, hi = ramp_rate.bisect(20, 30, 1000, edge_oracle(20.1, []), 10)
        self.assertEqual([hz for hz, _ in probes], [25, 22.5, 21.25, 20.625])
        self.assertEqual((lo, hi), (20, 20.625))
        probes, lo, hi = ramp_rate.bisect(20, 30, 1000, edge_oracle(29.9, []), 2)
        self.assertEqual([hz for hz, _ in probes], [25, 27.5])
        self.assertEqual((lo, hi), (27.5, 30))

    def test_nothing_to_refine(self):
        calls = []
        self.assertEqual(ramp_rate.bisect(1, 2, 1000, edge_oracle(1.5, calls), 3), ([], 1, 2))  # 1,000 wide
        self.assertEqual(ramp_rate.bisect(0, 1, 1000, edge_oracle(0.5, calls), 3), ([], 0, 1))
        self.assertEqual(ramp_rate.bisect(40, None, 1000, edge_oracle(50, calls), 3), ([], 40, None))
        self.assertEqual(ramp_rate.bisect(10, 15, 1000, edge_oracle(12, calls), 0), ([], 10, 15))
        self.assertEqual(calls, [])

    def test_first_step_failed(self):
        # --quick's ramp starts at 20 Hz x 100 devices: a subject failing it is bisected from 0.
        # 2,000 readings/s wide: one probe leaves 1,000.
        self.assertEqual(ramp_rate.bisect(0, 20, 100, edge_oracle(7, []), 2), ([(10, False)], 0, 10))
        self.assertEqual(ramp_rate.bisect(0, 20, 100, edge_oracle(13, []), 2), ([(10, True)], 10, 20))

    def test_refined_rate_and_first_failure(self):
        steps = [step(5, 4990, 4990), step(10, 9990, 9980), step(15, 14950, 9000)]
        probes = [step(12.5, 12480, 12400), step(13.75, 13700, 11000), None, step(13.125, 13100, 13050)]
        self.assertEqual(ramp_rate.refined(steps, probes), 13100)
        self.assertEqual(ramp_rate.refined(steps, []), 9990)
        self.assertEqual(ramp_rate.refined(steps, [None, step(12.5, 12480, 100)]), 9990)
        self.assertEqual(ramp_rate.first_failure(steps, probes)["rate_hz"], 13.75)
        self.assertEqual(ramp_rate.first_failure(steps)["rate_hz"], 15)
        self.assertIsNone(ramp_rate.first_failure(steps[:2], probes[:1]))


VERSIONS = {k: "?" for k in ("date", "git", "cpu", "kernel", "mosquitto", "vigild", "python", "paho_mqtt",
                               "websockets", "node", "node_red")}
VERSIONS.update(cores=2, mem_mb=1024)


def ramp_row(subject, clients, top_passed_hz, failed_hz):
    """A coarse ramp row of 1,000 devices in results from before the bisection."""
    steps = [step(hz, hz * 999.0, hz * 998.0) for hz in (1, 2, 5, 7.5, 10, 15, 20, 30) if hz <= top_passed_hz]
    steps.append(step(failed_hz, failed_hz * 999.0, failed_hz * 600.0, 1500))
    return {"label": f"ramp_{subject}_{clients}c", "subject": subject, "clients": clients, "devices": 1000,
            "steps": steps, "sustainable_msgs_per_s": ramp_rate.sustainable(steps)}


class Report(unittest.TestCase):
    """report.py renders results from before the bisection (the coarse ramp
    alone) and after it."""

    def render(self, results):
        with tempfile.TemporaryDirectory(prefix="vigil-ramp-test-") as d:
            rp, doc = os.path.join(d, "r.json"), os.path.join(d, "BM.md")
            with open(rp, "w") as fh:
                json.dump(results, fh)
            r = subprocess.run([sys.executable, os.path.join(HERE, "report.py"), rp, doc],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(doc) as fh:
                return fh.read()

    def cells(self, md, name):
        row = next(l for l in md.splitlines() if l.startswith(f"| {name} ("))
        return [c.strip() for c in row.split("|")]

    def test_committed_results_render(self):
        with open(os.path.join(HERE, "results", "latest.json")) as fh:
            md = self.render(json.load(fh))
        self.assertIn("### Saturation ramp", md)
        self.cells(md, "vigild, 1 WS client")

    def test_old_and_refined_results(self):
        old = {"quick": False, "versions": VERSIONS, "ramp": [
            ramp_row("sub", 1, 20, 30), ramp_row("relay", 100, 10, 15),
            ramp_row("vigild", 100, 10, 15), ramp_row("vigild", 1, 10, 15)]}
        md = self.render(old)
        c = self.cells(md, "vigild, 1 WS client")
        self.assertEqual(c[2:4], ["9,990", "5,000"])  # the coarse rate, known to one step
        self.assertEqual(c[9], "—")
        self.assertIn("one coarse ramp", md)
        self.assertIn("9,990 ÷ 19,980 = 0.50× (bounds 0.33–0.75×)", md)

        new = copy.deepcopy(old)
        r1 = new["ramp"][3]
        r1["sustainable_coarse_msgs_per_s"] = r1["sustainable_msgs_per_s"]
        r1["refine"] = {"coarse_passed_hz": 10, "coarse_failed_hz": 15, "passed_hz": 13.125, "failed_hz": 13.75,
                        "resolution_msgs_per_s": 625, "max_probes": 3, "probes": [
                            {"rate_hz": 12.5, "passed": True, "step": step(12.5, 12480, 12470)},
                            {"rate_hz": 13.75, "passed": False, "step": step(13.75, 13720, 12000, 1500)},
                            {"rate_hz": 13.125, "passed": True, "step": step(13.125, 13110, 13100)}]}
        r1["sustainable_msgs_per_s"] = ramp_rate.refined(r1["steps"], [p["step"] for p in r1["refine"]["probes"]])
        md = self.render(new)
        c = self.cells(md, "vigild, 1 WS client")
        self.assertEqual(c[2:4], ["13,110", "625"])
        self.assertTrue(c[8].startswith("13,720 → 12,000"), c[8])  # the lowest failed rate
        self.assertEqual(c[9], "12,500 ✓, 13,750 ✗, 13,125 ✓")
        self.assertEqual(self.cells(md, "vigild")[2:4], ["9,990", "5,000"])  # a row left coarse
        self.assertIn("refined by bisection", md)
        self.assertIn("13,110 ÷ 19,980 = 0.66× (bounds 0.44–0.69×)", md)


if __name__ == "__main__":
    unittest.main(verbosity=2)
