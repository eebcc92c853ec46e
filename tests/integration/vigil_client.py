"""Small clients for vigild's HTTP and WebSocket APIs, for the tests.
Standard library + python3-websockets only."""
import asyncio
import base64
import json
import os
import socket
import urllib.error
import urllib.request

import websockets

# The API token every helper sends (vigild answers 401 without one). The
# harness sets it when it starts a vigild (harness.Proc makes an admin token
# with the CLI for that database); a test may pass token= to use another, or
# token=None to send none.
TOKEN = None
_DEFAULT = object()


def auth_headers(token=_DEFAULT):
    t = TOKEN if token is _DEFAULT else token
    return {"Authorization": f"Bearer {t}"} if t else {}


def http_full(port, method, path, body=None, timeout=10, token=_DEFAULT, headers=None):
    """Returns (status, parsed JSON or text, response headers)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in {**auth_headers(token), **(headers or {})}.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, e.headers
    ctype = hdrs.get("content-type", "")
    if "json" in ctype and raw:
        return status, json.loads(raw), hdrs
    return status, raw.decode(), hdrs


def http(port, method, path, body=None, timeout=10, token=_DEFAULT, headers=None):
    """Returns (status, parsed JSON or text)."""
    status, parsed, _ = http_full(port, method, path, body, timeout, token, headers)
    return status, parsed


def metric(port, name, labels=None):
    """Value of one Prometheus sample from /metrics (0 if absent)."""
    _, text = http(port, "GET", "/metrics")
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


class WsCollector:
    """A WebSocket client on its own asyncio loop in a thread, collecting
    every message it receives."""

    def __init__(self, port, subscribe=None, token=_DEFAULT, headers=None):
        import threading
        self.port = port
        self.headers = {**auth_headers(token), **(headers or {})}
        self.messages = []
        self.subscribe = subscribe
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.closed = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise TimeoutError("WebSocket did not connect")
        if self.error:
            raise self.error

    def _run(self):
        self.loop.run_until_complete(self._main())

    async def _main(self):
        try:
            async with websockets.connect(f"ws://127.0.0.1:{self.port}/ws",
                                          max_size=64 * 1024 * 1024,
                                          extra_headers=self.headers) as ws:
                self.ws = ws
                if self.subscribe is not None:
                    await ws.send(json.dumps(self.subscribe))
                self.ready.set()
                async for raw in ws:
                    msg = json.loads(raw)
                    if isinstance(msg, list):
                        self.messages.extend(msg)
                    else:
                        self.messages.append(msg)
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.error = e
            self.ready.set()
        finally:
            self.closed.set()

    def of_type(self, t):
        return [m for m in list(self.messages) if m.get("type") == t]

    def close(self):
        if not self.closed.is_set() and hasattr(self, "ws"):
            asyncio.run_coroutine_threadsafe(self.ws.close(), self.loop)
        self.closed.wait(5)


class StalledWsClient:
    """Completes the WebSocket handshake, then never reads a byte: the kind
    of client that must not stall anybody else. Small receive buffer so the
    server's socket fills quickly."""

    def __init__(self, port, token=_DEFAULT):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n"
                        + "".join(f"{k}: {v}\r\n" for k, v in auth_headers(token).items())
                        + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(1)
            if not chunk:
                raise ConnectionError("closed during handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(head.decode(errors="replace"))

    def is_closed_by_peer(self):
        """Drains what is buffered; True once the server has closed."""
        self.s.setblocking(False)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.s.setblocking(True)

    def close(self):
        self.s.close()
