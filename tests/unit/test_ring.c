/* Unit tests for server/ring.c: FIFO order across wrap-around, the bound,
 * in-place pushes, indexed access, bad arguments, the restart at slot 0 of
 * an emptied ring and ring_trim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ring.h"

static void test_fifo_and_bound(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 3, sizeof(int)), RING_OK);
    assert_true(ring_empty(&r));
    assert_null(ring_front(&r));
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ring_push_copy(&r, &i), RING_OK);
    assert_true(ring_full(&r));
    int four = 4, out = 0;
    assert_int_equal(ring_push_copy(&r, &four), RING_EFULL); /* nothing added */
    assert_null(ring_push(&r));
    assert_int_equal(ring_count(&r), 3);
    assert_int_equal(ring_pop_copy(&r, &out), RING_OK);
    assert_int_equal(out, 1);
    assert_int_equal(ring_push_copy(&r, &four), RING_OK); /* wraps */
    for (int want = 2; want <= 4; want++) {
        assert_int_equal(*(int *)ring_front(&r), want);
        ring_pop(&r);
    }
    assert_int_equal(ring_pop_copy(&r, &out), RING_EEMPTY);
    ring_pop(&r); /* no-op on empty */
    assert_int_equal(ring_count(&r), 0);
    ring_free(&r);
    ring_free(&r); /* idempotent */
    ring_free(NULL);
}

/* Many laps around a ring of odd capacity keep order and count exact. */
static void test_wrap_many_laps(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 7, sizeof(uint64_t)), RING_OK);
    uint64_t next_in = 0, next_out = 0;
    for (int step = 0; step < 10000; step++) {
        /* push up to 3, pop up to 2: the ring fills, then stays near full */
        for (int k = 0; k < 3; k++) {
            uint64_t *slot = ring_push(&r);
            if (!slot) {
                assert_true(ring_full(&r));
                break;
            }
            *slot = next_in++;
        }
        for (int k = 0; k < 2 && !ring_empty(&r); k++) {
            uint64_t v;
            assert_int_equal(ring_pop_copy(&r, &v), RING_OK);
            assert_int_equal(v, next_out++);
        }
        assert_int_equal(ring_count(&r), next_in - next_out);
        assert_true(ring_count(&r) <= 7);
    }
    for (size_t i = 0; i < ring_count(&r); i++)
        assert_int_equal(*(uint64_t *)ring_at(&r, i), next_out + i);
    assert_null(ring_at(&r, ring_count(&r)));
    ring_free(&r);
}

typedef struct big {
    char name[100];
    int n;
} big;

static void test_in_place_large_elements(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 2, sizeof(big)), RING_OK);
    big *b = ring_push(&r);
    assert_non_null(b);
    strcpy(b->name, "first");
    b->n = 1;
    big c = {.name = "second", .n = 2};
    assert_int_equal(ring_push_copy(&r, &c), RING_OK);
    assert_string_equal(((big *)ring_at(&r, 0))->name, "first");
    assert_string_equal(((big *)ring_at(&r, 1))->name, "second");
    big out;
    assert_int_equal(ring_pop_copy(&r, &out), RING_OK);
    assert_int_equal(out.n, 1);
    ring_free(&r);
}

static void test_bad_init(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 0, 4), RING_EINVAL);
    assert_int_equal(ring_init(&r, 4, 0), RING_EINVAL);
    assert_int_equal(ring_init(&r, SIZE_MAX / 2, 4), RING_EINVAL);
    assert_int_equal(ring_init(&r, 1, 1), RING_OK);
    char x = 'a', y;
    assert_int_equal(ring_push_copy(&r, &x), RING_OK);
    assert_int_equal(ring_push_copy(&r, &x), RING_EFULL);
    assert_int_equal(ring_pop_copy(&r, &y), RING_OK);
    assert_int_equal(y, 'a');
    assert_int_equal(ring_push_copy(&r, &x), RING_OK); /* capacity 1 wraps too */
    ring_free(&r);
}

/* An emptied ring starts again at slot 0: a queue that keeps up does not
 * walk (and make resident) its whole buffer. */
static void test_empty_restarts_at_first_slot(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 5, sizeof(int)), RING_OK);
    for (int i = 0; i < 100; i++) {
        int *a = ring_push(&r), *b = ring_push(&r);
        assert_ptr_equal(a, r.mem);
        assert_ptr_equal(b, r.mem + sizeof(int));
        *a = i;
        *b = -i;
        int out;
        assert_int_equal(ring_pop_copy(&r, &out), RING_OK);
        assert_int_equal(out, i);
        assert_int_equal(ring_pop_copy(&r, &out), RING_OK);
        assert_int_equal(out, -i);
    }
    assert_int_equal(r.touched, 2);
    ring_free(&r);
}

/* ring_trim gives pages back only on an empty ring touched past keep, and
 * the ring works as before afterwards. */
static void test_trim_after_burst(void **state)
{
    (void)state;
    ring r;
    const size_t cap = 200000; /* 1.6 MB of uint64_t: many pages */
    assert_int_equal(ring_init(&r, cap, sizeof(uint64_t)), RING_OK);
    for (uint64_t i = 0; i < 150000; i++)
        *(uint64_t *)ring_push(&r) = i;
    assert_int_equal(ring_trim(&r, 1000), 0); /* not empty */
    for (uint64_t i = 0; i < 150000; i++) {
        uint64_t v;
        assert_int_equal(ring_pop_copy(&r, &v), RING_OK);
        assert_int_equal(v, i);
    }
    assert_int_equal(ring_trim(&r, 1000), 1);
    assert_int_equal(r.touched, 1000);
    assert_int_equal(ring_trim(&r, 1000), 0); /* nothing new touched */
    assert_int_equal(ring_trim(&r, 5000), 0); /* keep beyond what was touched */
    for (uint64_t i = 0; i < cap; i++) /* the trimmed pages map again */
        *(uint64_t *)ring_push(&r) = i * 3;
    assert_true(ring_full(&r));
    for (uint64_t i = 0; i < cap; i++)
        assert_int_equal(*(uint64_t *)ring_at(&r, (size_t)i), i * 3);
    ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_bound),
        cmocka_unit_test(test_wrap_many_laps),
        cmocka_unit_test(test_in_place_large_elements),
        cmocka_unit_test(test_bad_init),
        cmocka_unit_test(test_empty_restarts_at_first_slot),
        cmocka_unit_test(test_trim_after_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
