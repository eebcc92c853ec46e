#!/usr/bin/python3
"""pg_cluster — a private, throw-away PostgreSQL 15 cluster for tests.

initdb into a temp dir (scram-sha-256, superuser "vigil", a generated
password kept in a 0600 file), then `postgres` on 127.0.0.1 and a free port,
its socket in the same dir; fsync off (-F): test data only. As root (CI),
initdb and postgres refuse to run, so both run as `nobody` with the dir
chowned to it.

Use from Python:   with PgCluster() as pg: pg.url("mydb") ...
Use from anything: pg_cluster.py run -- CMD ARGS...   runs CMD with
    VIGIL_TEST_PG_URL  postgresql://vigil:PASSWORD@127.0.0.1:PORT/postgres
    VIGIL_TEST_PG_CTL  "pg_cluster.py ctl DIR" — append stop|start to take the
                       server down / bring it back (same port and data)
and exits with CMD's status, stopping the cluster and removing the dir.
Processes are ended by PID only; every wait is bounded.
"""
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = "/usr/lib/postgresql/15/bin"
START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 15


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(url, sql, timeout=30):
    """Rows of one statement (tab-separated fields), via Debian's psql."""
    r = subprocess.run(["psql", url, "-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                        "-c", sql], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


_SHARED = None


def shared():
    """One cluster for the whole test process: started on first use,
    destroyed when the process exits (for a test module's setUpModule)."""
    global _SHARED
    if _SHARED is None:
        import atexit
        _SHARED = PgCluster().start()
        atexit.register(_SHARED.destroy)
    return _SHARED


def _as_user():
    """Keyword args for subprocess that drop root to nobody (else nothing)."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("nobody")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


class PgCluster:
    def __init__(self, root=None, server_args=()):
        self.root = root  # None: create one in start()
        self.proc = None
        self.server_args = tuple(server_args)  # after ours: "-c fsync=on" undoes -F

    # ---- state kept in the dir, so `ctl DIR stop|start` works from another process
    def _state_path(self):
        return os.path.join(self.root, "cluster.json")

    def _save(self):
        with open(self._state_path(), "w") as f:
            json.dump({"port": self.port, "password": self.password}, f)

    def _load(self):
        with open(self._state_path()) as f:
            st = json.load(f)
        self.port, self.password = st["port"], st["password"]

    @property
    def data(self):
        return os.path.join(self.root, "data")

    def url(self, dbname="postgres"):
        return "postgresql://vigil:%s@127.0.0.1:%d/%s" % (self.password, self.port, dbname)

    def init(self):
        self.root = tempfile.mkdtemp(prefix="vigil-pg-")
        os.chmod(self.root, 0o700)
        self.password = secrets.token_hex(16)
        self.port = _free_port()
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        os.chmod(pwfile, 0o600)
        kw = _as_user()
        if kw:
            for p in (self.root, pwfile):
                os.chown(p, kw["user"], kw["group"])
        subprocess.run([BIN + "/initdb", "-D", self.data, "-U", "vigil", "-A", "scram-sha-256",
                        "--pwfile", pwfile, "--no-sync", "-E", "UTF8", "--locale", "C"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60, **kw)
        os.unlink(pwfile)
        self._save()

    def start_server(self):
        log = open(os.path.join(self.root, "server.log"), "ab")
        kw = _as_user()
        if kw:
            os.chown(log.name, kw["user"], kw["group"])
        self.proc = subprocess.Popen(
            [BIN + "/postgres", "-D", self.data, "-k", self.root, "-p", str(self.port), "-F",
             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100",
             "-c", "shared_buffers=32MB", "-c", "max_wal_size=256MB", *self.server_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + self.server_log()[-2000:])
            r = subprocess.run([BIN + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                               timeout=10)
            if r.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres not ready after %d s" % START_TIMEOUT_S)

    def server_log(self):
        try:
            with open(os.path.join(self.root, "server.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def stop_server(self):
        """Fast shutdown (SIGINT) of the postmaster by PID; waits for it."""
        if self.proc and self.proc.poll() is not None:
            self.proc = None  # ours exited; another helper may have started a new one
        pid = self.proc.pid if self.proc else self._postmaster_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        # Done when the postmaster has removed its pid file (its last act on
        # a clean shutdown) — a zombie child of another process still
        # answers kill(pid, 0), so that alone is no test.
        pidfile = os.path.join(self.data, "postmaster.pid")
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                break
            if not os.path.exists(pidfile):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        self.proc = None

    def start(self):
        self.init()
        self.start_server()
        return self

    def destroy(self):
        try:
            self.stop_server()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()


def main(argv):
    if len(argv) >= 3 and argv[1] == "run" and argv[2] == "--":
        pg = PgCluster().start()
        try:
            env = dict(os.environ)
            env["VIGIL_TEST_PG_URL"] = pg.url()
            env["VIGIL_TEST_PG_CTL"] = "%s %s ctl %s" % (sys.executable, os.path.abspath(__file__), pg.root)
            rc = subprocess.run(argv[3:], env=env).returncode
            if rc != 0:
                sys.stderr.write("---- postgres log (tail) ----\n" + pg.server_log()[-3000:])
            return rc
        finally:
            pg.destroy()
    if len(argv) == 4 and argv[1] == "ctl" and argv[3] in ("stop", "start"):
        pg = PgCluster(argv[2])
        pg._load()
        if argv[3] == "stop":
            pg.stop_server()
        else:
            pg.start_server()
            pg.proc = None  # keep running after this helper exits
        return 0
    sys.stderr.write("usage: pg_cluster.py run -- CMD... | ctl DIR stop|start\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
