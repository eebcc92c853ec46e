/* Unit tests for several instances: server/cluster.c's pure half (bucket
 * hashing, the fair-share decision, simulated to convergence and takeover),
 * the forget calls of completeness / tracker / alarm engine, and
 * server/alarm_wire.c (the retained alarm list, forwarded alarm ops). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alarm.h"
#include "alarm_wire.h"
#include "cluster.h"
#include "completeness.h"
#include "sbuf.h"
#include "tracker.h"

/* ---- buckets ---- */

static void test_bucket_stable(void **state)
{
    (void)state;
    /* Fixed forever: every instance, every version must agree. */
    assert_int_equal(cluster_bucket_of("esp32-0001"), cluster_bucket_of("esp32-0001"));
    unsigned b1 = cluster_bucket_of("sim-0000"), b2 = cluster_bucket_of("sim-0001");
    assert_true(b1 < CLUSTER_BUCKETS && b2 < CLUSTER_BUCKETS);
    /* Independent FNV-1a 64 and fold: the definition, not the code. */
    const char *id = "ward3-bed12";
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ull;
    }
    assert_int_equal(cluster_bucket_of(id), (unsigned)((h ^ (h >> 32) ^ (h >> 16)) % 64));
    assert_int_equal(cluster_bucket_of(""), (unsigned)((1469598103934665603ull ^ (1469598103934665603ull >> 32) ^
                                                        (1469598103934665603ull >> 16)) % 64));
}

static void test_bucket_spread(void **state)
{
    (void)state;
    unsigned count[CLUSTER_BUCKETS] = {0};
    char id[32];
    for (int i = 0; i < 6400; i++) {
        snprintf(id, sizeof id, "sim-%04d", i);
        count[cluster_bucket_of(id)]++;
    }
    for (unsigned b = 0; b < CLUSTER_BUCKETS; b++) {
        assert_true(count[b] >= 50);  /* mean 100 */
        assert_true(count[b] <= 150);
    }
    /* 200 devices, the integration test's fleet: no bucket empty of hope,
     * none with more than a few times its share. */
    unsigned small[CLUSTER_BUCKETS] = {0}, max = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "sim-%04d", i);
        small[cluster_bucket_of(id)]++;
    }
    for (unsigned b = 0; b < CLUSTER_BUCKETS; b++)
        max = small[b] > max ? small[b] : max;
    assert_true(max <= 12);
}

/* ---- the decision ---- */

static uint64_t low_bits(unsigned n) { return n >= 64 ? CLUSTER_ALL : (((uint64_t)1 << n) - 1); }

static void test_fair_share(void **state)
{
    (void)state;
    assert_int_equal(cluster_fair_share(0), 64);
    assert_int_equal(cluster_fair_share(1), 64);
    assert_int_equal(cluster_fair_share(2), 32);
    assert_int_equal(cluster_fair_share(3), 22);
    assert_int_equal(cluster_fair_share(63), 2);
    assert_int_equal(cluster_fair_share(64), 1);
    assert_int_equal(cluster_fair_share(65), 1);
    assert_int_equal(cluster_popcount(0), 0);
    assert_int_equal(cluster_popcount(CLUSTER_ALL), 64);
}

