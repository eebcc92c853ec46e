"""A PostgreSQL backend that is alive but never answers is bounded.

The case keepalives, tcp_user_timeout and statement_timeout cannot see: the
server's kernel acknowledges every byte, but the backend process serving
vigild is stuck (here: SIGSTOP, as a hung storage or a kernel bug would
leave it). vigild waits for each answer at most the session's
statement_timeout + 5 s (store_pg_int.h STORE_PG_ANSWER_MARGIN_MS), then drops
the connection as a lost one and goes on with a new one.

Against a private cluster (tests/support/pg_cluster.py); the URL sets
statement_timeout = 3 s so the deadline is 8 s and the file stays ~40 s:

  1. the writer's backend (application_name vigild-writer in
     pg_stat_activity) stopped, readings published: the writer gives up
     within the bound (vigil_store_write_errors_total counts it, one log
     line names it and the store not writable — /healthz says so until the
     retry, ~0.2 s later here), writes again on a new connection,
     and every reading is stored exactly once (also after SIGCONT, when the
     stopped backend wakes to its buffered, uncommitted batch);
  2. the read connection's backend (vigild-reader) stopped: a history read
     is answered 500 when the query worker gives up at the deadline (one
     log line) — not cut by the web layer's 5 s timeout_secs meanwhile
     (web.c holds a request waiting for the worker up to WEB_QUERY_WAIT_S) —
     and the next read, on a new connection, answers 200 with every reading. Without the deadline the
     worker would stay stuck and every later read fail.

The stopped backend is a child of the postmaster this file started; it is
signalled by PID and always continued (finally). Every wait is bounded, so
without the deadline this fails by timing out, not by hanging.
"""
import http.client as http_client
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from harness import (Mosquitto, Proc, TempDirTest, binary, free_port,  # noqa: E402
                     mosquitto_pub, wait_for, wait_port)
from pg_cluster import psql, shared as shared_cluster  # noqa: E402
from vigil_client import http, metric  # noqa: E402

CLUSTER = None
STATEMENT_TIMEOUT_MS = 3000
ANSWER_MS = STATEMENT_TIMEOUT_MS + 5000  # vigild's deadline for this URL
SLACK_S = 7  # scheduling on 2 shared cores, ASan, the retry backoff
DEVICE = "HANG_001"


def setUpModule():
    global CLUSTER
    CLUSTER = shared_cluster()  # destroyed at exit


