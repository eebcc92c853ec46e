/* Unit tests for server/telemetry.c: topics, data and status validation
 * (every reject reason, every range at and just past its limit), ISO 8601
 * formatting and the hand-written JSON output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry.h"

#define ID "ESP32_001"

static const char DESIGN_PAYLOAD[] =
    "{\"sensor_type\":\"MAX30614\",\"device_id\":\"ESP32_001\",\"object_temp\":36.6,"
    "\"ambient_temp\":24.1,\"heart_rate\":72,\"spo2\":98,\"timestamp\":123456}";

static const char EXTENDED_PAYLOAD[] =
    "{\"sensor_type\":\"MAX30614\",\"device_id\":\"ESP32_001\",\"object_temp\":36.6,"
    "\"ambient_temp\":24.1,\n \"heart_rate\":72,\"spo2\":98,\"timestamp\":123456,\n"
    " \"seq\":1041,\"boot\":7,\"ts\":1795794000123,\n"
    " \"hr_valid\":true,\"spo2_valid\":true,\"temp_valid\":true,\n"
    " \"battery\":87,\"rssi\":-61,\"fw\":\"0.1.0\"}";

/* ---- helpers ------------------------------------------------------------ */

static char g_detail[256];

static telemetry_reason data_n(const char *id, const char *p, size_t len, size_t max,
                               telemetry_reading *out)
{
    telemetry_reading tmp;
    return telemetry_parse_data(id, p, len, max, out ? out : &tmp, g_detail, sizeof g_detail);
}

static telemetry_reason data(const char *p, telemetry_reading *out)
{
    return data_n(ID, p, strlen(p), 0, out);
}

static telemetry_reason status(const char *p, telemetry_status *out)
{
    telemetry_status tmp;
    return telemetry_parse_status(ID, p, strlen(p), 0, out ? out : &tmp, g_detail,
                                  sizeof g_detail);
}

/* Runs {"<other>":..., "<field>":<value>} where <other> keeps the message
 * non-empty without touching the field under test. */
static telemetry_reason field(const char *name, const char *value)
{
    char buf[512];
    const char *other = strcmp(name, "seq") == 0 ? "\"heart_rate\":72" : "\"seq\":1";
    int n = snprintf(buf, sizeof buf, "{%s,\"%s\":%s}", other, name, value);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    return data(buf, NULL);
}

static telemetry_reason status_field(const char *name, const char *value)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "{\"status\":\"online\",\"%s\":%s}", name, value);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    return status(buf, NULL);
}

/* assert_int_equal that names the failing case, for the table-driven tests. */
static void expect_reason(telemetry_reason got, telemetry_reason want, const char *what)
{
    if (got != want)
        print_error("case %s: got %s, want %s (%s)\n", what, telemetry_reason_name(got),
                    telemetry_reason_name(want), g_detail);
    assert_int_equal(got, want);
}

static void repeat(char *out, char c, size_t n)
{
    memset(out, c, n);
    out[n] = '\0';
}

/* ---- data: accepted forms ---------------------------------------------- */

static void test_design_payload(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data(DESIGN_PAYLOAD, &r), TELEMETRY_OK);
    assert_string_equal(r.device_id, ID);
    assert_string_equal(r.sensor_type, "MAX30614");
    assert_true(r.present & TELEMETRY_HAS_SENSOR_TYPE);
    assert_true(r.present & TELEMETRY_HAS_OBJECT_TEMP);
    assert_true(r.present & TELEMETRY_HAS_AMBIENT_TEMP);
    assert_true(r.present & TELEMETRY_HAS_HEART_RATE);
    assert_true(r.present & TELEMETRY_HAS_SPO2);
    assert_true(r.present & TELEMETRY_HAS_UPTIME);
    assert_false(r.present & (TELEMETRY_HAS_SEQ | TELEMETRY_HAS_BOOT | TELEMETRY_HAS_TS |
                              TELEMETRY_HAS_FW | TELEMETRY_HAS_RSSI | TELEMETRY_HAS_BATTERY));
    assert_true(r.object_temp == 36.6);
    assert_true(r.ambient_temp == 24.1);
    assert_true(r.heart_rate == 72.0);
    assert_true(r.spo2 == 98.0);
    assert_int_equal(r.uptime_ms, 123456);
    assert_int_equal(r.received_ms, 0);
}

static void test_extended_payload(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data(EXTENDED_PAYLOAD, &r), TELEMETRY_OK);
    uint32_t all = 0x7FFF; /* every HAS bit */
    assert_int_equal(r.present, all);
    assert_int_equal(r.seq, 1041);
    assert_int_equal(r.boot, 7);
    assert_int_equal(r.ts_ms, 1795794000123LL);
    assert_int_equal(r.hr_valid, 1);
    assert_int_equal(r.spo2_valid, 1);
    assert_int_equal(r.temp_valid, 1);
    assert_true(r.battery == 87.0);
    assert_int_equal(r.rssi, -61);
    assert_string_equal(r.fw, "0.1.0");
}

static void test_payload_not_nul_terminated(void **state)
{
    (void)state;
    char buf[256];
    size_t n = strlen(DESIGN_PAYLOAD);
    memcpy(buf, DESIGN_PAYLOAD, n);
    memcpy(buf + n, "garbage!", 8); /* must not be read */
    assert_int_equal(data_n(ID, buf, n, 0, NULL), TELEMETRY_OK);
}

static void test_device_id_optional_and_from_topic(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data_n("dev-2.a_b", "{\"seq\":0}", 9, 0, &r), TELEMETRY_OK);
    assert_string_equal(r.device_id, "dev-2.a_b");
    assert_int_equal(r.present, TELEMETRY_HAS_SEQ);
}

static void test_unknown_fields_ignored(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data("{\"x\":{\"heart_rate\":900,\"y\":[1,2,{}]},\"x\":\"dup ok\","
                          "\"Heart_Rate\":900,\"heart_rate\":60}", &r),
                     TELEMETRY_OK);
    assert_true(r.heart_rate == 60.0);
}