static void test_plan_boundaries(void **state)
{
    (void)state;
    /* Alone (or no count yet): take every free bucket. */
    cluster_plan p = cluster_plan_decide(0, 0, 0, 0);
    assert_true(p.lock == CLUSTER_ALL && p.unlock == 0);
    p = cluster_plan_decide(1, 0, 0, 17);
    assert_true(p.lock == CLUSTER_ALL);
    /* At the share: nothing. */
    p = cluster_plan_decide(1, CLUSTER_ALL, 0, 0);
    assert_true(p.lock == 0 && p.unlock == 0);
    p = cluster_plan_decide(2, low_bits(32), ~low_bits(32), 0);
    assert_true(p.lock == 0 && p.unlock == 0);
    p = cluster_plan_decide(3, low_bits(22), 0, 0);
    assert_true(p.lock == 0 && p.unlock == 0);
    /* One below the share: exactly one free bucket, the first from start. */
    p = cluster_plan_decide(3, low_bits(21), 0, 0);
    assert_true(p.lock == cluster_bit(21) && p.unlock == 0);
    p = cluster_plan_decide(3, low_bits(21), 0, 40);
    assert_true(p.lock == cluster_bit(40));
    /* Start wraps. */
    p = cluster_plan_decide(64, 0, ~cluster_bit(2), 63);
    assert_true(p.lock == cluster_bit(2));
    /* Below the share but nothing free: nothing (no stealing). */
    p = cluster_plan_decide(3, low_bits(20), ~low_bits(20), 0);
    assert_true(p.lock == 0 && p.unlock == 0);
    /* Held elsewhere is never asked for. */
    p = cluster_plan_decide(2, 0, low_bits(40), 0);
    assert_true(p.lock == (CLUSTER_ALL & ~low_bits(40)));
    assert_int_equal(cluster_popcount(p.lock), 24);
    /* Above the share: exactly one released per tick, never with a lock. */
    p = cluster_plan_decide(2, CLUSTER_ALL, 0, 0);
    assert_true(p.lock == 0 && cluster_popcount(p.unlock) == 1);
    assert_true(p.unlock == cluster_bit(63)); /* the last before start */
    p = cluster_plan_decide(2, CLUSTER_ALL, 0, 10);
    assert_true(p.unlock == cluster_bit(9));
    p = cluster_plan_decide(64, low_bits(2), 0, 0);
    assert_int_equal(cluster_popcount(p.unlock), 1);
    assert_true((p.unlock & low_bits(2)) == p.unlock);
    /* More members than buckets: one each at most. */
    p = cluster_plan_decide(100, 0, 0, 5);
    assert_true(p.lock == cluster_bit(5));
    p = cluster_plan_decide(100, cluster_bit(5), 0, 5);
    assert_true(p.lock == 0 && p.unlock == 0);
}

/* N instances ticking in turn against a shared lock table, as the cluster
 * thread does: the granted locks never overlap, every bucket is owned once
 * the counts settle, a dead instance's buckets are taken within a few
 * ticks, and a join rebalances one bucket per instance per tick. */
typedef struct sim {
    unsigned n;
    int alive[8];
    uint64_t owned[8];
} sim;

static unsigned sim_members(const sim *s)
{
    unsigned m = 0;
    for (unsigned i = 0; i < s->n; i++)
        m += (unsigned)s->alive[i];
    return m;
}

static void sim_round(sim *s, unsigned *max_unlocks)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (!s->alive[i])
            continue;
        uint64_t elsewhere = 0;
        for (unsigned k = 0; k < s->n; k++)
            if (k != i)
                elsewhere |= s->owned[k];
        cluster_plan p = cluster_plan_decide(sim_members(s), s->owned[i], elsewhere, i * 21);
        assert_true(!(p.lock & elsewhere));
        assert_true(!(p.lock && p.unlock));
        if (cluster_popcount(p.unlock) > *max_unlocks)
            *max_unlocks = cluster_popcount(p.unlock);
        s->owned[i] = (s->owned[i] | p.lock) & ~p.unlock;
        for (unsigned a = 0; a < s->n; a++)
            for (unsigned b = a + 1; b < s->n; b++)
                assert_true((s->owned[a] & s->owned[b]) == 0);
    }
}

static int sim_settled(const sim *s)
{
    uint64_t all = 0;
    unsigned fair = cluster_fair_share(sim_members(s));
    for (unsigned i = 0; i < s->n; i++) {
        if (!s->alive[i])
            continue;
        all |= s->owned[i];
        if (cluster_popcount(s->owned[i]) > fair)
            return 0;
    }
    return all == CLUSTER_ALL;
}

static void test_plan_converges(void **state)
{
    (void)state;
    sim s = {.n = 3, .alive = {1, 1, 1}};
    unsigned maxu = 0, rounds = 0;
    while (!sim_settled(&s) && rounds < 20) {
        sim_round(&s, &maxu);
        rounds++;
    }
    assert_true(sim_settled(&s));
    assert_true(rounds <= 2);
    /* kill -9 of instance 1: the server frees its locks at once. */
    s.alive[1] = 0;
    s.owned[1] = 0;
    for (rounds = 0; !sim_settled(&s) && rounds < 20; rounds++)
        sim_round(&s, &maxu);
    assert_true(sim_settled(&s));
    assert_true(rounds <= 1); /* one tick: the takeover bound's tick term */
    assert_int_equal(cluster_popcount(s.owned[0]) + cluster_popcount(s.owned[2]), 64);
    /* Two join: the owners give up one bucket per tick, no thrash. */
    s.n = 4;
    s.alive[1] = s.alive[3] = 1;
    maxu = 0;
    for (rounds = 0; !sim_settled(&s) && rounds < 40; rounds++)
        sim_round(&s, &maxu);
    assert_true(sim_settled(&s));
    assert_int_equal(maxu, 1);
    for (unsigned i = 0; i < 4; i++)
        assert_true(cluster_popcount(s.owned[i]) >= 15 && cluster_popcount(s.owned[i]) <= 16);
    /* Settled stays settled. */
    uint64_t before[4];
    memcpy(before, s.owned, sizeof before);
    sim_round(&s, &maxu);
    assert_memory_equal(before, s.owned, sizeof before);
}

