/* bench_alarm — vigil-bench-alarm: what the alarm engine (server/alarm.h)
 * costs per reading and per tick, and how much memory it keeps per device
 * (docs/BENCHMARKS.md, "Alarms"). A benchmark, not a test: it reports,
 * never asserts.
 *
 *   vigil-bench-alarm [--devices 1000,10000,100000] [--readings 3000000]
 *                     [--runs 5] [--ticks 200] [--steady-s 20] [--max-s 60]
 *                     [--json FILE]
 *
 * --ticks is a maximum: each run ticks for at most 0.5 s.
 *
 * Ticks are timed two ways. "tick_ns": a burst of --ticks ticks after each
 * run, 1 ms apart, at the timeline's present — the walk over every device
 * before the engine had a timer index; with it, the first tick of a burst
 * pays for every device whose (lazy) heap entry came due during the run.
 * "steady": --steady-s seconds of timeline after the runs, each second's
 * readings followed by 4 ticks 250 ms apart, as vigild interleaves them:
 * tick CPU time per tick and devices visited per tick.
 *
 * Workload: readings in round-robin device order (device 0..N-1, then the
 * next second of every device), as vigild's ingest thread sees a fleet at
 * a common rate, so the engine's device table is walked like in
 * production rather than staying in cache. Device time ("ts") advances 1 s
 * per pass. Most readings are normal; every 25th device has a desaturation
 * episode (SpO2 82 % for 20 s of every 120 s: spo2_desat, spo2_low and
 * news2 start and clear), every 25th a tachycardia and every 25th a
 * bradycardia episode, and about 1 % of readings carry false validity
 * flags (a finger off the sensor). A warm-up pass creates every device
 * before anything is timed; runs continue the same timeline.
 *
 * Each device count runs in its own forked child so its RSS delta is not
 * hidden by memory a previous size freed. Bounded: --readings per run,
 * --runs runs, and --max-s per device count (runs stop early past it).
 * Single-threaded, like the engine's owner. Times are the thread's CPU
 * time (the wall-clock figure is reported too). */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alarm.h"
#include "telemetry.h"

#define BENCH_ALARM_MAX_SIZES 8
#define BENCH_ALARM_MAX_RUNS 31
#define BENCH_ALARM_ID_LEN 8 /* "A000123" + NUL: every id the same length */
#define BENCH_ALARM_T0_MS INT64_C(1767225600000) /* 2026-01-01, inside telemetry's ts range */
#define BENCH_ALARM_LAG_MS 40 /* arrival after device time: live, not replayed */
#define BENCH_ALARM_TICK_BUDGET_S 0.5 /* per run: fewer ticks than --ticks at 100k devices */

typedef struct bench_alarm__opts {
    long devices[BENCH_ALARM_MAX_SIZES];
    int nsizes;
    long readings; /* per timed run */
    int runs, ticks;
    int steady_s;  /* seconds of timeline with interleaved ticks */
    double max_s;  /* per device count */
    const char *json;
} bench_alarm__opts;

/* What one device count measured. */
typedef struct bench_alarm__result {
    long devices, passes;
    int runs;
    double ns[BENCH_ALARM_MAX_RUNS];      /* per reading, each run: CPU time */
    double wall_ns[BENCH_ALARM_MAX_RUNS]; /* the same in wall-clock time */
    double harness_ns;               /* the same loop without the engine */
    double tick_ns[BENCH_ALARM_MAX_RUNS];
    double heap_per_dev, rss_per_dev; /* bytes */
    double steady_tick_ns, steady_visited; /* per tick, interleaved with readings */
    long steady_ticks;
    uint64_t ev[ALARM_EV_UPDATED + 1];
    uint64_t errors;
} bench_alarm__result;

/* Timings use this thread's CPU time: on a shared host, wall-clock time
 * also counts the time other processes had the core. Bounds use the wall
 * clock. */
static double bench_alarm__clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench_alarm__now_s(void)
{
    return bench_alarm__clock_s(CLOCK_MONOTONIC);
}

