/* Unit tests for the one JSON string escaper (protocol/json_escape.c) and
 * its two server users: jsonw (fixed buffer) and sbuf_add_json_str. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json_escape.h"
#include "jsonw.h"
#include "sbuf.h"

/* Escapes s through jsonw into a roomy buffer; returns the text. */
static const char *esc(const char *s)
{
    static char buf[512];
    jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    jsonw_esc(&w, s);
    assert_true(jsonw_finish(&w) > 0 || s[0] == '\0');
    return buf;
}

static void test_plain_passes(void **state)
{
    (void)state;
    assert_string_equal(esc(""), "");
    assert_string_equal(esc("abc-01_.x/+ #"), "abc-01_.x/+ #");
    assert_string_equal(esc("\x7f~"), "\x7f~"); /* DEL is not a control char for JSON */
}

static void test_quotes_and_backslash(void **state)
{
    (void)state;
    assert_string_equal(esc("a\"b"), "a\\\"b");
    assert_string_equal(esc("\\"), "\\\\");
    assert_string_equal(esc("\"\\\""), "\\\"\\\\\\\"");
    assert_string_equal(esc("/"), "/"); /* the solidus needs no escape */
}

static void test_control_chars(void **state)
{
    (void)state;
    assert_string_equal(esc("\x01"), "\\u0001");
    assert_string_equal(esc("a\nb\tc\r"), "a\\u000ab\\u0009c\\u000d");
    assert_string_equal(esc("\x1f\x1b"), "\\u001f\\u001b");
    assert_string_equal(esc(" "), " ");
}

static void test_utf8_passes(void **state)
{
    (void)state;
    /* °C, é, a 4-byte emoji, and a stray continuation byte: bytes >= 0x80
     * are the caller's business and pass unchanged. */
    assert_string_equal(esc("37\xc2\xb0" "C caf\xc3\xa9 \xf0\x9f\x92\x93 \x80"),
                        "37\xc2\xb0" "C caf\xc3\xa9 \xf0\x9f\x92\x93 \x80");
}

static void collect(void *ctx, const char *p, size_t n)
{
    assert_true(n > 0);
    strncat(ctx, p, n);
}

static void test_sink_pieces(void **state)
{
    (void)state;
    char out[64] = "";
    json_escape("ab\"cd", collect, out);
    assert_string_equal(out, "ab\\\"cd");
    json_escape(NULL, collect, out); /* nothing written */
    assert_string_equal(out, "ab\\\"cd");
}

static void test_fixed_buffer_overflow(void **state)
{
    (void)state;
    char buf[8];
    jsonw w;
    /* "a\"b" quoted and escaped is 6 bytes + NUL: fits 7 exactly. */
    jsonw_init(&w, buf, 7);
    jsonw_str(&w, "a\"b");
    assert_int_equal(jsonw_finish(&w), 6);
    assert_string_equal(buf, "\"a\\\"b\"");
    /* One byte more does not fit: poisoned, never a truncated string. */
    memset(buf, 'x', sizeof buf);
    jsonw_init(&w, buf, 7);
    jsonw_str(&w, "a\"bc");
    assert_int_equal(jsonw_finish(&w), 0);
    assert_string_equal(buf, "");
    /* An escape that would straddle the end poisons too. */
    jsonw_init(&w, buf, 7);
    jsonw_esc(&w, "ab\x01");
    assert_int_equal(jsonw_finish(&w), 0);
    /* Appends after an overflow stay ignored. */
    JSONW_LIT(&w, "z");
    assert_int_equal(jsonw_finish(&w), 0);
    assert_string_equal(buf, "");
    /* A zero-sized buffer is poisoned from the start. */
    jsonw_init(&w, buf, 0);
    JSONW_LIT(&w, "");
    assert_int_equal(jsonw_finish(&w), 0);
}

static void test_members(void **state)
{
    (void)state;
    char buf[128];
    jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    JSONW_LIT(&w, "{");
    jsonw_double(&w, "d", 36.6);
    jsonw_int(&w, "i", -42);
    jsonw_bool(&w, "t", 1);
    jsonw_bool(&w, "f", 0);
    jsonw_double(&w, "n", NAN);
    jsonw_key(&w, "s");
    jsonw_str(&w, "x\ny");
    JSONW_LIT(&w, "}");
    size_t n = jsonw_finish(&w);
    assert_int_equal(n, strlen(buf));
    assert_string_equal(buf, "{\"d\":36.6,\"i\":-42,\"t\":true,\"f\":false,\"n\":null,"
                             "\"s\":\"x\\u000ay\"}");
}

