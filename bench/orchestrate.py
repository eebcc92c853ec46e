#!/usr/bin/python3
"""Runs the benchmark matrix for bench/run.sh: starts a private Mosquitto per
measurement on a free loopback port, the subject under test, and vigil-bench;
collects vigil-bench's JSON plus the subject's stored-row count; writes
bench/results/latest.json, the plot data, and the generated section of
docs/BENCHMARKS.md.

Every process started here is stopped by its PID; every wait is bounded.
"""
import argparse
import datetime
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--out", required=True, help="scratch dir (logs, dbs)")
ap.add_argument("--results", default=os.path.join(HERE, "results", "latest.json"))
ap.add_argument("--only", default="", help="comma list of phases: fixed,clients,ramp,history")
args = ap.parse_args()

BENCH = os.path.join(args.build, "bench", "vigil-bench")
VIGILD = os.path.join(args.build, "server", "vigild")
NODERED = os.path.join(HERE, ".cache", "nodered", "node_modules", "node-red", "red.js")
PY = "/usr/bin/python3"
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Proc:
    def __init__(self, argv, logname, cwd=None):
        self.logf = open(os.path.join(args.out, logname), "ab")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, cwd=cwd,
                                  start_new_session=True)
        self.pid = self.p.pid

    def stop(self, timeout=3):
        # A saturated baseline can take long to exit on SIGTERM (its backlog);
        # after a short grace period it gets SIGKILL: its results are already in.
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.logf.close()


