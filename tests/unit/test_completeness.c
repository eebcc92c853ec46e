/* Unit tests for server/completeness.c: interval bookkeeping, live gap
 * detection, duplicates, refills, resend policy (settle, coalescing, one
 * outstanding request, backoff, give-up, global rate), losses (missing ack,
 * reboot deadline, unsupported), restart rebuild, unstored readings, the
 * JSON views and hostile values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "completeness.h"
#include "completeness_json.h"

/* The decisions of every call of a test accumulate in one list (the
 * model only appends), read back like a recording fake. */
typedef struct fx {
    completeness *c;
    completeness_actions a;
} fx;

static completeness_config test_cfg(void)
{
    completeness_config k = {0};
    k.settle_ms = 1000;
    k.ack_timeout_ms = 2000;
    k.max_tries = 3;
    k.old_boot_deadline_ms = 10000;
    k.rate_per_s = 1000;
    k.burst = 1000;
    k.max_span = 100;
    k.coalesce_slack = 5;
    k.lead_max = 50;
    k.max_gap = 100000;
    return k;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    completeness_config k = test_cfg();
    f->c = completeness_new(&k);
    *state = f;
    return f->c ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    completeness_free(f->c);
    free(f);
    return 0;
}

static void feed(fx *f, const char *id, int64_t boot, int64_t lo, int64_t hi, int64_t now)
{
    for (int64_t s = lo; s <= hi; s++)
        completeness_on_reading(f->c, &f->a, id, boot, s, now);
}

static completeness_counts counts(fx *f, const char *id)
{
    completeness_counts x;
    assert_int_equal(completeness_counts_get(f->c, id, &x), 0);
    return x;
}

static cJSON *device_json(fx *f, const char *id, int64_t boot, int64_t from, int64_t to)
{
    sbuf o;
    sbuf_init(&o, 0);
    assert_int_equal(completeness_device_json(f->c, id, boot, from, to, 100, &o), 0);
    cJSON *j = cJSON_ParseWithLength(sbuf_data(&o), o.len);
    sbuf_free(&o);
    assert_non_null(j);
    return j;
}

static int64_t jint(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

/* ---- tests ---- */

static void test_contiguous_no_gap(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 100, 0);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.expected, 100);
    assert_int_equal(x.received, 100);
    assert_int_equal(x.pending, 0);
    assert_int_equal(x.gaps_detected, 0);
    assert_int_equal(completeness_tick(f->c, &f->a, 5000, 1, 100), 0);
    assert_int_equal(f->a.nrequests, 0);
}

static void test_duplicates_counted_once(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 7, 5, 0), COMPLETENESS_DUPLICATE);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 7, 10, 0), COMPLETENESS_DUPLICATE);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.received, 10);
    assert_int_equal(x.duplicates, 2);
}

static void test_live_gap_settle_then_request(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    feed(f, "D1", 7, 16, 20, 100); /* 11..15 missing */
    assert_int_equal(f->a.gaps_opened, 1);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.expected, 20);
    assert_int_equal(x.pending, 5);
    /* Young gap: wait (a backlog replay may be on its way). */
    assert_int_equal(completeness_tick(f->c, &f->a, 500, 1, 100), 0);
    assert_int_equal(completeness_tick(f->c, &f->a, 1200, 1, 100), 1);
    assert_int_equal(f->a.requests[0].boot, 7);
    assert_int_equal(f->a.requests[0].from, 11);
    assert_int_equal(f->a.requests[0].to, 15);
    /* One outstanding at a time. */
    assert_int_equal(completeness_tick(f->c, &f->a, 1300, 1, 100), 0);
    /* The refill arrives: counted as refilled, no more requests. */
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 7, 11, 1400), COMPLETENESS_REFILLED);
    feed(f, "D1", 7, 12, 15, 1400);
    assert_int_equal(completeness_on_ack(f->c, &f->a, "D1", f->a.requests[0].req_id, 1, 0, 5, 0, 1500), 0);
    x = counts(f, "D1");
    assert_int_equal(x.received, 20);
    assert_int_equal(x.refilled, 5);
    assert_int_equal(x.pending, 0);
    assert_int_equal(completeness_tick(f->c, &f->a, 9000, 1, 100), 0);
    assert_int_equal(f->a.nlost, 0);
}

static void test_backlog_fills_without_request(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    feed(f, "D1", 7, 40, 40, 100);     /* live first after a reconnect */
    feed(f, "D1", 7, 11, 39, 300);     /* then the replayed backlog */
    assert_int_equal(completeness_tick(f->c, &f->a, 5000, 1, 100), 0);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.received, 40);
    assert_int_equal(x.refilled, 0); /* not asked for: a late arrival, not a refill */
}