static void test_null_vitals(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data("{\"object_temp\":36.6,\"heart_rate\":null,\"spo2\":null}", &r),
                     TELEMETRY_OK);
    assert_false(r.present & TELEMETRY_HAS_HEART_RATE);
    assert_false(r.present & TELEMETRY_HAS_SPO2);
    /* null only for the two optional vitals */
    assert_int_equal(field("object_temp", "null"), TELEMETRY_WRONG_TYPE);
    assert_int_equal(field("ambient_temp", "null"), TELEMETRY_WRONG_TYPE);
    assert_int_equal(field("seq", "null"), TELEMETRY_WRONG_TYPE);
    assert_int_equal(field("fw", "null"), TELEMETRY_WRONG_TYPE);
    assert_int_equal(field("hr_valid", "null"), TELEMETRY_WRONG_TYPE);
}

static void test_whitespace_and_integral_forms(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data(" \t\r\n{ \"seq\" : 1e3 , \"boot\":7.0 } \n\t ", &r), TELEMETRY_OK);
    assert_int_equal(r.seq, 1000);
    assert_int_equal(r.boot, 7);
    assert_int_equal(data("{\"seq\":-0}", &r), TELEMETRY_OK);
    assert_int_equal(r.seq, 0);
}

/* ---- data: every range, at the limit and just past it ------------------ */

struct range_case {
    const char *name, *lo_ok, *hi_ok, *lo_bad, *hi_bad;
};

