/* Unit tests for server/ring.c: FIFO order across wrap-around, the bound,
 * in-place pushes, indexed access, bad arguments. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_bound),
        cmocka_unit_test(test_wrap_many_laps),
        cmocka_unit_test(test_in_place_large_elements),
        cmocka_unit_test(test_bad_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
