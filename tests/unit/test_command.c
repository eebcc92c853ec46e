/* Unit tests for server/command.c: REST bodies into command and config
 * payloads (good bodies, each rejection with its message, oversize, wrong
 * types), ack validation into the command_result data, and the resend
 * command and its ack as the completeness tracker uses them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "command.h"
#include "telemetry.h"

/* Runs command_build on body; returns rc, payload in *out (caller frees). */
static int build(const char *body, sbuf *out, char *err)
{
    sbuf_init(out, 0);
    err[0] = 0;
    return command_build(body, strlen(body), "c-1", out, err, 160);
}

static void expect_cmd_ok(const char *body, const char *want)
{
    sbuf o;
    char err[160];
    assert_int_equal(build(body, &o, err), 0);
    assert_int_equal(o.len, strlen(want));
    assert_memory_equal(sbuf_data(&o), want, o.len);
    sbuf_free(&o);
}

static void expect_cmd_err(const char *body, const char *msg)
{
    sbuf o;
    char err[160];
    assert_int_equal(build(body, &o, err), -1);
    assert_string_equal(err, msg);
    sbuf_free(&o);
}

static void test_build_good(void **state)
{
    (void)state;
    expect_cmd_ok("{\"cmd\":\"ping\"}", "{\"cmd_id\":\"c-1\",\"cmd\":\"ping\"}");
    expect_cmd_ok(" {\"cmd\":\"identify\"}\n", "{\"cmd_id\":\"c-1\",\"cmd\":\"identify\"}");
    expect_cmd_ok("{\"cmd\":\"reboot\"}", "{\"cmd_id\":\"c-1\",\"cmd\":\"reboot\"}");
    expect_cmd_ok("{\"cmd\":\"set_interval\",\"interval_ms\":500}",
                  "{\"cmd_id\":\"c-1\",\"cmd\":\"set_interval\",\"interval_ms\":500}");
    expect_cmd_ok("{\"cmd\":\"resend\",\"boot\":3,\"from\":10,\"to\":10}",
                  "{\"cmd_id\":\"c-1\",\"cmd\":\"resend\",\"boot\":3,\"from\":10,\"to\":10}");
}

static void test_build_rejections(void **state)
{
    (void)state;
    expect_cmd_err("", "body must be a JSON object of at most 4096 bytes");
    expect_cmd_err("{\"cmd\":", "body is not valid JSON");
    expect_cmd_err("[1]", "body must be a single JSON object");
    expect_cmd_err("{\"cmd\":\"ping\"} {}", "body must be a single JSON object");
    expect_cmd_err("{}", "missing \"cmd\" (ping, identify, reboot, set_interval, resend)");
    expect_cmd_err("{\"cmd\":5}", "missing \"cmd\" (ping, identify, reboot, set_interval, resend)");
    expect_cmd_err("{\"cmd\":\"format\"}", "unknown \"cmd\" (ping, identify, reboot, set_interval, resend)");
    expect_cmd_err("{\"cmd\":\"ping\",\"x\":1}", "unknown field \"x\"");
    expect_cmd_err("{\"cmd\":\"set_interval\"}", "missing \"interval_ms\"");
    expect_cmd_err("{\"cmd\":\"set_interval\",\"interval_ms\":9}",
                   "\"interval_ms\" must be an integer in 10..3600000");
    expect_cmd_err("{\"cmd\":\"set_interval\",\"interval_ms\":3600001}",
                   "\"interval_ms\" must be an integer in 10..3600000");
    expect_cmd_err("{\"cmd\":\"set_interval\",\"interval_ms\":10.5}",
                   "\"interval_ms\" must be an integer in 10..3600000");
    expect_cmd_err("{\"cmd\":\"set_interval\",\"interval_ms\":\"100\"}",
                   "\"interval_ms\" must be an integer in 10..3600000");
    expect_cmd_err("{\"cmd\":\"resend\",\"boot\":1,\"from\":5}", "missing \"to\"");
    expect_cmd_err("{\"cmd\":\"resend\",\"boot\":-1,\"from\":5,\"to\":6}",
                   "\"boot\" must be an integer in 0..9007199254740992");
    expect_cmd_err("{\"cmd\":\"resend\",\"boot\":1,\"from\":7,\"to\":6}",
                   "\"to\" must not be below \"from\"");
    /* oversize: one byte past the cap */
    size_t n = 4097;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"cmd\":\"ping\"}", 14);
    big[n] = 0;
    expect_cmd_err(big, "body must be a JSON object of at most 4096 bytes");
    big[4096] = 0; /* exactly 4096 (trailing blanks) is fine */
    expect_cmd_ok(big, "{\"cmd_id\":\"c-1\",\"cmd\":\"ping\"}");
    free(big);
}

