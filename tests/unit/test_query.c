/* Unit tests for server/query.c's queues: the "when full" rule (queued +
 * running + untaken answers <= cap), FIFO answers with the caller's token,
 * cancellation of queued and finished answers, and shutdown with work
 * pending. No store: a NULL store answers 500 at once, so the worker's
 * timing is set by a waker that blocks until the test opens a gate.
 * Then the readings answer against a real (SQLite, temporary) store: its
 * body byte for byte as the printf-based formatting wrote it before the
 * printf-free one (raw and downsampled); and a read's freshness: it sees
 * every reading of its device queued before it, while records of other
 * devices do not make it wait (store_sync_device). Last the completeness
 * answer, formatted from a copy taken under the tracker's lock: byte for
 * byte what the model formats in place. And the worker's scheduling: nice
 * +10 and, on Linux 6.12+, the short EEVDF slice that lets a waking live
 * thread preempt it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "completeness.h"
#include "completeness_json.h"
#include "log.h"
#include "query.h"
#include "sbuf.h"
#include "sched_probe.h"
#include "store.h"
#include "tracker.h"

/* The worker calls wake() after each answer; it waits here until released. */
typedef struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    int passes;  /* wakes allowed through */
    int waiting; /* the worker is blocked in wake */
    int woken;   /* wakes seen */
    pid_t tid;   /* the thread that called wake: the worker */
} gate;

static void gate_wake(void *ctx)
{
    gate *g = ctx;
    pthread_mutex_lock(&g->m);
    g->woken++;
    g->tid = gettid();
    g->waiting = 1;
    pthread_cond_broadcast(&g->c);
    while (g->passes == 0)
        pthread_cond_wait(&g->c, &g->m);
    g->passes--;
    g->waiting = 0;
    pthread_cond_broadcast(&g->c);
    pthread_mutex_unlock(&g->m);
}

/* Waits (at most 10 s) until `n` wakes were seen and the worker blocks. */
static void gate_wait_woken(gate *g, int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    int rc = 0;
    pthread_mutex_lock(&g->m);
    while ((g->woken < n || !g->waiting) && rc == 0)
        rc = pthread_cond_timedwait(&g->c, &g->m, &deadline);
    pthread_mutex_unlock(&g->m);
    assert_int_equal(rc, 0); /* the worker answered within 10 s */
}

static void gate_open(gate *g, int passes)
{
    pthread_mutex_lock(&g->m);
    g->passes += passes;
    pthread_cond_broadcast(&g->c);
    pthread_mutex_unlock(&g->m);
}

static query *start(gate *g, size_t cap)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->m, NULL);
    pthread_cond_init(&g->c, NULL);
    query_config cfg = {.st = NULL, .trk = NULL, .cap = cap, .headroom = 16, .wake = gate_wake,
                        .wake_ctx = g};
    query *q = NULL;
    assert_int_equal(query_start(&cfg, &q), QUERY_OK);
    return q;
}

static query_job job(query_kind k, void *conn)
{
    query_job j = {.kind = k, .from = 0, .to = 10, .max_points = 5, .boot = -1, .conn = conn};
    strcpy(j.dev, "ESP32_001");
    return j;
}

/* Polls for the worker's next answer, bounded; 1 when one was taken. */
static int take_one(query *q, query_done *d)
{
    int got = 0;
    for (int spins = 0; spins < 1000000 && !got; spins++)
        got = query_take(q, d);
    return got;
}

