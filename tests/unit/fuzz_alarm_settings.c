/* libFuzzer target for alarm settings bodies (server/alarm.c,
 * PUT /api/devices/{id}/alarm-settings).
 *
 * Invariants: parsing never crashes; a refused body leaves *out untouched
 * and says why; an accepted body gives settings whose JSON is accepted
 * again and yields the same settings (nothing clamped, nothing lost). */
#include <stdint.h>
#include <string.h>

#include "alarm.h"
#include "fuzz_check.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alarm_settings base, out, again;
    alarm_settings_default(&base);
    memset(&out, 0x5a, sizeof out);
    alarm_settings sentinel = out;
    char err[160];
    alarm_err r = alarm_settings_parse((const char *)data, size, &base, &out, err, sizeof err);
    if (r != ALARM_OK) {
        CHECK(r == ALARM_EINVAL);
        CHECK(err[0] != 0);
        CHECK(memcmp(&out, &sentinel, sizeof out) == 0);
        return 0;
    }
    char buf[ALARM_SETTINGS_JSON_MAX];
    size_t n = alarm_settings_json(&out, buf, sizeof buf);
    CHECK(n > 0);
    CHECK(alarm_settings_parse(buf, n, &base, &again, err, sizeof err) == ALARM_OK);
    CHECK(memcmp(&again, &out, sizeof out) == 0);
    return 0;
}
