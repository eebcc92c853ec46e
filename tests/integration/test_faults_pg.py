"""Fault injection on the PostgreSQL store: "nothing lost, nothing doubled".

The fault suite's method (test_faults.py: its FaultTest parts and the same
comparison with the sim's --summary-json, missing → 0, duplicates → 0,
completeness API agreeing, live path back) with vigild on `--db
postgresql://…`, against a private cluster (tests/support/pg_cluster.py),
and the faults that belong to that engine:

  1. kill -9 vigild while its store queue holds readings (the writer held
     up by a lock on reading_seqs for 3 s), restart → resends refill them;
  2. PostgreSQL restarted (fast shutdown, down ~5 s, started on the same
     port and data): the queue holds, /healthz says not writable and then
     writable, the WebSocket path keeps delivering meanwhile;
  3. PostgreSQL unreachable for 10 s: a TCP proxy between vigild and the
     server stops forwarding with every socket kept open — a partition, not
     a refused connection — then forwards again; the writer must resume
     within a bounded time.

The store is counted with `psql -tA` (no psycopg2 in Debian's python3 here).
Budget: ~100 s for the file on 2 shared cores (100 devices × 5 Hz by
default: VIGIL_PG_FAULT_DEVICES, VIGIL_FAULT_RATE). Every wait is bounded.
"""
import os
import select
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import test_faults as tf  # noqa: E402  (module, not its classes: their tests are not ours)
from harness import wait_for  # noqa: E402
from pg_cluster import psql, shared as shared_cluster  # noqa: E402
from vigil_client import WsCollector, http, metric  # noqa: E402

# FaultTest's parts read the fleet size from their module; this file's is
# smaller (the suite runs twice in CI: normal and ASan).
tf.FAULT_DEVICES = int(os.environ.get("VIGIL_PG_FAULT_DEVICES", "100"))
DEVICES = tf.FAULT_DEVICES
RATE = tf.FAULT_RATE
PSQL_TIMEOUT_S = 30
PARTITION_S = 10
RECOVERY_BOUND_S = 60  # the writer must be writing again this soon after a partition
CLUSTER = None


def setUpModule():
    global CLUSTER
    CLUSTER = shared_cluster()  # destroyed at exit


class BlackHoleProxy:
    """A TCP proxy 127.0.0.1:port → 127.0.0.1:target, one thread per
    direction per connection. partition() stops forwarding but keeps every
    socket open: bytes pile up in the kernel buffers, the peers see no
    error and no answer — a network partition as both TCP ends see it
    (they would retransmit; here the kernel has acked). heal() forwards
    again, buffered bytes first, so nothing is lost or reordered: as TCP
    after a partition. Connections made meanwhile are accepted but get no
    bytes through until heal (as a SYN that gets through and nothing more).
    stop() closes everything; every thread polls at 0.2 s and is joined."""

    POLL_S = 0.2

    def __init__(self, target_port):
        self.target_port = target_port
        self.flowing = threading.Event()
        self.flowing.set()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.socks = []
        self.threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(self.POLL_S)
        self.port = self.lsock.getsockname()[1]
        self._spawn(self._accept)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        with self.lock:
            self.threads.append(t)
        t.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                c.close()
                continue
            for x in (c, s):
                x.settimeout(10)  # a send to a peer that stopped reading: bounded
            with self.lock:
                self.socks += [c, s]
            self._spawn(self._pump, c, s)
            self._spawn(self._pump, s, c)

    def _pump(self, src, dst):
        try:
            while not self.stopping.is_set():
                if not self.flowing.wait(self.POLL_S):
                    continue  # partitioned: leave the bytes where they are
                if not select.select([src], [], [], self.POLL_S)[0]:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for x in (dst, src):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def partition(self):
        self.flowing.clear()

    def heal(self):
        self.flowing.set()

    def stop(self):
        self.stopping.set()
        self.flowing.set()
        self.lsock.close()
        with self.lock:
            socks, threads = list(self.socks), list(self.threads)
        for x in socks:
            try:
                x.close()
            except OSError:
                pass
        for t in threads:
            t.join(timeout=2)


