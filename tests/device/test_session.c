/* Tests for device/session against a fake platform that records publishes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flash_mem.h"
#include "session.h"

#define MAXPUB 600

typedef struct pubrec {
    char topic[SESSION_TOPIC_MAX];
    char payload[512];
    int qos;
    bool retain;
} pubrec;

typedef struct fake {
    uint64_t now;
    uint64_t wall;
    bool synced;
    bool link;          /* transport accepts publishes */
    bool kv_fail;
    pubrec pubs[MAXPUB];
    size_t npub;
    char subs[4][SESSION_TOPIC_MAX];
    size_t nsub;
    bool has_interval, has_boot;
    uint32_t kv_interval, kv_boot;
    int reboots, identifies;
} fake;

static uint64_t f_mono(void *c) { return ((fake *)c)->now; }

static bool f_wall(void *c, uint64_t *ms)
{
    fake *f = c;
    *ms = f->wall + f->now;
    return f->synced;
}

static platform_status f_publish(void *c, const char *topic, const void *p, size_t len, int qos,
                                 bool retain)
{
    fake *f = c;
    if (!f->link)
        return PLATFORM_ENOTCONN;
    assert_true(f->npub < MAXPUB);
    assert_true(len < sizeof f->pubs[0].payload);
    pubrec *r = &f->pubs[f->npub++];
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    memcpy(r->payload, p, len);
    r->payload[len] = '\0';
    r->qos = qos;
    r->retain = retain;
    return PLATFORM_OK;
}

static platform_status f_subscribe(void *c, const char *topic, int qos)
{
    fake *f = c;
    assert_int_equal(qos, 1);
    snprintf(f->subs[f->nsub++ % 4], SESSION_TOPIC_MAX, "%s", topic);
    return PLATFORM_OK;
}

static platform_status f_get(void *c, const char *key, uint32_t *v)
{
    fake *f = c;
    if (!strcmp(key, PLATFORM_KEY_INTERVAL) && f->has_interval) {
        *v = f->kv_interval;
        return PLATFORM_OK;
    }
    if (!strcmp(key, PLATFORM_KEY_BOOT) && f->has_boot) {
        *v = f->kv_boot;
        return PLATFORM_OK;
    }
    return PLATFORM_ENOTFOUND;
}

static platform_status f_set(void *c, const char *key, uint32_t v)
{
    fake *f = c;
    if (f->kv_fail)
        return PLATFORM_EIO;
    if (!strcmp(key, PLATFORM_KEY_INTERVAL)) {
        f->has_interval = true;
        f->kv_interval = v;
    } else if (!strcmp(key, PLATFORM_KEY_BOOT)) {
        f->has_boot = true;
        f->kv_boot = v;
    } else {
        fail_msg("unexpected key %s", key);
    }
    return PLATFORM_OK;
}

static void f_reboot(void *c) { ((fake *)c)->reboots++; }
static void f_identify(void *c) { ((fake *)c)->identifies++; }

static bool sample(void *ctx, tenc_reading *r)
{
    (void)ctx;
    r->object_temp = 36.5;
    r->ambient_temp = 23.0;
    r->heart_rate = 70;
    r->spo2 = 97;
    r->hr_valid = r->spo2_valid = r->temp_valid = true;
    r->battery = 90;
    r->rssi = -50;
    return true;
}

typedef struct rig {
    fake f;
    platform p;
    outbox ob;
    flash_mem fm;
    uint8_t flash[8 * 4096];
    uint8_t page[OUTBOX_PAGE_BYTES(OUTBOX_PAGE_RECORDS)];
    session s;
} rig;

static rig *rig_new(void)
{
    rig *g = calloc(1, sizeof *g);
    g->f.wall = 1795794000000ULL;
    g->f.synced = true;
    g->f.now = 5000;
    g->p = (platform){.mono_ms = f_mono, .wall_ms = f_wall, .publish = f_publish,
                      .subscribe = f_subscribe, .kv_get_u32 = f_get, .kv_set_u32 = f_set,
                      .reboot = f_reboot, .identify = f_identify, .ctx = &g->f};
    return g;
}

