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

import ramp_rate  # bench/ramp_rate.py: the ramp's pass rule and bisection (pure)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--out", required=True, help="scratch dir (logs, dbs)")
ap.add_argument("--results", default=os.path.join(HERE, "results", "latest.json"))
ap.add_argument("--only", default="", help="comma list of phases: fixed,clients,ramp,history,histload,alarms,stores,instances")
args = ap.parse_args()

BENCH = os.path.join(args.build, "bench", "vigil-bench")
BENCH_ALARM = os.path.join(args.build, "bench", "vigil-bench-alarm")
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


def start_vigild(bport, lport, db, logname, extra=()):
    """vigild on loopback as every measurement runs it. The whole fleet is
    admitted at once (--new-devices-burst): the bench measures throughput,
    and at the default 50 new ids/s a 10,000-device fleet would take 160 s
    to be admitted, its readings refused meanwhile."""
    return Proc([VIGILD, "--broker", f"mqtt://127.0.0.1:{bport}", "--listen", f"127.0.0.1:{lport}",
                 "--max-ws-clients", "5000", "--max-conns-per-ip", "5000", "--new-devices-burst", "20000",
                 "--db", db,
                 "--client-id", f"vigild-bench-{lport}", "--log-level", "warn", *extra], logname)


def vigild_token(db, path=None):
    """A viewer API token for vigild's database (vigild answers 401 without
    one), made with its CLI; also written to a 0600 file for vigil-bench's
    --token-file (db + ".token" unless path: a postgresql:// URL is no file
    name). Returns (token, path)."""
    r = subprocess.run([VIGILD, "token", "add", "bench", "--role", "viewer", "--db", db],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"vigild token add: {r.stderr.strip()}")
    tok = r.stdout.strip()
    path = path or db + ".token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tok + "\n")
    return tok, path


def remove_db(db):
    """A measurement's scratch database, its WAL files and token file."""
    for sfx in ("", "-wal", "-shm", ".token"):
        try:
            os.unlink(db + sfx)
        except OSError:
            pass


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


def run_bench(bport, devices, rates, clients, step, warmup, label, recv, watch, stop_on_fail=False):
    """vigil-bench run against the broker on bport, receivers as recv says,
    CPU of the watch list ("name:pid"); its JSON."""
    jpath = os.path.join(args.out, f"{label}.json")
    argv = [BENCH, "run", "--broker-port", str(bport), "--devices", str(devices),
            "--rates", ",".join(str(r) for r in rates), "--step", str(step), "--warmup", str(warmup),
            "--drain", "4", "--clients", str(clients), "--json", jpath, "--label", label] + recv
    for w in watch:
        argv += ["--watch", w]
    if stop_on_fail:
        argv.append("--stop-on-fail")
    budget = 60 + warmup + step * len(rates) + devices / 500 + clients / 50
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=budget)
    tail = r.stdout.decode(errors="replace").strip().splitlines()
    for line in tail[-1:]:
        log("   " + line.strip())
    with open(jpath) as f:
        return json.load(f)


def run_one(subject, devices, rates, clients, step, warmup, label, stop_on_fail=False, vextra=(), count_stored=True):
    """One measurement: fresh broker, fresh subject, vigil-bench. Returns the
    vigil-bench JSON plus subject extras. vextra: more vigild options;
    count_stored False: no wait for the rows stored (the ramp's probes, which
    only need the step)."""
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
                subj = start_vigild(bport, lport, db, "vigild.log", vextra)
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
        log(f"{label}: {subject}, {devices} devices x {rates} Hz, {clients} clients")
        res = run_bench(bport, devices, rates, clients, step, warmup, label, recv, watch, stop_on_fail)
        res["subject"] = subject
        # Rows stored: vigild's counter (its writer may lag a little), or the Python table.
        if not count_stored:
            pass
        elif subject == "vigild":
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
            remove_db(db)


