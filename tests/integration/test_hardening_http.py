"""vigild's own listener under hostile or careless use: HTTPS with a
certificate the test makes, refusing plain HTTP beyond loopback, security
headers on every response, a web root that serves regular files only,
slowloris, and the WebSocket client cap. Only loopback is ever connected to."""
import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (SOURCE, Mosquitto, Proc, TempDirTest, binary, free_port,  # noqa: E402
                     wait_for, wait_port)

CSP = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
       "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def request(port, path, method="GET", tls_ctx=None, timeout=10, source=None):
    """(status, headers as a lower-cased dict, body bytes)."""
    if tls_ctx:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls_ctx,
                                        source_address=source)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=source)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class HardeningTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = Mosquitto(self.tmp).start()
        self.track(self.broker)
        self.http_port = free_port()
        self.vigild = None

    def base_args(self, listen=None):
        return [binary("vigild"), "--broker", self.broker.url, "--listen",
                listen or f"127.0.0.1:{self.http_port}", "--db", os.path.join(self.tmp, "v.db"),
                "--client-id", f"vigild-hard-{os.getpid()}-{self.http_port}"]

    def start_vigild(self, *extra, tls_ctx=None, listen=None):
        self.vigild = self.track(Proc(self.base_args(listen) + list(extra),
                                      os.path.join(self.tmp, "vigild.log")))
        wait_port(self.http_port)

        def healthy():
            try:
                return request(self.http_port, "/healthz", tls_ctx=tls_ctx, timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(healthy, 10, what="vigild healthy")
        return self.vigild

    def make_cert(self):
        key, crt = os.path.join(self.tmp, "web.key"), os.path.join(self.tmp, "web.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", crt], check=True, capture_output=True, timeout=60)
        ctx = ssl.create_default_context(cafile=crt)
        return crt, key, ctx

    # -- 1. HTTPS on the listener, and no plain HTTP beyond loopback --------
    def test_https_listener_with_hsts_and_plain_http_fails(self):
        crt, key, ctx = self.make_cert()
        self.start_vigild("--http-tls-cert", crt, "--http-tls-key", key, tls_ctx=ctx)
        status, hdrs, body = request(self.http_port, "/healthz", tls_ctx=ctx)
        self.assertEqual(status, 200, body)
        self.assertEqual(hdrs.get("strict-transport-security"), "max-age=31536000")
        self.assertIn(b'"plain_http_exposed":false', body)
        # The certificate is verified: a context without our CA refuses it.
        with self.assertRaises(ssl.SSLError):
            request(self.http_port, "/healthz", tls_ctx=ssl.create_default_context())
        # Plain HTTP to the TLS port gets no HTTP answer.
        with self.assertRaises((http.client.HTTPException, OSError)):
            request(self.http_port, "/healthz", timeout=5)
        self.assertTrue(self.vigild.alive())
        self.assertIn("listening on https://", self.vigild.output())

    def test_plain_http_beyond_loopback_refused_without_the_flag(self):
        # vigild must refuse before it binds: 0.0.0.0 is never listened on here.
        port = free_port()
        r = subprocess.run(self.base_args(f"0.0.0.0:{port}"), capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("refusing plain HTTP on non-loopback address 0.0.0.0", r.stderr)
        self.assertIn("--allow-plain-http", r.stderr)
        # Half a TLS pair is refused as well.
        r = subprocess.run(self.base_args() + ["--http-tls-cert", "/nonexistent.pem"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("go together", r.stderr)

    def test_allow_plain_http_warns_and_healthz_says_so(self):
        self.start_vigild("--allow-plain-http", listen=f"0.0.0.0:{self.http_port}")
        status, hdrs, body = request(self.http_port, "/healthz")  # over loopback only
        self.assertEqual(status, 200)
        self.assertIn(b'"plain_http_exposed":true', body)
        self.assertNotIn("strict-transport-security", hdrs)
        self.assertIn("plain HTTP on non-loopback address 0.0.0.0", self.vigild.output())

    # -- 2. security headers; the web root serves regular files only --------
    def make_web_root(self):
        root = os.path.join(self.tmp, "www")
        os.makedirs(os.path.join(root, "assets"))
        os.makedirs(os.path.join(root, ".git"))
        files = {"index.html": "<!doctype html><p>app</p>", "assets/app.js": "console.log(1)",
                 ".env": "SECRET=1", ".git/config": "[core]", "assets/.hidden.js": "x"}
        for name, text in files.items():
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        secret = os.path.join(self.tmp, "outside.txt")
        with open(secret, "w") as f:
            f.write("outside the web root")
        os.symlink(secret, os.path.join(root, "link.txt"))
        os.symlink(os.path.join(root, "assets", "app.js"), os.path.join(root, "inner.js"))
        os.symlink(self.tmp, os.path.join(root, "linkdir"))
        return root

    def assert_security_headers(self, hdrs, what):
        for k, v in SECURITY_HEADERS.items():
            self.assertEqual(hdrs.get(k), v, f"{what}: {k}")

    def test_security_headers_and_regular_files_only(self):
        self.start_vigild("--web-root", self.make_web_root())
        for path in ("/healthz", "/metrics", "/api/devices", "/api/nope", "/api/devices/x/readings?from=a"):
            status, hdrs, _ = request(self.http_port, path)
            self.assert_security_headers(hdrs, f"{path} ({status})")
        status, hdrs, body = request(self.http_port, "/assets/app.js")
        self.assertEqual((status, body), (200, b"console.log(1)"))
        self.assert_security_headers(hdrs, "static file")
        status, hdrs, body = request(self.http_port, "/")
        self.assertEqual((status, body), (200, b"<!doctype html><p>app</p>"))
        self.assert_security_headers(hdrs, "index")
        for path in ("/.env", "/.git/config", "/assets/.hidden.js", "/link.txt", "/inner.js",
                     "/linkdir/outside.txt"):
            status, _, body = request(self.http_port, path)
            self.assertIn(status, (400, 404), f"{path} served: {body!r}")
            self.assertNotIn(b"outside the web root", body)
            self.assertNotIn(b"SECRET", body)
        # A client-side route (no dot) still falls back to the app.
        status, _, body = request(self.http_port, "/devices/ESP32_001")
        self.assertEqual((status, body), (200, b"<!doctype html><p>app</p>"))

    def test_built_dashboard_loads_under_the_csp(self):
        dist = os.path.join(SOURCE, "web", "dist")
        if not os.path.exists(os.path.join(dist, "index.html")):
            self.skipTest("web/dist not built (cd web && npm ci && npm run build)")
        self.start_vigild("--web-root", dist)
        status, hdrs, body = request(self.http_port, "/")
        self.assertEqual(status, 200)
        self.assert_security_headers(hdrs, "dashboard")
        html = body.decode()
        # Everything the page loads comes from 'self': no inline script.
        import re
        self.assertNotRegex(html, r"<script(?![^>]*\bsrc=)[^>]*>")
        assets = re.findall(r'(?:src|href)="\./(assets/[^"]+)"', html)
        self.assertTrue(assets, html)
        for a in assets:
            status, hdrs, _ = request(self.http_port, "/" + a)
            self.assertEqual(status, 200, a)
            self.assertEqual(hdrs.get("x-content-type-options"), "nosniff")

    # -- 3. slowloris --------------------------------------------------------
    def half_open(self, n, source="127.0.0.2"):
        """n connections from source that send half a request and stall."""
        socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((source, 0))  # 127.0.0.0/8 is all loopback
            s.settimeout(5)
            socks.append(s)
            try:
                s.connect(("127.0.0.1", self.http_port))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            except OSError:
                pass  # closed at once by the per-address limit: closed_by_peer says so
        return socks

    @staticmethod
    def closed_by_peer(s, timeout):
        s.settimeout(timeout)
        try:
            return s.recv(4096) == b""
        except (ConnectionResetError, BrokenPipeError, OSError) as e:
            return not isinstance(e, socket.timeout)
        except socket.timeout:
            return False

    def timed_healthz(self):
        t0 = time.monotonic()
        status = request(self.http_port, "/healthz", timeout=10)[0]
        return status, time.monotonic() - t0

    def test_half_open_connections_do_not_delay_others(self):
        self.start_vigild()
        socks = self.half_open(100)
        try:
            time.sleep(0.3)
            status, took = self.timed_healthz()
            self.assertEqual(status, 200)
            self.assertLess(took, 2.0, "a normal request waited behind half-open ones")
            # The header timeout closes every half-open connection.
            deadline = time.monotonic() + 20
            for s in socks:
                self.assertTrue(self.closed_by_peer(s, max(0.1, deadline - time.monotonic())),
                                "a half-open connection was kept open")
        finally:
            for s in socks:
                s.close()

    def test_per_address_limit_closes_the_excess_at_once(self):
        self.start_vigild("--max-conns-per-ip", "20")
        socks = self.half_open(100)
        try:
            t0 = time.monotonic()
            closed = sum(self.closed_by_peer(s, 0.05) for s in socks)
            self.assertGreaterEqual(closed, 80, "connections over the limit stay open")
            self.assertLess(time.monotonic() - t0, 4.0)
            status, took = self.timed_healthz()  # another address is not affected
            self.assertEqual(status, 200)
            self.assertLess(took, 2.0)
        finally:
            for s in socks:
                s.close()
        # Closed connections give their slots back.
        def admitted():
            try:  # refused (closed) until vigild has seen the old ones go
                return request(self.http_port, "/healthz", source=("127.0.0.2", 0), timeout=2)[0] == 200
            except (http.client.HTTPException, OSError):
                return False
        wait_for(admitted, 10, what="the address admitted again")
        _, _, body = request(self.http_port, "/metrics")
        self.assertRegex(body.decode(), r"vigil_http_conn_refused_total (8\d|9\d|1\d\d)\b")

    # -- 4. the WebSocket client cap -----------------------------------------
    def test_websocket_client_cap_answers_503(self):
        import asyncio
        import websockets
        self.start_vigild("--max-ws-clients", "2")

        import vigil_client
        hdrs = vigil_client.auth_headers()  # the admin token harness made for this database
        self.assertTrue(hdrs, "harness made no token")

        async def run():
            url = f"ws://127.0.0.1:{self.http_port}/ws"
            a = await websockets.connect(url, open_timeout=5, extra_headers=hdrs)
            b = await websockets.connect(url, open_timeout=5, extra_headers=hdrs)
            # The third upgrade is answered 503 (lws answers HTTP/1.0, which
            # the websockets library rejects as such: read it raw).
            s = socket.create_connection(("127.0.0.1", self.http_port), timeout=5)
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n" +
                      "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()).encode() + b"\r\n")
            head = s.recv(200)
            s.close()
            self.assertRegex(head, rb"^HTTP/1\.[01] 503 ")
            await a.close()
            await asyncio.sleep(0.3)
            c = await websockets.connect(url, open_timeout=5, extra_headers=hdrs)  # a slot is free again
            await c.close()
            await b.close()
        asyncio.run(asyncio.wait_for(run(), 30))
        _, _, body = request(self.http_port, "/metrics")
        self.assertIn("vigil_ws_refused_total 1", body.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
