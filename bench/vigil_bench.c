/* vigil-bench — load generator and end-to-end measurement tool
 * (docs/BENCHMARKS.md; bench/orchestrate.py runs it, bench/report.py reads
 * its JSON).
 *
 *   vigil-bench run   ...   one measurement: publishers + receivers, JSON out
 *   vigil-bench relay ...   the minimal MQTT→WebSocket relay (relay.c)
 *
 * This file is the command line and the step driver of `run`: it parses the
 * options (bench_opts), creates the send-time table (bench_sendtab), forks
 * the publisher workers (bench_fleet), starts the receiver thread
 * (bench_recv), then paces the run — receivers ready, publishers connected,
 * warm-up, the measured steps at each --rates value, a bounded drain — while
 * sampling /proc (bench_sys), and writes the results as JSON with latency
 * percentiles from the per-step histograms (bench_hist).
 *
 * Processes / threads: the publisher workers are child processes; the
 * receiver thread owns every receiver connection; the main thread only
 * paces the steps, samples /proc and writes the results. Every wait is
 * bounded by a deadline, the step schedule or the drain timeout. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bench_fleet.h"
#include "bench_hist.h"
#include "bench_opts.h"
#include "bench_recv.h"
#include "bench_sendtab.h"
#include "bench_sys.h"
#include "wsutil.h"

static volatile sig_atomic_t vigil_bench__interrupted;

static void vigil_bench__on_sig(int s)
{
    (void)s;
    vigil_bench__interrupted = 1;
}

static void vigil_bench__progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vigil_bench__progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  [bench] ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* What /proc and the fleet said at one step boundary. */
typedef struct vigil_bench__snap {
    double t, cpu[BENCH_MAX_WATCH], self_cpu;
    double recv_cpu[BENCH_MAX_RECV_THREADS]; /* each receiver thread's CPU seconds */
    int nrecv;
    uint64_t sent;
} vigil_bench__snap;

/* Everything the results need; filled by the step driver. */
typedef struct vigil_bench__run {
    const bench_opts *o;
    bench_fleet *fleet;
    bench_recv *recv;
    uint64_t t0;
    long ready, connected;
    double connect_s, drain_s;
    int nsteps, fail_step;
    vigil_bench__snap s[BENCH_MAX_STEPS + 2];
} vigil_bench__run;

static uint64_t vigil_bench__sent(const bench_fleet *f)
{
    bench_fleet_stats st;
    bench_fleet_read(f, &st);
    return st.sent;
}

static void vigil_bench__take(const vigil_bench__run *run, vigil_bench__snap *s)
{
    const bench_opts *o = run->o;
    s->t = (double)(bench_now_ns() - run->t0) / 1e9;
    for (int i = 0; i < o->nwatch; i++)
        s->cpu[i] = bench_sys_cpu_s(o->watch[i].pid);
    s->self_cpu = bench_sys_cpu_s(getpid()); /* receivers + control */
    for (int i = 0; i < bench_fleet_workers(run->fleet); i++)
        s->self_cpu += bench_sys_cpu_s(bench_fleet_worker_pid(run->fleet, i)); /* publishers */
    s->sent = vigil_bench__sent(run->fleet);
    s->nrecv = bench_recv_thread_cpu(run->recv, s->recv_cpu, BENCH_MAX_RECV_THREADS);
}

/* The receiver threads between two snapshots: their summed CPU seconds and
 * the busiest one's share of a core — near 1, the receivers (not the
 * subject) bound what was delivered. */
static void vigil_bench__recv_cpu(const vigil_bench__snap *a, const vigil_bench__snap *b, double *sum,
                                  double *max_util)
{
    double dt = b->t - a->t;
    *sum = 0;
    *max_util = 0;
    for (int i = 0; i < a->nrecv && i < b->nrecv; i++) {
        double d = b->recv_cpu[i] - a->recv_cpu[i];
        *sum += d;
        if (dt > 0 && d / dt > *max_util)
            *max_util = d / dt;
    }
}

