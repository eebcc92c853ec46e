/* test_mlx90614 — MLX90614 driver against the register model: PEC, conversion,
 * error flag, retries, recovery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mlx90614.h"
#include "mlx90614_model.h"
#include "sensor_bus.h"

static void test_pec_vector(void **state)
{
    (void)state;
    const uint8_t v[5] = {0xB4, 0x07, 0xB5, 0xD2, 0x3A};
    assert_int_equal(mlx90614_pec(v, 5), 0x30);
    assert_int_equal(mlx90614_pec(v, 0), 0x00);
}

static void test_conversion(void **state)
{
    (void)state;
    assert_float_equal(mlx90614_raw_to_celsius(0x3AD2), 28.01f, 0.005f);
    assert_float_equal(mlx90614_raw_to_celsius(0x0000), -273.15f, 0.005f);
    assert_int_equal(mlx_model_raw_from_celsius(28.01f), 0x3AD2);
}

typedef struct fx {
    mlx_model m;
    i2c_bus bus;
    mlx90614 dev;
} fx;

static int setup(void **state)
{
    static fx f;
    mlx_model_init(&f.m);
    mlx_model_bus(&f.m, &f.bus);
    assert_int_equal(mlx90614_init(&f.dev, &f.bus, 0), MLX90614_OK);
    *state = &f;
    return 0;
}

static void test_reads_truth(void **state)
{
    fx *f = *state;
    mlx_model_set_temps(&f->m, 22.5f, 36.9f);
    float ta = 0, to = 0, e = 0;
    assert_int_equal(mlx90614_read_ambient(&f->dev, &ta), MLX90614_OK);
    assert_int_equal(mlx90614_read_object(&f->dev, &to), MLX90614_OK);
    assert_float_equal(ta, 22.5f, 0.011f);
    assert_float_equal(to, 36.9f, 0.011f);
    assert_int_equal(mlx90614_read_emissivity(&f->dev, &e), MLX90614_OK);
    assert_float_equal(e, 1.0f, 1e-6f);
    f->m.emissivity_raw = 0xF332; /* 0.95 */
    assert_int_equal(mlx90614_read_emissivity(&f->dev, &e), MLX90614_OK);
    assert_float_equal(e, 0.95f, 0.001f);
    assert_int_equal(f->dev.stats.pec_errors, 0);
}

static void test_error_flag(void **state)
{
    fx *f = *state;
    f->m.error_flag = true;
    float to = -1000.0f;
    assert_int_equal(mlx90614_read_object(&f->dev, &to), MLX90614_ERR_FLAG);
    assert_float_equal(to, -1000.0f, 0.0f); /* out-param untouched */
    assert_int_equal(f->dev.stats.flag_errors, 1);
}

static void test_pec_failure_then_success(void **state)
{
    fx *f = *state;
    f->m.corrupt_pec_reads = 2; /* two bad frames, the third is fine */
    float to = 0;
    assert_int_equal(mlx90614_read_object(&f->dev, &to), MLX90614_OK);
    assert_float_equal(to, 36.6f, 0.011f);
    assert_int_equal(f->dev.stats.pec_errors, 2);
    assert_int_equal(f->m.transactions, 3);
}

static void test_persistent_pec_failure(void **state)
{
    fx *f = *state;
    f->m.corrupt_pec_reads = 100;
    float to = -1000.0f;
    assert_int_equal(mlx90614_read_object(&f->dev, &to), MLX90614_ERR_PEC);
    assert_float_equal(to, -1000.0f, 0.0f);
    assert_int_equal(f->m.transactions, MLX90614_DEFAULT_ATTEMPTS); /* bounded */
}

static void test_nack_then_success(void **state)
{
    fx *f = *state;
    f->m.nack_reads = 1;
    float ta = 0;
    assert_int_equal(mlx90614_read_ambient(&f->dev, &ta), MLX90614_OK);
    assert_int_equal(f->dev.stats.bus_errors, 1);
    assert_int_equal(f->m.recovers, 1); /* bus error → recover before retry */
}

