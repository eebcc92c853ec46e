/* Tests for bench/bench_hist.c: bucket bounds and resolution, midpoints,
 * percentiles of known distributions, the empty histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "bench_hist.h"

static void test_bucket_exact_below_32(void **state)
{
    (void)state;
    for (uint64_t us = 0; us < 32; us++) {
        assert_int_equal(bench_hist_bucket(us), (int)us);
        assert_true(bench_hist_value((int)us) == (double)us);
    }
    assert_int_equal(bench_hist_bucket(32), 32);
    assert_int_equal(bench_hist_bucket(33), 33);
    assert_int_equal(bench_hist_bucket(64), 64);
    assert_int_equal(bench_hist_bucket(65), 64); /* 2 µs wide from 64 on */
}

static void test_bucket_monotone_and_close(void **state)
{
    (void)state;
    int prev = -1;
    for (uint64_t us = 0; us < 1u << 22; us += 1 + us / 64) {
        int b = bench_hist_bucket(us);
        assert_true(b >= prev);
        assert_true(b < BENCH_HIST_BUCKETS);
        prev = b;
        /* the midpoint reported is within ~3% (half a sub-bucket) of the value */
        double v = bench_hist_value(b);
        assert_true(fabs(v - (double)us) <= 0.5 + (double)us / 32);
    }
    /* the whole uint64_t range fits, nothing wraps */
    assert_true(bench_hist_bucket(UINT64_MAX) < BENCH_HIST_BUCKETS);
    assert_true(bench_hist_bucket(UINT64_MAX) > bench_hist_bucket(1ull << 40));
}

static void test_percentiles(void **state)
{
    (void)state;
    static bench_hist h;
    memset(&h, 0, sizeof h);
    assert_true(bench_hist_pct(&h, 0.5) == -1);
    for (uint64_t us = 1; us <= 30; us++)
        h.b[bench_hist_bucket(us)]++;
    assert_true(bench_hist_pct(&h, 0.5) == 15);
    assert_true(bench_hist_pct(&h, 1.0) == 30);
    assert_true(bench_hist_pct(&h, 0.0) == 1); /* at least one sample */
    h.b[bench_hist_bucket(10000)] += 1;        /* one outlier at 10 ms */
    assert_true(bench_hist_pct(&h, 0.5) == 16);
    assert_true(fabs(bench_hist_pct(&h, 1.0) - 10000) < 10000 / 32.0);

    static bench_hist sum;
    memset(&sum, 0, sizeof sum);
    bench_hist_add(&sum, &h);
    bench_hist_add(&sum, &h);
    assert_int_equal(sum.b[bench_hist_bucket(7)], 2);
    assert_true(bench_hist_pct(&sum, 0.5) == bench_hist_pct(&h, 0.5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_exact_below_32),
        cmocka_unit_test(test_bucket_monotone_and_close),
        cmocka_unit_test(test_percentiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