/* ---- forgetting devices ---- */

static int pick_d1(void *ctx, const char *id)
{
    (void)ctx;
    return !strcmp(id, "D1");
}

static void test_completeness_forget(void **state)
{
    (void)state;
    completeness *c = completeness_new(NULL);
    assert_non_null(c);
    assert_int_equal(completeness_load_island(c, "D1", 1, 1, 10), 0);
    assert_int_equal(completeness_load_island(c, "D1", 1, 20, 30), 0);
    assert_int_equal(completeness_load_island(c, "D2", 1, 1, 5), 0);
    completeness_load_done(c, 1000);
    completeness_counts k;
    assert_int_equal(completeness_counts_get(c, "D1", &k), 0);
    assert_int_equal(k.pending, 9);
    assert_int_equal(completeness_forget_if(c, pick_d1, NULL), 1);
    assert_int_not_equal(completeness_counts_get(c, "D1", &k), 0);
    assert_int_equal(completeness_counts_get(c, "D2", &k), 0);
    assert_int_equal(k.received, 5);
    assert_int_equal(completeness_forget_if(c, pick_d1, NULL), 0);
    /* Loaded again, as a new owner does: only what the store held. */
    assert_int_equal(completeness_load_island(c, "D1", 1, 1, 30), 0);
    completeness_load_done_if(c, pick_d1, NULL, 5000);
    assert_int_equal(completeness_counts_get(c, "D1", &k), 0);
    assert_int_equal(k.received, 30);
    assert_int_equal(k.pending, 0);
    /* A gap after the reload is asked for once it has settled, counted
     * from the reload (5000), not from the first load. */
    completeness_actions *a = calloc(1, sizeof *a);
    assert_non_null(a);
    assert_int_equal(completeness_on_reading(c, a, "D1", 1, 40, 5001), COMPLETENESS_NEW);
    completeness_actions_clear(a);
    size_t nreq = completeness_tick(c, a, 5002, 1, 8);
    assert_int_equal(nreq, 0); /* young gap: settle first */
    completeness_actions_clear(a);
    nreq = completeness_tick(c, a, 60000, 1, 8);
    assert_int_equal(nreq, 1);
    assert_string_equal(a->requests[0].id, "D1");
    assert_int_equal(a->requests[0].from, 31);
    assert_int_equal(a->requests[0].to, 39);
    free(a);
    completeness_free(c);
}

static void test_tracker_forget(void **state)
{
    (void)state;
    tracker *t = tracker_create(NULL);
    assert_non_null(t);
    completeness_actions *a = calloc(1, sizeof *a);
    assert_non_null(a);
    tracker_on_reading(t, "D1", 1, 1, 1, 10, a);
    tracker_on_reading(t, "D2", 1, 1, 1, 10, a);
    assert_int_equal(tracker_forget_if(t, pick_d1, NULL), 1);
    /* The forgotten device has no summary left; the other keeps its own. */
    sbuf b;
    sbuf_init(&b, 0);
    tracker_summary_json(t, "D1", &b);
    assert_string_equal(sbuf_data(&b), "null");
    sbuf_reset(&b);
    tracker_summary_json(t, "D2", &b);
    assert_string_not_equal(sbuf_data(&b), "null");
    sbuf_free(&b);
    free(a);
    tracker_destroy(t);
}

static alarm_rec rec(const char *dev, alarm_condition c, uint64_t id)
{
    alarm_rec a;
    memset(&a, 0, sizeof a);
    a.alarm_id = id;
    snprintf(a.device_id, sizeof a.device_id, "%s", dev);
    a.condition = c;
    a.priority = ALARM_PRIO_MEDIUM;
    a.state = ALARM_ACTIVE;
    a.has_value = 1;
    a.value = 88.5;
    a.limit = 90;
    a.started_at = 1764590586123;
    return a;
}

