/* telemetry_json — see telemetry_json.h.
 *
 * Doubles are written as "%.10g" (10 significant digits), non-finite ones as
 * null (unreachable from parsed input). */
#include "telemetry_json.h"

#include "telemetry.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define TOPIC_PREFIX "sensors/esp32/"

/* ---- output ------------------------------------------------------------ */

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days): exact for every int64 input we can be given. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
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

static void put2(char *p, int v)
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
    civil_from_days(days, &y, &mo, &d);
    int hh = (int)(sod / 3600), mi = (int)(sod / 60 % 60), ss = (int)(sod % 60);

    if (y >= 0 && y <= 9999) {
        /* The hot path (every reading): no snprintf. */
        if (len < 25) {
            buf[0] = '\0';
            return 0;
        }
        put2(buf, (int)(y / 100));
        put2(buf + 2, (int)(y % 100));
        buf[4] = '-';
        put2(buf + 5, mo);
        buf[7] = '-';
        put2(buf + 8, d);
        buf[10] = 'T';
        put2(buf + 11, hh);
        buf[13] = ':';
        put2(buf + 14, mi);
        buf[16] = ':';
        put2(buf + 17, ss);
        buf[19] = '.';
        buf[20] = (char)('0' + ms / 100);
        put2(buf + 21, (int)(ms % 100));
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

/* Append-only writer into the caller's buffer; any overflow poisons it so
 * the caller gets 0, never a truncated object. */
typedef struct jw {
    char *p;
    size_t cap, n;
    int ok;
    int first;
} jw;

static void jw_raw(jw *w, const char *s, size_t n)
{
    if (!w->ok)
        return;
    if (w->cap - w->n <= n) { /* keep room for the NUL */
        w->ok = 0;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

#define JW_LIT(w, lit) jw_raw((w), (lit), sizeof(lit) - 1)

/* Writes s escaped, without quotes. */
static void jw_esc(jw *w, const char *s)
{
    /* Strings were validated as printable ASCII, but escape anything else
     * too: a caller may fill the struct by hand. */
    size_t run = 0;
    for (size_t i = 0;; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '\0' && c != '"' && c != '\\' && c >= 0x20) {
            run++;
            continue;
        }
        jw_raw(w, s + i - run, run);
        run = 0;
        if (c == '\0')
            break;
        char esc[7];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jw_raw(w, esc, 2);
        } else {
            static const char hex[] = "0123456789abcdef";
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            jw_raw(w, esc, 6);
        }
    }
}

static void jw_str(jw *w, const char *s)
{
    JW_LIT(w, "\"");
    jw_esc(w, s);
    JW_LIT(w, "\"");
}

static void jw_key(jw *w, const char *k)
{
    if (!w->first)
        JW_LIT(w, ",");
    w->first = 0;
    JW_LIT(w, "\"");
    jw_raw(w, k, strlen(k));
    JW_LIT(w, "\":");
}

static void jw_double(jw *w, const char *k, double v)
{
    jw_key(w, k);
    if (!isfinite(v)) { /* never produced by parsing; JSON has no inf/nan */
        JW_LIT(w, "null");
        return;
    }
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.10g", v);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        w->ok = 0;
        return;
    }
    jw_raw(w, tmp, (size_t)n);
}

static void jw_int(jw *w, const char *k, int64_t v)
{
    jw_key(w, k);
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        w->ok = 0;
        return;
    }
    jw_raw(w, tmp, (size_t)n);
}

static void jw_bool(jw *w, const char *k, int v)
{
    jw_key(w, k);
    if (v)
        JW_LIT(w, "true");
    else
        JW_LIT(w, "false");
}

static void jw_iso(jw *w, const char *k, int64_t ms)
{
    jw_key(w, k);
    char tmp[64];
    size_t n = telemetry_format_iso(ms, tmp, sizeof tmp);
    if (n == 0) {
        w->ok = 0;
        return;
    }
    JW_LIT(w, "\"");
    jw_raw(w, tmp, n);
    JW_LIT(w, "\"");
}

