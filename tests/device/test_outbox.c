/* Tests for device/outbox: order, drop-oldest, resend lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "outbox.h"

static void push(outbox *ob, uint32_t boot, uint64_t seq, bool pending)
{
    char p[64];
    int n = snprintf(p, sizeof p, "{\"boot\":%u,\"seq\":%llu}", (unsigned)boot,
                     (unsigned long long)seq);
    assert_int_equal(outbox_push(ob, boot, seq, 1000 + seq, p, (size_t)n, pending), OUTBOX_OK);
}

static void test_pending_in_order(void **state)
{
    (void)state;
    outbox_rec st[8];
    outbox ob;
    assert_int_equal(outbox_init(&ob, st, 8), OUTBOX_OK);
    assert_null(outbox_peek_pending(&ob));
    push(&ob, 1, 1, false);
    push(&ob, 1, 2, true);
    push(&ob, 1, 3, false); /* live while backlog waits */
    push(&ob, 1, 4, true);
    assert_int_equal(outbox_pending(&ob), 2);
    const outbox_rec *r = outbox_peek_pending(&ob);
    assert_non_null(r);
    assert_int_equal(r->seq, 2);
    assert_int_equal(r->ts_ms, 1002);
    assert_int_equal(r->len, 18);
    assert_memory_equal(r->payload, "{\"boot\":1,\"seq\":2}", 18); /* not NUL-terminated */
    assert_int_equal(outbox_mark_sent(&ob, r), OUTBOX_OK);
    assert_int_equal(outbox_mark_sent(&ob, r), OUTBOX_EINVAL); /* not twice */
    r = outbox_peek_pending(&ob);
    assert_int_equal(r->seq, 4);
    outbox_mark_sent(&ob, r);
    assert_null(outbox_peek_pending(&ob));
    assert_int_equal(outbox_count(&ob), 4);
    assert_int_equal(ob.dropped, 0);
}

static void test_overflow_drops_oldest_counted(void **state)
{
    (void)state;
    outbox_rec st[4];
    outbox ob;
    outbox_init(&ob, st, 4);
    push(&ob, 1, 1, false); /* sent: evicted, not dropped */
    for (uint64_t s = 2; s <= 8; s++)
        push(&ob, 1, s, true);
    assert_int_equal(outbox_count(&ob), 4);
    assert_int_equal(outbox_pending(&ob), 4);
    assert_int_equal(ob.evicted, 1);
    assert_int_equal(ob.dropped, 3); /* seqs 2, 3, 4 */
    for (uint64_t s = 5; s <= 8; s++) {
        const outbox_rec *r = outbox_peek_pending(&ob);
        assert_non_null(r);
        assert_int_equal(r->seq, s);
        outbox_mark_sent(&ob, r);
    }
    assert_null(outbox_peek_pending(&ob));
    /* Drain cursor survives wrap-around. */
    push(&ob, 1, 9, true);
    push(&ob, 1, 10, false);
    push(&ob, 1, 11, true);
    assert_int_equal(outbox_peek_pending(&ob)->seq, 9);
    outbox_mark_sent(&ob, outbox_peek_pending(&ob));
    assert_int_equal(outbox_peek_pending(&ob)->seq, 11);
}

typedef struct visit {
    uint64_t seqs[16];
    size_t n;
} visit;

static bool collect(void *ctx, const outbox_rec *r)
{
    visit *v = ctx;
    v->seqs[v->n++] = r->seq;
    return true;
}

static void test_lookup_and_missing(void **state)
{
    (void)state;
    outbox_rec st[10];
    outbox ob;
    outbox_init(&ob, st, 10);
    for (uint64_t s = 1; s <= 5; s++)
        push(&ob, 6, s, false);
    for (uint64_t s = 1; s <= 5; s++)
        push(&ob, 7, s, false);
    push(&ob, 7, 6, false); /* evicts boot 6 seq 1 */
    visit v = {0};
    uint64_t found, missing;
    assert_int_equal(outbox_lookup(&ob, 7, 2, 4, collect, &v, &found, &missing), OUTBOX_OK);
    assert_int_equal(found, 3);
    assert_int_equal(missing, 0);
    assert_int_equal(v.n, 3);
    assert_int_equal(v.seqs[0], 2);
    assert_int_equal(v.seqs[2], 4);
    /* boot 6 seq 1 was evicted; seqs 6..10 never existed. */
    memset(&v, 0, sizeof v);
    outbox_lookup(&ob, 6, 1, 10, collect, &v, &found, &missing);
    assert_int_equal(found, 4);
    assert_int_equal(missing, 6);
    assert_int_equal(v.seqs[0], 2);
    /* Unknown boot: everything missing. */
    outbox_lookup(&ob, 99, 0, 0, NULL, NULL, &found, &missing);
    assert_int_equal(found, 0);
    assert_int_equal(missing, 1);
    assert_int_equal(outbox_lookup(&ob, 7, 5, 4, NULL, NULL, &found, &missing), OUTBOX_EINVAL);
    /* Full 64-bit range does not overflow. */
    outbox_lookup(&ob, 7, 0, UINT64_MAX, NULL, NULL, &found, &missing);
    assert_int_equal(found, 6);
    assert_int_equal(missing, UINT64_MAX - 6);
}

static void test_bad_args(void **state)
{
    (void)state;
    outbox_rec st[1];
    outbox ob;
    assert_int_equal(outbox_init(&ob, st, 0), OUTBOX_EINVAL);
    assert_int_equal(outbox_init(&ob, NULL, 1), OUTBOX_EINVAL);
    outbox_init(&ob, st, 1);
    char big[OUTBOX_PAYLOAD_MAX + 1] = {0};
    assert_int_equal(outbox_push(&ob, 1, 1, 0, big, sizeof big, true), OUTBOX_EINVAL);
    assert_int_equal(outbox_push(&ob, 1, 1, 0, big, OUTBOX_PAYLOAD_MAX, true), OUTBOX_OK);
    outbox_rec other = {.pending = true};
    assert_int_equal(outbox_mark_sent(&ob, &other), OUTBOX_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_in_order),
        cmocka_unit_test(test_overflow_drops_oldest_counted),
        cmocka_unit_test(test_lookup_and_missing),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