static void test_alarm_forget(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    assert_non_null(e);
    alarm_rec a1 = rec("D1", ALARM_SPO2_LOW, 100), a2 = rec("D2", ALARM_SPO2_LOW, 101);
    assert_int_equal(alarm_restore(e, &a1, 1764590586123), ALARM_OK);
    assert_int_equal(alarm_restore(e, &a2, 1764590586123), ALARM_OK);
    alarm_settings s;
    alarm_settings_default(&s);
    s.escalation_ms = 60000;
    assert_int_equal(alarm_set_settings(e, "D1", &s), ALARM_OK);
    assert_int_equal(alarm_forget_if(e, pick_d1, NULL), 1);
    alarm_rec out[ALARM_COND_COUNT];
    assert_int_equal(alarm_list(e, "D1", out, ALARM_COND_COUNT), 0);
    assert_int_equal(alarm_list(e, "D2", out, ALARM_COND_COUNT), 1);
    assert_int_not_equal(alarm_find(e, 100, NULL), 0);
    alarm_settings got;
    alarm_get_settings(e, "D1", &got); /* the defaults again */
    alarm_settings def;
    alarm_settings_default(&def);
    assert_true(got.escalation_ms == def.escalation_ms);
    /* Restored again by the next owner: the same alarm, not a new one. */
    assert_int_equal(alarm_restore(e, &a1, 1764590586123), ALARM_OK);
    assert_int_equal(alarm_find(e, 100, NULL), 0);
    assert_int_equal(alarm_forget_if(e, pick_d1, NULL), 1);
    alarm_engine_free(e);
}

static unsigned stripe_by_letter(const char *id) { return (unsigned)(id[0] - 'A'); }

static uint64_t raise_offline(alarm_engine *e, const char *id, int64_t now)
{
    alarm_events *ev = calloc(1, sizeof *ev);
    assert_non_null(ev);
    assert_int_equal(alarm_on_status(e, ev, id, 0, 0, now), ALARM_OK);
    uint64_t aid = 0;
    for (size_t i = 0; i < ev->n; i++)
        if (ev->ev[i].kind == ALARM_EV_RAISED && ev->ev[i].alarm.condition == ALARM_OFFLINE)
            aid = ev->ev[i].alarm.alarm_id;
    free(ev);
    assert_true(aid != 0);
    return aid;
}

/* Two engines (two vigild) raising in the same millisecond for devices of
 * different stripes never issue the same id; one stripe's ids grow and stay
 * in its window; a restored id is never issued again. */
static void test_alarm_id_stripes(void **state)
{
    (void)state;
    const int64_t T = 1796126586123;
    alarm_engine *a = alarm_engine_new(64), *b = alarm_engine_new(64);
    assert_non_null(a);
    assert_non_null(b);
    alarm_engine_stripe_ids(a, stripe_by_letter);
    alarm_engine_stripe_ids(b, stripe_by_letter);
    uint64_t ids[40];
    char id[8];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "A%d", i);
        ids[i] = raise_offline(a, id, T);
        snprintf(id, sizeof id, "B%d", i);
        ids[20 + i] = raise_offline(b, id, T);
    }
    for (int i = 0; i < 40; i++) {
        unsigned s = i < 20 ? 0 : 1;
        unsigned part = (unsigned)(ids[i] % 1000);
        assert_true(part >= s * ALARM_ID_STRIPE_WIDTH && part < (s + 1) * ALARM_ID_STRIPE_WIDTH);
        assert_true(ids[i] / 1000 >= (uint64_t)T);
        if (i % 20)
            assert_true(ids[i] > ids[i - 1]);
        for (int k = 0; k < i; k++)
            assert_true(ids[k] != ids[i]);
    }
    /* 20 in one ms overflow a 15-wide window into the next ms, same stripe. */
    assert_true(ids[19] / 1000 == (uint64_t)T + 1);
    /* A new owner restores an alarm of stripe 0 and raises in it "earlier". */
    alarm_engine *c = alarm_engine_new(64);
    assert_non_null(c);
    alarm_engine_stripe_ids(c, stripe_by_letter);
    alarm_rec r = rec("A0", ALARM_SPO2_LOW, ids[19]);
    assert_int_equal(alarm_restore(c, &r, T), ALARM_OK);
    uint64_t next = raise_offline(c, "A7", T);
    assert_true(next > ids[19]);
    assert_true(next % 1000 < ALARM_ID_STRIPE_WIDTH);
    alarm_engine_free(a);
    alarm_engine_free(b);
    alarm_engine_free(c);
}

