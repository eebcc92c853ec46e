/* Unit tests for server/downsample.c: widths, bucket bounds, statistics,
 * rows outside the range, degenerate and huge ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "downsample.h"

static const double V0[DS_CHANNELS] = {0, 0, 0, 0};

static void test_width(void **state)
{
    (void)state;
    assert_int_equal(downsample_width(0, 0, 1), 1);
    assert_int_equal(downsample_width(0, 0, 1000), 1);
    assert_int_equal(downsample_width(0, 9, 10), 1);
    assert_int_equal(downsample_width(0, 9, 3), 4);  /* ceil(10/3) */
    assert_int_equal(downsample_width(0, 10, 10), 2); /* ceil(11/10) */
    assert_int_equal(downsample_width(0, 3599999, 1000), 3600);
    assert_int_equal(downsample_width(0, 86399999, 1000), 86400);
    assert_int_equal(downsample_width(-10, 9, 4), 5);
    assert_int_equal(downsample_width(0, 9, 1), 10);
    assert_int_equal(downsample_width(5, 4, 10), -1);
    assert_int_equal(downsample_width(0, 10, 0), -1);
    /* spans that overflow int64_t arithmetic */
    assert_int_equal(downsample_width(INT64_MIN, INT64_MAX, 1000),
                     (int64_t)(UINT64_MAX / 1000 + 1));
    assert_int_equal(downsample_width(INT64_MIN, INT64_MAX, 3), (int64_t)(UINT64_MAX / 3 + 1));
    assert_int_equal(downsample_width(1, INT64_MAX, 1), INT64_MAX);
    assert_int_equal(downsample_width(-1, INT64_MAX, 2), INT64_MAX / 2 + 2); /* ceil((2^63+1)/2) */
    /* the width would not fit int64_t */
    assert_int_equal(downsample_width(INT64_MIN, INT64_MAX, 1), -1);
    assert_int_equal(downsample_width(INT64_MIN, INT64_MAX, 2), -1);
    assert_int_equal(downsample_width(-1, INT64_MAX, 1), -1);
    assert_int_equal(downsample_width(0, INT64_MAX, 1), -1); /* width 2^63 */
    assert_int_equal(downsample_width(INT64_MAX, INT64_MAX, 1), 1);
    assert_int_equal(downsample_width(INT64_MIN, INT64_MIN, SIZE_MAX), 1);
}

/* Bucket count never exceeds max_points, covers the range and every
 * t_start is from + i * width. */
static void check_layout(int64_t from, int64_t to, size_t max_points)
{
    size_t cap = max_points < 10000 ? max_points : 10000;
    downsample_bucket *st = calloc(cap, sizeof *st);
    assert_non_null(st);
    downsample ds;
    assert_int_equal(downsample_init(&ds, from, to, max_points, st, cap), 0);
    assert_true(ds.nbuckets >= 1);
    assert_true(ds.nbuckets <= max_points);
    assert_int_equal(ds.width, downsample_width(from, to, max_points));
    assert_int_equal(ds.b[0].t_start, from);
    /* the last bucket contains `to`, i.e. the range is covered */
    uint64_t last = (uint64_t)ds.b[ds.nbuckets - 1].t_start;
    assert_true((uint64_t)to - last < (uint64_t)ds.width);
    for (size_t i = 1; i < ds.nbuckets; i++)
        assert_true((uint64_t)ds.b[i].t_start - (uint64_t)ds.b[i - 1].t_start ==
                    (uint64_t)ds.width);
    free(st);
}

static void test_layout(void **state)
{
    (void)state;
    check_layout(0, 0, 1);
    check_layout(0, 0, 1000);
    check_layout(0, 9, 10);
    check_layout(0, 10, 10);
    check_layout(0, 9, 3);
    check_layout(1795794000000LL, 1795794000000LL + 3600000 - 1, 1000);
    check_layout(1795794000000LL, 1795794000000LL + 86400000, 1000);
    check_layout(INT64_MIN, INT64_MAX, 10000);
    check_layout(INT64_MIN, INT64_MAX, 3);
    check_layout(INT64_MIN, 0, 7);
    check_layout(1, INT64_MAX, 1);
    check_layout(INT64_MAX - 5, INT64_MAX, 4);
    /* a sweep of small ranges and point counts */
    for (int64_t span = 1; span <= 60; span++)
        for (size_t mp = 1; mp <= 25; mp++)
            check_layout(-17, -17 + span - 1, mp);
}

static void test_init_errors(void **state)
{
    (void)state;
    downsample_bucket st[4];
    downsample ds;
    assert_int_equal(downsample_init(&ds, 10, 9, 4, st, 4), -1);
    assert_int_equal(downsample_init(&ds, 0, 9, 0, st, 4), -1);
    assert_int_equal(downsample_init(NULL, 0, 9, 4, st, 4), -1);
    assert_int_equal(downsample_init(&ds, 0, 9, 4, NULL, 4), -1);
    assert_int_equal(downsample_init(&ds, 0, 9, 4, st, 2), -1);        /* cap too small */
    assert_int_equal(downsample_init(&ds, 0, 9, 10000, st, 4), -1);    /* 10 buckets */
    assert_int_equal(downsample_init(&ds, 0, 3, 10000, st, 4), 0);     /* 4 buckets fit */
    assert_int_equal(ds.nbuckets, 4);
    assert_int_equal(downsample_init(&ds, INT64_MIN, INT64_MAX, 1, st, 4), -1);
}

