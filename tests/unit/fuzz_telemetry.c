/* libFuzzer target for server/telemetry.c.
 *
 * Input: "<topic>\n<payload>" (no '\n': all topic, empty payload). Runs the
 * topic, data and status parsers; every accepted message is serialized, and
 * the output must be valid JSON that the data parser accepts again with the
 * same fields (the dashboard and the store rely on that). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry.h"
#include "fuzz_check.h"


static void check_json_object(const char *buf, size_t n)
{
    cJSON *o = cJSON_ParseWithLengthOpts(buf, n + 1, NULL, 1);
    CHECK(o != NULL);
    CHECK(cJSON_IsObject(o));
    cJSON_Delete(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t topic_len = nl != NULL ? (size_t)(nl - in) : size;
    const char *payload = nl != NULL ? nl + 1 : in + size;
    size_t len = nl != NULL ? size - topic_len - 1 : 0;

    char id[TELEMETRY_ID_MAX + 1];
    telemetry_kind kind;
    if (telemetry_parse_topic(in, topic_len, id, &kind) != TELEMETRY_OK)
        memcpy(id, "fuzz", 5); /* still exercise the payload parsers */
    CHECK(telemetry_id_valid(id, strlen(id)));

    char detail[128];
    char out[8192];
    telemetry_reading r;
    telemetry_reason rc = telemetry_parse_data(id, payload, len, 0, &r, detail, sizeof detail);
    CHECK((unsigned)rc < TELEMETRY_REASON_COUNT);
    CHECK(strlen(detail) < sizeof detail);
    if (rc == TELEMETRY_OK) {
        CHECK(strcmp(r.device_id, id) == 0);
        r.received_ms = r.uptime_ms; /* any value the parser produced */
        size_t n = telemetry_reading_json(&r, out, sizeof out);
        CHECK(n > 0 && n < sizeof out && out[n] == '\0');
        check_json_object(out, n);
        /* Round trip: our own output is a valid payload with the same fields. */
        telemetry_reading back;
        CHECK(telemetry_parse_data(id, out, n, sizeof out, &back, NULL, 0) == TELEMETRY_OK);
        CHECK(back.present == r.present);
        CHECK(back.seq == r.seq && back.boot == r.boot && back.ts_ms == r.ts_ms);
        CHECK(back.uptime_ms == r.uptime_ms && back.rssi == r.rssi);
        CHECK(strcmp(back.sensor_type, r.sensor_type) == 0 && strcmp(back.fw, r.fw) == 0);
        /* A short buffer gives 0, never a truncated object. */
        CHECK(telemetry_reading_json(&r, out, n) == 0);
    }

    telemetry_status s;
    rc = telemetry_parse_status(id, payload, len, 0, &s, detail, sizeof detail);
    CHECK((unsigned)rc < TELEMETRY_REASON_COUNT);
    if (rc == TELEMETRY_OK) {
        s.received_ms = s.boot;
        size_t n = telemetry_status_json(&s, out, sizeof out);
        CHECK(n > 0 && n < sizeof out);
        check_json_object(out, n);
    }
    return 0;
}