static void test_coalescing_and_span(void **state)
{
    fx *f = *state;
    /* gaps 11-12, 15-16 (slack 2 apart → merged), 40-41 (too far) */
    feed(f, "D1", 1, 1, 10, 0);
    feed(f, "D1", 1, 13, 14, 0);
    feed(f, "D1", 1, 17, 39, 0);
    feed(f, "D1", 1, 42, 50, 0);
    assert_int_equal(completeness_tick(f->c, &f->a, 2000, 1, 100), 1);
    assert_int_equal(f->a.requests[0].from, 11);
    assert_int_equal(f->a.requests[0].to, 16);
    /* A huge gap is asked for max_span at a time. */
    feed(f, "D2", 1, 1, 1, 0);
    feed(f, "D2", 1, 1000, 1000, 0);
    completeness_tick(f->c, &f->a, 2000, 1, 100);
    assert_int_equal(f->a.nrequests, 2);
    assert_int_equal(f->a.requests[1].from, 2);
    assert_int_equal(f->a.requests[1].to, 101);
}

static void test_missing_ack_marks_oldest_lost(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    feed(f, "D1", 7, 31, 40, 0); /* 11..30 */
    completeness_tick(f->c, &f->a, 2000, 1, 100);
    assert_int_equal(f->a.nrequests, 1);
    /* The device's ring lost 11..18; it sends 19..30. */
    feed(f, "D1", 7, 19, 30, 2100);
    assert_int_equal(completeness_on_ack(f->c, &f->a, "D1", f->a.requests[0].req_id, 1, 0, 12, 8, 2200), 0);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.lost, 8);
    assert_int_equal(x.refilled, 12);
    assert_int_equal(x.pending, 0);
    assert_int_equal(f->a.nlost, 1);
    assert_int_equal(f->a.lost[0].from, 11);
    assert_int_equal(f->a.lost[0].to, 18);
    assert_int_equal((int)f->a.lost[0].why, COMPLETENESS_LOST_MISSING);
    /* Nothing left to ask. */
    assert_int_equal(completeness_tick(f->c, &f->a, 60000, 1, 100), 0);
    /* Stale or foreign acks are ignored. */
    assert_int_equal(completeness_on_ack(f->c, &f->a, "D1", 999, 1, 0, 0, 5, 3000), -1);
    assert_int_equal(completeness_on_ack(f->c, &f->a, "NOPE", 1, 1, 0, 0, 5, 3000), -1);
    /* A lost seq that shows up after all is recovered. */
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 7, 12, 4000), COMPLETENESS_REFILLED);
    x = counts(f, "D1");
    assert_int_equal(x.lost, 7);
    assert_int_equal(x.received, 33);
}

static void test_timeouts_backoff_give_up(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    feed(f, "D1", 7, 13, 13, 0); /* 11..12 */
    int64_t t = 1000;
    assert_int_equal(completeness_tick(f->c, &f->a, t, 1, 100), 1);
    /* No answer: first timeout 2 s, then 4 s, then give up after 3 tries. */
    assert_int_equal(completeness_tick(f->c, &f->a, t + 1999, 1, 100), 0);
    assert_int_equal(completeness_tick(f->c, &f->a, t + 2000, 1, 100), 1);
    assert_int_equal(completeness_tick(f->c, &f->a, t + 2000 + 3999, 1, 100), 0);
    assert_int_equal(completeness_tick(f->c, &f->a, t + 6000, 1, 100), 1);
    assert_int_equal(f->a.nrequests, 3);
    assert_int_equal(completeness_tick(f->c, &f->a, t + 6000 + 8000, 1, 100), 0);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.lost, 2);
    assert_int_equal(x.requests, 3);
    assert_int_equal((int)f->a.lost[0].why, COMPLETENESS_LOST_RETRIES);
}

