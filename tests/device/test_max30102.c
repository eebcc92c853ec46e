/* test_max30102 — MAX30102 driver against the register model: init
 * sequence, part id, FIFO format, pointer wrap, overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "max30102.h"
#include "max30102_model.h"
#include "sensor_bus.h"

typedef struct fx {
    max_model m;
    sensor_bus sb;
    max30102 dev;
} fx;

static int setup(void **state)
{
    static fx f;
    max_model_init(&f.m, NULL);
    sensor_bus_init(&f.sb, NULL, &f.m);
    *state = &f;
    return 0;
}

static void test_init_sequence(void **state)
{
    fx *f = *state;
    f->m.regs[MAX30102_REG_LED1_PA] = 0x99; /* stale value a reset must clear */
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    assert_int_equal(f->m.regs[MAX30102_REG_FIFO_CONFIG], 0x4F);
    assert_int_equal(f->m.regs[MAX30102_REG_MODE_CONFIG], 0x03);
    assert_int_equal(f->m.regs[MAX30102_REG_SPO2_CONFIG], 0x27);
    assert_int_equal(f->m.regs[MAX30102_REG_LED1_PA], 0x24);
    assert_int_equal(f->m.regs[MAX30102_REG_LED2_PA], 0x24);
    assert_int_equal(f->m.regs[MAX30102_REG_FIFO_WR_PTR], 0);
    assert_int_equal(f->m.regs[MAX30102_REG_OVF_COUNTER], 0);
    assert_int_equal(f->m.regs[MAX30102_REG_FIFO_RD_PTR], 0);
    assert_int_equal(f->dev.rev_id, 0x03);
    /* 25 sps effective: one second gives 25 samples. */
    sensor_bus_advance(&f->sb, 1000);
    assert_int_equal(max_model_fifo_level(&f->m), 25);
}

static void test_part_id_mismatch(void **state)
{
    fx *f = *state;
    f->m.part_id = 0x11; /* e.g. a MAX30100; survives the soft reset */
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_ERR_PART_ID);
    uint8_t id = 0;
    assert_int_equal(max30102_check_part_id(&f->dev, &id), MAX30102_ERR_PART_ID);
    assert_int_equal(id, 0x11);
    assert_int_equal(f->m.regs[MAX30102_REG_MODE_CONFIG], 0); /* not configured */
}

static void test_absent_chip(void **state)
{
    fx *f = *state;
    sensor_bus_init(&f->sb, NULL, NULL); /* nothing at 0x57 */
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_ERR_BUS);
}

static void test_reset_timeout(void **state)
{
    fx *f = *state;
    f->m.reset_busy_ms = 0xFFFFFFFFu; /* RESET never self-clears */
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_ERR_TIMEOUT);
    assert_true(f->sb.now_ms <= MAX30102_RESET_POLLS); /* bounded wait */
}

static void test_fifo_known_samples(void **state)
{
    fx *f = *state;
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    max_model_push_sample(&f->m, 100000, 0x3FFFF);
    max_model_push_sample(&f->m, 1, 131072);
    max30102_sample s[4];
    size_t n = 0;
    uint32_t lost = 99;
    assert_int_equal(max30102_read_fifo(&f->dev, s, 4, &n, &lost), MAX30102_OK);
    assert_int_equal(n, 2);
    assert_int_equal(lost, 0);
    assert_int_equal(s[0].red, 100000); /* 01 86 A0 */
    assert_int_equal(s[0].ir, 0x3FFFF);
    assert_int_equal(s[1].red, 1);
    assert_int_equal(s[1].ir, 131072);
    assert_int_equal(max30102_read_fifo(&f->dev, s, 4, &n, &lost), MAX30102_OK);
    assert_int_equal(n, 0);
}

static void test_fifo_masks_upper_bits(void **state)
{
    fx *f = *state;
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    /* Bits above 18 must be ignored even if the bus returns them. */
    f->m.fifo_red[0] = 0xFFFFFF;
    f->m.fifo_ir[0] = 0xC00001;
    f->m.regs[MAX30102_REG_FIFO_WR_PTR] = 1;
    f->m.fifo_count = 1;
    max30102_sample s[1];
    size_t n;
    assert_int_equal(max30102_read_fifo(&f->dev, s, 1, &n, NULL), MAX30102_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].red, 0x3FFFF);
    assert_int_equal(s[0].ir, 1);
}

static void test_pointer_wrap(void **state)
{
    fx *f = *state;
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    max30102_sample s[32];
    size_t n;
    uint32_t next = 0, expect = 0;
    /* 5 rounds of 13 samples: pointers wrap past 31 twice. */
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 13; i++, next++)
            max_model_push_sample(&f->m, 1000 + next, 2000 + next);
        assert_int_equal(max30102_read_fifo(&f->dev, s, 32, &n, NULL), MAX30102_OK);
        assert_int_equal(n, 13);
        for (size_t i = 0; i < n; i++, expect++) {
            assert_int_equal(s[i].red, 1000 + expect);
            assert_int_equal(s[i].ir, 2000 + expect);
        }
    }
    assert_int_equal(f->m.regs[MAX30102_REG_FIFO_WR_PTR], (5 * 13) % 32);
    /* Smaller caller buffer: the rest waits for the next call. */
    for (int i = 0; i < 10; i++)
        max_model_push_sample(&f->m, 7, 8);
    assert_int_equal(max30102_read_fifo(&f->dev, s, 4, &n, NULL), MAX30102_OK);
    assert_int_equal(n, 4);
    assert_int_equal(max30102_read_fifo(&f->dev, s, 32, &n, NULL), MAX30102_OK);
    assert_int_equal(n, 6);
}

