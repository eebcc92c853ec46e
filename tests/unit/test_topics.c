/* Unit tests for protocol/topics.c and protocol/device_id.c: building each
 * topic kind, buffers that are too small, the subscription patterns, and
 * parsing good and bad topics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "device_id.h"
#include "topics.h"

static topics_err parse(const char *t, char *id, topics_kind *k)
{
    return topics_parse(t, strlen(t), id, k);
}

static void test_build_each_kind(void **state)
{
    (void)state;
    static const struct {
        topics_kind k;
        const char *want;
    } cases[] = {
        {TOPICS_DATA, "sensors/esp32/dev-1/data"},
        {TOPICS_STATUS, "sensors/esp32/dev-1/status"},
        {TOPICS_ACK, "sensors/esp32/dev-1/ack"},
        {TOPICS_CONFIG, "sensors/esp32/dev-1/config"},
        {TOPICS_CONTROL, "commands/esp32/dev-1/control"},
        {TOPICS_ALARMS, "alarms/esp32/dev-1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[TOPICS_BUF_SIZE];
        size_t n = 0;
        assert_int_equal(topics_build(cases[i].k, "dev-1", buf, sizeof buf, &n), TOPICS_OK);
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
        /* build and parse are inverses */
        char id[DEVICE_ID_MAX + 1];
        topics_kind k;
        assert_int_equal(parse(buf, id, &k), TOPICS_OK);
        assert_string_equal(id, "dev-1");
        assert_int_equal(k, cases[i].k);
    }
}

static void test_build_longest_fits_buf_size(void **state)
{
    (void)state;
    char id[DEVICE_ID_MAX + 1];
    memset(id, 'x', DEVICE_ID_MAX);
    id[DEVICE_ID_MAX] = '\0';
    char buf[TOPICS_BUF_SIZE];
    size_t n = 0;
    assert_int_equal(topics_build(TOPICS_CONTROL, id, buf, sizeof buf, &n), TOPICS_OK);
    assert_int_equal(n, TOPICS_MAX_LEN);
    assert_int_equal(strlen(buf), TOPICS_MAX_LEN);
}

static void test_build_too_small(void **state)
{
    (void)state;
    char buf[32];
    memset(buf, 'z', sizeof buf);
    size_t n = 77;
    /* "sensors/esp32/ab/data" is 21 bytes: 22 fits, 21 does not (no NUL room) */
    assert_int_equal(topics_build(TOPICS_DATA, "ab", buf, 21, &n), TOPICS_ENOSPC);
    assert_string_equal(buf, "");
    assert_int_equal(n, 77); /* untouched on error */
    assert_int_equal(topics_build(TOPICS_DATA, "ab", buf, 22, &n), TOPICS_OK);
    assert_string_equal(buf, "sensors/esp32/ab/data");
    assert_int_equal(n, 21);
    assert_int_equal(topics_build(TOPICS_DATA, "ab", buf, 1, NULL), TOPICS_ENOSPC);
    assert_int_equal(topics_build(TOPICS_DATA, "ab", buf, 0, NULL), TOPICS_ENOSPC);
}

static void test_build_bad_arguments(void **state)
{
    (void)state;
    char buf[TOPICS_BUF_SIZE];
    assert_int_equal(topics_build(TOPICS_DATA, NULL, buf, sizeof buf, NULL), TOPICS_EINVAL);
    assert_int_equal(topics_build(TOPICS_DATA, "a", NULL, 10, NULL), TOPICS_EINVAL);
    assert_int_equal(topics_build(TOPICS_KIND_COUNT, "a", buf, sizeof buf, NULL), TOPICS_EINVAL);
    assert_int_equal(topics_build(TOPICS_DATA, "", buf, sizeof buf, NULL), TOPICS_EBADID);
    assert_int_equal(topics_build(TOPICS_DATA, "a/b", buf, sizeof buf, NULL), TOPICS_EBADID);
    assert_int_equal(topics_build(TOPICS_DATA, "+", buf, sizeof buf, NULL), TOPICS_EBADID);
    assert_int_equal(topics_build(TOPICS_DATA, "#", buf, sizeof buf, NULL), TOPICS_EBADID);
    char longid[DEVICE_ID_MAX + 2];
    memset(longid, 'x', DEVICE_ID_MAX + 1);
    longid[DEVICE_ID_MAX + 1] = '\0';
    assert_int_equal(topics_build(TOPICS_DATA, longid, buf, sizeof buf, NULL), TOPICS_EBADID);
    assert_string_equal(buf, "");
    assert_string_equal(topics_err_name(TOPICS_ENOSPC), "topic does not fit the buffer");
    assert_string_equal(topics_err_name((topics_err)99), "unknown");
}

