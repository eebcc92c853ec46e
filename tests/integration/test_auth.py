"""Access control end to end: real vigild, real Mosquitto, real SQLite.
Logins, roles, CSRF, Origin, throttling, tokens and their revocation,
session expiry, the audit trail, no secret in clear, and the CLI."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import vigil_client  # noqa: E402
from harness import (Mosquitto, Proc, TempDirTest, add_user, admin_token, binary,  # noqa: E402
                     free_port, mosquitto_pub, wait_for, wait_port)
from vigil_client import StalledWsClient, WsCollector, http, http_full  # noqa: E402

PASSWORDS = {"vera": "viewer-pass-1", "clara": "clinician-pass-2", "theo": "technician-pass-3",
             "ada": "admin-pass-4-secret"}
ROLES = {"vera": "viewer", "clara": "clinician", "theo": "technician", "ada": "admin"}


def cli(*args, stdin=None):
    return subprocess.run([binary("vigild"), *args], input=stdin, capture_output=True, text=True,
                          timeout=30)


class Session:
    """A cookie session from POST /api/session."""

    def __init__(self, port, user, password):
        self.port = port
        st, body, hdrs = http_full(port, "POST", "/api/session",
                                   {"username": user, "password": password}, token=None)
        self.status, self.body = st, body
        self.cookie = None
        if st == 200:
            sc = hdrs.get("Set-Cookie", "")
            self.set_cookie = sc
            self.cookie = sc.split(";", 1)[0]
            self.csrf = body["csrf"]

    def req(self, method, path, body=None, csrf=True, headers=None):
        h = {"Cookie": self.cookie}
        if csrf:
            h["X-CSRF-Token"] = self.csrf
        h.update(headers or {})
        return http(self.port, method, path, body, token=None, headers=h)


class AuthTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = self.track(Mosquitto(self.tmp).start())
        self.http_port = free_port()
        self.db = os.path.join(self.tmp, "vigil.db")
        for u, pw in PASSWORDS.items():
            add_user(self.db, u, ROLES[u], pw)
        self.vigild = None

    def start_vigild(self, *extra):
        self.log = os.path.join(self.tmp, "vigild.log")
        self.vigild = self.track(Proc(
            [binary("vigild"), "--broker", self.broker.url, "--listen", f"127.0.0.1:{self.http_port}",
             "--db", self.db, "--client-id", f"vigild-auth-{os.getpid()}-{self.http_port}", *extra],
            self.log))
        wait_port(self.http_port)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 10, what="vigild healthy")
        self.token = vigil_client.TOKEN
        return self.vigild

    def device(self, dev="ESP32_001"):
        mosquitto_pub(self.broker.port, f"sensors/esp32/{dev}/data", {"heart_rate": 70, "seq": 1, "boot": 1})
        wait_for(lambda: http(self.http_port, "GET", f"/api/devices/{dev}")[0] == 200, 5, what="device")

    def audit(self, **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        st, body = http(self.http_port, "GET", f"/api/audit?{qs}")
        self.assertEqual(st, 200, body)
        return body["entries"]

    def wait_audit(self, action, outcome, target=None, timeout=5):
        def find():
            for e in self.audit(limit=1000):
                if e["action"] == action and e["outcome"] == outcome and \
                        (target is None or e["target"] == target):
                    return e
            return None
        return wait_for(find, timeout, interval=0.1, what=f"audit {action}/{outcome}")

    # -- no credentials: 401 everywhere, /ws refused at the upgrade ------------
    def test_everything_needs_credentials(self):
        self.start_vigild()
        self.device()
        p = self.http_port
        routes = [("GET", "/api/devices"), ("GET", "/api/devices/ESP32_001"),
                  ("GET", "/api/devices/ESP32_001/readings"), ("GET", "/api/devices/ESP32_001/completeness"),
                  ("POST", "/api/devices/ESP32_001/commands"), ("PUT", "/api/devices/ESP32_001/config"),
                  ("GET", "/api/users"), ("POST", "/api/users"), ("PUT", "/api/users/vera"),
                  ("DELETE", "/api/users/vera"), ("GET", "/api/tokens"), ("POST", "/api/tokens"),
                  ("DELETE", "/api/tokens/abc"), ("GET", "/api/audit"), ("GET", "/api/session"),
                  ("DELETE", "/api/session"), ("GET", "/api/nothing"), ("GET", "/api")]
        for method, path in routes:
            body = {"cmd": "ping"} if method in ("POST", "PUT") else None
            st, b = http(p, method, path, body, token=None)
            self.assertEqual(st, 401, (method, path, b))
            self.assertEqual(b, {"error": "authentication required"}, (method, path))
            # A wrong or malformed token is no better.
            for bad in ("vgt_" + "A" * 43, "nonsense", ""):
                st, _ = http(p, method, path, body, token=None, headers={"Authorization": f"Bearer {bad}"})
                self.assertEqual(st, 401, (method, path, bad))
        # A forged cookie neither.
        st, _ = http(p, "GET", "/api/devices", token=None, headers={"Cookie": "vigil_session=" + "x" * 43})
        self.assertEqual(st, 401)
        # /ws: the upgrade itself is refused with 401 (never 101 then closed).
        with self.assertRaises(Exception) as ctx:
            StalledWsClient(p, token=None)
        self.assertIn(" 401 ", str(ctx.exception))
        # Open: /healthz, /metrics from loopback.
        self.assertEqual(http(p, "GET", "/healthz", token=None)[0], 200)
        st, text = http(p, "GET", "/metrics", token=None)
        self.assertEqual(st, 200)
        self.assertIn('vigil_auth_denied_total{reason="unauthenticated"}', text)
        # And with the token everything answers.
        self.assertEqual(http(p, "GET", "/api/devices")[0], 200)
        ws = WsCollector(p, subscribe={"type": "subscribe", "devices": ["ESP32_001"]})
        ws.close()

    # -- roles ----------------------------------------------------------------
    def test_roles(self):
        self.start_vigild()
        self.device()
        p = self.http_port
        vera = Session(p, "vera", PASSWORDS["vera"])
        self.assertEqual(vera.status, 200, vera.body)
        self.assertEqual(vera.body["user"], "vera")
        self.assertEqual(vera.body["role"], "viewer")
        self.assertIn("HttpOnly", vera.set_cookie)
        self.assertIn("SameSite=Strict", vera.set_cookie)
        self.assertIn("Path=/", vera.set_cookie)
        self.assertEqual(vera.req("GET", "/api/devices")[0], 200)
        self.assertEqual(vera.req("GET", "/api/devices/ESP32_001/readings?from=0")[0], 200)
        st, who = vera.req("GET", "/api/session")
        self.assertEqual(st, 200)
        self.assertEqual((who["user"], who["role"], who["csrf"]), ("vera", "viewer", vera.csrf))
        self.assertIn("idle_expires_at", who)
        self.assertIn("expires_at", who)
        self.assertEqual(vera.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "ping"}),
                         (403, {"error": "forbidden"}))
        self.assertEqual(vera.req("PUT", "/api/devices/ESP32_001/config", {"interval_ms": 500})[0], 403)
        self.assertEqual(vera.req("GET", "/api/users")[0], 403)
        self.assertEqual(vera.req("GET", "/api/audit")[0], 403)

        clara = Session(p, "clara", PASSWORDS["clara"])
        self.assertEqual(clara.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "ping"})[0], 202)
        self.assertEqual(clara.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "identify"})[0], 202)
        self.assertEqual(clara.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "reboot"})[0], 403)
        self.assertEqual(clara.req("PUT", "/api/devices/ESP32_001/config", {"interval_ms": 500})[0], 403)

        theo = Session(p, "theo", PASSWORDS["theo"])
        self.assertEqual(theo.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "reboot"})[0], 202)
        self.assertEqual(theo.req("PUT", "/api/devices/ESP32_001/config", {"interval_ms": 500})[0], 202)
        self.assertEqual(theo.req("GET", "/api/tokens")[0], 403)

        ada = Session(p, "ada", PASSWORDS["ada"])
        st, users = ada.req("GET", "/api/users")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(u["username"] for u in users["users"]), sorted(PASSWORDS))
        self.assertTrue(all("password" not in json.dumps(u) and "argon" not in json.dumps(u)
                            for u in users["users"]))
        # A viewer token: reads, no commands.
        st, tok = ada.req("POST", "/api/tokens", {"name": "wallboard", "role": "viewer"})
        self.assertEqual(st, 201, tok)
        self.assertTrue(tok["token"].startswith("vgt_"))
        self.assertEqual(http(p, "GET", "/api/devices", token=tok["token"])[0], 200)
        self.assertEqual(http(p, "POST", "/api/devices/ESP32_001/commands", {"cmd": "ping"},
                              token=tok["token"])[0], 403)

    # -- CSRF and Origin --------------------------------------------------------
    def test_csrf_and_origin(self):
        self.start_vigild()
        self.device()
        p = self.http_port
        theo = Session(p, "theo", PASSWORDS["theo"])
        cmd = {"cmd": "ping"}
        self.assertEqual(theo.req("POST", "/api/devices/ESP32_001/commands", cmd, csrf=False),
                         (403, {"error": "missing or invalid CSRF token"}))
        self.assertEqual(theo.req("POST", "/api/devices/ESP32_001/commands", cmd, csrf=False,
                                  headers={"X-CSRF-Token": theo.csrf[:-1] + "x"})[0], 403)
        self.assertEqual(theo.req("PUT", "/api/devices/ESP32_001/config", {"interval_ms": 500},
                                  csrf=False)[0], 403)
        self.assertEqual(theo.req("DELETE", "/api/session", csrf=False)[0], 403)
        self.assertEqual(theo.req("POST", "/api/devices/ESP32_001/commands", cmd)[0], 202)
        self.assertEqual(theo.req("GET", "/api/devices")[0], 200)  # reads need none
        # Bearer requests need no CSRF.
        self.assertEqual(http(p, "POST", "/api/devices/ESP32_001/commands", cmd)[0], 202)
        # /ws Origin: foreign → 403; our own host → fine; absent only with a token.
        origin_ok = {"Origin": f"http://127.0.0.1:{p}"}
        ws = WsCollector(p, token=None, headers={"Cookie": theo.cookie, **origin_ok})
        ws.close()
        for hdrs, token in [({"Cookie": theo.cookie, "Origin": "http://evil.example"}, None),
                            ({"Cookie": theo.cookie}, None),
                            ({"Origin": "http://evil.example"}, vigil_client._DEFAULT)]:
            with self.assertRaises(Exception) as ctx:
                WsCollector(p, token=token, headers=hdrs)
            self.assertIn("403", str(ctx.exception), hdrs)
        ws = WsCollector(p)  # token, no Origin
        ws.close()
        st, text = http(p, "GET", "/metrics")
        self.assertIn('vigil_auth_denied_total{reason="origin"} 3', text)
        self.assertIn('vigil_auth_denied_total{reason="csrf"} 4', text)
        # Logout: 204, cookie cleared, the session is gone.
        st, _, hdrs = http_full(p, "DELETE", "/api/session", token=None,
                                headers={"Cookie": theo.cookie, "X-CSRF-Token": theo.csrf})
        self.assertEqual(st, 204)
        self.assertIn("Max-Age=0", hdrs.get("Set-Cookie", ""))
        self.assertEqual(theo.req("GET", "/api/devices")[0], 401)

    # -- throttling -------------------------------------------------------------
    def test_login_failures_are_throttled(self):
        self.start_vigild()
        p = self.http_port
        bad = {"username": "clara", "password": "wrong-password"}
        # Unknown users get the very same answer as a wrong password.
        st, b = http(p, "POST", "/api/session", {"username": "nobody", "password": "whatever1"}, token=None)
        self.assertEqual((st, b), (401, {"error": "invalid username or password"}))
        for i in range(4):  # with the one above: 5 failures from this address
            st, b = http(p, "POST", "/api/session", bad, token=None)
            self.assertEqual((st, b), (401, {"error": "invalid username or password"}), i)
        st, b, hdrs = http_full(p, "POST", "/api/session", {"username": "clara", "password": PASSWORDS["clara"]},
                                token=None)
        self.assertEqual(st, 429)
        self.assertEqual(b, {"error": "too many failed logins, retry later"})
        self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        # The backoff ends; the right password then works.
        def ok():
            return Session(p, "clara", PASSWORDS["clara"]).status == 200
        wait_for(ok, 10, interval=0.5, what="login after backoff")
        _, text = http(p, "GET", "/metrics")
        self.assertRegex(text, r'vigil_auth_logins_total\{outcome="throttled"\} [1-9]')
        self.assertRegex(text, r'vigil_auth_logins_total\{outcome="fail"\} [5-9]')
        self.wait_audit("login", "throttled", "clara")
        e = self.wait_audit("login", "fail", "nobody")
        self.assertEqual(e["address"], "127.0.0.1")

    # -- tokens: work, revocation by CLI and API --------------------------------
    def test_tokens_and_revocation(self):
        self.start_vigild()
        p = self.http_port
        r = cli("token", "add", "ci", "--role", "viewer", "--db", self.db)
        self.assertEqual(r.returncode, 0, r.stderr)
        tok = r.stdout.strip()
        self.assertRegex(tok, r"^vgt_[A-Za-z0-9_-]{43}$")
        self.assertEqual(r.stdout.count("\n"), 1)  # the token and nothing else on stdout
        wait_for(lambda: http(p, "GET", "/api/devices", token=tok)[0] == 200, 8, interval=0.2,
                 what="CLI token picked up")
        st, lst = http(p, "GET", "/api/tokens")
        self.assertEqual(st, 200)
        mine = [t for t in lst["tokens"] if t["name"] == "ci"]
        self.assertEqual(len(mine), 1)
        self.assertNotIn(tok, json.dumps(lst))
        r = cli("token", "del", mine[0]["id"], "--db", self.db)
        self.assertEqual(r.returncode, 0, r.stderr)
        t0 = time.monotonic()
        wait_for(lambda: http(p, "GET", "/api/devices", token=tok)[0] == 401, 8, interval=0.2,
                 what="CLI-deleted token refused")
        self.assertLess(time.monotonic() - t0, 7)
        # Through the API: made, used, deleted (refused at once), listed no more.
        st, t = http(p, "POST", "/api/tokens", {"name": "bot", "role": "technician"})
        self.assertEqual(st, 201)
        self.assertEqual(set(t), {"id", "name", "role", "token"})
        self.assertEqual(http(p, "GET", "/api/devices", token=t["token"])[0], 200)
        self.assertEqual(http(p, "DELETE", f"/api/tokens/{t['id']}")[0], 204)
        self.assertEqual(http(p, "GET", "/api/devices", token=t["token"])[0], 401)
        self.assertEqual(http(p, "DELETE", f"/api/tokens/{t['id']}")[0], 404)
        time.sleep(6)  # a refresh after the store has the delete: it stays gone
        self.assertEqual(http(p, "GET", "/api/devices", token=t["token"])[0], 401)
        self.assertNotIn(t["id"], json.dumps(http(p, "GET", "/api/tokens")[1]))
        # A user deleted with the CLI loses their sessions within ~5 s.
        vera = Session(p, "vera", PASSWORDS["vera"])
        self.assertEqual(vera.req("GET", "/api/devices")[0], 200)
        time.sleep(1)
        r = cli("user", "del", "vera", "--db", self.db)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: vera.req("GET", "/api/devices")[0] == 401, 20, interval=0.3,
                 what="deleted user's session refused")

    # -- sessions expire ----------------------------------------------------------
    def test_sessions_expire(self):
        self.start_vigild("--session-idle", "2")
        p = self.http_port
        s = Session(p, "vera", PASSWORDS["vera"])
        for _ in range(3):  # use keeps it alive
            time.sleep(1)
            self.assertEqual(s.req("GET", "/api/devices")[0], 200)
        time.sleep(2.5)
        self.assertEqual(s.req("GET", "/api/devices")[0], 401)
        self.assertEqual(s.req("GET", "/api/session")[0], 401)
        # Sessions survive a restart of vigild (kept in the store, hashed).
        s2 = Session(p, "clara", PASSWORDS["clara"])
        time.sleep(0.5)
        self.assertEqual(self.vigild.stop(), 0)
        self.start_vigild("--session-idle", "60")
        self.assertEqual(s2.req("GET", "/api/devices")[0], 200)

    # -- users API and the audit trail ---------------------------------------------
    def test_users_api_and_audit_trail(self):
        self.start_vigild()
        self.device()
        p = self.http_port
        ada = Session(p, "ada", PASSWORDS["ada"])
        self.assertEqual(ada.req("POST", "/api/users", {"username": "nina", "role": "viewer",
                                                        "password": "nina-pass-77"}),
                         (201, {"username": "nina", "role": "viewer"}))
        self.assertEqual(ada.req("POST", "/api/users", {"username": "nina", "role": "viewer",
                                                        "password": "nina-pass-77"})[0], 409)
        self.assertEqual(ada.req("POST", "/api/users", {"username": "bad name", "role": "viewer",
                                                        "password": "nina-pass-77"})[0], 400)
        wait_for(lambda: Session(p, "nina", "nina-pass-77").status == 200, 5, what="new user logs in")
        nina = Session(p, "nina", "nina-pass-77")
        self.assertEqual(nina.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "ping"})[0], 403)
        self.assertEqual(ada.req("PUT", "/api/users/nina", {"role": "clinician"}),
                         (200, {"username": "nina", "role": "clinician"}))
        self.assertEqual(nina.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "ping"})[0], 202)
        self.assertEqual(nina.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "reboot"})[0], 403)
        self.assertEqual(ada.req("PUT", "/api/users/ghost", {"role": "viewer"})[0], 404)
        self.assertEqual(ada.req("DELETE", "/api/users/nina")[0], 204)
        self.assertEqual(nina.req("GET", "/api/devices")[0], 401)
        self.assertEqual(ada.req("PUT", "/api/devices/ESP32_001/config", {"interval_ms": 750})[0], 202)
        self.assertEqual(ada.req("POST", "/api/devices/ESP32_001/commands", {"cmd": "reboot"})[0], 202)
        st, tok = ada.req("POST", "/api/tokens", {"name": "int", "role": "viewer"})
        self.assertEqual(ada.req("DELETE", f"/api/tokens/{tok['id']}")[0], 204)
        Session(p, "ada", "wrong-password")
        self.assertEqual(ada.req("DELETE", "/api/session")[0], 204)

        for action, outcome, target in [("login", "ok", "ada"), ("login", "fail", "ada"),
                                        ("logout", "ok", "ada"), ("user_add", "ok", "nina"),
                                        ("user_add", "fail", "nina"), ("user_update", "ok", "nina"),
                                        ("user_del", "ok", "nina"), ("token_add", "ok", tok["id"]),
                                        ("token_del", "ok", tok["id"]), ("config", "ok", "ESP32_001"),
                                        ("command", "ok", "ESP32_001"),
                                        ("command", "forbidden", "ESP32_001")]:
            e = self.wait_audit(action, outcome, target)
            self.assertEqual(e["address"], "127.0.0.1", e)
            self.assertRegex(e["t"], r"^\d{4}-\d\d-\d\dT")
        e = self.wait_audit("command", "ok", "ESP32_001")
        entries = self.audit(limit=1000)
        cmds = [x for x in entries if x["action"] == "command" and x["outcome"] == "ok"]
        self.assertEqual({x["detail"] for x in cmds}, {"ping", "reboot"})
        self.assertEqual({x["user"] for x in cmds}, {"nina", "ada"})
        # Newest first; the filters work.
        ts = [x["t"] for x in entries]
        self.assertEqual(ts, sorted(ts, reverse=True))
        self.assertTrue(all(x["user"] == "nina" for x in self.audit(user="nina")))
        self.assertEqual(len(self.audit(limit=2)), 2)
        self.assertEqual(self.audit(**{"from": 0, "to": 1}), [])
        self.assertEqual(http(p, "GET", "/api/audit?limit=5000")[0], 400)

    # -- no secret in clear ---------------------------------------------------------
    def test_no_secret_in_clear(self):
        self.start_vigild()
        p = self.http_port
        s = Session(p, "ada", PASSWORDS["ada"])
        session_id = s.cookie.split("=", 1)[1]
        st, tok = s.req("POST", "/api/tokens", {"name": "x", "role": "viewer"})
        self.assertEqual(s.req("POST", "/api/users", {"username": "zed", "role": "viewer",
                                                      "password": "zed-secret-pw"})[0], 201)
        Session(p, "ada", "typo-" + PASSWORDS["ada"])
        time.sleep(1)
        self.assertEqual(self.vigild.stop(), 0)
        dump = subprocess.run(["sqlite3", self.db, ".dump"], capture_output=True, text=True,
                              timeout=30).stdout
        self.assertIn("INSERT INTO users", dump)
        self.assertIn("$argon2id$", dump)
        with open(self.log, errors="replace") as f:
            log = f.read()
        for secret in [*PASSWORDS.values(), "zed-secret-pw", tok["token"], self.token, session_id,
                       tok["token"][4:], session_id[:20]]:
            self.assertNotIn(secret, dump)
            self.assertNotIn(secret, log)

    # -- the CLI ----------------------------------------------------------------------
    def test_cli(self):
        db = os.path.join(self.tmp, "cli.db")
        r = cli("user", "add", "eve", "--role", "clinician", "--db", db, stdin="eve-password-1\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(db))  # created and migrated
        self.assertNotIn("eve-password-1", r.stdout + r.stderr)
        r = cli("user", "add", "eve", "--role", "clinician", "--db", db, stdin="eve-password-1\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists", r.stderr)
        self.assertEqual(cli("user", "add", "bob", "--role", "root", "--db", db, stdin="x" * 10 + "\n").returncode, 2)
        self.assertEqual(cli("user", "add", "bob", "--role", "viewer", "--db", db, stdin="short\n").returncode, 1)
        self.assertEqual(cli("user", "add", "bob", "--role", "viewer", "--db", db, stdin="").returncode, 1)
        self.assertEqual(cli("user", "add", "../x", "--role", "viewer", "--db", db,
                             stdin="longenough\n").returncode, 2)
        self.assertEqual(cli("user", "add", "--db", db).returncode, 2)
        self.assertEqual(cli("user", "frob", "--db", db).returncode, 2)
        self.assertEqual(cli("token", "add", "t", "--db", db).returncode, 2)  # no role
        self.assertEqual(cli("user", "add", "bob", "--role", "viewer", "--password", "x", "--db", db).returncode, 2)
        r = cli("user", "list", "--db", db)
        self.assertEqual(r.returncode, 0)
        self.assertIn("eve", r.stdout)
        self.assertIn("clinician", r.stdout)
        self.assertEqual(cli("user", "passwd", "eve", "--db", db, stdin="eve-password-2\n").returncode, 0)
        self.assertEqual(cli("user", "passwd", "nobody", "--db", db, stdin="eve-password-2\n").returncode, 1)
        r = cli("token", "add", "t1", "--role", "viewer", "--db", db)
        self.assertEqual(r.returncode, 0)
        r = cli("token", "list", "--db", db)
        self.assertEqual(r.returncode, 0)
        tid = r.stdout.split()[0]
        self.assertEqual(cli("token", "del", tid, "--db", db).returncode, 0)
        self.assertEqual(cli("token", "del", tid, "--db", db).returncode, 1)
        self.assertEqual(cli("user", "del", "eve", "--db", db).returncode, 0)
        self.assertEqual(cli("user", "del", "eve", "--db", db).returncode, 1)
        self.assertNotIn("eve", cli("user", "list", "--db", db).stdout)
        # The new password works against a running vigild; the old one does not.
        add_user(self.db, "eve", "viewer", "eve-password-1")
        self.assertEqual(cli("user", "passwd", "eve", "--db", self.db, stdin="eve-password-3\n").returncode, 0)
        self.start_vigild()
        self.assertEqual(Session(self.http_port, "eve", "eve-password-1").status, 401)
        self.assertEqual(Session(self.http_port, "eve", "eve-password-3").status, 200)

    # -- open WebSockets end with their credentials ------------------------------------
    def cookie_ws(self, s):
        return WsCollector(self.http_port, token=None,
                           headers={"Cookie": s.cookie, "Origin": f"http://127.0.0.1:{self.http_port}"})

    def assert_ws_ends(self, ws, within, what):
        t0 = time.monotonic()
        self.assertTrue(ws.closed.wait(within), f"{what}: WebSocket still open after {within} s")
        self.assertEqual(ws.ws.close_code, 1008, what)  # a Close saying why, not a dropped socket
        return time.monotonic() - t0

    def test_websockets_end_with_changes_made_here(self):
        """Logout, a revoked token, a deleted user, a role change and a
        password change through this vigild close the WebSockets opened with
        those credentials at once; others stay open."""
        self.start_vigild()
        self.device()
        p = self.http_port
        control = WsCollector(p, subscribe={"type": "subscribe", "devices": ["ESP32_001"]})  # harness token
        # Logout.
        vera = Session(p, "vera", PASSWORDS["vera"])
        ws = self.cookie_ws(vera)
        vera2 = Session(p, "vera", PASSWORDS["vera"])
        ws2 = self.cookie_ws(vera2)
        self.assertEqual(vera.req("DELETE", "/api/session")[0], 204)
        self.assertLess(self.assert_ws_ends(ws, 3, "logout"), 1.5)
        self.assertFalse(ws2.closed.wait(0.5), "the user's other session's WebSocket stays")
        # A token revoked through the API.
        st, tok = http(p, "POST", "/api/tokens", {"name": "wall", "role": "viewer"})
        self.assertEqual(st, 201)
        tws = WsCollector(p, token=tok["token"])
        self.assertEqual(http(p, "DELETE", f"/api/tokens/{tok['id']}")[0], 204)
        self.assertLess(self.assert_ws_ends(tws, 3, "token revoked"), 1.5)
        # A deleted user.
        clara = Session(p, "clara", PASSWORDS["clara"])
        cws = self.cookie_ws(clara)
        self.assertEqual(http(p, "DELETE", "/api/users/clara")[0], 204)
        self.assertLess(self.assert_ws_ends(cws, 3, "user deleted"), 1.5)
        # A role change (down or up): closed; reopened, it has the new role.
        theo = Session(p, "theo", PASSWORDS["theo"])
        tws = self.cookie_ws(theo)
        self.assertEqual(http(p, "PUT", "/api/users/theo", {"role": "viewer"})[0], 200)
        self.assertLess(self.assert_ws_ends(tws, 3, "role changed"), 1.5)
        self.assertEqual(theo.req("GET", "/api/session")[1]["role"], "viewer")
        tws = self.cookie_ws(theo)
        self.assertFalse(tws.closed.wait(0.5))
        # A password change by the user: their other sessions (and WebSockets)
        # end, the one that made it stays; tokens stay.
        ada1, ada2 = Session(p, "ada", PASSWORDS["ada"]), Session(p, "ada", PASSWORDS["ada"])
        a1, a2 = self.cookie_ws(ada1), self.cookie_ws(ada2)
        self.assertEqual(ada1.req("PUT", "/api/users/ada", {"password": "ada-new-pass-5"}),
                         (200, {"username": "ada", "role": "admin"}))
        self.assertLess(self.assert_ws_ends(a2, 3, "password changed"), 1.5)
        self.assertEqual(ada2.req("GET", "/api/devices")[0], 401)
        self.assertFalse(a1.closed.wait(0.5), "the session that changed the password keeps its WebSocket")
        self.assertEqual(ada1.req("GET", "/api/devices")[0], 200)
        self.assertEqual(Session(p, "ada", PASSWORDS["ada"]).status, 401)
        self.assertEqual(Session(p, "ada", "ada-new-pass-5").status, 200)
        # ... and by an admin (a token here): every session of the user ends.
        self.assertEqual(http(p, "PUT", "/api/users/vera", {"password": "vera-new-pass-6"})[0], 200)
        self.assertLess(self.assert_ws_ends(ws2, 3, "password changed by an admin"), 1.5)
        self.assertEqual(vera2.req("GET", "/api/devices")[0], 401)
        self.assertEqual(http(p, "GET", "/api/devices")[0], 200)  # the admin token: not a session
        # Gone for good: a refresh after the store has the deletes keeps them gone.
        time.sleep(6)
        self.assertEqual(ada2.req("GET", "/api/devices")[0], 401)
        self.assertEqual(vera2.req("GET", "/api/devices")[0], 401)
        self.assertEqual(ada1.req("GET", "/api/devices")[0], 200)
        self.assertFalse(control.closed.is_set(), "an unrelated WebSocket stays open")
        self.assertFalse(tws.closed.is_set())
        for x in (control, a1, tws):
            x.close()

    def test_websockets_end_with_cli_changes(self):
        """Changes made beside vigild (the CLI, another writer of the
        database) close the WebSockets they concern within the 5 s refresh."""
        self.start_vigild()
        p = self.http_port
        clara = Session(p, "clara", PASSWORDS["clara"])  # seen by a refresh before its password changes
        cws = self.cookie_ws(clara)
        t_clara = time.monotonic()
        r = cli("token", "add", "ci", "--role", "viewer", "--db", self.db)
        self.assertEqual(r.returncode, 0, r.stderr)
        tok = r.stdout.strip()
        wait_for(lambda: http(p, "GET", "/api/devices", token=tok)[0] == 200, 8, interval=0.2,
                 what="CLI token picked up")
        tws = WsCollector(p, token=tok)
        tid = [t for t in http(p, "GET", "/api/tokens")[1]["tokens"] if t["name"] == "ci"][0]["id"]
        self.assertEqual(cli("token", "del", tid, "--db", self.db).returncode, 0)
        self.assertLess(self.assert_ws_ends(tws, 10, "token deleted with the CLI"), 7)
        vera = Session(p, "vera", PASSWORDS["vera"])
        vws = self.cookie_ws(vera)
        self.assertEqual(cli("user", "del", "vera", "--db", self.db).returncode, 0)
        self.assertLess(self.assert_ws_ends(vws, 10, "user deleted with the CLI"), 7)
        time.sleep(max(0.0, 6 - (time.monotonic() - t_clara)))
        self.assertFalse(cws.closed.is_set())
        r = cli("user", "passwd", "clara", "--db", self.db, stdin="clara-new-pass-9\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(self.assert_ws_ends(cws, 10, "password changed with the CLI"), 7)
        self.assertEqual(clara.req("GET", "/api/devices")[0], 401)
        self.assertEqual(http(p, "GET", "/api/devices")[0], 200)  # tokens stay
        # A role changed by another writer of the database.
        theo = Session(p, "theo", PASSWORDS["theo"])
        tws = self.cookie_ws(theo)
        subprocess.run(["sqlite3", self.db, "PRAGMA busy_timeout=5000; "
                        "UPDATE users SET role='viewer' WHERE name='theo';"], check=True, timeout=30,
                       capture_output=True)
        self.assertLess(self.assert_ws_ends(tws, 10, "role changed in the database"), 7)
        self.assertEqual(theo.req("GET", "/api/session")[1]["role"], "viewer")

    def test_websockets_and_session_expiry(self):
        """An open WebSocket is use of its session: the session does not idle
        out while it is open (a ward screen nobody clicks), and idles out
        after it closes; the absolute lifetime ends it, and the WebSocket."""
        self.start_vigild("--session-idle", "2", "--session-max", "10")
        p = self.http_port
        vera = Session(p, "vera", PASSWORDS["vera"])
        t_login = time.monotonic()
        vws = self.cookie_ws(vera)
        clara = Session(p, "clara", PASSWORDS["clara"])  # no WebSocket: idles out
        cws = self.cookie_ws(clara)
        clara_idle = Session(p, "clara", PASSWORDS["clara"])
        time.sleep(4.5)
        self.assertEqual(clara_idle.req("GET", "/api/devices")[0], 401)
        self.assertFalse(vws.closed.is_set())
        self.assertFalse(cws.closed.is_set())
        self.assertEqual(vera.req("GET", "/api/session")[0], 200)  # 4.5 s > idle: kept by the WebSocket
        cws.close()
        time.sleep(3)
        self.assertEqual(clara.req("GET", "/api/devices")[0], 401)  # idle since its WebSocket closed
        # The absolute end (10 s after login) closes the WebSocket within the 5 s sweep.
        self.assertTrue(vws.closed.wait(10 + 5 + 2 - (time.monotonic() - t_login)), "absolute lifetime")
        self.assertGreater(time.monotonic() - t_login, 9.5)
        self.assertEqual(vws.ws.close_code, 1008)
        self.assertEqual(vera.req("GET", "/api/session")[0], 401)
        tws = WsCollector(p)  # tokens do not expire
        self.assertFalse(tws.closed.wait(0.5))
        tws.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