static void test_overflow_reported(void **state)
{
    fx *f = *state;
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    for (uint32_t i = 0; i < 40; i++) /* 8 more than the FIFO holds */
        max_model_push_sample(&f->m, i, i);
    max30102_sample s[32];
    size_t n;
    uint32_t lost = 0;
    assert_int_equal(max30102_read_fifo(&f->dev, s, 32, &n, &lost), MAX30102_OK);
    assert_int_equal(n, 32); /* WR == RD with OVF ≠ 0 means full, not empty */
    assert_int_equal(lost, 8);
    /* 0x4F has ROLLOVER off: the FIFO froze with the oldest 32, the newest
     * 8 were dropped. */
    assert_int_equal(s[0].red, 0);
    assert_int_equal(s[31].red, 31);
    assert_int_equal(f->dev.samples_lost, 8);
    assert_int_equal(max30102_read_fifo(&f->dev, s, 32, &n, &lost), MAX30102_OK);
    assert_int_equal(n, 0);
    assert_int_equal(lost, 0); /* counter cleared by the pops */
    /* Virtual time: a 3 s stall at 25 sps loses 75 − 32 = 43, the counter
     * saturates at 31. */
    sensor_bus_advance(&f->sb, 3000);
    assert_int_equal(max30102_read_fifo(&f->dev, s, 32, &n, &lost), MAX30102_OK);
    assert_int_equal(n, 32);
    assert_int_equal(lost, 31);
}

static void test_overflow_with_rollover(void **state)
{
    fx *f = *state;
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    f->m.regs[MAX30102_REG_FIFO_CONFIG] |= 0x10; /* ROLLOVER on: keeps the newest */
    for (uint32_t i = 0; i < 40; i++)
        max_model_push_sample(&f->m, i, i);
    max30102_sample s[32];
    size_t n;
    uint32_t lost = 0;
    assert_int_equal(max30102_read_fifo(&f->dev, s, 32, &n, &lost), MAX30102_OK);
    assert_int_equal(n, 32);
    assert_int_equal(lost, 8);
    assert_int_equal(s[0].red, 8);
    assert_int_equal(s[31].red, 39);
}

static void test_bus_error_on_read(void **state)
{
    fx *f = *state;
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    for (int i = 0; i < 12; i++)
        max_model_push_sample(&f->m, 5, 6);
    max30102_sample s[32];
    size_t n = 99;
    f->m.nack_transactions = 1; /* the pointer read is NACKed */
    assert_int_equal(max30102_read_fifo(&f->dev, s, 32, &n, NULL), MAX30102_ERR_BUS);
    assert_int_equal(n, 0); /* the pointer read itself failed */
    assert_int_equal(max30102_read_fifo(&f->dev, s, 32, &n, NULL), MAX30102_OK);
    assert_int_equal(n, 12);
}

static void test_die_temp_and_shutdown(void **state)
{
    fx *f = *state;
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    f->m.die_temp_c = 30.3125f;
    float t = 0;
    assert_int_equal(max30102_read_die_temp(&f->dev, &t), MAX30102_OK);
    assert_float_equal(t, 30.3125f, 0.001f);
    f->m.die_temp_c = -5.5f;
    assert_int_equal(max30102_read_die_temp(&f->dev, &t), MAX30102_OK);
    assert_float_equal(t, -5.5f, 0.07f);
    assert_int_equal(max30102_shutdown(&f->dev, true), MAX30102_OK);
    unsigned before = max_model_fifo_level(&f->m);
    sensor_bus_advance(&f->sb, 1000);
    assert_int_equal(max_model_fifo_level(&f->m), before); /* no sampling */
    assert_int_equal(max30102_shutdown(&f->dev, false), MAX30102_OK);
    assert_int_equal(f->m.regs[MAX30102_REG_MODE_CONFIG], 0x03);
    assert_string_equal(max30102_status_str(MAX30102_ERR_PART_ID), "unexpected part id");
}

static void test_bad_args(void **state)
{
    fx *f = *state;
    max30102_sample s[1];
    size_t n;
    assert_int_equal(max30102_init(NULL, sensor_bus_i2c(&f->sb), 0), MAX30102_ERR_ARG);
    assert_int_equal(max30102_init(&f->dev, NULL, 0), MAX30102_ERR_ARG);
    assert_int_equal(max30102_init(&f->dev, sensor_bus_i2c(&f->sb), 0), MAX30102_OK);
    assert_int_equal(max30102_read_fifo(&f->dev, s, 0, &n, NULL), MAX30102_ERR_ARG);
    assert_int_equal(max30102_read_fifo(&f->dev, NULL, 1, &n, NULL), MAX30102_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_init_sequence, setup),
        cmocka_unit_test_setup(test_part_id_mismatch, setup),
        cmocka_unit_test_setup(test_absent_chip, setup),
        cmocka_unit_test_setup(test_reset_timeout, setup),
        cmocka_unit_test_setup(test_fifo_known_samples, setup),
        cmocka_unit_test_setup(test_fifo_masks_upper_bits, setup),
        cmocka_unit_test_setup(test_pointer_wrap, setup),
        cmocka_unit_test_setup(test_overflow_reported, setup),
        cmocka_unit_test_setup(test_overflow_with_rollover, setup),
        cmocka_unit_test_setup(test_bus_error_on_read, setup),
        cmocka_unit_test_setup(test_die_temp_and_shutdown, setup),
        cmocka_unit_test_setup(test_bad_args, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
