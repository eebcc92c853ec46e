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
