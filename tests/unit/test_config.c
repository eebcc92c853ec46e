/* Unit tests for server/config.c's --ingest-hold-us (ingest.c's read hold,
 * readhold.h): default auto, file, environment and argv, bounds refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"

static void test_hold_default_auto(void **state)
{
    (void)state;
    vigil_config c;
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(c.ingest_hold_us, CONFIG_AUTO);
    config_free(&c);
}

static void test_hold_from_file(void **state)
{
    (void)state;
    vigil_config c;
    assert_int_equal(config_defaults(&c), 0);
    const char *ok = "ingest-hold-us = 5000\n";
    assert_int_equal(config_parse_text(&c, ok, strlen(ok), "t.conf"), 0);
    assert_int_equal(c.ingest_hold_us, 5000);
    const char *big = "ingest-hold-us = 100001\n";
    assert_int_equal(config_parse_text(&c, big, strlen(big), "t.conf"), -1);
    const char *neg = "ingest-hold-us = -1\n";
    assert_int_equal(config_parse_text(&c, neg, strlen(neg), "t.conf"), -1);
    assert_int_equal(c.ingest_hold_us, 5000); /* a refused value leaves the last good one */
    const char *off = "ingest-hold-us = 0\n", *autow = "ingest-hold-us = auto\n", *word = "ingest-hold-us = Auto\n";
    assert_int_equal(config_parse_text(&c, off, strlen(off), "t.conf"), 0);
    assert_int_equal(c.ingest_hold_us, 0);
    assert_int_equal(config_parse_text(&c, autow, strlen(autow), "t.conf"), 0);
    assert_int_equal(c.ingest_hold_us, CONFIG_AUTO);
    assert_int_equal(config_parse_text(&c, word, strlen(word), "t.conf"), -1); /* the word is exact */
    assert_int_equal(c.ingest_hold_us, CONFIG_AUTO);
    config_free(&c);
}

static void test_hold_env_then_argv(void **state)
{
    (void)state;
    vigil_config c;
    char a0[] = "vigild", a1[] = "--ingest-hold-us", a2[] = "3000";
    char *argv[] = {a0, a1, a2, NULL};
    assert_int_equal(setenv("VIGIL_INGEST_HOLD_US", "700", 1), 0);
    assert_int_equal(config_load(&c, 1, argv), CONFIG_OK);
    assert_int_equal(c.ingest_hold_us, 700);
    config_free(&c);
    assert_int_equal(config_load(&c, 3, argv), CONFIG_OK); /* argv over the environment */
    assert_int_equal(c.ingest_hold_us, 3000);
    config_free(&c);
    unsetenv("VIGIL_INGEST_HOLD_US");
    char b2[] = "100001";
    char *bad[] = {a0, a1, b2, NULL};
    assert_int_equal(config_load(&c, 3, bad), CONFIG_ERROR);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_default_auto),
        cmocka_unit_test(test_hold_from_file),
        cmocka_unit_test(test_hold_env_then_argv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
