"""End-to-end test of vigil-sim against a real Mosquitto.

- 200 devices at 5 Hz for ~5 s: a QoS 1 subscriber started before the sim
  sees, for every device, seqs 1..last_seq with no gap and no duplicate,
  matching the sim's --summary-json; retained `online` statuses exist for
  all 200 while the sim runs, and `offline` after it ends.
- kill -9 of a running sim: the broker fires every device's last will, so a
  fresh subscriber finds retained `offline` statuses for all of them.
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402


class Collector:
    """A paho client (1.x API) recording data seqs and last statuses."""

    def __init__(self, port, topics, client_id):
        self.lock = threading.Lock()
        self.seqs = {}
        self.status = {}
        self.retained_status = {}
        self.status_history = {}
        self.bad = []
        self.acks = []
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id=client_id, clean_session=True)
        self.c.on_connect = lambda c, u, f, rc: c.subscribe([(t, 1) for t in topics])
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("subscriber did not get SUBACK")

    def _on_message(self, c, u, msg):
        parts = msg.topic.split("/")
        dev, kind = parts[2], parts[3]
        try:
            body = json.loads(msg.payload)
        except ValueError:
            with self.lock:
                self.bad.append((msg.topic, msg.payload))
            return
        with self.lock:
            if kind == "data":
                self.seqs.setdefault(dev, []).append((body["boot"], body["seq"]))
            elif kind == "ack":
                self.acks.append((dev, body))
            elif kind == "status":
                self.status[dev] = body.get("status")
                self.status_history.setdefault(dev, []).append(body.get("status"))
                if msg.retain:
                    self.retained_status[dev] = body.get("status")

    def count(self, prefix):
        with self.lock:
            return sum(len(v) for k, v in self.seqs.items() if k.startswith(prefix))

    def statuses(self, prefix, value):
        with self.lock:
            return {k for k, v in self.status.items() if k.startswith(prefix) and v == value}

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def retained_statuses(port, prefix, wait=1.5):
    """What a newcomer sees: the retained status of each device."""
    col = Collector(port, ["sensors/esp32/+/status"], f"probe-{time.monotonic_ns()}")
    time.sleep(wait)
    col.close()
    return {k: v for k, v in col.retained_status.items() if k.startswith(prefix)}


class SimFleetTest(harness.TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = self.track(harness.Mosquitto(self.tmp).start())
        self.sim_bin = harness.binary("vigil-sim")

    def test_fleet_no_gap_no_duplicate_and_status(self):
        n, prefix = 200, "FLEET_"
        col = Collector(self.broker.port,
                        ["sensors/esp32/+/data", "sensors/esp32/+/status"], "it-collector")
        summary = os.path.join(self.tmp, "summary.json")
        sim = self.track(harness.Proc(
            [self.sim_bin, "--broker", self.broker.url, "--devices", str(n), "--rate", "5",
             "--duration", "5", "--prefix", prefix, "--seed", "7", "--summary-json", summary],
            os.path.join(self.tmp, "sim.log")))
        # While it runs: every device has announced itself, retained.
        harness.wait_for(lambda: len(col.statuses(prefix, "online")) == n, timeout=10,
                         what="200 online statuses")
        retained = retained_statuses(self.broker.port, prefix)
        self.assertEqual(len(retained), n, retained)
        self.assertTrue(all(v == "online" for v in retained.values()), retained)
        sim.p.wait(timeout=40)
        self.assertEqual(sim.p.returncode, 0, sim.output())
        with open(summary) as f:
            s = json.load(f)
        self.assertEqual(s["devices"], n)
        self.assertEqual(len(s["per_device"]), n)
        self.assertEqual(s["sent"], s["acked"])
        self.assertEqual(s["dropped"], 0)
        harness.wait_for(lambda: col.count(prefix) >= s["sent"], timeout=10,
                         what="all readings delivered")
        time.sleep(0.3)  # anything extra (a duplicate) would arrive now
        col.close()
        self.assertEqual(col.bad, [])
        total = 0
        for dev, d in s["per_device"].items():
            got = col.seqs.get(dev, [])
            self.assertTrue(all(b == d["boot"] for b, _ in got), dev)
            seqs = sorted(q for _, q in got)
            self.assertEqual(len(seqs), len(set(seqs)), f"duplicate for {dev}")
            self.assertEqual(seqs, list(range(1, d["last_seq"] + 1)), f"gap for {dev}")
            self.assertEqual(len(seqs), d["sent"])
            # ~5 s at 5 Hz
            self.assertGreaterEqual(d["sent"], 15, dev)
            total += len(seqs)
        self.assertEqual(total, s["sent"])
        # A normal end says offline (retained) for every device.
        after = retained_statuses(self.broker.port, prefix)
        self.assertEqual(len(after), n)
        self.assertTrue(all(v == "offline" for v in after.values()), after)
        self.assertIn("done in", sim.output())

    def test_disconnect_scenario_replays_outbox(self):
        n, prefix = 20, "DROP_"
        col = Collector(self.broker.port,
                        ["sensors/esp32/+/data", "sensors/esp32/+/status"], "it-drop")
        summary = os.path.join(self.tmp, "drop.json")
        sim = self.track(harness.Proc(
            [self.sim_bin, "--broker", self.broker.url, "--devices", str(n), "--rate", "10",
             "--duration", "6", "--prefix", prefix, "--first-id", "1",
             "--scenario", "disconnect@1-10:1.5-2", "--scenario", "finger_off@11-12:0",
             "--summary-json", summary],
            os.path.join(self.tmp, "sim-drop.log")))
        sim.p.wait(timeout=40)
        self.assertEqual(sim.p.returncode, 0, sim.output())
        with open(summary) as f:
            s = json.load(f)
        harness.wait_for(lambda: col.count(prefix) >= s["sent"], timeout=10, what="readings")
        time.sleep(0.3)
        col.close()
        self.assertEqual(s["reconnects"], 10)
        self.assertEqual(s["dropped"], 0)
        for dev, d in s["per_device"].items():
            seqs = sorted({q for _, q in col.seqs[dev]})
            # QoS 1 is at least once: a reading in flight when the link
            # dropped may arrive twice, but none may be missing.
            self.assertEqual(seqs, list(range(1, d["last_seq"] + 1)), f"gap for {dev}")
            num = int(dev[len(prefix):])
            if num <= 10:
                self.assertEqual(d["reconnects"], 1, dev)
                # the broker published the last will while it was away
                self.assertEqual(col.status_history[dev][:3], ["online", "offline", "online"], dev)
            else:
                self.assertEqual(d["reconnects"], 0, dev)

    def test_commands_and_config_roundtrip(self):
        prefix = "CMD_"
        dev = prefix + "001"
        col = Collector(self.broker.port, ["sensors/esp32/+/ack", "sensors/esp32/+/status"],
                        "it-cmd")
        sim = self.track(harness.Proc(
            [self.sim_bin, "--broker", self.broker.url, "--devices", "2", "--rate", "5",
             "--duration", "8", "--prefix", prefix, "--summary-json",
             os.path.join(self.tmp, "cmd.json")],
            os.path.join(self.tmp, "sim-cmd.log")))
        harness.wait_for(lambda: len(col.statuses(prefix, "online")) == 2, timeout=10,
                         what="online")
        time.sleep(1.2)  # a few readings for resend
        ctl = f"commands/esp32/{dev}/control"
        port = self.broker.port
        harness.mosquitto_pub(port, ctl, {"cmd_id": "c1", "cmd": "ping"})
        harness.mosquitto_pub(port, ctl, "{not json")
        harness.mosquitto_pub(port, ctl, {"cmd_id": "c2", "cmd": "bogus"})
        harness.mosquitto_pub(port, f"sensors/esp32/{dev}/config",
                              {"cfg_id": "cfg-1", "interval_ms": 5}, retain=True)
        harness.mosquitto_pub(port, f"sensors/esp32/{dev}/config",
                              {"cfg_id": "cfg-2", "interval_ms": 400}, retain=True)

        def acks():
            with col.lock:
                return {b.get("cmd_id") or b.get("cfg_id"): b for d, b in col.acks if d == dev}

        harness.wait_for(lambda: len(acks()) >= 4, timeout=5, what="acks")
        a = acks()
        self.assertEqual(a["c1"], {"cmd_id": "c1", "cmd": "ping", "ok": True})
        self.assertEqual(a["c2"]["ok"], False)
        self.assertEqual(a["c2"]["error"], "unknown command")
        self.assertEqual(a["cfg-1"]["ok"], False)
        self.assertEqual(a["cfg-2"], {"cfg_id": "cfg-2", "ok": True, "interval_ms": 400})
        # resend from the outbox, then reboot: a new boot id and the
        # persisted interval survives it
        return_boot = [None]
        interval = [None]

        def on_status(c, u, msg):
            body = json.loads(msg.payload)
            if body.get("status") == "online":
                return_boot[0] = body["boot"]
                interval[0] = body["interval_ms"]

        sub = mqtt.Client(client_id="it-boot", clean_session=True)
        sub.on_message = on_status
        sub.connect("127.0.0.1", port)
        sub.subscribe(f"sensors/esp32/{dev}/status", 1)
        sub.loop_start()
        harness.wait_for(lambda: return_boot[0] is not None, timeout=5, what="boot")
        boot = return_boot[0]
        harness.mosquitto_pub(port, ctl, {"cmd_id": "c4", "cmd": "resend", "boot": boot,
                                          "from": 1, "to": 3})
        harness.wait_for(lambda: "c4" in acks(), timeout=5, what="resend ack")
        self.assertEqual(acks()["c4"], {"cmd_id": "c4", "cmd": "resend", "ok": True,
                                        "sent": 3, "missing": 0})
        harness.mosquitto_pub(port, ctl, {"cmd_id": "c5", "cmd": "reboot"})
        harness.wait_for(lambda: return_boot[0] == boot + 1, timeout=8, what="reboot")
        sub.loop_stop()
        sub.disconnect()
        self.assertEqual(acks()["c5"]["ok"], True)
        self.assertEqual(interval[0], 400)
        sim.p.wait(timeout=30)
        col.close()
        self.assertEqual(sim.p.returncode, 0, sim.output())
        with open(os.path.join(self.tmp, "cmd.json")) as f:
            s = json.load(f)
        self.assertEqual(s["per_device"][dev]["boot"], boot + 1)

    def test_kill9_fires_last_will(self):
        n, prefix = 30, "KILL_"
        col = Collector(self.broker.port, ["sensors/esp32/+/status"], "it-kill")
        sim = self.track(harness.Proc(
            [self.sim_bin, "--broker", self.broker.url, "--devices", str(n), "--rate", "2",
             "--duration", "60", "--prefix", prefix, "--keepalive", "5"],
            os.path.join(self.tmp, "sim-kill.log")))
        harness.wait_for(lambda: len(col.statuses(prefix, "online")) == n, timeout=10,
                         what="online statuses")
        col.close()
        sim.kill9()

        def all_offline():
            r = retained_statuses(self.broker.port, prefix, wait=0.7)
            return len(r) == n and all(v == "offline" for v in r.values())

        harness.wait_for(all_offline, timeout=15, interval=0.2, what="last wills")


if __name__ == "__main__":
    harness.main()