/* ---- alarm_wire ---- */

static size_t list_json(const char *dev, const alarm_rec *v, size_t n, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "{\"device_id\":\"%s\",\"alarms\":[", dev);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf[len++] = ',';
        len += alarm_json(&v[i], buf + len, cap - len);
    }
    len += (size_t)snprintf(buf + len, cap - len, "]}");
    return len;
}

static void test_wire_list(void **state)
{
    (void)state;
    alarm_rec v[3] = {rec("esp32-01", ALARM_SPO2_LOW, 1764590586123000),
                      rec("esp32-01", ALARM_NEWS2, 1764590586123001),
                      rec("esp32-01", ALARM_OFFLINE, 1764590586123002)};
    v[1].priority = ALARM_PRIO_HIGH;
    v[1].state = ALARM_ACKED;
    v[1].acked_at = 1764590600000;
    snprintf(v[1].acked_by, sizeof v[1].acked_by, "nurse");
    v[1].news2_score = 7;
    v[1].escalation = 2;
    v[1].silenced_until = 1764590700000;
    v[2].has_value = 0;
    char buf[8192], dev[ALARM_ID_MAX + 1];
    size_t len = list_json("esp32-01", v, 3, buf, sizeof buf);
    alarm_rec out[ALARM_COND_COUNT];
    size_t n = 0;
    assert_int_equal(alarm_wire_parse_list(buf, len, dev, out, &n), ALARM_OK);
    assert_string_equal(dev, "esp32-01");
    assert_int_equal(n, 3);
    assert_true(out[0].alarm_id == 1764590586123000ull);
    assert_int_equal(out[0].condition, ALARM_SPO2_LOW);
    assert_true(out[0].has_value && out[0].value == 88.5 && out[0].limit == 90);
    assert_true(out[0].started_at == 1764590586123);
    assert_int_equal(out[1].state, ALARM_ACKED);
    assert_int_equal(out[1].priority, ALARM_PRIO_HIGH);
    assert_string_equal(out[1].acked_by, "nurse");
    assert_true(out[1].acked_at == 1764590600000 && out[1].silenced_until == 1764590700000);
    assert_int_equal(out[1].news2_score, 7);
    assert_int_equal(out[1].escalation, 2);
    assert_false(out[2].has_value);
    /* Empty list: a device with nothing open. */
    len = list_json("esp32-01", v, 0, buf, sizeof buf);
    assert_int_equal(alarm_wire_parse_list(buf, len, dev, out, &n), ALARM_OK);
    assert_int_equal(n, 0);
    /* Refused: another device's alarm, a condition twice, a cleared topic,
     * not JSON, a bad time. */
    alarm_rec bad[2] = {v[0], rec("esp32-02", ALARM_HR_LOW, 5)};
    len = list_json("esp32-01", bad, 2, buf, sizeof buf);
    assert_int_equal(alarm_wire_parse_list(buf, len, dev, out, &n), ALARM_EINVAL);
    assert_int_equal(n, 0);
    alarm_rec twice[2] = {v[0], v[0]};
    twice[1].alarm_id++;
    len = list_json("esp32-01", twice, 2, buf, sizeof buf);
    assert_int_equal(alarm_wire_parse_list(buf, len, dev, out, &n), ALARM_EINVAL);
    assert_int_equal(alarm_wire_parse_list("", 0, dev, out, &n), ALARM_EINVAL);
    assert_int_equal(alarm_wire_parse_list("{", 1, dev, out, &n), ALARM_EINVAL);
    const char *t = "{\"device_id\":\"d\",\"alarms\":[{\"alarm_id\":1,\"device_id\":\"d\",\"condition\":"
                    "\"spo2_low\",\"priority\":\"low\",\"state\":\"active\",\"started_at\":\"yesterday\"}]}";
    assert_int_equal(alarm_wire_parse_list(t, strlen(t), dev, out, &n), ALARM_EINVAL);
    const char *ok = "{\"device_id\":\"d\",\"alarms\":[{\"alarm_id\":1,\"device_id\":\"d\",\"condition\":"
                     "\"spo2_low\",\"priority\":\"low\",\"state\":\"active\",\"started_at\":null}]}";
    assert_int_equal(alarm_wire_parse_list(ok, strlen(ok), dev, out, &n), ALARM_OK);
    assert_int_equal(n, 1);
}