static void test_can_request_and_refused_publish(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 1, 0);
    feed(f, "D1", 7, 5, 5, 0);
    assert_int_equal(completeness_tick(f->c, &f->a, 5000, 0, 100), 0);
    /* Issued, but the publish fails: the caller says so, and it is undone
     * (not counted, asked again later). */
    assert_int_equal(completeness_tick(f->c, &f->a, 5000, 1, 100), 1);
    assert_int_equal(completeness_request_failed(f->c, "D1", f->a.requests[0].req_id, 5000), 0);
    assert_int_equal(counts(f, "D1").requests, 0);
    assert_int_equal(completeness_request_failed(f->c, "D1", f->a.requests[0].req_id, 5000), -1);
    assert_int_equal(completeness_tick(f->c, &f->a, 5500, 1, 100), 0); /* retry after 1 s */
    assert_int_equal(completeness_tick(f->c, &f->a, 6000, 1, 100), 1);
    assert_int_equal(counts(f, "D1").requests, 1);
}

static void test_full_request_list_defers(void **state)
{
    fx *f = *state;
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "D%d", i);
        completeness_on_reading(f->c, &f->a, id, 1, 1, 0);
        completeness_on_reading(f->c, &f->a, id, 1, 3, 0);
    }
    /* Room for COMPLETENESS_ACTIONS_REQUESTS: the rest are not lost, they
     * go out on the next tick. */
    assert_int_equal(completeness_tick(f->c, &f->a, 2000, 1, 1000), COMPLETENESS_ACTIONS_REQUESTS);
    assert_int_equal(f->a.nrequests, COMPLETENESS_ACTIONS_REQUESTS);
    assert_int_equal(completeness_tick(f->c, &f->a, 2000, 1, 1000), 0);
    completeness_actions_clear(&f->a);
    assert_int_equal(completeness_tick(f->c, &f->a, 2000, 1, 1000),
                     100 - COMPLETENESS_ACTIONS_REQUESTS);
    completeness_counts x;
    completeness_totals(f->c, &x);
    assert_int_equal(x.requests, 100);
}

static void test_full_lost_list_still_counted(void **state)
{
    fx *f = *state;
    for (int64_t s = 1; s <= 601; s += 2) /* 300 one-seq gaps */
        completeness_on_reading(f->c, &f->a, "D1", 1, s, 0);
    feed(f, "D1", 2, 1, 1, 0); /* reboot: boot 1 is replaced */
    completeness_tick(f->c, &f->a, 20000, 0, 100); /* past the deadline */
    assert_int_equal(f->a.nlost, COMPLETENESS_ACTIONS_LOST);
    assert_int_equal(f->a.lost_overflow_ranges, 300 - COMPLETENESS_ACTIONS_LOST);
    assert_int_equal(f->a.lost_overflow_seqs, 300 - COMPLETENESS_ACTIONS_LOST);
    assert_int_equal(counts(f, "D1").lost, 300);
    assert_int_equal(counts(f, "D1").pending, 0);
}

static void test_failed_publish_keeps_tries(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 1, 0);
    feed(f, "D1", 7, 3, 3, 0); /* 2 */
    assert_int_equal(completeness_tick(f->c, &f->a, 1000, 1, 100), 1); /* try 1 */
    assert_int_equal(completeness_tick(f->c, &f->a, 3000, 1, 100), 1); /* timeout: try 2 */
    assert_int_equal(completeness_request_failed(f->c, "D1", f->a.requests[1].req_id, 3000), 0);
    /* Undone: the next is try 2 again, then try 3, then the range is lost. */
    assert_int_equal(completeness_tick(f->c, &f->a, 4000, 1, 100), 1);
    assert_int_equal(completeness_tick(f->c, &f->a, 8000, 1, 100), 1);
    assert_int_equal(counts(f, "D1").lost, 0);
    assert_int_equal(completeness_tick(f->c, &f->a, 16000, 1, 100), 0);
    assert_int_equal(counts(f, "D1").lost, 1);
    assert_int_equal(counts(f, "D1").requests, 3);
}

static void test_global_rate_limit(void **state)
{
    (void)state;
    completeness_config k = test_cfg();
    k.rate_per_s = 10;
    k.burst = 5;
    completeness *c = completeness_new(&k);
    completeness_actions *s = calloc(1, sizeof *s);
    char id[16];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "D%d", i);
        completeness_on_reading(c, s, id, 1, 1, 0);
        completeness_on_reading(c, s, id, 1, 3, 0);
    }
    assert_int_equal(completeness_tick(c, s, 2000, 1, 1000), 5);  /* the burst */
    assert_int_equal(completeness_tick(c, s, 2000, 1, 1000), 0);
    assert_int_equal(completeness_tick(c, s, 2500, 1, 1000), 5);  /* 10/s */
    assert_int_equal(completeness_tick(c, s, 3000, 1, 2), 2);     /* per-call cap */
    assert_int_equal(s->nrequests, 12);
    free(s);
    completeness_free(c);
}