static void test_persistent_nack(void **state)
{
    fx *f = *state;
    f->m.nack_reads = 100;
    float ta = 0;
    assert_int_equal(mlx90614_read_ambient(&f->dev, &ta), MLX90614_ERR_BUS);
    assert_int_equal(f->m.transactions, MLX90614_DEFAULT_ATTEMPTS);
}

static void test_plausibility(void **state)
{
    fx *f = *state;
    float t = -1000.0f;
    mlx_model_set_temps(&f->m, 200.0f, 36.0f); /* Ta beyond 125 °C */
    assert_int_equal(mlx90614_read_ambient(&f->dev, &t), MLX90614_ERR_RANGE);
    assert_float_equal(t, -1000.0f, 0.0f);
    mlx_model_set_temps(&f->m, 25.0f, 400.0f); /* To beyond 380 °C */
    assert_int_equal(mlx90614_read_object(&f->dev, &t), MLX90614_ERR_RANGE);
    mlx_model_set_temps(&f->m, -39.9f, -69.9f); /* just inside the limits */
    assert_int_equal(mlx90614_read_ambient(&f->dev, &t), MLX90614_OK);
    assert_int_equal(mlx90614_read_object(&f->dev, &t), MLX90614_OK);
    f->m.emissivity_raw = 0;
    assert_int_equal(mlx90614_read_emissivity(&f->dev, &t), MLX90614_ERR_RANGE);
}

/* A wedged bus (SDA held low) times out every device until recover(); the
 * driver recovers and the retry succeeds, and the MAX30102 sharing the bus
 * works again too. */
static void test_stuck_bus_recovered(void **state)
{
    (void)state;
    static mlx_model mm;
    static max_model xm;
    sensor_bus sb;
    mlx_model_init(&mm);
    max_model_init(&xm, NULL);
    sensor_bus_init(&sb, &mm, &xm);
    mlx90614 dev;
    assert_int_equal(mlx90614_init(&dev, sensor_bus_i2c(&sb), 0), MLX90614_OK);
    mm.stuck = true;
    float to = 0;
    assert_int_equal(mlx90614_read_object(&dev, &to), MLX90614_OK);
    assert_float_equal(to, 36.6f, 0.011f);
    assert_int_equal(sb.recovers, 1);
    assert_int_equal(dev.stats.recoveries, 1);
    assert_false(mm.stuck);
}

static void test_no_recover_callback(void **state)
{
    fx *f = *state;
    f->bus.recover = NULL; /* optional in the seam */
    f->m.nack_reads = 1;
    float ta = 0;
    assert_int_equal(mlx90614_read_ambient(&f->dev, &ta), MLX90614_OK);
    assert_int_equal(f->dev.stats.recoveries, 0);
    f->bus.recover = mlx_model_recover;
}

static void test_bad_args(void **state)
{
    fx *f = *state;
    float t;
    uint16_t w;
    assert_int_equal(mlx90614_init(NULL, &f->bus, 0), MLX90614_ERR_ARG);
    assert_int_equal(mlx90614_read_object(&f->dev, NULL), MLX90614_ERR_ARG);
    assert_int_equal(mlx90614_read_word(NULL, 0x07, &w), MLX90614_ERR_ARG);
    mlx90614 unbound = {0};
    assert_int_equal(mlx90614_read_ambient(&unbound, &t), MLX90614_ERR_ARG);
    assert_string_equal(mlx90614_status_str(MLX90614_ERR_PEC), "pec mismatch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pec_vector),
        cmocka_unit_test(test_conversion),
        cmocka_unit_test_setup(test_reads_truth, setup),
        cmocka_unit_test_setup(test_error_flag, setup),
        cmocka_unit_test_setup(test_pec_failure_then_success, setup),
        cmocka_unit_test_setup(test_persistent_pec_failure, setup),
        cmocka_unit_test_setup(test_nack_then_success, setup),
        cmocka_unit_test_setup(test_persistent_nack, setup),
        cmocka_unit_test_setup(test_plausibility, setup),
        cmocka_unit_test(test_stuck_bus_recovered),
        cmocka_unit_test_setup(test_no_recover_callback, setup),
        cmocka_unit_test_setup(test_bad_args, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