static void rig_start(rig *g)
{
    flash_mem_init(&g->fm, g->flash, sizeof g->flash, 4096, 4);
    outbox_init(&g->ob, &g->fm.f, g->page, OUTBOX_PAGE_RECORDS);
    session_config cfg = {.device_id = "ESP32_001", .fw = "0.1.0", .default_interval_ms = 1000,
                          .drain_per_tick = 5, .sample = sample};
    assert_int_equal(session_init(&g->s, &g->p, &g->ob, &cfg), SESSION_OK);
}

static void rig_connect(rig *g)
{
    g->f.link = true;
    session_on_connect(&g->s);
}

static void deliver(rig *g, const char *topic, const char *payload)
{
    session_on_message(&g->s, topic, payload, strlen(payload));
}

static const pubrec *last_on(rig *g, const char *suffix)
{
    for (size_t i = g->f.npub; i-- > 0;) {
        size_t tl = strlen(g->f.pubs[i].topic), sl = strlen(suffix);
        if (tl >= sl && !strcmp(g->f.pubs[i].topic + tl - sl, suffix))
            return &g->f.pubs[i];
    }
    return NULL;
}

static size_t count_on(rig *g, const char *suffix)
{
    size_t n = 0;
    for (size_t i = 0; i < g->f.npub; i++) {
        size_t tl = strlen(g->f.pubs[i].topic), sl = strlen(suffix);
        n += tl >= sl && !strcmp(g->f.pubs[i].topic + tl - sl, suffix);
    }
    return n;
}

static uint64_t json_u(const char *json, const char *key)
{
    char pat[40];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    assert_non_null(p);
    return strtoull(p + strlen(pat), NULL, 10);
}

#define CTRL "commands/esp32/ESP32_001/control"
#define CONF "sensors/esp32/ESP32_001/config"

static void test_lwt_and_online_on_connect(void **state)
{
    (void)state;
    rig *g = rig_new();
    rig_start(g);
    assert_string_equal(session_lwt_topic(&g->s), "sensors/esp32/ESP32_001/status");
    assert_string_equal(session_lwt_payload(), "{\"status\":\"offline\"}");
    rig_connect(g);
    const pubrec *st = last_on(g, "/status");
    assert_non_null(st);
    assert_true(st->retain);
    assert_int_equal(st->qos, 1);
    assert_string_equal(st->payload,
                        "{\"status\":\"online\",\"fw\":\"0.1.0\",\"interval_ms\":1000,\"boot\":1}");
    assert_int_equal(g->f.nsub, 2);
    assert_string_equal(g->f.subs[0], CONF);
    assert_string_equal(g->f.subs[1], CTRL);
    assert_int_equal(session_publish_offline(&g->s), PLATFORM_OK);
    st = last_on(g, "/status");
    assert_true(st->retain);
    assert_string_equal(st->payload, "{\"status\":\"offline\"}");
    free(g);
}

static void test_boot_increments_across_restarts(void **state)
{
    (void)state;
    rig *g = rig_new();
    rig_start(g);
    assert_int_equal(g->s.boot, 1);
    rig_start(g);
    assert_int_equal(g->s.boot, 2);
    g->f.kv_boot = 41;
    rig_start(g);
    assert_int_equal(g->s.boot, 42);
    assert_int_equal(g->f.kv_boot, 42);
    free(g);
}

static void test_config_applied_persisted_acked(void **state)
{
    (void)state;
    rig *g = rig_new();
    rig_start(g);
    rig_connect(g);
    deliver(g, CONF, "{\"cfg_id\":\"cfg-1-1\",\"interval_ms\":250,\"future\":{\"x\":[1,2]}}");
    assert_int_equal(g->s.interval_ms, 250);
    assert_true(g->f.has_interval);
    assert_int_equal(g->f.kv_interval, 250);
    /* ack then status republished, in that order */
    assert_string_equal(g->f.pubs[g->f.npub - 2].topic, "sensors/esp32/ESP32_001/ack");
    assert_string_equal(g->f.pubs[g->f.npub - 2].payload,
                        "{\"cfg_id\":\"cfg-1-1\",\"ok\":true,\"interval_ms\":250}");
    const pubrec *st = &g->f.pubs[g->f.npub - 1];
    assert_string_equal(st->topic, "sensors/esp32/ESP32_001/status");
    assert_true(st->retain);
    assert_int_equal(json_u(st->payload, "interval_ms"), 250);
    /* persisted: a restart keeps it */
    rig_start(g);
    assert_int_equal(g->s.interval_ms, 250);
    free(g);
}

