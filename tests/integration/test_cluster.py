"""Several vigild on one PostgreSQL: bucket ownership (server/cluster.c).

Ownership alone, with tests/unit/cluster_probe.c (cluster.c and nothing
else) on a private PostgreSQL: three members split the 64 buckets, a kill -9
moves the dead one's buckets to the survivors within the stated bound
(docs/ARCHITECTURE.md "Several instances": one tick + one round trip, under
1 s here; asserted < 2 s), a joining member gets its share without thrash,
no bucket ever has two owners (checked on CLOCK_MONOTONIC, one clock for
every process), and losing the database keeps every member's buckets
(alarms go on) and re-locks the same ones when it is back.

Then three vigild on one Mosquitto and that PostgreSQL, 200 simulated devices
x 5 Hz, kill -9 of one mid-run: every reading stored exactly once, the dead
one's buckets move within the bound (polled on the survivors' /healthz), a
WebSocket client on a survivor keeps receiving every device, and no gap is
asked for by two instances (resend commands counted on the commands topic,
grouped by the requesting instance's cmd_id prefix). It needs vigild's
PostgreSQL store engine and is skipped where vigild cannot open one. PostgreSQL is a private throw-away
cluster (tests/support/pg_cluster.py), removed afterwards.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
import vigil_client  # noqa: E402

PG_BIN = pg_cluster.BIN if os.path.exists(os.path.join(pg_cluster.BIN, "initdb")) else None

K = 64
ALL = (1 << K) - 1
TAKEOVER_BOUND_S = 2.0


class Probe:
    """One cluster_probe process; its stdout parsed by a reader thread."""

    def __init__(self, url, name):
        self.name = name
        self.proc = subprocess.Popen([harness.binary("cluster_probe"), url, name],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = []  # (t_ns, bucket, gained)
        self.last = None  # (members, mask, connected, takeovers, t_ns)
        self.lock = threading.Lock()
        self.killed_ns = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            with self.lock:
                if f[0] in ("G", "L") and len(f) == 3:
                    self.events.append((int(f[2]), int(f[1]), f[0] == "G"))
                elif f[0] == "S" and len(f) == 6:
                    self.last = (int(f[1]), int(f[2], 16), int(f[3]), int(f[4]), int(f[5]))

    def state(self):
        with self.lock:
            return self.last

    def mask(self):
        s = self.state()
        return s[1] if s else 0

    def kill9(self):
        self.killed_ns = time.monotonic_ns()
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.thread.join(timeout=5)
        self.proc.stdout.close()


def popcount(x):
    return bin(x).count("1")


def settled(probes):
    """Every bucket owned, by exactly one live probe, none above its share."""
    n = len(probes)
    masks = [p.mask() for p in probes]
    union = 0
    for m in masks:
        if union & m:
            return False
        union |= m
    fair = -(-K // n)
    return union == ALL and all(popcount(m) <= fair for m in masks) and \
        all((p.state() or (0,))[0] == n for p in probes)


def assert_never_two_owners(tc, probes, end_ns):
    """From the G/L events: per bucket, the intervals of ownership of
    different probes never overlap (a kill -9 ends the victim's at the kill)."""
    spans = {b: [] for b in range(K)}
    for p in probes:
        with p.lock:
            ev = sorted(p.events)
        stop = p.killed_ns or end_ns
        open_at = {}
        for t, b, gained in ev:
            if t > stop:
                break
            if gained:
                open_at[b] = t
            elif b in open_at:
                spans[b].append((open_at.pop(b), t, p.name))
        for b, t in open_at.items():
            spans[b].append((t, stop, p.name))
    for b, s in spans.items():
        s.sort()
        for (a0, a1, an), (b0, b1, bn) in zip(s, s[1:]):
            tc.assertLessEqual(a1, b0, f"bucket {b}: {an} and {bn} owned it at the same time")


@unittest.skipUnless(PG_BIN, "PostgreSQL server binaries not installed")
class ClusterOwnership(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg_cluster.PgCluster().start()
        cls.url = cls.pg.url()

    @classmethod
    def tearDownClass(cls):
        cls.pg.destroy()

    def setUp(self):
        self.probes = []

    def tearDown(self):
        for p in self.probes:
            p.stop()

    def probe(self, name):
        p = Probe(self.url, name)
        self.probes.append(p)
        return p

    def test_takeover_rebalance_and_single_owner(self):
        a, b, c = self.probe("vigild-a"), self.probe("vigild-b"), self.probe("vigild-c")
        harness.wait_for(lambda: settled([a, b, c]), timeout=15, what="three members settle")
        time.sleep(1.0)  # two ticks: every member has seen the others' buckets
        self.assertTrue(settled([a, b, c]))
        for p in (a, b, c):
            self.assertGreaterEqual(popcount(p.mask()), 20)
        # kill -9: the server frees b's locks when its socket closes.
        victim = b.mask()
        b.kill9()
        t0 = time.monotonic()
        harness.wait_for(lambda: (a.mask() | c.mask()) == ALL and not (a.mask() & c.mask()),
                         timeout=10, interval=0.02, what="survivors own every bucket")
        took = time.monotonic() - t0
        print(f"takeover of {popcount(victim)} buckets: {took:.2f} s", flush=True)
        self.assertLess(took, TAKEOVER_BOUND_S)
        harness.wait_for(lambda: settled([a, c]), timeout=10, what="two members settle")
        harness.wait_for(lambda: a.state()[3] + c.state()[3] >= popcount(victim), timeout=5,
                         what="takeovers counted")
        # A member joins: it gets its share, one bucket per owner per tick.
        d = self.probe("vigild-d")
        harness.wait_for(lambda: settled([a, c, d]), timeout=20, what="joined member gets its share")
        self.assertGreaterEqual(popcount(d.mask()), 20)
        time.sleep(1.0)  # settled stays settled: no thrash
        self.assertTrue(settled([a, c, d]))
        with d.lock:
            self.assertFalse(any(not g for _, _, g in d.events), "the joiner gave buckets back")
        assert_never_two_owners(self, [a, b, c, d], time.monotonic_ns())

    def test_database_loss_keeps_buckets_then_relocks(self):
        """Alarms must not stop with the database: through an outage every
        member keeps the buckets it owned (disconnected, state()[2] == 0),
        and on reconnect re-locks the same ones at once."""
        a, b = self.probe("vigild-a"), self.probe("vigild-b")
        harness.wait_for(lambda: settled([a, b]), timeout=15, what="two members settle")
        before = (a.mask(), b.mask())
        self.pg.stop_server()
        try:
            harness.wait_for(lambda: a.state()[2] == 0 and b.state()[2] == 0, timeout=10, interval=0.02,
                             what="both sessions seen lost")
            time.sleep(1.5)  # a few ticks of reconnect attempts
            self.assertEqual((a.mask(), b.mask()), before, "buckets dropped during the outage")
        finally:
            self.pg.start_server()
        harness.wait_for(lambda: a.state()[2] == 1 and b.state()[2] == 1, timeout=20,
                         what="sessions back after restart")
        harness.wait_for(lambda: settled([a, b]), timeout=20, what="ownership settled after restart")
        self.assertEqual((a.mask(), b.mask()), before, "the same buckets re-locked")
        assert_never_two_owners(self, [a, b], time.monotonic_ns())


def pg_query(pg, sql):
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "vigil",
                        "-d", "postgres", "-tAF", "|", "-c", sql], capture_output=True, text=True, timeout=30,
                       env={**os.environ, "PGPASSWORD": pg.password})
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return [line.split("|") for line in r.stdout.splitlines() if line]


