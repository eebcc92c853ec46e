/* cmocka_shim — the runner and assertions behind tests/mcu/cmocka/cmocka.h
 * (the MCU shim; see the header for what is supported and why). */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cmocka.h"

enum cmocka__outcome { CMOCKA__PASS = 0, CMOCKA__FAIL = 1, CMOCKA__SKIP = 2 };

static jmp_buf cmocka__jump;
static int cmocka__in_test; /* a jump target is armed */

static void cmocka__leave(enum cmocka__outcome o) __attribute__((noreturn));
static void cmocka__leave(enum cmocka__outcome o)
{
    if (cmocka__in_test)
        longjmp(cmocka__jump, (int)o);
    /* An assertion outside any test (group fixture): nothing to unwind to. */
    printf("[  ERROR   ] assertion outside a test\n");
    exit(1);
}

void _cmocka_fail(const char *file, int line)
{
    printf("[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
    cmocka__leave(CMOCKA__FAIL);
}

void _cmocka_skip(const char *file, int line)
{
    (void)file;
    (void)line;
    cmocka__leave(CMOCKA__SKIP);
}

void _cmocka_fail_msg(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[   ERROR  ] --- ");
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
    cmocka__leave(CMOCKA__FAIL);
}

static void cmocka__failed_at(const char *file, int line)
{
    printf("[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
    cmocka__leave(CMOCKA__FAIL);
}

void _cmocka_assert_true(LargestIntegralType v, const char *expr, const char *file, int line)
{
    if (v)
        return;
    printf("[   ERROR  ] --- %s\n", expr);
    cmocka__failed_at(file, line);
}

void _cmocka_assert_int(LargestIntegralType a, LargestIntegralType b, int want_equal,
                        const char *file, int line)
{
    if ((a == b) == !!want_equal)
        return;
    printf("[   ERROR  ] --- %jd (%#jx) %s %jd (%#jx)\n", (intmax_t)a, a,
           want_equal ? "!=" : "==", (intmax_t)b, b);
    cmocka__failed_at(file, line);
}

void _cmocka_assert_range(LargestIntegralType v, LargestIntegralType lo,
                          LargestIntegralType hi, int want_in, const char *file, int line)
{
    int in = v >= lo && v <= hi;
    if (in == !!want_in)
        return;
    printf("[   ERROR  ] --- %ju is %s range [%ju, %ju]\n", v, want_in ? "not within" : "within",
           lo, hi);
    cmocka__failed_at(file, line);
}

/* cmocka 1.1's rule: close within epsilon, or within FLT_EPSILON relative. */
void _cmocka_assert_float(float a, float b, float eps, int want_equal, const char *file,
                          int line)
{
    float d = fabsf(a - b);
    float big = fabsf(a) > fabsf(b) ? fabsf(a) : fabsf(b);
    int eq = d <= eps || d <= big * FLT_EPSILON;
    if (eq == !!want_equal)
        return;
    printf("[   ERROR  ] --- %f %s %f (epsilon %f)\n", (double)a, want_equal ? "!=" : "==",
           (double)b, (double)eps);
    cmocka__failed_at(file, line);
}

void _cmocka_assert_double(double a, double b, double eps, int want_equal, const char *file,
                           int line)
{
    double d = fabs(a - b);
    double big = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    int eq = d <= eps || d <= big * DBL_EPSILON;
    if (eq == !!want_equal)
        return;
    printf("[   ERROR  ] --- %f %s %f (epsilon %f)\n", a, want_equal ? "!=" : "==", b, eps);
    cmocka__failed_at(file, line);
}

void _cmocka_assert_string(const char *a, const char *b, int want_equal, const char *file,
                           int line)
{
    int eq = (a == b) || (a && b && strcmp(a, b) == 0);
    if (eq == !!want_equal)
        return;
    printf("[   ERROR  ] --- \"%s\" %s \"%s\"\n", a ? a : "(null)", want_equal ? "!=" : "==",
           b ? b : "(null)");
    cmocka__failed_at(file, line);
}

void _cmocka_assert_memory(const void *a, const void *b, size_t n, int want_equal,
                           const char *file, int line)
{
    const unsigned char *x = a, *y = b;
    size_t diffs = 0, first = n;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            if (first == n)
                first = i;
            diffs++;
        }
    }
    if ((diffs == 0) == !!want_equal)
        return;
    if (want_equal)
        printf("[   ERROR  ] --- %zu of %zu bytes differ, first at %zu: 0x%02x != 0x%02x\n",
               diffs, n, first, x[first], y[first]);
    else
        printf("[   ERROR  ] --- %zu bytes are equal\n", n);
    cmocka__failed_at(file, line);
}