static double bench_alarm__cpu_s(void)
{
    return bench_alarm__clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static long bench_alarm__rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* The reading of device d at second seq of its timeline (see the top). */
static void bench_alarm__fill(telemetry_reading *r, const char *id, long d, long seq)
{
    memcpy(r->device_id, id, BENCH_ALARM_ID_LEN);
    r->present = TELEMETRY_HAS_OBJECT_TEMP | TELEMETRY_HAS_HEART_RATE | TELEMETRY_HAS_SPO2 |
                 TELEMETRY_HAS_TS | TELEMETRY_HAS_SEQ | TELEMETRY_HAS_BOOT | TELEMETRY_HAS_BATTERY |
                 TELEMETRY_HAS_HR_VALID | TELEMETRY_HAS_SPO2_VALID | TELEMETRY_HAS_TEMP_VALID;
    uint32_t h = (uint32_t)d * 2654435761u ^ (uint32_t)seq * 40503u; /* cheap per-reading noise */
    h ^= h >> 15;
    r->heart_rate = 62 + (double)(h % 29);
    r->spo2 = 95 + (double)((h >> 5) % 5);
    r->object_temp = 33.5 + (double)((h >> 9) % 20) / 10;
    r->battery = 80;
    long phase = (seq + d * 37) % 120;
    switch (d % 25) {
    case 0: if (phase < 20) r->spo2 = 82; break;       /* desaturation */
    case 1: if (phase < 30) r->heart_rate = 130; break; /* tachycardia, medium */
    case 2: if (phase < 25) r->heart_rate = 45; break;  /* bradycardia, medium */
    default: break;
    }
    int off = (h >> 16) % 100 == 0; /* ~1 %: finger off the sensor */
    r->hr_valid = r->spo2_valid = (uint8_t)!off;
    r->temp_valid = 1;
    r->ts_ms = BENCH_ALARM_T0_MS + (int64_t)seq * 1000 + d % 1000; /* phases spread over the second */
    r->seq = seq;
    r->boot = 1;
    r->received_ms = r->ts_ms + BENCH_ALARM_LAG_MS;
}

static void bench_alarm__count(bench_alarm__result *res, alarm_events *ev)
{
    for (size_t i = 0; i < ev->n; i++)
        res->ev[ev->ev[i].kind]++;
    alarm_events_clear(ev);
}

/* passes over every device, starting at second *seq; engine NULL times the
 * harness alone. Returns the CPU seconds; *wall_s the wall-clock ones. */
static double bench_alarm__pass(alarm_engine *e, alarm_events *ev, bench_alarm__result *res,
                                const char (*ids)[BENCH_ALARM_ID_LEN], long n, long passes, long *seq,
                                double *wall_s)
{
    static telemetry_reading r; /* static: zeroed once, the strings stay "" */
    volatile double sink = 0;
    double t = bench_alarm__cpu_s(), w = bench_alarm__now_s();
    for (long p = 0; p < passes; p++, (*seq)++)
        for (long d = 0; d < n; d++) {
            bench_alarm__fill(&r, ids[d], d, *seq);
            if (!e) {
                sink += r.spo2;
                continue;
            }
            if (alarm_on_reading(e, ev, &r, r.received_ms) != ALARM_OK)
                res->errors++;
            if (ev->n)
                bench_alarm__count(res, ev);
        }
    (void)sink;
    *wall_s = bench_alarm__now_s() - w;
    return bench_alarm__cpu_s() - t;
}

static int bench_alarm__cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bench_alarm__median(const double *v, int n)
{
    double s[BENCH_ALARM_MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, bench_alarm__cmp);
    return n ? (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : -1;
}

static int bench_alarm__measure(const bench_alarm__opts *o, long n, bench_alarm__result *res)
{
    static alarm_events ev; /* ~20 kB: not on the stack */
    memset(res, 0, sizeof *res);
    res->devices = n;
    res->passes = (o->readings + n - 1) / n;
    char (*ids)[BENCH_ALARM_ID_LEN] = calloc((size_t)n, sizeof *ids);
    if (!ids)
        return -1;
    for (long d = 0; d < n; d++)
        snprintf(ids[d], sizeof ids[d], "A%06ld", d % 1000000);
    long seq = 0;
    double t_start = bench_alarm__now_s();

    struct mallinfo2 m0 = mallinfo2();
    long rss0 = bench_alarm__rss_kb();
    alarm_engine *e = alarm_engine_new((size_t)n);
    if (!e) {
        free(ids);
        return -1;
    }
    alarm_events_clear(&ev);
    /* Warm-up: every device created, and 10 s of timeline so the detectors
     * are in steady state before anything is timed. */
    double wall;
    bench_alarm__pass(e, &ev, res, (const char (*)[BENCH_ALARM_ID_LEN])ids, n, 10, &seq, &wall);
    struct mallinfo2 m1 = mallinfo2();
    long rss1 = bench_alarm__rss_kb();
    res->heap_per_dev = (double)(m1.uordblks - m0.uordblks) / (double)n;
    res->rss_per_dev = rss0 >= 0 && rss1 >= 0 ? (double)(rss1 - rss0) * 1024 / (double)n : -1;

    long hseq = seq;
    double hs = bench_alarm__pass(NULL, &ev, res, (const char (*)[BENCH_ALARM_ID_LEN])ids, n, res->passes, &hseq, &wall);
    res->harness_ns = hs * 1e9 / (double)(res->passes * n);
    for (int i = 0; i < o->runs && bench_alarm__now_s() - t_start < o->max_s; i++) {
        double s = bench_alarm__pass(e, &ev, res, (const char (*)[BENCH_ALARM_ID_LEN])ids, n, res->passes, &seq, &wall);
        res->ns[i] = s * 1e9 / (double)(res->passes * n);
        res->wall_ns[i] = wall * 1e9 / (double)(res->passes * n);
        /* Ticks at the timeline's present (the 250 ms tick of vigild), each
         * 1 ms later: inside the stale limit, so they time the walk over
         * every device, not a burst of stale alarms. From the latest
         * arrival on (+ the lag): a tick before a time the engine has seen
         * is the wall clock stepping back, which walks every device. */
        int64_t now = BENCH_ALARM_T0_MS + (int64_t)seq * 1000 + BENCH_ALARM_LAG_MS;
        double t = bench_alarm__cpu_s(), dt = 0;
        int k = 0;
        while (k < o->ticks && dt < BENCH_ALARM_TICK_BUDGET_S) {
            alarm_tick(e, &ev, now + k++);
            if (ev.n)
                bench_alarm__count(res, &ev);
            dt = bench_alarm__cpu_s() - t;
        }
        res->tick_ns[i] = dt * 1e9 / k;
        res->runs = i + 1;
    }
    /* Steady state: one second of readings, then that second's 4 ticks. */
    bench_alarm__result scratch; /* its events and errors are not this run's */
    memset(&scratch, 0, sizeof scratch);
    double tick_s = 0, visited = 0;
    for (int s = 0; s < o->steady_s && bench_alarm__now_s() - t_start < o->max_s; s++) {
        bench_alarm__pass(e, &ev, &scratch, (const char (*)[BENCH_ALARM_ID_LEN])ids, n, 1, &seq, &wall);
        int64_t now = BENCH_ALARM_T0_MS + (int64_t)seq * 1000 + BENCH_ALARM_LAG_MS;
        for (int q = 0; q < 4; q++) {
            double t = bench_alarm__cpu_s();
            alarm_tick(e, &ev, now + q * 250);
            tick_s += bench_alarm__cpu_s() - t;
            alarm_stats st;
            alarm_engine_stats(e, &st);
            visited += (double)st.last_tick_visited;
            res->steady_ticks++;
            if (ev.n)
                bench_alarm__count(&scratch, &ev);
        }
    }
    if (res->steady_ticks) {
        res->steady_tick_ns = tick_s * 1e9 / (double)res->steady_ticks;
        res->steady_visited = visited / (double)res->steady_ticks;
    }
    alarm_engine_free(e);
    free(ids);
    return 0;
}

static int bench_alarm__write(const bench_alarm__result *r, FILE *out)
{
    double med = bench_alarm__median(r->ns, r->runs), tick = bench_alarm__median(r->tick_ns, r->runs);
    double lo = r->ns[0], hi = r->ns[0];
    for (int i = 1; i < r->runs; i++) {
        lo = r->ns[i] < lo ? r->ns[i] : lo;
        hi = r->ns[i] > hi ? r->ns[i] : hi;
    }
    return fprintf(out,
                   "{\"devices\": %ld, \"readings_per_run\": %ld, \"runs\": %d, \"ns_per_reading\": %.1f,"
                   " \"ns_per_reading_min\": %.1f, \"ns_per_reading_max\": %.1f, \"wall_ns_per_reading\": %.1f,"
                   " \"harness_ns_per_reading\": %.1f,"
                   " \"tick_ns\": %.0f, \"tick_ns_per_device\": %.2f, \"steady_ticks\": %ld,"
                   " \"steady_tick_ns\": %.0f, \"steady_visited_per_tick\": %.1f, \"heap_bytes_per_device\": %.0f,"
                   " \"rss_bytes_per_device\": %.0f, \"events\": {\"raised\": %" PRIu64 ", \"cleared\": %" PRIu64
                   ", \"updated\": %" PRIu64 ", \"escalated\": %" PRIu64 "}, \"errors\": %" PRIu64 "}",
                   r->devices, r->passes * r->devices, r->runs, med, lo, hi,
                   bench_alarm__median(r->wall_ns, r->runs), r->harness_ns, tick,
                   tick / (double)r->devices, r->steady_ticks, r->steady_tick_ns, r->steady_visited,
                   r->heap_per_dev, r->rss_per_dev, r->ev[ALARM_EV_RAISED],
                   r->ev[ALARM_EV_CLEARED], r->ev[ALARM_EV_UPDATED], r->ev[ALARM_EV_ESCALATED], r->errors);
}

/* One device count in a child; its JSON object comes back through a pipe. */
static int bench_alarm__size(const bench_alarm__opts *o, long n, char *buf, size_t cap)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        bench_alarm__result res;
        FILE *w = fdopen(fd[1], "w");
        int rc = w && bench_alarm__measure(o, n, &res) == 0 && bench_alarm__write(&res, w) > 0 ? 0 : 1;
        if (w)
            fclose(w);
        _exit(rc);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t k;
    while (len + 1 < cap && (k = read(fd[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)k;
    buf[len] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && len ? 0 : -1;
}

static void bench_alarm__usage(void)
{
    fprintf(stderr, "usage: vigil-bench-alarm [--devices N1,N2,...] [--readings N] [--runs N]"
                    " [--ticks N] [--steady-s N] [--max-s S] [--json FILE]\n"
                    "  defaults: --devices 1000,10000,100000 --readings 3000000 --runs 5 --ticks 200"
                    " --steady-s 20 --max-s 60 (per device count)\n");
}

static int bench_alarm__parse(bench_alarm__opts *o, int argc, char **argv)
{
    *o = (bench_alarm__opts){.devices = {1000, 10000, 100000}, .nsizes = 3, .readings = 3000000,
                             .runs = 5, .ticks = 200, .steady_s = 20, .max_s = 60};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--devices")) {
            o->nsizes = 0;
            for (const char *p = v; *p && o->nsizes < BENCH_ALARM_MAX_SIZES; p += strcspn(p, ","), p += *p == ',')
                o->devices[o->nsizes++] = atol(p);
        } else if (!strcmp(a, "--readings")) o->readings = atol(v);
        else if (!strcmp(a, "--runs")) o->runs = atoi(v);
        else if (!strcmp(a, "--ticks")) o->ticks = atoi(v);
        else if (!strcmp(a, "--steady-s")) o->steady_s = atoi(v);
        else if (!strcmp(a, "--max-s")) o->max_s = atof(v);
        else if (!strcmp(a, "--json")) o->json = v;
        else return -1;
    }
    if (o->nsizes < 1 || o->readings < 1 || o->runs < 1 || o->runs > BENCH_ALARM_MAX_RUNS ||
        o->ticks < 1 || o->steady_s < 0 || o->steady_s > 3600 || o->max_s <= 0)
        return -1;
    for (int i = 0; i < o->nsizes; i++)
        if (o->devices[i] < 1 || o->devices[i] > 1000000)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    bench_alarm__opts o;
    if (bench_alarm__parse(&o, argc, argv) != 0) {
        bench_alarm__usage();
        return 2;
    }
    FILE *out = o.json ? fopen(o.json, "w") : stdout;
    if (!out) {
        perror(o.json);
        return 1;
    }
    int rc = 0, done = 0;
    fprintf(out, "{\"sizes\": [");
    for (int i = 0; i < o.nsizes; i++) {
        char buf[2048];
        if (bench_alarm__size(&o, o.devices[i], buf, sizeof buf) != 0) {
            fprintf(stderr, "vigil-bench-alarm: %ld devices: measurement failed\n", o.devices[i]);
            rc = 1;
            continue;
        }
        fprintf(out, "%s\n  %s", done++ ? "," : "", buf);
        fprintf(stderr, "  [alarm] %s\n", buf);
    }
    fprintf(out, "\n]}\n");
    if (out != stdout)
        fclose(out);
    return rc;
}
