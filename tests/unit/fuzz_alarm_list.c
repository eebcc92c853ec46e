/* libFuzzer target for the alarm messages between instances
 * (server/alarm_wire.c): the retained alarms/esp32/{id} list a non-owner
 * reads back, and the vigil/cluster/alarm-ops operations.
 *
 * Invariants: parsing never crashes; an accepted list has at most one alarm
 * per condition, all of its device; each alarm written again (alarm_json)
 * parses back to JSON that is byte-identical (a stable round trip); an
 * accepted op built again parses back to the same op. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alarm_wire.h"
#include "fuzz_check.h"

static void fuzz__list(const char *data, size_t size)
{
    char dev[ALARM_ID_MAX + 1];
    alarm_rec v[ALARM_COND_COUNT];
    size_t n = 99;
    if (alarm_wire_parse_list(data, size, dev, v, &n) != ALARM_OK) {
        CHECK(n == 0);
        return;
    }
    CHECK(n <= ALARM_COND_COUNT);
    for (size_t i = 0; i < n; i++) {
        CHECK(!strcmp(v[i].device_id, dev));
        for (size_t k = 0; k < i; k++)
            CHECK(v[k].condition != v[i].condition);
        char a[ALARM_JSON_MAX], b[ALARM_JSON_MAX];
        size_t la = alarm_json(&v[i], a, sizeof a);
        CHECK(la > 0);
        cJSON *j = cJSON_ParseWithLength(a, la);
        alarm_rec again;
        CHECK(alarm_wire_parse_alarm(j, &again) == ALARM_OK);
        cJSON_Delete(j);
        size_t lb = alarm_json(&again, b, sizeof b);
        CHECK(lb > 0);
        cJSON *j2 = cJSON_ParseWithLength(b, lb);
        alarm_rec third;
        CHECK(alarm_wire_parse_alarm(j2, &third) == ALARM_OK);
        cJSON_Delete(j2);
        char c[ALARM_JSON_MAX];
        size_t lc = alarm_json(&third, c, sizeof c);
        CHECK(lc == lb && !memcmp(b, c, lb));
    }
}

static void fuzz__op(const char *data, size_t size)
{
    vigil_alarm_op op, again;
    if (alarm_wire_parse_op(data, size, &op) != ALARM_OK)
        return;
    char buf[ALARM_WIRE_OP_MAX];
    size_t n = alarm_wire_build_op(&op, 1, buf, sizeof buf);
    CHECK(n > 0);
    CHECK(alarm_wire_parse_op(buf, n, &again) == ALARM_OK);
    CHECK(again.kind == op.kind && again.alarm_id == op.alarm_id && again.seconds == op.seconds);
    CHECK(!strcmp(again.device_id, op.device_id) && !strcmp(again.user, op.user));
    CHECK((op.settings == NULL) == (again.settings == NULL));
    if (op.settings)
        CHECK(!memcmp(op.settings, again.settings, sizeof *op.settings));
    free(op.settings);
    free(again.settings);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz__list((const char *)data, size);
    fuzz__op((const char *)data, size);
    return 0;
}
