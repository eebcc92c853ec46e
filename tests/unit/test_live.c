/* Unit tests for server/live.c: applying readings and statuses to the device
 * table (last_seen / status_at rules, fw / interval / boot), DEVICE JSON
 * fields and their order, unknown devices, the annotator port, sorted and
 * filtered output, loading from a store_device, the partial NEWS2 a scored
 * reading carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "alarm.h"
#include "hub.h"
#include "live.h"
#include "sbuf.h"
#include "store.h"

#define T0 1764576000000LL /* 2025-12-01T08:00:00.000Z */

static hub_msg *reading(const char *id, int64_t received_ms, int hr)
{
    char data[128];
    int n = snprintf(data, sizeof data, "{\"device_id\":\"%s\",\"heart_rate\":%d}", id, hr);
    hub_msg *m = hub_msg_new(HUB_SENSOR_DATA, id, data, (size_t)n);
    assert_non_null(m);
    m->received_ms = received_ms;
    return m;
}

static hub_msg *status(const char *id, int64_t received_ms, int online, uint32_t present,
                       const char *fw, int64_t interval_ms, int64_t boot)
{
    hub_msg *m = hub_msg_new(HUB_DEVICE_STATUS, id, "{}", 2);
    assert_non_null(m);
    m->received_ms = received_ms;
    m->status.online = online;
    m->status.present = present;
    snprintf(m->status.fw, sizeof m->status.fw, "%s", fw ? fw : "");
    m->status.interval_ms = interval_ms;
    m->status.boot = boot;
    return m;
}

static void apply(live *l, hub_msg *m)
{
    assert_int_equal(live_apply(l, m), 0);
    hub_msg_unref(m);
}

/* Parses one DEVICE object of id from the live model. */
static cJSON *device(live *l, const char *id)
{
    sbuf b;
    sbuf_init(&b, 0);
    assert_int_equal(live_device_json(l, id, &b), 0);
    assert_true(sbuf_ok(&b));
    cJSON *j = cJSON_ParseWithLength(sbuf_data(&b), b.len);
    sbuf_free(&b);
    assert_non_null(j);
    return j;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_non_null(v);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_null(const cJSON *o, const char *k) { return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, k)); }

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_new_device_fields_and_order(void **state)
{
    (void)state;
    live *l = live_create(NULL);
    assert_non_null(l);
    apply(l, reading("dev-a", T0, 71));
    cJSON *d = device(l, "dev-a");
    static const char *order[] = {"device_id", "status", "first_seen", "last_seen", "status_at",
                                  "fw", "interval_ms", "boot", "last", "completeness", "alarms",
                                  "news2"};
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, d)
    {
        assert_true(i < sizeof order / sizeof *order);
        assert_string_equal(it->string, order[i++]);
    }
    assert_int_equal(i, sizeof order / sizeof *order);
    assert_string_equal(str(d, "device_id"), "dev-a");
    assert_string_equal(str(d, "status"), "unknown");
    assert_string_equal(str(d, "first_seen"), "2025-12-01T08:00:00.000Z");
    assert_string_equal(str(d, "last_seen"), "2025-12-01T08:00:00.000Z");
    assert_true(is_null(d, "status_at") && is_null(d, "fw") && is_null(d, "interval_ms") &&
                is_null(d, "boot") && is_null(d, "completeness") && is_null(d, "news2"));
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(d, "last");
    assert_true(cJSON_IsObject(last));
    assert_int_equal((int)num(last, "heart_rate"), 71);
    cJSON_Delete(d);
    assert_int_equal(live_count(l), 1);
    live_destroy(l);
}

