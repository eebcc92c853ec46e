/* telemetry_enc — see telemetry_enc.h. */
#include "telemetry_enc.h"

#include "device_id.h"
#include "json_escape.h"
#include "vital_ranges.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct tenc_buf {
    char *p;
    size_t cap;
    size_t len;
    bool trunc;
} tenc_buf;

static void tenc__put(tenc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tenc__put(tenc_buf *b, const char *fmt, ...)
{
    if (b->trunc)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->trunc = true;
        return;
    }
    b->len += (size_t)n;
}

static void tenc__sink(void *ctx, const char *p, size_t n)
{
    tenc_buf *b = ctx;
    if (b->trunc)
        return;
    if (n >= b->cap - b->len) { /* keep room for the NUL */
        b->trunc = true;
        return;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* JSON string; fw comes from the build, but escape it anyway so a stray
 * quote can never produce invalid JSON. */
static void tenc__put_str(tenc_buf *b, const char *s)
{
    tenc__put(b, "\"");
    json_escape(s, tenc__sink, b);
    tenc__put(b, "\"");
}

bool tenc_valid_device_id(const char *id)
{
    return device_id_valid_str(id) != 0;
}

static bool tenc__in(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

tenc_status tenc_encode(const tenc_reading *r, const char *device_id, const char *fw, char *buf,
                        size_t cap, size_t *len_out)
{
    if (!r || !buf || cap == 0 || !tenc_valid_device_id(device_id))
        return TENC_EINVAL;
    tenc_buf b = {.p = buf, .cap = cap};
    buf[0] = '\0';

    /* The protocol's accepted ranges (protocol/vital_ranges.h). */
    bool temp_ok = r->temp_valid &&
                   tenc__in(r->object_temp, VITAL_OBJECT_TEMP_MIN, VITAL_OBJECT_TEMP_MAX);
    bool amb_ok = tenc__in(r->ambient_temp, VITAL_AMBIENT_TEMP_MIN, VITAL_AMBIENT_TEMP_MAX);
    bool hr_ok = r->hr_valid && tenc__in(r->heart_rate, VITAL_HEART_RATE_MIN, VITAL_HEART_RATE_MAX);
    bool spo2_ok = r->spo2_valid && tenc__in(r->spo2, VITAL_SPO2_MIN, VITAL_SPO2_MAX);

    tenc__put(&b, "{\"sensor_type\":\"" TENC_SENSOR_TYPE "\",\"device_id\":\"%s\"", device_id);
    if (temp_ok)
        tenc__put(&b, ",\"object_temp\":%.2f", r->object_temp);
    if (amb_ok)
        tenc__put(&b, ",\"ambient_temp\":%.2f", r->ambient_temp);
    if (hr_ok)
        tenc__put(&b, ",\"heart_rate\":%.0f", r->heart_rate);
    if (spo2_ok)
        tenc__put(&b, ",\"spo2\":%.0f", r->spo2);
    tenc__put(&b, ",\"timestamp\":%llu,\"seq\":%llu,\"boot\":%lu",
              (unsigned long long)r->uptime_ms, (unsigned long long)r->seq,
              (unsigned long)r->boot);
    if (r->ts_synced)
        tenc__put(&b, ",\"ts\":%llu", (unsigned long long)r->ts_ms);
    tenc__put(&b, ",\"hr_valid\":%s,\"spo2_valid\":%s,\"temp_valid\":%s", hr_ok ? "true" : "false",
              spo2_ok ? "true" : "false", temp_ok ? "true" : "false");
    if (r->battery >= VITAL_BATTERY_MIN && r->battery <= VITAL_BATTERY_MAX)
        tenc__put(&b, ",\"battery\":%d", r->battery);
    if (r->rssi >= VITAL_RSSI_MIN && r->rssi <= VITAL_RSSI_MAX)
        tenc__put(&b, ",\"rssi\":%d", r->rssi);
    /* vigild rejects a longer fw: leave it out rather than lose the reading. */
    if (fw && *fw && strlen(fw) <= VITAL_FW_LEN_MAX) {
        tenc__put(&b, ",\"fw\":");
        tenc__put_str(&b, fw);
    }
    tenc__put(&b, "}");
    if (b.trunc)
        return TENC_ETRUNC;
    if (len_out)
        *len_out = b.len;
    return TENC_OK;
}