static void test_wire_iso(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_int_equal(alarm_wire_parse_iso("1970-01-01T00:00:00.000Z", &ms), 0);
    assert_true(ms == 0);
    assert_int_equal(alarm_wire_parse_iso("2026-12-01T12:03:06.123Z", &ms), 0);
    assert_true(ms == 1796126586123);
    assert_int_equal(alarm_wire_parse_iso("2024-02-29T23:59:59.999Z", &ms), 0);
    assert_true(ms == 1709251199999);
    assert_int_equal(alarm_wire_parse_iso("2026-13-01T12:03:06.123Z", &ms), -1);
    assert_int_equal(alarm_wire_parse_iso("2026-12-01T12:03:06Z", &ms), -1);
    assert_int_equal(alarm_wire_parse_iso("2026-12-01 12:03:06.123Z", &ms), -1);
    assert_int_equal(alarm_wire_parse_iso(NULL, &ms), -1);
}

static void test_wire_op(void **state)
{
    (void)state;
    vigil_alarm_op op = {.kind = VIGIL_ALARM_SILENCE, .alarm_id = 1764590586123000ull, .seconds = 90};
    snprintf(op.user, sizeof op.user, "nurse \"A\"");
    snprintf(op.device_id, sizeof op.device_id, "esp32-01");
    char buf[ALARM_WIRE_OP_MAX];
    size_t n = alarm_wire_build_op(&op, 1764590586123, buf, sizeof buf);
    assert_true(n > 0);
    vigil_alarm_op back;
    assert_int_equal(alarm_wire_parse_op(buf, n, &back), ALARM_OK);
    assert_int_equal(back.kind, VIGIL_ALARM_SILENCE);
    assert_true(back.alarm_id == op.alarm_id && back.seconds == 90);
    assert_string_equal(back.user, "nurse \"A\"");
    assert_string_equal(back.device_id, "esp32-01");
    assert_null(back.settings);
    /* Settings travel whole: the owner applies exactly what was stored. */
    alarm_settings s;
    alarm_settings_default(&s);
    s.escalation_ms = 45000;
    vigil_alarm_op so = {.kind = VIGIL_ALARM_SETTINGS, .settings = &s};
    snprintf(so.device_id, sizeof so.device_id, "esp32-01");
    snprintf(so.user, sizeof so.user, "dr");
    n = alarm_wire_build_op(&so, 1, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(alarm_wire_parse_op(buf, n, &back), ALARM_OK);
    assert_int_equal(back.kind, VIGIL_ALARM_SETTINGS);
    assert_non_null(back.settings);
    assert_true(back.settings->escalation_ms == 45000);
    free(back.settings);
    /* Refused: unknown op, ack without an alarm id, silence too long. */
    const char *bad[] = {
        "{\"op\":\"delete\",\"alarm_id\":1,\"device_id\":\"d\",\"user\":\"u\"}",
        "{\"op\":\"ack\",\"alarm_id\":0,\"device_id\":\"d\",\"user\":\"u\"}",
        "{\"op\":\"silence\",\"alarm_id\":1,\"device_id\":\"d\",\"seconds\":601,\"user\":\"u\"}",
        "{\"op\":\"settings\",\"alarm_id\":0,\"device_id\":\"d\",\"user\":\"u\",\"settings\":{\"bogus\":1}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(alarm_wire_parse_op(bad[i], strlen(bad[i]), &back), ALARM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_stable),
        cmocka_unit_test(test_bucket_spread),
        cmocka_unit_test(test_fair_share),
        cmocka_unit_test(test_plan_boundaries),
        cmocka_unit_test(test_plan_converges),
        cmocka_unit_test(test_completeness_forget),
        cmocka_unit_test(test_tracker_forget),
        cmocka_unit_test(test_alarm_forget),
        cmocka_unit_test(test_alarm_id_stripes),
        cmocka_unit_test(test_wire_list),
        cmocka_unit_test(test_wire_iso),
        cmocka_unit_test(test_wire_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
