/* Unit tests for server/admit.c (device admission: --max-devices and the
 * rate of new ids) and server/cmdtab.c (commands awaiting their ack). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "cmdtab.h"

static void test_cap_and_known(void **state)
{
    (void)state;
    admit *a = admit_new(3, 1000, 1000);
    assert_non_null(a);
    assert_int_equal(admit_add_known(a, "K1"), 0);
    assert_int_equal(admit_add_known(a, "K2"), 0);
    assert_int_equal(admit_add_known(a, "bad id"), -1);
    assert_int_equal(admit_check(a, "K1", 0), ADMIT_KNOWN);
    assert_int_equal(admit_check(a, "N1", 0), ADMIT_NEW);
    assert_int_equal(admit_check(a, "N1", 1), ADMIT_KNOWN);
    assert_int_equal(admit_check(a, "N2", 2), ADMIT_FULL);
    assert_int_equal(admit_check(a, "N2", 3), ADMIT_FULL); /* not remembered */
    assert_int_equal(admit_count(a), 3);
    /* known devices are never refused, even past the cap */
    assert_int_equal(admit_add_known(a, "K3"), 0);
    assert_int_equal(admit_check(a, "K3", 4), ADMIT_KNOWN);
    assert_int_equal(admit_check(a, "K2", 4), ADMIT_KNOWN);
    admit_free(a);
    assert_null(admit_new(0, 1, 1));
    assert_null(admit_new(1, 0, 1));
    assert_null(admit_new(1, 1, 0.5));
    admit_free(NULL);
}

static void test_rate_and_burst(void **state)
{
    (void)state;
    admit *a = admit_new(100000, 10, 5); /* 10 new ids/s, burst 5 */
    char id[32];
    int n = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "D%d", i);
        n += admit_check(a, id, 1000) == ADMIT_NEW;
    }
    assert_int_equal(n, 5); /* the burst, at once */
    assert_int_equal(admit_check(a, "late", 1000), ADMIT_RATE);
    assert_int_equal(admit_check(a, "D0", 1000), ADMIT_KNOWN); /* unaffected */
    assert_int_equal(admit_check(a, "late", 1100), ADMIT_NEW); /* 100 ms = 1 token */
    assert_int_equal(admit_check(a, "late2", 1100), ADMIT_RATE);
    /* the bucket refills up to the burst, no more */
    n = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "E%d", i);
        n += admit_check(a, id, 100000) == ADMIT_NEW;
    }
    assert_int_equal(n, 5);
    /* a clock going backwards never mints tokens */
    assert_int_equal(admit_check(a, "back", 50), ADMIT_RATE);
    admit_free(a);
}

static void test_cmdtab_match(void **state)
{
    (void)state;
    cmdtab t;
    assert_int_equal(cmdtab_init(&t, 2, 1000), 0);
    assert_int_equal(cmdtab_record(&t, "D1", "c-1", 0), 0);
    assert_int_equal(cmdtab_record(&t, "D1", "c-2", 0), 0);
    assert_int_equal(cmdtab_match(&t, "D2", "c-1", 10), 0); /* not for that device */
    assert_int_equal(cmdtab_match(&t, "D1", "c-9", 10), 0); /* never sent */
    assert_int_equal(cmdtab_match(&t, "D1", "c-1", 10), 1);
    assert_int_equal(cmdtab_match(&t, "D1", "c-1", 11), 0); /* answered already */
    assert_int_equal(cmdtab_match(&t, "D1", "c-2", 1000), 0); /* expired */
    assert_int_equal(cmdtab_match(&t, "D1", "", 10), 0);
    /* bounded per device: the oldest is replaced */
    for (int i = 0; i < CMDTAB_PER_DEVICE + 2; i++) {
        char c[16];
        snprintf(c, sizeof c, "x-%d", i);
        assert_int_equal(cmdtab_record(&t, "D3", c, 100 + i), 0);
    }
    assert_int_equal(cmdtab_match(&t, "D3", "x-0", 200), 0);
    assert_int_equal(cmdtab_match(&t, "D3", "x-1", 200), 0);
    assert_int_equal(cmdtab_match(&t, "D3", "x-2", 200), 1);
    assert_int_equal(cmdtab_match(&t, "D3", "x-9", 200), 1);
    /* bounded in devices: full until something expires */
    assert_int_equal(cmdtab_record(&t, "D4", "y", 500), 0);
    assert_int_equal(cmdtab_record(&t, "D5", "z", 600), -1);
    assert_int_equal(cmdtab_record(&t, "D5", "z", 2000), 0); /* D3, D4 expired: room */
    assert_int_equal(cmdtab_match(&t, "D5", "z", 2001), 1);
    char longc[80];
    memset(longc, 'c', sizeof longc - 1);
    longc[79] = 0;
    assert_int_equal(cmdtab_record(&t, "D5", longc, 0), -1);
    assert_int_equal(cmdtab_record(&t, "..", "c", 0), -1);
    cmdtab_expire(&t, 100000);
    assert_int_equal(cmdtab_pending(&t), 0);
    cmdtab_free(&t);
    cmdtab_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_and_known),
        cmocka_unit_test(test_rate_and_burst),
        cmocka_unit_test(test_cmdtab_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