class PgFaultTest(tf.FaultTest):
    """FaultTest with the store in a fresh database of the module's cluster."""
    _n = 0

    def setUp(self):
        super().setUp()
        PgFaultTest._n += 1
        name = f"vf_{os.getpid()}_{PgFaultTest._n}"
        psql(CLUSTER.url(), f"CREATE DATABASE {name}")
        self.pg_url = CLUSTER.url(name)  # direct, for counting
        self.db = self.pg_url             # what vigild opens (case 3: through the proxy)
        self.proxy = None
        self.locker = None

    def tearDown(self):
        if self.locker and self.locker.poll() is None:
            self.locker.kill()
            self.locker.wait(timeout=10)
        try:
            super().tearDown()  # vigild and the sim stop before the proxy goes
        finally:
            if self.proxy:
                self.proxy.stop()
            if CLUSTER.proc is None:  # a failed case 2 left it down
                CLUSTER.start_server()

    def store_rows(self):
        return [(dev, int(boot), int(n), int(nd), int(mx))
                for dev, boot, n, nd, mx in psql(self.pg_url, self.STORE_ROWS_SQL)]

    def healthz(self):
        return http(self.http_port, "GET", "/healthz")

    def store_writable(self, want):
        st, body = self.healthz()
        return (st == 200) == want and body["store_writable"] == want

    def finish(self, name, summary, fault_end, **extra):
        return super().finish(name, summary, fault_end, engine="postgresql", **extra)

    # -- (1) vigild killed with readings in its store queue -----------------
    def test_1_kill9_vigild_with_queue(self):
        self.start_broker()
        self.start_vigild()
        self.start_sim(22)
        self.sleep_until_sim(6)
        # Hold the writer for 3 s: EXCLUSIVE on reading_seqs blocks every
        # reading's insert (reads go on), so the queue fills in vigild's RAM.
        self.locker = subprocess.Popen(["psql", self.pg_url, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, text=True)
        self.locker.stdin.write("BEGIN;\nLOCK TABLE reading_seqs IN EXCLUSIVE MODE;\n")
        self.locker.stdin.flush()
        try:
            wait_for(lambda: metric(self.http_port, "vigil_store_queue_depth") >= DEVICES * RATE,
                     10, interval=0.2, what="readings queued behind the lock")
            time.sleep(2)
            queued = metric(self.http_port, "vigil_store_queue_depth")
            self.vigild.kill9()
            self.vigild = None
        finally:
            # The dead vigild's backend may still commit the batch it had
            # sent once the lock goes: harmless (idempotent), and done
            # before the restart rebuilds its record from the database.
            self.locker.communicate("ROLLBACK;\n", timeout=PSQL_TIMEOUT_S)
        time.sleep(2)
        t_restart = time.monotonic()
        self.start_vigild()
        healthy_s = round(time.monotonic() - t_restart, 2)
        live_s = self.live_ok_within()
        summary = self.wait_sim(60)
        f = self.finish("pg_kill9_vigild_with_queue", summary, t_restart,
                        queued_at_kill=int(queued), healthy_after_restart_s=healthy_s,
                        live_after_restart_s=live_s)
        self.assertGreater(f["readings_refilled"], 0, "nothing was lost at the kill: no test")

    # -- (2) PostgreSQL restarted --------------------------------------------
    def test_2_postgresql_restart(self):
        self.start_broker()
        self.start_vigild()
        self.start_sim(22)
        ws = WsCollector(self.http_port)  # connected (and authenticated) before the outage
        self.ws = ws
        self.sleep_until_sim(6)
        port = CLUSTER.port
        t_down = time.monotonic()
        CLUSTER.stop_server()  # fast shutdown: backends terminated, port closed
        stopped_s = round(time.monotonic() - t_down, 2)
        try:
            wait_for(lambda: self.store_writable(False), 10, interval=0.1,
                     what="/healthz: store not writable")
            unhealthy_s = round(time.monotonic() - t_down, 2)
            n0 = len(ws.of_type("sensor_data"))
            q0 = metric(self.http_port, "vigil_store_queue_depth")
            time.sleep(max(0.0, 5 - (time.monotonic() - t_down)))
            live_during = len(ws.of_type("sensor_data")) - n0
            queued = metric(self.http_port, "vigil_store_queue_depth")
            still_unhealthy = self.store_writable(False)
        finally:
            CLUSTER.start_server()
        t_up = time.monotonic()
        self.assertEqual(CLUSTER.port, port)
        self.assertTrue(still_unhealthy, "/healthz said writable while PostgreSQL was down")
        self.assertGreater(queued, q0, "the store queue did not hold the readings")
        self.assertGreater(live_during, DEVICES * RATE * 2,
                           "the live path stalled while PostgreSQL was down")
        wait_for(lambda: self.store_writable(True), 30, interval=0.1,
                 what="/healthz: store writable again")
        healthy_s = round(time.monotonic() - t_up, 2)
        live_s = self.live_ok_within()
        summary = self.wait_sim(60)
        self.finish("pg_postgresql_restart", summary, t_up, down_s=round(t_up - t_down, 1),
                    shutdown_s=stopped_s, unhealthy_after_s=unhealthy_s,
                    writable_after_start_s=healthy_s, queued_while_down=int(queued),
                    live_msgs_while_down=live_during, live_after_start_s=live_s)

    # -- (3) PostgreSQL unreachable (partition) for 10 s ---------------------
    def test_3_postgresql_unreachable_10s(self):
        self.proxy = BlackHoleProxy(CLUSTER.port)
        self.db = self.pg_url.replace(f":{CLUSTER.port}/", f":{self.proxy.port}/")
        self.assertNotEqual(self.db, self.pg_url)
        self.start_broker()
        self.start_vigild()
        self.start_sim(26)
        ws = WsCollector(self.http_port)
        self.ws = ws
        self.sleep_until_sim(6)
        stored0 = metric(self.http_port, "vigil_stored_total")
        n0 = len(ws.of_type("sensor_data"))
        self.proxy.partition()
        t_cut = time.monotonic()
        codes = set()
        while time.monotonic() - t_cut < PARTITION_S:
            codes.add(self.healthz()[0])  # must keep answering: the web thread never waits on PG
            time.sleep(0.5)
        stored_during = metric(self.http_port, "vigil_stored_total") - stored0
        queued = metric(self.http_port, "vigil_store_queue_depth")
        live_during = len(ws.of_type("sensor_data")) - n0
        self.proxy.heal()
        t_heal = time.monotonic()
        # A real partition: the writer stalled, readings queued behind it.
        self.assertGreater(queued, DEVICES * RATE * PARTITION_S / 2,
                           "the store queue did not fill: the partition was not felt")
        self.assertGreater(live_during, DEVICES * RATE * PARTITION_S / 2,
                           "the live path stalled during the partition")
        # Bounded recovery: the queue drains soon after the partition ends.
        wait_for(lambda: metric(self.http_port, "vigil_store_queue_depth") < DEVICES * RATE,
                 RECOVERY_BOUND_S, interval=0.2, what="the writer writing again")
        drained_s = round(time.monotonic() - t_heal, 2)
        wait_for(lambda: self.store_writable(True), 10, interval=0.2, what="/healthz writable")
        live_s = self.live_ok_within()
        summary = self.wait_sim(60)
        self.finish("pg_unreachable_10s", summary, t_heal, partition_s=PARTITION_S,
                    stored_during_partition=int(stored_during), queued_at_heal=int(queued),
                    healthz_codes_during=sorted(codes), live_msgs_during=live_during,
                    queue_drained_after_heal_s=drained_s, live_after_heal_s=live_s)


def load_tests(loader, tests, pattern):
    """Only this file's cases: PgFaultTest inherits FaultTest's SQLite ones."""
    names = sorted(n for n in vars(PgFaultTest) if n.startswith("test_"))
    return unittest.TestSuite(PgFaultTest(n) for n in names)


if __name__ == "__main__":
    unittest.main(verbosity=2)
