/* Tests for device/json_scan: the grammar it accepts, the bounds (depth,
 * member count), where spans point, and the lookup and number helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "json_scan.h"

static json_scan_field F[JSON_SCAN_FIELDS];
static size_t NF;

static json_scan_status scan_n(const char *buf, size_t n)
{
    return json_scan_object(buf, n, F, JSON_SCAN_FIELDS, &NF);
}

static json_scan_status scan(const char *s)
{
    return scan_n(s, strlen(s));
}

/* Every document in docs[0..n) scans to want (and records no member). */
static void expect_all(const char *const *docs, size_t n, json_scan_status want)
{
    for (size_t i = 0; i < n; i++) {
        json_scan_status rc = scan(docs[i]);
        if (rc != want)
            fail_msg("%s: %d, want %d", docs[i], rc, want);
        assert_int_equal(NF, 0);
    }
}
#define EXPECT_ALL(docs, want) expect_all(docs, sizeof docs / sizeof docs[0], want)

static void assert_span(const json_scan_span *sp, json_scan_type type, const char *text)
{
    assert_int_equal(sp->type, type);
    assert_int_equal(sp->n, strlen(text));
    assert_memory_equal(sp->p, text, sp->n);
}

static void test_valid_object(void **state)
{
    (void)state;
    const char *doc = " \t\r\n{ \"a\" : 1 , \"s\":\"x y\",\"t\":true,\"f\":false,\"z\":null,"
                      "\"o\":{\"k\":[1,2]},\"e\":[] ,\"\":{}}\n ";
    assert_int_equal(scan(doc), JSON_SCAN_OK);
    assert_int_equal(NF, 8);
    assert_span(&F[0].key, JSON_SCAN_STR, "a");
    assert_span(&F[0].val, JSON_SCAN_NUM, "1");
    assert_span(&F[1].key, JSON_SCAN_STR, "s");
    assert_span(&F[1].val, JSON_SCAN_STR, "x y");
    assert_span(&F[2].val, JSON_SCAN_TRUE, "true");
    assert_span(&F[3].val, JSON_SCAN_FALSE, "false");
    assert_span(&F[4].val, JSON_SCAN_NULL, "null");
    assert_span(&F[5].val, JSON_SCAN_OBJ, "{\"k\":[1,2]}");
    assert_span(&F[6].val, JSON_SCAN_ARR, "[]");
    assert_span(&F[7].key, JSON_SCAN_STR, "");
    assert_span(&F[7].val, JSON_SCAN_OBJ, "{}");
    /* spans point into the caller's buffer, not a copy */
    assert_ptr_equal(F[0].key.p, strchr(doc, 'a'));

    assert_int_equal(scan("{}"), JSON_SCAN_OK);
    assert_int_equal(NF, 0);
    assert_int_equal(scan("{ }"), JSON_SCAN_OK);
    /* nested members are not recorded, only the top level */
    assert_int_equal(scan("{\"a\":{\"b\":1,\"c\":2}}"), JSON_SCAN_OK);
    assert_int_equal(NF, 1);
}

static void test_not_object(void **state)
{
    (void)state;
    const char *docs[] = {"", "   ", "[]", "[1]", "\"s\"", "1", "true", "null", "x", "}"};
    EXPECT_ALL(docs, JSON_SCAN_ENOTOBJECT);
    assert_int_equal(scan_n(NULL, 0), JSON_SCAN_ENOTOBJECT);
}

static void test_bad_args(void **state)
{
    (void)state;
    size_t nf = 99;
    assert_int_equal(json_scan_object(NULL, 2, F, JSON_SCAN_FIELDS, &nf), JSON_SCAN_EINVAL);
    assert_int_equal(nf, 0);
    assert_int_equal(json_scan_object("{}", 2, NULL, 1, &nf), JSON_SCAN_EINVAL);
    assert_int_equal(json_scan_object("{}", 2, F, JSON_SCAN_FIELDS, NULL), JSON_SCAN_EINVAL);
    /* no fields array at all: only an empty object fits */
    assert_int_equal(json_scan_object("{}", 2, NULL, 0, &nf), JSON_SCAN_OK);
    assert_int_equal(json_scan_object("{\"a\":1}", 7, NULL, 0, &nf), JSON_SCAN_EFIELDS);
}

