"""History queries run off the web thread: while many clients read long
histories at once, live readings keep reaching a WebSocket client, every
history answer is complete and identical to a quiet-time answer, and
connections that close before their answer arrives do no harm.
Real Mosquitto, real vigild (harness.py)."""
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mosquitto, Proc, TempDirTest, binary, free_port, wait_for, wait_port  # noqa: E402
import vigil_client  # noqa: E402
from vigil_client import http, metric  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402
import websockets  # noqa: E402

DEVICES = 12
PER_DEVICE = 2500
T0 = (int(time.time()) - 3 * 3600) * 1000  # recent: inside the retention window
LIVE = "LIVE_001"


class TimedWs:
    """A WebSocket client recording (monotonic time, message) for each live reading."""

    def __init__(self, port):
        self.port = port
        self.got = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.done = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self._main()),
                                       daemon=True)
        self.thread.start()
        if not self.ready.wait(10) or self.error:
            raise self.error or TimeoutError("WebSocket did not connect")

    async def _main(self):
        try:
            async with websockets.connect(f"ws://127.0.0.1:{self.port}/ws",
                                          max_size=64 * 1024 * 1024,
                                          extra_headers=vigil_client.auth_headers()) as ws:
                self.ws = ws
                await ws.send(json.dumps({"type": "subscribe", "devices": [LIVE]}))
                self.ready.set()
                async for raw in ws:
                    now = time.monotonic()
                    msg = json.loads(raw)
                    for m in msg if isinstance(msg, list) else [msg]:
                        if m.get("type") == "sensor_data":
                            self.got.append((now, m["data"]["seq"]))
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.error = e
            self.ready.set()
        finally:
            self.done.set()

    def close(self):
        if not self.done.is_set() and hasattr(self, "ws"):
            asyncio.run_coroutine_threadsafe(self.ws.close(), self.loop)
        self.done.wait(5)


class LivePublisher:
    """Publishes one reading for LIVE every 20 ms until stopped (bounded)."""

    def __init__(self, port):
        self.c = mqtt.Client(client_id=f"live-{os.getpid()}-{port}")
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.stop_ev = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for seq in range(3000):  # 60 s at most
            if self.stop_ev.is_set():
                break
            self.c.publish(f"sensors/esp32/{LIVE}/data",
                           json.dumps({"heart_rate": 70, "seq": seq, "boot": 1}), qos=0)
            self.sent = seq + 1
            time.sleep(0.02)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)
        self.c.loop_stop()
        self.c.disconnect()


class _Auth:
    """The Authorization header line for raw requests, read when formatted."""

    def __format__(self, spec):
        return "".join(f"{k}: {v}\r\n" for k, v in vigil_client.auth_headers().items())


AUTH = _Auth()


class HistoryOffloadTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = self.track(Mosquitto(self.tmp).start())
        self.http_port = free_port()
        args = [binary("vigild"), "--broker", self.broker.url, "--listen",
                f"127.0.0.1:{self.http_port}", "--db", os.path.join(self.tmp, "vigil.db"),
                "--client-id", f"vigild-offload-{os.getpid()}-{self.http_port}"]
        self.vigild = self.track(Proc(args, os.path.join(self.tmp, "vigild.log")))
        wait_port(self.http_port)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 10, what="vigild healthy")

    def fill_history(self):
        """DEVICES x PER_DEVICE readings with ts in the past, a few publishers at once."""
        procs = []
        for d in range(DEVICES):
            lines = "\n".join(json.dumps({"heart_rate": 60 + i % 40, "spo2": 95, "seq": i, "boot": 1,
                                          "ts": T0 + i * 1000}) for i in range(PER_DEVICE))
            p = subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.broker.port),
                                  "-t", f"sensors/esp32/HIST_{d:03d}/data", "-q", "1", "-l"],
                                 stdin=subprocess.PIPE)
            p.stdin.write(lines.encode())
            p.stdin.close()
            procs.append(p)
        for p in procs:
            p.wait(timeout=60)
            self.assertEqual(p.returncode, 0)
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= DEVICES * PER_DEVICE, 40,
                 interval=0.5, what="history stored")

    def raw_get(self, path):
        """(status, body bytes) with a plain socket: the test compares bytes."""
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=30) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{AUTH}Connection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise ConnectionError(f"closed before headers: {data!r}")
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = None
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if length is None:
                raise ConnectionError(f"no content-length: {head!r}")
            while len(body) < length:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("closed mid-body")
                body += chunk
        status = int(head.split(b" ", 2)[1])
        return status, body

    def test_live_stream_flows_while_history_queries_run(self):
        self.fill_history()
        paths = []
        for d in range(DEVICES):
            base = f"/api/devices/HIST_{d:03d}"
            paths.append(f"{base}/readings?from={T0}&to={T0 + PER_DEVICE * 1000}&max_points=10000")
            paths.append(f"{base}/readings?from={T0}&to={T0 + PER_DEVICE * 1000}&max_points=50")
            paths.append(f"{base}/completeness")
        # Quiet-time answers: what each concurrent answer must equal, byte for byte.
        expected = {p: self.raw_get(p) for p in paths}
        for p, (status, body) in expected.items():
            self.assertEqual(status, 200, p)
            doc = json.loads(body)
            if "max_points=10000" in p:
                self.assertEqual([r["seq"] for r in doc["readings"]], list(range(PER_DEVICE)), p)
            elif "max_points=50" in p:
                self.assertTrue(doc["downsampled"])
                self.assertEqual(sum(b["n"] for b in doc["buckets"]), PER_DEVICE, p)
            else:
                self.assertEqual((doc["received"], doc["lost"]), (PER_DEVICE, 0), p)

        ws = TimedWs(self.http_port)
        pub = LivePublisher(self.broker.port)
        results, errors = [], []
        try:
            wait_for(lambda: len(ws.got) >= 5, 10, what="live stream before queries")
            rounds = 10
            work = [p for _ in range(rounds) for p in paths]
            lock = threading.Lock()

            def worker():
                while True:
                    with lock:
                        if not work:
                            return
                        p = work.pop()
                    try:
                        results.append((p, self.raw_get(p)))
                    except Exception as e:  # noqa: BLE001 - reported below
                        errors.append((p, repr(e)))

            threads = [threading.Thread(target=worker, daemon=True) for _ in range(12)]
            q_start = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            q_end = time.monotonic()
            time.sleep(0.3)
        finally:
            pub.stop()
            ws.close()

        self.assertEqual(errors, [])
        self.assertEqual(len(results), rounds * len(paths))
        busy = 0
        for p, (status, body) in results:
            if status == 503:  # the bounded queue's answer: allowed, never wrong data
                self.assertEqual(json.loads(body), {"error": "busy, retry"})
                busy += 1
                continue
            self.assertEqual((status, body), expected[p], p)
        self.assertLess(busy, len(results) // 2)

        during = [t for t, _ in ws.got if q_start <= t <= q_end]
        window = q_end - q_start
        stamps = [q_start] + during + [q_end]
        max_gap = max(b - a for a, b in zip(stamps, stamps[1:]))
        sys.stderr.write(f"{len(results)} history answers ({busy} busy) in {window:.2f}s; "
                         f"{len(during)} live messages meanwhile, largest gap {max_gap * 1000:.0f} ms\n")
        # Live readings kept arriving while queries were outstanding; relative,
        # generous bounds (a noisy 2-core machine must not fail this).
        self.assertGreater(len(during), 0)
        self.assertLess(max_gap, max(window / 2, 1.0))
        seqs = [s for _, s in ws.got]
        self.assertEqual(seqs, sorted(seqs))

    def test_connection_closed_before_answer(self):
        self.fill_history()
        path = f"/api/devices/HIST_000/readings?from={T0}&to={T0 + PER_DEVICE * 1000}&max_points=10000"
        for i in range(60):
            s = socket.create_connection(("127.0.0.1", self.http_port), timeout=5)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode())
            if i % 2:
                s.shutdown(socket.SHUT_WR)
            s.close()  # before the worker has answered (most of the time)
        # And a keep-alive connection that asks again before reading the first answer.
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode() * 2)
            s.recv(1)
        time.sleep(0.5)
        self.assertTrue(self.vigild.alive(), self.vigild.output()[-2000:])
        status, body = self.raw_get(path)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["total"], PER_DEVICE)
        self.assertEqual(http(self.http_port, "GET", "/healthz")[0], 200)
        # Queries still queued at shutdown are discarded; the exit stays clean
        # (and, in the sanitizer build, free of reports).
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", self.http_port), timeout=5)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode())
            s.close()
        self.assertEqual(self.vigild.stop(), 0, self.vigild.output()[-2000:])
        self.assertNotIn("Sanitizer", self.vigild.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