static void test_stats(void **state)
{
    (void)state;
    downsample_bucket st[10];
    downsample ds;
    assert_int_equal(downsample_init(&ds, 1000, 1999, 10, st, 10), 0); /* width 100 */
    assert_int_equal(ds.width, 100);
    assert_int_equal(ds.nbuckets, 10);

    double a[DS_CHANNELS] = {36.0, 24.0, 60.0, 97.0};
    double b[DS_CHANNELS] = {37.0, 25.0, 80.0, 99.0};
    double c[DS_CHANNELS] = {36.5, 0, 70.0, 0};
    downsample_add(&ds, 1000, a, 0xF);
    downsample_add(&ds, 1099, b, 0xF);
    downsample_add(&ds, 1050, c, (1u << DS_OBJECT_TEMP) | (1u << DS_HEART_RATE));
    downsample_add(&ds, 1999, a, 1u << DS_SPO2);
    downsample_add(&ds, 1100, NULL, 0); /* a row with no values still counts */

    const downsample_bucket *b0 = &ds.b[0];
    assert_int_equal(b0->t_start, 1000);
    assert_int_equal(b0->count, 3);
    assert_int_equal(b0->ch[DS_OBJECT_TEMP].n, 3);
    assert_true(b0->ch[DS_OBJECT_TEMP].min == 36.0);
    assert_true(b0->ch[DS_OBJECT_TEMP].max == 37.0);
    assert_true(b0->ch[DS_OBJECT_TEMP].sum == 109.5);
    assert_int_equal(b0->ch[DS_AMBIENT_TEMP].n, 2);
    assert_true(b0->ch[DS_AMBIENT_TEMP].min == 24.0);
    assert_true(b0->ch[DS_AMBIENT_TEMP].max == 25.0);
    assert_int_equal(b0->ch[DS_HEART_RATE].n, 3);
    assert_true(b0->ch[DS_HEART_RATE].sum / b0->ch[DS_HEART_RATE].n == 70.0);
    assert_true(b0->ch[DS_HEART_RATE].min == 60.0);
    assert_true(b0->ch[DS_HEART_RATE].max == 80.0);
    assert_int_equal(b0->ch[DS_SPO2].n, 2);
    assert_true(b0->ch[DS_SPO2].sum / 2 == 98.0);

    assert_int_equal(ds.b[1].t_start, 1100);
    assert_int_equal(ds.b[1].count, 1);
    for (int k = 0; k < DS_CHANNELS; k++)
        assert_int_equal(ds.b[1].ch[k].n, 0);

    const downsample_bucket *b9 = &ds.b[9];
    assert_int_equal(b9->t_start, 1900);
    assert_int_equal(b9->count, 1);
    assert_int_equal(b9->ch[DS_SPO2].n, 1);
    assert_true(b9->ch[DS_SPO2].min == 97.0 && b9->ch[DS_SPO2].max == 97.0);
    assert_int_equal(b9->ch[DS_HEART_RATE].n, 0);

    for (size_t i = 2; i < 9; i++)
        assert_int_equal(ds.b[i].count, 0);
}

static void test_outside_ignored(void **state)
{
    (void)state;
    downsample_bucket st[5];
    downsample ds;
    assert_int_equal(downsample_init(&ds, 100, 149, 5, st, 5), 0);
    double v[DS_CHANNELS] = {1, 2, 3, 4};
    downsample_add(&ds, 99, v, 0xF);
    downsample_add(&ds, 150, v, 0xF);
    downsample_add(&ds, INT64_MIN, v, 0xF);
    downsample_add(&ds, INT64_MAX, v, 0xF);
    for (size_t i = 0; i < ds.nbuckets; i++)
        assert_int_equal(ds.b[i].count, 0);
    downsample_add(&ds, 100, v, 0xF);
    downsample_add(&ds, 149, v, 0xF);
    assert_int_equal(ds.b[0].count, 1);
    assert_int_equal(ds.b[4].count, 1);
    /* non-finite values are not counted, mask bits past the channels ignored */
    double bad[DS_CHANNELS] = {NAN, INFINITY, -INFINITY, 5};
    downsample_add(&ds, 120, bad, 0xFFFFFFFFu);
    assert_int_equal(ds.b[2].count, 1);
    assert_int_equal(ds.b[2].ch[0].n, 0);
    assert_int_equal(ds.b[2].ch[1].n, 0);
    assert_int_equal(ds.b[2].ch[2].n, 0);
    assert_int_equal(ds.b[2].ch[3].n, 1);
    downsample_add(NULL, 120, v, 0xF); /* no crash */
}