static void test_build_config(void **state)
{
    (void)state;
    sbuf o;
    char err[160];
    sbuf_init(&o, 0);
    const char *good = "{\"interval_ms\":1000}";
    assert_int_equal(command_build_config(good, strlen(good), "cfg-9", &o, err, sizeof err), 0);
    assert_string_equal(sbuf_data(&o), "{\"cfg_id\":\"cfg-9\",\"interval_ms\":1000}");
    sbuf_reset(&o);
    const char *extra = "{\"interval_ms\":1000,\"led\":true}";
    assert_int_equal(command_build_config(extra, strlen(extra), "cfg-9", &o, err, sizeof err), -1);
    assert_string_equal(err, "unknown field \"led\"");
    const char *none = "{}";
    assert_int_equal(command_build_config(none, strlen(none), "cfg-9", &o, err, sizeof err), -1);
    assert_string_equal(err, "missing \"interval_ms\"");
    const char *wrong = "{\"interval_ms\":true}";
    assert_int_equal(command_build_config(wrong, strlen(wrong), "cfg-9", &o, err, sizeof err), -1);
    assert_string_equal(err, "\"interval_ms\" must be an integer in 10..3600000");
    sbuf_free(&o);
}

static int ack(const char *payload, sbuf *data, char *err)
{
    sbuf_init(data, 0);
    return command_parse_ack("D1", payload, strlen(payload), 512, 0, data, NULL, err, 160);
}