static void test_full_rule_counts_every_outstanding_job(void **state)
{
    (void)state;
    gate g;
    query *q = start(&g, 2);
    int a, b, c;
    uint64_t s1 = 0, s2 = 0, s3 = 0;
    query_job j1 = job(QUERY_READINGS, &a), j2 = job(QUERY_COMPLETENESS, &b), j3 = job(QUERY_READINGS, &c);
    assert_int_equal(query_submit(q, &j1, &s1), QUERY_OK);
    gate_wait_woken(&g, 1); /* j1 answered, not taken; worker held in wake */
    assert_int_equal(query_submit(q, &j2, &s2), QUERY_OK);
    assert_int_equal(query_submit(q, &j3, &s3), QUERY_EFULL); /* 1 answer + 1 queued = cap */
    assert_int_not_equal(s1, 0);
    assert_int_not_equal(s1, s2);

    gate_open(&g, 1);
    gate_wait_woken(&g, 2);
    query_done d;
    assert_int_equal(query_take(q, &d), 1);
    assert_ptr_equal(d.conn, &a);
    assert_int_equal(d.serial, s1);
    assert_int_equal(d.status, 500);
    assert_string_equal(sbuf_data(&d.body), "{\"error\":\"store query failed\"}");
    assert_int_equal(d.body.head, 16);
    sbuf_free(&d.body);
    assert_int_equal(query_take(q, &d), 1);
    assert_ptr_equal(d.conn, &b);
    assert_int_equal(d.serial, s2);
    assert_int_equal(d.status, 503);
    assert_string_equal(sbuf_data(&d.body), "{\"error\":\"completeness tracking is off\"}");
    sbuf_free(&d.body);
    assert_int_equal(query_take(q, &d), 0);
    /* Room again once answers are taken. */
    assert_int_equal(query_submit(q, &j3, &s3), QUERY_OK);
    gate_open(&g, 1);
    gate_wait_woken(&g, 3);
    gate_open(&g, 100);
    query_stop(q);
}

static void test_cancelled_answers_never_come_back(void **state)
{
    (void)state;
    gate g;
    query *q = start(&g, 4);
    int a, b, c;
    uint64_t s1, s2, s3;
    query_job j1 = job(QUERY_READINGS, &a), j2 = job(QUERY_READINGS, &b), j3 = job(QUERY_READINGS, &c);
    assert_int_equal(query_submit(q, &j1, &s1), QUERY_OK);
    gate_wait_woken(&g, 1);
    assert_int_equal(query_submit(q, &j2, &s2), QUERY_OK);
    assert_int_equal(query_submit(q, &j3, &s3), QUERY_OK);
    query_cancel(q, s1); /* finished, not taken */
    query_cancel(q, s2); /* queued */
    query_cancel(q, s2); /* idempotent */
    query_cancel(q, 0);
    gate_open(&g, 100);
    query_done d;
    assert_int_equal(take_one(q, &d), 1);
    assert_ptr_equal(d.conn, &c);
    assert_int_equal(d.serial, s3);
    sbuf_free(&d.body);
    assert_int_equal(query_take(q, &d), 0);
    query_stop(q);
}

static void test_stop_discards_pending_work(void **state)
{
    (void)state;
    gate g;
    query *q = start(&g, 8);
    uint64_t s;
    for (int i = 0; i < 5; i++) {
        query_job j = job(QUERY_READINGS, NULL);
        assert_int_equal(query_submit(q, &j, &s), QUERY_OK);
    }
    gate_wait_woken(&g, 1);
    gate_open(&g, 100);
    query_stop(q); /* answers and queued jobs freed: ASan/LSan would say otherwise */
    query_stop(NULL);
}

/* ---- the readings body, against the printf formatting it replaced ---- */

static void ref_stat(sbuf *o, const char *name, const downsample_stat *s)
{
    sbuf_addf(o, ",\"%s\":", name);
    if (!s->n)
        sbuf_adds(o, "null");
    else
        sbuf_addf(o, "{\"min\":%.10g,\"avg\":%.10g,\"max\":%.10g}", s->min, s->sum / s->n, s->max);
}

static void ref_num(sbuf *o, const char *name, int has, double v)
{
    if (has)
        sbuf_addf(o, ",\"%s\":%.10g", name, v);
    else
        sbuf_addf(o, ",\"%s\":null", name);
}

