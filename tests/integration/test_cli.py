"""vigild's command-line contract: --help, --version, config file, VIGIL_*
environment, precedence, and clear errors for bad options."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mosquitto, Proc, TempDirTest, binary, free_port, wait_for, wait_port  # noqa: E402
from vigil_client import http  # noqa: E402

OPTIONS = ["broker", "listen", "db", "web-root", "config", "mqtt-version", "client-id",
           "keepalive", "session-expiry", "username", "password-file", "tls-ca", "tls-cert",
           "tls-key", "tls-insecure", "max-payload", "max-devices", "new-devices-per-s",
           "new-devices-burst",
           "store-queue", "retention", "ws-queue", "session-idle", "session-max", "log-level"]


def run(args, env=None, timeout=10):
    e = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    e.update(env or {})
    return subprocess.run([binary("vigild"), *args], capture_output=True, text=True,
                          timeout=timeout, env=e)


class CliTest(TempDirTest):
    def test_help_documents_every_option(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        for opt in OPTIONS:
            self.assertIn(f"--{opt}", r.stdout)
            self.assertIn("VIGIL_" + opt.upper().replace("-", "_"), r.stdout)

    def test_version(self):
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^vigild \d+\.\d+\.\d+")

    def test_bad_options_give_one_clear_message(self):
        cases = [
            (["--broker", "http://x"], "--broker"),
            (["--listen", "nowhere"], "--listen"),
            (["--keepalive", "1"], "keepalive must be an integer in 5..3600"),
            (["--keepalive", "ten"], "keepalive"),
            (["--mqtt-version", "4"], "--mqtt-version"),
            (["--retention", "7x"], "retention must be a duration"),
            (["--log-level", "loud"], "--log-level"),
            (["--tls-cert", "/nonexistent"], "--tls-cert and --tls-key go together"),
            (["--password-file", "/nonexistent/pw"], "cannot read password-file"),
            (["--config", "/nonexistent.conf"], "cannot open config file"),
            (["--no-such-option"], "unrecognized option"),
            (["stray"], "unexpected argument"),
        ]
        for args, msg in cases:
            r = run(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(msg, r.stderr, args)
            self.assertNotIn("Segmentation", r.stderr)
        r = run([], env={"VIGIL_WS_QUEUE": "3"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("VIGIL_WS_QUEUE", r.stderr)

    def test_option_names_match_exactly_and_secrets_are_not_echoed(self):
        secret = "hunter2-s3cret"
        # getopt_long took "--password" as --password-file and printed the value.
        for args in (["--password", secret], [f"--password={secret}"],
                     ["--password-f", secret], ["--pass", secret]):
            r = run(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("unrecognized option", r.stderr, args)
            self.assertNotIn(secret, r.stderr + r.stdout, args)
        # A secret given to the right option by mistake is not echoed either.
        r = run(["--password-file", secret])
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read password-file", r.stderr)
        self.assertNotIn(secret, r.stderr)
        for args in (["--db"], ["--keep", "30"], ["--retent=7d"], ["-x"]):
            r = run(args)
            self.assertEqual(r.returncode, 2, args)
        self.assertIn("requires an argument", run(["--db"]).stderr)
        # Exact names still take both spellings; booleans take a bare flag.
        r = run(["--keepalive=1"])
        self.assertIn("keepalive must be an integer in 5..3600", r.stderr)
        r = run(["--tls-insecure", "--keepalive", "1"])
        self.assertIn("keepalive must be an integer", r.stderr)
        r = run(["--max-devices", "0"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("max-devices must be an integer", r.stderr)

    def test_config_file_errors_name_the_line(self):
        conf = os.path.join(self.tmp, "c.conf")
        with open(conf, "w") as f:
            f.write("# ok\n\nkeepalive = 30\npassword-f = x\n")
        r = run(["--config", conf])
        self.assertEqual(r.returncode, 2)
        self.assertIn("c.conf:4: unknown key 'password-f'", r.stderr)
        with open(conf, "w") as f:
            f.write("keepalive = 30\n" + "x" * 5000 + " = 1\n")
        r = run(["--config", conf])
        self.assertEqual(r.returncode, 2)
        self.assertIn("c.conf:2: line too long", r.stderr)

    def test_config_file_env_and_argv_precedence(self):
        broker = Mosquitto(self.tmp).start()
        self.track(broker)
        p_file, p_env, p_argv = free_port(), free_port(), free_port()
        conf = os.path.join(self.tmp, "vigild.conf")
        with open(conf, "w") as f:
            f.write(f"# comment\nbroker = {broker.url}\nlisten = 127.0.0.1:{p_file}\n"
                    f"db = {self.tmp}/file.db\nclient-id = cli-{p_file}\n")
        bad = os.path.join(self.tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("listen 127.0.0.1:1\n")
        r = run(["--config", bad])
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.conf:1: expected 'key = value'", r.stderr)

        for args, env, port in [
            (["--config", conf], {}, p_file),
            (["--config", conf], {"VIGIL_LISTEN": f"127.0.0.1:{p_env}"}, p_env),
            (["--config", conf, "--listen", f"127.0.0.1:{p_argv}"],
             {"VIGIL_LISTEN": f"127.0.0.1:{p_env}"}, p_argv),
            ([], {"VIGIL_CONFIG": conf}, p_file),
        ]:
            e = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
            e.update(env)
            proc = Proc([binary("vigild"), *args], os.path.join(self.tmp, f"v{port}.log"), env=e)
            try:
                wait_port(port)
                wait_for(lambda: http(port, "GET", "/healthz")[0] == 200, 10, what="healthy")
            finally:
                self.assertEqual(proc.stop(), 0)

    def test_listen_port_in_use(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            r = run(["--listen", f"127.0.0.1:{port}", "--db", f"{self.tmp}/x.db",
                     "--broker", f"mqtt://127.0.0.1:{free_port()}"])
        finally:
            s.close()
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