static void test_reading_rules(void **state)
{
    (void)state;
    live *l = live_create(NULL);
    apply(l, reading("d", T0 + 5000, 60));
    /* An older reading arriving later is still "last" (receive order) but
     * does not move last_seen back. */
    apply(l, reading("d", T0 + 1000, 61));
    cJSON *d = device(l, "d");
    assert_string_equal(str(d, "first_seen"), "2025-12-01T08:00:05.000Z");
    assert_string_equal(str(d, "last_seen"), "2025-12-01T08:00:05.000Z");
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(d, "last"), "heart_rate"), 61);
    cJSON_Delete(d);
    apply(l, reading("d", T0 + 9000, 62));
    d = device(l, "d");
    assert_string_equal(str(d, "last_seen"), "2025-12-01T08:00:09.000Z");
    cJSON_Delete(d);
    /* A command result touches only last_seen. */
    hub_msg *cr = hub_msg_new(HUB_COMMAND_RESULT, "d", "{\"ok\":true}", 11);
    cr->received_ms = T0 + 12000;
    apply(l, cr);
    d = device(l, "d");
    assert_string_equal(str(d, "last_seen"), "2025-12-01T08:00:12.000Z");
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(d, "last"), "heart_rate"), 62);
    assert_string_equal(str(d, "status"), "unknown");
    cJSON_Delete(d);
    live_destroy(l);
}

static void test_status_rules(void **state)
{
    (void)state;
    live *l = live_create(NULL);
    apply(l, status("d", T0, 1, TELEMETRY_STATUS_HAS_FW | TELEMETRY_STATUS_HAS_INTERVAL |
                                    TELEMETRY_STATUS_HAS_BOOT, "1.2.3", 1000, 7));
    cJSON *d = device(l, "d");
    assert_string_equal(str(d, "status"), "online");
    assert_string_equal(str(d, "status_at"), "2025-12-01T08:00:00.000Z");
    assert_string_equal(str(d, "fw"), "1.2.3");
    assert_int_equal((int)num(d, "interval_ms"), 1000);
    assert_int_equal((int)num(d, "boot"), 7);
    assert_true(is_null(d, "last"));
    cJSON_Delete(d);
    /* Same state again: status_at stays; absent fields keep their values. */
    apply(l, status("d", T0 + 3000, 1, 0, NULL, 0, 0));
    d = device(l, "d");
    assert_string_equal(str(d, "status_at"), "2025-12-01T08:00:00.000Z");
    assert_string_equal(str(d, "last_seen"), "2025-12-01T08:00:03.000Z");
    assert_string_equal(str(d, "fw"), "1.2.3");
    assert_int_equal((int)num(d, "interval_ms"), 1000);
    assert_int_equal((int)num(d, "boot"), 7);
    cJSON_Delete(d);
    /* A change moves status_at; present fields are replaced. */
    apply(l, status("d", T0 + 4000, 0, TELEMETRY_STATUS_HAS_BOOT, NULL, 0, 8));
    d = device(l, "d");
    assert_string_equal(str(d, "status"), "offline");
    assert_string_equal(str(d, "status_at"), "2025-12-01T08:00:04.000Z");
    assert_int_equal((int)num(d, "boot"), 8);
    cJSON_Delete(d);
    live_destroy(l);
}

static void test_unknown_device(void **state)
{
    (void)state;
    live *l = live_create(NULL);
    sbuf b;
    sbuf_init(&b, 0);
    assert_int_equal(live_device_json(l, "nope", &b), -1);
    assert_int_equal(b.len, 0);
    assert_null(live_find(l, "nope"));
    live_devices_json(l, &b);
    assert_string_equal(sbuf_data(&b), "{\"devices\":[]}");
    sbuf_free(&b);
    live_destroy(l);
}

typedef struct ann_ctx {
    int calls;
    char last_id[80];
} ann_ctx;

static void annotate(void *ctx, const char *id, sbuf *out)
{
    ann_ctx *a = ctx;
    a->calls++;
    snprintf(a->last_id, sizeof a->last_id, "%s", id);
    sbuf_addf(out, "{\"ratio\":0.5,\"for\":\"%s\"}", id);
}

static void test_annotator(void **state)
{
    (void)state;
    live *l = live_create(NULL);
    apply(l, reading("x1", T0, 1));
    ann_ctx a = {0};
    live_set_annotator(l, (vigil_annotator){.annotate = annotate, .ctx = &a});
    cJSON *d = device(l, "x1");
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.last_id, "x1");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "completeness");
    assert_true(cJSON_IsObject(c));
    assert_string_equal(str(c, "for"), "x1");
    cJSON_Delete(d);
    live_destroy(l);
}