def ramp_refine(res, subject, clients, step, max_probes):
    """Refines a coarse ramp's sustainable rate: bisects between its last
    passed and first failed step (ramp_rate.bisect), each probe one step at
    the middle rate on a fresh broker and subject (as the ramp starts: 1 s
    warm-up, then the step), judged by the ramp's own rule. Sets
    res["sustainable_msgs_per_s"] and res["refine"] (the probes, the bracket
    before and after, its width in readings/s)."""
    devices = res["devices"]
    lo, hi = ramp_rate.bracket(res["steps"])
    probes = []

    def probe(hz):
        p = run_one(subject, devices, [hz], clients, step, 1, f"{res['label']}_p{len(probes) + 1}",
                    count_stored=False)
        st = p["steps"][0] if p.get("steps") else None
        row = {"rate_hz": hz, "label": p["label"], "passed": st is not None and ramp_rate.step_ok(st), "step": st}
        for k in ("error", "sent", "lost", "publishers_connected"):
            if k in p:
                row[k] = p[k]
        probes.append(row)
        log(f"   probe {hz:g} Hz: {'passed' if row['passed'] else 'failed'}"
            + (f" ({st['delivered_msgs_per_s_per_client']:.0f} of {st['offered_msgs_per_s']:.0f}/s, p99 {st['p99_ms']:.0f} ms)" if st else ""))
        return row["passed"]

    _, plo, phi = ramp_rate.bisect(lo, hi, devices, probe, max_probes)
    res["refine"] = {"coarse_passed_hz": lo, "coarse_failed_hz": hi, "passed_hz": plo, "failed_hz": phi,
                     "resolution_msgs_per_s": round((phi - plo) * devices) if phi is not None else None,
                     "max_probes": max_probes, "probes": probes}
    res["sustainable_msgs_per_s"] = ramp_rate.refined(res["steps"], [p["step"] for p in probes])


def prefill_hours(db, devices, now):
    """Writes (id, n) devices with n readings at 1 Hz ending at now straight
    into a vigild database whose schema vigild made (schema 6,
    server/store_sqlite.c: one stream per (device, boot), vitals x100 / x10
    as INTEGER when exact, the flags no column holds in reading_meta)."""
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=OFF")
    meta = c.execute("INSERT INTO reading_meta (sensor_type, fw, flags) VALUES (NULL, NULL, ?)", (7 << 16,)).lastrowid
    cols = "k, t, rdelta, object_temp, ambient_temp, heart_rate, spo2, meta"
    for dev_id, n in devices:
        c.execute("INSERT INTO devices (id, first_seen, last_seen) VALUES (?,?,?)", (dev_id, now - 86400000, now))
        key = c.execute("SELECT key FROM devices WHERE id=?", (dev_id,)).fetchone()[0]
        stream = c.execute("INSERT INTO reading_streams (device, boot) VALUES (?, 1)", (key,)).lastrowid
        rows = ((stream, i, now - (n - i) * 1000, 0,
                 36.5 + (i % 10) / 10, 2400, (60 + i % 40) * 10, (95 + i % 5) * 10, meta) for i in range(n))
        c.executemany(f"INSERT INTO stream_readings (stream, {cols}) VALUES (?,?,?,?,?,?,?,?,?)", rows)
    c.execute("INSERT INTO reading_spans SELECT stream, k >> 8, min(t), max(t) FROM stream_readings "
              "GROUP BY stream, k >> 8")
    c.commit()
    c.close()


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
        t_fill = time.monotonic()
        prefill_hours(db, [("H_DAY", 86400)] + [(f"H{d:05d}", 3600) for d in range(1, ndev + 1)], now)
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
        remove_db(db)
    return res


