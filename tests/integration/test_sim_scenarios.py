"""vigil-sim's alarm scenarios against a real Mosquitto: the published
readings follow each scenario's documented shape (sim --help). No vigild.

One sim run of ~34 s at 2 Hz, one device per scenario, all starting at 2 s:
- desat_recover: SpO2 < 85 % for 15-25 s, reached within 8 s of the start,
  then >= 92 % within 10 s of the last low reading;
- spo2_flap: while active, every SpO2 in 88-92 % and the 90 % limit crossed
  (89 <-> 91 side) at least 4 times;
- finger_off: every reading has hr_valid/spo2_valid false and no
  heart_rate/spo2, temperature still valid;
- battery_low: below 15 % within 20 s of the start, floor 10 %, and back to
  100 % (swapped) once the window ends;
- bradycardia: pulse < 50 within 25 s and mostly stays < 50;
- motion: roughly 30 % of readings with the optical channel invalid;
- a device with no scenario: SpO2 >= 90 and battery >= 15 throughout.
Times come from the readings' own "timestamp" (device uptime), so the check
does not depend on delivery latency.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import test_sim_fleet  # noqa: E402  (its paho collector)

START = 2.0  # s, every scenario window starts here
RATE = 2     # Hz
DURATION = 34


class DataCollector(test_sim_fleet.Collector):
    """Every data reading per device, in arrival order."""

    def __init__(self, port):
        self.readings = {}
        super().__init__(port, ["sensors/esp32/+/data"], "it-scenarios")

    def _on_message(self, c, u, msg):
        body = json.loads(msg.payload)
        with self.lock:
            self.readings.setdefault(msg.topic.split("/")[2], []).append(body)

    def series(self, dev):
        """Readings of dev by seq, duplicates (QoS 1) removed."""
        with self.lock:
            by_seq = {r["seq"]: r for r in self.readings.get(dev, [])}
        return [by_seq[q] for q in sorted(by_seq)]


def t_of(r, t0):
    """Seconds since the run started, from the device's uptime."""
    return r["timestamp"] / 1000.0 - t0


