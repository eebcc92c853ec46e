/* cmocka.h — the MCU shim: a small cmocka-compatible test runner for the
 * device unit tests cross-built for Cortex-M4F and RV32IMC under QEMU.
 *
 * Why a shim: Debian ships cmocka only for the host, and its source is not
 * available offline here; the device tests use a small, plain part of its
 * API. This header implements that part with the same semantics and the same
 * output lines as cmocka 1.1 ("[ RUN      ]", "[  PASSED  ] N test(s).",
 * values printed on a failed assertion), so tests/device/test_*.c compile
 * unchanged for the host (real cmocka) and for the MCUs (this file, found
 * first on the MCU include path only).
 *
 * Supported: cmocka_unit_test{,_setup,_teardown,_setup_teardown,_prestate},
 * cmocka_run_group_tests{,_name} with group setup/teardown, skip(), fail(),
 * fail_msg(), print_message(), print_error(), test_malloc/calloc/realloc/
 * free (plain libc: no leak check on the MCU; the host run checks leaks),
 * assert_true/false, assert_int_{,not_}equal, assert_{,not_}in_range,
 * assert_float_{,not_}equal, assert_double_{,not_}equal, assert_ptr_{,not_}
 * equal, assert_{non_,}null, assert_string_{,not_}equal,
 * assert_memory_{,not_}equal, assert_return_code.
 * Not supported (a compile error, never a silent pass): mocks (will_return,
 * mock, expect_*, check_expected).
 *
 * A failed assertion longjmps out of the running test, like cmocka; the
 * runner returns the number of failed tests, which main returns and
 * picolibc's semihosting exit hands to QEMU as its exit status.
 * Threads: single-threaded, as the tests are. */
#ifndef VIGIL_MCU_CMOCKA_H
#define VIGIL_MCU_CMOCKA_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef uintmax_t LargestIntegralType;
#define cast_to_largest_integral_type(v) ((LargestIntegralType)(v))
#define cast_ptr_to_largest_integral_type(v) ((LargestIntegralType)(uintptr_t)(v))

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
    CMFixtureFunction setup_func;
    CMFixtureFunction teardown_func;
    void *initial_state;
};

#define cmocka_unit_test(f) {#f, f, NULL, NULL, NULL}
#define cmocka_unit_test_setup(f, s) {#f, f, s, NULL, NULL}
#define cmocka_unit_test_teardown(f, t) {#f, f, NULL, t, NULL}
#define cmocka_unit_test_setup_teardown(f, s, t) {#f, f, s, t, NULL}
#define cmocka_unit_test_prestate(f, p) {#f, f, NULL, NULL, p}
#define cmocka_unit_test_prestate_setup_teardown(f, s, t, p) {#f, f, s, t, p}

int _cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests,
                            size_t count, CMFixtureFunction group_setup,
                            CMFixtureFunction group_teardown);
#define cmocka_run_group_tests(tests, gs, gt)                                          \
    _cmocka_run_group_tests(#tests, tests, sizeof(tests) / sizeof((tests)[0]), gs, gt)
#define cmocka_run_group_tests_name(name, tests, gs, gt)                               \
    _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof((tests)[0]), gs, gt)