def vigild_opens_pg(url):
    """vigild with a PostgreSQL store engine: `token add` opens (and
    migrates) the store named by --db."""
    r = subprocess.run([harness.binary("vigild"), "token", "add", "probe", "--role", "viewer", "--db", url],
                       capture_output=True, text=True, timeout=60)
    return r.returncode == 0


class ControlCollector:
    """Every resend command on commands/esp32/+/control: (device, boot, from,
    to) -> the cmd_id prefixes (one per vigild process) that asked for it."""

    def __init__(self, port):
        import paho.mqtt.client as mqtt
        self.lock = threading.Lock()
        self.asked = {}
        self.total = 0
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="it-control", clean_session=True)
        self.c.on_connect = lambda c, u, f, rc: c.subscribe("commands/esp32/+/control", 1)
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("no SUBACK")

    def _on_message(self, c, u, msg):
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if body.get("cmd") != "resend":
            return
        dev = msg.topic.split("/")[2]
        cid = body.get("cmd_id", "")
        nonce = cid[:cid.rfind("-") + 1]  # "rs-<hex>-": one per process
        with self.lock:
            self.total += 1
            self.asked.setdefault((dev, body["boot"], body["from"], body["to"]), set()).add(nonce)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


@unittest.skipUnless(PG_BIN, "PostgreSQL server binaries not installed")
class ThreeVigild(harness.TempDirTest):
    N, RATE, DURATION, PREFIX = 200, 5, 22, "CL_"

    def setUp(self):
        super().setUp()
        self.pg = pg_cluster.PgCluster().start()
        self.addCleanup(self.pg.destroy)
        self.url = self.pg.url()
        if not vigild_opens_pg(self.url):
            self.skipTest("vigild cannot open a postgresql:// store (no PostgreSQL store engine)")
        self.broker = harness.Mosquitto(self.tmp).start()
        self.track(self.broker.proc)

    def vigild(self, i):
        port = harness.free_port()
        p = self.track(harness.Proc(
            [harness.binary("vigild"), "--broker", self.broker.url, "--db", self.url,
             "--client-id", f"vigild-{i}", "--listen", f"127.0.0.1:{port}"],
            os.path.join(self.tmp, f"vigild-{i}.log")))
        harness.wait_port(port, timeout=20)
        return p, port

    @staticmethod
    def cluster(port):
        try:
            _, body = vigil_client.http(port, "GET", "/healthz", timeout=2)
        except Exception:  # noqa: BLE001 - a dying instance
            return None
        return body.get("cluster") if isinstance(body, dict) else None

    def test_kill9_exactly_once_takeover_live_and_single_resends(self):
        t_start = time.monotonic()
        inst = [self.vigild(i) for i in range(3)]
        ports = [p for _, p in inst]

        def owned(ps, members):
            cs = [self.cluster(p) for p in ps]
            return all(c and c["members"] == members for c in cs) and \
                sum(c["owned_buckets"] for c in cs) == K

        harness.wait_for(lambda: owned(ports, 3), timeout=15, what="three instances own the 64 buckets")
        ctl = ControlCollector(self.broker.port)
        self.addCleanup(ctl.close)
        ws = vigil_client.WsCollector(ports[0])
        self.addCleanup(ws.close)
        summary = os.path.join(self.tmp, "summary.json")
        sim = self.track(harness.Proc(
            [harness.binary("vigil-sim"), "--broker", self.broker.url, "--devices", str(self.N),
             "--rate", str(self.RATE), "--duration", str(self.DURATION), "--prefix", self.PREFIX,
             "--seed", "12", "--summary-json", summary],
            os.path.join(self.tmp, "sim.log")))
        time.sleep(7)
        # kill -9 mid-run: its last uncommitted batch is lost with it.
        inst[1][0].kill9()
        t_kill = time.monotonic()
        harness.wait_for(lambda: owned([ports[0], ports[2]], 2), timeout=10, interval=0.1,
                         what="survivors own the dead instance's buckets")
        took = time.monotonic() - t_kill
        print(f"takeover seen on /healthz after {took:.2f} s", flush=True)
        self.assertLess(took, 3.0)
        # The survivor's WebSocket client still gets every device live.
        time.sleep(1.0)
        mark = len(ws.messages)
        time.sleep(3.0)
        live = {m["data"]["device_id"] for m in ws.messages[mark:]
                if m.get("type") == "sensor_data" and m.get("data", {}).get("device_id", "").startswith(self.PREFIX)}
        self.assertEqual(len(live), self.N, f"devices seen live after the kill: {len(live)}")
        sim.p.wait(timeout=self.DURATION + 30)
        self.assertEqual(sim.p.returncode, 0, sim.output()[-2000:])
        with open(summary) as f:
            s = json.load(f)
        expect = {dev: (d["boot"], d["last_seq"]) for dev, d in s["per_device"].items()}
        self.assertEqual(len(expect), self.N)

        def stored():
            rows = pg_query(self.pg, "SELECT d.id, r.boot, count(*), count(DISTINCT r.seq), min(r.seq), max(r.seq) "
                                     "FROM readings r JOIN devices d ON d.key = r.device "
                                     f"WHERE d.id LIKE '{self.PREFIX}%' GROUP BY 1, 2")
            return {r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows}

        def complete():
            got = stored()
            return all(dev in got and got[dev][0] == b and got[dev][2] == last and got[dev][4] == last
                       for dev, (b, last) in expect.items()) and got

        got = harness.wait_for(complete, timeout=max(10, 85 - (time.monotonic() - t_start)), interval=1.0,
                               what="every reading stored after the resends")
        for dev, (b, last) in expect.items():
            boot, n, distinct, lo, hi = got[dev]
            self.assertEqual((n, distinct, lo, hi), (last, last, 1, last), f"{dev}: stored exactly once")
        # One resend request per gap: never the same range from two instances.
        with ctl.lock:
            doubled = {k: v for k, v in ctl.asked.items() if len(v) > 1}
            total = ctl.total
        print(f"resend commands: {total} for {len(ctl.asked)} ranges", flush=True)
        self.assertEqual(doubled, {})
        # The sim's end sends every device offline: each owner raises one
        # alarm, every survivor lists all of them. Acknowledged on one
        # instance, they turn acked everywhere — the ones it does not own
        # through vigil/cluster/alarm-ops and the owner's alarm list.
        def offline(port):
            _, body = vigil_client.http(port, "GET", "/api/alarms")
            alarms = body.get("alarms", []) if isinstance(body, dict) else []
            return {a["device_id"]: a for a in alarms
                    if a["condition"] == "offline" and a["device_id"].startswith(self.PREFIX)}

        harness.wait_for(lambda: len(offline(ports[0])) == self.N and len(offline(ports[2])) == self.N,
                         timeout=20, what="every device's offline alarm on both survivors")
        for a in offline(ports[0]).values():
            st, _ = vigil_client.http(ports[0], "POST", f"/api/alarms/{a['alarm_id']}/ack")
            self.assertEqual(st, 202)

        def all_acked():
            return all(len(o) == self.N and all(a["state"] == "acked" for a in o.values())
                       for o in (offline(ports[0]), offline(ports[2])))

        def states(port):
            o = offline(port)
            return {st: sum(1 for a in o.values() if a["state"] == st) for st in {a["state"] for a in o.values()}}

        try:
            harness.wait_for(all_acked, timeout=10, what="acks applied by every owner, seen on both")
        except TimeoutError:
            self.fail(f"alarm states after the acks: {states(ports[0])} on one, {states(ports[2])} on the other")
        # Survivors stay healthy; alarms (the sim's end sends every device
        # offline) are raised by one engine each, never by two instances.
        raised = {}
        for i in (0, 2):
            self.assertTrue(inst[i][0].alive(), inst[i][0].output()[-2000:])
            for m in re.finditer(r"alarm \d+ raised: (\S+) (\S+)", inst[i][0].output()):
                raised.setdefault(m.groups(), set()).add(i)
        twice = {k: v for k, v in raised.items() if len(v) > 1}
        self.assertEqual(twice, {}, "alarms raised by two instances")
        self.assertLess(time.monotonic() - t_start, 90)


if __name__ == "__main__":
    unittest.main(verbosity=2)
