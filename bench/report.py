#!/usr/bin/python3
"""Turns bench/results/latest.json into the plots (docs/img/bench-*.png, via
gnuplot) and the generated section of docs/BENCHMARKS.md (between the
BEGIN/END RESULTS markers; the prose around it is written by hand)."""
import json
import os
import subprocess
import sys
import tempfile

import ramp_rate  # bench/ramp_rate.py: the ramp's pass rule (shared with orchestrate.py)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
res_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results", "latest.json")
doc = sys.argv[2] if len(sys.argv) > 2 else os.path.join(SRC, "docs", "BENCHMARKS.md")
img = os.path.join(os.path.dirname(os.path.abspath(doc)), "img")  # quick runs keep theirs in bench/out
R = json.load(open(res_path))

NAMES = {"sub": "counting subscriber (MQTT, C)", "relay": "minimal relay (C)", "vigild": "vigild",
         "python": "Python design", "nodered": "Node-RED", "mqttws": "Mosquitto WS direct",
         "vigild_1c": "vigild, 1 WS client"}
ORDER = ["sub", "relay", "vigild", "python", "nodered", "mqttws", "vigild_1c"]


def f(x, nd=1):
    if x is None:
        return "—"
    if isinstance(x, (int,)) or (isinstance(x, float) and x.is_integer() and abs(x) >= 100):
        return f"{int(x):,}"
    return f"{x:,.{nd}f}"


def ratio(a, b):
    if not a or not b:
        return "—"
    return f"{a / b:.2f}×" if a / b < 10 else f"{a / b:.0f}×"


def w(res, k):
    return res.get("watch", {}).get(res.get("subject"), {}).get(k)


lines = []
P = lines.append
v = R["versions"]
P(f"Run: {v['date']}, git `{v['git']}`, {'quick' if R['quick'] else 'full'} run, {R.get('elapsed_s', '?')} s.  ")
P(f"Machine: {v['cpu']}, {v['cores']} cores (shared), {v['mem_mb']:,} MB, Linux {v['kernel']}.  ")
P(f"Versions: {v['mosquitto']}; vigild {v['vigild']}; {v['python']}, paho-mqtt {v['paho_mqtt']}, "
  f"websockets {v['websockets']}; Node {v['node']}, Node-RED {v['node_red']}.")
P("")

ramp = {(r["subject"] + ("_1c" if r["subject"] != "sub" and r["clients"] == 1 else "")): r
        for r in R.get("ramp", []) if "error" not in r}
sus = {k: r.get("sustainable_msgs_per_s") for k, r in ramp.items()}


def probe_steps(r):
    """The bisection's one-step probes of a ramp row (none in results from
    before the bisection, which render as the coarse ramp alone)."""
    return [p["step"] for p in (r.get("refine") or {}).get("probes", [])]


def interval(r):
    """Nominal readings/s of the highest passed and the lowest failed rate
    (ramp or probe), the interval the true rate lies in; results from before
    the bisection give the coarse ramp's. The failed end is None if nothing
    failed."""
    rf = r.get("refine")
    lo, hi = (rf["passed_hz"], rf["failed_hz"]) if rf else ramp_rate.bracket(r["steps"])
    return lo * r["devices"], (hi * r["devices"] if hi is not None else None)


def first_fail_msgs(r):
    return interval(r)[1]


def ratio_bounds(a, b):
    """The range a ÷ b can take when each true rate lies between its
    sustainable rate and its first failed rate; "" when either is open."""
    ah, bh = first_fail_msgs(ramp[a]), first_fail_msgs(ramp[b])
    if not (sus.get(a) and sus.get(b) and ah and bh):
        return ""
    return f" (bounds {sus[a] / bh:.2f}–{ah / sus[b]:.2f}×)"