static void test_subscriptions(void **state)
{
    (void)state;
    const char *const subs[TOPICS_SUBSCRIPTION_COUNT] = TOPICS_SUBSCRIPTIONS;
    assert_int_equal(TOPICS_SUBSCRIPTION_COUNT, 3);
    assert_string_equal(subs[0], "sensors/esp32/+/data");
    assert_string_equal(subs[1], "sensors/esp32/+/status");
    assert_string_equal(subs[2], "sensors/esp32/+/ack");
}

static void test_parse_good(void **state)
{
    (void)state;
    char id[DEVICE_ID_MAX + 1];
    topics_kind k;
    assert_int_equal(parse("sensors/esp32/Az09_.-/status", id, &k), TOPICS_OK);
    assert_string_equal(id, "Az09_.-");
    assert_int_equal(k, TOPICS_STATUS);
    assert_int_equal(parse("sensors/esp32/a/ack", NULL, NULL), TOPICS_OK);
    /* the length, not the NUL, ends the topic */
    const char t[] = "sensors/esp32/x/dataXYZ";
    assert_int_equal(topics_parse(t, sizeof t - 4, id, &k), TOPICS_OK);
    assert_int_equal(k, TOPICS_DATA);
    char max[128] = "sensors/esp32/";
    memset(max + strlen(max), 'm', DEVICE_ID_MAX);
    strcat(max, "/data");
    assert_int_equal(parse(max, id, &k), TOPICS_OK);
    assert_int_equal(strlen(id), DEVICE_ID_MAX);
}

static void test_parse_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "sensors/esp32/",
        "sensors/esp32//data",         /* empty id */
        "sensors/esp32/a b/data",      /* bad char */
        "sensors/esp32/a+/data",
        "sensors/esp32/+/data",        /* a pattern is not a topic */
        "sensors/esp32/a/data/x",      /* extra level */
        "sensors/esp32/a/b/data",
        "sensors/esp32/a/",
        "sensors/esp32/a",
        "sensors/esp32/a/Data",        /* kinds are case-sensitive */
        "sensors/esp32/a/reading",     /* unknown kind */
        "sensors/esp32/a/control",     /* control lives under commands/ */
        "commands/esp32/a/data",       /* data lives under sensors/ */
        "sensors/esp8266/a/data",      /* wrong prefix */
        "Sensors/esp32/a/data",
        "/sensors/esp32/a/data",
        "xsensors/esp32/a/data",
        "alarms/esp32/a/x",            /* alarms: the id ends the topic */
        "alarms/esp32/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char id[DEVICE_ID_MAX + 1] = "untouched";
        topics_kind k = TOPICS_KIND_COUNT;
        if (parse(bad[i], id, &k) != TOPICS_EBADTOPIC)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_string_equal(id, "untouched");
        assert_int_equal(k, TOPICS_KIND_COUNT);
    }
    char longt[128] = "sensors/esp32/";
    memset(longt + strlen(longt), 'm', DEVICE_ID_MAX + 1); /* id too long */
    strcat(longt, "/data");
    assert_int_equal(parse(longt, NULL, NULL), TOPICS_EBADTOPIC);
    const char nul[] = "sensors/esp32/a\0b/data";
    assert_int_equal(topics_parse(nul, sizeof nul - 1, NULL, NULL), TOPICS_EBADTOPIC);
    assert_int_equal(topics_parse(NULL, 0, NULL, NULL), TOPICS_EBADTOPIC);
}

static void test_device_id(void **state)
{
    (void)state;
    assert_true(device_id_valid("a", 1));
    assert_true(device_id_valid("Az09_.-", 7));
    assert_false(device_id_valid("", 0));
    assert_false(device_id_valid(NULL, 1));
    assert_false(device_id_valid("a/b", 3));
    assert_false(device_id_valid("\xc3\xa9", 2));
    /* path segments: stored but unreachable over REST before */
    assert_false(device_id_valid(".", 1));
    assert_false(device_id_valid("..", 2));
    assert_false(device_id_valid_str("."));
    assert_false(device_id_valid_str(".."));
    assert_true(device_id_valid("...", 3));
    assert_true(device_id_valid(".a", 2));
    assert_true(device_id_valid("a..", 3));
    assert_true(device_id_valid_str("dev-1"));
    assert_false(device_id_valid_str(""));
    assert_false(device_id_valid_str(NULL));
    char s[DEVICE_ID_MAX + 1]; /* unterminated: must be rejected, not overrun */
    memset(s, 'a', sizeof s);
    assert_false(device_id_valid_str(s));
    s[DEVICE_ID_MAX] = '\0';
    assert_true(device_id_valid_str(s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_each_kind),
        cmocka_unit_test(test_build_longest_fits_buf_size),
        cmocka_unit_test(test_build_too_small),
        cmocka_unit_test(test_build_bad_arguments),
        cmocka_unit_test(test_subscriptions),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_device_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
