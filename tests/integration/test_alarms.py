"""Alarms end to end: real Mosquitto, real vigild, real SQLite. Readings are
published directly with paho (as a device would). A desaturation raises a
WebSocket "alarm" within its onset delay + 1 s; finger off raises no_signal
and no spo2_*; a last will raises offline; alarms/esp32/{id} (retained)
matches the REST view; a latched alarm survives kill -9 with its id and is
not raised again; acknowledge and silence need a clinician and are audited.
Every DEVICE object and each scored READING carry the server's partial NEWS2
(SpO2 and pulse only), matching the last valid reading per the NEWS2 bands."""
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Mosquitto, Proc, TempDirTest, add_user, binary, free_port,  # noqa: E402
                     wait_for, wait_port)
from vigil_client import WsCollector, http, http_full, metric  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

USERS = {"clara": ("clinician", "clinician-pass-2"), "vera": ("viewer", "viewer-pass-1")}


class Device:
    """A paho client publishing readings of one device, with its own clock."""

    def __init__(self, port, dev):
        self.dev = dev
        self.seq = 0
        self.c = mqtt.Client(client_id=f"dev-{dev}-{os.getpid()}", clean_session=True)
        self.c.will_set(f"sensors/esp32/{dev}/status", json.dumps({"status": "offline"}), qos=1, retain=True)
        self.c.connect("127.0.0.1", port, 5)
        self.c.loop_start()
        self.status("online")

    def status(self, s):
        self.c.publish(f"sensors/esp32/{self.dev}/status",
                       json.dumps({"status": s, "interval_ms": 500}), qos=1, retain=True).wait_for_publish(5)

    def reading(self, spo2, hr=72, valid=True):
        self.seq += 1
        body = {"ts": int(time.time() * 1000), "seq": self.seq, "boot": 1, "heart_rate": hr, "spo2": spo2,
                "hr_valid": valid, "spo2_valid": valid}
        self.c.publish(f"sensors/esp32/{self.dev}/data", json.dumps(body), qos=1).wait_for_publish(5)

    def kill(self):
        """Drops the TCP connection without DISCONNECT: the broker sends the will."""
        self.c.loop_stop()
        self.c.socket().close()


class Session:
    def __init__(self, port, user, password):
        st, body, hdrs = http_full(port, "POST", "/api/session", {"username": user, "password": password},
                                   token=None)
        assert st == 200, body
        self.port = port
        self.cookie = hdrs.get("Set-Cookie", "").split(";", 1)[0]
        self.csrf = body["csrf"]

    def post(self, path, body=None):
        return http(self.port, "POST", path, body if body is not None else b"", token=None,
                    headers={"Cookie": self.cookie, "X-CSRF-Token": self.csrf})


class AlarmTopic:
    """Subscribes to alarms/esp32/+ and keeps the latest payload per device."""

    def __init__(self, port):
        self.latest = {}
        self.lock = threading.Lock()
        self.c = mqtt.Client(client_id=f"pager-{os.getpid()}-{time.monotonic_ns()}", clean_session=True)
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port, 5)
        self.c.subscribe("alarms/esp32/+", qos=1)
        self.c.loop_start()

    def _on(self, c, u, m):
        with self.lock:
            self.latest[m.topic.rsplit("/", 1)[1]] = (json.loads(m.payload), m.retain)

    def get(self, dev):
        with self.lock:
            return self.latest.get(dev)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def news2_spo2(v):
    """NEWS2 (RCP 2017) SpO2 scale 1 sub-score, written out independently of vigild."""
    return 3 if v <= 91 else 2 if v <= 93 else 1 if v <= 95 else 0


def news2_pulse(v):
    return 3 if v <= 40 else 1 if v <= 50 else 0 if v <= 90 else 1 if v <= 110 else 2 if v <= 130 else 3


class AlarmsTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = self.track(Mosquitto(self.tmp).start())
        self.http_port = free_port()
        self.db = os.path.join(self.tmp, "vigil.db")
        for u, (role, pw) in USERS.items():
            add_user(self.db, u, role, pw)
        self.devices = []

    def tearDown(self):
        for d in self.devices:
            try:
                d.c.loop_stop()
                d.c.disconnect()
            except Exception:  # noqa: BLE001
                pass
        super().tearDown()

    def start_vigild(self):
        self.vigild = self.track(Proc(
            [binary("vigild"), "--broker", self.broker.url, "--listen", f"127.0.0.1:{self.http_port}",
             "--db", self.db, "--client-id", f"vigild-alarms-{os.getpid()}-{self.http_port}"],
            os.path.join(self.tmp, "vigild.log")))
        wait_port(self.http_port)
        wait_for(lambda: metric(self.http_port, "vigil_mqtt_connected") == 1, 10, what="vigild connected")
        return self.vigild

    def device(self, dev):
        d = Device(self.broker.port, dev)
        self.devices.append(d)
        return d

    def alarms(self, dev=None):
        st, body = http(self.http_port, "GET", "/api/alarms")
        self.assertEqual(st, 200, body)
        return [a for a in body["alarms"] if dev is None or a["device_id"] == dev]

    def ws_alarms(self, ws, dev, cond=None):
        return [m["data"] for m in ws.of_type("alarm")
                if m["data"]["device_id"] == dev and (cond is None or m["data"]["condition"] == cond)]

    def desaturate(self, d, ws, spo2=80):
        """Low readings every 0.5 s until the WebSocket shows spo2_desat; returns
        (seconds from the first low reading, the alarm)."""
        t0 = time.monotonic()
        deadline = t0 + 15
        while time.monotonic() < deadline:
            d.reading(spo2)
            got = self.ws_alarms(ws, d.dev, "spo2_desat")
            if got:
                return time.monotonic() - t0, got[0]
            time.sleep(0.5)
        self.fail("no spo2_desat alarm")

    def test_desaturation_topic_ack_and_silence(self):
        self.start_vigild()
        ws = WsCollector(self.http_port, subscribe={"type": "subscribe", "devices": ["someone-else"]})
        topic = AlarmTopic(self.broker.port)
        d = self.device("PAT_1")
        for _ in range(3):
            d.reading(97)
            time.sleep(0.3)
        dt, a = self.desaturate(d, ws)
        # spo2_desat: 5 s onset delay; the message arrives within onset + 1 s,
        # even though this client subscribed to another device only.
        self.assertLessEqual(dt, 6.0, dt)
        self.assertGreaterEqual(dt, 4.0, dt)
        self.assertEqual(a["priority"], "high")
        self.assertEqual(a["kind"], "physiological")
        self.assertEqual(a["state"], "active")
        self.assertFalse(a["retrospective"])
        self.assertEqual(a["value"], 80)
        self.assertEqual(a["limit"], 85)
        aid = a["alarm_id"]
        # REST: the open alarm; the DEVICE object carries it too.
        wait_for(lambda: any(x["alarm_id"] == aid for x in self.alarms("PAT_1")), 5, what="REST alarm")
        st, dev = http(self.http_port, "GET", "/api/devices/PAT_1")
        self.assertIn(aid, [x["alarm_id"] for x in dev["alarms"]])
        # The retained topic holds the same open alarms as the REST view.
        for _ in range(12):  # spo2_low too (10 s)
            d.reading(80)
            time.sleep(0.5)

        def same():
            t = topic.get("PAT_1")
            rest = sorted((x["alarm_id"], x["state"]) for x in self.alarms("PAT_1"))
            return t and sorted((x["alarm_id"], x["state"]) for x in t[0]["alarms"]) == rest and \
                len(rest) >= 2
        wait_for(same, 5, what="alarms topic == REST")
        conds = {x["condition"] for x in self.alarms("PAT_1")}
        self.assertIn("spo2_low", conds)
        # A late subscriber (a pager bridge starting now) gets it retained.
        late = AlarmTopic(self.broker.port)
        wait_for(lambda: late.get("PAT_1"), 5, what="retained alarm topic")
        self.assertTrue(late.get("PAT_1")[1])
        late.close()

        # A viewer may not acknowledge: 403, audited as forbidden.
        vera = Session(self.http_port, "vera", USERS["vera"][1])
        st, body = vera.post(f"/api/alarms/{aid}/ack")
        self.assertEqual(st, 403, body)
        clara = Session(self.http_port, "clara", USERS["clara"][1])
        st, body = clara.post("/api/alarms/999999/ack")
        self.assertEqual(st, 404, body)
        st, body = clara.post(f"/api/alarms/{aid}/ack")
        self.assertEqual(st, 202, body)
        wait_for(lambda: any(x["alarm_id"] == aid and x["state"] == "acked" for x in self.alarms("PAT_1")),
                 5, what="acked")
        acked = [x for x in self.alarms("PAT_1") if x["alarm_id"] == aid][0]
        self.assertEqual(acked["acked_by"], "clara")
        self.assertIsNotNone(acked["acked_at"])
        self.assertTrue(any(m["state"] == "acked" and m["acked_by"] == "clara"
                            for m in self.ws_alarms(ws, "PAT_1", "spo2_desat")))
        # Audio pause: bounded, audited.
        low = [x for x in self.alarms("PAT_1") if x["condition"] == "spo2_low"][0]
        self.assertEqual(clara.post(f"/api/alarms/{low['alarm_id']}/silence", {"seconds": 601})[0], 400)
        st, body = clara.post(f"/api/alarms/{low['alarm_id']}/silence", {"seconds": 120})
        self.assertEqual(st, 202, body)
        wait_for(lambda: [x for x in self.alarms("PAT_1") if x["alarm_id"] == low["alarm_id"]][0]
                 ["silenced_until"], 5, what="silenced")

        def audit(action, outcome, user):
            st, body = http(self.http_port, "GET", "/api/audit?limit=1000")
            return [e for e in body["entries"] if e["action"] == action and e["outcome"] == outcome
                    and e["user"] == user]
        wait_for(lambda: audit("alarm_ack", "ok", "clara"), 5, what="audit alarm_ack")
        wait_for(lambda: audit("alarm_ack", "forbidden", "vera"), 5, what="audit forbidden ack")
        wait_for(lambda: audit("alarm_silence", "ok", "clara"), 5, what="audit alarm_silence")
        # History of the device (the store, through the query worker).
        st, hist = http(self.http_port, "GET", "/api/alarms?device=PAT_1&from=0")
        self.assertEqual(st, 200, hist)
        h = [x for x in hist["alarms"] if x["alarm_id"] == aid]
        wait_for(lambda: [x for x in http(self.http_port, "GET", "/api/alarms?device=PAT_1&from=0")[1]["alarms"]
                          if x["alarm_id"] == aid and x["state"] == "acked"], 5, what="history acked")
        self.assertTrue(h)
        ws.close()
        topic.close()

    def test_finger_off_and_last_will(self):
        self.start_vigild()
        ws = WsCollector(self.http_port)
        d = self.device("PAT_2")
        d.reading(97)
        # Finger off: the PPG is invalid (values null, flags false) for 12 s.
        for _ in range(24):
            d.seq += 1
            body = {"ts": int(time.time() * 1000), "seq": d.seq, "boot": 1, "heart_rate": None, "spo2": None,
                    "hr_valid": False, "spo2_valid": False}
            d.c.publish("sensors/esp32/PAT_2/data", json.dumps(body), qos=1).wait_for_publish(5)
            time.sleep(0.5)
        wait_for(lambda: self.ws_alarms(ws, "PAT_2", "no_signal"), 3, what="no_signal")
        self.assertEqual(self.ws_alarms(ws, "PAT_2", "no_signal")[0]["kind"], "technical")
        self.assertFalse([a for a in self.ws_alarms(ws, "PAT_2")
                          if a["condition"].startswith("spo2_") or a["condition"].startswith("hr_")])
        # The device dies: its last will says offline.
        d.kill()
        wait_for(lambda: self.ws_alarms(ws, "PAT_2", "offline"), 10, what="offline")
        self.assertIn("offline", {a["condition"] for a in self.alarms("PAT_2")})
        ws.close()

    def test_partial_news2(self):
        self.start_vigild()
        ws = WsCollector(self.http_port)
        d = self.device("PAT_5")

        def news2():
            st, dev = http(self.http_port, "GET", "/api/devices/PAT_5")
            return dev.get("news2") if st == 200 else None

        for spo2, hr in ((92, 115), (97, 72), (89, 135)):
            d.reading(spo2, hr)
            want = news2_spo2(spo2) + news2_pulse(hr)
            wait_for(lambda: (news2() or {}).get("score") == want and news2()["pulse"] == news2_pulse(hr),
                     5, what=f"news2 {want} for {spo2} % / {hr} bpm")
            n = news2()
            self.assertTrue(n["partial"])
            self.assertEqual(n["measured"], ["spo2", "pulse"])
            self.assertEqual(n["spo2"], news2_spo2(spo2))
            self.assertIn("respiration_rate", n["not_measured"])
            # The live reading carries the same score.
            wait_for(lambda: [m for m in ws.of_type("sensor_data") if m["data"]["device_id"] == "PAT_5"
                              and m["data"].get("spo2") == spo2], 5, what="sensor_data")
            live = [m["data"] for m in ws.of_type("sensor_data") if m["data"]["device_id"] == "PAT_5"
                    and m["data"].get("spo2") == spo2][-1]
            self.assertEqual(live["news2"]["score"], want)
        # An invalid reading is not scored: it carries no news2, and the
        # device keeps the engine's current (last valid) score.
        d.reading(50, 30, valid=False)
        wait_for(lambda: http(self.http_port, "GET", "/api/devices/PAT_5")[1]["last"].get("spo2_valid") is False,
                 5, what="invalid reading live")
        st, dev = http(self.http_port, "GET", "/api/devices/PAT_5")
        self.assertNotIn("news2", dev["last"])
        self.assertEqual(dev["news2"]["score"], news2_spo2(89) + news2_pulse(135))
        # A device never scored shows null.
        d2 = self.device("PAT_6")
        d2.reading(50, 30, valid=False)
        wait_for(lambda: http(self.http_port, "GET", "/api/devices/PAT_6")[0] == 200, 5, what="PAT_6")
        self.assertIsNone(http(self.http_port, "GET", "/api/devices/PAT_6")[1]["news2"])
        ws.close()

    def test_alarm_settings(self):
        self.start_vigild()
        ws = WsCollector(self.http_port)
        d = self.device("PAT_4")
        d.reading(97)
        wait_for(lambda: http(self.http_port, "GET", "/api/devices/PAT_4")[0] == 200, 5, what="device")
        path = "/api/devices/PAT_4/alarm-settings"
        st, s = http(self.http_port, "GET", path)
        self.assertEqual(st, 200, s)
        self.assertEqual(s["conditions"]["spo2_low"]["limit"], 90)
        self.assertEqual(s["conditions"]["spo2_desat"]["onset_s"], 5)
        self.assertEqual(s["escalation_s"], 60)
        self.assertEqual(http(self.http_port, "GET", "/api/devices/NOPE/alarm-settings")[0], 404)
        clara = Session(self.http_port, "clara", USERS["clara"][1])
        vera = Session(self.http_port, "vera", USERS["vera"][1])

        def put(sess, body):
            return http(self.http_port, "PUT", path, body, token=None,
                        headers={"Cookie": sess.cookie, "X-CSRF-Token": sess.csrf})
        # Refused, never clamped: the message names the field.
        st, body = put(clara, {"conditions": {"spo2_low": {"limit": 40}}})
        self.assertEqual(st, 400, body)
        self.assertIn("conditions.spo2_low.limit", body["error"])
        st, body = put(clara, {"conditions": {"spo2_desat": {"enabled": False}}})
        self.assertEqual(st, 400, body)
        self.assertEqual(put(vera, {"conditions": {"spo2_low": {"limit": 95}}})[0], 403)
        self.assertEqual(http(self.http_port, "GET", path)[1]["conditions"]["spo2_low"]["limit"], 90)
        st, body = put(clara, {"conditions": {"spo2_low": {"limit": 95, "onset_s": 0}}})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["conditions"]["spo2_low"]["limit"], 95)
        st, got = http(self.http_port, "GET", path)
        self.assertEqual(got, body)
        # In effect: 94 % is now low, at once.
        d.reading(94)
        wait_for(lambda: self.ws_alarms(ws, "PAT_4", "spo2_low"), 3, what="spo2_low at the new limit")
        self.assertEqual(self.ws_alarms(ws, "PAT_4", "spo2_low")[0]["limit"], 95)
        st, body = http(self.http_port, "GET", "/api/audit?limit=1000")
        self.assertTrue([e for e in body["entries"] if e["action"] == "alarm_settings" and e["outcome"] == "ok"
                         and e["user"] == "clara"])
        # Persisted: a restarted vigild has them.
        ws.close()
        self.vigild.stop()
        self.start_vigild()
        st, again = http(self.http_port, "GET", path)
        self.assertEqual(again["conditions"]["spo2_low"]["limit"], 95)
        self.assertEqual(again["conditions"]["spo2_low"]["onset_s"], 0)

    def test_latched_alarm_survives_kill9(self):
        self.start_vigild()
        ws = WsCollector(self.http_port)
        d = self.device("PAT_3")
        _, a = self.desaturate(d, ws)
        aid = a["alarm_id"]
        # Recovers: high priority stays latched until acknowledged.
        for _ in range(14):
            d.reading(97)
            time.sleep(0.5)
        wait_for(lambda: [x for x in self.alarms("PAT_3") if x["alarm_id"] == aid and x["state"] == "latched"],
                 5, what="latched")
        time.sleep(0.5)  # the store's group commit
        ws.close()
        self.vigild.kill9()
        self.start_vigild()
        ws2 = WsCollector(self.http_port)
        got = [x for x in self.alarms("PAT_3") if x["alarm_id"] == aid]
        self.assertEqual(len(got), 1, self.alarms())
        self.assertEqual(got[0]["state"], "latched")
        self.assertEqual(got[0]["condition"], "spo2_desat")
        # Readings go on; nothing is raised again as new.
        for _ in range(6):
            d.reading(97)
            time.sleep(0.5)
        self.assertFalse([m for m in self.ws_alarms(ws2, "PAT_3", "spo2_desat") if m["alarm_id"] != aid])
        st, hist = http(self.http_port, "GET", "/api/alarms?device=PAT_3&from=0")
        self.assertEqual([x["alarm_id"] for x in hist["alarms"] if x["condition"] == "spo2_desat"], [aid])
        ws2.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