if ramp:
    nc = next((r["clients"] for k, r in ramp.items() if k != "sub"), "?")
    refined = any("refine" in r for r in ramp.values())
    nprobe = max((r.get("refine") or {}).get("max_probes", 0) for r in ramp.values())
    P(f"### Saturation ramp — sustainable msgs/s ({next(iter(ramp.values()))['devices']:,} devices, QoS 1, "
      f"{nc} WebSocket clients; the counting subscriber is 1 MQTT client)")
    P("")
    P("Sustainable = highest step delivered in full (≥ 95 % of offered, per client) with p99 ≤ 1 s"
      + (", the coarse ramp's steps then refined by bisection: up to "
         f"{nprobe} one-step probe{'s' if nprobe != 1 else ''} per row, each on a fresh broker and subject, halve the interval between the last passed and the first failed rate while it is wider "
         f"than {ramp_rate.TOL_ABS:,} readings/s and {ramp_rate.TOL_REL * 100:g} % of the passed rate. "
         "Known to: the width of the interval left (the true rate lies between the sustainable rate and that width above it)."
         if refined else " (one coarse ramp: known to one step).")
      + " Per-client rate: every client receives every reading, so the subject's total output is this × clients.")
    P("")
    P("| subject | sustainable msgs/s per client | known to (readings/s) | total deliveries/s | ÷ counting subscriber | ÷ minimal relay | ÷ Python design | first failing step (offered → delivered per client, p99) | probes (rate: passed ✓ / failed ✗) |")
    P("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for k in ORDER:
        if k not in ramp:
            continue
        r = ramp[k]
        fs = ramp_rate.first_failure(r["steps"], probe_steps(r))
        fail = (f"{f(fs['offered_msgs_per_s'], 0)} → {f(fs['delivered_msgs_per_s_per_client'], 0)}, {f(fs['p99_ms'])} ms"
                if fs else "none (top step sustained)")
        lo, hi = interval(r)
        known = f(hi - lo, 0) if hi is not None else "—"
        probes = ", ".join(f"{f(p['rate_hz'] * r['devices'], 0)} {'✓' if p['passed'] else '✗'}"
                           + (" (run failed)" if p.get("error") else "")
                           for p in (r.get("refine") or {}).get("probes", [])) or "—"
        P(f"| {NAMES[k]} ({r['clients']} client{'s' if r['clients'] > 1 else ''}) | {f(sus[k], 0)} | {known} | {f(sus[k] * r['clients'], 0)} | {ratio(sus[k], sus.get('sub'))} | "
          f"{ratio(sus[k], sus.get('relay'))} | {ratio(sus[k], sus.get('python'))} | {fail} | {probes} |")
    P("")

fixed = [r for r in R.get("fixed", []) if "error" not in r]
wls = []
for r in fixed:
    if r["workload"] not in wls:
        wls.append(r["workload"])
for wl in wls:
    rs = {r["subject"]: r for r in fixed if r["workload"] == wl}
    any_r = next(iter(rs.values()))
    nc = next((r["clients"] for k, r in rs.items() if k != "sub"), "?")
    P(f"### {any_r['devices']:,} devices × {any_r['steps'][0]['rate_hz']:g} Hz, QoS 1, {nc} WebSocket clients")
    P("")
    P("| subject | offered msgs/s | delivered msgs/s per client | p50 ms | p99 ms | p99.9 ms | max ms | lost | dup | rows stored | CPU µs/msg | CPU % of a core | peak RSS MB | broker CPU µs/msg |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in ORDER:
        if k not in rs:
            continue
        r = rs[k]
        lat = r["latency_ms"]
        cpu = w(r, "cpu_us_per_msg")
        util = w(r, "cpu_util")
        rss = w(r, "vmhwm_kb")
        mq = r["watch"].get("mosquitto", {}).get("cpu_us_per_msg")
        P(f"| {NAMES[k]} | {f(r['offered_msgs_per_s'], 0)} | {f(r['delivered_msgs_per_s_per_client'], 0)} | "
          f"{f(lat['p50'], 2)} | {f(lat['p99'], 2)} | {f(lat['p999'], 2)} | {f(lat['max'], 1)} | "
          f"{f(r['lost'], 0)} | {f(r['duplicates'], 0)} | {f(r.get('stored'), 0)} | "
          f"{f(cpu, 1) if cpu is not None else '—'} | {f(util * 100, 0) if util is not None else '—'} | "
          f"{f(rss / 1024, 1) if rss else '—'} | {f(mq, 1)} |")
    P("")

cl = [r for r in R.get("clients", []) if "error" not in r]
if cl:
    P(f"### WebSocket client scaling ({cl[0]['devices']:,} devices × {cl[0]['steps'][0]['rate_hz']:g} Hz)")
    P("")
    P("| subject | clients | ready | closed by server | delivered msgs/s per client | total deliveries/s | lost (all clients) | p99 ms | CPU µs/msg | peak RSS MB |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in cl:
        P(f"| {NAMES[r['subject']]} | {r['clients']:,} | {r['receivers_ready']:,} | {r['receivers_closed']:,} | "
          f"{f(r['delivered_msgs_per_s_per_client'], 0)} | {f(r['delivered_msgs_per_s_total'], 0)} | {f(r['lost'], 0)} | "
          f"{f(r['latency_ms']['p99'], 1)} | {f(w(r, 'cpu_us_per_msg'), 1)} | {f((w(r, 'vmhwm_kb') or 0) / 1024, 1)} |")
    P("")

h = R.get("history", {})
if h and "error" not in h:
    d, a = h["day_1hz_1000pts"], h["hour_all_devices"]
    P("### History queries (vigild REST, prefilled SQLite)")
    P("")
    P("| query | result | time |")
    P("|---|---|---:|")
    P(f"| 24 h at 1 Hz, one device, `max_points=1000` | {d['total']:,} readings → {d['points']:,} buckets, {d['bytes']:,} bytes | median {d['median_ms']} ms (min {d['min_ms']}, max {d['max_ms']}, {d['reps']} runs) |")
    P(f"| 1 h at 1 Hz for each of {a['devices']:,} devices (one request each) | {a['points']:,} points | {a['total_ms']:,.0f} ms total, {a['per_device_ms']} ms per device |")
    P("")

def store_rows(rs):
    """Rows of the stores / instances tables: one per measurement."""
    P("| store | vigild instances | offered msgs/s | sent | stored | stored ÷ sent | stored/s (to the end of the backlog) | "
      "backlog drained after s | vigild CPU µs/reading | PostgreSQL CPU µs/reading | vigild + PostgreSQL µs | "
      "WAL B/reading | on disk B/reading | broker deliveries/reading | broker CPU µs/msg | p99 ms (WS) |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rs:
        name = "PostgreSQL" if r["engine"] == "postgresql" else "SQLite"
        if "skipped" in r or "error" in r:
            P(f"| {name} | {r['instances']} | {r.get('skipped') or 'FAILED: ' + r['error']} |" + " |" * 13)
            continue
        tot = r["vigild_us_per_reading"] + (r["postgres_us_per_reading"] or 0)
        P(f"| {name} | {r['instances']} | "
          f"{f(r['offered_msgs_per_s'], 0)} | {f(r['sent'], 0)} | {f(r['stored'], 0)} | {r['stored'] / r['sent']:.4f} | "
          f"{f(r['stored_per_s'], 0)} | {f(r['drain_s'])} | {f(r['vigild_us_per_reading'])} | "
          f"{f(r['postgres_us_per_reading'])} | {f(tot)} | {f(r['wal_bytes_per_reading'], 0)} | "
          f"{f(r['bytes_per_reading'])} | {r['broker_deliveries_per_reading']} | {f(r['mosquitto_us_per_msg'])} | "
          f"{f(r['latency_ms']['p99'], 1)} |")
    P("")


st = R.get("stores") or []
ins = R.get("instances") or []
if st or ins:
    r0 = next((r for r in st + ins if "devices" in r), {})
    P(f"### Stores: SQLite and PostgreSQL ({r0.get('devices', 0):,} devices × {r0.get('rate_hz', '?')} Hz, "
      f"{r0.get('step_s', '?')} s, 1 batched WebSocket client)")
    P("")
    if R.get("stores_run"):
        P(f"Measured apart from the rest: {R['stores_run']}.")
        P("")
    P("CPU per reading: the process's CPU (PostgreSQL: the postmaster and all its children, /proc) from the "
      "start of the load to the end of the store's backlog, ÷ readings counted in the database. "
      "On disk: SQLite's file after vigild's closing checkpoint; PostgreSQL's readings partitions + "
      "reading_seqs with their indexes after VACUUM. PostgreSQL with fsync and synchronous_commit on.")
    P("")
    if st:
        store_rows(st)
        sq = next((r for r in st if r["engine"] == "sqlite" and "stored" in r), None)
        pg = next((r for r in st if r["engine"] == "postgresql" and "stored" in r), None)
        if sq and pg:
            P(f"PostgreSQL ÷ SQLite: CPU per reading (vigild + PostgreSQL ÷ vigild) "
              f"{ratio(pg['vigild_us_per_reading'] + pg['postgres_us_per_reading'], sq['vigild_us_per_reading'])}, "
              f"vigild alone {ratio(pg['vigild_us_per_reading'], sq['vigild_us_per_reading'])}, "
              f"bytes on disk per reading {ratio(pg['bytes_per_reading'], sq['bytes_per_reading'])}.")
            P("")
    if ins:
        P("Several instances on this machine (one broker, one PostgreSQL; every instance receives every reading, "
          "only the bucket's owner stores it; the WebSocket client on the first instance):")
        P("")
        store_rows(ins)


hl = R.get("history_load") or {}
if hl and "error" not in hl and hl.get("with_queries"):
    P(f"### Live latency while history queries run ({hl['devices']:,} devices × {hl['rate_hz']} Hz, "
      f"1 batched WebSocket client; {hl['queries']:,} REST history queries, 1 h at 1 Hz of one device each, "
      f"`max_points=1000`, by {hl['threads']} threads spread over the {hl['step_s']} s step)")
    P("")
    P("| run | live p50 ms | live p99 ms | live max ms | lost | vigild CPU µs/msg | history query median / p99 ms |")
    P("|---|---:|---:|---:|---:|---:|---:|")
    for name, k in (("alone", "alone"), ("with the history queries", "with_queries"), ("alone, after", "alone_after")):
        r = hl.get(k) or {}
        l = r.get("latency_ms") or {}
        q = r.get("query_ms")
        P(f"| {name} | {f(l.get('p50'), 2)} | {f(l.get('p99'), 2)} | {f(l.get('max'), 1)} | {f(r.get('lost'), 0)} | "
          f"{f(r.get('cpu_us_per_msg'), 1)} | "
          + (f"{q['median']:,.1f} / {q['p99']:,.1f} ({q['n']:,} done, {r.get('query_errors', 0)} failed)" if q else "—")
          + " |")
    P("")
    P(f"Live p99 with the queries ÷ live p99 alone (the lower of the two alone runs): **{f(hl.get('p99_ratio'), 2)}×** "
      f"(target ≤ 1.2×); host load average {f(hl.get('loadavg_before'), 1)} before, {f(hl.get('loadavg_after'), 1)} after.")
    P("")

al = R.get("alarms") or {}
ev, lat = al.get("eval") or {}, al.get("latency") or {}
if (ev and "error" not in ev) or (lat and "error" not in lat):
    P("### Alarms")
    P("")
    if al.get("run"):
        P(f"Measured apart from the rest: {al['run']}.")
        P("")
if ev and "error" not in ev:
    P("Engine evaluation (`vigil-bench-alarm`: the pure engine, readings in round-robin device order, "
      "no broker; the thread's CPU time, median of the runs, min in brackets — the host is shared, so "
      "the wall-clock median is shown apart):")
    P("")
    P("| devices | readings per run × runs | ns per reading | wall-clock ns | harness alone | tick (all devices) | tick per device | ticks at 4 Hz, per reading at 1 Hz | heap per device | RSS per device |")
    P("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for z in ev["sizes"]:
        P(f"| {z['devices']:,} | {z['readings_per_run']:,} × {z['runs']} | {z['ns_per_reading']:.0f} ({z['ns_per_reading_min']:.0f}) | "
          f"{f(z.get('wall_ns_per_reading'), 0)} | "
          f"{z['harness_ns_per_reading']:.0f} | {z['tick_ns'] / 1000:,.0f} µs | {z['tick_ns_per_device']:.0f} ns | "
          f"{4 * z['tick_ns_per_device']:,.0f} ns | {z['heap_bytes_per_device']:,.0f} B | {z['rss_bytes_per_device']:,.0f} B |")
    P("")
if lat and "error" not in lat and lat.get("raw_ms"):
    def ms(s, k):
        return f"{s[k]:,.1f}" if s else "—"
    P(f"Raise latency (vigild, {lat['devices']:,} devices × {lat['rate_hz']} Hz, {lat['desat_devices']} of them "
      f"desaturating one every {lat['desat_every_ms'] / 1000:g} s; {lat['alarms_seen']}/{lat['desat_devices']} "
      f"spo2_desat alarms seen, {lat['started_at_is_first_ts']} with `started_at` = the first low reading's ts; "
      f"onset delay {lat['onset_ms'] / 1000:g} s):")
    P("")
    P("| from → to | median ms | p99 ms | max ms |")
    P("|---|---:|---:|---:|")
    for name, k in (("first low reading published → WebSocket `alarm` (raw)", "raw_ms"),
                    ("raw − onset delay", "above_onset_ms"),
                    ("of which: waiting for the first reading ≥ onset past the first low one", "onset_wait_ms"),
                    ("of which: that reading published → WebSocket `alarm` (pipeline)", "pipeline_ms")):
        sm = lat.get(k)
        P(f"| {name} | {ms(sm, 'median')} | {ms(sm, 'p99')} | {ms(sm, 'max')} |")
    rl = lat.get("reading_latency_ms") or {}
    vw = (lat.get("watch") or {}).get("vigild", {})
    P("")
    P(f"Same run: {f(lat.get('sent'), 0)} readings sent, {f(lat.get('lost'), 0)} lost, reading publish → WebSocket "
      f"p50 {f(rl.get('p50'), 2)} / p99 {f(rl.get('p99'), 2)} ms; vigild {f(vw.get('cpu_us_per_msg'), 1)} µs CPU "
      f"per reading, peak RSS {f((vw.get('vmhwm_kb') or 0) / 1024, 1)} MB; host load average "
      f"{f(lat.get('loadavg_before'), 1)} before, {f(lat.get('loadavg_after'), 1)} after.")
    P("")

qw = [r for r in (R.get("quiet") or []) if "error" not in r]
if qw:
    P("### Quiet ward and the opt-in wake-up windows (vigild, storage on)")
    P("")
    P("`--ws-flush-ms` holds the web thread's drain (default 0), `--ingest-hold-us` the ingest's next read "
      "(and sends the held PUBACKs together, corked; default auto: 1 ms while readings arrive at 3,000/s or more, "
      "so never at the quiet ward). The minimal relay row is the same workload forwarded without parsing or storage.")
    P("")
    P("| workload | options | offered msgs/s | lost | p50 ms | p99 ms | vigild CPU µs/reading | vigild % of a core | peak RSS MB | broker CPU µs/msg |")
    P("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in qw:
        lat = r["latency_ms"]
        mq = r["watch"].get("mosquitto", {}).get("cpu_us_per_msg")
        util = w(r, "cpu_util")
        P(f"| {r['devices']:,} × {r['steps'][0]['rate_hz']:g} Hz, {r['clients']} client{'s' if r['clients'] > 1 else ''} | "
          f"{r['variant']} | {f(r['offered_msgs_per_s'], 0)} | {f(r['lost'], 0)} | {f(lat['p50'], 2)} | {f(lat['p99'], 2)} | "
          f"{f(w(r, 'cpu_us_per_msg'), 1)} | {f(util * 100 if util is not None else None, 1)} | "
          f"{f((w(r, 'vmhwm_kb') or 0) / 1024, 1)} | {f(mq, 1)} |")
    P("")

# ---- targets ----
def fx(wl, s):
    return next((r for r in fixed if r["workload"] == wl and r["subject"] == s), None)

if not R["quick"] and ramp:
    P("### Targets (reported, never asserted)")
    P("")
    P("| target | measured | verdict |")
    P("|---|---|---|")
    def row(name, meas, ok):
        P(f"| {name} | {meas} | {'met' if ok else '**missed**'} |")
    if sus.get("vigild") and sus.get("sub"):
        row("vigild ≥ 0.9× counting subscriber (sustainable, storage + 100 WS clients on)",
            f"{f(sus['vigild'], 0)} vs {f(sus['sub'], 0)} msgs/s = {sus['vigild'] / sus['sub']:.2f}×" + ratio_bounds("vigild", "sub"),
            sus["vigild"] >= 0.9 * sus["sub"])
    if sus.get("vigild") and sus.get("python"):
        row("vigild ≥ 20× Python design (100 clients, storage on)",
            f"{sus['vigild'] / sus['python']:.1f}×" + ratio_bounds("vigild", "python"), sus["vigild"] >= 20 * sus["python"])
    if sus.get("vigild") and sus.get("nodered"):
        row("vigild ≥ 10× Node-RED (100 clients)", f"{sus['vigild'] / sus['nodered']:.1f}×" + ratio_bounds("vigild", "nodered"),
            sus["vigild"] >= 10 * sus["nodered"])
    a, b = fx("w_1kx10", "vigild"), fx("w_1kx10", "sub")
    if a and b and (a["latency_ms"]["p99"] < 0 or a.get("lost")):
        # No latency without deliveries: a run that lost readings cannot meet a latency target.
        row("p99 end-to-end ≤ 2× raw pub→sub p99 (1,000 × 10 Hz, 100 clients)",
            f"not measurable: {a.get('lost', 0):,} of {a.get('expected_deliveries', 0):,} deliveries lost", False)
    elif a and b:
        row("p99 end-to-end ≤ 2× raw pub→sub p99 (1,000 × 10 Hz, 100 clients)",
            f"{a['latency_ms']['p99']:.2f} ms vs {b['latency_ms']['p99']:.2f} ms = {a['latency_ms']['p99'] / b['latency_ms']['p99']:.1f}×",
            a["latency_ms"]["p99"] <= 2 * b["latency_ms"]["p99"])
    a1 = next((r for r in fixed if r["workload"] == "w_10kx1_1c"), None)
    if a1:
        row("10,000 devices at 1 Hz, no loss (1 WS client)",
            f"{a1['publishers_connected']:,} connected, {a1['lost']:,} lost of {a1['expected_deliveries']:,}, "
            f"{a1['duplicates']} dup, {f(a1.get('stored'), 0)} rows stored of {a1['sent']:,} sent",
            a1["lost"] == 0 and a1["publishers_connected"] == 10000 and (a1.get("stored") or 0) >= a1["sent"])
        rss = w(a1, "vmhwm_kb") / 1024
        row("vigild peak RSS ≤ 64 MB there (1 client)", f"{rss:.1f} MB", rss <= 64)
        cpu = w(a1, "cpu_us_per_msg")
        row("vigild CPU ≤ 10 µs per message (10,000 × 1 Hz, 1 client)", f"{cpu:.1f} µs", cpu <= 10)
    z10 = next((z for z in (ev.get("sizes") or []) if z["devices"] == 10000), None)
    if z10:
        row("alarm evaluation ≤ 1 µs per reading (10,000 devices)",
            f"{z10['ns_per_reading']:.0f} ns (min {z10['ns_per_reading_min']:.0f}); with the 4 Hz tick "
            f"{z10['ns_per_reading'] + 4 * z10['tick_ns_per_device']:,.0f} ns", z10["ns_per_reading"] <= 1000)
    a = fx("w_10kx1", "vigild")
    if a:
        row("10,000 devices at 1 Hz, no loss (100 WS clients)", f"{a['publishers_connected']:,} connected, {a['lost']:,} lost of {a['expected_deliveries']:,}, {a['duplicates']} dup",
            a["lost"] == 0 and a["publishers_connected"] == 10000)
        rss = w(a, "vmhwm_kb") / 1024
        row("vigild peak RSS ≤ 64 MB there (100 clients)", f"{rss:.1f} MB", rss <= 64)
        cpu = w(a, "cpu_us_per_msg")
        row("vigild CPU ≤ 10 µs per message (10,000 × 1 Hz, 100 clients)", f"{cpu:.1f} µs", cpu <= 10)
    a = fx("w_1kx10", "vigild")
    if a:
        cpu = w(a, "cpu_us_per_msg")
        row("vigild CPU ≤ 10 µs per message (1,000 × 10 Hz, 100 clients)", f"{cpu:.1f} µs", cpu <= 10)
    P("")

    # Issue 13's targets, each from this run only.
    P("Issue 13 (vigild at the physical limit):")
    P("")
    P("| target | measured | verdict |")
    P("|---|---|---|")
    if sus.get("vigild_1c") and sus.get("sub"):
        row("sustainable, storage on, 1 WS client ÷ counting subscriber ≥ 0.95×",
            f"{f(sus['vigild_1c'], 0)} ÷ {f(sus['sub'], 0)} = {sus['vigild_1c'] / sus['sub']:.2f}×"
            + ratio_bounds("vigild_1c", "sub"),
            sus["vigild_1c"] >= 0.95 * sus["sub"])
    if sus.get("vigild") and sus.get("relay"):
        row("per client, 100 WS clients ÷ minimal relay ≥ 0.9×",
            f"{f(sus['vigild'], 0)} ÷ {f(sus['relay'], 0)} = {sus['vigild'] / sus['relay']:.2f}×"
            + ratio_bounds("vigild", "relay"),
            sus["vigild"] >= 0.9 * sus["relay"])
    for r in [a1] + [x for x in qw if x.get("workload") in ("w_10kx1_1c_hold", "w_10kx1_1c_nohold")]:
        if not r:
            continue
        cpu, mq = w(r, "cpu_us_per_msg"), r["watch"].get("mosquitto", {}).get("cpu_us_per_msg")
        if cpu is not None and mq:
            row("vigild CPU per reading, 10,000 × 1 Hz, 1 client ≤ 12 µs and ≤ 0.5× the broker's"
                + (f" ({r['variant']})" if r is not a1 else ""),
                f"{cpu:.1f} µs = {cpu / mq:.2f}× the broker's {mq:.1f}; {r['lost']:,} lost", cpu <= 12 and cpu <= 0.5 * mq)
    a, b = fx("w_1kx10", "vigild"), fx("w_1kx10", "relay")
    if a and b and a["latency_ms"]["p99"] > 0 and b["latency_ms"]["p99"] > 0:
        row("p99 publish→WS, 1,000 × 10 Hz, 100 clients ÷ minimal relay p99 ≤ 1.5×",
            f"{a['latency_ms']['p99']:.1f} ÷ {b['latency_ms']['p99']:.1f} ms = {a['latency_ms']['p99'] / b['latency_ms']['p99']:.2f}×; "
            f"{a['lost']:,} lost", a["latency_ms"]["p99"] <= 1.5 * b["latency_ms"]["p99"] and not a["lost"])
    if hl.get("p99_ratio") is not None:
        row(f"live p99 while {hl['queries']:,} history queries run ÷ without ≤ 1.2×",
            f"{hl['with_queries']['latency_ms']['p99']:.2f} ÷ {hl['p99_alone_ms']:.2f} ms = {hl['p99_ratio']:.2f}×",
            hl["p99_ratio"] <= 1.2)
    q0 = next((x for x in qw if x.get("variant") == "default"), None)
    qr = next((x for x in qw if x.get("workload") == "quiet_relay"), None)
    ru = w(qr, "cpu_util") if qr else None
    for x in [x for x in qw if x.get("workload") == "quiet"]:
        util = w(x, "cpu_util")
        if util is None or not q0:
            continue
        p99, p990 = x["latency_ms"]["p99"], q0["latency_ms"]["p99"]
        same = x is q0 or (p99 > 0 and p990 > 0 and p99 <= 1.2 * p990)
        rel = f"; minimal relay {ru * 100:.1f} % = {util / ru:.2f}× it" if ru else ""
        row(f"quiet ward ≤ 5 % of a core, p99 unchanged ({x['variant']})",
            f"{util * 100:.1f} %, p99 {p99:.2f} ms (default {p990:.2f}){rel}", util <= 0.05 and same and not x["lost"])
    sq = next((r for r in st if r.get("engine") == "sqlite" and "bytes_per_reading" in r), None)
    if sq:
        row("bytes on disk per reading (SQLite, indexes included) ≤ 48",
            f"{sq['bytes_per_reading']:.1f} B ({sq['devices']:,} devices × {sq['rate_hz']} Hz × {sq['step_s']} s)",
            sq["bytes_per_reading"] <= 48)
    if a1:
        rss = w(a1, "vmhwm_kb") / 1024
        row("peak RSS at 10,000 × 1 Hz ≤ 40 MB (1 client)", f"{rss:.1f} MB", rss <= 40)
    P("")

text = "\n".join(lines)
begin, end = "<!-- BEGIN RESULTS (generated by bench/report.py) -->", "<!-- END RESULTS -->"
if os.path.exists(doc):
    cur = open(doc).read()
    if begin in cur and end in cur:
        cur = cur[:cur.index(begin) + len(begin)] + "\n" + text + "\n" + cur[cur.index(end):]
    else:
        cur += f"\n{begin}\n{text}\n{end}\n"
else:
    cur = f"# Benchmarks\n\n{begin}\n{text}\n{end}\n"
open(doc, "w").write(cur)
print(text)

# ---- plots ----
try:
    subprocess.run(["gnuplot", "--version"], check=True, stdout=subprocess.DEVNULL)
except (OSError, subprocess.CalledProcessError):
    print("gnuplot not found: plots skipped", file=sys.stderr)
    sys.exit(0)
os.makedirs(img, exist_ok=True)
tmp = tempfile.mkdtemp(prefix="vigil-plot-")
plots = []
for k in ORDER:
    if k in ramp:
        p = os.path.join(tmp, f"ramp_{k}.dat")
        with open(p, "w") as fh:
            # The coarse steps and the probes, by rate: the probes fill in the curve near the knee.
            for s in sorted(ramp[k]["steps"] + [p for p in probe_steps(ramp[k]) if p], key=lambda s: s["rate_hz"]):
                fh.write(f"{s['offered_msgs_per_s']:.0f} {s['delivered_msgs_per_s_per_client']:.0f} {max(s['p99_ms'], 0.001):.3f}\n")
        plots.append((k, p))
if plots:
    g = [f"set terminal pngcairo size 900,520 font ',10'", f"set output '{img}/bench-throughput.png'",
         "set title 'Saturation ramp: delivered vs offered (per client, QoS 1)'", "set key left top",
         "set xlabel 'offered msgs/s'", "set ylabel 'delivered msgs/s per client'", "set grid",
         "set logscale xy", "plot " + ", ".join(
             [f"'{p}' using 1:2 with linespoints lw 2 title '{NAMES[k]}'" for k, p in plots]
             + [f"'{plots[0][1]}' using 1:1 with lines dt 2 lc rgb 'gray' title 'offered'"])]
    g += [f"set output '{img}/bench-ramp-p99.png'", "set title 'Saturation ramp: p99 end-to-end latency per step'",
          "set ylabel 'p99 latency, ms'", "set key left top",
          "plot " + ", ".join(f"'{p}' using 1:3 with linespoints lw 2 title '{NAMES[k]}'" for k, p in plots)]
    subprocess.run(["gnuplot"], input="\n".join(g).encode(), check=False)
lat_wls = [x for x in ("w_1kx1", "w_1kx10") if any(r["workload"] == x for r in fixed)] or wls[:1]
if lat_wls:
    g = ["set terminal pngcairo size 1200,520 font ',10'", f"set output '{img}/bench-latency.png'",
         "set termoption noenhanced", f"set multiplot layout 1,{len(lat_wls)}",
         "set style data histogram", "set style histogram clustered gap 1", "set style fill solid 0.8 border -1",
         "set logscale y", "set yrange [0.01:20000]", "set ylabel 'ms (log)'", "set grid ytics",
         "set xtics rotate by -20 font ',8'", "set key left top"]
    for wl in lat_wls:
        p = os.path.join(tmp, f"lat_{wl}.dat")
        r0 = None
        with open(p, "w") as fh:
            for k in ORDER:
                r = fx(wl, k)
                if r:
                    r0 = r
                    l = r["latency_ms"]
                    fh.write(f"\"{NAMES[k]}\" {max(l['p50'], 0.001)} {max(l['p99'], 0.001)} {max(l['p999'], 0.001)} {max(l['max'], 0.001)}\n")
        title = f"publish -> receive, {r0['devices']:,} devices x {r0['steps'][0]['rate_hz']:g} Hz, {max(x['clients'] for x in fixed if x['workload'] == wl)} clients"
        g += [f"set title '{title}'",
              f"plot '{p}' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p99.9', '' using 5 title 'max'"]
    g.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(g).encode(), check=False)
print(f"plots in {img}/bench-*.png", file=sys.stderr)