static void test_invalid_config_rejected(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{\"cfg_id\":\"c2\",\"interval_ms\":5}",
        "{\"cfg_id\":\"c2\",\"interval_ms\":3600001}",
        "{\"cfg_id\":\"c2\",\"interval_ms\":\"1000\"}",
        "{\"cfg_id\":\"c2\",\"interval_ms\":100.5}",
        "{\"cfg_id\":\"c2\",\"interval_ms\":100,\"interval_ms\":200}",
    };
    rig *g = rig_new();
    rig_start(g);
    rig_connect(g);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t before = count_on(g, "/status");
        deliver(g, CONF, bad[i]);
        const pubrec *a = last_on(g, "/ack");
        assert_non_null(a);
        assert_string_equal(a->payload,
                            "{\"cfg_id\":\"c2\",\"ok\":false,\"error\":\"invalid interval_ms\"}");
        assert_int_equal(count_on(g, "/status"), before);
        assert_int_equal(g->s.interval_ms, 1000);
        g->f.npub = 0;
    }
    assert_false(g->f.has_interval);
    free(g);
}

static void test_commands_answered(void **state)
{
    (void)state;
    rig *g = rig_new();
    rig_start(g);
    rig_connect(g);
    deliver(g, CTRL, "{\"cmd_id\":\"c-1\",\"cmd\":\"ping\"}");
    assert_string_equal(last_on(g, "/ack")->payload, "{\"cmd_id\":\"c-1\",\"cmd\":\"ping\",\"ok\":true}");
    deliver(g, CTRL, "{\"cmd_id\":\"c-2\",\"cmd\":\"identify\"}");
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd_id\":\"c-2\",\"cmd\":\"identify\",\"ok\":true}");
    assert_int_equal(g->f.identifies, 1);
    deliver(g, CTRL, "{\"cmd_id\":\"c-3\",\"cmd\":\"set_interval\",\"interval_ms\":500}");
    assert_string_equal(g->f.pubs[g->f.npub - 2].payload,
                        "{\"cmd_id\":\"c-3\",\"cmd\":\"set_interval\",\"ok\":true,\"interval_ms\":500}");
    assert_int_equal(json_u(last_on(g, "/status")->payload, "interval_ms"), 500);
    assert_int_equal(g->f.kv_interval, 500);
    deliver(g, CTRL, "{\"cmd_id\":\"c-4\",\"cmd\":\"set_interval\",\"interval_ms\":9}");
    assert_string_equal(last_on(g, "/ack")->payload,
        "{\"cmd_id\":\"c-4\",\"cmd\":\"set_interval\",\"ok\":false,\"error\":\"invalid interval_ms\"}");
    assert_int_equal(g->s.interval_ms, 500);
    deliver(g, CTRL, "{\"cmd_id\":\"c-5\",\"cmd\":\"bogus\"}");
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd_id\":\"c-5\",\"cmd\":\"bogus\",\"ok\":false,\"error\":\"unknown command\"}");
    deliver(g, CTRL, "{\"cmd_id\":\"c-6\"}");
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd_id\":\"c-6\",\"ok\":false,\"error\":\"missing cmd\"}");
    deliver(g, CTRL, "{\"cmd_id\":7,\"cmd\":\"ping\"}");
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd\":\"ping\",\"ok\":false,\"error\":\"invalid cmd_id\"}");
    /* reboot: answered first, then the hook */
    size_t n = g->f.npub;
    deliver(g, CTRL, "{\"cmd_id\":\"c-8\",\"cmd\":\"reboot\"}");
    assert_int_equal(g->f.npub, n + 1);
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd_id\":\"c-8\",\"cmd\":\"reboot\",\"ok\":true}");
    assert_int_equal(g->f.reboots, 1);
    assert_true(g->s.reboot_requested);
    /* without hooks: ok:false */
    g->p.reboot = NULL;
    g->p.identify = NULL;
    deliver(g, CTRL, "{\"cmd_id\":\"c-9\",\"cmd\":\"reboot\"}");
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd_id\":\"c-9\",\"cmd\":\"reboot\",\"ok\":false,\"error\":\"not supported\"}");
    free(g);
}

