/* Unit tests for server/ivset.c: adding (new, merging overlapping and
 * adjacent intervals, bridging several), counting over ranges, removing a
 * point (ends, middle split, the last point), the capacity bound, bridging
 * a full set, extreme int64 values, and how the array grows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ivset.h"

static void expect(const ivset *s, size_t n, const int64_t *pairs)
{
    assert_int_equal(s->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s->v[i].lo, pairs[2 * i]);
        assert_int_equal(s->v[i].hi, pairs[2 * i + 1]);
    }
}

static void test_add_and_merge(void **state)
{
    (void)state;
    ivset s;
    ivset_init(&s, 100);
    assert_int_equal(ivset_add(&s, 10, 20), 11);
    assert_int_equal(ivset_add(&s, 30, 40), 11);
    assert_int_equal(ivset_add(&s, 1, 3), 3);
    expect(&s, 3, (int64_t[]){1, 3, 10, 20, 30, 40});
    /* overlap: only the new points count */
    assert_int_equal(ivset_add(&s, 15, 25), 5);
    expect(&s, 3, (int64_t[]){1, 3, 10, 25, 30, 40});
    /* adjacent on both sides: one interval */
    assert_int_equal(ivset_add(&s, 26, 29), 4);
    expect(&s, 2, (int64_t[]){1, 3, 10, 40});
    assert_int_equal(ivset_add(&s, 4, 4), 1);
    expect(&s, 2, (int64_t[]){1, 4, 10, 40});
    /* already covered */
    assert_int_equal(ivset_add(&s, 12, 18), 0);
    /* one range swallowing everything */
    assert_int_equal(ivset_add(&s, 0, 50), 51 - 4 - 31);
    expect(&s, 1, (int64_t[]){0, 50});
    assert_int_equal(ivset_add(&s, 5, 4), IVSET_EINVAL);
    ivset_free(&s);
    assert_int_equal(s.n, 0);
}

static void test_find_and_count(void **state)
{
    (void)state;
    ivset s;
    ivset_init(&s, 100);
    ivset_add(&s, 10, 20);
    ivset_add(&s, 30, 40);
    assert_null(ivset_find(&s, 9));
    assert_int_equal(ivset_find(&s, 10)->hi, 20);
    assert_null(ivset_find(&s, 25));
    assert_int_equal(ivset_find(&s, 40)->lo, 30);
    assert_null(ivset_find(&s, 41));
    assert_int_equal(ivset_lower(&s, 21), 1);
    assert_int_equal(ivset_lower(&s, 41), 2);
    assert_int_equal(ivset_count(&s, 0, 100), 22);
    assert_int_equal(ivset_count(&s, 15, 35), 6 + 6);
    assert_int_equal(ivset_count(&s, 21, 29), 0);
    assert_int_equal(ivset_count(&s, 20, 30), 2);
    ivset_free(&s);
}

static void test_remove_point(void **state)
{
    (void)state;
    ivset s;
    ivset_init(&s, 100);
    ivset_add(&s, 10, 20);
    assert_int_equal(ivset_remove_point(&s, 15), IVSET_OK); /* split */
    expect(&s, 2, (int64_t[]){10, 14, 16, 20});
    assert_int_equal(ivset_remove_point(&s, 10), IVSET_OK);
    assert_int_equal(ivset_remove_point(&s, 20), IVSET_OK);
    expect(&s, 2, (int64_t[]){11, 14, 16, 19});
    assert_int_equal(ivset_remove_point(&s, 15), IVSET_EINVAL);
    assert_int_equal(ivset_remove_point(&s, 99), IVSET_EINVAL);
    ivset_add(&s, 30, 30);
    assert_int_equal(ivset_remove_point(&s, 30), IVSET_OK); /* the whole interval */
    expect(&s, 2, (int64_t[]){11, 14, 16, 19});
    ivset_free(&s);
}

