/* Tests for device/telemetry_enc: the wire shape of a reading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "telemetry_enc.h"

static tenc_reading sample_reading(void)
{
    tenc_reading r = {
        .object_temp = 36.6, .ambient_temp = 24.1, .heart_rate = 72.4, .spo2 = 98.2,
        .hr_valid = true, .spo2_valid = true, .temp_valid = true,
        .uptime_ms = 123456, .seq = 1041, .boot = 7, .ts_synced = true,
        .ts_ms = 1795794000123ULL, .battery = 87, .rssi = -61,
    };
    return r;
}

static void test_full_reading(void **state)
{
    (void)state;
    tenc_reading r = sample_reading();
    char buf[TENC_MAX_LEN];
    size_t len = 0;
    assert_int_equal(tenc_encode(&r, "ESP32_001", "0.1.0", buf, sizeof buf, &len), TENC_OK);
    assert_int_equal(len, strlen(buf));
    assert_string_equal(buf,
        "{\"sensor_type\":\"MAX30614\",\"device_id\":\"ESP32_001\",\"object_temp\":36.60,"
        "\"ambient_temp\":24.10,\"heart_rate\":72,\"spo2\":98,\"timestamp\":123456,"
        "\"seq\":1041,\"boot\":7,\"ts\":1795794000123,\"hr_valid\":true,\"spo2_valid\":true,"
        "\"temp_valid\":true,\"battery\":87,\"rssi\":-61,\"fw\":\"0.1.0\"}");
}

static void test_invalid_vitals_omitted_never_zero(void **state)
{
    (void)state;
    tenc_reading r = sample_reading();
    r.hr_valid = false;
    r.spo2_valid = false;
    r.heart_rate = 0;
    r.spo2 = 0;
    char buf[TENC_MAX_LEN];
    assert_int_equal(tenc_encode(&r, "ESP32_001", "0.1.0", buf, sizeof buf, NULL), TENC_OK);
    assert_null(strstr(buf, "heart_rate"));
    assert_null(strstr(buf, "spo2\""));
    assert_non_null(strstr(buf, "\"hr_valid\":false"));
    assert_non_null(strstr(buf, "\"spo2_valid\":false"));
    assert_non_null(strstr(buf, "\"object_temp\":36.60"));
}

static void test_out_of_range_treated_as_invalid(void **state)
{
    (void)state;
    tenc_reading r = sample_reading();
    r.heart_rate = 400;     /* vigild would reject the whole message */
    r.spo2 = NAN;
    r.object_temp = 80;
    char buf[TENC_MAX_LEN];
    assert_int_equal(tenc_encode(&r, "ESP32_001", NULL, buf, sizeof buf, NULL), TENC_OK);
    assert_null(strstr(buf, "heart_rate"));
    assert_null(strstr(buf, "\"spo2\""));
    assert_null(strstr(buf, "object_temp"));
    assert_non_null(strstr(buf, "\"hr_valid\":false"));
    assert_non_null(strstr(buf, "\"temp_valid\":false"));
    assert_non_null(strstr(buf, "\"ambient_temp\":24.10"));
    assert_null(strstr(buf, "\"fw\""));
}

static void test_unsynced_has_no_ts_and_optional_fields(void **state)
{
    (void)state;
    tenc_reading r = sample_reading();
    r.ts_synced = false;
    r.battery = -1;
    r.rssi = 1;
    char buf[TENC_MAX_LEN];
    assert_int_equal(tenc_encode(&r, "a.b-c_9", "0.1.0", buf, sizeof buf, NULL), TENC_OK);
    assert_null(strstr(buf, "\"ts\""));
    assert_null(strstr(buf, "battery"));
    assert_null(strstr(buf, "rssi"));
    assert_non_null(strstr(buf, "\"timestamp\":123456"));
}

static void test_fw_escaped_and_long_fw_dropped(void **state)
{
    (void)state;
    tenc_reading r = sample_reading();
    char buf[TENC_MAX_LEN];
    assert_int_equal(tenc_encode(&r, "X", "1\"2\\", buf, sizeof buf, NULL), TENC_OK);
    assert_non_null(strstr(buf, "\"fw\":\"1\\\"2\\\\\"}"));
    assert_int_equal(tenc_encode(&r, "X", "0123456789012345678901234567890123", buf, sizeof buf,
                                 NULL), TENC_OK);
    assert_null(strstr(buf, "\"fw\""));
}

static void test_bad_args_and_truncation(void **state)
{
    (void)state;
    tenc_reading r = sample_reading();
    char buf[TENC_MAX_LEN];
    assert_int_equal(tenc_encode(&r, "bad/id", "0", buf, sizeof buf, NULL), TENC_EINVAL);
    assert_int_equal(tenc_encode(&r, "", "0", buf, sizeof buf, NULL), TENC_EINVAL);
    assert_int_equal(tenc_encode(NULL, "X", "0", buf, sizeof buf, NULL), TENC_EINVAL);
    assert_int_equal(tenc_encode(&r, "X", "0", buf, 40, NULL), TENC_ETRUNC);
    char id65[66];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    assert_false(tenc_valid_device_id(id65));
    id65[64] = '\0';
    assert_true(tenc_valid_device_id(id65));
    /* The longest possible reading fits TENC_MAX_LEN. */
    r.seq = UINT64_MAX;
    r.uptime_ms = UINT64_MAX;
    r.ts_ms = UINT64_MAX;
    r.boot = UINT32_MAX;
    r.object_temp = -19.999;
    r.ambient_temp = -39.999;
    r.battery = 100;
    r.rssi = -127;
    r.heart_rate = 300;
    r.spo2 = 100;
    assert_int_equal(tenc_encode(&r, id65, "01234567890123456789012345678901", buf, sizeof buf,
                                 NULL), TENC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_reading),
        cmocka_unit_test(test_invalid_vitals_omitted_never_zero),
        cmocka_unit_test(test_out_of_range_treated_as_invalid),
        cmocka_unit_test(test_unsynced_has_no_ts_and_optional_fields),
        cmocka_unit_test(test_fw_escaped_and_long_fw_dropped),
        cmocka_unit_test(test_bad_args_and_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
