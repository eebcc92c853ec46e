"""vigild against hostile input (issue 10, item 8, the core's part): the
device cap, completeness poisoning, ack matching, the database's file mode.
Real Mosquitto, real vigild, real SQLite."""
import json
import os
import subprocess
import stat
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Mosquitto, Proc, TempDirTest, binary, free_port, mosquitto_pub,  # noqa: E402
                     wait_for, wait_port)
from vigil_client import WsCollector, http, metric  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402


class Device:
    """One paho client publishing fast (QoS 1, each publish confirmed)."""

    def __init__(self, port, client_id):
        self.c = mqtt.Client(client_id=client_id, clean_session=True)
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def pub(self, dev, payload, kind="data"):
        body = payload if isinstance(payload, str) else json.dumps(payload)
        self.c.publish(f"sensors/esp32/{dev}/{kind}", body, qos=1).wait_for_publish(5)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class HardeningCoreTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = Mosquitto(self.tmp).start()
        self.track(self.broker)
        self.http_port = free_port()
        self.db = os.path.join(self.tmp, "vigil.db")
        self.vigild = None

    def tearDown(self):
        if self.vigild:
            self.vigild.stop()
        super().tearDown()

    def start_vigild(self, *extra):
        args = [binary("vigild"), "--broker", self.broker.url, "--listen",
                f"127.0.0.1:{self.http_port}", "--db", self.db, "--client-id",
                f"vigild-hc-{os.getpid()}-{self.http_port}", *extra]
        self.vigild = Proc(args, os.path.join(self.tmp, "vigild.log"))
        wait_port(self.http_port)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 10,
                 what="vigild healthy")
        wait_for(lambda: metric(self.http_port, "vigil_mqtt_connected") == 1, 10,
                 what="vigild connected")
        return self.vigild

    def stop_vigild(self):
        rc = self.vigild.stop()
        self.vigild = None
        return rc

    def pub(self, dev, payload, kind="data", **kw):
        mosquitto_pub(self.broker.port, f"sensors/esp32/{dev}/{kind}", payload, **kw)

    def rejected(self, reason):
        return metric(self.http_port, "vigil_rejected_total", {"reason": reason}) or 0

    def accepted(self):
        return metric(self.http_port, "vigil_readings_accepted_total")

    # -- devices are bounded: --max-devices and the rate of new ids --------
    def test_new_devices_are_capped_and_rate_limited_known_ones_never(self):
        self.start_vigild("--max-devices", "6", "--new-devices-burst", "3",
                          "--new-devices-per-s", "1")
        d = Device(self.broker.port, f"flood-{self.http_port}")
        try:
            t0 = time.monotonic()
            for i in range(12):
                d.pub(f"NEW_{i:02d}", {"heart_rate": 70, "seq": 1, "boot": 1})
            d.pub("NEW_00", {"status": "online"}, kind="status")
            elapsed = time.monotonic() - t0
            wait_for(lambda: self.rejected("new_device_rate") + self.accepted() >= 12, 10,
                     what="all readings judged")
            admitted = 3 + int(elapsed) + 1  # the burst, plus at most one per second
            self.assertGreaterEqual(self.accepted(), 3)
            self.assertLessEqual(self.accepted(), admitted)
            self.assertEqual(self.rejected("new_device_rate") + self.accepted(), 12)
            # known devices are never affected
            before = self.accepted()
            for seq in range(2, 12):
                d.pub("NEW_00", {"heart_rate": 71, "seq": seq, "boot": 1})
            wait_for(lambda: self.accepted() >= before + 10, 10, what="known device accepted")
            wait_for(lambda: metric(self.http_port, "vigil_statuses_accepted_total") == 1,
                     5, what="status of a known device accepted")
            # the cap: wait for tokens, fill up to 6, then device_cap
            time.sleep(3.2)
            for i in range(12, 20):
                d.pub(f"NEW_{i:02d}", {"heart_rate": 70, "seq": 1, "boot": 1})
            wait_for(lambda: self.rejected("device_cap") >= 1, 10, what="device_cap")
            time.sleep(0.3)
            status, body = http(self.http_port, "GET", "/api/devices")
            self.assertEqual(len(body["devices"]), 6)
        finally:
            d.close()
        self.assertEqual(self.stop_vigild(), 0)
        # After a restart the stored devices are known: all accepted, past
        # a smaller cap too; new ones are refused.
        self.start_vigild("--max-devices", "2")
        d = Device(self.broker.port, f"flood2-{self.http_port}")
        try:
            status, body = http(self.http_port, "GET", "/api/devices")
            known = [x["device_id"] for x in body["devices"]]
            self.assertEqual(len(known), 6)
            for i, dev in enumerate(known):
                d.pub(dev, {"heart_rate": 72, "seq": 50 + i, "boot": 1})
            d.pub("BRAND_NEW", {"heart_rate": 72, "seq": 1, "boot": 1})
            wait_for(lambda: self.accepted() >= 6 and self.rejected("device_cap") >= 1, 10,
                     what="known accepted, new refused")
            time.sleep(0.3)
            self.assertEqual(self.accepted(), 6)
            self.assertEqual(http(self.http_port, "GET", "/api/devices/BRAND_NEW")[0], 404)
        finally:
            d.close()
        self.assertIn("device_cap", self.vigild.output())

    # -- one reading cannot poison completeness -----------------------------
    def test_huge_seq_does_not_poison_completeness(self):
        self.start_vigild()
        d = Device(self.broker.port, f"poison-{self.http_port}")
        try:
            for seq in range(1, 6):
                d.pub("POISON_1", {"heart_rate": 70, "seq": seq, "boot": 1})
            d.pub("POISON_1", {"heart_rate": 70, "seq": 2 ** 53, "boot": 1})
            d.pub("POISON_1", {"heart_rate": 70, "seq": 6, "boot": 1})
            wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= 7, 10, what="stored")
        finally:
            d.close()
        status, c = http(self.http_port, "GET", "/api/devices/POISON_1/completeness")
        self.assertEqual(status, 200)
        self.assertEqual((c["expected"], c["received"], c["lost"]), (6, 6, 0), c)
        self.assertEqual(metric(self.http_port, "vigil_readings_lost_total"), 0)
        # the reading itself is valid data: stored
        status, body = http(self.http_port, "GET", "/api/devices/POISON_1/readings?from=0")
        self.assertEqual(body["total"], 7)

    # -- REST integers: checked before any arithmetic ------------------------
    def test_rest_integers_never_overflow(self):
        """to=INT64_MIN made `to - 3600 s` overflow (undefined behaviour: the
        sanitizer build died). Every extreme or malformed integer is a 400,
        and vigild stays up."""
        self.start_vigild()
        d = Device(self.broker.port, f"ints-{self.http_port}")
        try:
            d.pub("INTS_1", {"heart_rate": 70, "seq": 1, "boot": 1})
            wait_for(lambda: http(self.http_port, "GET", "/api/devices/INTS_1")[0] == 200, 10,
                     what="device known")
        finally:
            d.close()
        for q in ("to=-9223372036854775808", "to=9223372036854775807", "from=-9223372036854775808",
                  "to=99999999999999999999", "to=%2B5", "to=%205", "to=5x", "max_points=-9223372036854775808"):
            status, body = http(self.http_port, "GET", f"/api/devices/INTS_1/readings?{q}")
            self.assertEqual(status, 400, q)
        for q in ("from=-1", "to=9223372036854775807", "boot=x"):
            status, _ = http(self.http_port, "GET", f"/api/devices/INTS_1/completeness?{q}")
            self.assertEqual(status, 400, q)
        self.assertEqual(http(self.http_port, "GET", "/api/devices/INTS_1/readings?to=1800000000000")[0], 200)
        self.assertEqual(http(self.http_port, "GET", "/healthz")[0], 200)
        # Config for an id no device ever used is refused like a command: it
        # would leave a retained message on the broker for every invented id.
        status, body = http(self.http_port, "PUT", "/api/devices/NEVER_SEEN/config", {"interval_ms": 500})
        self.assertEqual(status, 404, body)
        out = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.broker.port),
                              "-t", "sensors/esp32/NEVER_SEEN/config", "-C", "1", "-W", "2"],
                             stdout=subprocess.PIPE, timeout=10).stdout
        self.assertEqual(out, b"", "no retained config for an unknown device")
        self.assertEqual(http(self.http_port, "PUT", "/api/devices/INTS_1/config", {"interval_ms": 500})[0], 202)

    # -- acks answer commands vigild sent, to that device -------------------
    def test_acks_are_matched_to_commands(self):
        self.start_vigild()
        d = Device(self.broker.port, f"acker-{self.http_port}")
        ws = None
        try:
            for dev in ("ACK_1", "ACK_2"):
                d.pub(dev, {"heart_rate": 70, "seq": 1, "boot": 1})
            wait_for(lambda: http(self.http_port, "GET", "/api/devices/ACK_2")[0] == 200, 5,
                     what="devices known")
            status, body = http(self.http_port, "POST", "/api/devices/ACK_1/commands", {"cmd": "ping"})
            self.assertEqual(status, 202)
            cid = body["cmd_id"]
            ws = WsCollector(self.http_port)
            wait_for(lambda: ws.of_type("snapshot"), 5, what="snapshot")
            time.sleep(0.3)  # the command is recorded when ingest publishes it
            bad = [
                ("unknown_command", "ACK_1", {"cmd_id": "c-forged", "cmd": "ping", "ok": True}),
                ("unknown_command", "ACK_2", {"cmd_id": cid, "cmd": "ping", "ok": True}),
                ("duplicate_field", "ACK_1", '{"cmd_id":"%s","ok":true,"ok":false}' % cid),
                ("malformed_json", "ACK_1", '{"cmd_id":'),
                ("bad_ack", "ACK_1", {"cmd": "ping"}),
                ("out_of_range", "ACK_1", {"cmd_id": cid, "ok": True, "sent": -1}),
            ]
            for _, dev, payload in bad:
                d.pub(dev, payload, kind="ack")
            d.pub("ACK_1", {"cmd_id": cid, "cmd": "ping", "ok": True}, kind="ack")
            res = wait_for(lambda: ws.of_type("command_result"), 5, what="command_result")
            d.pub("ACK_1", {"cmd_id": cid, "cmd": "ping", "ok": True}, kind="ack")  # answered
            d.pub("ACK_1", {"cfg_id": "cfg-1", "ok": True, "interval_ms": 1000}, kind="ack")
            wait_for(lambda: len(ws.of_type("command_result")) >= 2, 5, what="config ack")
            time.sleep(0.5)
            results = ws.of_type("command_result")
        finally:
            d.close()
            if ws:
                ws.close()
        want = {}
        for reason, _, _ in bad:
            want[reason] = want.get(reason, 0) + 1
        want["unknown_command"] += 1  # the second ack of the same command
        for reason, n in want.items():
            self.assertEqual(self.rejected(reason), n, reason)
        self.assertEqual(self.rejected("wrong_type"), 0)
        self.assertEqual(len(results), 2, results)
        self.assertEqual(res[0]["data"]["cmd_id"], cid)
        self.assertEqual(results[1]["data"]["cfg_id"], "cfg-1")

    # -- the database holds health data: 0600, with its WAL ----------------
    def test_database_and_wal_are_private(self):
        old = os.umask(0o022)  # the usual umask, which left the file 0644
        try:
            self.start_vigild()
        finally:
            os.umask(old)
        self.pub("ESP32_001", {"heart_rate": 70, "seq": 1, "boot": 1})
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= 1, 10, what="stored")
        for suffix in ("", "-wal", "-shm"):
            p = self.db + suffix
            self.assertTrue(os.path.exists(p), p)
            mode = stat.S_IMODE(os.stat(p).st_mode)
            self.assertEqual(mode & 0o077, 0, f"{p} is {oct(mode)}")
        self.assertEqual(self.stop_vigild(), 0)

    # -- shutting down while REST calls still reach the ingest ports -------
    def test_shutdown_under_rest_load(self):
        """SIGTERM while clients keep posting commands and alarm settings: the
        web thread runs until web_stop, so its calls into the ingest (the
        publisher and alarm ports) must stay safe after the ingest thread has
        stopped — once a use after free (an `eventfd write: Bad file
        descriptor` in the log, ASan's report in the sanitizer run)."""
        import threading
        for rnd in range(3):
            self.start_vigild()
            dev = f"SD_{rnd}"
            self.pub(dev, json.dumps({"device_id": dev, "heart_rate": 70, "spo2": 97,
                                      "timestamp": 1, "seq": 1, "boot": 1}))
            wait_for(lambda: self.accepted() >= 1, 10, what="a reading accepted")
            stop = threading.Event()
            answered = [0]

            def hammer():
                # One kept-alive connection per thread: thousands of calls a
                # second, so some land in the instant between the two stops.
                import http.client
                import vigil_client
                hdrs = {"Content-Type": "application/json", **vigil_client.auth_headers()}
                deadline = time.monotonic() + 20
                conn = None
                while not stop.is_set() and time.monotonic() < deadline:
                    try:
                        if conn is None:
                            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
                        conn.request("POST", f"/api/devices/{dev}/commands", b'{"cmd":"ping"}', hdrs)
                        conn.getresponse().read()
                        conn.request("PUT", f"/api/devices/{dev}/alarm-settings", b"{}", hdrs)
                        conn.getresponse().read()
                        answered[0] += 1
                    except Exception:  # noqa: BLE001 - refused once vigild is gone
                        conn = None
                        time.sleep(0.001)
            threads = [threading.Thread(target=hammer) for _ in range(4)]
            for t in threads:
                t.start()
            wait_for(lambda: answered[0] >= 50, 10, what="REST load running")
            rc = self.stop_vigild()
            stop.set()
            for t in threads:
                t.join(timeout=5)
            out = open(os.path.join(self.tmp, "vigild.log"), errors="replace").read()
            self.assertEqual(rc, 0, out[-3000:])
            self.assertNotIn("eventfd write", out)
            self.assertNotIn("AddressSanitizer", out)
            self.assertIn("stopped cleanly", out.split("SIGTERM received")[-1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