static void test_reboot_deadline(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    feed(f, "D1", 7, 20, 25, 0); /* 11..19 pending in boot 7 */
    /* The device reboots: boot 8 is current now. */
    feed(f, "D1", 8, 1, 5, 1000);
    /* The old boot is still asked for (the device may keep its outbox)... */
    assert_int_equal(completeness_tick(f->c, &f->a, 2500, 1, 100), 1);
    assert_int_equal(f->a.requests[0].boot, 7);
    /* ...but nobody answers, and after the deadline it is lost. */
    completeness_tick(f->c, &f->a, 11000, 1, 100);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.lost, 9);
    assert_int_equal(x.expected, 30);
    assert_int_equal((int)f->a.lost[0].why, COMPLETENESS_LOST_REBOOT);
}

static void test_unsupported_device(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 1, 0);
    feed(f, "D1", 7, 4, 4, 0);
    completeness_tick(f->c, &f->a, 2000, 1, 100);
    completeness_on_ack(f->c, &f->a, "D1", f->a.requests[0].req_id, 0, 1, 0, 0, 2100);
    assert_int_equal(counts(f, "D1").lost, 2);
    assert_int_equal((int)f->a.lost[0].why, COMPLETENESS_LOST_UNSUPPORTED);
}

static void test_leading_gap_of_new_boot(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 6, 10, 0); /* seqs 1..5 never arrived */
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.expected, 10);
    assert_int_equal(x.pending, 5);
    /* Far from 1: tracking starts where the device was first seen. */
    feed(f, "D2", 7, 1000, 1001, 0);
    x = counts(f, "D2");
    assert_int_equal(x.expected, 2);
    assert_int_equal(x.pending, 0);
}

static void test_unstored_becomes_pending(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    /* The store queue refused 11..13: they exist, so they are a gap now. */
    for (int s = 11; s <= 13; s++)
        completeness_on_unstored(f->c, &f->a, "D1", 7, s, 100);
    assert_int_equal(f->a.gaps_opened, 1); /* one gap, extended, not three */
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.expected, 13);
    assert_int_equal(x.pending, 3);
    feed(f, "D1", 7, 14, 14, 200); /* continues the same gap */
    assert_int_equal(f->a.gaps_opened, 1);
    completeness_tick(f->c, &f->a, 1500, 1, 100);
    assert_int_equal(f->a.nrequests, 1);
    assert_int_equal(f->a.requests[0].from, 11);
    assert_int_equal(f->a.requests[0].to, 13);
}

static void test_rebuild_from_islands(void **state)
{
    fx *f = *state;
    /* Islands in any order, lost ranges after. */
    assert_int_equal(completeness_load_island(f->c, "D1", 7, 21, 30), 0);
    assert_int_equal(completeness_load_island(f->c, "D1", 7, 1, 10), 0);
    assert_int_equal(completeness_load_island(f->c, "D1", 6, 1, 50), 0);
    assert_int_equal(completeness_load_lost(f->c, "D1", 7, 11, 14), 0);
    /* a lost range partly recovered later: only the unstored part counts */
    assert_int_equal(completeness_load_lost(f->c, "D1", 7, 28, 32), 0);
    completeness_load_done(f->c, 0);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.expected, 80);
    assert_int_equal(x.received, 70);
    assert_int_equal(x.lost, 4);
    assert_int_equal(x.pending, 6); /* 15..20 */
    cJSON *j = device_json(f, "D1", 7, 0, 1000);
    assert_int_equal(jint(j, "expected"), 30);
    assert_int_equal(jint(j, "current_boot"), 7);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "gaps");
    assert_int_equal(cJSON_GetArraySize(g), 2);
    assert_int_equal(jint(cJSON_GetArrayItem(g, 0), "from_seq"), 11);
    assert_int_equal(jint(cJSON_GetArrayItem(g, 0), "to_seq"), 14);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 0), "state")->valuestring, "lost");
    assert_int_equal(jint(cJSON_GetArrayItem(g, 1), "from_seq"), 15);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 1), "state")->valuestring, "pending");
    cJSON_Delete(j);
    /* After the restart the pending gap is asked for; boot 6 is complete. */
    completeness_tick(f->c, &f->a, 2000, 1, 100);
    assert_int_equal(f->a.nrequests, 1);
    assert_int_equal(f->a.requests[0].from, 15);
    assert_int_equal(f->a.requests[0].to, 20);
    /* Live continues: 31 is next, no gap. */
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 7, 31, 2100), COMPLETENESS_NEW);
    assert_int_equal(f->a.gaps_opened, 0);
}