def start_broker(ws=False):
    """The project's broker config minus its listener/persistence, plus a TCP
    listener (and a WebSocket one if ws) on free ports; persistence off: a
    fresh broker per measurement. Mosquitto 2.0.11 binds a websockets listener
    to all interfaces whatever address it is given, so it is only opened for
    the measurement that uses it."""
    port, wsport = free_port(), free_port()
    lines = []
    with open(os.path.join(SRC, "deploy", "mosquitto", "vigil.conf")) as f:
        for line in f:
            s = line.strip()
            if s.startswith(("listener", "persistence", "autosave", "log_dest", "pid_file", "port")):
                continue
            lines.append(line.rstrip("\n"))
    lines += [f"listener {port} 127.0.0.1"]
    if ws:
        lines += [f"listener {wsport} 127.0.0.1", "protocol websockets"]
    lines += ["persistence false", "log_dest stderr"]
    conf = os.path.join(args.out, f"mosquitto-{port}.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = Proc(["mosquitto", "-c", conf], "mosquitto.log")
    if not wait_port(port, 10):
        raise RuntimeError("mosquitto did not start")
    return p, port, wsport


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def vigild_token(db):
    """A viewer API token for vigild's database (vigild answers 401 without
    one), made with its CLI; also written to a 0600 file for vigil-bench's
    --token-file. Returns (token, path)."""
    r = subprocess.run([VIGILD, "token", "add", "bench", "--role", "viewer", "--db", db],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"vigild token add: {r.stderr.strip()}")
    tok = r.stdout.strip()
    path = db + ".token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tok + "\n")
    return tok, path


def api_get(url, token, timeout=30):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    return urllib.request.urlopen(req, timeout=timeout)


def sqlite_count(db, table):
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        n = c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        c.close()
        return n
    except sqlite3.Error:
        return None


def run_one(subject, devices, rates, clients, step, warmup, label, stop_on_fail=False):
    """One measurement: fresh broker, fresh subject, vigil-bench. Returns the
    vigil-bench JSON plus subject extras."""
    broker, bport, wsport = start_broker(ws=subject == "mqttws")
    subj = None
    watch = [f"mosquitto:{broker.pid}"]
    recv = ["--recv", "ws"]
    db = None
    extra = {}
    try:
        if subject == "sub":
            recv = ["--recv", "mqtt", "--recv-port", str(bport)]
        elif subject == "mqttws":
            recv = ["--recv", "mqttws", "--recv-port", str(wsport), "--path", "/mqtt", "--sub-qos", "0"]
        else:
            lport = free_port()
            if subject == "relay":
                subj = Proc([BENCH, "relay", "--broker-port", str(bport), "--listen-port", str(lport),
                             "--duration", "300"], "relay.log")
            elif subject == "vigild":
                db = os.path.join(args.out, f"vigild-{lport}.db")
                _, tokfile = vigild_token(db)
                recv += ["--token-file", tokfile]
                subj = Proc([VIGILD, "--broker", f"mqtt://127.0.0.1:{bport}", "--listen", f"127.0.0.1:{lport}", "--max-ws-clients", "5000", "--max-conns-per-ip", "5000",
                             "--db", db, "--client-id", f"vigild-bench-{lport}", "--log-level", "warn"],
                            "vigild.log")
                recv += ["--subscribe", '{"type":"subscribe","batch":true}']
            elif subject == "python":
                db = os.path.join(args.out, f"python-{lport}.db")
                subj = Proc([PY, os.path.join(HERE, "baselines", "python_design.py"), "--broker-port", str(bport),
                             "--ws-port", str(lport), "--db", db, "--duration", "300"], "python.log")
            elif subject == "nodered":
                ud = os.path.join(args.out, f"nodered-{lport}")
                os.makedirs(ud, exist_ok=True)
                with open(os.path.join(HERE, "baselines", "nodered_flows.json")) as f:
                    flows = f.read().replace('"@BROKER_PORT@"', str(bport))
                with open(os.path.join(ud, "flows.json"), "w") as f:
                    f.write(flows)
                subj = Proc(["node", NODERED, "-u", ud, "-s", os.path.join(HERE, "baselines", "nodered_settings.js"),
                             "-p", str(lport), os.path.join(ud, "flows.json")], "nodered.log")
            if not wait_port(lport, 30):
                raise RuntimeError(f"{subject} did not open its port")
            time.sleep(1.0 if subject in ("nodered", "python", "vigild") else 0.2)  # MQTT subscribe done
            recv += ["--recv-port", str(lport), "--path", "/ws"]
            watch.append(f"{subject}:{subj.pid}")
        jpath = os.path.join(args.out, f"{label}.json")
        argv = [BENCH, "run", "--broker-port", str(bport), "--devices", str(devices),
                "--rates", ",".join(str(r) for r in rates), "--step", str(step), "--warmup", str(warmup),
                "--drain", "4", "--clients", str(clients), "--json", jpath, "--label", label] + recv
        for w in watch:
            argv += ["--watch", w]
        if stop_on_fail:
            argv.append("--stop-on-fail")
        log(f"{label}: {subject}, {devices} devices x {rates} Hz, {clients} clients")
        budget = 60 + warmup + step * len(rates) + devices / 500 + clients / 50
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=budget)
        tail = r.stdout.decode(errors="replace").strip().splitlines()
        for line in tail[-1:]:
            log("   " + line.strip())
        with open(jpath) as f:
            res = json.load(f)
        res["subject"] = subject
        # Rows stored: vigild's counter (its writer may lag a little), or the Python table.
        if subject == "vigild":
            last, end = None, time.monotonic() + 6
            while time.monotonic() < end:
                m = metrics(int(recv[recv.index("--recv-port") + 1]))
                cur = m.get("vigil_stored_total")
                if cur is not None and cur == last and cur >= res["sent"]:
                    break
                last = cur
                time.sleep(0.5)
            extra["stored"] = last
            extra["ws_dropped_clients"] = m.get("vigil_ws_dropped_clients_total")
            extra["hub_dropped"] = m.get("vigil_hub_dropped_total")
            extra["store_dropped"] = m.get("vigil_store_dropped_total")
        elif subject == "python":
            time.sleep(0.5)
            extra["stored"] = sqlite_count(db, "sensor_data")
        res.update(extra)
        return res
    except Exception as e:  # a failing subject is a result, not a crash of the run
        log(f"   {label}: FAILED: {e}")
        return {"label": label, "subject": subject, "error": str(e)}
    finally:
        if subj:
            subj.stop()
        broker.stop()
        if db:
            for sfx in ("", "-wal", "-shm", ".token"):
                try:
                    os.unlink(db + sfx)
                except OSError:
                    pass


def sustainable(res):
    """Highest offered rate of a step delivered in full (≥ 95 % per client)
    with p99 under one second."""
    best = 0.0
    for s in res.get("steps", []):
        if s["delivered_msgs_per_s_per_client"] >= 0.95 * s["offered_msgs_per_s"] and 0 <= s["p99_ms"] <= 1000:
            best = max(best, s["offered_msgs_per_s"])
        else:
            break
    return best


