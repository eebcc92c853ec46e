"""Fault injection: "nothing lost, nothing doubled" under steady load.

Each test runs its own Mosquitto, vigild and vigil-sim (FAULT_DEVICES devices
at FAULT_RATE Hz, QoS 1) on free loopback ports, injects one fault while the
fleet runs, and then compares the SQLite store (read directly) with the sim's
own record (--summary-json: per device final boot and last seq):

    missing    = sum(last_seq - distinct stored seqs of that boot)   → 0
    duplicates = stored rows - distinct (device, boot, seq)          → 0

and checks the completeness API agrees (expected = last_seq, lost = 0), and
that the live path (WebSocket) works again within seconds of the fault's end.

Measured figures are printed and, if VIGIL_FAULTS_REPORT is set, written
there as JSON (docs/RELIABILITY.md quotes them).

Budget: the whole file stays under ~5 minutes on 2 shared cores; the 30 s
connection cut is the longest test. Every wait is bounded.
"""
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mosquitto, Proc, TempDirTest, binary, free_port, wait_for, wait_port  # noqa: E402
from vigil_client import StalledWsClient, WsCollector, http, metric  # noqa: E402

FAULT_DEVICES = int(os.environ.get("VIGIL_FAULT_DEVICES", "200"))
FAULT_RATE = float(os.environ.get("VIGIL_FAULT_RATE", "5"))
RESULTS = {}