static void test_json_ranges(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    feed(f, "D1", 7, 21, 30, 0);
    cJSON *j = device_json(f, "D1", -1, 15, 25);
    assert_int_equal(jint(j, "expected"), 11);
    assert_int_equal(jint(j, "received"), 5);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "gaps");
    assert_int_equal(cJSON_GetArraySize(g), 1);
    assert_int_equal(jint(cJSON_GetArrayItem(g, 0), "from_seq"), 15);
    assert_int_equal(jint(cJSON_GetArrayItem(g, 0), "to_seq"), 20);
    cJSON_Delete(j);
    sbuf o;
    sbuf_init(&o, 0);
    completeness_summary_json(f->c, "D1", &o);
    cJSON *s = cJSON_ParseWithLength(sbuf_data(&o), o.len);
    assert_non_null(s);
    assert_int_equal(jint(s, "expected"), 30);
    assert_int_equal(jint(s, "received"), 20);
    assert_true(cJSON_GetObjectItem(s, "ratio")->valuedouble > 0.66 &&
                cJSON_GetObjectItem(s, "ratio")->valuedouble < 0.67);
    cJSON_Delete(s);
    sbuf_reset(&o);
    completeness_summary_json(f->c, "UNKNOWN", &o);
    assert_int_equal(o.len, 4);
    assert_memory_equal(sbuf_data(&o), "null", 4);
    sbuf_free(&o);
    assert_int_equal(completeness_device_json(f->c, "UNKNOWN", -1, 0, 10, 10, &o), -1);
}

static void test_hostile_values(void **state)
{
    fx *f = *state;
    const int64_t big = (int64_t)1 << 53;
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", -1, 1, 0), COMPLETENESS_UNTRACKED);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 1, -5, 0), COMPLETENESS_UNTRACKED);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 1, big + 1, 0), COMPLETENESS_UNTRACKED);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "", 1, 1, 0), COMPLETENESS_UNTRACKED);
    char longid[100];
    memset(longid, 'A', sizeof longid - 1);
    longid[99] = 0;
    assert_int_equal(completeness_on_reading(f->c, &f->a, longid, 1, 1, 0), COMPLETENESS_UNTRACKED);
    /* A device that really jumps to seq 2^53 right after 1 (a run of
     * jump_confirm readings up there): a gap beyond any outbox is lost at
     * once, and no storm of requests follows. */
    feed(f, "D1", 1, 1, 1, 0);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 1, big - 2, 0), COMPLETENESS_UNTRACKED);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 1, big - 1, 0), COMPLETENESS_UNTRACKED);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "D1", 1, big, 0), COMPLETENESS_NEW);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.expected, (uint64_t)big);
    assert_int_equal(x.lost, (uint64_t)big - 2);
    assert_int_equal((int)f->a.lost[0].why, COMPLETENESS_LOST_TOO_BIG);
    assert_int_equal(completeness_tick(f->c, &f->a, 5000, 1, 100), 0);
    /* Every other seq: fragmentation is bounded by max_ranges. */
    for (int64_t s = 1; s < 40000; s += 2)
        completeness_on_reading(f->c, &f->a, "D3", 1, s, 0);
    x = counts(f, "D3");
    assert_true(x.received + x.lost + x.pending == x.expected);
    /* Many boots: bounded, older ones retired into the totals. */
    for (int b = 0; b < 20; b++)
        feed(f, "D4", b, 1, 3, b);
    x = counts(f, "D4");
    assert_int_equal(x.expected, 60);
    assert_int_equal(x.received, 60);
}

/* One reading must not redefine a boot's range (issue 10: seq = 2^53 set
 * the lost count to 9e15 and completeness to 0). */
