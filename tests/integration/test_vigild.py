"""vigild end to end: real Mosquitto, real SQLite, real WebSocket clients."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Mosquitto, Proc, TempDirTest, binary, free_port, mosquitto_pub,  # noqa: E402
                     wait_for, wait_port)
from vigil_client import StalledWsClient, WsCollector, http, metric  # noqa: E402

DESIGN_PAYLOAD = {"sensor_type": "MAX30614", "device_id": "ESP32_001", "object_temp": 36.6,
                  "ambient_temp": 24.1, "heart_rate": 72, "spo2": 98, "timestamp": 123456}


class VigildTest(TempDirTest):
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
                f"vigild-test-{os.getpid()}-{self.http_port}", *extra]
        self.vigild = Proc(args, os.path.join(self.tmp, "vigild.log"))
        wait_port(self.http_port)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 10,
                 what="vigild healthy")
        return self.vigild

    def stop_vigild(self):
        rc = self.vigild.stop()
        self.vigild = None
        return rc

    def pub(self, dev, payload, kind="data", **kw):
        mosquitto_pub(self.broker.port, f"sensors/esp32/{dev}/{kind}", payload, **kw)

    def readings(self, dev, **q):
        qs = "&".join(f"{k}={v}" for k, v in {"from": 0, **q}.items())
        return http(self.http_port, "GET", f"/api/devices/{dev}/readings?{qs}")

    def wait_stored(self, n, timeout=10):
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= n, timeout,
                 what=f"{n} readings stored")

    # -- the design's payload, end to end --------------------------------
    def test_design_payload_reaches_websocket_and_history(self):
        self.start_vigild()
        ws = WsCollector(self.http_port)
        try:
            wait_for(lambda: ws.of_type("snapshot"), 5, what="snapshot")
            self.pub("ESP32_001", DESIGN_PAYLOAD)
            msg = wait_for(lambda: ws.of_type("sensor_data"), 5, what="sensor_data")[0]
        finally:
            ws.close()
        data = msg["data"]
        for k, v in DESIGN_PAYLOAD.items():
            self.assertEqual(data[k], v, k)
        self.assertEqual(data["device_id"], "ESP32_001")
        self.assertEqual(data["topic"], "sensors/esp32/ESP32_001/data")
        self.assertRegex(data["received_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

        self.wait_stored(1)
        status, body = self.readings("ESP32_001")
        self.assertEqual(status, 200)
        self.assertFalse(body["downsampled"])
        self.assertEqual(body["total"], 1)
        r = body["readings"][0]
        self.assertEqual((r["object_temp"], r["ambient_temp"], r["heart_rate"], r["spo2"]),
                         (36.6, 24.1, 72, 98))
        status, dev = http(self.http_port, "GET", "/api/devices/ESP32_001")
        self.assertEqual(status, 200)
        self.assertEqual(dev["last"]["heart_rate"], 72)

    # -- hostile input -----------------------------------------------------
    def test_each_rejection_is_counted_and_valid_traffic_continues(self):
        self.start_vigild("--max-payload", "512")
        ws = WsCollector(self.http_port)
        bad = [
            ("malformed_json", "ESP32_002", '{"heart_rate": 7'),
            ("not_object", "ESP32_002", "[1,2,3]"),
            ("wrong_type", "ESP32_002", '{"heart_rate":"fast"}'),
            ("out_of_range", "ESP32_002", '{"spo2":101}'),
            ("out_of_range", "ESP32_002", '{"object_temp":380}'),
            ("id_mismatch", "ESP32_002", '{"device_id":"ESP32_999","heart_rate":70}'),
            ("duplicate_field", "ESP32_002", '{"heart_rate":70,"heart_rate":71}'),
            ("oversize", "ESP32_002", json.dumps({"heart_rate": 70, "pad": "x" * 600})),
            ("empty", "ESP32_002", "{}"),
        ]
        try:
            for i, (reason, dev, payload) in enumerate(bad):
                self.pub(dev, payload)
                self.pub("ESP32_003", {"heart_rate": 60 + i, "seq": i, "boot": 1})
            # bad topics: an id with a bad character, an id of 65 characters
            mosquitto_pub(self.broker.port, "sensors/esp32/bad id/data", '{"heart_rate":70}')
            mosquitto_pub(self.broker.port, "sensors/esp32/" + "A" * 65 + "/data", '{"heart_rate":70}')
            self.pub("ESP32_003", {"heart_rate": 99, "seq": 100, "boot": 1})
            wait_for(lambda: len(ws.of_type("sensor_data")) >= len(bad) + 1, 10,
                     what="valid readings")
            time.sleep(0.3)
        finally:
            ws.close()
        want = {}
        for reason, _, _ in bad:
            want[reason] = want.get(reason, 0) + 1
        want["bad_topic"] = 2
        for reason, n in want.items():
            self.assertEqual(metric(self.http_port, "vigil_rejected_total", {"reason": reason}), n,
                             reason)
        live = ws.of_type("sensor_data")
        self.assertEqual({m["data"]["device_id"] for m in live}, {"ESP32_003"},
                         "nothing rejected may be broadcast")
        self.assertEqual([m["data"]["seq"] for m in live], list(range(len(bad))) + [100])
        self.wait_stored(len(bad) + 1)
        status, _ = self.readings("ESP32_002")
        self.assertEqual(status, 404, "a device that only sent rejected data is unknown")
        self.assertTrue(self.vigild.alive())

    # -- persistence across a vigild restart -------------------------------
    def test_readings_published_while_down_arrive_after_restart(self):
        self.start_vigild()
        self.pub("ESP32_010", {"heart_rate": 70, "seq": 0, "boot": 5})
        self.wait_stored(1)
        self.assertEqual(self.stop_vigild(), 0, "clean exit on SIGTERM")
        for seq in range(1, 21):
            self.pub("ESP32_010", {"heart_rate": 70 + seq, "seq": seq, "boot": 5})
        self.start_vigild()
        wait_for(lambda: self.readings("ESP32_010")[1].get("total") == 21, 10,
                 what="readings queued by the broker")
        seqs = sorted(r["seq"] for r in self.readings("ESP32_010")[1]["readings"])
        self.assertEqual(seqs, list(range(21)))

    # -- idempotent store --------------------------------------------------
    def test_same_boot_and_seq_stored_once(self):
        self.start_vigild()
        for _ in range(3):
            self.pub("ESP32_020", {"heart_rate": 70, "seq": 7, "boot": 1})
        self.pub("ESP32_020", {"heart_rate": 71, "seq": 7, "boot": 2})  # another boot
        wait_for(lambda: metric(self.http_port, "vigil_stored_total")
                 + metric(self.http_port, "vigil_store_duplicates_total") >= 4, 10,
                 what="all four processed")
        self.assertEqual(metric(self.http_port, "vigil_store_duplicates_total"), 2)
        status, body = self.readings("ESP32_020")
        self.assertEqual(sorted((r["boot"], r["seq"]) for r in body["readings"]), [(1, 7), (2, 7)])

    # -- a stalled WebSocket client ----------------------------------------
    def test_stalled_client_does_not_stall_others(self):
        # Enough data to fill the kernel's socket buffers (several MB on
        # loopback) and then the stalled client's queue of 2048 messages.
        self.start_vigild("--ws-queue", "2048")
        stalled = StalledWsClient(self.http_port)
        good = WsCollector(self.http_port)
        n = 45000
        # Paced at ~3,000 msg/s: a busy ward, not a burst no client could
        # follow; the stalled client must be cut off, the other must not.
        # 15 s: a lagging client is resynced, and only one whose socket took
        # nothing for FANOUT_STALL_MS (2 s) is closed — ~6 s in on this host.
        pub = subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.broker.port),
                                "-t", "sensors/esp32/ESP32_030/data", "-q", "1", "-l"],
                               stdin=subprocess.PIPE)
        for start in range(0, n, 300):
            chunk = "".join(json.dumps({"heart_rate": 60 + i % 40, "seq": i, "boot": 1,
                                        "sensor_type": "S" * 32, "fw": "F" * 32}) + "\n"
                            for i in range(start, min(n, start + 300)))
            pub.stdin.write(chunk.encode())
            pub.stdin.flush()
            time.sleep(0.1)
        pub.stdin.close()
        pub.wait(timeout=30)
        try:
            wait_for(lambda: len(good.of_type("sensor_data")) >= n, 30, what="good client's stream")
        except TimeoutError:
            sys.stderr.write(f"good client got {len(good.of_type('sensor_data'))}, error {good.error}, "
                             f"accepted {metric(self.http_port, 'vigil_readings_accepted_total')}\n")
            raise
        finally:
            good.close()
        self.assertEqual([m["data"]["seq"] for m in good.of_type("sensor_data")], list(range(n)))
        wait_for(lambda: metric(self.http_port, "vigil_ws_dropped_clients_total") >= 1, 10,
                 what="stalled client dropped")
        wait_for(stalled.is_closed_by_peer, 10, what="stalled client's socket closed")
        stalled.close()

    # -- history downsampling ----------------------------------------------
    def test_downsampling_bounds_and_extremes(self):
        self.start_vigild()
        t0 = 1_790_000_000_000
        n = 500
        lines = "\n".join(json.dumps({"heart_rate": 60 + (i * 37) % 50, "spo2": 90 + i % 10,
                                      "seq": i, "boot": 1, "ts": t0 + i * 1000})
                          for i in range(n))
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.broker.port), "-t",
                        "sensors/esp32/ESP32_040/data", "-q", "1", "-l"],
                       input=lines.encode(), check=True, timeout=60)
        self.wait_stored(n, 20)
        hr = [60 + (i * 37) % 50 for i in range(n)]
        status, body = self.readings("ESP32_040", **{"from": t0, "to": t0 + (n - 1) * 1000,
                                                      "max_points": 40})
        self.assertEqual(status, 200)
        self.assertTrue(body["downsampled"])
        self.assertEqual(body["total"], n)
        self.assertLessEqual(len(body["buckets"]), 40)
        self.assertEqual(sum(b["n"] for b in body["buckets"]), n)
        self.assertEqual(min(b["heart_rate"]["min"] for b in body["buckets"]), min(hr))
        self.assertEqual(max(b["heart_rate"]["max"] for b in body["buckets"]), max(hr))
        for b in body["buckets"]:
            idx = [i for i in range(n) if b["t"] <= t0 + i * 1000 < b["t"] + body["bucket_ms"]]
            self.assertEqual(b["n"], len(idx))
            self.assertEqual(b["heart_rate"]["min"], min(hr[i] for i in idx))
            self.assertEqual(b["heart_rate"]["max"], max(hr[i] for i in idx))
        status, raw = self.readings("ESP32_040", **{"from": t0, "to": t0 + 9000, "max_points": 40})
        self.assertFalse(raw["downsampled"])
        self.assertEqual([r["seq"] for r in raw["readings"]], list(range(10)))

    # -- REST errors, commands and config ----------------------------------
    def test_rest_errors_commands_and_config(self):
        self.start_vigild()
        self.pub("ESP32_050", {"heart_rate": 70, "seq": 1, "boot": 1})
        wait_for(lambda: http(self.http_port, "GET", "/api/devices/ESP32_050")[0] == 200, 5,
                 what="device known")
        p = self.http_port
        self.assertEqual(http(p, "GET", "/api/devices/bad%20id")[0], 400)
        self.assertEqual(http(p, "GET", "/api/devices/NOPE")[0], 404)
        self.assertEqual(http(p, "GET", "/api/nothing")[0], 404)
        self.assertEqual(http(p, "DELETE", "/api/devices")[0], 405)
        self.assertEqual(http(p, "GET", "/api/devices/ESP32_050/commands")[0], 405)
        self.assertEqual(http(p, "GET", "/api/devices/ESP32_050/readings?max_points=0")[0], 400)
        self.assertEqual(http(p, "GET", "/api/devices/ESP32_050/readings?from=abc")[0], 400)
        self.assertEqual(http(p, "GET", "/api/devices/ESP32_050/readings?from=10&to=5")[0], 400)
        self.assertEqual(http(p, "POST", "/api/devices/ESP32_050/commands", {"cmd": "explode"})[0], 400)
        self.assertEqual(http(p, "POST", "/api/devices/ESP32_050/commands", b"{not json")[0], 400)
        self.assertEqual(http(p, "POST", "/api/devices/ESP32_050/commands",
                              {"cmd": "set_interval", "interval_ms": 5})[0], 400)
        self.assertEqual(http(p, "POST", "/api/devices/ESP32_050/commands",
                              {"cmd": "ping", "x": "y" * 5000})[0], 413)
        self.assertEqual(http(p, "POST", "/api/devices/NOPE/commands", {"cmd": "ping"})[0], 404)

        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.broker.port),
                                "-t", "commands/esp32/ESP32_050/control", "-C", "1", "-W", "10"],
                               stdout=subprocess.PIPE)
        time.sleep(0.3)
        status, body = http(p, "POST", "/api/devices/ESP32_050/commands",
                            {"cmd": "resend", "boot": 1, "from": 3, "to": 9})
        self.assertEqual(status, 202)
        sent_id = body["cmd_id"]
        out, _ = sub.communicate(timeout=15)
        sent = json.loads(out)
        self.assertEqual(sent, {"cmd_id": body["cmd_id"], "cmd": "resend", "boot": 1, "from": 3,
                                "to": 9})

        status, body = http(p, "PUT", "/api/devices/ESP32_050/config", {"interval_ms": 500})
        self.assertEqual(status, 202)
        out = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.broker.port),
                              "-t", "sensors/esp32/ESP32_050/config", "-C", "1", "-W", "5"],
                             stdout=subprocess.PIPE, timeout=10).stdout
        self.assertEqual(json.loads(out), {"cfg_id": body["cfg_id"], "interval_ms": 500},
                         "config is retained")

        # the device's answer reaches WebSocket clients
        ws = WsCollector(self.http_port)
        try:
            # (an ack must answer a command vigild sent: test_hardening_core.py)
            self.pub("ESP32_050", {"cmd_id": sent_id, "cmd": "resend", "ok": True}, kind="ack")
            res = wait_for(lambda: ws.of_type("command_result"), 5, what="command_result")[0]
        finally:
            ws.close()
        self.assertEqual(res["data"]["cmd_id"], sent_id)
        self.assertTrue(res["data"]["ok"])
        self.assertEqual(res["data"]["device_id"], "ESP32_050")

    def test_status_snapshot_and_filter(self):
        self.start_vigild()
        self.pub("ESP32_060", {"status": "online", "fw": "1.2.3", "interval_ms": 1000},
                 kind="status", retain=True)
        self.pub("ESP32_061", "offline", kind="status", retain=True)
        wait_for(lambda: len(http(self.http_port, "GET", "/api/devices")[1]["devices"]) == 2, 5,
                 what="two devices")
        ws = WsCollector(self.http_port, subscribe={"type": "subscribe", "devices": ["ESP32_061"]})
        try:
            snaps = wait_for(lambda: len(ws.of_type("snapshot")) >= 2 and ws.of_type("snapshot"), 5,
                             what="filtered snapshot")
            self.assertEqual([d["device_id"] for d in snaps[-1]["devices"]], ["ESP32_061"])
            self.assertEqual(snaps[-1]["devices"][0]["status"], "offline")
            self.pub("ESP32_060", {"heart_rate": 80}, qos=1)
            self.pub("ESP32_061", {"heart_rate": 81}, qos=1)
            wait_for(lambda: ws.of_type("sensor_data"), 5, what="filtered reading")
            time.sleep(0.3)
            self.assertEqual([m["data"]["device_id"] for m in ws.of_type("sensor_data")],
                             ["ESP32_061"])
        finally:
            ws.close()
        status, dev = http(self.http_port, "GET", "/api/devices/ESP32_060")
        self.assertEqual((dev["status"], dev["fw"], dev["interval_ms"]), ("online", "1.2.3", 1000))

    def test_unreachable_broker_then_recovery(self):
        port = free_port()
        args = [binary("vigild"), "--broker", f"mqtt://127.0.0.1:{port}", "--listen",
                f"127.0.0.1:{self.http_port}", "--db", self.db]
        self.vigild = Proc(args, os.path.join(self.tmp, "vigild.log"))
        wait_port(self.http_port)
        status, body = http(self.http_port, "GET", "/healthz")
        self.assertEqual((status, body["broker_connected"]), (503, False))
        late = Mosquitto(self.tmp, port=port).start()
        self.track(late)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 40,
                 what="reconnect with backoff")
        self.assertTrue(self.vigild.alive())
        out = self.vigild.output()
        self.assertEqual(out.count("unreachable"), 1, "one line per outage, not per retry")
        self.assertIn("after an outage", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