/* Steps 1-4 of a run; the results are left in *run. */
static void vigil_bench__drive(vigil_bench__run *run)
{
    const bench_opts *o = run->o;
    bench_fleet *fleet = run->fleet;
    bench_recv *recv = run->recv;
    uint64_t t0 = run->t0;
    bench_fleet_stats fs;

    /* 1. receivers connect and subscribe */
    double deadline = 30 + (double)o->clients / 200;
    while (bench_recv_ready(recv) + bench_recv_closed(recv) < o->clients &&
           (double)(bench_now_ns() - t0) / 1e9 < deadline && !vigil_bench__interrupted)
        bench_sys_sleep_s(0.05);
    run->ready = bench_recv_ready(recv);
    vigil_bench__progress("%ld/%ld receivers ready in %.1f s", run->ready, o->clients,
                          (double)(bench_now_ns() - t0) / 1e9);
    bench_sys_sleep_s(0.5); /* let snapshots (vigild) pass before anything is published */

    /* 2. publishers connect */
    uint64_t tc = bench_now_ns();
    bench_fleet_go(fleet);
    deadline = 20 + (double)o->devices / o->connect_rate * 2;
    for (;;) {
        bench_fleet_read(fleet, &fs);
        if ((long)fs.connected + (long)fs.errors >= o->devices ||
            (double)(bench_now_ns() - tc) / 1e9 >= deadline || vigil_bench__interrupted)
            break;
        bench_sys_sleep_s(0.05);
    }
    run->connect_s = (double)(bench_now_ns() - tc) / 1e9;
    bench_fleet_read(fleet, &fs);
    run->connected = (long)fs.connected;
    vigil_bench__progress("%ld/%ld publishers connected in %.1f s (%d worker processes)",
                          run->connected, o->devices, run->connect_s, bench_fleet_workers(fleet));

    /* 3. warm-up, then the steps */
    vigil_bench__snap *s = run->s;
    run->nsteps = 0;
    run->fail_step = -1;
    vigil_bench__take(run, &s[0]);
    bench_fleet_set_rate(fleet, o->rates[0]);
    bench_recv_set_step(recv, 0);
    bench_sys_sleep_s(o->warmup_s);
    for (int i = 0; i < o->nrates && !vigil_bench__interrupted; i++) {
        vigil_bench__take(run, &s[i + 1]);
        bench_fleet_set_rate(fleet, o->rates[i]);
        bench_recv_set_step(recv, i + 1);
        bench_sys_sleep_s(o->step_s);
        run->nsteps = i + 1;
        double offered = (double)(vigil_bench__sent(fleet) - s[i + 1].sent) / o->step_s;
        double per_client = (double)bench_recv_step_count(recv, i + 1) / o->step_s /
                            (double)(run->ready ? run->ready : 1);
        vigil_bench__progress(
            "step %d: %.0f Hz x %ld dev: offered %.0f msg/s, delivered %.0f msg/s per client", i + 1,
            o->rates[i], o->devices, offered, per_client);
        if (o->stop_on_fail && per_client < 0.95 * offered) {
            run->fail_step = i + 1;
            break;
        }
    }
    vigil_bench__take(run, &s[run->nsteps + 1]);
    bench_fleet_set_rate(fleet, 0);
    bench_recv_set_step(recv, BENCH_MAX_STEPS); /* drain: late deliveries counted apart */

    /* 4. drain: until every live receiver has everything, no progress, or timeout */
    uint64_t td = bench_now_ns(), last_u = bench_recv_uniq(recv), last_change = td;
    for (;;) {
        bench_sys_sleep_s(0.1);
        uint64_t now = bench_now_ns(), u = bench_recv_uniq(recv);
        long live = run->ready - bench_recv_closed(recv);
        if (live < 0)
            live = 0;
        if (u >= vigil_bench__sent(fleet) * (uint64_t)live)
            break;
        if (u != last_u) {
            last_u = u;
            last_change = now;
        }
        if ((double)(now - td) / 1e9 > o->drain_s || (double)(now - last_change) / 1e9 > 2.0 ||
            vigil_bench__interrupted)
            break;
    }
    run->drain_s = (double)(bench_now_ns() - td) / 1e9;
    bench_fleet_stop(fleet);
    bench_recv_stop(recv);
}

/* 5. results. The key names and their order are read by bench/report.py
 * and bench/orchestrate.py. */