# ---- live latency under history load ----
def history_load(quick):
    """Live p99 while history queries run ÷ live p99 without (issue 13): one
    vigild on a prefilled database (1 h at 1 Hz for each of N history
    devices), a fleet at 1 Hz live with one batched WebSocket client measuring
    publish → WebSocket; first alone, then again while a few threads issue
    one REST history query per history device (1 h, max_points=1000), evenly
    spread over the measured step."""
    import threading
    ndev, nhist, nthreads, step, warm = (200, 200, 2, 10, 3) if quick else (1000, 1000, 4, 30, 5)
    broker, bport, _ = start_broker()
    lport = free_port()
    db = os.path.join(args.out, f"histload-{lport}.db")
    res = {"devices": ndev, "rate_hz": 1, "queries": nhist, "threads": nthreads, "step_s": step,
           "loadavg_before": os.getloadavg()[0]}
    v = None
    try:
        v = start_vigild(bport, lport, db, "vigild-histload.log", ("--retention", "0"))
        wait_port(lport, 20)
        time.sleep(0.5)
        v.stop()  # schema created; now fill it directly
        now = int(time.time() * 1000)
        prefill_hours(db, [(f"Q{d:05d}", 3600) for d in range(1, nhist + 1)], now)
        token, tokfile = vigild_token(db)
        v = start_vigild(bport, lport, db, "vigild-histload.log", ("--retention", "0"))
        if not wait_port(lport, 30):
            raise RuntimeError("vigild did not open its port")
        time.sleep(1.0)  # MQTT subscribe done

        def live(label, during=None):
            jpath = os.path.join(args.out, f"{label}.json")
            argv = [BENCH, "run", "--broker-port", str(bport), "--devices", str(ndev), "--rates", "1",
                    "--step", str(step), "--warmup", str(warm), "--drain", "4", "--clients", "1",
                    "--recv", "ws", "--recv-port", str(lport), "--path", "/ws", "--token-file", tokfile,
                    "--subscribe", '{"type":"subscribe","batch":true}', "--json", jpath, "--label", label,
                    "--watch", f"vigild:{v.pid}"]
            log(f"history load: {label}, {ndev} devices x 1 Hz, 1 batched WS client"
                + (f", {nhist} history queries by {nthreads} threads over {step - 2} s" if during else ""))
            b = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            extra = during(warm + ndev / 500 + 1) if during else {}
            out, _ = b.communicate(timeout=60 + warm + step + ndev / 500)
            for line in out.decode(errors="replace").strip().splitlines()[-1:]:
                log("   " + line.strip())
            with open(jpath) as f:
                r = json.load(f)
            return {"latency_ms": r.get("latency_ms"), "sent": r.get("sent"), "lost": r.get("lost"),
                    "cpu_us_per_msg": (r.get("watch") or {}).get("vigild", {}).get("cpu_us_per_msg"), **extra}

        def queries(start_after):
            """nhist queries, query i issued at t0 + i × window / nhist."""
            window = max(1.0, step - 2)
            t0 = time.monotonic() + start_after
            lock, nxt, lat, errs = threading.Lock(), [0], [], [0]

            def worker():
                while True:
                    with lock:
                        i = nxt[0]
                        nxt[0] += 1
                    if i >= nhist:
                        return
                    delay = t0 + i * window / nhist - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    url = (f"http://127.0.0.1:{lport}/api/devices/Q{i + 1:05d}/readings"
                           f"?from={now - 3600000 - 1000}&to={now}&max_points=1000")
                    t = time.monotonic()
                    try:
                        with api_get(url, token) as r:
                            r.read()
                        with lock:
                            lat.append((time.monotonic() - t) * 1000)
                    except OSError:
                        with lock:
                            errs[0] += 1
            ts = [threading.Thread(target=worker, daemon=True) for _ in range(nthreads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(step + 60)
            return {"query_ms": summary(lat), "query_errors": errs[0],
                    "queries_s": round(time.monotonic() - t0, 1)}

        # Alone before and after (A B A): the host is shared and its load drifts; the
        # lower alone p99 is the baseline (a neighbour's burst inflates one run, not the code).
        res["alone"] = live("histload_alone")
        res["with_queries"] = live("histload_queries", queries)
        res["alone_after"] = live("histload_alone_after")
        a = [(res[k]["latency_ms"] or {}).get("p99") for k in ("alone", "alone_after")]
        b = (res["with_queries"]["latency_ms"] or {}).get("p99")
        if all(a) and b is not None:
            res["p99_alone_ms"] = round(min(a), 3)
            res["p99_ratio"] = round(b / res["p99_alone_ms"], 2)
        log(f"history load: live p99 {a[0]} / {a[1]} ms alone, {b} ms with queries: "
            f"{res.get('p99_ratio')}x; queries {res['with_queries'].get('query_ms')}")
        res["loadavg_after"] = os.getloadavg()[0]
    except Exception as e:  # a failed measurement is a result
        log(f"history load: FAILED: {e}")
        res["error"] = str(e)
    finally:
        if v:
            v.stop()
        broker.stop()
        remove_db(db)
    return res


# ---- alarms ----
ONSET_DESAT_MS = 5000  # spo2_desat's default onset delay (docs/ALARMS.md)


def pct(xs, q):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def summary(xs):
    if not xs:
        return None
    return {"median": round(pct(xs, 0.5), 1), "p99": round(pct(xs, 0.99), 1), "max": round(max(xs), 1),
            "min": round(min(xs), 1), "n": len(xs)}


def iso_ms(s):
    """Epoch ms of an ISO 8601 UTC time as vigild writes it ("…T…Z"), or None."""
    try:
        return round(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)
    except (AttributeError, ValueError):
        return None


def alarm_eval(quick):
    """vigil-bench-alarm: the pure engine's cost per reading and per tick."""
    jpath = os.path.join(args.out, "alarm-eval.json")
    argv = [BENCH_ALARM, "--json", jpath] + (["--devices", "1000,10000", "--readings", "1000000", "--runs", "3"]
                                              if quick else [])
    log("alarms: engine evaluation cost (vigil-bench-alarm " + " ".join(argv[3:]) + ")")
    try:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=240, check=True)
        with open(jpath) as f:
            res = json.load(f)
        for z in res["sizes"]:
            log(f"   {z['devices']:,} devices: {z['ns_per_reading']} ns/reading (min {z['ns_per_reading_min']}), "
                f"tick {z['tick_ns'] / 1000:.0f} µs, {z['heap_bytes_per_device']} B/device")
        return res
    except Exception as e:  # a failed measurement is a result
        log(f"alarms: evaluation FAILED: {e}")
        return {"error": str(e)}


class AlarmWatcher:
    """One WebSocket client of vigild subscribed to no device (so no readings),
    noting the CLOCK_MONOTONIC arrival of every `alarm` message — every client
    gets every alarm (docs/PROTOCOL.md). Runs its own asyncio loop in a thread."""

    def __init__(self, port, token):
        import asyncio
        import threading
        self.port, self.token, self.alarms, self.error = port, token, [], None
        self.loop = asyncio.new_event_loop()
        self.ready, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self._main()), daemon=True)
        self.thread.start()
        if not self.ready.wait(10) or self.error:
            raise RuntimeError(f"alarm watcher did not connect: {self.error}")

    async def _main(self):
        import asyncio
        import websockets
        try:
            async with websockets.connect(f"ws://127.0.0.1:{self.port}/ws", max_size=64 * 1024 * 1024,
                                          extra_headers={"Authorization": f"Bearer {self.token}"}) as ws:
                self.ws = ws
                await ws.send(json.dumps({"type": "subscribe", "devices": []}))
                self.ready.set()
                async for raw in ws:
                    t = time.monotonic_ns()
                    msg = json.loads(raw)
                    for m in msg if isinstance(msg, list) else [msg]:
                        if m.get("type") == "alarm":
                            self.alarms.append((t, m["data"]))
        except (OSError, asyncio.CancelledError, websockets.exceptions.WebSocketException) as e:
            self.error = e
        finally:
            self.ready.set()
            self.done.set()

    def close(self):
        import asyncio
        if not self.done.is_set() and hasattr(self, "ws"):
            asyncio.run_coroutine_threadsafe(self.ws.close(), self.loop)
        self.done.wait(5)