static void test_ranges(void **state)
{
    (void)state;
    static const struct range_case c[] = {
        {"object_temp", "-20", "60", "-20.001", "60.001"},
        {"ambient_temp", "-40", "85", "-40.001", "85.001"},
        {"heart_rate", "20", "300", "19.999", "300.001"},
        {"spo2", "50", "100", "49.999", "100.001"},
        {"timestamp", "0", "9007199254740992", "-1", "9007199254740994"},
        {"seq", "0", "9007199254740992", "-1", "9007199254740994"},
        {"boot", "0", "9007199254740992", "-1", "9007199254740994"},
        {"ts", "1483228800000", "4102444800000", "1483228799999", "4102444800001"},
        {"battery", "0", "100", "-0.001", "100.001"},
        {"rssi", "-127", "0", "-128", "1"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const char *n = c[i].name;
        expect_reason(field(n, c[i].lo_ok), TELEMETRY_OK, n);
        expect_reason(field(n, c[i].hi_ok), TELEMETRY_OK, n);
        expect_reason(field(n, c[i].lo_bad), TELEMETRY_OUT_OF_RANGE, n);
        expect_reason(field(n, c[i].hi_bad), TELEMETRY_OUT_OF_RANGE, n);
        /* not finite: cJSON turns 1e999 into inf */
        assert_int_equal(field(c[i].name, "1e999"), TELEMETRY_OUT_OF_RANGE);
        assert_int_equal(field(c[i].name, "-1e999"), TELEMETRY_OUT_OF_RANGE);
        /* wrong JSON types */
        assert_int_equal(field(c[i].name, "\"1\""), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(c[i].name, "true"), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(c[i].name, "[1]"), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(c[i].name, "{\"v\":1}"), TELEMETRY_WRONG_TYPE);
    }
}

static void test_integers_must_be_integral(void **state)
{
    (void)state;
    static const char *const ints[] = {"timestamp", "seq", "boot", "rssi"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(field(ints[i], "-1.5"), TELEMETRY_WRONG_TYPE);
    assert_int_equal(field("seq", "1.5"), TELEMETRY_WRONG_TYPE);
    assert_int_equal(field("ts", "1795794000123.5"), TELEMETRY_WRONG_TYPE);
    assert_int_equal(field("seq", "1e-300"), TELEMETRY_WRONG_TYPE);
    /* doubles are fine where the protocol says number */
    assert_int_equal(field("heart_rate", "72.25"), TELEMETRY_OK);
}

static void test_detail_text(void **state)
{
    (void)state;
    assert_int_equal(data("{\"heart_rate\":900}", NULL), TELEMETRY_OUT_OF_RANGE);
    assert_string_equal(g_detail, "heart_rate 900 outside 20..300");
    assert_int_equal(data("{\"seq\":1,\"ts\":5}", NULL), TELEMETRY_OUT_OF_RANGE);
    assert_string_equal(g_detail, "ts 5 outside 1483228800000..4102444800000");
    /* a tiny detail buffer is truncated, never overrun */
    char small[4];
    assert_int_equal(telemetry_parse_data(ID, "{\"spo2\":1}", 10, 0, NULL, small, sizeof small),
                     TELEMETRY_OUT_OF_RANGE);
    assert_string_equal(small, "spo");
    assert_int_equal(telemetry_parse_data(ID, "{\"spo2\":1}", 10, 0, NULL, NULL, 0),
                     TELEMETRY_OUT_OF_RANGE);
    /* success clears the detail */
    assert_int_equal(data("{\"seq\":1}", NULL), TELEMETRY_OK);
    assert_string_equal(g_detail, "");
}

static void test_booleans(void **state)
{
    (void)state;
    static const char *const b[] = {"hr_valid", "spo2_valid", "temp_valid"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(field(b[i], "true"), TELEMETRY_OK);
        assert_int_equal(field(b[i], "false"), TELEMETRY_OK);
        assert_int_equal(field(b[i], "1"), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(b[i], "\"true\""), TELEMETRY_WRONG_TYPE);
    }
    telemetry_reading r;
    assert_int_equal(data("{\"seq\":1,\"hr_valid\":false,\"temp_valid\":true}", &r),
                     TELEMETRY_OK);
    assert_int_equal(r.hr_valid, 0);
    assert_int_equal(r.temp_valid, 1);
    assert_true(r.present & TELEMETRY_HAS_HR_VALID);
    assert_false(r.present & TELEMETRY_HAS_SPO2_VALID);
}

static void test_strings(void **state)
{
    (void)state;
    char s32[40], s33[40], v[64];
    repeat(s32, 'a', 32);
    repeat(s33, 'a', 33);
    static const char *const names[] = {"sensor_type", "fw"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(v, sizeof v, "\"%s\"", s32);
        assert_int_equal(field(names[i], v), TELEMETRY_OK);
        snprintf(v, sizeof v, "\"%s\"", s33);
        assert_int_equal(field(names[i], v), TELEMETRY_OUT_OF_RANGE);
        assert_int_equal(field(names[i], "\"\""), TELEMETRY_OK);
        assert_int_equal(field(names[i], "\" ~!\\\"\\\\\""), TELEMETRY_OK);
        assert_int_equal(field(names[i], "\"a\\tb\""), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(names[i], "\"a\\u007fb\""), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(names[i], "\"caf\xc3\xa9\""), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(names[i], "\"caf\\u00e9\""), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(names[i], "7"), TELEMETRY_WRONG_TYPE);
        assert_int_equal(field(names[i], "{}"), TELEMETRY_WRONG_TYPE);
    }
    telemetry_reading r;
    assert_int_equal(data("{\"seq\":1,\"fw\":\"1.2\\\"3\"}", &r), TELEMETRY_OK);
    assert_string_equal(r.fw, "1.2\"3");
}

static void test_device_id_field(void **state)
{
    (void)state;
    char id64[70], id65[70], p[256];
    repeat(id64, 'x', 64);
    repeat(id65, 'x', 65);
    snprintf(p, sizeof p, "{\"seq\":1,\"device_id\":\"%s\"}", id64);
    assert_int_equal(data_n(id64, p, strlen(p), 0, NULL), TELEMETRY_OK);
    snprintf(p, sizeof p, "{\"seq\":1,\"device_id\":\"%s\"}", id65);
    assert_int_equal(data_n(id64, p, strlen(p), 0, NULL), TELEMETRY_OUT_OF_RANGE);

    assert_int_equal(data("{\"seq\":1,\"device_id\":\"ESP32_002\"}", NULL),
                     TELEMETRY_ID_MISMATCH);
    assert_int_equal(data("{\"seq\":1,\"device_id\":\"esp32_001\"}", NULL),
                     TELEMETRY_ID_MISMATCH);
    assert_int_equal(data("{\"seq\":1,\"device_id\":\"\"}", NULL), TELEMETRY_ID_MISMATCH);
    assert_int_equal(data("{\"seq\":1,\"device_id\":1}", NULL), TELEMETRY_WRONG_TYPE);
    assert_int_equal(data("{\"seq\":1,\"device_id\":null}", NULL), TELEMETRY_WRONG_TYPE);
    assert_int_equal(data("{\"seq\":1,\"device_id\":\"ESP32\\n001\"}", NULL),
                     TELEMETRY_WRONG_TYPE);
    /* an invalid topic id given by the caller */
    assert_int_equal(data_n("bad id", "{\"seq\":1}", 9, 0, NULL), TELEMETRY_BAD_TOPIC);
    assert_int_equal(data_n(NULL, "{\"seq\":1}", 9, 0, NULL), TELEMETRY_BAD_TOPIC);
}

static void test_duplicates(void **state)
{
    (void)state;
    assert_int_equal(data("{\"heart_rate\":72,\"heart_rate\":72}", NULL),
                     TELEMETRY_DUPLICATE_FIELD);
    assert_int_equal(data("{\"heart_rate\":null,\"heart_rate\":72}", NULL),
                     TELEMETRY_DUPLICATE_FIELD);
    assert_int_equal(data("{\"seq\":1,\"device_id\":\"ESP32_001\",\"device_id\":\"ESP32_001\"}",
                          NULL),
                     TELEMETRY_DUPLICATE_FIELD);
    assert_int_equal(data("{\"seq\":1,\"fw\":\"a\",\"x\":1,\"fw\":\"a\"}", NULL),
                     TELEMETRY_DUPLICATE_FIELD);
    assert_string_equal(g_detail, "fw given twice");
}

static void test_empty(void **state)
{
    (void)state;
    assert_int_equal(data("{}", NULL), TELEMETRY_EMPTY);
    assert_int_equal(data("{\"sensor_type\":\"MAX30614\",\"timestamp\":5,\"boot\":1,"
                          "\"ts\":1795794000123,\"battery\":50,\"rssi\":-50,\"fw\":\"1\"}",
                          NULL),
                     TELEMETRY_EMPTY);
    assert_int_equal(data("{\"heart_rate\":null,\"spo2\":null}", NULL), TELEMETRY_EMPTY);
    assert_int_equal(data("{\"seq\":0}", NULL), TELEMETRY_OK);
    assert_int_equal(data("{\"spo2\":98}", NULL), TELEMETRY_OK);
    assert_int_equal(data("{\"ambient_temp\":20}", NULL), TELEMETRY_OK);
}

static void test_not_object(void **state)
{
    (void)state;
    static const char *const c[] = {"[1,2]", "42", "\"x\"", "null", "true", "[]",
                                    "[{\"seq\":1}]"};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        assert_int_equal(data(c[i], NULL), TELEMETRY_NOT_OBJECT);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const c[] = {
        "", " ", "{", "}", "{\"seq\":1", "{\"seq\":1}x", "{\"seq\":1} {\"seq\":2}",
        "{\"seq\":1}}", "{seq:1}", "{'seq':1}", "{\"seq\":01x}", "{\"seq\":+1}",
        "{\"seq\":NaN}", "{\"seq\":Infinity}", "{\"seq\":-}", "{\"seq\":1,}",
        "{\"seq\":\"\\x\"}", "{\"seq\":1,\"fw\":\"\xff\"}",             /* not UTF-8 */
        "{\"seq\":1,\"fw\":\"\xc0\xaf\"}",                              /* overlong */
        "{\"seq\":1,\"fw\":\"\xed\xa0\x80\"}",                          /* surrogate */
        "{\"seq\":1,\"fw\":\"\xe2\x82\"}",                              /* truncated */
        "{\"seq\":1,\"fw\":\"a\\u0000b\"}",                             /* escaped NUL */
        "{\"heart_rate\\u0000x\":72,\"seq\":1}",
        /* a \u that is not four hex digits: cJSON decoded it as U+0000, so
         * this key was read as "heart_rate" and the reading accepted */
        "{\"heart_rate\\u00zz\":72,\"seq\":1}",
        "{\"seq\":1,\"device_id\":\"" "ESP32_001" "\\u00G0x\"}",
        "{\"seq\":1,\"fw\":\"a\\u12\"}", "{\"seq\":1,\"fw\":\"\\u\"}",
        "{\"seq\":1,\"fw\":\"\\ud800\"}",                               /* lone surrogate */
        "{\"seq\":1,\"note\":\"a\tb\"}",                                 /* raw control byte */
        "{\x01\"seq\":1}",                                                /* not whitespace */
        "\x0c{\"seq\":1}",
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        expect_reason(data(c[i], NULL), TELEMETRY_MALFORMED_JSON, c[i]);
    }
    /* a raw NUL byte inside the given length */
    static const char nul[] = "{\"seq\":1}\0";
    assert_int_equal(data_n(ID, nul, sizeof nul - 1, 0, NULL), TELEMETRY_MALFORMED_JSON);
    static const char nul2[] = "{\"seq\":1,\"fw\":\"a\0b\"}";
    assert_int_equal(data_n(ID, nul2, sizeof nul2 - 1, 0, NULL), TELEMETRY_MALFORMED_JSON);
    assert_int_equal(data_n(ID, NULL, 0, 0, NULL), TELEMETRY_MALFORMED_JSON);
    /* valid UTF-8 in unknown fields is fine, escaped "\\u0000" text too */
    assert_int_equal(data("{\"seq\":1,\"note\":\"caf\xc3\xa9 \xf0\x9f\x92\x93\"}", NULL),
                     TELEMETRY_OK);
    assert_int_equal(data("{\"seq\":1,\"note\":\"\\\\u0000\"}", NULL), TELEMETRY_OK);
    /* nesting deeper than cJSON's limit fails cleanly */
    char deep[3000];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"seq\":1,\"x\":");
    for (int i = 0; i < 1200; i++)
        deep[n++] = '[';
    for (int i = 0; i < 1200; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    assert_int_equal(data_n(ID, deep, n, 0, NULL), TELEMETRY_MALFORMED_JSON);
}

static void test_oversize(void **state)
{
    (void)state;
    /* exactly the cap is accepted (padding is whitespace), one more is not */
    char *p = malloc(TELEMETRY_PAYLOAD_MAX_DEFAULT + 2);
    assert_non_null(p);
    memset(p, ' ', TELEMETRY_PAYLOAD_MAX_DEFAULT + 1);
    memcpy(p, "{\"seq\":1}", 9);
    assert_int_equal(data_n(ID, p, TELEMETRY_PAYLOAD_MAX_DEFAULT, 0, NULL), TELEMETRY_OK);
    assert_int_equal(data_n(ID, p, TELEMETRY_PAYLOAD_MAX_DEFAULT + 1, 0, NULL),
                     TELEMETRY_OVERSIZE);
    /* the size is checked before anything else */
    memset(p, 0, TELEMETRY_PAYLOAD_MAX_DEFAULT + 1);
    assert_int_equal(data_n(ID, p, TELEMETRY_PAYLOAD_MAX_DEFAULT + 1, 0, NULL),
                     TELEMETRY_OVERSIZE);
    free(p);
    /* a configured cap */
    assert_int_equal(data_n(ID, "{\"seq\":1}", 9, 9, NULL), TELEMETRY_OK);
    assert_int_equal(data_n(ID, "{\"seq\":1} ", 10, 9, NULL), TELEMETRY_OVERSIZE);
    /* a cap above the default: the large-payload path */
    size_t big = 100000;
    p = malloc(big);
    assert_non_null(p);
    memset(p, ' ', big);
    memcpy(p, "{\"seq\":1,\"pad\":\"", 16);
    memset(p + 16, 'z', big - 20);
    memcpy(p + big - 4, "\"}  ", 4);
    assert_int_equal(data_n(ID, p, big, big, NULL), TELEMETRY_OK);
    assert_int_equal(data_n(ID, p, big, big - 1, NULL), TELEMETRY_OVERSIZE);
    free(p);
}

static void test_out_untouched_on_reject(void **state)
{
    (void)state;
    telemetry_reading r;
    memset(&r, 0xAB, sizeof r);
    assert_int_equal(data("{\"object_temp\":36.6,\"heart_rate\":900}", &r),
                     TELEMETRY_OUT_OF_RANGE);
    unsigned char *b = (unsigned char *)&r;
    for (size_t i = 0; i < sizeof r; i++)
        assert_int_equal(b[i], 0xAB);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(telemetry_reason_name(TELEMETRY_BAD_TOPIC), "bad_topic");
    assert_string_equal(telemetry_reason_name(TELEMETRY_OVERSIZE), "oversize");
    assert_string_equal(telemetry_reason_name(TELEMETRY_MALFORMED_JSON), "malformed_json");
    assert_string_equal(telemetry_reason_name(TELEMETRY_NOT_OBJECT), "not_object");
    assert_string_equal(telemetry_reason_name(TELEMETRY_WRONG_TYPE), "wrong_type");
    assert_string_equal(telemetry_reason_name(TELEMETRY_OUT_OF_RANGE), "out_of_range");
    assert_string_equal(telemetry_reason_name(TELEMETRY_ID_MISMATCH), "id_mismatch");
    assert_string_equal(telemetry_reason_name(TELEMETRY_DUPLICATE_FIELD), "duplicate_field");
    assert_string_equal(telemetry_reason_name(TELEMETRY_EMPTY), "empty");
    assert_string_equal(telemetry_reason_name(TELEMETRY_BAD_STATUS), "bad_status");
    assert_string_equal(telemetry_reason_name(TELEMETRY_REASON_COUNT), "unknown");
    assert_string_equal(telemetry_reason_name((telemetry_reason)-1), "unknown");
}

/* ---- topics --------------------------------------------------------------- */

static telemetry_reason topic(const char *t, char *id, telemetry_kind *k)
{
    return telemetry_parse_topic(t, strlen(t), id, k);
}

static void test_topic_good(void **state)
{
    (void)state;
    char id[TELEMETRY_ID_MAX + 1];
    telemetry_kind k;
    assert_int_equal(topic("sensors/esp32/ESP32_001/data", id, &k), TELEMETRY_OK);
    assert_string_equal(id, "ESP32_001");
    assert_int_equal(k, TELEMETRY_KIND_DATA);
    assert_int_equal(topic("sensors/esp32/a.b-c_D9/status", id, &k), TELEMETRY_OK);
    assert_string_equal(id, "a.b-c_D9");
    assert_int_equal(k, TELEMETRY_KIND_STATUS);
    assert_int_equal(topic("sensors/esp32/x/ack", id, &k), TELEMETRY_OK);
    assert_string_equal(id, "x");
    assert_int_equal(k, TELEMETRY_KIND_ACK);
    /* topic_len, not the NUL, ends the topic */
    const char t[] = "sensors/esp32/dev1/dataXYZ";
    assert_int_equal(telemetry_parse_topic(t, sizeof t - 4, id, &k), TELEMETRY_OK);
    assert_string_equal(id, "dev1");
    assert_int_equal(telemetry_parse_topic(t, sizeof t - 1, id, &k), TELEMETRY_BAD_TOPIC);
    /* outputs are optional */
    assert_int_equal(topic("sensors/esp32/x/ack", NULL, NULL), TELEMETRY_OK);
}

static void test_topic_id_length(void **state)
{
    (void)state;
    char id[TELEMETRY_ID_MAX + 1], t[128], s[80];
    telemetry_kind k;
    repeat(s, 'A', 64);
    snprintf(t, sizeof t, "sensors/esp32/%s/data", s);
    assert_int_equal(topic(t, id, &k), TELEMETRY_OK);
    assert_string_equal(id, s);
    repeat(s, 'A', 65);
    snprintf(t, sizeof t, "sensors/esp32/%s/data", s);
    assert_int_equal(topic(t, id, &k), TELEMETRY_BAD_TOPIC);
    assert_int_equal(topic("sensors/esp32//data", id, &k), TELEMETRY_BAD_TOPIC);
}

static void test_topic_bad(void **state)
{
    (void)state;
    static const char *const c[] = {
        "", "sensors/esp32/", "sensors/esp32/x", "sensors/esp32/x/", "sensors/esp32/x/config",
        "sensors/esp32/x/Data", "sensors/esp32/x/data/", "sensors/esp32/x/data/y",
        "sensors/esp32/x/y/data", "sensors/esp8266/x/data", "Sensors/esp32/x/data",
        "/sensors/esp32/x/data", "sensors//esp32/x/data", "commands/esp32/x/control",
        "sensors/esp32/+/data", "sensors/esp32/#", "sensors/esp32/a+b/data",
        "sensors/esp32/a#/data", "sensors/esp32/a b/data", "sensors/esp32/a\tb/data",
        "sensors/esp32/caf\xc3\xa9/data", "sensors/esp32/x/datadata", "sensors/esp32/x/dat",
    };
    char id[TELEMETRY_ID_MAX + 1] = "unchanged";
    telemetry_kind k;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        expect_reason(topic(c[i], id, &k), TELEMETRY_BAD_TOPIC, c[i]);
    }
    assert_string_equal(id, "unchanged");
    const char nul[] = "sensors/esp32/a\0b/data";
    assert_int_equal(telemetry_parse_topic(nul, sizeof nul - 1, id, &k), TELEMETRY_BAD_TOPIC);
    assert_int_equal(telemetry_parse_topic(NULL, 0, id, &k), TELEMETRY_BAD_TOPIC);
}

static void test_id_valid(void **state)
{
    (void)state;
    assert_true(telemetry_id_valid("a", 1));
    assert_true(telemetry_id_valid("Az09_.-", 7));
    assert_false(telemetry_id_valid("", 0));
    assert_false(telemetry_id_valid(NULL, 1));
    assert_false(telemetry_id_valid("a/b", 3));
    assert_false(telemetry_id_valid("a\0", 2));
    char s[80];
    repeat(s, 'z', 65);
    assert_true(telemetry_id_valid(s, 64));
    assert_false(telemetry_id_valid(s, 65));
}

/* ---- status ---------------------------------------------------------------- */

static void test_status_forms(void **state)
{
    (void)state;
    telemetry_status s;
    assert_int_equal(status("online", &s), TELEMETRY_OK);
    assert_int_equal(s.online, 1);
    assert_int_equal(s.present, 0);
    assert_string_equal(s.device_id, ID);
    assert_int_equal(status("offline", &s), TELEMETRY_OK);
    assert_int_equal(s.online, 0);
    assert_int_equal(status(" offline\r\n", &s), TELEMETRY_OK);
    assert_int_equal(s.online, 0);

    assert_int_equal(status("{\"status\":\"online\",\"fw\":\"0.1.0\",\"interval_ms\":1000,"
                            "\"boot\":7}", &s),
                     TELEMETRY_OK);
    assert_int_equal(s.online, 1);
    assert_int_equal(s.present, TELEMETRY_STATUS_HAS_FW | TELEMETRY_STATUS_HAS_INTERVAL |
                                    TELEMETRY_STATUS_HAS_BOOT);
    assert_string_equal(s.fw, "0.1.0");
    assert_int_equal(s.interval_ms, 1000);
    assert_int_equal(s.boot, 7);
    assert_int_equal(status("{\"status\":\"offline\"}", &s), TELEMETRY_OK);
    assert_int_equal(s.online, 0);
    assert_int_equal(s.present, 0);
    assert_int_equal(status("{\"status\":\"online\",\"device_id\":\"ESP32_001\",\"x\":[1]}",
                            &s),
                     TELEMETRY_OK);
    /* not NUL-terminated */
    assert_int_equal(telemetry_parse_status(ID, "onlineXX", 6, 0, &s, NULL, 0), TELEMETRY_OK);
}

/* prev_boot / prev_last_seq: after a power cut the new boot says how far
 * the old one went. Validated like boot and seq, only as a pair, and only
 * about an earlier boot. */
static void test_status_prev_boot(void **state)
{
    (void)state;
    telemetry_status s;
    assert_int_equal(status("{\"status\":\"online\",\"boot\":9,\"prev_boot\":8,"
                            "\"prev_last_seq\":1234}",
                            &s),
                     TELEMETRY_OK);
    assert_true(s.present & TELEMETRY_STATUS_HAS_PREV);
    assert_int_equal(s.prev_boot, 8);
    assert_int_equal(s.prev_last_seq, 1234);
    /* Without the pair (an ordinary boot): not present. */
    assert_int_equal(status("{\"status\":\"online\",\"boot\":9}", &s), TELEMETRY_OK);
    assert_false(s.present & TELEMETRY_STATUS_HAS_PREV);
    /* Without boot the order cannot be checked; the pair still stands. */
    assert_int_equal(status("{\"status\":\"online\",\"prev_boot\":0,\"prev_last_seq\":0}", &s),
                     TELEMETRY_OK);
    assert_true(s.present & TELEMETRY_STATUS_HAS_PREV);
    static const char *const half[] = {
        "{\"status\":\"online\",\"boot\":9,\"prev_boot\":8}",
        "{\"status\":\"online\",\"boot\":9,\"prev_last_seq\":8}",
        "{\"status\":\"online\",\"boot\":9,\"prev_boot\":9,\"prev_last_seq\":1}",
        "{\"status\":\"online\",\"boot\":9,\"prev_boot\":10,\"prev_last_seq\":1}",
    };
    for (size_t i = 0; i < sizeof half / sizeof half[0]; i++)
        expect_reason(status(half[i], NULL), TELEMETRY_BAD_STATUS, half[i]);
    static const char *const names[] = {"prev_boot", "prev_last_seq"};
    for (int i = 0; i < 2; i++) {
        const char *other = i ? "\"prev_boot\":1" : "\"prev_last_seq\":1";
        char buf[192];
        const char *vals[] = {"-1", "9007199254740994", "1.5", "\"7\"", "null", "1e999"};
        const telemetry_reason want[] = {TELEMETRY_OUT_OF_RANGE, TELEMETRY_OUT_OF_RANGE,
                                         TELEMETRY_WRONG_TYPE,   TELEMETRY_WRONG_TYPE,
                                         TELEMETRY_WRONG_TYPE,   TELEMETRY_OUT_OF_RANGE};
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
            snprintf(buf, sizeof buf, "{\"status\":\"online\",%s,\"%s\":%s}", other, names[i],
                     vals[k]);
            expect_reason(status(buf, NULL), want[k], buf);
        }
        snprintf(buf, sizeof buf, "{\"status\":\"online\",%s,\"%s\":9007199254740992}", other,
                 names[i]);
        assert_int_equal(status(buf, NULL), TELEMETRY_OK);
        snprintf(buf, sizeof buf, "{\"status\":\"online\",%s,\"%s\":1,\"%s\":2}", other,
                 names[i], names[i]);
        assert_int_equal(status(buf, NULL), TELEMETRY_DUPLICATE_FIELD);
    }
}

