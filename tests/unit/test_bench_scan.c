/* Tests for bench/bench_scan.c: the (device, seq) pairs the receivers find
 * in vigild's batched arrays, the relay's raw payloads, spaced JSON and MQTT
 * deliveries (device from the topic); what must not count — snapshots,
 * string values and longer key names that contain a key, a device from an
 * earlier message; the number reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "bench_scan.h"

typedef struct found {
    long dev[16], seq[16];
    size_t n;
} found;

static void collect(void *ctx, long dev, long seq)
{
    found *f = ctx;
    assert_true(f->n < 16);
    f->dev[f->n] = dev;
    f->seq[f->n++] = seq;
}

static found scan(const char *s, long dev_known)
{
    found f = {0};
    size_t n = bench_scan_json(s, strlen(s), dev_known, collect, &f);
    assert_int_equal(n, f.n);
    return f;
}

/* One READING as vigild sends it (captured), with device and seq set. */
#define ITEM(dev, seq)                                                                          \
    "{\"type\":\"sensor_data\",\"data\":{\"sensor_type\":\"MAX30614\",\"device_id\":\"B" dev    \
    "\",\"object_temp\":36.6,\"ambient_temp\":24.1,\"heart_rate\":60,\"spo2\":98,"               \
    "\"timestamp\":595,\"seq\":" seq ",\"boot\":49227,\"received_at\":\"2026-12-01T18:20:27.967Z\"," \
    "\"topic\":\"sensors/esp32/B" dev "/data\",\"news2\":{\"score\":0,\"partial\":true,"          \
    "\"measured\":[\"spo2\",\"pulse\"],\"not_measured\":[\"respiration_rate\",\"blood_pressure\","  \
    "\"consciousness\",\"supplemental_o2\",\"temperature\"],\"spo2\":0,\"pulse\":0}}}"

static void test_vigild_batch(void **state)
{
    (void)state;
    found f = scan("[" ITEM("000000", "0") "," ITEM("000047", "12") "," ITEM("999999", "123456") "]", -1);
    assert_int_equal(f.n, 3);
    assert_int_equal(f.dev[0], 0);
    assert_int_equal(f.seq[0], 0);
    assert_int_equal(f.dev[1], 47);
    assert_int_equal(f.seq[1], 12);
    assert_int_equal(f.dev[2], 999999);
    assert_int_equal(f.seq[2], 123456);
    f = scan(ITEM("000042", "7"), -1); /* a lone message, not in an array */
    assert_int_equal(f.n, 1);
    assert_int_equal(f.dev[0], 42);
    assert_int_equal(f.seq[0], 7);
}

static void test_relay_payload_and_topic(void **state)
{
    (void)state;
    static const char pl[] = "{\"sensor_type\":\"MAX30614\",\"device_id\":\"B000042\",\"object_temp\":36.6,"
                             "\"heart_rate\":72,\"spo2\":98,\"timestamp\":1234567,\"seq\":17,\"boot\":49227}";
    found f = scan(pl, -1);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.dev[0], 42);
    assert_int_equal(f.seq[0], 17);
    f = scan(pl, 5); /* MQTT: the topic said device 5; device_id is not read */
    assert_int_equal(f.n, 1);
    assert_int_equal(f.dev[0], 5);
    assert_int_equal(f.seq[0], 17);
}

static void test_spaced_and_either_order(void **state)
{
    (void)state;
    found f = scan("[{\"type\": \"sensor_data\", \"data\": {\"seq\": 3, \"device_id\": \"B000009\"}}, "
                   "{\"type\" : \"sensor_data\", \"data\": {\"device_id\" : \"B000010\", \"seq\" : 4}}]",
                   -1);
    assert_int_equal(f.n, 2);
    assert_int_equal(f.dev[0], 9);
    assert_int_equal(f.seq[0], 3);
    assert_int_equal(f.dev[1], 10);
    assert_int_equal(f.seq[1], 4);
}

static void test_what_does_not_count(void **state)
{
    (void)state;
    /* A snapshot carries every device's last reading: not a delivery. */
    assert_int_equal(scan("{\"type\":\"snapshot\",\"devices\":[" ITEM("000001", "1") "]}", -1).n, 0);
    /* String values and longer names that contain a key. */
    assert_int_equal(scan("{\"note\":\"seq\",\"device_id\":\"B000001\",\"x\":\"\\\"seq\\\": 5\","
                          "\"subseq\":6,\"seq_no\":7}", -1).n, 0);
    /* A device of an earlier message does not pair with a later seq. */
    assert_int_equal(scan("[{\"type\":\"alarm\",\"data\":{\"device_id\":\"B000001\"}},"
                          "{\"type\":\"status\",\"seq\":5}]", -1).n, 0);
    /* A seq that is not a number. */
    assert_int_equal(scan("{\"device_id\":\"B000001\",\"seq\":\"x\"}", -1).n, 0);
    /* Cut short: a key at the very end. */
    assert_int_equal(scan("{\"device_id\":\"B000001\",\"seq\"", -1).n, 0);
    assert_int_equal(scan("", -1).n, 0);
}

static void test_num(void **state)
{
    (void)state;
    const char s[] = ":\"B000042\",";
    const char *p = s;
    assert_int_equal(bench_scan_num(&p, s + sizeof s - 1), 42);
    assert_int_equal(*p, '"');
    const char t[] = ": \"abc\"";
    p = t;
    assert_int_equal(bench_scan_num(&p, t + sizeof t - 1), -1);
    const char u[] = ":123";
    p = u;
    assert_int_equal(bench_scan_num(&p, u + 3), 12); /* stops at end */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vigild_batch),
        cmocka_unit_test(test_relay_payload_and_topic),
        cmocka_unit_test(test_spaced_and_either_order),
        cmocka_unit_test(test_what_does_not_count),
        cmocka_unit_test(test_num),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