class Stopped:
    """A backend stopped by PID for the with-block, always continued."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


class PgHangTest(TempDirTest):
    _n = 0

    def setUp(self):
        super().setUp()
        PgHangTest._n += 1
        self.dbname = f"vh_{os.getpid()}_{PgHangTest._n}"
        psql(CLUSTER.url(), f"CREATE DATABASE {self.dbname}")
        self.direct = CLUSTER.url(self.dbname)  # for counting and pg_stat_activity
        self.url = self.direct + "?options=-c%20statement_timeout%3D" + str(STATEMENT_TIMEOUT_MS)
        self.seq = 0
        self.broker = self.track(Mosquitto(self.tmp).start())
        self.http_port = free_port()
        args = [binary("vigild"), "--broker", self.broker.url, "--listen",
                f"127.0.0.1:{self.http_port}", "--db", self.url, "--client-id", f"vh-{self._n}"]
        self.vigild = self.track(Proc(args, os.path.join(self.tmp, "vigild.log")))
        wait_port(self.http_port)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 20,
                 what="vigild healthy")

    def publish(self, n):
        for _ in range(n):
            self.seq += 1
            mosquitto_pub(self.broker.port, f"sensors/esp32/{DEVICE}/data",
                          '{"device_id":"%s","object_temp":36.6,"heart_rate":72,"spo2":98,'
                          '"timestamp":%d,"seq":%d,"boot":7}' % (DEVICE, 1000 * self.seq, self.seq))

    def stored(self):
        return metric(self.http_port, "vigil_stored_total")

    def backend(self, app, other_than=0):
        rows = psql(self.direct, "SELECT pid FROM pg_stat_activity WHERE datname = "
                                 f"'{self.dbname}' AND application_name = '{app}' "
                                 f"AND pid <> {other_than}")
        self.assertEqual(len(rows), 1, f"one {app} backend expected: {rows}")
        return int(rows[0][0])

    def writable(self):
        st, body = http(self.http_port, "GET", "/healthz")
        return st == 200 and body["store_writable"]

    def assert_exactly_once(self):
        rows = psql(self.direct, "SELECT count(*), count(DISTINCT (r.boot, r.seq)) FROM readings r "
                                 f"JOIN devices d ON d.key = r.device WHERE d.id = '{DEVICE}'")
        self.assertEqual([int(x) for x in rows[0]], [self.seq, self.seq],
                         "every reading stored exactly once")

    def test_1_writer_backend_stopped(self):
        self.publish(5)
        wait_for(lambda: self.stored() >= 5, 15, what="first readings stored")
        pid = self.backend("vigild-writer")
        errors0 = metric(self.http_port, "vigil_store_write_errors_total")
        with Stopped(pid):
            t0 = time.monotonic()
            self.publish(10)
            # The failure counter, not /healthz: the retry on a new
            # connection succeeds within the first backoff (~0.2 s), too
            # short a not-writable window to poll for reliably.
            wait_for(lambda: metric(self.http_port, "vigil_store_write_errors_total") > errors0,
                     ANSWER_MS / 1000 + SLACK_S, interval=0.1,
                     what="a failed write counted after the writer's deadline")
            gave_up_s = time.monotonic() - t0
            # The deadline, not some other failure, ended the wait.
            self.assertGreater(gave_up_s, ANSWER_MS / 1000 - 2, "gave up before the deadline")
            log = self.vigild.output()
            self.assertIn(f"no answer from the server in {ANSWER_MS} ms", log)
            self.assertIn("database not writable", log)  # what /healthz said meanwhile
            # A new connection: the stopped backend took no lock (it never
            # ran the batch), so the retry goes through while it sleeps.
            wait_for(lambda: self.stored() >= 15, 30, interval=0.2,
                     what="the batch written again on a new connection")
            self.backend("vigild-writer", other_than=pid)  # its new connection
        # Continued, the old backend finds its client gone and rolls back.
        wait_for(lambda: not psql(self.direct, f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}"),
                 15, interval=0.2, what="the stopped backend gone after SIGCONT")
        self.publish(3)
        wait_for(lambda: self.stored() >= 18 and self.writable(), 15, interval=0.2,
                 what="writes after the hang")
        self.assert_exactly_once()
        log = self.vigild.output()
        self.assertEqual(log.count("no answer from the server"), 1, log[-3000:])
        sys.stderr.write(f"writer gave up after {gave_up_s:.1f} s (deadline {ANSWER_MS} ms)\n")

    def test_2_history_read_backend_stopped(self):
        self.publish(5)
        wait_for(lambda: self.stored() >= 5, 15, what="readings stored")
        path = f"/api/devices/{DEVICE}/readings?from=0&to=4102444800000"  # to 2100
        st, body = http(self.http_port, "GET", path)
        self.assertEqual((st, body["total"]), (200, 5))
        pid = self.backend("vigild-reader")
        with Stopped(pid):
            t0 = time.monotonic()
            try:
                hung, err = http(self.http_port, "GET", path, timeout=ANSWER_MS / 1000 + SLACK_S)
            except (ConnectionError, http_client.HTTPException) as e:
                hung, err = type(e).__name__, None  # cut instead of answered: the defect
            took_s = time.monotonic() - t0
            # Answered with the store's error once it gives up, not cut by
            # the web layer's 5 s timeout_secs while the worker waits.
            self.assertEqual(hung, 500, f"a read on a stopped backend gets an error answer: {err}")
            self.assertLess(took_s, ANSWER_MS / 1000 + SLACK_S)
            # The query worker itself is freed at the deadline, not never.
            wait_for(lambda: "no answer from the server" in self.vigild.output(),
                     max(1.0, ANSWER_MS / 1000 + SLACK_S - took_s), interval=0.2,
                     what="the read's deadline logged")
            freed_s = time.monotonic() - t0
            self.assertGreater(freed_s, ANSWER_MS / 1000 - 2, "gave up before the deadline")
            st, body = http(self.http_port, "GET", path, timeout=ANSWER_MS / 1000 + SLACK_S)
            self.assertEqual(st, 200, "the next read, on a new connection")
            self.assertEqual(body["total"], 5)
            self.backend("vigild-reader", other_than=pid)
        log = self.vigild.output()
        self.assertEqual(log.count("no answer from the server"), 1, log[-3000:])
        sys.stderr.write(f"history read: {hung} after {took_s:.1f} s, worker freed after "
                         f"{freed_s:.1f} s (deadline {ANSWER_MS} ms)\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