static void test_status_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "Online", "ONLINE", "online!", "on line", "onlin", "\"online\"", "42",
        "[\"online\"]", "null", "garbage", "{}", "{\"fw\":\"1\"}", "{\"status\":\"sleeping\"}",
        "{\"status\":1}", "{\"status\":true}", "{\"status\":null}", "{\"status\":\"Online\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_reason(status(bad[i], NULL), TELEMETRY_BAD_STATUS, bad[i]);
    }
    assert_int_equal(status("{\"status\":\"online\"", NULL), TELEMETRY_MALFORMED_JSON);
    assert_int_equal(status("{\"status\":\"online\"}x", NULL), TELEMETRY_MALFORMED_JSON);
    assert_int_equal(status("{\"status\":\"online\",\"status\":\"online\"}", NULL),
                     TELEMETRY_DUPLICATE_FIELD);
    assert_int_equal(status("{\"status\":\"online\",\"device_id\":\"other\"}", NULL),
                     TELEMETRY_ID_MISMATCH);
    assert_int_equal(status_field("interval_ms", "10"), TELEMETRY_OK);
    assert_int_equal(status_field("interval_ms", "3600000"), TELEMETRY_OK);
    assert_int_equal(status_field("interval_ms", "9"), TELEMETRY_OUT_OF_RANGE);
    assert_int_equal(status_field("interval_ms", "3600001"), TELEMETRY_OUT_OF_RANGE);
    assert_int_equal(status_field("interval_ms", "1000.5"), TELEMETRY_WRONG_TYPE);
    assert_int_equal(status_field("interval_ms", "\"1000\""), TELEMETRY_WRONG_TYPE);
    assert_int_equal(status_field("interval_ms", "1e999"), TELEMETRY_OUT_OF_RANGE);
    assert_int_equal(status_field("boot", "0"), TELEMETRY_OK);
    assert_int_equal(status_field("boot", "9007199254740992"), TELEMETRY_OK);
    assert_int_equal(status_field("boot", "-1"), TELEMETRY_OUT_OF_RANGE);
    assert_int_equal(status_field("boot", "9007199254740994"), TELEMETRY_OUT_OF_RANGE);
    assert_int_equal(status_field("fw", "\"0123456789abcdef0123456789abcdef\""), TELEMETRY_OK);
    assert_int_equal(status_field("fw", "\"0123456789abcdef0123456789abcdefX\""),
                     TELEMETRY_OUT_OF_RANGE);
    assert_int_equal(status_field("fw", "1"), TELEMETRY_WRONG_TYPE);
    /* oversize first, before the bare-word check */
    char big[TELEMETRY_PAYLOAD_MAX_DEFAULT + 8];
    memset(big, ' ', sizeof big);
    memcpy(big, "online", 6);
    assert_int_equal(telemetry_parse_status(ID, big, TELEMETRY_PAYLOAD_MAX_DEFAULT, 0, NULL,
                                            NULL, 0),
                     TELEMETRY_OK);
    assert_int_equal(telemetry_parse_status(ID, big, TELEMETRY_PAYLOAD_MAX_DEFAULT + 1, 0, NULL,
                                            NULL, 0),
                     TELEMETRY_OVERSIZE);
    assert_int_equal(telemetry_parse_status("bad/id", "online", 6, 0, NULL, NULL, 0),
                     TELEMETRY_BAD_TOPIC);
    assert_int_equal(telemetry_parse_status(ID, NULL, 0, 0, NULL, NULL, 0),
                     TELEMETRY_BAD_STATUS);
}

