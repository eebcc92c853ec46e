/* Unit tests for server/httparg.c: strict decimal int64 query parameters
 * and the checked arithmetic on them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "httparg.h"

static void test_int64(void **state)
{
    (void)state;
    int64_t v = 42;
    assert_int_equal(httparg_int64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(httparg_int64("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(httparg_int64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(httparg_int64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    v = 7;
    static const char *const bad[] = {"", "-", "+1", " 1", "1 ", "1x", "0x10", "1e3", "1.0",
                                      "9223372036854775808", "-9223372036854775809",
                                      "99999999999999999999", "--1", "00000000000000000001"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(httparg_int64(bad[i], INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(v, 7);
    assert_int_equal(httparg_int64("11", 0, 10, &v), -1);
    assert_int_equal(httparg_int64("-1", 0, 10, &v), -1);
    assert_int_equal(httparg_int64(NULL, 0, 10, &v), -1);
    assert_int_equal(httparg_int64("5", 10, 0, &v), -1);
    assert_int_equal(v, 7);
}

static void test_checked_arithmetic(void **state)
{
    (void)state;
    int64_t r = 3;
    /* the readings route's default window: to - 3600 * 1000 */
    assert_int_equal(httparg_sub(INT64_MIN, 3600 * 1000, &r), -1);
    assert_int_equal(r, 3);
    assert_int_equal(httparg_sub(INT64_MIN + 3600 * 1000, 3600 * 1000, &r), 0);
    assert_true(r == INT64_MIN);
    assert_int_equal(httparg_sub(0, INT64_MIN, &r), -1);
    assert_int_equal(httparg_add(INT64_MAX, 1, &r), -1);
    assert_int_equal(httparg_add(-1, 1, &r), 0);
    assert_int_equal(r, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_checked_arithmetic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