static void test_single_point(void **state)
{
    (void)state;
    downsample_bucket st[1];
    downsample ds;
    /* from == to */
    assert_int_equal(downsample_init(&ds, 42, 42, 1000, st, 1), 0);
    assert_int_equal(ds.nbuckets, 1);
    assert_int_equal(ds.width, 1);
    double v[DS_CHANNELS] = {36.6, 24.1, 72, 98};
    downsample_add(&ds, 41, v, 0xF);
    downsample_add(&ds, 42, v, 0xF);
    downsample_add(&ds, 43, v, 0xF);
    assert_int_equal(st[0].count, 1);
    assert_true(st[0].ch[DS_HEART_RATE].sum == 72);

    /* max_points = 1: everything in one bucket */
    assert_int_equal(downsample_init(&ds, 0, 999999, 1, st, 1), 0);
    assert_int_equal(ds.nbuckets, 1);
    assert_int_equal(ds.width, 1000000);
    for (int64_t t = 0; t < 1000000; t += 997) {
        double w[DS_CHANNELS] = {0, 0, (double)(t % 200), 0};
        downsample_add(&ds, t, w, 1u << DS_HEART_RATE);
    }
    downsample_add(&ds, 999999, V0, 0);
    assert_int_equal(st[0].count, 1000000 / 997 + 1 + 1);
    assert_int_equal(st[0].ch[DS_HEART_RATE].n, 1000000 / 997 + 1);
    assert_true(st[0].ch[DS_HEART_RATE].min == 0);
    assert_true(st[0].ch[DS_HEART_RATE].max == 199);
}

static void test_huge_range(void **state)
{
    (void)state;
    enum { MP = 1000 };
    downsample_bucket *st = calloc(MP, sizeof *st);
    assert_non_null(st);
    downsample ds;
    assert_int_equal(downsample_init(&ds, INT64_MIN, INT64_MAX, MP, st, MP), 0);
    assert_true(ds.nbuckets <= MP);
    double v[DS_CHANNELS] = {1, 2, 3, 4};
    downsample_add(&ds, INT64_MIN, v, 0xF);
    downsample_add(&ds, INT64_MAX, v, 0xF);
    downsample_add(&ds, 0, v, 0xF);
    assert_int_equal(ds.b[0].count, 1);
    assert_int_equal(ds.b[ds.nbuckets - 1].count, 1);
    uint64_t mid = (uint64_t)0 - (uint64_t)INT64_MIN;
    size_t mid_idx = (size_t)(mid / (uint64_t)ds.width);
    assert_int_equal(ds.b[mid_idx].count, 1);
    uint32_t total = 0;
    for (size_t i = 0; i < ds.nbuckets; i++)
        total += ds.b[i].count;
    assert_int_equal(total, 3);

    /* a realistic year at 1 Hz, 10000 points */
    free(st);
    st = calloc(10000, sizeof *st);
    assert_non_null(st);
    int64_t from = 1795794000000LL, to = from + 365LL * 86400000 - 1;
    assert_int_equal(downsample_init(&ds, from, to, 10000, st, 10000), 0);
    assert_true(ds.nbuckets <= 10000);
    downsample_add(&ds, to, v, 0xF);
    assert_int_equal(ds.b[ds.nbuckets - 1].count, 1);
    free(st);
}

/* Randomised check against a brute-force model. */
static void test_random_model(void **state)
{
    (void)state;
    srand(12345);
    for (int round = 0; round < 200; round++) {
        int64_t from = (int64_t)(rand() % 100000) - 50000;
        int64_t span = 1 + rand() % 5000;
        int64_t to = from + span - 1;
        size_t mp = 1 + (size_t)(rand() % 300);
        downsample_bucket st[300];
        downsample ds;
        assert_int_equal(downsample_init(&ds, from, to, mp, st, 300), 0);
        assert_true(ds.nbuckets <= mp);
        uint32_t in = 0;
        for (int k = 0; k < 500; k++) {
            int64_t t = from - 100 + rand() % (span + 200);
            double v[DS_CHANNELS] = {rand() % 100, 0, 0, 0};
            downsample_add(&ds, t, v, 1);
            if (t >= from && t <= to) {
                in++;
                size_t idx = (size_t)((t - from) / ds.width);
                assert_true(t >= st[idx].t_start && t < st[idx].t_start + ds.width);
            }
        }
        uint32_t total = 0;
        for (size_t i = 0; i < ds.nbuckets; i++) {
            total += st[i].count;
            assert_int_equal(st[i].ch[0].n, st[i].count);
            if (st[i].count > 0)
                assert_true(st[i].ch[0].min <= st[i].ch[0].sum / st[i].count &&
                            st[i].ch[0].sum / st[i].count <= st[i].ch[0].max);
        }
        assert_int_equal(total, in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_width),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_outside_ignored),
        cmocka_unit_test(test_single_point),
        cmocka_unit_test(test_huge_range),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