def alarm_latency(quick):
    """Raise latency: a fleet at 1 Hz where a subset of devices desaturates
    (SpO2 80 %, one more every few seconds); from each one's first low reading
    (its publish time, CLOCK_MONOTONIC in vigil-bench) to the spo2_desat
    `alarm` at a WebSocket client. The engine times onset on the readings'
    "ts", so the raw figure includes the 5 s onset delay and the wait for the
    first reading at or past it."""
    # Desaturation starts after_ms into publishing: past the fleet's start-up transient (10,000
    # new devices at once), which is a backlog of its own, not what an alarm costs.
    devices, ndesat, every_ms, after_ms, step, warm = ((1000, 5, 1000, 2000, 16, 1) if quick
                                                       else (10000, 20, 1500, 12000, 50, 3))
    broker, bport, _ = start_broker()
    lport = free_port()
    db = os.path.join(args.out, f"alarms-{lport}.db")
    label = "alarm_latency"
    v = watcher = None
    res = {"devices": devices, "rate_hz": 1, "desat_devices": ndesat, "desat_every_ms": every_ms,
           "desat_after_ms": after_ms,
           "onset_ms": ONSET_DESAT_MS, "loadavg_before": os.getloadavg()[0]}  # the host is shared
    try:
        token, tokfile = vigild_token(db)
        v = start_vigild(bport, lport, db, "vigild-alarms.log")
        if not wait_port(lport, 30):
            raise RuntimeError("vigild did not open its port")
        time.sleep(1.0)  # MQTT subscribe done
        watcher = AlarmWatcher(lport, token)
        jpath = os.path.join(args.out, f"{label}.json")
        argv = [BENCH, "run", "--broker-port", str(bport), "--devices", str(devices), "--rates", "1",
                "--step", str(step), "--warmup", str(warm), "--drain", "4", "--clients", "1",
                "--recv", "ws", "--recv-port", str(lport), "--path", "/ws", "--token-file", tokfile,
                "--subscribe", '{"type":"subscribe","batch":true}', "--json", jpath, "--label", label,
                "--desat-devices", str(ndesat), "--desat-every-ms", str(every_ms),
                "--desat-after-ms", str(after_ms),
                "--watch", f"mosquitto:{broker.pid}", "--watch", f"vigild:{v.pid}"]
        log(f"alarms: raise latency, vigild, {devices} devices x 1 Hz, {ndesat} desaturating "
            f"(one every {every_ms} ms from {after_ms} ms), 1 batched WS client + the alarm watcher")
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60 + warm + step + devices / 500)
        for line in r.stdout.decode(errors="replace").strip().splitlines()[-1:]:
            log("   " + line.strip())
        with open(jpath) as f:
            run = json.load(f)
        # A backlog in vigild delays alarms past the fleet's end: wait (bounded) for the rest.
        want = {d["device"] for d in run.get("desat", []) if d["pub_ns"]}
        end = time.monotonic() + 20
        while time.monotonic() < end and not want <= {a.get("device_id") for _, a in list(watcher.alarms)
                                                      if a.get("condition") == "spo2_desat"}:
            time.sleep(0.2)
        first = {}  # device -> (arrival ns, ALARM) of its first spo2_desat message
        for t, a in list(watcher.alarms):
            if a.get("condition") == "spo2_desat" and a.get("device_id") not in first:
                first[a["device_id"]] = (t, a)
        raw, above, pipeline, wait, started_ok, per = [], [], [], [], 0, []
        for d in run.get("desat", []):
            if not d["pub_ns"] or d["device"] not in first:
                per.append({"device": d["device"], "alarm": False})
                continue
            t, a = first[d["device"]]
            r_ms = (t - d["pub_ns"][0]) / 1e6
            raw.append(r_ms)
            above.append(r_ms - ONSET_DESAT_MS)
            started_ok += iso_ms(a.get("started_at")) == d["ts_ms"][0]  # onset timed on "ts"
            # The reading that raised it: the first one whose ts is onset past the first low one.
            i = next((i for i, ts in enumerate(d["ts_ms"]) if ts - d["ts_ms"][0] >= ONSET_DESAT_MS), None)
            if i is not None and i < len(d["pub_ns"]):
                pipeline.append((t - d["pub_ns"][i]) / 1e6)
                wait.append((d["pub_ns"][i] - d["pub_ns"][0]) / 1e6 - ONSET_DESAT_MS)
            per.append({"device": d["device"], "alarm": True, "raw_ms": round(r_ms, 1),
                        "trigger_reading": i, "priority": a.get("priority"),
                        "retrospective": a.get("retrospective")})
        res.update({"raw_ms": summary(raw), "above_onset_ms": summary(above), "pipeline_ms": summary(pipeline),
                    "onset_wait_ms": summary(wait), "alarms_seen": len(raw), "started_at_is_first_ts": started_ok,
                    "retrospective": sum(1 for p in per if p.get("retrospective")),
                    "per_device": per, "sent": run.get("sent"), "lost": run.get("lost"),
                    "publishers_connected": run.get("publishers_connected"),
                    "reading_latency_ms": run.get("latency_ms"), "watch": run.get("watch"),
                    "loadavg_after": os.getloadavg()[0]})
        if raw:
            log(f"alarms: {len(raw)}/{ndesat} raised; raw median {res['raw_ms']['median']} ms, above onset "
                f"median {res['above_onset_ms']['median']} / max {res['above_onset_ms']['max']} ms; pipeline "
                f"median {res['pipeline_ms']['median'] if pipeline else '?'} ms")
        else:
            log(f"alarms: no spo2_desat alarm seen ({len(watcher.alarms)} alarm messages)")
    except Exception as e:
        log(f"alarms: latency FAILED: {e}")
        res["error"] = str(e)
    finally:
        if watcher:
            watcher.close()
        if v:
            v.stop()
        broker.stop()
        remove_db(db)
    return res


