"""The flash outbox end to end: real Mosquitto, vigild and vigil-sim
(harness.py, vigil_client.http for every REST call).

One fleet run, three kinds of device, all going offline 2 s in:
- 40 devices offline for 3,600 readings (100 Hz, so 36 s), then back: every
  reading stored once (SQLite), 0 lost, completeness 100 %;
- 10 devices that also reboot after 1,800 of them (reboot_offline): the
  earlier boot's readings are stored under their own boot id, the later
  boot's under its own, nothing lost;
- 1 device whose power is cut at its 300th flash program/erase (in the
  outage): after recovery each reading the sim took is stored exactly once
  or in a lost range with a reason, none silently missing; the seqs marked
  lost beyond what the boot took are at most a page (the announced bound).
The interval is raised to 1 s by a retained config while they are away, so
after reconnect the drain (--replay-rate 200) is what loads vigild.
Bounded: the whole test well under 120 s.
"""
import json
import os
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mosquitto, Proc, TempDirTest, binary, free_port, wait_for, wait_port  # noqa: E402
from vigil_client import http  # noqa: E402

PLAIN, REBOOTING, CUT = 40, 10, 1
DEVICES = PLAIN + REBOOTING + CUT
CUT_DEV = DEVICES  # device number of the power-cut one
OFFLINE = 3600     # readings each device takes while away
RATE = 100
OFF_AT = 2         # s into the run
PAGE = 8           # outbox page buffer (readings): the bound of a power cut's loss


class OutboxOfflineTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = self.track(Mosquitto(self.tmp).start())
        self.http_port = free_port()
        self.db = os.path.join(self.tmp, "vigil.db")
        args = [binary("vigild"), "--broker", self.broker.url, "--listen",
                f"127.0.0.1:{self.http_port}", "--db", self.db,
                "--client-id", f"vigild-outbox-{os.getpid()}-{self.http_port}"]
        self.vigild = self.track(Proc(args, os.path.join(self.tmp, "vigild.log")))
        wait_port(self.http_port)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 10, what="vigild healthy")

    def devices(self):
        st, body = http(self.http_port, "GET", "/api/devices", timeout=30)
        self.assertEqual(st, 200)
        return {d["device_id"] if "device_id" in d else d["id"]: d for d in body["devices"]}

    def store_rows(self):
        """{(device, boot): (rows, distinct seqs, min, max)} straight from SQLite."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute(
                "SELECT d.id, r.boot, count(*), count(DISTINCT r.seq), min(r.seq), max(r.seq) "
                "FROM readings r JOIN devices d ON d.key = r.device GROUP BY d.id, r.boot").fetchall()
            lost = con.execute(
                "SELECT d.id, l.boot, l.from_seq, l.to_seq, l.reason FROM lost_ranges l "
                "JOIN devices d ON d.key = l.device").fetchall()
            seqs = {}
            for dev, boot, seq in con.execute(
                    "SELECT d.id, r.boot, r.seq FROM readings r JOIN devices d ON d.key = r.device "
                    "WHERE d.id = ?", (f"ESP32_{CUT_DEV:03d}",)):
                seqs.setdefault(boot, []).append(seq)
        finally:
            con.close()
        return {(r[0], r[1]): r[2:] for r in rows}, lost, seqs

    def test_offline_reboot_and_power_cut(self):
        t_start = time.monotonic()
        summary_path = os.path.join(self.tmp, "sim.json")
        flash_dir = os.path.join(self.tmp, "flash")
        os.mkdir(flash_dir)
        sim = self.track(Proc([
            binary("vigil-sim"), "--broker", self.broker.url, "--devices", str(DEVICES),
            "--rate", str(RATE), "--duration", "100", "--seed", "14", "--connect-rate", "200",
            "--replay-rate", "200", "--flash-dir", flash_dir,
            "--power-cut-at", f"300@{CUT_DEV}",
            "--scenario", f"offline={OFFLINE}@1-{PLAIN}:{OFF_AT}",
            "--scenario", f"reboot_offline={OFFLINE},{OFFLINE // 2}@{PLAIN + 1}-{PLAIN + REBOOTING}:{OFF_AT}",
            "--scenario", f"offline={OFFLINE}@{CUT_DEV}:{OFF_AT}",
            "--summary-json", summary_path], os.path.join(self.tmp, "sim.log")))
        ids = [f"ESP32_{n:03d}" for n in range(1, DEVICES + 1)]
        # Everybody seen live before the outage.
        wait_for(lambda: len(self.devices()) == DEVICES, 15, interval=0.5, what="all devices known")
        # While they are away: a retained config slows them to 1 Hz on return.
        time.sleep(OFF_AT + 0.5)
        for i in ids:
            st, _ = http(self.http_port, "PUT", f"/api/devices/{i}/config", {"interval_ms": 1000})
            self.assertEqual(st, 202, i)

        def drained():
            ds = self.devices()
            for i in ids:
                c = (ds.get(i) or {}).get("completeness") or {}
                if c.get("expected", 0) < OFFLINE or c.get("pending", 1) != 0:
                    return False
            return True
        # 36 s away, then the drain at 200/s per device.
        wait_for(drained, 95 - (time.monotonic() - t_start), interval=1.0, what="backlogs drained")
        sim.stop(signal.SIGTERM, timeout=20)
        with open(summary_path) as f:
            summary = json.load(f)
        per = summary["per_device"]
        self.assertEqual(len(per), DEVICES)

        # The truth: each (device, boot) the sim ran and the last seq it took.
        truth = {}
        for dev, d in per.items():
            for boot, last in d["ended_boots"]:
                truth[(dev, boot)] = last
            truth[(dev, d["boot"])] = d["last_seq"]

        def stored_matches():
            rows, _, _ = self.store_rows()
            return all(rows.get(k, (0,))[0] >= v for k, v in truth.items()
                       if k[0] != f"ESP32_{CUT_DEV:03d}")
        wait_for(stored_matches, 15, interval=0.5, what="last live readings stored")
        rows, lost, cut_seqs = self.store_rows()

        cut_id = f"ESP32_{CUT_DEV:03d}"
        for dev, d in per.items():
            if dev == cut_id:
                continue
            n = int(dev.split("_")[1])
            want_boots = 2 if PLAIN < n <= PLAIN + REBOOTING else 1
            self.assertEqual(len(d["ended_boots"]) + 1, want_boots, dev)
            self.assertGreaterEqual(d["readings"] + sum(b[1] for b in d["ended_boots"]), OFFLINE, dev)
            for (tdev, boot), last in truth.items():
                if tdev != dev:
                    continue
                # Every reading of every boot stored exactly once, under its boot.
                self.assertEqual(rows.get((dev, boot)), (last, last, 1, last), (dev, boot))
            self.assertEqual({k for k in rows if k[0] == dev}, {k for k in truth if k[0] == dev})
        self.assertEqual([x for x in lost if x[0] != cut_id], [], "lost ranges of the clean devices")

        # The power-cut device: an earlier boot ended by the cut.
        d = per[cut_id]
        self.assertEqual(d["power_cuts"], 1, d)
        self.assertEqual(len(d["ended_boots"]), 1, d)
        cut_boot, cut_last = d["ended_boots"][0]
        lost_seqs = {}
        for dev, boot, lo, hi, reason in lost:
            if dev == cut_id:
                self.assertEqual(reason, "missing")
                lost_seqs.setdefault(boot, set()).update(range(lo, hi + 1))
        for (dev, boot), last in truth.items():
            if dev != cut_id:
                continue
            got = cut_seqs.get(boot, [])
            self.assertEqual(len(got), len(set(got)), f"boot {boot}: stored twice")
            stored, gone = set(got), lost_seqs.get(boot, set())
            self.assertEqual(stored & gone, set(), f"boot {boot}: stored and lost")
            silent = set(range(1, last + 1)) - stored - gone
            self.assertEqual(silent, set(), f"boot {boot}: silently missing")
            self.assertLessEqual(len({s for s in gone if s > last}), PAGE, "phantoms beyond a page")
            self.assertEqual({s for s in stored if s > last}, set())
        self.assertGreaterEqual(len(lost_seqs.get(cut_boot, ())), 1, "the cut lost its page")
        self.assertLessEqual(len(lost_seqs.get(cut_boot, ())), 2 * PAGE)
        self.assertGreater(cut_last, 0)

        # The completeness view: 100 % for every clean device, no pending.
        ds = self.devices()
        for i in ids:
            c = ds[i]["completeness"]
            self.assertEqual(c["pending"], 0, i)
            if i != cut_id:
                self.assertEqual(c["lost"], 0, i)
                self.assertEqual(c["expected"], c["received"], i)
                self.assertAlmostEqual(c["ratio"], 1.0, msg=i)
        st, one = http(self.http_port, "GET", f"/api/devices/{cut_id}/completeness")
        self.assertEqual(st, 200)
        self.assertEqual(one["lost"], len(lost_seqs.get(cut_boot, ())))
        self.assertTrue(all(g["state"] == "lost" for g in one["gaps"]), one["gaps"])

        self.assertTrue(self.vigild.alive(), self.vigild.output()[-2000:])
        self.assertEqual(self.vigild.stop(), 0, self.vigild.output()[-2000:])
        self.assertNotIn("Sanitizer", self.vigild.output())
        elapsed = time.monotonic() - t_start
        sys.stderr.write(f"outbox offline: {DEVICES} devices x {OFFLINE} offline readings, "
                         f"{sum(r[0] for r in rows.values())} stored, cut device lost "
                         f"{len(lost_seqs.get(cut_boot, ()))}, {elapsed:.1f} s\n")
        self.assertLess(elapsed, 115)


if __name__ == "__main__":
    unittest.main(verbosity=2)