static size_t jw_end(jw *w)
{
    JW_LIT(w, "}");
    if (!w->ok) {
        if (w->cap > 0)
            w->p[0] = '\0';
        return 0;
    }
    w->p[w->n] = '\0';
    return w->n;
}

size_t telemetry_reading_json(const telemetry_reading *r, char *buf, size_t len)
{
    if (r == NULL || buf == NULL || len == 0)
        return 0;
    jw w = {buf, len, 0, 1, 1};
    uint32_t p = r->present;
    JW_LIT(&w, "{");
    if (p & TELEMETRY_HAS_SENSOR_TYPE) {
        jw_key(&w, "sensor_type");
        jw_str(&w, r->sensor_type);
    }
    jw_key(&w, "device_id");
    jw_str(&w, r->device_id);
    if (p & TELEMETRY_HAS_OBJECT_TEMP)
        jw_double(&w, "object_temp", r->object_temp);
    if (p & TELEMETRY_HAS_AMBIENT_TEMP)
        jw_double(&w, "ambient_temp", r->ambient_temp);
    if (p & TELEMETRY_HAS_HEART_RATE)
        jw_double(&w, "heart_rate", r->heart_rate);
    if (p & TELEMETRY_HAS_SPO2)
        jw_double(&w, "spo2", r->spo2);
    if (p & TELEMETRY_HAS_UPTIME)
        jw_int(&w, "timestamp", r->uptime_ms);
    if (p & TELEMETRY_HAS_SEQ)
        jw_int(&w, "seq", r->seq);
    if (p & TELEMETRY_HAS_BOOT)
        jw_int(&w, "boot", r->boot);
    if (p & TELEMETRY_HAS_TS)
        jw_int(&w, "ts", r->ts_ms);
    if (p & TELEMETRY_HAS_HR_VALID)
        jw_bool(&w, "hr_valid", r->hr_valid);
    if (p & TELEMETRY_HAS_SPO2_VALID)
        jw_bool(&w, "spo2_valid", r->spo2_valid);
    if (p & TELEMETRY_HAS_TEMP_VALID)
        jw_bool(&w, "temp_valid", r->temp_valid);
    if (p & TELEMETRY_HAS_BATTERY)
        jw_double(&w, "battery", r->battery);
    if (p & TELEMETRY_HAS_RSSI)
        jw_int(&w, "rssi", r->rssi);
    if (p & TELEMETRY_HAS_FW) {
        jw_key(&w, "fw");
        jw_str(&w, r->fw);
    }
    jw_iso(&w, "received_at", r->received_ms);
    jw_key(&w, "topic");
    JW_LIT(&w, "\"" TOPIC_PREFIX);
    /* The id is topic-safe by construction; escaped all the same. */
    jw_esc(&w, r->device_id);
    JW_LIT(&w, "/data\"");
    return jw_end(&w);
}

size_t telemetry_status_json(const telemetry_status *s, char *buf, size_t len)
{
    if (s == NULL || buf == NULL || len == 0)
        return 0;
    jw w = {buf, len, 0, 1, 1};
    JW_LIT(&w, "{");
    jw_key(&w, "device_id");
    jw_str(&w, s->device_id);
    jw_key(&w, "status");
    if (s->online)
        JW_LIT(&w, "\"online\"");
    else
        JW_LIT(&w, "\"offline\"");
    if (s->present & TELEMETRY_STATUS_HAS_FW) {
        jw_key(&w, "fw");
        jw_str(&w, s->fw);
    }
    if (s->present & TELEMETRY_STATUS_HAS_INTERVAL)
        jw_int(&w, "interval_ms", s->interval_ms);
    if (s->present & TELEMETRY_STATUS_HAS_BOOT)
        jw_int(&w, "boot", s->boot);
    jw_iso(&w, "received_at", s->received_ms);
    return jw_end(&w);
}
