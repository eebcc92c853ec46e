"""The PostgreSQL password never leaves vigild: not in its log, not over HTTP.

Regression test for the rule in docs/SECURITY.md and the README's `--db` row
("password in a libpq password file or the URL; never logged"). The store
layer is covered by tests/store/test_store_pg.c (its log name, a wrong
password); this is the same promise end to end, through every path that
prints something about the database:

  1. the right password: start-up, a reading stored, /healthz, /metrics,
     then PostgreSQL stopped for a few seconds under vigild (the writer logs
     its connection errors) and started again, then a clean stop;
  2. a wrong password: vigild's start-up error;
  3. the CLI (`vigild token add` / `user add`) with the right and a wrong one;
  4. a password that needs percent-encoding in the URL (`@`, `:`, `/`, `%`),
     neither its raw nor its encoded form may show;
  5. the command line: a running vigild's /proc/PID/cmdline (what `ps`
     shows every local user) keeps the URL with the password masked.

Each case also checks that the path it watches really printed something
(the error, the outage), so a silent vigild cannot pass by saying nothing.
Against a private cluster (tests/support/pg_cluster.py); every wait bounded.
"""
import json
import os
import secrets
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from harness import (Mosquitto, Proc, TempDirTest, binary, free_port, main,  # noqa: E402
                     mosquitto_pub, wait_for, wait_port)
from pg_cluster import psql, shared as shared_cluster  # noqa: E402
from vigil_client import http, http_full, metric  # noqa: E402

CLUSTER = None
CLI_TIMEOUT_S = 30


def setUpModule():
    global CLUSTER
    CLUSTER = shared_cluster()  # destroyed at exit


def with_password(url, password):
    """The same URL with its password replaced (percent-encoded)."""
    u = urllib.parse.urlsplit(url)
    netloc = "%s:%s@%s:%d" % (u.username, urllib.parse.quote(password, safe=""), u.hostname, u.port)
    return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


class NoTokenProc(Proc):
    """Proc without the admin token Proc makes first: a URL that cannot log
    in cannot have one."""

    def __init__(self, args, log_path):
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True)


