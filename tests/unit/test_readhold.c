/* Unit tests for server/readhold.c: when the ingest thread holds its next
 * read. Auto engages only at a sustained rate (with hysteresis), never holds
 * a wake-up that read nothing or a pass that hit a backlog; a fixed N holds
 * after every pass that read; 0 never holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readhold.h"

/* Feeds `per_s` readings a second for `ms` milliseconds starting at *t, one
 * pass per millisecond (per_s / 1000 packets each, at least 1 every
 * 1000 / per_s ms); returns the last pass's hold. */
static int feed(readhold *h, int64_t *t, unsigned per_s, int ms)
{
    int hold = 0;
    unsigned step = per_s >= 1000 ? 1 : 1000 / per_s, n = per_s >= 1000 ? per_s / 1000 : 1;
    for (int i = 0; i < ms; i += (int)step) {
        *t += step;
        hold = readhold_after_pass(h, *t, n, 0);
    }
    return hold;
}

static void test_auto_quiet_never_holds(void **state)
{
    (void)state;
    readhold h;
    readhold_init(&h, READHOLD_AUTO);
    assert_false(readhold_batching(&h));
    int64_t t = 1000;
    /* A quiet ward: 1,000 readings/s, one per pass. Minutes of it: no hold. */
    for (int s = 0; s < 120; s++) {
        assert_int_equal(feed(&h, &t, 1000, 1000), 0);
        assert_false(readhold_batching(&h));
    }
    /* Just under the threshold: still none. */
    for (int s = 0; s < 10; s++)
        assert_int_equal(feed(&h, &t, READHOLD_AUTO_ON_PER_S - 1000, 1000), 0);
    assert_false(readhold_batching(&h));
}

static void test_auto_engages_and_releases(void **state)
{
    (void)state;
    readhold h;
    readhold_init(&h, READHOLD_AUTO);
    int64_t t = 5000;
    /* 10,000 readings/s: engaged within one window, then every reading pass holds 1 ms. */
    feed(&h, &t, 10000, READHOLD_WINDOW_MS + 10);
    assert_true(readhold_batching(&h));
    assert_int_equal(readhold_after_pass(&h, ++t, 10, 0), READHOLD_AUTO_US);
    /* A wake-up that read nothing, or a backlog, never holds, even engaged. */
    assert_int_equal(readhold_after_pass(&h, ++t, 0, 0), 0);
    assert_int_equal(readhold_after_pass(&h, ++t, 512, 1), 0);
    assert_true(readhold_batching(&h));
    /* Between the two thresholds: stays engaged (no flapping). */
    feed(&h, &t, (READHOLD_AUTO_ON_PER_S + READHOLD_AUTO_OFF_PER_S) / 2, 3 * READHOLD_WINDOW_MS);
    assert_true(readhold_batching(&h));
    /* Under the lower one: released, the next pass reads at once. */
    feed(&h, &t, 1000, 3 * READHOLD_WINDOW_MS);
    assert_false(readhold_batching(&h));
    assert_int_equal(readhold_after_pass(&h, ++t, 1, 0), 0);
}

static void test_auto_releases_when_the_fleet_stops(void **state)
{
    (void)state;
    readhold h;
    readhold_init(&h, READHOLD_AUTO);
    int64_t t = 100;
    feed(&h, &t, 20000, 2 * READHOLD_WINDOW_MS);
    assert_true(readhold_batching(&h));
    /* Nothing arrives: only the 250 ms ticks wake the thread. */
    for (int i = 0; i < 4; i++) {
        t += 250;
        assert_int_equal(readhold_after_pass(&h, t, 0, 0), 0);
    }
    assert_false(readhold_batching(&h));
}

static void test_fixed_and_off(void **state)
{
    (void)state;
    readhold h;
    readhold_init(&h, 5000);
    assert_true(readhold_batching(&h));
    int64_t t = 1;
    assert_int_equal(readhold_after_pass(&h, ++t, 1, 0), 5000); /* whatever the rate */
    assert_int_equal(readhold_after_pass(&h, ++t, 0, 0), 0);
    assert_int_equal(readhold_after_pass(&h, ++t, 512, 1), 0);
    assert_int_equal(feed(&h, &t, 20000, 1000), 5000);
    readhold_init(&h, 0);
    assert_false(readhold_batching(&h));
    assert_int_equal(feed(&h, &t, 20000, 1000), 0);
    assert_false(readhold_batching(&h));
}

static void test_clock_going_back_restarts_the_window(void **state)
{
    (void)state;
    readhold h;
    readhold_init(&h, READHOLD_AUTO);
    int64_t t = 10000;
    feed(&h, &t, 2000, READHOLD_WINDOW_MS - 20);
    /* An earlier time than the window's start (never from a monotonic clock,
     * but cheap to survive): the window restarts instead of a huge rate. */
    assert_int_equal(readhold_after_pass(&h, 50, 100000, 0), 0);
    assert_false(readhold_batching(&h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_quiet_never_holds),
        cmocka_unit_test(test_auto_engages_and_releases),
        cmocka_unit_test(test_auto_releases_when_the_fleet_stops),
        cmocka_unit_test(test_fixed_and_off),
        cmocka_unit_test(test_clock_going_back_restarts_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
