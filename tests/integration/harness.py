"""Test harness for Vigil's end-to-end tests: real Mosquitto, real binaries.

Each test starts what it needs on free loopback ports and stops only the
processes it started, by PID. Everything is bounded in time.
Run with /usr/bin/python3 (Debian's, with python3-paho-mqtt).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = os.environ.get("VIGIL_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SOURCE = os.environ.get("VIGIL_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def binary(name):
    for sub in ("server", "sim", "bench", "tests"):
        p = os.path.join(BUILD, sub, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{name} not built under {BUILD}")


_TOKENS = {}  # database path -> the admin token made for it


def admin_token(db, env=None):
    """An admin API token for the database (made once with `vigild token add`,
    which creates and migrates the database if needed). Also becomes the
    token vigil_client's helpers send."""
    import vigil_client
    key = os.path.abspath(db)
    if key not in _TOKENS:
        r = subprocess.run([binary("vigild"), "token", "add", "harness", "--role", "admin",
                            "--db", db], capture_output=True, text=True, timeout=30, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"vigild token add failed: {r.stderr}")
        _TOKENS[key] = r.stdout.strip()
    vigil_client.TOKEN = _TOKENS[key]
    return _TOKENS[key]


def add_user(db, name, role, password):
    """Creates a user with the CLI (password on stdin)."""
    r = subprocess.run([binary("vigild"), "user", "add", name, "--role", role, "--db", db],
                       input=password + "\n", capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"vigild user add failed: {r.stderr}")


def _vigild_db(args, env):
    """The database a vigild command line will open, or None for the CLI."""
    if not args or os.path.basename(str(args[0])) != "vigild" or \
            (len(args) > 1 and args[1] in ("user", "token")):
        return None
    if "--help" in args or "--version" in args:
        return None
    for i, a in enumerate(args[:-1]):
        if a == "--db":
            return args[i + 1]
    e = env if env is not None else os.environ
    if e.get("VIGIL_DB"):
        return e["VIGIL_DB"]
    cfg = e.get("VIGIL_CONFIG")
    for i, a in enumerate(args[:-1]):
        if a == "--config":
            cfg = args[i + 1]
    if cfg and os.path.exists(cfg):
        with open(cfg) as f:
            for line in f:
                k, _, v = line.partition("=")
                if k.strip() == "db":
                    return v.strip()
    return "vigil.db"


class Proc:
    """A child process we started; stopped by PID, logs kept in a file.
    Starting vigild first gives its database an admin token (admin_token),
    which the HTTP and WebSocket helpers then send."""

    def __init__(self, args, log_path, env=None):
        db = _vigild_db(args, env)
        if db:
            admin_token(db, env)
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=env, start_new_session=True)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        self.log.close()
        return self.p.returncode

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def output(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class Mosquitto:
    """A broker of our own on a free loopback port, with the project's config
    (deploy/mosquitto/vigil.conf) plus the test's listener and persistence."""

    def __init__(self, workdir, port=None, persistence=True, extra=""):
        self.workdir = workdir
        self.port = port or free_port()
        self.persistence = persistence
        self.extra = extra
        self.proc = None

    def conf_text(self):
        base = os.path.join(SOURCE, "deploy", "mosquitto", "vigil.conf")
        lines = []
        if os.path.exists(base):
            with open(base) as f:
                for line in f:
                    s = line.strip()
                    # The test sets its own listener, persistence and log target.
                    if s.startswith(("listener", "persistence", "persistence_location",
                                     "log_dest", "pid_file", "port")):
                        continue
                    lines.append(line.rstrip("\n"))
        lines += [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "log_dest stdout",
            self.extra,
        ]
        return "\n".join(lines) + "\n"

    def start(self):
        # Run as root, Mosquitto drops to its own user: give it the folder.
        if os.geteuid() == 0:
            import pwd
            try:
                pw = pwd.getpwnam("mosquitto")
                os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
            except KeyError:
                pass
        conf = os.path.join(self.workdir, f"mosquitto-{self.port}.conf")
        with open(conf, "w") as f:
            f.write(self.conf_text())
        self.proc = Proc(["mosquitto", "-c", conf],
                         os.path.join(self.workdir, f"mosquitto-{self.port}.log"))
        wait_port(self.port)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc:
            self.proc.stop(sig)
            self.proc = None

    @property
    def url(self):
        return f"mqtt://127.0.0.1:{self.port}"


def mosquitto_pub(port, topic, payload, qos=1, retain=False, extra=()):
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
            "-q", str(qos)]
    if retain:
        args.append("-r")
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload)
    if isinstance(payload, bytes):
        args += ["-s"]
        subprocess.run(args + list(extra), input=payload, check=True, timeout=10)
    else:
        args += ["-m", payload]
        subprocess.run(args + list(extra), check=True, timeout=10)