# ---- stores: SQLite and PostgreSQL; 1, 2, 3 instances ----
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import pg_cluster  # noqa: E402  (the tests' private PostgreSQL helper)

CLK_TCK = os.sysconf("SC_CLK_TCK")
CLUSTER_BUCKETS = 64  # server/cluster.c: devices hashed into 64 buckets


def proc__stat(pid):
    """/proc/PID/stat fields after the command name (index 0 = state), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def proc_cpu_s(pid):
    """utime + stime of a live process, seconds (None when gone)."""
    st = proc__stat(pid)
    return (int(st[11]) + int(st[12])) / CLK_TCK if st else None


def postgres_cpu_s(pm):
    """CPU of a postmaster and all its processes: its own, its reaped children's
    (cutime + cstime: backends that ended) and every live child's."""
    st = proc__stat(pm)
    if not st:
        return None
    total = sum(int(x) for x in st[11:15]) / CLK_TCK
    for d in os.listdir("/proc"):
        if d.isdigit():
            c = proc__stat(d)
            if c and int(c[1]) == pm:
                total += (int(c[11]) + int(c[12])) / CLK_TCK
    return total


class BenchPg:
    """The private PostgreSQL of the stores and instances phases
    (tests/support/pg_cluster.py) with production durability: fsync on (the
    tests' -F undone), synchronous_commit on (the default). One database per
    measurement; psql for counts, sizes and the WAL position."""

    def __init__(self):
        self.pg = pg_cluster.PgCluster(server_args=("-c", "fsync=on")).start()
        self.n = 0

    @property
    def pid(self):
        return self.pg.proc.pid

    def sql(self, q, db="postgres"):
        env = dict(os.environ, PGPASSWORD=self.pg.password, PGCONNECT_TIMEOUT="5")
        r = subprocess.run(["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.pg.port), "-U", "vigil", "-d", db, "-c", q],
                           capture_output=True, text=True, timeout=120, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()}")
        return r.stdout.strip()

    def new_db(self):
        self.n += 1
        self.sql(f"CREATE DATABASE bench{self.n}")
        return f"bench{self.n}"

    def wal_lsn(self):
        hi, lo = self.sql("SELECT pg_current_wal_lsn()").split("/")
        return (int(hi, 16) << 32) | int(lo, 16)

    def readings_size(self, db):
        """(bytes, rows, parts) of the readings partitions and reading_seqs
        with all their indexes, after VACUUM; parts: bytes of the readings
        heap, its indexes, the reading_seqs heap and its indexes."""
        self.sql("VACUUM", db)
        row = self.sql("SELECT coalesce(sum(pg_table_size(c.oid)) FILTER (WHERE c.relname <> 'reading_seqs'), 0), "
                       "coalesce(sum(pg_indexes_size(c.oid)) FILTER (WHERE c.relname <> 'reading_seqs'), 0), "
                       "coalesce(sum(pg_table_size(c.oid)) FILTER (WHERE c.relname = 'reading_seqs'), 0), "
                       "coalesce(sum(pg_indexes_size(c.oid)) FILTER (WHERE c.relname = 'reading_seqs'), 0) "
                       "FROM pg_class c WHERE c.oid IN (SELECT inhrelid FROM pg_inherits "
                       "WHERE inhparent = 'readings'::regclass) OR c.relname = 'reading_seqs'", db)
        parts = dict(zip(("readings_heap", "readings_indexes", "seqs_heap", "seqs_indexes"),
                         (int(x) for x in row.split("|"))))
        return sum(parts.values()), int(self.sql("SELECT count(*) FROM readings", db)), parts

    def close(self):
        self.pg.destroy()


def cluster_ready(ports, n):
    """True when every instance sees n members and they own all buckets
    between them; None when vigild has no cluster (no such metric)."""
    ms = [metrics(p) for p in ports]
    if "vigil_cluster_members" not in ms[0]:
        return None
    return (all(m.get("vigil_cluster_members") == n for m in ms)
            and sum(m.get("vigil_cluster_owned_buckets", 0) for m in ms) == CLUSTER_BUCKETS)


def store_run(engine, ninst, load, bp=None):
    """One fixed load (devices, Hz, step s, warm-up s) through ninst vigild on
    one store: readings stored (counted in the database) against sent, the
    rate storage kept up with (to the end of the store's backlog), and the CPU
    of vigild and of PostgreSQL, the WAL and the bytes on disk per reading."""
    devices, hz, step, warm = load
    label = f"store_{engine}_{ninst}i"
    res = {"label": label, "engine": engine, "instances": ninst, "devices": devices, "rate_hz": hz,
           "step_s": step, "loadavg_before": os.getloadavg()[0]}
    broker, bport, _ = start_broker()
    procs, ports, dbfile = [], [], None
    try:
        if engine == "sqlite":
            db = dbfile = os.path.join(args.out, f"{label}-{bport}.db")
            _, tokfile = vigild_token(db)
        else:
            dbname = bp.new_db()
            db = bp.pg.url(dbname)
            _, tokfile = vigild_token(db, os.path.join(args.out, f"{label}.token"))
        for i in range(ninst):
            ports.append(free_port())
            procs.append(start_vigild(bport, ports[-1], db, f"vigild-{label}-{i}.log"))
        if not all(wait_port(p, 30) for p in ports):
            raise RuntimeError("vigild did not open its port")
        if ninst > 1:
            end = time.monotonic() + 20
            while not (ok := cluster_ready(ports, ninst)) and ok is not None and time.monotonic() < end:
                time.sleep(0.2)
            if ok is None:
                res["skipped"] = "vigild without server/cluster.c (no vigil_cluster_* metrics)"
                log(f"{label}: skipped: {res['skipped']}")
                return res
            if not ok:
                raise RuntimeError(f"the {ninst} instances did not share the {CLUSTER_BUCKETS} buckets in 20 s")
        time.sleep(1.0)  # MQTT subscribe done
        cpu0 = [proc_cpu_s(p.pid) for p in procs]
        pg0, wal0 = (postgres_cpu_s(bp.pid), bp.wal_lsn()) if bp else (None, None)
        log(f"{label}: {engine}, {ninst} vigild, {devices} devices x {hz} Hz for {warm}+{step} s, 1 WS client")
        recv = ["--recv", "ws", "--recv-port", str(ports[0]), "--path", "/ws", "--token-file", tokfile,
                "--subscribe", '{"type":"subscribe","batch":true}']
        watch = [f"mosquitto:{broker.pid}"] + [f"vigild{i}:{p.pid}" for i, p in enumerate(procs)]
        run = run_bench(bport, devices, [hz], 1, step, warm, label, recv, watch)
        # The store's backlog: wait (bounded) until every reading is stored or the count stops.
        t_end, last, same = time.monotonic(), -1, 0
        while time.monotonic() < t_end + 30:
            ms = [metrics(p) for p in ports]
            cur = sum(m.get("vigil_stored_total", 0) for m in ms)
            same = same + 1 if cur == last else 0
            if cur >= run["sent"] or same >= 6:  # all stored, or 3 s without progress
                break
            last = cur
            time.sleep(0.5)
        drain_s = time.monotonic() - t_end
        vig_s = sum(proc_cpu_s(p.pid) - c for p, c in zip(procs, cpu0))
        pg_s = postgres_cpu_s(bp.pid) - pg0 if bp else None
        wal = bp.wal_lsn() - wal0 if bp else None
        res["store_dropped"] = sum(m.get("vigil_store_dropped_total", 0) for m in ms)
        for p in procs:  # SQLite: the last connection to close checkpoints the WAL
            p.stop(10)
        procs = []
        if engine == "sqlite":
            stored = sqlite_count(db, "readings")
            size = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
        else:
            size, stored, parts = bp.readings_size(dbname)
            res["bytes_per_reading_parts"] = {k: round(v / stored, 1) for k, v in parts.items()}
        send_s = run["sent"] / run["offered_msgs_per_s"] if run.get("offered_msgs_per_s") else None
        res.update({"sent": run["sent"], "stored": stored, "lost": run["lost"],
                    "offered_msgs_per_s": run["offered_msgs_per_s"],
                    "stored_per_s": round(stored / (send_s + drain_s), 1) if send_s and stored else None,
                    "drain_s": round(drain_s, 1), "latency_ms": run["latency_ms"],
                    "vigild_cpu_s": round(vig_s, 2), "vigild_us_per_reading": round(vig_s * 1e6 / stored, 2),
                    "postgres_cpu_s": round(pg_s, 2) if bp else None,
                    "postgres_us_per_reading": round(pg_s * 1e6 / stored, 2) if bp else None,
                    "wal_bytes_per_reading": round(wal / stored, 1) if bp else None,
                    "bytes_on_disk": size, "bytes_per_reading": round(size / stored, 1),
                    "broker_deliveries_per_reading": ninst,
                    "mosquitto_us_per_msg": run["watch"]["mosquitto"]["cpu_us_per_msg"],
                    "watch": run["watch"], "loadavg_after": os.getloadavg()[0]})
        log(f"   {label}: {stored:,} of {run['sent']:,} stored ({res['stored_per_s']:,.0f}/s, drain "
            f"{drain_s:.1f} s); vigild {res['vigild_us_per_reading']} µs, postgres "
            f"{res['postgres_us_per_reading']} µs, WAL {res['wal_bytes_per_reading']} B, "
            f"disk {res['bytes_per_reading']} B per reading")
    except Exception as e:  # a failed measurement is a result
        log(f"   {label}: FAILED: {e}")
        res["error"] = str(e)
    finally:
        for p in procs:
            p.stop(10)
        broker.stop()
        if dbfile:
            remove_db(dbfile)
    return res


def stores_bench(quick, phases, out):
    """The stores phase (SQLite, then PostgreSQL, one vigild) and the
    instances phase (1, 2, 3 vigild on one broker and one PostgreSQL; the one
    instance is the stores phase's run when both are asked for)."""
    load = (200, 5, 5, 1) if quick else (2000, 2, 20, 2)  # 4,000 msg/s: under this host's ceiling
    try:
        bp = BenchPg()
    except Exception as e:
        log(f"stores: no private PostgreSQL: {e}")
        bp = None
    try:
        if "stores" in phases:
            out["stores"] = [store_run("sqlite", 1, load)] + ([store_run("postgresql", 1, load, bp)] if bp else [])
        if "instances" in phases and bp:
            one = [r for r in out.get("stores", []) if r["engine"] == "postgresql"]
            out["instances"] = (one or [store_run("postgresql", 1, load, bp)]) + \
                [store_run("postgresql", n, load, bp) for n in (2, 3)]
    finally:
        if bp:
            bp.close()


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
    phases = set((args.only or "fixed,clients,ramp,quiet,history,histload,alarms,stores,instances").split(","))
    have_nodered = os.path.exists(NODERED)
    subjects = ["sub", "relay", "vigild", "python"] + (["nodered"] if have_nodered else [])
    if not have_nodered:
        log("Node-RED not installed: skipped (see bench/run.sh's install step)")
    step, warm = (2, 1) if q else (6, 2)
    out = {"quick": q, "versions": versions(), "fixed": [], "clients": [], "ramp": [], "history": {}, "alarms": {}}
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
    # Saturation ramp, 100 clients, stop at the first step not sustained; then
    # bisect between the last passed and the first failed step (ramp_refine):
    # up to 3 one-step probes (1 in --quick, to keep it short), so a rate is known to ~1,000
    # readings/s or ~5 % instead of to one coarse step.
    if "ramp" in phases:
        rates = [20, 100, 200] if q else [1, 2, 5, 7.5, 10, 15, 20, 30, 40]
        devs = 100 if q else 1000
        rstep = 2 if q else 4
        # vigild also with one client: its ingest + storage ceiling without fan-out.
        for s, n in [(x, 1 if x == "sub" else wclients) for x in subjects + ["mqttws"]] + [("vigild", 1)]:
            res = run_one(s, devs, rates, n, rstep, 1, f"ramp_{s}_{n}c", stop_on_fail=True)
            res["sustainable_msgs_per_s"] = 0.0  # a failed run (error) sustained nothing
            if "error" not in res:
                res["sustainable_coarse_msgs_per_s"] = ramp_rate.sustainable(res["steps"])
                ramp_refine(res, s, n, rstep, 1 if q else 3)
                rf = res["refine"]
                log(f"   ramp {s}: sustainable {res['sustainable_msgs_per_s']:.0f} msg/s (coarse "
                    f"{res['sustainable_coarse_msgs_per_s']:.0f}; {len(rf['probes'])} probes, bracket "
                    f"{rf['passed_hz']:g}-{'-' if rf['failed_hz'] is None else format(rf['failed_hz'], 'g')} Hz)")
            out["ramp"].append(res)
    # The quiet ward (issue 13: <= 5 % of a core, p99 unchanged): 1,000 x 1 Hz,
    # 10 clients, storage on, as shipped and with the opt-in wake-up windows,
    # and the minimal relay on the same workload (what forwarding alone costs:
    # the floor under any target); and the fleet case with the read hold off
    # (--ingest-hold-us 0), against the default (auto) of the fixed workloads.
    if "quiet" in phases:
        out["quiet"] = []
        variants = [("default", ()), ("flush 5 ms", ("--ws-flush-ms", "5")),
                    ("flush 5 ms + hold 5 ms", ("--ws-flush-ms", "5", "--ingest-hold-us", "5000"))]
        for name, vx in variants:
            res = run_one("vigild", 200 if q else 1000, [1], 10, step, warm, f"quiet_{len(out['quiet'])}", vextra=vx)
            res["variant"], res["workload"] = name, "quiet"
            out["quiet"].append(res)
        res = run_one("relay", 200 if q else 1000, [1], 10, step, warm, f"quiet_{len(out['quiet'])}")
        res["variant"], res["workload"] = "minimal relay (no storage, no parsing)", "quiet_relay"
        out["quiet"].append(res)
        if not q:
            res = run_one("vigild", 10000, [1], 1, step, warm, "w_10kx1_vigild_1c_nohold",
                          vextra=("--ingest-hold-us", "0"))
            res["variant"], res["workload"] = "10k x 1 Hz, 1 client, read hold off", "w_10kx1_1c_nohold"
            out["quiet"].append(res)
    if "history" in phases:
        out["history"] = history_bench(q)
    if "histload" in phases:
        out["history_load"] = history_load(q)
    if "alarms" in phases:
        out["alarms"] = {"eval": alarm_eval(q), "latency": alarm_latency(q)}
    if phases & {"stores", "instances"}:
        stores_bench(q, phases, out)
    out["elapsed_s"] = round(time.monotonic() - T0, 1)
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "w") as f:
        json.dump(out, f, indent=1)
    log(f"results: {args.results} ({out['elapsed_s']} s)")


if __name__ == "__main__":
    main()