/* ---- ISO 8601 -------------------------------------------------------------- */

static void iso_is(int64_t ms, const char *want)
{
    char buf[64];
    size_t n = telemetry_format_iso(ms, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_iso(void **state)
{
    (void)state;
    iso_is(0, "1970-01-01T00:00:00.000Z");
    iso_is(1, "1970-01-01T00:00:00.001Z");
    iso_is(999, "1970-01-01T00:00:00.999Z");
    iso_is(1795799921123LL, "2026-11-27T17:18:41.123Z");
    iso_is(1795794000123LL, "2026-11-27T15:40:00.123Z");
    iso_is(951782400000LL, "2000-02-29T00:00:00.000Z");     /* leap year (÷400) */
    iso_is(1709251199999LL, "2024-02-29T23:59:59.999Z");    /* leap year, last ms */
    iso_is(1709251200000LL, "2024-03-01T00:00:00.000Z");
    iso_is(4107542400000LL - 1, "2100-02-28T23:59:59.999Z"); /* 2100 is not leap */
    iso_is(4107542400000LL, "2100-03-01T00:00:00.000Z");
    iso_is(1483228800000LL, "2017-01-01T00:00:00.000Z");
    iso_is(-1, "1969-12-31T23:59:59.999Z");
    iso_is(-1000, "1969-12-31T23:59:59.000Z");
    iso_is(-1001, "1969-12-31T23:59:58.999Z");
    iso_is(253402300800000LL - 1, "9999-12-31T23:59:59.999Z");
    iso_is(253402300800000LL, "10000-01-01T00:00:00.000Z");

    char buf[25];
    assert_int_equal(telemetry_format_iso(0, buf, 25), 24);
    assert_int_equal(telemetry_format_iso(0, buf, 24), 0);
    assert_string_equal(buf, "");
    assert_int_equal(telemetry_format_iso(253402300800000LL, buf, 25), 0);
    assert_int_equal(telemetry_format_iso(0, NULL, 25), 0);
    /* extremes do not overflow */
    char big[64];
    assert_true(telemetry_format_iso(INT64_MIN, big, sizeof big) > 0);
    assert_true(telemetry_format_iso(INT64_MAX, big, sizeof big) > 0);
}

/* ---- JSON output ----------------------------------------------------------- */

static void expect_num(const cJSON *o, const char *k, double v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_non_null(it);
    assert_true(cJSON_IsNumber(it));
    assert_true(it->valuedouble == v);
}

static void expect_str(const cJSON *o, const char *k, const char *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_non_null(it);
    assert_true(cJSON_IsString(it));
    assert_string_equal(it->valuestring, v);
}

static void test_json_design_exact(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data(DESIGN_PAYLOAD, &r), TELEMETRY_OK);
    r.received_ms = 1795799921123LL;
    char buf[1024];
    size_t n = telemetry_reading_json(&r, buf, sizeof buf);
    const char *want =
        "{\"sensor_type\":\"MAX30614\",\"device_id\":\"ESP32_001\",\"object_temp\":36.6,"
        "\"ambient_temp\":24.1,\"heart_rate\":72,\"spo2\":98,\"timestamp\":123456,"
        "\"received_at\":\"2026-11-27T17:18:41.123Z\",\"topic\":\"sensors/esp32/ESP32_001/data\"}";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));

    /* every buffer too small gives 0, never a truncated object */
    for (size_t len = 0; len <= n; len++) {
        char small[1024];
        memset(small, 'Q', sizeof small);
        assert_int_equal(telemetry_reading_json(&r, small, len), 0);
        for (size_t i = len; i < sizeof small; i++)
            assert_int_equal(small[i], 'Q');
    }
    assert_int_equal(telemetry_reading_json(&r, buf, n + 1), n);
    assert_int_equal(telemetry_reading_json(NULL, buf, sizeof buf), 0);
}