/* Failure and skip: print where, then leave the test (longjmp). */
void _cmocka_fail(const char *file, int line) __attribute__((noreturn));
void _cmocka_skip(const char *file, int line) __attribute__((noreturn));
void _cmocka_fail_msg(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define fail() _cmocka_fail(__FILE__, __LINE__)
#define skip() _cmocka_skip(__FILE__, __LINE__)
#define fail_msg(...) _cmocka_fail_msg(__FILE__, __LINE__, __VA_ARGS__)
#define print_message(...) printf(__VA_ARGS__)
#define print_error(...) printf(__VA_ARGS__)

void _cmocka_assert_true(LargestIntegralType v, const char *expr, const char *file, int line);
void _cmocka_assert_int(LargestIntegralType a, LargestIntegralType b, int want_equal,
                        const char *file, int line);
void _cmocka_assert_range(LargestIntegralType v, LargestIntegralType lo,
                          LargestIntegralType hi, int want_in, const char *file, int line);
void _cmocka_assert_float(float a, float b, float eps, int want_equal, const char *file,
                          int line);
void _cmocka_assert_double(double a, double b, double eps, int want_equal, const char *file,
                           int line);
void _cmocka_assert_string(const char *a, const char *b, int want_equal, const char *file,
                           int line);
void _cmocka_assert_memory(const void *a, const void *b, size_t n, int want_equal,
                           const char *file, int line);
void _cmocka_assert_return_code(intmax_t rc, const char *expr, const char *file, int line);

#define assert_true(c) _cmocka_assert_true(!!(c), #c, __FILE__, __LINE__)
#define assert_false(c) _cmocka_assert_true(!(c), "!(" #c ")", __FILE__, __LINE__)
#define assert_non_null(p) _cmocka_assert_true((p) != NULL, #p " != NULL", __FILE__, __LINE__)
#define assert_null(p) _cmocka_assert_true((p) == NULL, #p " == NULL", __FILE__, __LINE__)
#define assert_int_equal(a, b)                                                         \
    _cmocka_assert_int(cast_to_largest_integral_type(a), cast_to_largest_integral_type(b), \
                       1, __FILE__, __LINE__)
#define assert_int_not_equal(a, b)                                                     \
    _cmocka_assert_int(cast_to_largest_integral_type(a), cast_to_largest_integral_type(b), \
                       0, __FILE__, __LINE__)
#define assert_ptr_equal(a, b)                                                         \
    _cmocka_assert_int(cast_ptr_to_largest_integral_type(a),                           \
                       cast_ptr_to_largest_integral_type(b), 1, __FILE__, __LINE__)
#define assert_ptr_not_equal(a, b)                                                     \
    _cmocka_assert_int(cast_ptr_to_largest_integral_type(a),                           \
                       cast_ptr_to_largest_integral_type(b), 0, __FILE__, __LINE__)
#define assert_in_range(v, lo, hi)                                                     \
    _cmocka_assert_range(cast_to_largest_integral_type(v), cast_to_largest_integral_type(lo), \
                         cast_to_largest_integral_type(hi), 1, __FILE__, __LINE__)
#define assert_not_in_range(v, lo, hi)                                                 \
    _cmocka_assert_range(cast_to_largest_integral_type(v), cast_to_largest_integral_type(lo), \
                         cast_to_largest_integral_type(hi), 0, __FILE__, __LINE__)
/* Same conversions as cmocka 1.1: float compares in float, double in double. */
#define assert_float_equal(a, b, e)                                                    \
    _cmocka_assert_float((float)(a), (float)(b), (float)(e), 1, __FILE__, __LINE__)
#define assert_float_not_equal(a, b, e)                                                \
    _cmocka_assert_float((float)(a), (float)(b), (float)(e), 0, __FILE__, __LINE__)
#define assert_double_equal(a, b, e)                                                   \
    _cmocka_assert_double((double)(a), (double)(b), (double)(e), 1, __FILE__, __LINE__)
#define assert_double_not_equal(a, b, e)                                               \
    _cmocka_assert_double((double)(a), (double)(b), (double)(e), 0, __FILE__, __LINE__)
#define assert_string_equal(a, b)                                                      \
    _cmocka_assert_string((const char *)(a), (const char *)(b), 1, __FILE__, __LINE__)
#define assert_string_not_equal(a, b)                                                  \
    _cmocka_assert_string((const char *)(a), (const char *)(b), 0, __FILE__, __LINE__)
#define assert_memory_equal(a, b, n)                                                   \
    _cmocka_assert_memory((const void *)(a), (const void *)(b), (n), 1, __FILE__, __LINE__)
#define assert_memory_not_equal(a, b, n)                                               \
    _cmocka_assert_memory((const void *)(a), (const void *)(b), (n), 0, __FILE__, __LINE__)
#define assert_return_code(rc, err)                                                    \
    _cmocka_assert_return_code((intmax_t)(rc), #rc, __FILE__, __LINE__)

/* No leak accounting on the MCU (the host and ASan runs check leaks). */
#define test_malloc(n) malloc(n)
#define test_calloc(n, s) calloc((n), (s))
#define test_realloc(p, n) realloc((p), (n))
#define test_free(p) free(p)

#endif