static void test_one_reading_cannot_poison(void **state)
{
    fx *f = *state;
    const int64_t big = (int64_t)1 << 53;
    feed(f, "P", 1, 1, 100, 0);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "P", 1, big, 10), COMPLETENESS_UNTRACKED);
    assert_int_equal(completeness_on_unstored(f->c, &f->a, "P", 1, big - 7, 10), -1);
    /* A second far seq that is not consistent with the first restarts the run. */
    assert_int_equal(completeness_on_reading(f->c, &f->a, "P", 1, 5000000, 10), COMPLETENESS_UNTRACKED);
    /* Normal readings go on being tracked, and reset the run. */
    assert_int_equal(completeness_on_reading(f->c, &f->a, "P", 1, 101, 20), COMPLETENESS_NEW);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "P", 1, big, 20), COMPLETENESS_UNTRACKED);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "P", 1, 102, 20), COMPLETENESS_NEW);
    assert_int_equal(completeness_on_reading(f->c, &f->a, "P", 1, big + 1 - 1, 20), COMPLETENESS_UNTRACKED);
    completeness_counts x = counts(f, "P");
    assert_int_equal(x.expected, 102);
    assert_int_equal(x.received, 102);
    assert_int_equal(x.lost, 0);
    assert_int_equal(x.pending, 0);
    assert_int_equal(f->a.nlost, 0);
    completeness_device_view v;
    assert_int_equal(completeness_device_view_get(f->c, "P", &v), 0);
    assert_int_equal(v.untracked, 5);
    /* A jump within max_jump (test default 100000) is an ordinary gap. */
    assert_int_equal(completeness_on_reading(f->c, &f->a, "P", 1, 102 + 100000, 30), COMPLETENESS_NEW);
    x = counts(f, "P");
    assert_int_equal(x.pending, 99999);
    /* A first-seen boot at a huge seq has no leading gap (lead_max). */
    assert_int_equal(completeness_on_reading(f->c, &f->a, "Q", 1, big, 0), COMPLETENESS_NEW);
    x = counts(f, "Q");
    assert_int_equal(x.expected, 1);
    assert_int_equal(x.lost + x.pending, 0);
}

/* A power cut lost the device's unwritten page: its next boot says how far
 * the old boot went, the tail becomes a gap, is asked for, and the device's
 * "missing" marks it lost with a reason. */
static void test_boot_end_tail_asked_then_lost(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 100, 0);
    feed(f, "D1", 8, 1, 5, 500); /* the new boot */
    assert_int_equal(counts(f, "D1").pending, 0);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, 108, 600), 1);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.expected, 113);
    assert_int_equal(x.pending, 8);
    assert_int_equal(f->a.gaps_opened, 1);
    /* Settles like any gap, then one request for exactly the tail. */
    assert_int_equal(completeness_tick(f->c, &f->a, 1500, 1, 100), 0);
    assert_int_equal(completeness_tick(f->c, &f->a, 1600, 1, 100), 1);
    assert_int_equal(f->a.requests[0].boot, 7);
    assert_int_equal(f->a.requests[0].from, 101);
    assert_int_equal(f->a.requests[0].to, 108);
    assert_int_equal(completeness_on_ack(f->c, &f->a, "D1", f->a.requests[0].req_id, 1, 0, 0, 8,
                                         1700),
                     0);
    x = counts(f, "D1");
    assert_int_equal(x.lost, 8);
    assert_int_equal(x.pending, 0);
    assert_int_equal(f->a.nlost, 1);
    assert_int_equal(f->a.lost[0].boot, 7);
    assert_int_equal(f->a.lost[0].from, 101);
    assert_int_equal(f->a.lost[0].to, 108);
    assert_int_equal((int)f->a.lost[0].why, COMPLETENESS_LOST_MISSING);
    /* The retained status seen again (reconnect, vigild restart) adds
     * nothing. */
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, 108, 5000), 0);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, 50, 5000), 0);
    x = counts(f, "D1");
    assert_int_equal(x.expected, 113);
    assert_int_equal(x.lost, 8);
    assert_int_equal(completeness_tick(f->c, &f->a, 60000, 1, 100), 0);
}

/* The backlog replayed from flash fills most of the announced range by
 * itself; only what it lacks is asked for. */
static void test_boot_end_replay_fills_first(void **state)
{
    fx *f = *state;
    feed(f, "D1", 7, 1, 10, 0);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, 50, 100), 1);
    assert_int_equal(counts(f, "D1").pending, 40);
    feed(f, "D1", 7, 11, 42, 800); /* replay, oldest first */
    assert_int_equal(completeness_tick(f->c, &f->a, 1000, 1, 100), 0); /* not quiet yet */
    assert_int_equal(completeness_tick(f->c, &f->a, 1800, 1, 100), 1);
    assert_int_equal(f->a.requests[0].from, 43);
    assert_int_equal(f->a.requests[0].to, 50);
    completeness_on_ack(f->c, &f->a, "D1", f->a.requests[0].req_id, 1, 0, 0, 8, 1900);
    completeness_counts x = counts(f, "D1");
    assert_int_equal(x.received, 42);
    assert_int_equal(x.lost, 8);
    assert_int_equal(x.pending, 0);
}