/* The body query_run wrote with sbuf_addf (commit e3c6670). */
static void ref_body(const query_job *j, const store_series *s, sbuf *o)
{
    sbuf_adds(o, "{\"device_id\":");
    sbuf_add_json_str(o, j->dev);
    sbuf_addf(o, ",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"total\":%zu,\"downsampled\":%s", j->from,
              j->to, s->total, s->downsampled ? "true" : "false");
    if (s->downsampled) {
        sbuf_addf(o, ",\"bucket_ms\":%" PRId64 ",\"buckets\":[", s->ds.width);
        int first = 1;
        for (size_t i = 0; i < s->ds.nbuckets; i++) {
            const downsample_bucket *b = &s->ds.b[i];
            if (!b->count)
                continue;
            sbuf_addf(o, "%s{\"t\":%" PRId64 ",\"n\":%" PRIu32, first ? "" : ",", b->t_start, b->count);
            first = 0;
            ref_stat(o, "heart_rate", &b->ch[DS_HEART_RATE]);
            ref_stat(o, "spo2", &b->ch[DS_SPO2]);
            ref_stat(o, "object_temp", &b->ch[DS_OBJECT_TEMP]);
            ref_stat(o, "ambient_temp", &b->ch[DS_AMBIENT_TEMP]);
            sbuf_adds(o, "}");
        }
    } else {
        sbuf_adds(o, ",\"readings\":[");
        char iso[32];
        for (size_t i = 0; i < s->total; i++) {
            const telemetry_reading *r = &s->raw[i];
            telemetry_format_iso(r->received_ms, iso, sizeof iso);
            sbuf_addf(o, "%s{\"t\":%" PRId64 ",\"received_at\":\"%s\"", i ? "," : "", s->raw_t[i], iso);
            if (r->present & TELEMETRY_HAS_SEQ)
                sbuf_addf(o, ",\"seq\":%" PRId64, r->seq);
            if (r->present & TELEMETRY_HAS_BOOT)
                sbuf_addf(o, ",\"boot\":%" PRId64, r->boot);
            ref_num(o, "object_temp", r->present & TELEMETRY_HAS_OBJECT_TEMP, r->object_temp);
            ref_num(o, "ambient_temp", r->present & TELEMETRY_HAS_AMBIENT_TEMP, r->ambient_temp);
            ref_num(o, "heart_rate", r->present & TELEMETRY_HAS_HEART_RATE, r->heart_rate);
            ref_num(o, "spo2", r->present & TELEMETRY_HAS_SPO2, r->spo2);
            if (r->present & TELEMETRY_HAS_HR_VALID)
                sbuf_addf(o, ",\"hr_valid\":%s", r->hr_valid ? "true" : "false");
            if (r->present & TELEMETRY_HAS_SPO2_VALID)
                sbuf_addf(o, ",\"spo2_valid\":%s", r->spo2_valid ? "true" : "false");
            if (r->present & TELEMETRY_HAS_TEMP_VALID)
                sbuf_addf(o, ",\"temp_valid\":%s", r->temp_valid ? "true" : "false");
            sbuf_adds(o, "}");
        }
    }
    sbuf_adds(o, "]}");
}

/* Values that take every path of the number formatting: integers, up to 3
 * decimals, averages with many digits, negatives, tiny, huge, exponents. */
static double awkward(int i, int c)
{
    static const double v[] = {72, 36.6, 98.5, -12.25, 1.0 / 3, 0.000123456789, 123456789.125,
                               -0.001, 1e15, 2.5e-9, 99.999, 7e6, 1e7, -9999999.999, 0.1, 41.05};
    return v[(i * 5 + c * 3) % (int)(sizeof v / sizeof v[0])] + (i % 4 == 3 ? 0.0001 * c : 0);
}

/* A SQLite store in a fresh temporary directory. */
typedef struct tmp_store {
    char dir[32];
    char path[64];
} tmp_store;

static store *tmp_store_open(tmp_store *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/test_query_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/q.db", t->dir);
    store_options so = {.path = t->path};
    store *st = NULL;
    char err[256];
    assert_int_equal(store_open(&so, &st, err, sizeof err), STORE_OK);
    return st;
}