class PgSecretsTest(TempDirTest):
    _n = 0

    def setUp(self):
        super().setUp()
        PgSecretsTest._n += 1
        self.dbname = f"vs_{os.getpid()}_{PgSecretsTest._n}"
        psql(CLUSTER.url(), f"CREATE DATABASE {self.dbname}")
        self.url = CLUSTER.url(self.dbname)
        self.secrets = [CLUSTER.password]

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            if CLUSTER.proc is None:  # a failed outage case left it down
                CLUSTER.start_server()

    def assert_no_secret(self, text, where):
        for s in self.secrets:
            for form in {s, urllib.parse.quote(s, safe="")}:
                self.assertNotIn(form, text, f"the password appears in {where}:\n{text[-3000:]}")

    def start_broker(self):
        self.broker = self.track(Mosquitto(self.tmp).start())

    def vigild(self, url, wait_healthy=True):
        self.http_port = free_port()
        args = [binary("vigild"), "--broker", self.broker.url, "--listen",
                f"127.0.0.1:{self.http_port}", "--db", url, "--client-id", f"vs-{self._n}"]
        log = os.path.join(self.tmp, f"vigild-{self._n}.log")
        if wait_healthy:
            p = self.track(Proc(args, log))  # makes the admin token the HTTP helpers send
        else:
            p = self.track(NoTokenProc(args, log))
        if wait_healthy:
            wait_port(self.http_port)
            wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 20,
                     what="vigild healthy")
        return p

    def assert_cmdline_masked(self, p, url):
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace")
        self.assert_no_secret(cmdline, "/proc/PID/cmdline")
        u = urllib.parse.urlsplit(url)
        masked = "postgresql://%s:***@%s:%d%s" % (u.username, u.hostname, u.port, u.path)
        self.assertIn(masked, cmdline.split("\0"), cmdline)

    def cli(self, url, *args, stdin=None):
        r = subprocess.run([binary("vigild"), *args, "--db", url], input=stdin,
                           capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        return r.returncode, r.stdout + r.stderr

    def test_1_running_and_outage(self):
        self.start_broker()
        p = self.vigild(self.url)
        self.assert_cmdline_masked(p, self.url)
        mosquitto_pub(self.broker.port, "sensors/esp32/SEC_001/data",
                      '{"device_id":"SEC_001","object_temp":36.6,"heart_rate":72,"spo2":98,'
                      '"timestamp":1000,"seq":1,"boot":7}')
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= 1, 15, what="stored")
        for path in ("/healthz", "/metrics", "/api/devices"):
            st, body, _ = http_full(self.http_port, "GET", path)
            self.assertEqual(st, 200, path)
            self.assert_no_secret(body if isinstance(body, str) else json.dumps(body), path)
        # The writer loses its connection: PostgreSQL down, a reading queued, back up.
        CLUSTER.stop_server()
        try:
            mosquitto_pub(self.broker.port, "sensors/esp32/SEC_001/data",
                          '{"device_id":"SEC_001","object_temp":36.7,"heart_rate":73,"spo2":98,'
                          '"timestamp":2000,"seq":2,"boot":7}')
            wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] != 200, 20,
                     what="vigild sees the store down")
        finally:
            CLUSTER.start_server()
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= 2, 60,
                 interval=0.2, what="the queued reading stored after the outage")
        self.assertEqual(p.stop(), 0)
        out = p.output()
        self.assertRegex(out, r"(?i)postgres|store|connect", "vigild logged nothing about the outage")
        self.assert_no_secret(out, "vigild's log")

    def test_2_wrong_password_at_start(self):
        self.start_broker()
        wrong = "Wr0ng-" + secrets.token_hex(12)
        self.secrets.append(wrong)
        p = self.vigild(with_password(self.url, wrong), wait_healthy=False)
        # It either exits or stays up with the store unwritable; either way
        # it must have said why within a bounded time.
        wait_for(lambda: not p.alive() or "authentication" in p.output().lower(), 20,
                 what="vigild reports the failed login")
        p.stop()
        out = p.output()
        self.assertIn("authentication", out.lower(), out[-2000:])
        self.assert_no_secret(out, "vigild's log")

    def test_3_cli(self):
        rc, out = self.cli(self.url, "token", "add", "sec-test", "--role", "viewer")
        self.assertEqual(rc, 0, out)
        self.assert_no_secret(out, "`vigild token add` output")
        wrong = "Wr0ng-" + secrets.token_hex(12)
        self.secrets.append(wrong)
        rc, out = self.cli(with_password(self.url, wrong), "user", "add", "nurse9",
                           "--role", "clinician", stdin="correct horse battery\n")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("authentication", out.lower(), out)
        self.assert_no_secret(out, "`vigild user add` output")

    def test_4_password_needing_percent_encoding(self):
        pw = "p@ss:w/rd%" + secrets.token_hex(6)
        role = f"vsr_{os.getpid()}"
        esc = pw.replace("'", "''")
        psql(CLUSTER.url(), f"CREATE ROLE {role} LOGIN PASSWORD '{esc}'")
        psql(CLUSTER.url(), f"ALTER DATABASE {self.dbname} OWNER TO {role}")
        psql(CLUSTER.url(self.dbname), f"GRANT ALL ON SCHEMA public TO {role}")
        self.secrets.append(pw)
        u = urllib.parse.urlsplit(self.url)
        url = "postgresql://%s:%s@%s:%d%s" % (role, urllib.parse.quote(pw, safe=""),
                                             u.hostname, u.port, u.path)
        self.start_broker()
        p = self.vigild(url)
        self.assert_cmdline_masked(p, url)
        self.assertEqual(p.stop(), 0)
        self.assert_no_secret(p.output(), "vigild's log")
        # and the same password wrong by one character: the error path
        bad = pw + "x"
        self.secrets.append(bad)
        rc, out = self.cli(with_password(url, bad), "token", "add", "t2", "--role", "viewer")
        self.assertNotEqual(rc, 0, out)
        self.assert_no_secret(out, "`vigild token add` output")


if __name__ == "__main__":
    main()