# ---- history queries ----
def history_bench(quick):
    """Prefills a vigild database (schema made by vigild itself) and times the
    two history queries through vigild's REST API."""
    broker, bport, _ = start_broker()
    lport = free_port()
    db = os.path.join(args.out, f"history-{lport}.db")
    res = {}
    v = Proc([VIGILD, "--broker", f"mqtt://127.0.0.1:{bport}", "--listen", f"127.0.0.1:{lport}", "--max-ws-clients", "5000", "--max-conns-per-ip", "5000", "--db", db,
              "--client-id", f"vigild-hist-{lport}", "--log-level", "warn", "--retention", "0"], "vigild-history.log")
    try:
        wait_port(lport, 20)
        time.sleep(0.5)
        v.stop()  # schema created; now fill it directly
        ndev = 100 if quick else 1000
        now = int(time.time() * 1000)
        c = sqlite3.connect(db)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=OFF")
        t_fill = time.monotonic()
        # Schema 5 (server/store_sqlite.c): vitals x100 / x10 as INTEGER when exact, else REAL.
        cols = "boot, k, t, flags, rdelta, object_temp, ambient_temp, heart_rate, spo2"
        for d in range(ndev + 1):
            dev_id = "H_DAY" if d == 0 else f"H{d:05d}"
            c.execute("INSERT INTO devices (id, first_seen, last_seen) VALUES (?,?,?)", (dev_id, now - 86400000, now))
            key = c.execute("SELECT key FROM devices WHERE id=?", (dev_id,)).fetchone()[0]
            n = 86400 if d == 0 else 3600
            rows = ((key, 1, i, now - (n - i) * 1000, 0xF | (7 << 16), 0,
                     36.5 + (i % 10) / 10, 2400, (60 + i % 40) * 10, (95 + i % 5) * 10) for i in range(n))
            c.executemany(f"INSERT INTO readings (device, {cols}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        c.execute("INSERT INTO reading_spans SELECT device, boot, k >> 8, min(t), max(t) FROM readings "
                  "GROUP BY device, boot, k >> 8")
        c.commit()
        c.close()
        fill_s = time.monotonic() - t_fill
        log(f"history: prefilled {86400 + ndev * 3600} rows in {fill_s:.1f} s")
        token, _ = vigild_token(db)
        v = Proc([VIGILD, "--broker", f"mqtt://127.0.0.1:{bport}", "--listen", f"127.0.0.1:{lport}", "--max-ws-clients", "5000", "--max-conns-per-ip", "5000", "--db", db,
                  "--client-id", f"vigild-hist-{lport}", "--log-level", "warn", "--retention", "0"],
                 "vigild-history.log")
        wait_port(lport, 20)

        def timed(url, reps):
            ts, size = [], 0
            for _ in range(reps):
                t = time.monotonic()
                with api_get(url, token) as r:
                    body = r.read()
                ts.append((time.monotonic() - t) * 1000)
                size = len(body)
            ts.sort()
            return {"median_ms": round(ts[len(ts) // 2], 2), "min_ms": round(ts[0], 2),
                    "max_ms": round(ts[-1], 2), "reps": reps, "bytes": size}, body

        base = f"http://127.0.0.1:{lport}/api/devices"
        r1, body = timed(f"{base}/H_DAY/readings?from={now - 86400000 - 1000}&to={now}&max_points=1000",
                         3 if quick else 7)
        j = json.loads(body)
        r1["total"] = j.get("total")
        r1["points"] = len(j.get("buckets") or j.get("readings") or [])
        res["day_1hz_1000pts"] = r1
        log(f"history: 24 h / 1 Hz / 1 device -> {r1['points']} points: median {r1['median_ms']} ms")
        # 1 h for every device: the dashboard's "all devices, last hour" view, one request per device.
        t = time.monotonic()
        pts = 0
        for d in range(1, ndev + 1):
            with api_get(f"{base}/H{d:05d}/readings?from={now - 3600000 - 1000}&to={now}&max_points=1000",
                         token) as r:
                pts += len(json.loads(r.read()).get("buckets") or [])
        all_ms = (time.monotonic() - t) * 1000
        res["hour_all_devices"] = {"devices": ndev, "total_ms": round(all_ms, 1),
                                   "per_device_ms": round(all_ms / ndev, 2), "points": pts}
        log(f"history: 1 h x {ndev} devices: {all_ms:.0f} ms ({all_ms / ndev:.2f} ms per device)")
        res["prefill_s"] = round(fill_s, 1)
    except Exception as e:
        log(f"history: FAILED: {e}")
        res["error"] = str(e)
    finally:
        v.stop()
        broker.stop()
        for sfx in ("", "-wal", "-shm", ".token"):
            try:
                os.unlink(db + sfx)
            except OSError:
                pass
    return res


def versions():
    def cmd(argv):
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20).stdout.decode().strip()
        except Exception:
            return "?"
    nr = "?"
    try:
        with open(os.path.join(os.path.dirname(NODERED), "package.json")) as f:
            nr = json.load(f)["version"]
    except OSError:
        pass
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return {
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "mem_mb": mem, "kernel": platform.release(),
        "mosquitto": cmd(["mosquitto", "-h"]).splitlines()[0] if cmd(["mosquitto", "-h"]) else "?",
        "vigild": cmd([VIGILD, "--version"]), "python": cmd([PY, "--version"]),
        "paho_mqtt": cmd([PY, "-c", "import paho.mqtt; print(paho.mqtt.__version__)"]),
        "websockets": cmd([PY, "-c", "import websockets; print(websockets.version.version)"]),
        "node": cmd(["node", "--version"]), "node_red": nr,
        "git": cmd(["git", "-C", SRC, "rev-parse", "--short", "HEAD"]),
    }


def main():
    os.makedirs(args.out, exist_ok=True)
    q = args.quick
    phases = set((args.only or "fixed,clients,ramp,history").split(","))
    have_nodered = os.path.exists(NODERED)
    subjects = ["sub", "relay", "vigild", "python"] + (["nodered"] if have_nodered else [])
    if not have_nodered:
        log("Node-RED not installed: skipped (see bench/run.sh's install step)")
    step, warm = (2, 1) if q else (6, 2)
    out = {"quick": q, "versions": versions(), "fixed": [], "clients": [], "ramp": [], "history": {}}
    # Fixed workloads, 100 WebSocket clients (the counting subscriber is one MQTT client).
    workloads = [(200, 5, "w_200x5")] if q else [(1000, 1, "w_1kx1"), (1000, 10, "w_1kx10"), (10000, 1, "w_10kx1")]
    wclients = 10 if q else 100
    if "fixed" in phases:
        for devs, hz, wl in workloads:
            for s in subjects + ["mqttws"]:
                if s == "mqttws" and devs * hz > 1000:
                    continue  # broker fan-out past its ceiling: covered by the ramp
                res = run_one(s, devs, [hz], 1 if s == "sub" else wclients, step, warm, f"{wl}_{s}")
                res["workload"] = wl
                out["fixed"].append(res)
        if not q:
            # The fleet target (10,000 devices, no loss) without the 100-client fan-out.
            res = run_one("vigild", 10000, [1], 1, step, warm, "w_10kx1_vigild_1c")
            res["workload"] = "w_10kx1_1c"
            out["fixed"].append(res)
    # Client scaling at 1,000 msg/s.
    if "clients" in phases:
        for n in ([100] if q else [1, 1000]):
            for s in (["vigild", "python"] if q else ["relay", "vigild", "python"] + (["nodered"] if have_nodered else [])):
                res = run_one(s, 100 if q else 1000, [10 if q else 1], n, step, warm, f"c{n}_{s}")
                res["workload"] = "clients"
                out["clients"].append(res)
    # Saturation ramp, 100 clients, stop at the first step not sustained.
    if "ramp" in phases:
        rates = [20, 100, 200] if q else [1, 2, 5, 7.5, 10, 15, 20, 30, 40]
        devs = 100 if q else 1000
        # vigild also with one client: its ingest + storage ceiling without fan-out.
        for s, n in [(x, 1 if x == "sub" else wclients) for x in subjects + ["mqttws"]] + [("vigild", 1)]:
            res = run_one(s, devs, rates, n, 2 if q else 4, 1, f"ramp_{s}_{n}c", stop_on_fail=True)
            res["sustainable_msgs_per_s"] = sustainable(res)
            log(f"   ramp {s}: sustainable {res['sustainable_msgs_per_s']:.0f} msg/s")
            out["ramp"].append(res)
    if "history" in phases:
        out["history"] = history_bench(q)
    out["elapsed_s"] = round(time.monotonic() - T0, 1)
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "w") as f:
        json.dump(out, f, indent=1)
    log(f"results: {args.results} ({out['elapsed_s']} s)")


if __name__ == "__main__":
    main()