class TempDirTest(unittest.TestCase):
    """Gives each test a temporary directory (kept when VIGIL_KEEP_TMP is set)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vigil-it-")
        self._cleanups_procs = []

    def track(self, proc):
        self._cleanups_procs.append(proc)
        return proc

    def tearDown(self):
        for p in reversed(self._cleanups_procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
        if os.environ.get("VIGIL_KEEP_TMP"):
            sys.stderr.write(f"kept {self.tmp}\n")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    unittest.main(verbosity=2)


# ---- The production broker config (deploy/mosquitto/vigil-tls.conf) ----

def provision(ca_dir, *args):
    """Runs scripts/provision-device.sh against the CA in ca_dir."""
    tool = os.path.join(SOURCE, "scripts", "provision-device.sh")
    if args[:2] == ("ca", "init"):
        cmd = ["bash", tool, "ca", "init", ca_dir]
    else:
        cmd = ["bash", tool, "--ca", ca_dir, *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)


def production_broker_conf(workdir, ca_dir, port):
    """deploy/mosquitto/vigil-tls.conf as shipped, with only its file paths,
    port and log target rewritten for a test. Every rewritten line must be
    found, so a change to the shipped file cannot silently test another."""
    with open(os.path.join(SOURCE, "deploy", "mosquitto", "vigil-tls.conf")) as f:
        text = f.read()
    # The broker reads its ACL after dropping to its own user, which may not
    # reach the checkout (a clone in a 0700 mktemp dir): a copy in workdir.
    acl = os.path.join(workdir, "vigil.acl")
    shutil.copyfile(os.path.join(SOURCE, "deploy", "mosquitto", "vigil.acl"), acl)
    subst = {
        "listener 8883": f"listener {port} 127.0.0.1",
        "cafile /etc/mosquitto/certs/ca.pem": f"cafile {ca_dir}/ca.pem",
        "certfile /etc/mosquitto/certs/broker.crt": f"certfile {ca_dir}/broker/broker.crt",
        "keyfile /etc/mosquitto/certs/broker.key": f"keyfile {ca_dir}/broker/broker.key",
        "crlfile /etc/mosquitto/certs/crl.pem": f"crlfile {ca_dir}/crl.pem",
        "acl_file /etc/mosquitto/vigil.acl":
            f"acl_file {acl}",
        "persistence_location /var/lib/mosquitto/": f"persistence_location {workdir}/",
        "log_dest syslog": "log_dest stdout",
    }
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s in subst:
            out.append(subst.pop(s))
        else:
            out.append(line)
    if subst:
        raise AssertionError(f"vigil-tls.conf no longer has: {sorted(subst)}")
    return "\n".join(out) + "\n"


def give_to_mosquitto(*paths):
    """Run as root, Mosquitto drops to its own user: let it read and write these."""
    if os.geteuid() != 0:
        return
    import pwd
    try:
        pw = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for p in paths:
        for root, dirs, files in os.walk(p):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, pw.pw_uid, pw.pw_gid)


class ConfiguredMosquitto(Mosquitto):
    """A broker run from a complete config text (no vigil.conf underneath)."""

    def __init__(self, workdir, conf, port):
        super().__init__(workdir, port=port)
        self.conf = conf

    def conf_text(self):
        return self.conf

    @property
    def url(self):
        return f"mqtts://127.0.0.1:{self.port}"