static void test_capacity_bound(void **state)
{
    (void)state;
    ivset s;
    ivset_init(&s, 3);
    assert_int_equal(ivset_add(&s, 1, 1), 1);
    assert_int_equal(ivset_add(&s, 3, 3), 1);
    assert_int_equal(ivset_add(&s, 5, 5), 1);
    assert_int_equal(ivset_add(&s, 7, 7), IVSET_EFULL);
    expect(&s, 3, (int64_t[]){1, 1, 3, 3, 5, 5}); /* unchanged */
    /* merging needs no room */
    assert_int_equal(ivset_add(&s, 2, 2), 1);
    expect(&s, 2, (int64_t[]){1, 3, 5, 5});
    ivset_add(&s, 10, 12);
    assert_int_equal(ivset_remove_point(&s, 11), IVSET_EFULL); /* a split needs room */
    expect(&s, 3, (int64_t[]){1, 3, 5, 5, 10, 12});
    /* bridging a full set over-covers instead */
    assert_int_equal(ivset_bridge(&s, 7, 8), IVSET_OK);
    expect(&s, 3, (int64_t[]){1, 3, 5, 8, 10, 12});
    assert_int_equal(ivset_bridge(&s, 9, 9), IVSET_OK); /* touches the next: merged */
    expect(&s, 2, (int64_t[]){1, 3, 5, 12});
    assert_int_equal(ivset_bridge(&s, -5, -3), IVSET_OK); /* none below: the first grows down */
    expect(&s, 2, (int64_t[]){-5, 3, 5, 12});
    ivset_free(&s);
    assert_int_equal(ivset_bridge(&s, 1, 2), IVSET_EINVAL);
}

static void test_extreme_values(void **state)
{
    (void)state;
    ivset s;
    ivset_init(&s, 10);
    const int64_t lo = INT64_MIN + 1, hi = INT64_MAX - 1;
    assert_int_equal(ivset_add(&s, lo, lo + 9), 10);
    assert_int_equal(ivset_add(&s, hi - 9, hi), 10);
    assert_int_equal(ivset_count(&s, lo, hi), 20);
    assert_non_null(ivset_find(&s, hi));
    assert_non_null(ivset_find(&s, lo));
    assert_null(ivset_find(&s, 0));
    assert_int_equal(ivset_remove_point(&s, hi), IVSET_OK);
    assert_int_equal(ivset_count(&s, lo, hi), 19);
    /* a span of 2^62 points counts exactly */
    ivset_free(&s);
    ivset_init(&s, 10);
    assert_int_equal(ivset_add(&s, 0, ((int64_t)1 << 62) - 1), (int64_t)1 << 62);
    assert_int_equal(ivset_count(&s, 0, hi), (uint64_t)1 << 62);
    ivset_free(&s);
}

/* The array starts at one interval (a gap-free stream never needs more)
 * and doubles, never past max; a max above 32 bits is clamped. */
static void test_growth_from_one(void **state)
{
    (void)state;
    ivset s;
    ivset_init(&s, 5);
    assert_int_equal(s.cap, 0);
    for (int64_t x = 1; x <= 1000; x++)
        assert_int_equal(ivset_add(&s, x, x), 1);
    expect(&s, 1, (int64_t[]){1, 1000});
    assert_int_equal(s.cap, 1);
    assert_int_equal(ivset_add(&s, 2000, 2000), 1);
    assert_int_equal(s.cap, 2);
    assert_int_equal(ivset_add(&s, 3000, 3000), 1);
    assert_int_equal(s.cap, 4);
    assert_int_equal(ivset_add(&s, 4000, 4000), 1);
    assert_int_equal(ivset_add(&s, 5000, 5000), 1);
    assert_int_equal(s.cap, 5); /* 8 clamped to max */
    assert_int_equal(ivset_add(&s, 6000, 6000), IVSET_EFULL);
    expect(&s, 5, (int64_t[]){1, 1000, 2000, 2000, 3000, 3000, 4000, 4000, 5000, 5000});
    ivset_free(&s);
    ivset_init(&s, (size_t)UINT32_MAX + 10);
    assert_int_equal(s.max, UINT32_MAX);
    ivset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_merge),
        cmocka_unit_test(test_find_and_count),
        cmocka_unit_test(test_remove_point),
        cmocka_unit_test(test_capacity_bound),
        cmocka_unit_test(test_extreme_values),
        cmocka_unit_test(test_growth_from_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
