"""vigild over mqtts:// against a Mosquitto TLS listener with a CA made for
the test: the right CA connects and readings flow; a wrong CA is refused
(peer verification is on by default) without crashing."""
import os
import pwd
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mosquitto, Proc, TempDirTest, binary, free_port, wait_for, wait_port  # noqa: E402
from vigil_client import http, metric  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)


def make_server_cert(d, ca):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
            "server.key", "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)


class TlsTest(TempDirTest):
    def setUp(self):
        super().setUp()
        make_ca(self.tmp, "ca")
        make_ca(self.tmp, "other")
        make_server_cert(self.tmp, "ca")
        if os.geteuid() == 0:  # the broker drops to its own user: let it read its key
            try:
                pw = pwd.getpwnam("mosquitto")
                for f in os.listdir(self.tmp):
                    os.chown(os.path.join(self.tmp, f), pw.pw_uid, pw.pw_gid)
            except KeyError:
                pass
        self.broker = Mosquitto(self.tmp, extra=(
            f"cafile {self.tmp}/ca.pem\ncertfile {self.tmp}/server.pem\n"
            f"keyfile {self.tmp}/server.key\n")).start()
        self.track(self.broker)
        self.http_port = free_port()

    def start(self, ca):
        args = [binary("vigild"), "--broker", f"mqtts://127.0.0.1:{self.broker.port}",
                "--tls-ca", f"{self.tmp}/{ca}.pem", "--listen", f"127.0.0.1:{self.http_port}",
                "--db", f"{self.tmp}/v.db"]
        p = self.track(Proc(args, os.path.join(self.tmp, f"vigild-{ca}.log")))
        wait_port(self.http_port)
        return p

    def test_verified_tls_connection_carries_readings(self):
        self.start("ca")
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 15,
                 what="TLS connection")
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.broker.port),
                        "--cafile", f"{self.tmp}/ca.pem", "-q", "1", "-t",
                        "sensors/esp32/TLS_1/data", "-m", '{"heart_rate":66,"seq":1,"boot":1}'],
                       check=True, timeout=10)
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") == 1, 10, what="stored")

    def test_wrong_ca_is_refused(self):
        p = self.start("other")
        wait_for(lambda: "unreachable" in p.output(), 15, what="a clear failure")
        status, body = http(self.http_port, "GET", "/healthz")
        self.assertEqual((status, body["broker_connected"]), (503, False))
        self.assertTrue(p.alive())
        self.assertIn("certificate verify failed", p.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