static void test_sbuf_uses_same_rules(void **state)
{
    (void)state;
    const char *in = "q\"b\\c\x02 \xc3\xa9";
    sbuf b;
    sbuf_init(&b, 0);
    sbuf_add_json_str(&b, in);
    assert_true(sbuf_ok(&b));
    char expect[128];
    jsonw w;
    jsonw_init(&w, expect, sizeof expect);
    jsonw_str(&w, in);
    assert_true(jsonw_finish(&w) > 0);
    assert_string_equal(sbuf_data(&b), expect);
    assert_string_equal(sbuf_data(&b), "\"q\\\"b\\\\c\\u0002 \xc3\xa9\"");
    sbuf_reset(&b);
    sbuf_add_json_str(&b, "");
    assert_string_equal(sbuf_data(&b), "\"\"");
    sbuf_free(&b);
}

/* jsonw_fmt_double must give the very bytes snprintf("%.10g") gives, on its
 * fixed-point path (values with <= 3 decimals) and off it. */
static void expect_same_as_printf(double v)
{
    char got[JSONW_DOUBLE_MAX], want[64];
    size_t n = jsonw_fmt_double(v, got, sizeof got);
    snprintf(want, sizeof want, "%.10g", v);
    if (strcmp(got, want) != 0)
        fail_msg("%.17g: got \"%s\", %%.10g gives \"%s\"", v, got, want);
    assert_int_equal(n, strlen(want));
}

static void test_double_matches_printf(void **state)
{
    (void)state;
    static const double edge[] = {0.0, -0.0, 1.0, -1.0, 0.001, -0.001, 0.1, 0.5, 0.999, 1e-4, 1e-5,
                                  36.6, 98.0, 99.9, 3.7, 12.345, -40.125, 9999999.999, 9999999.9995,
                                  -9999999.999, 1e7, -1e7, 123456789.0, 1e10, 1e15, 1e300, 5e-324,
                                  0.1 + 0.2, 1.0 / 3.0, 2.675, 1.0005, 4503599627370496.5,
                                  1234567.891, 0.125, 0.0625, 12345678.125, -98765432.5};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        expect_same_as_printf(edge[i]);
    /* Every sensor-like value: 0.000 .. 200.000 step 0.001, and negatives. */
    for (int i = -20000; i <= 200000; i++) {
        expect_same_as_printf(i / 1000.0);
        expect_same_as_printf(i / 100.0);
        expect_same_as_printf(i / 10.0);
    }
    /* Arbitrary doubles (an LCG, reproducible): mostly the slow path. */
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 200000; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        double v = (double)(int64_t)(x >> 11) / (double)(1u << (x & 31));
        expect_same_as_printf(v);
        expect_same_as_printf(v / 1e9);
        expect_same_as_printf(nextafter(i / 1000.0, 1e9)); /* just off a 3-decimal value */
    }
}

static void test_double_member(void **state)
{
    (void)state;
    char buf[128];
    jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    JSONW_LIT(&w, "{");
    jsonw_double(&w, "a", 36.25);
    jsonw_double(&w, "b", -0.5);
    jsonw_double(&w, "c", 1.0 / 3.0);
    jsonw_double(&w, "d", INFINITY);
    JSONW_LIT(&w, "}");
    assert_true(jsonw_finish(&w) > 0);
    assert_string_equal(buf, "{\"a\":36.25,\"b\":-0.5,\"c\":0.3333333333,\"d\":null}");
    char small[8];
    assert_int_equal(jsonw_fmt_double(1.5, small, sizeof small), 0); /* cap < JSONW_DOUBLE_MAX */
}

/* jsonw_fmt_i64 prints what "%" PRId64 prints, over the whole range. */
static void test_i64_matches_printf(void **state)
{
    (void)state;
    const int64_t edge[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1,
                            1795794000000, -1795794000000};
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < 200000; i++) {
        int64_t v;
        if (i < sizeof edge / sizeof *edge)
            v = edge[i];
        else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v = (int64_t)(x >> (i % 64)) * (i % 2 ? -1 : 1);
        }
        char want[32], tmp[JSONW_I64_MAX];
        int n = snprintf(want, sizeof want, "%" PRId64, v);
        const char *p = jsonw_fmt_i64(v, tmp);
        assert_int_equal((size_t)(tmp + sizeof tmp - p), (size_t)n);
        assert_memory_equal(p, want, (size_t)n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_passes),
        cmocka_unit_test(test_quotes_and_backslash),
        cmocka_unit_test(test_control_chars),
        cmocka_unit_test(test_utf8_passes),
        cmocka_unit_test(test_sink_pieces),
        cmocka_unit_test(test_fixed_buffer_overflow),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_sbuf_uses_same_rules),
        cmocka_unit_test(test_double_matches_printf),
        cmocka_unit_test(test_double_member),
        cmocka_unit_test(test_i64_matches_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