static void test_parse_ack(void **state)
{
    (void)state;
    sbuf d;
    char err[160];
    assert_int_equal(ack("{\"cmd_id\":\"c-1\",\"ok\":true,\"sent\":12,\"missing\":0,\"x\":[1]}", &d, err), 0);
    cJSON *j = cJSON_ParseWithLength(sbuf_data(&d), d.len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "cmd_id")->valuestring, "c-1");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    assert_int_equal(cJSON_GetObjectItem(j, "sent")->valueint, 12);
    assert_string_equal(cJSON_GetObjectItem(j, "device_id")->valuestring, "D1");
    assert_string_equal(cJSON_GetObjectItem(j, "received_at")->valuestring, "1970-01-01T00:00:00.000Z");
    assert_null(cJSON_GetObjectItem(j, "x")); /* unknown fields are dropped */
    cJSON_Delete(j);
    sbuf_free(&d);
    assert_int_equal(ack("{\"cfg_id\":\"cfg-1\",\"ok\":false,\"error\":\"busy\"}", &d, err), 0);
    sbuf_free(&d);

    /* Each rejection names its real reason (all were counted wrong_type). */
    static const struct {
        const char *payload, *msg;
        int why;
    } bad[] = {
        {"{\"ok\":true}", "ack needs \"cmd_id\" or \"cfg_id\", and \"ok\"", TELEMETRY_BAD_ACK},
        {"{\"cmd_id\":\"c\"}", "ack needs \"cmd_id\" or \"cfg_id\", and \"ok\"", TELEMETRY_BAD_ACK},
        {"{\"cmd_id\":\"c\",\"ok\":1}", "\"ok\" must be true or false", TELEMETRY_WRONG_TYPE},
        {"{\"cmd_id\":7,\"ok\":true}", "\"cmd_id\" must be a printable string of at most 64 chars", TELEMETRY_WRONG_TYPE},
        {"{\"cmd_id\":\"a\\nb\",\"ok\":true}", "\"cmd_id\" must be a printable string of at most 64 chars", TELEMETRY_WRONG_TYPE},
        {"{\"cmd_id\":\"c\",\"ok\":true,\"sent\":-1}", "\"sent\" must be a non-negative integer", TELEMETRY_OUT_OF_RANGE},
        {"{\"cmd_id\":\"c\",\"ok\":true,\"missing\":1.5}", "\"missing\" must be a non-negative integer", TELEMETRY_OUT_OF_RANGE},
        {"{\"cmd_id\":\"c\",\"ok\":true,\"boot\":\"1\"}", "\"boot\" must be a non-negative integer", TELEMETRY_WRONG_TYPE},
        {"not json", "body is not valid JSON", TELEMETRY_MALFORMED_JSON},
        {"[]", "body must be a single JSON object", TELEMETRY_NOT_OBJECT},
        /* duplicate keys: which one would a reader believe? */
        {"{\"cmd_id\":\"c\",\"cmd_id\":\"d\",\"ok\":true}", "\"cmd_id\" appears twice", TELEMETRY_DUPLICATE_FIELD},
        {"{\"cmd_id\":\"c\",\"ok\":true,\"ok\":false}", "\"ok\" appears twice", TELEMETRY_DUPLICATE_FIELD},
        {"{\"cmd_id\":\"c\",\"ok\":true,\"sent\":1,\"sent\":2}", "\"sent\" appears twice", TELEMETRY_DUPLICATE_FIELD},
        /* an empty cmd_id would pass as a config ack, unmatched */
        {"{\"cmd_id\":\"\",\"ok\":true}", "\"cmd_id\" must not be empty", TELEMETRY_BAD_ACK},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ack(bad[i].payload, &d, err), bad[i].why);
        assert_string_equal(err, bad[i].msg);
        sbuf_free(&d);
    }
    /* a 65-char id */
    char longid[128];
    snprintf(longid, sizeof longid, "{\"cmd_id\":\"%065d\",\"ok\":true}", 0);
    assert_int_equal(ack(longid, &d, err), TELEMETRY_WRONG_TYPE);
    sbuf_free(&d);
    /* oversize and NUL bytes, checked before parsing */
    sbuf_init(&d, 0);
    const char nul[] = "{\"cmd_id\":\"c\",\"ok\":true}\0";
    assert_int_equal(command_parse_ack("D1", nul, sizeof nul - 1, 512, 0, &d, NULL, err, sizeof err),
                     TELEMETRY_MALFORMED_JSON);
    assert_string_equal(err, "ack contains a NUL byte");
    const char *ok = "{\"cmd_id\":\"c\",\"ok\":true}";
    assert_int_equal(command_parse_ack("D1", ok, strlen(ok), 10, 0, &d, NULL, err, sizeof err),
                     TELEMETRY_OVERSIZE);
    assert_string_equal(err, "ack larger than the payload cap");
    sbuf_free(&d);
    /* the cmd_id the caller matches against what was sent */
    char cid[COMMAND_ID_MAX + 1] = "x";
    sbuf_init(&d, 0);
    assert_int_equal(command_parse_ack("D1", ok, strlen(ok), 512, 0, &d, cid, err, sizeof err), 0);
    assert_string_equal(cid, "c");
    sbuf_free(&d);
    sbuf_init(&d, 0);
    const char *cfg = "{\"cfg_id\":\"cfg-1\",\"ok\":true}";
    assert_int_equal(command_parse_ack("D1", cfg, strlen(cfg), 512, 0, &d, cid, err, sizeof err), 0);
    assert_string_equal(cid, "");
    sbuf_free(&d);
}