/* {"a": + k '[' + inner + k ']' + } */
static size_t nest(char *buf, size_t cap, int k, const char *open, const char *inner,
                   const char *close)
{
    size_t n = (size_t)snprintf(buf, cap, "{\"a\":");
    for (int i = 0; i < k; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s", open);
    n += (size_t)snprintf(buf + n, cap - n, "%s", inner);
    for (int i = 0; i < k; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s", close);
    n += (size_t)snprintf(buf + n, cap - n, "}");
    assert_true(n < cap);
    return n;
}

static void test_depth_bound(void **state)
{
    (void)state;
    char buf[512];
    /* The top object is level 0, so k arrays put the scalar at level k + 1. */
    assert_int_equal(scan_n(buf, nest(buf, sizeof buf, JSON_SCAN_DEPTH - 1, "[", "1", "]")),
                     JSON_SCAN_OK);
    assert_int_equal(scan_n(buf, nest(buf, sizeof buf, JSON_SCAN_DEPTH, "[", "1", "]")),
                     JSON_SCAN_EDEPTH);
    assert_int_equal(NF, 0);
    /* An empty container at the deepest level is fine, one more is not. */
    assert_int_equal(scan_n(buf, nest(buf, sizeof buf, JSON_SCAN_DEPTH, "[", "", "]")),
                     JSON_SCAN_OK);
    assert_int_equal(scan_n(buf, nest(buf, sizeof buf, JSON_SCAN_DEPTH + 1, "[", "", "]")),
                     JSON_SCAN_EDEPTH);
    /* Same with objects. */
    assert_int_equal(
        scan_n(buf, nest(buf, sizeof buf, JSON_SCAN_DEPTH - 1, "{\"b\":", "\"v\"", "}")),
        JSON_SCAN_OK);
    assert_int_equal(
        scan_n(buf, nest(buf, sizeof buf, JSON_SCAN_DEPTH, "{\"b\":", "\"v\"", "}")),
        JSON_SCAN_EDEPTH);
    /* Hostile nesting is refused at the bound, not by running out of stack. */
    static char deep[100000];
    memset(deep, '[', sizeof deep);
    deep[0] = '{';
    assert_int_equal(scan_n(deep, sizeof deep), JSON_SCAN_ESYNTAX); /* '[' is not a key */
    memcpy(deep, "{\"a\":", 5);
    assert_int_equal(scan_n(deep, sizeof deep), JSON_SCAN_EDEPTH);
}

static void test_field_bound(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = 0;
    buf[n++] = '{';
    for (int i = 0; i < JSON_SCAN_FIELDS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    buf[n++] = '}';
    assert_int_equal(scan_n(buf, n), JSON_SCAN_OK);
    assert_int_equal(NF, JSON_SCAN_FIELDS);
    assert_span(&F[JSON_SCAN_FIELDS - 1].key, JSON_SCAN_STR, "k23");
    n--;
    n += (size_t)snprintf(buf + n, sizeof buf - n, ",\"one\":1}");
    assert_int_equal(scan_n(buf, n), JSON_SCAN_EFIELDS);
    assert_int_equal(NF, 0);
    /* the caller's capacity is the bound, and it is never written past */
    json_scan_field two[3];
    memset(two, 0xAA, sizeof two);
    size_t nf;
    assert_int_equal(json_scan_object("{\"a\":1,\"b\":2,\"c\":3}", 19, two, 2, &nf),
                     JSON_SCAN_EFIELDS);
    unsigned char canary[sizeof two[2]];
    memset(canary, 0xAA, sizeof canary);
    assert_memory_equal(&two[2], canary, sizeof canary);
    assert_int_equal(json_scan_object("{\"a\":1,\"b\":2}", 13, two, 2, &nf), JSON_SCAN_OK);
    assert_int_equal(nf, 2);
}

static void test_strings(void **state)
{
    (void)state;
    assert_int_equal(scan("{\"k\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"}"),
                     JSON_SCAN_OK);
    /* kept escaped: the span is the raw text between the quotes */
    assert_span(&F[0].val, JSON_SCAN_STR, "a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00");
    assert_int_equal(scan("{\"k\":\"\\uABCDef\"}"), JSON_SCAN_OK);
    /* raw bytes >= 0x80 pass unchecked, a lone surrogate escape too */
    assert_int_equal(scan("{\"k\":\"\xc3\xa9\xff\x7f\"}"), JSON_SCAN_OK);
    assert_int_equal(scan("{\"k\":\"\\uD800\"}"), JSON_SCAN_OK);

    const char *bad[] = {
        "{\"k\":\"\\x\"}",    "{\"k\":\"\\u12\"}",  "{\"k\":\"\\u12G4\"}", "{\"k\":\"\\U0041\"}",
        "{\"k\":\"\\'\"}",    "{\"k\":'v'}",        "{'k':1}",            "{k:1}",
        "{\"k\":\"a\tb\"}",   "{\"k\":\"a\nb\"}",   "{\"k\":\"\\",        "{\"k\":\"\\u0041",
        "{\"k\":\"abc",       "{\"k\":\"\\u",       "{\"k\\\":1}",
    };
    EXPECT_ALL(bad, JSON_SCAN_ESYNTAX);
}

static void test_embedded_nul_and_control(void **state)
{
    (void)state;
    static const char in_str[] = "{\"k\":\"a\0b\"}";
    assert_int_equal(scan_n(in_str, sizeof in_str - 1), JSON_SCAN_ESYNTAX);
    static const char in_key[] = "{\"k\0\":1}";
    assert_int_equal(scan_n(in_key, sizeof in_key - 1), JSON_SCAN_ESYNTAX);
    static const char escaped[] = "{\"k\":\"\\\0\"}";
    assert_int_equal(scan_n(escaped, sizeof escaped - 1), JSON_SCAN_ESYNTAX);
    static const char between[] = "{\"k\":1\0}";
    assert_int_equal(scan_n(between, sizeof between - 1), JSON_SCAN_ESYNTAX);
    static const char after[] = "{\"k\":1}\0";
    assert_int_equal(scan_n(after, sizeof after - 1), JSON_SCAN_ETRAILING);
    /* the length decides, not a terminator: a prefix of a valid doc is short */
    assert_int_equal(scan_n("{\"k\":1}", 6), JSON_SCAN_ESYNTAX);
    for (unsigned c = 1; c < 0x20; c++) {
        char doc[] = "{\"k\":\"a?b\"}";
        doc[7] = (char)c;
        assert_int_equal(scan(doc), JSON_SCAN_ESYNTAX);
    }
    /* form feed and vertical tab are not JSON whitespace */
    assert_int_equal(scan("{\f}"), JSON_SCAN_ESYNTAX);
    assert_int_equal(scan("\v{}"), JSON_SCAN_ENOTOBJECT);
}

static void test_numbers(void **state)
{
    (void)state;
    const char *good[] = {"0", "-0", "7", "-12", "1234567890", "0.5", "-3.25", "1e3", "1E+3",
                          "2e-3", "-0.0e0", "10.01E10"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"n\":%s}", good[i]);
        assert_int_equal(scan(doc), JSON_SCAN_OK);
        assert_span(&F[0].val, JSON_SCAN_NUM, good[i]);
    }
    const char *bad[] = {"+1", "01", "-01", "1.", ".5", "-", "1e", "1e+", "1.e3", "0x10",
                         "1,", "--1", "NaN", "Infinity", "-Infinity", "1 2", "1_000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"n\":%s}", bad[i]);
        const char *one[] = {doc};
        EXPECT_ALL(one, JSON_SCAN_ESYNTAX);
    }
}

static void test_literals(void **state)
{
    (void)state;
    assert_int_equal(scan("{\"a\":true,\"b\":false,\"c\":null}"), JSON_SCAN_OK);
    const char *bad[] = {"{\"a\":tru}", "{\"a\":True}", "{\"a\":nul}", "{\"a\":falsey}",
                         "{\"a\":truefalse}", "{\"a\":undefined}", "{\"a\":t", "{\"a\":nullx}"};
    EXPECT_ALL(bad, JSON_SCAN_ESYNTAX);
}

static void test_truncated_and_structure(void **state)
{
    (void)state;
    const char *full = "{\"a\":[1,{\"b\":\"c\"},true],\"d\":-1.5e2}";
    size_t n = strlen(full);
    assert_int_equal(scan_n(full, n), JSON_SCAN_OK);
    /* every strict prefix is refused (the last byte is the closing brace) */
    for (size_t k = 1; k < n; k++)
        assert_int_equal(scan_n(full, k), JSON_SCAN_ESYNTAX);
    const char *bad[] = {"{,}", "{\"a\":1,}", "{\"a\":1,,\"b\":2}", "{\"a\" 1}", "{\"a\":}",
                         "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":[1 2]}", "{\"a\":{\"b\"}}",
                         "{\"a\":1]", "{\"a\":[1}}", "{\"a\"::1}", "{1:2}"};
    EXPECT_ALL(bad, JSON_SCAN_ESYNTAX);
}

static void test_trailing(void **state)
{
    (void)state;
    assert_int_equal(scan("{} \n"), JSON_SCAN_OK);
    const char *bad[] = {"{}x", "{}{}", "{} ,", "{\"a\":1}}", "{}\f", "{} []"};
    EXPECT_ALL(bad, JSON_SCAN_ETRAILING);
}

static void test_get(void **state)
{
    (void)state;
    assert_int_equal(scan("{\"a\":1,\"b\":\"x\",\"a\":2,\"p\\u0069ng\":3}"), JSON_SCAN_OK);
    json_scan_span v = {0};
    assert_int_equal(json_scan_get(F, NF, "b", &v), JSON_SCAN_OK);
    assert_span(&v, JSON_SCAN_STR, "x");
    assert_int_equal(json_scan_get(F, NF, "a", &v), JSON_SCAN_EDUPLICATE);
    assert_int_equal(json_scan_get(F, NF, "c", &v), JSON_SCAN_EABSENT);
    assert_int_equal(json_scan_get(F, NF, "", &v), JSON_SCAN_EABSENT);
    /* keys are compared raw, escapes are not decoded */
    assert_int_equal(json_scan_get(F, NF, "ping", &v), JSON_SCAN_EABSENT);
    assert_int_equal(json_scan_get(F, NF, "p\\u0069ng", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_get(F, 0, "b", &v), JSON_SCAN_EABSENT);

    assert_true(json_scan_span_is(&F[1].val, "x"));
    assert_false(json_scan_span_is(&F[1].val, "xy"));
    assert_false(json_scan_span_is(&F[1].val, ""));
}

static json_scan_status uint_of(const char *num, double lo, double hi, uint64_t *out)
{
    char doc[96];
    snprintf(doc, sizeof doc, "{\"n\":%s}", num);
    assert_int_equal(scan(doc), JSON_SCAN_OK);
    return json_scan_uint(&F[0].val, lo, hi, out);
}

static void test_uint(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(uint_of("1000", 10, 3600000, &v), JSON_SCAN_OK);
    assert_int_equal(v, 1000);
    assert_int_equal(uint_of("1e3", 10, 3600000, &v), JSON_SCAN_OK);
    assert_int_equal(v, 1000);
    assert_int_equal(uint_of("1000.0", 10, 3600000, &v), JSON_SCAN_OK);
    assert_int_equal(uint_of("10", 10, 20, &v), JSON_SCAN_OK);
    assert_int_equal(uint_of("20", 10, 20, &v), JSON_SCAN_OK);
    assert_int_equal(v, 20);
    assert_int_equal(uint_of("9007199254740992", 0, 9007199254740992.0, &v), JSON_SCAN_OK);
    assert_true(v == 9007199254740992ull);
    v = 77;
    assert_int_equal(uint_of("9", 10, 20, &v), JSON_SCAN_ERANGE);
    assert_int_equal(uint_of("21", 10, 20, &v), JSON_SCAN_ERANGE);
    assert_int_equal(uint_of("10.5", 0, 20, &v), JSON_SCAN_ERANGE);
    assert_int_equal(uint_of("-1", 0, 20, &v), JSON_SCAN_ERANGE);
    assert_int_equal(uint_of("1e400", 0, 1e300, &v), JSON_SCAN_ERANGE);
    assert_int_equal(v, 77); /* untouched on error */
    /* 40 characters is too long to be one of ours, even when it is small */
    assert_int_equal(uint_of("0.00000000000000000000000000000000000001", 0, 20, &v),
                     JSON_SCAN_ERANGE);
    assert_int_equal(uint_of("\"5\"", 0, 20, &v), JSON_SCAN_ERANGE);
    assert_int_equal(uint_of("true", 0, 20, &v), JSON_SCAN_ERANGE);
    assert_int_equal(uint_of("[5]", 0, 20, &v), JSON_SCAN_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_object),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_field_bound),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_embedded_nul_and_control),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_truncated_and_structure),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_uint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