def report(name, **figures):
    RESULTS[name] = figures
    sys.stderr.write(f"\n[faults] {name}: {json.dumps(figures, sort_keys=True)}\n")
    path = os.environ.get("VIGIL_FAULTS_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=1, sort_keys=True)


class FaultTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.http_port = free_port()
        self.db = os.path.join(self.tmp, "vigil.db")
        self.vigild = None
        self.sim = None
        self.ws = None
        self.broker = None
        self.client_id = f"vigild-faults-{os.getpid()}-{self.http_port}"

    def tearDown(self):
        if self.ws:
            self.ws.close()
        for p in (self.sim, self.vigild):
            if p:
                p.stop()
        # Under -DVIGIL_SANITIZE=ON a sanitizer report fails the test.
        bad = []
        for name in ("vigild.log", "sim.log"):
            try:
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in text:
                    i = text.index(marker)
                    bad.append(f"{name}: {text[max(0, i - 200):i + 1500]}")
        super().tearDown()
        if bad:
            self.fail("sanitizer report:\n" + "\n".join(bad))

    # -- parts -------------------------------------------------------------
    def start_broker(self, persistence=True, port=None):
        self.broker = Mosquitto(self.tmp, port=port, persistence=persistence).start()
        self.track(self.broker)
        return self.broker

    def start_vigild(self, *extra, wait_healthy=True):
        args = [binary("vigild"), "--broker", self.broker.url, "--listen",
                f"127.0.0.1:{self.http_port}", "--db", self.db, "--client-id", self.client_id,
                *extra]
        self.vigild = Proc(args, os.path.join(self.tmp, "vigild.log"))
        wait_port(self.http_port)
        if wait_healthy:
            wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 15,
                     what="vigild healthy")
        return self.vigild

    def start_sim(self, duration, *extra, outbox=256):
        self.summary = os.path.join(self.tmp, "sim.json")
        args = [binary("vigil-sim"), "--broker", self.broker.url, "--devices", str(FAULT_DEVICES),
                "--rate", str(FAULT_RATE), "--duration", str(duration), "--qos", "1",
                "--outbox", str(outbox), "--summary-json", self.summary, *extra]
        self.sim = Proc(args, os.path.join(self.tmp, "sim.log"))
        self.sim_t0 = time.monotonic()
        # steady load: every device has reported before the fault
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= FAULT_DEVICES * 2, 20,
                 interval=0.2, what="steady load")
        return self.sim

    def sim_time(self):
        return time.monotonic() - self.sim_t0

    def sleep_until_sim(self, t):
        d = t - self.sim_time()
        if d > 0:
            time.sleep(d)

    def wait_sim(self, timeout):
        rc = self.sim.p.wait(timeout=timeout)
        if not os.path.exists(self.summary):
            self.fail(f"vigil-sim exited {rc} without a summary:\n{self.sim.output()[-2000:]}")
        with open(self.summary) as f:
            return json.load(f)

    def live_ok_within(self, timeout=15.0):
        """Seconds until a fresh sensor_data reaches a WebSocket client."""
        t0 = time.monotonic()
        ws = WsCollector(self.http_port)
        try:
            wait_for(lambda: ws.of_type("sensor_data"), timeout, what="live data")
        finally:
            ws.close()
        return round(time.monotonic() - t0, 2)

    # -- the reference comparison ------------------------------------------
    # Per (device id, boot): rows, distinct seqs, max seq (test_faults_pg.py
    # reads the same figures from PostgreSQL).
    STORE_ROWS_SQL = ("SELECT d.id, r.boot, count(*), count(DISTINCT r.seq), max(r.seq) "
                      "FROM readings r JOIN devices d ON d.key = r.device "
                      "WHERE r.seq IS NOT NULL GROUP BY r.device, d.id, r.boot")

    def store_rows(self):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(self.STORE_ROWS_SQL).fetchall()
        finally:
            con.close()

    def store_vs_sim(self, summary):
        rows = self.store_rows()
        by = {(dev, boot): (n, nd, mx) for dev, boot, n, nd, mx in rows}
        missing, dups, beyond = 0, 0, 0
        worst = []
        for dev, rec in summary["per_device"].items():
            n, nd, mx = by.get((dev, rec["boot"]), (0, 0, 0))
            m = rec["last_seq"] - nd
            missing += max(m, 0)
            beyond += max(mx - rec["last_seq"], 0)
            if m > 0:
                worst.append((m, dev))
        dups = sum(n - nd for n, nd, _ in by.values())
        worst.sort(reverse=True)
        return {"missing": missing, "duplicates": dups, "beyond_last_seq": beyond,
                "expected": sum(r["last_seq"] for r in summary["per_device"].values()),
                "worst": worst[:5]}

    def wait_complete(self, summary, timeout=30.0):
        """Polls the store until nothing is missing; returns (check, seconds)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            c = self.store_vs_sim(summary)
            if c["missing"] == 0 or time.monotonic() >= deadline:
                return c, round(time.monotonic() - t0, 2)
            time.sleep(0.5)

    def api_completeness(self, summary):
        """Sums of the DEVICE completeness figures and gaps of the API."""
        st, body = http(self.http_port, "GET", "/api/devices", timeout=30)
        self.assertEqual(st, 200)
        tot = {"expected": 0, "received": 0, "lost": 0, "pending": 0, "refilled": 0}
        for d in body["devices"]:
            c = d.get("completeness")
            if c:
                for k in tot:
                    tot[k] += c[k]
        # one device in detail: the endpoint agrees with the summary figure
        dev = sorted(summary["per_device"])[0]
        st, one = http(self.http_port, "GET", f"/api/devices/{dev}/completeness")
        self.assertEqual(st, 200)
        self.assertEqual(one["device_id"], dev)
        for k in ("expected", "received", "lost", "gaps"):
            self.assertIn(k, one)
        return tot

    def counters(self):
        names = ["vigil_gaps_detected_total", "vigil_resend_requests_total",
                 "vigil_readings_refilled_total", "vigil_readings_lost_total",
                 "vigil_store_dropped_total", "vigil_store_duplicates_total"]
        return {n.replace("vigil_", "").replace("_total", ""): int(metric(self.http_port, n))
                for n in names}

    def finish(self, name, summary, fault_end, **extra):
        c, waited = self.wait_complete(summary)
        api = self.api_completeness(summary)
        figures = dict(devices=FAULT_DEVICES, rate_hz=FAULT_RATE, sim_sent=summary["sent"],
                       sim_dropped=summary["dropped"], expected=c["expected"],
                       missing=c["missing"], duplicates=c["duplicates"],
                       complete_after_fault_s=round(time.monotonic() - fault_end, 1),
                       api=api, **self.counters(), **extra)
        report(name, **figures)
        self.assertEqual(summary["dropped"], 0, "the sim's outboxes overflowed: test too long")
        self.assertEqual(c["duplicates"], 0)
        self.assertEqual(c["missing"], 0, f"missing readings, worst devices {c['worst']}")
        self.assertEqual(c["beyond_last_seq"], 0)
        self.assertEqual(api["lost"], 0)
        self.assertEqual(api["expected"], c["expected"])
        self.assertEqual(api["received"], c["expected"])
        return figures

    # -- (1) vigild killed -------------------------------------------------
    def test_1_kill9_vigild(self):
        self.start_broker()
        self.start_vigild()
        self.start_sim(24)
        self.sleep_until_sim(7)
        self.vigild.kill9()
        self.vigild = None
        time.sleep(3)
        t_restart = time.monotonic()
        self.start_vigild()
        healthy_s = round(time.monotonic() - t_restart, 2)
        live_s = self.live_ok_within()
        summary = self.wait_sim(60)
        self.finish("kill9_vigild", summary, t_restart, healthy_after_restart_s=healthy_s,
                    live_after_restart_s=live_s)

    def test_1b_kill9_vigild_with_full_queue(self):
        """The worst kill: the database is locked for 4 s, so thousands of
        readings already acknowledged to the broker sit in vigild's store
        queue when it dies. They exist only in the devices' outboxes now."""
        self.start_broker()
        self.start_vigild()
        self.start_sim(26)
        self.sleep_until_sim(6)
        locker = sqlite3.connect(self.db, timeout=10, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            time.sleep(4)
            queued = metric(self.http_port, "vigil_store_queue_depth")
            self.vigild.kill9()
            self.vigild = None
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        time.sleep(3)
        t_restart = time.monotonic()
        self.start_vigild()
        healthy_s = round(time.monotonic() - t_restart, 2)
        live_s = self.live_ok_within()
        summary = self.wait_sim(60)
        f = self.finish("kill9_vigild_full_queue", summary, t_restart,
                        queued_at_kill=int(queued), healthy_after_restart_s=healthy_s,
                        live_after_restart_s=live_s)
        self.assertGreater(f["readings_refilled"], 0, "nothing was lost at the kill: no test")

    # -- (2) broker restarts -----------------------------------------------
    def _broker_restart(self, persistence, name):
        self.start_broker(persistence=persistence)
        self.start_vigild()
        self.start_sim(24)
        self.sleep_until_sim(7)
        port = self.broker.port
        self.broker.stop()  # SIGTERM: with persistence, Mosquitto saves its state
        time.sleep(2)
        t_up = time.monotonic()
        self.start_broker(persistence=persistence, port=port)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 20,
                 what="vigild reconnected")
        healthy_s = round(time.monotonic() - t_up, 2)
        live_s = self.live_ok_within()
        summary = self.wait_sim(60)
        self.finish(name, summary, t_up, healthy_after_broker_s=healthy_s,
                    live_after_broker_s=live_s)

    def test_2a_broker_restart_persistent(self):
        self._broker_restart(True, "broker_restart_persistence")

    def test_2b_broker_restart_no_persistence(self):
        self._broker_restart(False, "broker_restart_no_persistence")

    # -- (3) every device cut off for 30 s -----------------------------------
    def test_3_all_devices_disconnected_30s(self):
        self.start_broker()
        self.start_vigild()
        # 30 s at 5 Hz = 150 readings per device held in the outbox (256).
        self.start_sim(48, "--scenario", "disconnect:6-30")
        self.sleep_until_sim(6)
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") > 0, 5)
        self.sleep_until_sim(36)
        t_back = time.monotonic()
        live_s = self.live_ok_within(20)
        summary = self.wait_sim(60)
        self.finish("devices_cut_30s", summary, t_back, live_after_restore_s=live_s)

    # -- (4) a WebSocket client stops reading ---------------------------------
    def test_4_stalled_websocket_client(self):
        self.start_broker()
        # A small per-client queue: the stalled client is cut within seconds
        # at this load; waiting longer changes nothing (its queue is bounded
        # and it is gone), so 15 s of stall stand for the minute.
        self.start_vigild("--ws-queue", "512")
        self.start_sim(22)
        good = WsCollector(self.http_port)
        self.ws = good
        stalled = StalledWsClient(self.http_port)
        t0 = time.monotonic()
        try:
            dropped_s = None
            while time.monotonic() - t0 < 15:
                if dropped_s is None and metric(self.http_port, "vigil_ws_dropped_clients_total") >= 1:
                    dropped_s = round(time.monotonic() - t0, 2)
                time.sleep(0.5)
            n0 = len(good.of_type("sensor_data"))
            time.sleep(1)
            live_rate = len(good.of_type("sensor_data")) - n0
        finally:
            stalled.close()
        self.assertIsNotNone(dropped_s, "the stalled client was never disconnected")
        self.assertGreater(live_rate, FAULT_DEVICES * FAULT_RATE * 0.5,
                           "the reading client fell behind while another one stalled")
        summary = self.wait_sim(60)
        self.finish("stalled_websocket", summary, t0, stalled_client_dropped_after_s=dropped_s,
                    good_client_msgs_per_s=live_rate)

    # -- (5) the database becomes unwritable ---------------------------------
    def test_5_sqlite_unwritable(self):
        self.start_broker()
        # A small store queue so it overflows while the file is locked: the
        # refused readings must come back through resend requests.
        self.start_vigild("--store-queue", "4000")
        self.start_sim(30)
        self.sleep_until_sim(6)
        ws = WsCollector(self.http_port)
        self.ws = ws
        locker = sqlite3.connect(self.db, timeout=10, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        t_lock = time.monotonic()
        try:
            unhealthy = wait_for(
                lambda: (lambda r: r if r[0] == 503 and not r[1]["store_writable"] else None)(
                    http(self.http_port, "GET", "/healthz")), 10, interval=0.2,
                what="/healthz unhealthy")
            unhealthy_s = round(time.monotonic() - t_lock, 2)
            self.assertFalse(unhealthy[1]["ok"])
            n0 = len(ws.of_type("sensor_data"))
            time.sleep(8)
            live_during = len(ws.of_type("sensor_data")) - n0
            dropped = metric(self.http_port, "vigil_store_dropped_total")
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        t_unlock = time.monotonic()
        self.assertGreater(live_during, FAULT_DEVICES * FAULT_RATE * 4,
                           "the live path stalled while the store was locked")
        self.assertGreater(dropped, 0, "the store queue never overflowed: test too gentle")
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 20, interval=0.2,
                 what="healthy again")
        healthy_s = round(time.monotonic() - t_unlock, 2)
        summary = self.wait_sim(60)
        self.finish("sqlite_unwritable", summary, t_unlock, lock_s=round(t_unlock - t_lock, 1),
                    unhealthy_after_s=unhealthy_s, healthy_after_unlock_s=healthy_s,
                    live_msgs_while_locked=live_during, store_refused=int(dropped))

    # -- restart keeps losses and rebuilds the record ------------------------
    def test_6_restart_rebuilds_completeness(self):
        """A clean restart rebuilds the per-boot ranges from the store (gaps
        and islands) and keeps persisted lost ranges."""
        self.start_broker()
        self.start_vigild()
        from harness import mosquitto_pub
        for s in list(range(1, 11)) + list(range(15, 21)):
            mosquitto_pub(self.broker.port, "sensors/esp32/GAPPY_1/data",
                          {"heart_rate": 70, "seq": s, "boot": 3})
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= 16, 10)
        st, c = http(self.http_port, "GET", "/api/devices/GAPPY_1/completeness")
        self.assertEqual((c["expected"], c["received"]), (20, 16))
        self.assertEqual(c["gaps"], [{"boot": 3, "from_seq": 11, "to_seq": 14, "state": "pending"}])
        # Play the device: answer the resend request "missing" → lost at once.
        import paho.mqtt.client as mqtt
        got = []
        cl = mqtt.Client(client_id=f"fake-dev-{self.http_port}", clean_session=True)
        cl.on_message = lambda c, u, m: got.append(json.loads(m.payload))
        cl.connect("127.0.0.1", self.broker.port, 30)
        cl.subscribe("commands/esp32/GAPPY_1/control", 1)
        cl.loop_start()
        try:
            cmd = wait_for(lambda: got, 20, what="resend command")[0]
            self.assertEqual((cmd["cmd"], cmd["boot"], cmd["from"], cmd["to"]),
                             ("resend", 3, 11, 14))
            cl.publish("sensors/esp32/GAPPY_1/ack", json.dumps(
                {"cmd_id": cmd["cmd_id"], "cmd": "resend", "ok": True, "sent": 0, "missing": 4}),
                qos=1).wait_for_publish()
            wait_for(lambda: http(self.http_port, "GET", "/api/devices/GAPPY_1/completeness")[1]
                     ["lost"] == 4, 10, what="gap marked lost")
        finally:
            cl.loop_stop()
            cl.disconnect()
        self.assertEqual(metric(self.http_port, "vigil_readings_lost_total"), 4)
        self.assertGreaterEqual(metric(self.http_port, "vigil_resend_requests_total"), 1)
        time.sleep(0.5)  # let the lost range reach the database
        self.vigild.stop()
        self.start_vigild()
        st, c = http(self.http_port, "GET", "/api/devices/GAPPY_1/completeness")
        self.assertEqual(st, 200)
        self.assertEqual((c["expected"], c["received"], c["lost"]), (20, 16, 4))
        self.assertEqual(c["gaps"], [{"boot": 3, "from_seq": 11, "to_seq": 14, "state": "lost"}])
        st, c = http(self.http_port, "GET", "/api/devices/GAPPY_1/completeness?from=15&to=20")
        self.assertEqual((c["expected"], c["received"], c["gaps"]), (6, 6, []))
        st, d = http(self.http_port, "GET", "/api/devices/GAPPY_1")
        self.assertEqual(d["completeness"]["lost"], 4)
        self.assertAlmostEqual(d["completeness"]["ratio"], 0.8)


if __name__ == "__main__":
    unittest.main(verbosity=2)