static void test_json_extended_roundtrip(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data(EXTENDED_PAYLOAD, &r), TELEMETRY_OK);
    r.received_ms = 951782400000LL;
    char buf[1024];
    size_t n = telemetry_reading_json(&r, buf, sizeof buf);
    assert_true(n > 0);
    cJSON *o = cJSON_Parse(buf);
    assert_non_null(o);
    expect_str(o, "sensor_type", "MAX30614");
    expect_str(o, "device_id", ID);
    expect_num(o, "object_temp", 36.6);
    expect_num(o, "ambient_temp", 24.1);
    expect_num(o, "heart_rate", 72);
    expect_num(o, "spo2", 98);
    expect_num(o, "timestamp", 123456);
    expect_num(o, "seq", 1041);
    expect_num(o, "boot", 7);
    expect_num(o, "ts", 1795794000123.0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "hr_valid")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "spo2_valid")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "temp_valid")));
    expect_num(o, "battery", 87);
    expect_num(o, "rssi", -61);
    expect_str(o, "fw", "0.1.0");
    expect_str(o, "received_at", "2000-02-29T00:00:00.000Z");
    expect_str(o, "topic", "sensors/esp32/ESP32_001/data");
    assert_int_equal(cJSON_GetArraySize(o), 18);
    /* key order as documented */
    static const char *const order[] = {
        "sensor_type", "device_id", "object_temp", "ambient_temp", "heart_rate", "spo2",
        "timestamp", "seq", "boot", "ts", "hr_valid", "spo2_valid", "temp_valid",
        "battery", "rssi", "fw", "received_at", "topic"};
    const cJSON *it = o->child;
    for (size_t i = 0; i < 18; i++, it = it->next)
        assert_string_equal(it->string, order[i]);
    cJSON_Delete(o);

    /* and the output is itself a valid payload giving the same reading */
    telemetry_reading back;
    assert_int_equal(data_n(ID, buf, n, 0, &back), TELEMETRY_OK);
    back.received_ms = r.received_ms;
    assert_int_equal(back.present, r.present);
    assert_true(back.object_temp == r.object_temp && back.ambient_temp == r.ambient_temp);
    assert_int_equal(back.ts_ms, r.ts_ms);
}

