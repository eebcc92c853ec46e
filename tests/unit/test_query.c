/* Unit tests for server/query.c's queues: the "when full" rule (queued +
 * running + untaken answers <= cap), FIFO answers with the caller's token,
 * cancellation of queued and finished answers, and shutdown with work
 * pending. No store: a NULL store answers 500 at once, so the worker's
 * timing is set by a waker that blocks until the test opens a gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "query.h"

/* The worker calls wake() after each answer; it waits here until released. */
typedef struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    int passes;  /* wakes allowed through */
    int waiting; /* the worker is blocked in wake */
    int woken;   /* wakes seen */
} gate;

static void gate_wake(void *ctx)
{
    gate *g = ctx;
    pthread_mutex_lock(&g->m);
    g->woken++;
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
    int got = 0;
    for (int spins = 0; spins < 1000000 && !got; spins++)
        got = query_take(q, &d);
    assert_int_equal(got, 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_rule_counts_every_outstanding_job),
        cmocka_unit_test(test_cancelled_answers_never_come_back),
        cmocka_unit_test(test_stop_discards_pending_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