static int want_odd(void *ctx, const char *id)
{
    (void)ctx;
    return (id[strlen(id) - 1] - '0') % 2 == 1;
}

static void test_sorted_and_filtered(void **state)
{
    (void)state;
    live *l = live_create(NULL);
    /* Enough devices to make the table grow; inserted out of order. */
    for (int i = 2999; i >= 0; i--) {
        char id[16];
        snprintf(id, sizeof id, "d%04d", (i * 7919) % 3000);
        apply(l, reading(id, T0 + i, i));
    }
    assert_int_equal(live_count(l), 3000);
    sbuf b;
    sbuf_init(&b, 0);
    live_devices_json(l, &b);
    cJSON *j = cJSON_ParseWithLength(sbuf_data(&b), b.len);
    assert_non_null(j);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "devices");
    assert_int_equal(cJSON_GetArraySize(arr), 3000);
    const char *prev = "";
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *id = str(it, "device_id");
        assert_true(strcmp(prev, id) < 0);
        prev = id;
    }
    cJSON_Delete(j);
    sbuf_reset(&b);
    live_devices_array(l, want_odd, NULL, &b);
    j = cJSON_ParseWithLength(sbuf_data(&b), b.len);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 1500);
    cJSON_ArrayForEach(it, j)
        assert_true(want_odd(NULL, str(it, "device_id")));
    assert_string_equal(str(cJSON_GetArrayItem(j, 0), "device_id"), "d0001");
    cJSON_Delete(j);
    sbuf_free(&b);
    live_destroy(l);
}

static void test_load_device(void **state)
{
    (void)state;
    live *l = live_create(NULL);
    store_device s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "stored");
    s.first_seen_ms = T0;
    s.last_seen_ms = T0 + 60000;
    s.online = 0;
    s.status_ms = T0 + 30000;
    snprintf(s.fw, sizeof s.fw, "2.0");
    s.interval_ms = 500;
    s.boot = 3;
    s.has_last = 1;
    snprintf(s.last.device_id, sizeof s.last.device_id, "stored");
    s.last.received_ms = T0 + 60000;
    s.last.present = TELEMETRY_HAS_HEART_RATE;
    s.last.heart_rate = 88;
    assert_int_equal(live_load_device(l, &s), 0);
    cJSON *d = device(l, "stored");
    assert_string_equal(str(d, "status"), "offline");
    assert_string_equal(str(d, "first_seen"), "2025-12-01T08:00:00.000Z");
    assert_string_equal(str(d, "last_seen"), "2025-12-01T08:01:00.000Z");
    assert_string_equal(str(d, "status_at"), "2025-12-01T08:00:30.000Z");
    assert_string_equal(str(d, "fw"), "2.0");
    assert_int_equal((int)num(d, "interval_ms"), 500);
    assert_int_equal((int)num(d, "boot"), 3);
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(d, "last"), "heart_rate"), 88);
    cJSON_Delete(d);
    /* A live reading then replaces the stored "last". */
    apply(l, reading("stored", T0 + 61000, 90));
    d = device(l, "stored");
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(d, "last"), "heart_rate"), 90);
    cJSON_Delete(d);
    live_destroy(l);
}

/* A reading as ingest posts it: the READING object with the engine's
 * "news2" member appended (alarm_news2_append), its place in news2_off/len. */
static hub_msg *scored(const char *id, int64_t received_ms, double spo2, int hr)
{
    char data[1024];
    int n = snprintf(data, sizeof data, "{\"device_id\":\"%s\",\"heart_rate\":%d,\"spo2\":%g}", id,
                     hr, spo2);
    alarm_news2 s = {.spo2 = alarm_news2_spo2(spo2), .pulse = alarm_news2_pulse(hr)};
    s.score = s.spo2 + s.pulse;
    size_t off = 0, len = alarm_news2_append(&s, data, (size_t)n, sizeof data, &off);
    assert_true(len > (size_t)n);
    hub_msg *m = hub_msg_new(HUB_SENSOR_DATA, id, data, len);
    assert_non_null(m);
    m->received_ms = received_ms;
    m->news2_off = m->data_off + off;
    m->news2_len = len - 1 - off;
    return m;
}

