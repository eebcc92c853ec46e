/* telemetry_json — see telemetry_json.h.
 *
 * Doubles are written as "%.10g" (10 significant digits), non-finite ones as
 * null (unreachable from parsed input). */
#include "telemetry_json.h"

#include "jsonw.h"
#include "telemetry.h"
#include "topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- output ------------------------------------------------------------ */

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days): exact for every int64 input we can be given. */
static void telemetry_json__civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static void telemetry_json__put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

size_t telemetry_format_iso(int64_t epoch_ms, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return 0;
    /* Floor division, so times before 1970 still give ms in 0..999. */
    int64_t ms = epoch_ms % 1000, secs = epoch_ms / 1000;
    if (ms < 0) {
        ms += 1000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    int mo, d;
    telemetry_json__civil_from_days(days, &y, &mo, &d);
    int hh = (int)(sod / 3600), mi = (int)(sod / 60 % 60), ss = (int)(sod % 60);

    if (y >= 0 && y <= 9999) {
        /* The hot path (every reading): no snprintf. */
        if (len < 25) {
            buf[0] = '\0';
            return 0;
        }
        telemetry_json__put2(buf, (int)(y / 100));
        telemetry_json__put2(buf + 2, (int)(y % 100));
        buf[4] = '-';
        telemetry_json__put2(buf + 5, mo);
        buf[7] = '-';
        telemetry_json__put2(buf + 8, d);
        buf[10] = 'T';
        telemetry_json__put2(buf + 11, hh);
        buf[13] = ':';
        telemetry_json__put2(buf + 14, mi);
        buf[16] = ':';
        telemetry_json__put2(buf + 17, ss);
        buf[19] = '.';
        buf[20] = (char)('0' + ms / 100);
        telemetry_json__put2(buf + 21, (int)(ms % 100));
        buf[23] = 'Z';
        buf[24] = '\0';
        return 24;
    }
    int w = snprintf(buf, len, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, hh,
                     mi, ss, (int)ms);
    if (w < 0 || (size_t)w >= len) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)w;
}

/* "k":"<ISO time>"; an unrepresentable time poisons the writer. */
static void telemetry_json__iso(jsonw *w, const char *k, int64_t ms)
{
    jsonw_key(w, k);
    char tmp[64];
    size_t n = telemetry_format_iso(ms, tmp, sizeof tmp);
    if (n == 0) {
        w->ok = 0;
        return;
    }
    JSONW_LIT(w, "\"");
    jsonw_raw(w, tmp, n);
    JSONW_LIT(w, "\"");
}

/* Closes the object; 0 (buf "") if anything did not fit. */
static size_t telemetry_json__end(jsonw *w)
{
    JSONW_LIT(w, "}");
    return jsonw_finish(w);
}

size_t telemetry_reading_json(const telemetry_reading *r, char *buf, size_t len)
{
    if (r == NULL || buf == NULL || len == 0)
        return 0;
    jsonw w;
    jsonw_init(&w, buf, len);
    uint32_t p = r->present;
    JSONW_LIT(&w, "{");
    if (p & TELEMETRY_HAS_SENSOR_TYPE) {
        jsonw_key(&w, "sensor_type");
        jsonw_str(&w, r->sensor_type);
    }
    jsonw_key(&w, "device_id");
    jsonw_str(&w, r->device_id);
    if (p & TELEMETRY_HAS_OBJECT_TEMP)
        jsonw_double(&w, "object_temp", r->object_temp);
    if (p & TELEMETRY_HAS_AMBIENT_TEMP)
        jsonw_double(&w, "ambient_temp", r->ambient_temp);
    if (p & TELEMETRY_HAS_HEART_RATE)
        jsonw_double(&w, "heart_rate", r->heart_rate);
    if (p & TELEMETRY_HAS_SPO2)
        jsonw_double(&w, "spo2", r->spo2);
    if (p & TELEMETRY_HAS_UPTIME)
        jsonw_int(&w, "timestamp", r->uptime_ms);
    if (p & TELEMETRY_HAS_SEQ)
        jsonw_int(&w, "seq", r->seq);
    if (p & TELEMETRY_HAS_BOOT)
        jsonw_int(&w, "boot", r->boot);
    if (p & TELEMETRY_HAS_TS)
        jsonw_int(&w, "ts", r->ts_ms);
    if (p & TELEMETRY_HAS_HR_VALID)
        jsonw_bool(&w, "hr_valid", r->hr_valid);
    if (p & TELEMETRY_HAS_SPO2_VALID)
        jsonw_bool(&w, "spo2_valid", r->spo2_valid);
    if (p & TELEMETRY_HAS_TEMP_VALID)
        jsonw_bool(&w, "temp_valid", r->temp_valid);
    if (p & TELEMETRY_HAS_BATTERY)
        jsonw_double(&w, "battery", r->battery);
    if (p & TELEMETRY_HAS_RSSI)
        jsonw_int(&w, "rssi", r->rssi);
    if (p & TELEMETRY_HAS_FW) {
        jsonw_key(&w, "fw");
        jsonw_str(&w, r->fw);
    }
    telemetry_json__iso(&w, "received_at", r->received_ms);
    jsonw_key(&w, "topic");
    /* Parsed readings always have a valid id; a hand-filled one that cannot
     * form a topic gets no JSON rather than a wrong topic. */
    char topic[TOPICS_BUF_SIZE];
    if (topics_build(TOPICS_DATA, r->device_id, topic, sizeof topic, NULL) == TOPICS_OK)
        jsonw_str(&w, topic);
    else
        w.ok = 0;
    return telemetry_json__end(&w);
}

size_t telemetry_status_json(const telemetry_status *s, char *buf, size_t len)
{
    if (s == NULL || buf == NULL || len == 0)
        return 0;
    jsonw w;
    jsonw_init(&w, buf, len);
    JSONW_LIT(&w, "{");
    jsonw_key(&w, "device_id");
    jsonw_str(&w, s->device_id);
    jsonw_key(&w, "status");
    if (s->online)
        JSONW_LIT(&w, "\"online\"");
    else
        JSONW_LIT(&w, "\"offline\"");
    if (s->present & TELEMETRY_STATUS_HAS_FW) {
        jsonw_key(&w, "fw");
        jsonw_str(&w, s->fw);
    }
    if (s->present & TELEMETRY_STATUS_HAS_INTERVAL)
        jsonw_int(&w, "interval_ms", s->interval_ms);
    if (s->present & TELEMETRY_STATUS_HAS_BOOT)
        jsonw_int(&w, "boot", s->boot);
    telemetry_json__iso(&w, "received_at", s->received_ms);
    return telemetry_json__end(&w);
}