static void test_malformed_ignored(void **state)
{
    (void)state;
    static const char *junk[] = {
        "", "{", "}", "[1,2]", "\"ping\"", "{\"cmd\":\"ping\"", "{\"cmd\":\"ping\",}",
        "{\"cmd\":\"pi\nng\"}", "{\"cmd\":\"ping\"} x", "{\"cmd\":tru}", "{\"a\":01}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}", "null",
        "{\"a\":-}", "{\"a\":1.}", "{\"a\":1e}", "{'cmd':'ping'}",
    };
    rig *g = rig_new();
    rig_start(g);
    rig_connect(g);
    size_t n = g->f.npub;
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        deliver(g, CTRL, junk[i]);
        deliver(g, CONF, junk[i]);
    }
    assert_int_equal(g->f.npub, n);
    assert_int_equal(g->s.st.malformed, 2 * (sizeof junk / sizeof junk[0]));
    /* oversize, wrong topic, NUL inside the payload */
    char big[SESSION_MAX_IN + 10];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    session_on_message(&g->s, CTRL, big, sizeof big);
    deliver(g, "commands/esp32/OTHER/control", "{\"cmd_id\":\"x\",\"cmd\":\"ping\"}");
    session_on_message(&g->s, CTRL, "{\"cmd\":\"ping\"}\0", 15);
    assert_int_equal(g->f.npub, n);
    /* valid JSON with escapes and nesting is fine; the id is echoed verbatim */
    deliver(g, CTRL, " {\"x\":{\"y\":[true,false,null,-1.5e3]},\"cmd_id\":\"a\\\"b\\u0041\",\"cmd\":\"ping\"} ");
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd_id\":\"a\\\"b\\u0041\",\"cmd\":\"ping\",\"ok\":true}");
    free(g);
}

static void test_seq_monotonic_live(void **state)
{
    (void)state;
    rig *g = rig_new();
    rig_start(g);
    rig_connect(g);
    for (int i = 0; i < 50; i++) {
        session_tick(&g->s);
        g->f.now += 100; /* 10 ticks per interval */
    }
    assert_int_equal(count_on(g, "/data"), 5);
    uint64_t want = 1;
    for (size_t i = 0; i < g->f.npub; i++) {
        if (!strstr(g->f.pubs[i].topic, "/data"))
            continue;
        assert_int_equal(g->f.pubs[i].qos, 1);
        assert_false(g->f.pubs[i].retain);
        assert_int_equal(json_u(g->f.pubs[i].payload, "seq"), want++);
        assert_int_equal(json_u(g->f.pubs[i].payload, "boot"), 1);
        assert_non_null(strstr(g->f.pubs[i].payload, "\"ts\":"));
    }
    /* a stall does not cause a burst */
    g->f.now += 10000;
    session_tick(&g->s);
    session_tick(&g->s);
    assert_int_equal(count_on(g, "/data"), 6);
    free(g);
}