static void tmp_store_close(tmp_store *t, store *st)
{
    store_close(st);
    char f[80];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s%s", t->path, suffix[i]);
        (void)unlink(f);
    }
    assert_int_equal(rmdir(t->dir), 0);
}

static void test_readings_body_is_byte_identical(void **state)
{
    (void)state;
    tmp_store ts;
    store *st = tmp_store_open(&ts);
    const int64_t t0 = 1795794000000;
    const int n = 300;
    for (int i = 0; i < n; i++) {
        telemetry_reading r;
        memset(&r, 0, sizeof r);
        strcpy(r.device_id, "ESP32_001");
        r.received_ms = t0 + i * 1000 + i % 7;
        r.present = TELEMETRY_HAS_SEQ | TELEMETRY_HAS_BOOT;
        r.seq = i + 1;
        r.boot = i < n / 2 ? 3 : -4;
        if (i % 5)
            r.present |= TELEMETRY_HAS_HEART_RATE, r.heart_rate = awkward(i, 0);
        if (i % 3)
            r.present |= TELEMETRY_HAS_SPO2, r.spo2 = awkward(i, 1);
        if (i % 11 != 4)
            r.present |= TELEMETRY_HAS_OBJECT_TEMP, r.object_temp = awkward(i, 2);
        if (i % 2)
            r.present |= TELEMETRY_HAS_AMBIENT_TEMP, r.ambient_temp = awkward(i, 3);
        if (i % 4 == 1)
            r.present |= TELEMETRY_HAS_HR_VALID | TELEMETRY_HAS_TEMP_VALID, r.hr_valid = (uint8_t)(i % 8 == 1);
        if (i % 6 == 2)
            r.present |= TELEMETRY_HAS_SPO2_VALID, r.spo2_valid = 1;
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    assert_int_equal(store_sync(st, 10000), STORE_OK);
    /* Downsampled (a few readings a bucket, some buckets empty), raw. */
    const int64_t max_points[] = {37, 1000, 5};
    for (size_t k = 0; k < sizeof max_points / sizeof max_points[0]; k++) {
        query_job j = job(QUERY_READINGS, NULL);
        j.from = t0 - 5;
        j.to = t0 + (int64_t)n * 1000;
        j.max_points = max_points[k];
        sbuf got, want;
        sbuf_init(&got, 16);
        sbuf_init(&want, 0);
        assert_int_equal(query_run(st, NULL, &j, &got), 200);
        store_series s;
        assert_int_equal(store_query_readings(st, j.dev, j.from, j.to, (size_t)j.max_points, &s), STORE_OK);
        assert_int_equal(s.total, n);
        assert_int_equal(s.downsampled, j.max_points < n);
        ref_body(&j, &s, &want);
        store_series_free(&s);
        assert_true(sbuf_ok(&got) && sbuf_ok(&want));
        assert_true(want.len > 1000);
        assert_int_equal(got.len, want.len);
        assert_string_equal(sbuf_data(&got), sbuf_data(&want));
        sbuf_free(&got);
        sbuf_free(&want);
    }
    tmp_store_close(&ts, st);
}

static telemetry_reading reading_of(const char *dev, int64_t seq)
{
    telemetry_reading r;
    memset(&r, 0, sizeof r);
    snprintf(r.device_id, sizeof r.device_id, "%s", dev);
    r.received_ms = 1795794000000 + seq * 1000;
    r.present = TELEMETRY_HAS_SEQ | TELEMETRY_HAS_BOOT | TELEMETRY_HAS_HEART_RATE;
    r.seq = seq;
    r.boot = 1;
    r.heart_rate = 60 + (double)(seq % 40);
    return r;
}

/* "total":N of a readings answer, or -1. */
static long answer_total(const sbuf *o)
{
    const char *p = strstr(sbuf_data(o), "\"total\":");
    return p ? strtol(p + 8, NULL, 10) : -1;
}

/* A readings answer right after the puts, without a store_sync of the
 * test's own: the worker's read must see every one of them. A device with
 * nothing queued needs no wait at all, even with a zero timeout, while
 * another device's records still wait for their group commit. */
static void test_read_sees_its_device_and_waits_for_it_only(void **state)
{
    (void)state;
    tmp_store ts;
    store *st = tmp_store_open(&ts);
    for (int round = 0; round < 3; round++) {
        for (int i = 1; i <= 50; i++) {
            telemetry_reading r = reading_of("DEV_A", round * 50 + i);
            assert_int_equal(store_put_reading(st, &r), STORE_OK);
        }
        query_job j = job(QUERY_READINGS, NULL);
        strcpy(j.dev, "DEV_A");
        j.from = 0;
        j.to = INT64_MAX / 2;
        j.max_points = 1000;
        sbuf got;
        sbuf_init(&got, 16);
        assert_int_equal(query_run(st, NULL, &j, &got), 200);
        assert_int_equal(answer_total(&got), (round + 1) * 50);
        sbuf_free(&got);
    }
    /* One reading of A queued, none of B ever: B's wait is over at once. */
    telemetry_reading r = reading_of("DEV_A", 1000);
    assert_int_equal(store_put_reading(st, &r), STORE_OK);
    assert_int_equal(store_sync_device(st, "DEV_B", 0), STORE_OK);
    assert_int_equal(store_sync_device(st, "DEV_A", 10000), STORE_OK);
    store_stats ss;
    store_get_stats(st, &ss);
    assert_int_equal(ss.stored, 151);
    assert_int_equal(store_sync_device(st, "DEV_A", 0), STORE_OK); /* nothing left */
    assert_int_equal(store_sync_device(st, NULL, 0), STORE_EINVAL);
    tmp_store_close(&ts, st);
}

/* More devices than the store remembers: the table starts over, and a
 * device it forgot still waits for everything queued up to then. */
static void test_sync_device_past_the_table_bound(void **state)
{
    (void)state;
    tmp_store ts;
    store *st = tmp_store_open(&ts);
    const int ndev = 16384 + 1; /* STORE_PENDING_DEVICES_MAX + 1 */
    for (int d = 0; d < ndev; d++) {
        char id[16];
        snprintf(id, sizeof id, "D%05d", d);
        telemetry_reading r = reading_of(id, 1);
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    assert_int_equal(store_sync_device(st, "D00000", 20000), STORE_OK);
    store_stats ss;
    store_get_stats(st, &ss);
    assert_int_equal(ss.stored, ndev);
    tmp_store_close(&ts, st);
}

/* Feeds the tracker and a twin model the same: received seqs with holes,
 * unstored ones (pending), a boot end, across three boots. */
static void feed_both(tracker *t, completeness *twin)
{
    completeness_actions a;
    const char *id = "DEV_C";
    int64_t now = 1000;
    for (int64_t boot = 1; boot <= 3; boot++) {
        for (int64_t seq = 1; seq <= 400; seq++, now += 10) {
            if (seq % 7 == 3 || (seq > 50 && seq < 61 + boot))
                continue; /* never arrives: a gap */
            int stored = seq % 13 != 5;
            completeness_actions_clear(&a);
            if (stored)
                (void)completeness_on_reading(twin, &a, id, boot, seq, now);
            else
                (void)completeness_on_unstored(twin, &a, id, boot, seq, now);
            (void)tracker_on_reading(t, id, boot, seq, stored, now, &a);
        }
        completeness_actions_clear(&a);
        (void)completeness_on_boot_end(twin, &a, id, boot, 420, now);
        (void)tracker_on_boot_end(t, id, boot, 420, now, &a);
    }
    /* An hour on, nobody having been asked: the old boots' gaps are lost. */
    now += 3600 * 1000;
    completeness_actions_clear(&a);
    (void)completeness_tick(twin, &a, now, 0, 0);
    (void)tracker_tick(t, now, 0, 0, &a);
}

static void test_completeness_answer_from_a_copy_is_identical(void **state)
{
    (void)state;
    tracker *t = tracker_create(NULL);
    completeness *twin = completeness_new(NULL);
    assert_non_null(t);
    assert_non_null(twin);
    feed_both(t, twin);
    const struct {
        int64_t boot, from, to;
        size_t max_gaps;
    } cases[] = {{-1, 0, INT64_MAX / 2, 1000}, {2, 0, INT64_MAX / 2, 1000}, {3, 40, 90, 1000},
                 {1, 0, 500, 4},               {7, 0, 100, 1000},          {-1, 100, 50, 10}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sbuf got, want;
        sbuf_init(&got, 16);
        sbuf_init(&want, 0);
        assert_int_equal(tracker_device_json(t, "DEV_C", cases[k].boot, cases[k].from, cases[k].to,
                                             cases[k].max_gaps, &got),
                         0);
        assert_int_equal(completeness_device_json(twin, "DEV_C", cases[k].boot, cases[k].from,
                                                  cases[k].to, cases[k].max_gaps, &want),
                         0);
        assert_true(sbuf_ok(&got) && sbuf_ok(&want) && want.len > 100);
        assert_string_equal(sbuf_data(&got), sbuf_data(&want));
        sbuf_free(&got);
        sbuf_free(&want);
    }
    /* Through the query worker's answer too, gaps and all. */
    query_job j = job(QUERY_COMPLETENESS, NULL);
    strcpy(j.dev, "DEV_C");
    j.boot = -1;
    j.from = 0;
    j.to = INT64_MAX / 2;
    sbuf got, want;
    sbuf_init(&got, 16);
    sbuf_init(&want, 0);
    assert_int_equal(query_run(NULL, t, &j, &got), 200);
    assert_int_equal(completeness_device_json(twin, "DEV_C", -1, 0, INT64_MAX / 2, 1000, &want), 0);
    assert_non_null(strstr(sbuf_data(&want), "\"state\":\"pending\""));
    assert_non_null(strstr(sbuf_data(&want), "\"state\":\"lost\""));
    assert_string_equal(sbuf_data(&got), sbuf_data(&want));
    sbuf_free(&got);
    sbuf_free(&want);
    sbuf_init(&got, 16);
    assert_int_equal(tracker_device_json(t, "NOBODY", -1, 0, 10, 10, &got), -1);
    sbuf_free(&got);
    completeness_free(twin);
    tracker_destroy(t);
}

static void test_worker_yields_to_the_live_threads(void **state)
{
    (void)state;
    gate g;
    query *q = start(&g, 2);
    int a;
    uint64_t s1 = 0;
    query_job j1 = job(QUERY_READINGS, &a);
    assert_int_equal(query_submit(q, &j1, &s1), QUERY_OK);
    gate_wait_woken(&g, 1); /* the worker is held in wake: it exists and is set up */
    int base = getpriority(PRIO_PROCESS, 0);
    assert_int_equal(getpriority(PRIO_PROCESS, (id_t)g.tid), base + 10 > 19 ? 19 : base + 10);
    long long slice = sched_probe_slice(g.tid), mine = sched_probe_slice(gettid());
    if (sched_probe_kernel_sets_slices() && slice >= 0) {
        assert_int_equal(slice, 100000); /* QUERY_SLICE_NS */
        assert_true(mine > slice);       /* this thread keeps the default */
    }
    gate_open(&g, 100);
    query_done d;
    assert_int_equal(take_one(q, &d), 1);
    sbuf_free(&d.body);
    query_stop(q);
}

int main(void)
{
    log_threshold = LOG_LEVEL_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_rule_counts_every_outstanding_job),
        cmocka_unit_test(test_cancelled_answers_never_come_back),
        cmocka_unit_test(test_stop_discards_pending_work),
        cmocka_unit_test(test_readings_body_is_byte_identical),
        cmocka_unit_test(test_read_sees_its_device_and_waits_for_it_only),
        cmocka_unit_test(test_sync_device_past_the_table_bound),
        cmocka_unit_test(test_completeness_answer_from_a_copy_is_identical),
        cmocka_unit_test(test_worker_yields_to_the_live_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
