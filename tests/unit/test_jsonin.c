/* jsonin: the text gate in front of cJSON, and the parsers behind it.
 * Security regressions: cJSON decodes a \u escape whose digits are not hex
 * as U+0000 and stops its strings there, so "alice\u00zzbob" was read as
 * "alice" by every parser of network input (REST bodies, device acks,
 * WebSocket messages, telemetry keys). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <string.h>

#include "alarm.h"
#include "auth.h"
#include "command.h"
#include "fanout.h"
#include "jsonin.h"
#include "sbuf.h"
#include "telemetry.h"

static int ok(const char *s)
{
    return jsonin_text_ok(s, strlen(s));
}

static void test_text_escapes(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}", "{\"a\":\"\\u00e9\"}", "{\"a\":\"\\u00E9\\uD83D\\uDC93\"}", "{\"a\":\"\\\\u00zz\"}",
        "{\"a\":\"\\n\\t\\\"\\\\\\/\"}", "{\"\\u0041\":1}", "{ \"a\" :\r\n\t1 }",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(ok(good[i]));
    static const char *const bad[] = {
        "{\"a\":\"\\u00zz\"}", "{\"a\":\"\\uzzzz\"}", "{\"a\":\"\\u00e\"}", "{\"a\":\"\\u\"}",
        "{\"a\":\"\\u12", "{\"a\":\"\\u0000\"}", "{\"a\\u00G0\":1}", "{\"a\":\"\\u-123\"}",
        "{\"a\":\"\\u 123\"}", "{\"a\":\"x\ty\"}", "{\x01}", "{\"a\":\"\xff\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (ok(bad[i]))
            fail_msg("accepted: %s", bad[i]);
    }
    /* a NUL inside the given length */
    assert_false(jsonin_text_ok("{\"a\":1}\0", 8));
}

static void test_parse(void **state)
{
    (void)state;
    const char *end = "x";
    cJSON *j = jsonin_parse("{\"a\":\"\\u00e9\"} ", 15, &end);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "a")->valuestring, "\xc3\xa9");
    assert_ptr_not_equal(end, NULL);
    cJSON_Delete(j);
    end = "x";
    assert_null(jsonin_parse("{\"a\":\"b\\u00zzc\"}", 16, &end));
    assert_null(end);
    assert_null(jsonin_parse(NULL, 0, NULL));
    assert_null(jsonin_parse("{", 1, NULL));
}

/* Every parser of network input goes through the gate. Each case below was
 * accepted, truncated at the bad escape, before the fix. */
static void test_parsers_refuse_bad_escapes(void **state)
{
    (void)state;
    char err[160];

    /* REST: a user named "alice" created or logged in as "alice\u00zzbob" */
    auth_fields f;
    const char *user = "{\"username\":\"alice\\u00zzbob\",\"password\":\"s3cret pass\"}";
    assert_int_equal(auth_parse_fields(user, strlen(user), &f, err, sizeof err), AUTH_EINVAL);
    char cmd[32];
    const char *cmdb = "{\"cmd\":\"ping\\u00zz\"}";
    auth_command_name(cmdb, strlen(cmdb), cmd, sizeof cmd);
    assert_string_equal(cmd, "");

    /* a device's ack matching the command "c" with the cmd_id "c\u00zz..." */
    sbuf d;
    sbuf_init(&d, 0);
    char cid[COMMAND_ID_MAX + 1] = "x";
    const char *ack = "{\"cmd_id\":\"c\\u00zzjunk\",\"ok\":true}";
    assert_int_equal(command_parse_ack("D1", ack, strlen(ack), 512, 0, &d, cid, err, sizeof err),
                     TELEMETRY_MALFORMED_JSON);
    sbuf_free(&d);
    sbuf out;
    sbuf_init(&out, 0);
    const char *body = "{\"cmd\":\"identify\\u00zz\"}";
    assert_int_equal(command_build(body, strlen(body), "c-1", &out, err, sizeof err), -1);
    sbuf_free(&out);

    /* a WebSocket subscribe to device "a" written "a\u00zzb" */
    fanout_subscribe s;
    const char *sub = "{\"type\":\"subscribe\",\"devices\":[\"a\\u00zzb\"]}";
    assert_int_not_equal(fanout_parse_subscribe(sub, strlen(sub), &s), FANOUT_PARSE_OK);
    fanout_subscribe_free(&s);

    /* alarm settings and silence bodies */
    int64_t secs = 0;
    const char *sil = "{\"seconds\":60,\"x\\u00zz\":1}";
    assert_int_not_equal(alarm_silence_parse(sil, strlen(sil), &secs), ALARM_OK);
    alarm_settings base, set;
    alarm_settings_default(&base);
    const char *st = "{\"x\\u00zz\":1}";
    assert_int_not_equal(alarm_settings_parse(st, strlen(st), &base, &set, err, sizeof err), ALARM_OK);

    /* telemetry: the key "heart_rate\u00zz" read as "heart_rate" */
    telemetry_reading r;
    const char *tel = "{\"heart_rate\\u00zz\":72,\"seq\":1}";
    assert_int_equal(telemetry_parse_data("ESP32_001", tel, strlen(tel), 0, &r, err, sizeof err),
                     TELEMETRY_MALFORMED_JSON);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_escapes),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parsers_refuse_bad_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
