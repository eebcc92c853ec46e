/* Unit tests for server/idtable.c: string and integer keys, growth, the
 * bound, removal with backward shift (checked against a reference model
 * under random churn), iteration, clear, dense entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idtable.h"

typedef struct dev {
    char id[65];
    int value;
} dev;

static const void *dev_key(const void *e) { return ((const dev *)e)->id; }
static const idtable_type DEV_TYPE = {sizeof(dev), dev_key, idtable_hash_str, idtable_equal_str};

typedef struct ikey {
    int64_t key;
    size_t idx;
} ikey;

static const void *ikey_key(const void *e) { return &((const ikey *)e)->key; }
static const idtable_type IKEY_TYPE = {sizeof(ikey), ikey_key, idtable_hash_i64, idtable_equal_i64};

/* A type whose hash puts every key in one run: exercises probing and the
 * shift-back of removal across the whole run and around the end. */
static uint64_t hash_const(const void *key)
{
    (void)key;
    return 13;
}
static const idtable_type COLLIDE_TYPE = {sizeof(dev), dev_key, hash_const, idtable_equal_str};

static dev mk(const char *id, int v)
{
    dev d;
    memset(&d, 0, sizeof d);
    snprintf(d.id, sizeof d.id, "%s", id);
    d.value = v;
    return d;
}

static void test_put_find_grow(void **state)
{
    (void)state;
    idtable t;
    assert_int_equal(idtable_init(&t, &DEV_TYPE, 0, 0), IDTABLE_OK);
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "ESP32_%04d", i);
        dev d = mk(id, i);
        void *slot = NULL;
        assert_int_equal(idtable_put(&t, &d, &slot), IDTABLE_OK);
        assert_int_equal(((dev *)slot)->value, i);
    }
    assert_int_equal(idtable_count(&t), 5000);
    assert_true(t.cap * 7 >= t.count * 10); /* load stays <= 0.7 */
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "ESP32_%04d", i);
        dev *d = idtable_find(&t, id);
        assert_non_null(d);
        assert_int_equal(d->value, i);
    }
    assert_null(idtable_find(&t, "ESP32_5000"));
    dev again = mk("ESP32_0042", -1);
    void *slot = NULL;
    assert_int_equal(idtable_put(&t, &again, &slot), IDTABLE_EEXIST);
    assert_int_equal(((dev *)slot)->value, 42); /* left as it was */
    idtable_free(&t);
    idtable_free(&t);
    idtable_free(NULL);
}

static void test_bound(void **state)
{
    (void)state;
    idtable t;
    assert_int_equal(idtable_init(&t, &DEV_TYPE, 4, 3), IDTABLE_OK);
    dev a = mk("a", 1), b = mk("b", 2), c = mk("c", 3), d = mk("d", 4);
    assert_int_equal(idtable_put(&t, &a, NULL), IDTABLE_OK);
    assert_int_equal(idtable_put(&t, &b, NULL), IDTABLE_OK);
    assert_int_equal(idtable_put(&t, &c, NULL), IDTABLE_OK);
    assert_int_equal(idtable_put(&t, &d, NULL), IDTABLE_EFULL);
    assert_int_equal(idtable_put(&t, &a, NULL), IDTABLE_EEXIST); /* not EFULL: it is there */
    assert_int_equal(idtable_remove(&t, "b", NULL), IDTABLE_OK);
    assert_int_equal(idtable_put(&t, &d, NULL), IDTABLE_OK);
    idtable_free(&t);
}

static void test_integer_keys_and_clear(void **state)
{
    (void)state;
    idtable t;
    assert_int_equal(idtable_init(&t, &IKEY_TYPE, 4096, 0), IDTABLE_OK);
    size_t cap = t.cap;
    for (int64_t k = 1; k <= 2000; k++) {
        ikey e = {k * 1000003, (size_t)k};
        assert_int_equal(idtable_put(&t, &e, NULL), IDTABLE_OK);
    }
    assert_int_equal(t.cap, cap); /* sized for 4096 at init: no growth */
    int64_t probe = 77 * 1000003;
    ikey *e = idtable_find(&t, &probe);
    assert_non_null(e);
    assert_int_equal(e->idx, 77);
    idtable_clear(&t);
    assert_int_equal(idtable_count(&t), 0);
    assert_null(idtable_find(&t, &probe));
    size_t it = 0;
    assert_null(idtable_next(&t, &it));
    idtable_free(&t);
}

/* Random puts and removes against a plain array model, in a table where
 * every key collides (the worst case for backward-shift removal). */