/* A boot vigild never saw (offline all along) is created from 1; the
 * claim is bounded like a reading; retired boots and hostile values are
 * refused. */
static void test_boot_end_bounds(void **state)
{
    fx *f = *state;
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D2", 5, 20, 0), 1);
    completeness_counts x = counts(f, "D2");
    assert_int_equal(x.expected, 20);
    assert_int_equal(x.pending, 20);
    feed(f, "D2", 5, 1, 15, 100);
    assert_int_equal(counts(f, "D2").pending, 5);

    feed(f, "D1", 7, 1, 10, 0);
    feed(f, "D1", 8, 1, 10, 0);
    /* More than max_jump (default 100,000) beyond hi: one status cannot
     * turn that much into gaps. */
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, 10 + 100001, 10), -1);
    assert_int_equal(counts(f, "D1").expected, 20);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, 10 + 100000, 10), 1);
    assert_int_equal(counts(f, "D1").expected, 20 + 100000);
    /* A boot below the current one that is not tracked (retired). */
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 3, 10, 10), -1);
    /* Unknown boot above the current: bounded from 0. */
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D3", 9, 100001, 10), -1);
    /* Hostile values and ids. */
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", -1, 10, 10), -1);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, -5, 10), -1);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, 0, 10), -1);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", (int64_t)1 << 60, 10, 10), -1);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "D1", 7, (int64_t)1 << 60, 10), -1);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, "bad/id", 7, 10, 10), -1);
    assert_int_equal(completeness_on_boot_end(f->c, &f->a, NULL, 7, 10, 10), -1);
}

/* Boots are allocated as a device shows them (one is the rule) and the
 * device record holds its id at its own length: every boot keeps its data
 * as the array grows, the fifth retires the least recently seen into the
 * totals, and a longest id (64 chars) comes out whole in both lists. */
static void test_boots_grow_and_long_id(void **state)
{
    fx *f = *state;
    char id[COMPLETENESS_ID_MAX + 1];
    memset(id, 'a', COMPLETENESS_ID_MAX);
    id[COMPLETENESS_ID_MAX] = '\0';
    id[0] = 'L';
    completeness_device_view v;
    feed(f, id, 1, 1, 3, 0);
    feed(f, id, 1, 6, 8, 0); /* 4..5 pending in boot 1 */
    assert_int_equal(completeness_device_view_get(f->c, id, &v), 0);
    assert_int_equal(v.nboots, 1);
    for (int64_t boot = 2; boot <= 4; boot++) {
        feed(f, id, boot, 1, 10, 100 * boot);
        assert_int_equal(completeness_device_view_get(f->c, id, &v), 0);
        assert_int_equal(v.nboots, (size_t)boot);
    }
    completeness_counts x = counts(f, id);
    assert_int_equal(x.expected, 8 + 3 * 10);
    assert_int_equal(x.received, 6 + 3 * 10);
    assert_int_equal(x.pending, 2);
    /* Boot 1's gap survived the array's growth: it is the one asked for. */
    assert_int_equal(completeness_tick(f->c, &f->a, 2000, 1, 100), 1);
    assert_string_equal(f->a.requests[0].id, id);
    assert_int_equal(f->a.requests[0].boot, 1);
    assert_int_equal(f->a.requests[0].from, 4);
    assert_int_equal(f->a.requests[0].to, 5);
    /* A fifth boot: boot 1 (seen least recently) is retired, its gap lost. */
    feed(f, id, 5, 1, 2, 3000);
    assert_int_equal(completeness_device_view_get(f->c, id, &v), 0);
    assert_int_equal(v.nboots, 4);
    for (size_t k = 0; k < v.nboots; k++)
        assert_int_not_equal(v.boots[k].boot, 1);
    assert_int_equal(v.retired.expected, 8);
    assert_int_equal(v.retired.lost, 2);
    assert_int_equal(f->a.nlost, 1);
    assert_string_equal(f->a.lost[0].id, id);
    assert_int_equal((int)f->a.lost[0].why, COMPLETENESS_LOST_REBOOT);
    x = counts(f, id);
    assert_int_equal(x.expected, 8 + 3 * 10 + 2);
    assert_int_equal(x.lost, 2);
    assert_int_equal(x.pending, 0);
    /* Loading grows the array the same way and keeps the highest boots. */
    for (int64_t boot = 1; boot <= 6; boot++)
        assert_int_equal(completeness_load_island(f->c, "R1", boot, 1, 5), 0);
    completeness_load_done(f->c, 4000);
    assert_int_equal(completeness_device_view_get(f->c, "R1", &v), 0);
    assert_int_equal(v.nboots, 4);
    assert_int_equal(v.current, 6);
    for (size_t k = 0; k < v.nboots; k++)
        assert_true(v.boots[k].boot >= 3);
}