class SimScenariosTest(harness.TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = self.track(harness.Mosquitto(self.tmp).start())
        self.sim_bin = harness.binary("vigil-sim")

    def test_help_documents_every_scenario(self):
        out = harness.subprocess.run([self.sim_bin, "--help"], capture_output=True,
                                     text=True, timeout=10).stdout
        for name in ("desaturation", "desat_recover", "spo2_flap", "tachycardia",
                     "bradycardia", "fever", "hypothermia", "deterioration", "finger_off",
                     "motion", "battery_low", "disconnect"):
            self.assertRegex(out, rf"\n  {name} +\S", name)

    def test_scenario_shapes(self):
        prefix = "SCN_"
        scen = {1: "desat_recover", 2: "spo2_flap", 3: "finger_off", 5: "bradycardia",
                6: "motion"}
        args = [self.sim_bin, "--broker", self.broker.url, "--devices", "7",
                "--rate", str(RATE), "--duration", str(DURATION), "--prefix", prefix,
                "--seed", "11", "--summary-json", os.path.join(self.tmp, "s.json")]
        for num, name in scen.items():
            args += ["--scenario", f"{name}@{num}:{START:g}"]
        # battery_low ends at 24 s: the battery is swapped then.
        args += ["--scenario", f"battery_low@4:{START:g}-22"]
        col = DataCollector(self.broker.port)
        sim = self.track(harness.Proc(args, os.path.join(self.tmp, "sim.log")))
        sim.p.wait(timeout=DURATION + 20)
        self.assertEqual(sim.p.returncode, 0, sim.output())
        with open(os.path.join(self.tmp, "s.json")) as f:
            summary = json.load(f)
        harness.wait_for(lambda: all(len(col.series(d)) >= v["last_seq"]
                                     for d, v in summary["per_device"].items()),
                         timeout=10, what="every reading delivered")
        col.close()
        # Devices boot when they connect, a few ms into the run; uptime 0 is
        # within a fraction of a second of run time 0 (checked below).
        t0 = 0.0
        dev = {n: prefix + f"{n:03d}" for n in range(1, 8)}
        for d in dev.values():
            s = col.series(d)
            self.assertGreaterEqual(len(s), (DURATION - 2) * RATE, d)
            self.assertLess(s[0]["timestamp"], 1500, d)

        # desat_recover
        s = col.series(dev[1])
        low = [t_of(r, t0) for r in s if r.get("spo2_valid") and r["spo2"] < 85]
        self.assertTrue(low, [r.get("spo2") for r in s])
        self.assertLess(low[0] - START, 8.0, low)
        self.assertGreaterEqual(low[-1] - low[0], 15.0, low)
        self.assertLessEqual(low[-1] - low[0], 25.0, low)
        # one episode: no high reading between the low ones
        inside = [r for r in s if low[0] <= t_of(r, t0) <= low[-1] and r.get("spo2_valid")]
        self.assertTrue(all(r["spo2"] < 90 for r in inside), [r["spo2"] for r in inside])
        rec = [t_of(r, t0) for r in s if t_of(r, t0) > low[-1] and r.get("spo2_valid")
               and r["spo2"] >= 92]
        self.assertTrue(rec, "never back >= 92 %")
        self.assertLess(rec[0] - low[-1], 10.0)
        before = [r["spo2"] for r in s if t_of(r, t0) < START and r.get("spo2_valid")]
        self.assertTrue(all(v >= 92 for v in before), before)

        # spo2_flap: after a 3 s settle, all within 88-92 and crossing 90
        s = [r for r in col.series(dev[2]) if t_of(r, t0) >= START + 3 and r.get("spo2_valid")]
        vals = [r["spo2"] for r in s]
        self.assertGreaterEqual(len(vals), 40, vals)
        self.assertTrue(all(88 <= v <= 92 for v in vals), vals)
        side = [v < 90 for v in vals if v != 90]
        crossings = sum(1 for a, b in zip(side, side[1:]) if a != b)
        self.assertGreaterEqual(crossings, 4, vals)
        self.assertIn(89, vals)
        self.assertIn(91, vals)

        # finger_off: from the first reading of the window, optical invalid
        s = [r for r in col.series(dev[3]) if t_of(r, t0) >= START + 0.6]
        self.assertTrue(s)
        for r in s:
            self.assertIs(r["hr_valid"], False, r)
            self.assertIs(r["spo2_valid"], False, r)
            self.assertNotIn("heart_rate", r)
            self.assertNotIn("spo2", r)
            self.assertIs(r["temp_valid"], True, r)

        # battery_low: < 15 within 20 s, floor 10, swapped after 24 s
        s = col.series(dev[4])
        batt = [(t_of(r, t0), r["battery"]) for r in s]
        under = [t for t, b in batt if b < 15]
        self.assertTrue(under, batt)
        self.assertLess(under[0] - START, 20.0, batt)
        self.assertGreaterEqual(min(b for _, b in batt), 10, batt)
        self.assertTrue(all(b == 100 for t, b in batt if t > START + 22 + 0.6), batt)
        self.assertTrue(all(b < 15 for t, b in batt if START + 20 < t < START + 21.5), batt)

        # bradycardia
        s = [r for r in col.series(dev[5]) if r.get("hr_valid")]
        slow = [t_of(r, t0) for r in s if r["heart_rate"] < 50]
        self.assertTrue(slow, [r["heart_rate"] for r in s])
        self.assertLess(slow[0] - START, 25.0)
        # the target is 38-46 /min with beat-to-beat noise (sd 2.5): mostly < 50
        later = [r["heart_rate"] for r in s if t_of(r, t0) > slow[0] + 5]
        self.assertTrue(later)
        self.assertGreaterEqual(sum(1 for v in later if v < 50), 0.8 * len(later), later)
        self.assertTrue(all(v < 56 for v in later), later)

        # motion: ~30 % invalid (binomial over ~64 readings: 10-50 % is wide)
        s = [r for r in col.series(dev[6]) if t_of(r, t0) >= START + 0.6]
        bad = sum(1 for r in s if not r["spo2_valid"])
        self.assertGreater(bad / len(s), 0.10, bad)
        self.assertLess(bad / len(s), 0.50, bad)
        self.assertTrue(all(("spo2" in r) == r["spo2_valid"] for r in s))

        # the control device: nothing alarming
        s = col.series(dev[7])
        self.assertTrue(all(r["spo2"] >= 90 for r in s if r.get("spo2_valid")))
        self.assertTrue(all(r["battery"] >= 15 for r in s))


if __name__ == "__main__":
    harness.main()