static void test_offline_replayed_in_order_and_resend(void **state)
{
    (void)state;
    rig *g = rig_new();
    rig_start(g);
    rig_connect(g);
    session_tick(&g->s); /* seq 1 live */
    g->f.link = false;
    session_on_disconnect(&g->s);
    for (int i = 0; i < 12; i++) { /* seq 2..13 offline */
        g->f.now += 1000;
        session_tick(&g->s);
    }
    assert_int_equal(outbox_pending(&g->ob), 12);
    assert_int_equal(g->s.st.queued, 12);
    g->f.npub = 0;
    rig_connect(g);
    g->f.now += 1000;
    session_tick(&g->s); /* seq 14 live first, then 5 replays */
    size_t first = 0;
    while (!strstr(g->f.pubs[first].topic, "/data"))
        first++;
    assert_int_equal(json_u(g->f.pubs[first].payload, "seq"), 14);
    uint64_t want = 2;
    for (int t = 0; t < 5; t++)
        session_tick(&g->s); /* not due: only drains */
    for (size_t i = first + 1; i < g->f.npub; i++) {
        if (!strstr(g->f.pubs[i].topic, "/data"))
            continue;
        uint64_t seq = json_u(g->f.pubs[i].payload, "seq");
        assert_int_equal(seq, want);
        /* original ts: the wall clock when it was taken, 1 s apart */
        assert_int_equal(json_u(g->f.pubs[i].payload, "ts"), g->f.wall + 5000 + (want - 1) * 1000);
        assert_int_equal(json_u(g->f.pubs[i].payload, "timestamp"), 5000 + (want - 1) * 1000);
        want++;
    }
    assert_int_equal(want, 14);
    assert_int_equal(outbox_pending(&g->ob), 0);
    assert_int_equal(g->s.st.replayed, 12);

    /* resend: seqs 10..20 of boot 1: 10..14 present, 15..20 missing */
    g->f.npub = 0;
    deliver(g, CTRL, "{\"cmd_id\":\"r1\",\"cmd\":\"resend\",\"boot\":1,\"from\":10,\"to\":20}");
    assert_int_equal(count_on(g, "/data"), 5);
    assert_int_equal(json_u(g->f.pubs[0].payload, "seq"), 10);
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd_id\":\"r1\",\"cmd\":\"resend\",\"ok\":true,\"sent\":5,\"missing\":6}");
    deliver(g, CTRL, "{\"cmd_id\":\"r2\",\"cmd\":\"resend\",\"boot\":1,\"from\":20,\"to\":10}");
    assert_string_equal(last_on(g, "/ack")->payload,
                        "{\"cmd_id\":\"r2\",\"cmd\":\"resend\",\"ok\":false,\"error\":\"invalid range\"}");
    deliver(g, CTRL, "{\"cmd_id\":\"r3\",\"cmd\":\"resend\",\"boot\":1,\"from\":-1,\"to\":10}");
    assert_non_null(strstr(last_on(g, "/ack")->payload, "invalid range"));
    deliver(g, CTRL, "{\"cmd_id\":\"r4\",\"cmd\":\"resend\",\"boot\":0,\"from\":0,\"to\":9007199254740992}");
    assert_non_null(strstr(last_on(g, "/ack")->payload, "\"sent\":0,\"missing\":9007199254740993"));
    free(g);
}

static void test_unsynced_and_kv_failure(void **state)
{
    (void)state;
    rig *g = rig_new();
    g->f.synced = false;
    g->f.kv_fail = true;
    rig_start(g); /* boot not persisted, still runs */
    rig_connect(g);
    session_tick(&g->s);
    const pubrec *d = last_on(g, "/data");
    assert_non_null(d);
    assert_null(strstr(d->payload, "\"ts\""));
    deliver(g, CONF, "{\"cfg_id\":\"k\",\"interval_ms\":2000}");
    assert_string_equal(g->f.pubs[g->f.npub - 2].payload,
                        "{\"cfg_id\":\"k\",\"ok\":true,\"interval_ms\":2000,\"persisted\":false}");
    free(g);
}

static void test_init_rejects_bad_args(void **state)
{
    (void)state;
    rig *g = rig_new();
    flash_mem_init(&g->fm, g->flash, sizeof g->flash, 4096, 4);
    outbox_init(&g->ob, &g->fm.f, g->page, OUTBOX_PAGE_RECORDS);
    session_config cfg = {.device_id = "bad id", .sample = sample};
    assert_int_equal(session_init(&g->s, &g->p, &g->ob, &cfg), SESSION_EINVAL);
    cfg.device_id = "ok";
    cfg.sample = NULL;
    assert_int_equal(session_init(&g->s, &g->p, &g->ob, &cfg), SESSION_EINVAL);
    cfg.sample = sample;
    g->p.publish = NULL;
    assert_int_equal(session_init(&g->s, &g->p, &g->ob, &cfg), SESSION_EINVAL);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lwt_and_online_on_connect),
        cmocka_unit_test(test_boot_increments_across_restarts),
        cmocka_unit_test(test_config_applied_persisted_acked),
        cmocka_unit_test(test_invalid_config_rejected),
        cmocka_unit_test(test_commands_answered),
        cmocka_unit_test(test_malformed_ignored),
        cmocka_unit_test(test_seq_monotonic_live),
        cmocka_unit_test(test_offline_replayed_in_order_and_resend),
        cmocka_unit_test(test_unsynced_and_kv_failure),
        cmocka_unit_test(test_init_rejects_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
