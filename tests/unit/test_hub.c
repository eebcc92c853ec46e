/* Unit tests for server/hub.c's messages: the frame hub_msg_new builds is
 * byte for byte what its former snprintf built ({"type":"<kind>","data":
 * <data>}), the device id is cut to its field as "%s" into it was, and
 * data_off/data_len point at the data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "hub.h"

static void check_frame(hub_kind kind, const char *type)
{
    const char *data = "{\"device_id\":\"d1\",\"spo2\":97}";
    hub_msg *m = hub_msg_new(kind, "d1", data, strlen(data));
    assert_non_null(m);
    char want[256];
    int n = snprintf(want, sizeof want, "{\"type\":\"%s\",\"data\":%s}", type, data);
    assert_int_equal(m->len, (size_t)n);
    assert_memory_equal(m->text, want, (size_t)n);
    assert_int_equal(m->text[m->len], '\0');
    assert_int_equal(m->kind, (uint8_t)kind);
    assert_string_equal(m->device_id, "d1");
    assert_int_equal(m->data_len, strlen(data));
    assert_memory_equal(m->text + m->data_off, data, m->data_len);
    hub_msg_unref(m);
}

static void test_frames(void **state)
{
    (void)state;
    check_frame(HUB_SENSOR_DATA, "sensor_data");
    check_frame(HUB_DEVICE_STATUS, "device_status");
    check_frame(HUB_COMMAND_RESULT, "command_result");
    check_frame(HUB_ALARM, "alarm");
}

static void test_long_id_cut(void **state)
{
    (void)state;
    char id[200];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    hub_msg *m = hub_msg_new(HUB_SENSOR_DATA, id, "{}", 2);
    assert_non_null(m);
    /* The first sizeof device_id - 1 bytes, terminated. */
    assert_int_equal(strlen(m->device_id), sizeof m->device_id - 1);
    assert_memory_equal(m->device_id, id, sizeof m->device_id - 1);
    assert_string_equal(m->text, "{\"type\":\"sensor_data\",\"data\":{}}");
    hub_msg_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_long_id_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