void _cmocka_assert_return_code(intmax_t rc, const char *expr, const char *file, int line)
{
    if (rc >= 0)
        return;
    printf("[   ERROR  ] --- %s < 0 (%jd)\n", expr, rc);
    cmocka__failed_at(file, line);
}

/* Runs one fixture or test body under the jump target; returns its outcome. */
static enum cmocka__outcome cmocka__guard_fixture(CMFixtureFunction f, void **state)
{
    volatile enum cmocka__outcome o = CMOCKA__PASS;
    cmocka__in_test = 1;
    int j = setjmp(cmocka__jump);
    if (j == 0)
        o = f(state) == 0 ? CMOCKA__PASS : CMOCKA__FAIL;
    else
        o = (enum cmocka__outcome)j;
    cmocka__in_test = 0;
    return o;
}

static enum cmocka__outcome cmocka__guard_test(CMUnitTestFunction f, void **state)
{
    volatile enum cmocka__outcome o = CMOCKA__PASS;
    cmocka__in_test = 1;
    int j = setjmp(cmocka__jump);
    if (j == 0)
        f(state);
    else
        o = (enum cmocka__outcome)j;
    cmocka__in_test = 0;
    return o;
}

int _cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests,
                            size_t count, CMFixtureFunction group_setup,
                            CMFixtureFunction group_teardown)
{
    void *group_state = NULL;
    size_t passed = 0, failed = 0, skipped = 0;
    const char *failed_names[64];
    size_t n_failed_names = 0;

    printf("[==========] %s: Running %zu test(s).\n", group_name, count);
    if (group_setup && cmocka__guard_fixture(group_setup, &group_state) != CMOCKA__PASS) {
        printf("[  ERROR   ] %s: group setup failed\n", group_name);
        return (int)count;
    }
    for (size_t i = 0; i < count; i++) {
        const struct CMUnitTest *t = &tests[i];
        void *state = t->initial_state ? t->initial_state : group_state;
        printf("[ RUN      ] %s\n", t->name);
        enum cmocka__outcome o = CMOCKA__PASS;
        if (t->setup_func)
            o = cmocka__guard_fixture(t->setup_func, &state);
        if (o == CMOCKA__PASS)
            o = cmocka__guard_test(t->test_func, &state);
        if (t->teardown_func) {
            enum cmocka__outcome td = cmocka__guard_fixture(t->teardown_func, &state);
            if (o == CMOCKA__PASS && td != CMOCKA__PASS)
                o = CMOCKA__FAIL;
        }
        switch (o) {
        case CMOCKA__PASS:
            passed++;
            printf("[       OK ] %s\n", t->name);
            break;
        case CMOCKA__SKIP:
            skipped++;
            printf("[  SKIPPED ] %s\n", t->name);
            break;
        case CMOCKA__FAIL:
            failed++;
            if (n_failed_names < sizeof(failed_names) / sizeof(failed_names[0]))
                failed_names[n_failed_names++] = t->name;
            printf("[  FAILED  ] %s\n", t->name);
            break;
        }
    }
    if (group_teardown && cmocka__guard_fixture(group_teardown, &group_state) != CMOCKA__PASS) {
        printf("[  ERROR   ] %s: group teardown failed\n", group_name);
        failed++;
    }
    printf("[==========] %s: %zu test(s) run.\n", group_name, count);
    printf("[  PASSED  ] %zu test(s).\n", passed);
    if (skipped)
        printf("[  SKIPPED ] %zu test(s).\n", skipped);
    if (failed) {
        printf("[  FAILED  ] %s: %zu test(s), listed below:\n", group_name, failed);
        for (size_t i = 0; i < n_failed_names; i++)
            printf("[  FAILED  ] %s\n", failed_names[i]);
    }
    return (int)failed;
}