static void test_build_resend(void **state)
{
    (void)state;
    sbuf o;
    sbuf_init(&o, 0);
    assert_int_equal(command_build_resend("rs-ab12-", 42, 7, 11, 15, &o), 0);
    assert_string_equal(sbuf_data(&o),
                        "{\"cmd_id\":\"rs-ab12-42\",\"cmd\":\"resend\",\"boot\":7,\"from\":11,\"to\":15}");
    /* what we send passes our own REST validation of a resend body */
    sbuf p;
    char err[160];
    sbuf_init(&p, 0);
    const char *body = "{\"cmd\":\"resend\",\"boot\":7,\"from\":11,\"to\":15}";
    assert_int_equal(command_build(body, strlen(body), "rs-ab12-42", &p, err, sizeof err), 0);
    assert_string_equal(sbuf_data(&p), sbuf_data(&o));
    sbuf_free(&p);
    sbuf_reset(&o);
    assert_int_equal(command_build_resend("rs-", 1, 0, 5, 4, &o), -1);       /* to < from */
    assert_int_equal(command_build_resend("rs-", 1, -1, 1, 1, &o), -1);      /* boot */
    assert_int_equal(command_build_resend("rs-", 1, 0, 1, ((int64_t)1 << 53) + 1, &o), -1);
    assert_int_equal(command_build_resend("r\"s", 1, 0, 1, 1, &o), -1);      /* not JSON-safe */
    assert_int_equal(command_build_resend(NULL, 1, 0, 1, 1, &o), -1);
    sbuf_free(&o);
}

static command_ack_kind rack(const char *payload, command_resend_ack *a)
{
    memset(a, 0xff, sizeof *a);
    return command_parse_resend_ack(payload, strlen(payload), "rs-ab-", a);
}

static void test_parse_resend_ack(void **state)
{
    (void)state;
    command_resend_ack a;
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-17\",\"ok\":true,\"sent\":12,\"missing\":8}", &a),
                     COMMAND_ACK_RESEND);
    assert_int_equal(a.req_id, 17);
    assert_int_equal(a.ok, 1);
    assert_int_equal(a.permanent, 0);
    assert_int_equal(a.sent, 12);
    assert_int_equal(a.missing, 8);
    /* absent counts read as 0 */
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-3\",\"ok\":false,\"error\":\"busy\"}", &a),
                     COMMAND_ACK_RESEND);
    assert_int_equal(a.ok, 0);
    assert_int_equal(a.permanent, 0);
    assert_int_equal(a.sent, 0);
    assert_int_equal(a.missing, 0);
    /* the errors that mean "never" */
    const char *perm[] = {"unknown command", "invalid range", "not supported"};
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof p, "{\"cmd_id\":\"rs-ab-3\",\"ok\":false,\"error\":\"%s\"}", perm[i]);
        assert_int_equal(rack(p, &a), COMMAND_ACK_RESEND);
        assert_int_equal(a.permanent, 1);
    }
    /* ok with an error string is not permanent */
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-3\",\"ok\":true,\"error\":\"not supported\"}", &a),
                     COMMAND_ACK_RESEND);
    assert_int_equal(a.permanent, 0);
    /* not ours */
    assert_int_equal(rack("{\"cmd_id\":\"rs-zz-3\",\"ok\":true}", &a), COMMAND_ACK_OTHER);
    assert_int_equal(rack("{\"cmd_id\":\"c-1\",\"ok\":true}", &a), COMMAND_ACK_OTHER);
    assert_int_equal(rack("{\"cfg_id\":\"rs-ab-3\",\"ok\":true}", &a), COMMAND_ACK_OTHER);
    assert_int_equal(rack("nope", &a), COMMAND_ACK_OTHER);
    /* ours but malformed */
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-\",\"ok\":true}", &a), COMMAND_ACK_INVALID);
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-12x\",\"ok\":true}", &a), COMMAND_ACK_INVALID);
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-99999999999999999999999\",\"ok\":true}", &a),
                     COMMAND_ACK_INVALID);
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-1\",\"ok\":\"yes\"}", &a), COMMAND_ACK_INVALID);
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-1\",\"ok\":true,\"missing\":-1}", &a),
                     COMMAND_ACK_INVALID);
    assert_int_equal(rack("{\"cmd_id\":\"rs-ab-1\",\"ok\":true,\"sent\":1e300}", &a),
                     COMMAND_ACK_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_good),
        cmocka_unit_test(test_build_rejections),
        cmocka_unit_test(test_build_config),
        cmocka_unit_test(test_parse_ack),
        cmocka_unit_test(test_build_resend),
        cmocka_unit_test(test_parse_resend_ack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