static void vigil_bench__write(const vigil_bench__run *run, FILE *out)
{
    const bench_opts *o = run->o;
    const vigil_bench__snap *s = run->s;
    int nsteps = run->nsteps;
    long ready = run->ready;
    bench_fleet_stats fs;
    bench_fleet_read(run->fleet, &fs);
    bench_recv_stats rs;
    bench_recv_read(run->recv, &rs);
    uint64_t sent = fs.sent;
    uint64_t expected = sent * (uint64_t)(ready ? ready : 0);
    uint64_t lost = expected > rs.uniq ? expected - rs.uniq : 0;
    static bench_hist all;
    uint64_t measured = 0;
    for (int st = 1; st <= nsteps; st++) {
        measured += bench_recv_step_count(run->recv, st);
        bench_hist_add(&all, bench_recv_step_hist(run->recv, st));
    }
    double meas_t = s[nsteps + 1].t - s[1].t;
    fprintf(out, "{\n  \"label\": \"%s\",\n", o->label ? o->label : "");
    fprintf(out, "  \"devices\": %ld, \"clients\": %ld, \"receiver\": \"%s\", \"qos\": %d, \"sub_qos\": %d,\n",
            o->devices, o->clients, bench_opts_rkind_name(o->rkind), o->qos, o->sub_qos);
    fprintf(out, "  \"receivers_ready\": %ld, \"receivers_closed\": %ld,\n", ready,
            bench_recv_closed(run->recv));
    fprintf(out, "  \"publishers_connected\": %ld, \"connect_s\": %.2f, \"publisher_disconnects\": %" PRIu64
            ", \"publish_errors\": %" PRIu64 ", \"publish_skipped\": %" PRIu64 ",\n",
            run->connected, run->connect_s, fs.disconnects, fs.errors, fs.skipped);
    fprintf(out, "  \"sent\": %" PRIu64 ", \"expected_deliveries\": %" PRIu64 ", \"unique_deliveries\": %" PRIu64
            ", \"lost\": %" PRIu64 ", \"duplicates\": %" PRIu64 ", \"unknown\": %" PRIu64 ",\n",
            sent, expected, rs.uniq, lost, rs.dups, rs.unknown);
    fprintf(out, "  \"frames\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"drain_s\": %.2f, \"fail_step\": %d,\n",
            rs.frames, rs.bytes, run->drain_s, run->fail_step);
    fprintf(out, "  \"measured_s\": %.3f, \"offered_msgs_per_s\": %.1f, \"delivered_msgs_per_s_per_client\": %.1f,"
            " \"delivered_msgs_per_s_total\": %.1f,\n",
            meas_t, (double)(s[nsteps + 1].sent - s[1].sent) / meas_t,
            (double)measured / meas_t / (double)(ready ? ready : 1), (double)measured / meas_t);
    fprintf(out, "  \"latency_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f},\n",
            bench_hist_pct(&all, 0.5) / 1000, bench_hist_pct(&all, 0.99) / 1000,
            bench_hist_pct(&all, 0.999) / 1000, bench_hist_pct(&all, 1.0) / 1000);
    fprintf(out, "  \"bench_cpu_s\": %.2f,\n", s[nsteps + 1].self_cpu - s[1].self_cpu);
    double rsum, rmax;
    vigil_bench__recv_cpu(&s[1], &s[nsteps + 1], &rsum, &rmax);
    fprintf(out, "  \"recv_threads\": %d, \"recv_cpu_s\": %.3f, \"recv_thread_max_util\": %.3f,\n",
            s[1].nrecv, rsum, rmax);
    fprintf(out, "  \"watch\": {");
    for (int i = 0; i < o->nwatch; i++) {
        double cpu = s[nsteps + 1].cpu[i] - s[1].cpu[i];
        fprintf(out, "%s\"%s\": {\"pid\": %d, \"cpu_s\": %.3f, \"cpu_us_per_msg\": %.3f, \"cpu_util\": %.3f,"
                " \"vmhwm_kb\": %ld, \"vmrss_kb\": %ld}",
                i ? ", " : "", o->watch[i].name, o->watch[i].pid, cpu,
                s[nsteps + 1].sent > s[1].sent ? cpu * 1e6 / (double)(s[nsteps + 1].sent - s[1].sent) : -1,
                cpu / meas_t, bench_sys_kb(o->watch[i].pid, "VmHWM"), bench_sys_kb(o->watch[i].pid, "VmRSS"));
    }
    fprintf(out, "},\n  \"steps\": [");
    for (int st = 1; st <= nsteps; st++) {
        double dt = s[st + 1].t - s[st].t;
        const bench_hist *h = bench_recv_step_hist(run->recv, st);
        fprintf(out, "%s\n    {\"rate_hz\": %g, \"offered_msgs_per_s\": %.1f, \"delivered_msgs_per_s_per_client\": %.1f, "
                "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f",
                st > 1 ? "," : "", o->rates[st - 1], (double)(s[st + 1].sent - s[st].sent) / dt,
                (double)bench_recv_step_count(run->recv, st) / dt / (double)(ready ? ready : 1),
                bench_hist_pct(h, 0.5) / 1000, bench_hist_pct(h, 0.99) / 1000,
                bench_hist_pct(h, 0.999) / 1000, bench_hist_pct(h, 1.0) / 1000);
        for (int i = 0; i < o->nwatch; i++) {
            double cpu = s[st + 1].cpu[i] - s[st].cpu[i];
            uint64_t ns = s[st + 1].sent - s[st].sent;
            fprintf(out, ", \"%s_cpu_us_per_msg\": %.3f, \"%s_cpu_util\": %.3f", o->watch[i].name,
                    ns ? cpu * 1e6 / (double)ns : -1, o->watch[i].name, cpu / dt);
        }
        vigil_bench__recv_cpu(&s[st], &s[st + 1], &rsum, &rmax);
        fprintf(out, ", \"recv_cpu_util\": %.3f, \"recv_thread_max_util\": %.3f", rsum / dt, rmax);
        fprintf(out, "}");
    }
    fprintf(out, "\n  ]");
    /* --desat-devices: each one's first low readings (bench/orchestrate.py
     * matches them with the WebSocket alarm). */
    if (o->desat_devices) {
        fprintf(out, ",\n  \"desat\": [");
        for (long k = 0; k < o->desat_devices; k++) {
            const bench_fleet_desat *d = bench_fleet_desat_of(run->fleet, k);
            fprintf(out, "%s\n    {\"device\": \"%s%06ld\", \"ts_ms\": [", k ? "," : "", o->id_prefix, d->dev);
            for (int i = 0; i < d->n; i++)
                fprintf(out, "%s%" PRId64, i ? ", " : "", d->ts_ms[i]);
            fprintf(out, "], \"pub_ns\": [");
            for (int i = 0; i < d->n; i++)
                fprintf(out, "%s%" PRIu64, i ? ", " : "", d->pub_ns[i]);
            fprintf(out, "]}");
        }
        fprintf(out, "\n  ]");
    }
    fprintf(out, "\n}\n");
    vigil_bench__progress("sent %" PRIu64 ", lost %" PRIu64 ", dup %" PRIu64 ", p99 %.1f ms, %.0f msg/s per client",
                          sent, lost, rs.dups, bench_hist_pct(&all, 0.99) / 1000,
                          (double)measured / meas_t / (double)(ready ? ready : 1));
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "relay"))
        return vigil_relay_main(argc - 1, argv + 1);
    bench_opts o;
    if (argc < 2 || strcmp(argv[1], "run") || bench_opts_parse(&o, argc - 1, argv + 1) != BENCH_OPTS_OK) {
        bench_opts_usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, vigil_bench__on_sig);
    signal(SIGTERM, vigil_bench__on_sig);
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    double total = o.warmup_s * o.rates[0];
    for (int i = 0; i < o.nrates; i++)
        total += o.step_s * o.rates[i];
    bench_sendtab tab;
    vigil_bench__run run = {.o = &o};
    bench_sendtab_status ts = bench_sendtab_create(&tab, o.devices, (long)(total * 1.05) + 16);
    bench_fleet_status fst = bench_fleet_create(&o, &tab, &run.fleet);
    bench_recv_status rst = bench_recv_create(&o, &tab, &run.recv);
    if (ts != BENCH_SENDTAB_OK || fst != BENCH_FLEET_OK || rst != BENCH_RECV_OK) {
        fprintf(stderr, "vigil-bench: out of memory\n");
        return 1;
    }
    /* Fork the publisher workers before any thread exists (fork() in a
     * threaded process may copy a held lock). They wait for bench_fleet_go. */
    if (bench_fleet_fork(run.fleet) != BENCH_FLEET_OK)
        return 1;
    mosquitto_lib_init();
    run.t0 = bench_now_ns();
    if (bench_recv_start(run.recv) != BENCH_RECV_OK) {
        fprintf(stderr, "vigil-bench: cannot start the receivers\n");
        bench_fleet_stop(run.fleet);
        return 1;
    }
    vigil_bench__drive(&run);

    FILE *out = o.json ? fopen(o.json, "w") : stdout;
    if (!out) {
        perror(o.json);
        return 1;
    }
    vigil_bench__write(&run, out);
    if (out != stdout)
        fclose(out);
    /* Disconnecting 10,000 clients one by one is slow and pointless at exit:
     * the kernel closes the sockets. */
    return 0;
}