/* A tick before any device is known (vigild's first ticks on an empty
 * store): nothing to do, and no null heap handed to qsort (UBSan aborted
 * vigild here at its first tick). */
static void test_tick_with_no_devices(void **state)
{
    fx *f = *state;
    for (int t = 0; t < 3; t++)
        assert_int_equal(completeness_tick(f->c, &f->a, 250 + 250 * t, 1, 64), 0);
    assert_int_equal(completeness_tick_visits(f->c), 0);
    assert_int_equal(f->a.nrequests, 0);
}

/* Issue 13: a tick looks only at the devices that may be due, not at the
 * whole fleet, and still serves them in table order. A walk of every device
 * (the old tick) would count 1000 visits per tick here. */
static void test_tick_visits_only_due(void **state)
{
    fx *f = *state;
    char id[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "V%04d", i);
        feed(f, id, 1, 1, 3, 100);
    }
    /* In-order readings of a first boot leave nothing due: not looked at. */
    assert_int_equal(completeness_tick(f->c, &f->a, 200, 1, 64), 0);
    uint64_t v0 = completeness_tick_visits(f->c);
    assert_int_equal(v0, 0);
    for (int t = 0; t < 40; t++)
        assert_int_equal(completeness_tick(f->c, &f->a, 450 + 250 * t, 1, 64), 0);
    assert_int_equal(completeness_tick_visits(f->c), v0);
    /* Three devices open a gap (4..9): only they are looked at. */
    const char *gap[3] = {"V0999", "V0007", "V0500"};
    for (int i = 0; i < 3; i++)
        feed(f, gap[i], 1, 10, 10, 30000);
    assert_int_equal(completeness_tick(f->c, &f->a, 30100, 1, 64), 0); /* settling */
    assert_int_equal(completeness_tick_visits(f->c), v0 + 3);
    for (int64_t t = 30200; t < 31000; t += 100)
        assert_int_equal(completeness_tick(f->c, &f->a, t, 1, 64), 0);
    assert_int_equal(completeness_tick_visits(f->c), v0 + 3); /* filed at settle time */
    assert_int_equal(completeness_tick(f->c, &f->a, 31000, 1, 64), 3);
    assert_int_equal(completeness_tick_visits(f->c), v0 + 6);
    /* In table (first-seen) order, whatever order the gaps opened in. */
    const char *order[3] = {"V0007", "V0500", "V0999"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(f->a.requests[i].id, order[i]);
        assert_int_equal(f->a.requests[i].from, 4);
        assert_int_equal(f->a.requests[i].to, 9);
    }
    /* Outstanding: nothing until the ack deadline (2 s), then a retry. */
    f->a.nrequests = 0;
    for (int64_t t = 31250; t < 33000; t += 250)
        assert_int_equal(completeness_tick(f->c, &f->a, t, 1, 64), 0);
    assert_int_equal(completeness_tick_visits(f->c), v0 + 6);
    assert_int_equal(completeness_tick(f->c, &f->a, 33000, 1, 64), 3);
    /* Filled: looked at once more, then never again. */
    for (int i = 0; i < 3; i++) {
        feed(f, gap[i], 1, 4, 9, 33100);
        assert_int_equal(counts(f, gap[i]).pending, 0);
    }
    uint64_t v1 = completeness_tick_visits(f->c);
    completeness_tick(f->c, &f->a, 33200, 1, 64);
    for (int64_t t = 33450; t < 60000; t += 250)
        completeness_tick(f->c, &f->a, t, 1, 64);
    assert_int_equal(completeness_tick_visits(f->c), v1 + 3 + 3); /* + the ack deadlines */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_contiguous_no_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_gap_settle_then_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_fills_without_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coalescing_and_span, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_ack_marks_oldest_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts_backoff_give_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_can_request_and_refused_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_request_list_defers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_lost_list_still_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_publish_keeps_tries, setup, teardown),
        cmocka_unit_test(test_global_rate_limit),
        cmocka_unit_test_setup_teardown(test_reboot_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leading_gap_of_new_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unstored_becomes_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_from_islands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_reading_cannot_poison, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_end_tail_asked_then_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_end_replay_fills_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_end_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boots_grow_and_long_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_with_no_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_visits_only_due, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