static void test_json_values_and_escaping(void **state)
{
    (void)state;
    telemetry_reading r;
    assert_int_equal(data("{\"sensor_type\":\"a\\\"b\\\\c\",\"fw\":\"\\\\\",\"object_temp\":-19.12345678,"
                          "\"heart_rate\":null,\"spo2\":99.5,\"seq\":9007199254740992,"
                          "\"hr_valid\":false,\"rssi\":-127,\"battery\":0.001}",
                          &r),
                     TELEMETRY_OK);
    r.received_ms = -1;
    char buf[1024];
    assert_true(telemetry_reading_json(&r, buf, sizeof buf) > 0);
    cJSON *o = cJSON_Parse(buf);
    assert_non_null(o);
    expect_str(o, "sensor_type", "a\"b\\c");
    expect_str(o, "fw", "\\");
    expect_num(o, "object_temp", -19.12345678); /* 10 significant digits survive */
    expect_num(o, "spo2", 99.5);
    expect_num(o, "seq", 9007199254740992.0);
    expect_num(o, "rssi", -127);
    expect_num(o, "battery", 0.001);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "hr_valid")));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "heart_rate"));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "ambient_temp"));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "timestamp"));
    expect_str(o, "received_at", "1969-12-31T23:59:59.999Z");
    cJSON_Delete(o);

    /* a hand-filled struct with hostile content still gives valid JSON */
    memset(&r, 0, sizeof r);
    strcpy(r.device_id, "d");
    strcpy(r.sensor_type, "\x01\n\"");
    r.object_temp = NAN;
    r.present = TELEMETRY_HAS_SENSOR_TYPE | TELEMETRY_HAS_OBJECT_TEMP;
    assert_true(telemetry_reading_json(&r, buf, sizeof buf) > 0);
    o = cJSON_Parse(buf);
    assert_non_null(o);
    expect_str(o, "sensor_type", "\x01\n\"");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "object_temp")));
    cJSON_Delete(o);
}