static const cJSON *obj(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsObject(v));
    return v;
}

static void test_news2(void **state)
{
    (void)state;
    live *l = live_create(NULL);
    assert_non_null(l);
    /* Not scored yet: null. */
    apply(l, reading("dev-a", T0, 71));
    cJSON *d = device(l, "dev-a");
    assert_true(is_null(d, "news2"));
    cJSON_Delete(d);

    /* SpO2 92 scores 2, pulse 115 scores 2: partial NEWS2 4, on the DEVICE
     * and inside its last READING. */
    apply(l, scored("dev-a", T0 + 1000, 92, 115));
    d = device(l, "dev-a");
    const cJSON *n2 = obj(d, "news2");
    assert_int_equal((int)num(n2, "score"), 4);
    assert_int_equal((int)num(n2, "spo2"), 2);
    assert_int_equal((int)num(n2, "pulse"), 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n2, "partial")));
    const cJSON *meas = cJSON_GetObjectItemCaseSensitive(n2, "measured");
    assert_int_equal(cJSON_GetArraySize(meas), 2);
    assert_string_equal(cJSON_GetArrayItem(meas, 0)->valuestring, "spo2");
    assert_string_equal(cJSON_GetArrayItem(meas, 1)->valuestring, "pulse");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(n2, "not_measured")), 5);
    const cJSON *last = obj(d, "last");
    assert_int_equal((int)num(obj(last, "news2"), "score"), 4);
    assert_int_equal((int)num(last, "spo2"), 92);
    cJSON_Delete(d);

    /* A reading the engine did not score (no valid pair) becomes "last" but
     * the score stays the engine's current one. */
    apply(l, reading("dev-a", T0 + 2000, 80));
    d = device(l, "dev-a");
    assert_int_equal((int)num(obj(d, "news2"), "score"), 4);
    assert_null(cJSON_GetObjectItemCaseSensitive(obj(d, "last"), "news2"));
    assert_int_equal((int)num(obj(d, "last"), "heart_rate"), 80);
    cJSON_Delete(d);

    /* The next scored reading replaces it: 98 % and 72 bpm score 0. */
    apply(l, scored("dev-a", T0 + 3000, 98, 72));
    d = device(l, "dev-a");
    assert_int_equal((int)num(obj(d, "news2"), "score"), 0);
    cJSON_Delete(d);
    live_destroy(l); /* drops the scored reading too (ASan: no leak) */
}

static void test_news2_append(void **state)
{
    (void)state;
    alarm_news2 s = {.score = 5, .spo2 = 3, .pulse = 2};
    char buf[512] = "{}";
    size_t off = 9, len = alarm_news2_append(&s, buf, 2, sizeof buf, &off);
    assert_true(len > 2);
    assert_int_equal(off, 1);
    assert_int_equal(strlen(buf), len);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    assert_int_equal((int)num(obj(j, "news2"), "score"), 5);
    cJSON_Delete(j);
    /* Too small: 0 and the object unchanged. */
    char small[40] = "{\"a\":1}";
    assert_int_equal(alarm_news2_append(&s, small, 7, sizeof small, &off), 0);
    assert_string_equal(small, "{\"a\":1}");
    /* Not an object: refused. */
    char arr[64] = "[1]";
    assert_int_equal(alarm_news2_append(&s, arr, 3, sizeof arr, &off), 0);
    assert_string_equal(arr, "[1]");
    /* Unknown sub-scores (an ALARM's news2): only the aggregate. */
    alarm_news2 agg = {.score = 6, .spo2 = -1, .pulse = -1};
    char m[256];
    size_t k = alarm_news2_json(&agg, m, sizeof m);
    assert_true(k > 0);
    assert_null(strstr(m, "\"pulse\":"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_device_fields_and_order),
        cmocka_unit_test(test_reading_rules),
        cmocka_unit_test(test_status_rules),
        cmocka_unit_test(test_unknown_device),
        cmocka_unit_test(test_annotator),
        cmocka_unit_test(test_sorted_and_filtered),
        cmocka_unit_test(test_load_device),
        cmocka_unit_test(test_news2),
        cmocka_unit_test(test_news2_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