static void churn(const idtable_type *type, unsigned seed, int keys, int steps)
{
    idtable t;
    assert_int_equal(idtable_init(&t, type, 0, 0), IDTABLE_OK);
    int *model = calloc((size_t)keys, sizeof *model); /* 0 absent, else value */
    assert_non_null(model);
    char id[32];
    srand(seed);
    for (int s = 0; s < steps; s++) {
        int k = rand() % keys;
        snprintf(id, sizeof id, "k%d", k);
        if (rand() % 3) {
            dev d = mk(id, s + 1);
            idtable_err e = idtable_put(&t, &d, NULL);
            assert_int_equal(e, model[k] ? IDTABLE_EEXIST : IDTABLE_OK);
            if (!model[k])
                model[k] = s + 1;
        } else {
            dev out;
            idtable_err e = idtable_remove(&t, id, &out);
            assert_int_equal(e, model[k] ? IDTABLE_OK : IDTABLE_EINVAL);
            if (model[k])
                assert_int_equal(out.value, model[k]);
            model[k] = 0;
        }
        if (s % 50 == 0 || s == steps - 1) {
            size_t n = 0;
            for (int j = 0; j < keys; j++) {
                snprintf(id, sizeof id, "k%d", j);
                dev *d = idtable_find(&t, id);
                if (model[j]) {
                    assert_non_null(d);
                    assert_int_equal(d->value, model[j]);
                    n++;
                } else {
                    assert_null(d);
                }
            }
            assert_int_equal(idtable_count(&t), n);
            size_t it = 0, seen = 0;
            while (idtable_next(&t, &it))
                seen++;
            assert_int_equal(seen, n);
        }
    }
    free(model);
    idtable_free(&t);
}

static void test_churn_collisions(void **state)
{
    (void)state;
    churn(&COLLIDE_TYPE, 1, 12, 4000); /* one run, wrapping past the end of 16 slots */
    churn(&COLLIDE_TYPE, 2, 60, 4000);
}

static void test_churn_spread(void **state)
{
    (void)state;
    churn(&DEV_TYPE, 3, 3000, 30000);
}

/* The entries are dense: the array is sized for the entries, not for the
 * index (whose empty slots cost 4 bytes each), a removal keeps it dense
 * (the last entry moves into the hole), and an iteration position can be
 * resumed later. */
static void test_dense_entries_and_cursor(void **state)
{
    (void)state;
    idtable t;
    assert_int_equal(idtable_init(&t, &DEV_TYPE, 0, 0), IDTABLE_OK);
    char id[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof id, "ESP32_%05d", i);
        dev d = mk(id, i);
        assert_int_equal(idtable_put(&t, &d, NULL), IDTABLE_OK);
    }
    assert_int_equal(t.cap, 16384);         /* load 0.61 */
    assert_true(t.ecap >= t.count);
    assert_true(t.ecap * 2 <= t.count * 3); /* at most half again: not one per index slot */
    /* Insertion order while nothing was removed. */
    size_t it = 0;
    for (int i = 0; i < 10000; i++) {
        dev *d = idtable_next(&t, &it);
        assert_non_null(d);
        assert_int_equal(d->value, i);
        if (i == 4999)
            break; /* stop half way ... */
    }
    assert_int_equal(it, 5000);
    dev *d = idtable_next(&t, &it); /* ... and resume there */
    assert_non_null(d);
    assert_int_equal(d->value, 5000);
    /* Remove every other one: the rest stay findable, iteration sees each once. */
    for (int i = 0; i < 10000; i += 2) {
        snprintf(id, sizeof id, "ESP32_%05d", i);
        dev out;
        assert_int_equal(idtable_remove(&t, id, &out), IDTABLE_OK);
        assert_int_equal(out.value, i);
    }
    assert_int_equal(idtable_count(&t), 5000);
    char *seen = calloc(10000, 1);
    assert_non_null(seen);
    it = 0;
    size_t n = 0;
    while ((d = idtable_next(&t, &it))) {
        assert_int_equal(d->value % 2, 1);
        assert_int_equal(seen[d->value], 0);
        seen[d->value] = 1;
        n++;
    }
    assert_int_equal(n, 5000);
    assert_int_equal(it, 5000);
    for (int i = 1; i < 10000; i += 2) {
        snprintf(id, sizeof id, "ESP32_%05d", i);
        d = idtable_find(&t, id);
        assert_non_null(d);
        assert_int_equal(d->value, i);
    }
    free(seen);
    idtable_free(&t);
}

static void test_bad_type(void **state)
{
    (void)state;
    idtable t;
    idtable_type bad = DEV_TYPE;
    bad.hash = NULL;
    assert_int_equal(idtable_init(&t, &bad, 0, 0), IDTABLE_EINVAL);
    assert_null(idtable_find(&t, "x"));
    dev d = mk("x", 1);
    assert_int_equal(idtable_put(&t, &d, NULL), IDTABLE_EINVAL);
    idtable_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_find_grow),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_integer_keys_and_clear),
        cmocka_unit_test(test_churn_collisions),
        cmocka_unit_test(test_churn_spread),
        cmocka_unit_test(test_dense_entries_and_cursor),
        cmocka_unit_test(test_bad_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