static void test_json_status(void **state)
{
    (void)state;
    telemetry_status s;
    assert_int_equal(status("{\"status\":\"online\",\"fw\":\"0.1.0\",\"interval_ms\":1000,"
                            "\"boot\":7}", &s),
                     TELEMETRY_OK);
    s.received_ms = 1795799921123LL;
    char buf[512];
    size_t n = telemetry_status_json(&s, buf, sizeof buf);
    const char *want = "{\"device_id\":\"ESP32_001\",\"status\":\"online\",\"fw\":\"0.1.0\","
                       "\"interval_ms\":1000,\"boot\":7,"
                       "\"received_at\":\"2026-11-27T17:18:41.123Z\"}";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    for (size_t len = 0; len <= n; len++)
        assert_int_equal(telemetry_status_json(&s, buf, len), 0);

    assert_int_equal(status("offline", &s), TELEMETRY_OK);
    s.received_ms = 0;
    assert_true(telemetry_status_json(&s, buf, sizeof buf) > 0);
    assert_string_equal(buf, "{\"device_id\":\"ESP32_001\",\"status\":\"offline\","
                             "\"received_at\":\"1970-01-01T00:00:00.000Z\"}");
    cJSON *o = cJSON_Parse(buf);
    assert_non_null(o);
    cJSON_Delete(o);
}

/* The text check steps over 8-byte words of plain bytes: a byte it must
 * refuse (NUL, control, bad UTF-8) is refused at every offset of a long
 * string, one it must see (quote, backslash, UTF-8) is honoured there, and a
 * valid tail shorter than a word is still checked. */
static void test_text_check_every_offset(void **state)
{
    (void)state;
    static const char *const bad[] = {"\x01", "\x1f", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\\u0000",
                                      "\\u00zz", "\\uzzzz", "\\u00eg"};
    static const char *const good[] = {"\xc3\xa9", "\\\"", "\\\\", "\x7f", " ", "\xf0\x9f\x92\x93",
                                       "\\u00e9", "\\u00E9", "\\uD83D\\uDC93"};
    for (size_t off = 0; off < 24; off++) {
        char note[64], buf[256];
        repeat(note, 'a', off);
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            int n = snprintf(buf, sizeof buf, "{\"seq\":1,\"note\":\"%s%s%s\"}", note, bad[k],
                             "bbbbbbbbbbbbbbbbb");
            assert_true(n > 0 && (size_t)n < sizeof buf);
            expect_reason(data(buf, NULL), TELEMETRY_MALFORMED_JSON, buf);
        }
        for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
            int n = snprintf(buf, sizeof buf, "{\"seq\":1,\"note\":\"%s%s%s\"}", note, good[k],
                             "bbbbbbbbbbbbbbbbb");
            assert_true(n > 0 && (size_t)n < sizeof buf);
            expect_reason(data(buf, NULL), TELEMETRY_OK, buf);
        }
        /* a raw NUL at that offset, inside the given length */
        int n = snprintf(buf, sizeof buf, "{\"seq\":1,\"note\":\"%sXbbbbbbbbbbbbbbbbb\"}", note);
        assert_true(n > 0 && (size_t)n < sizeof buf);
        buf[n - 19] = '\0';
        assert_int_equal(data_n(ID, buf, (size_t)n, 0, NULL), TELEMETRY_MALFORMED_JSON);
        /* an unterminated string whose quote would fall in the last word */
        n = snprintf(buf, sizeof buf, "{\"seq\":1,\"note\":\"%s}", note);
        assert_int_equal(data_n(ID, buf, (size_t)n, 0, NULL), TELEMETRY_MALFORMED_JSON);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_payload),
        cmocka_unit_test(test_extended_payload),
        cmocka_unit_test(test_payload_not_nul_terminated),
        cmocka_unit_test(test_device_id_optional_and_from_topic),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_null_vitals),
        cmocka_unit_test(test_whitespace_and_integral_forms),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_integers_must_be_integral),
        cmocka_unit_test(test_detail_text),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_device_id_field),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_out_untouched_on_reject),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_topic_good),
        cmocka_unit_test(test_topic_id_length),
        cmocka_unit_test(test_topic_bad),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_status_forms),
        cmocka_unit_test(test_status_rejects),
        cmocka_unit_test(test_status_prev_boot),
        cmocka_unit_test(test_iso),
        cmocka_unit_test(test_json_design_exact),
        cmocka_unit_test(test_json_extended_roundtrip),
        cmocka_unit_test(test_json_values_and_escaping),
        cmocka_unit_test(test_json_status),
        cmocka_unit_test(test_text_check_every_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
