/* reading_rec — see reading_rec.h. */
#include "reading_rec.h"

#include "vital_ranges.h"

#include <math.h>
#include <string.h>

uint16_t reading_rec_crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static bool reading_rec__in(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

void reading_rec_from_tenc(const tenc_reading *r, reading_rec *o)
{
    memset(o, 0, sizeof *o);
    o->kind = READING_REC_READING;
    o->boot = r->boot;
    o->seq = r->seq > UINT32_MAX ? UINT32_MAX : (uint32_t)r->seq;
    o->uptime_ms = r->uptime_ms & ((UINT64_C(1) << 40) - 1);
    o->ts_ms = r->ts_synced ? (r->ts_ms & ((UINT64_C(1) << 48) - 1)) : 0;
    /* The same acceptance as tenc_encode: what it would leave out is none. */
    o->obj_cc = r->temp_valid &&
                        reading_rec__in(r->object_temp, VITAL_OBJECT_TEMP_MIN, VITAL_OBJECT_TEMP_MAX)
                    ? (int16_t)lrint(r->object_temp * 100.0)
                    : INT16_MIN;
    o->amb_cc = reading_rec__in(r->ambient_temp, VITAL_AMBIENT_TEMP_MIN, VITAL_AMBIENT_TEMP_MAX)
                    ? (int16_t)lrint(r->ambient_temp * 100.0)
                    : INT16_MIN;
    o->hr = r->hr_valid && reading_rec__in(r->heart_rate, VITAL_HEART_RATE_MIN, VITAL_HEART_RATE_MAX)
                ? (uint16_t)lrint(r->heart_rate)
                : 0;
    o->spo2 = r->spo2_valid && reading_rec__in(r->spo2, VITAL_SPO2_MIN, VITAL_SPO2_MAX)
                  ? (uint8_t)lrint(r->spo2)
                  : 0;
    o->battery = r->battery >= VITAL_BATTERY_MIN && r->battery <= VITAL_BATTERY_MAX
                     ? (uint8_t)r->battery
                     : 0xFF;
    o->rssi = r->rssi >= VITAL_RSSI_MIN && r->rssi <= VITAL_RSSI_MAX ? (int8_t)r->rssi : 1;
}

void reading_rec_to_tenc(const reading_rec *c, tenc_reading *r)
{
    memset(r, 0, sizeof *r);
    r->seq = c->seq;
    r->boot = c->boot;
    r->uptime_ms = c->uptime_ms;
    r->ts_synced = c->ts_ms != 0;
    r->ts_ms = c->ts_ms;
    r->temp_valid = c->obj_cc != INT16_MIN;
    r->object_temp = r->temp_valid ? c->obj_cc / 100.0 : 0;
    r->ambient_temp = c->amb_cc != INT16_MIN ? c->amb_cc / 100.0 : NAN;
    r->hr_valid = c->hr != 0;
    r->heart_rate = c->hr;
    r->spo2_valid = c->spo2 != 0;
    r->spo2 = c->spo2;
    r->battery = c->battery == 0xFF ? -1 : c->battery;
    r->rssi = c->rssi;
}

static void reading_rec__put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t reading_rec__get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void reading_rec_pack(const reading_rec *c, uint8_t o[READING_REC_SIZE])
{
    memset(o, 0, READING_REC_SIZE);
    o[0] = (uint8_t)((c->kind & 0x0F) | (c->sent ? 0x10 : 0));
    if (c->kind == READING_REC_CURSOR) {
        reading_rec__put(o + 4, c->cursor, 8);
    } else {
        o[1] = c->spo2;
        reading_rec__put(o + 2, c->hr, 2);
        reading_rec__put(o + 4, c->boot, 4);
        reading_rec__put(o + 8, c->seq, 4);
        reading_rec__put(o + 12, c->uptime_ms, 5);
        reading_rec__put(o + 17, c->ts_ms, 6);
        o[23] = c->battery;
        reading_rec__put(o + 24, (uint16_t)c->obj_cc, 2);
        reading_rec__put(o + 26, (uint16_t)c->amb_cc, 2);
        o[28] = (uint8_t)c->rssi;
    }
    reading_rec__put(o + 30, reading_rec_crc16(o, 30), 2);
}

reading_rec_status reading_rec_unpack(const uint8_t in[READING_REC_SIZE], reading_rec *c)
{
    if (!in || !c)
        return READING_REC_EINVAL;
    bool blank = true;
    for (int i = 0; i < READING_REC_SIZE && blank; i++)
        blank = in[i] == 0xFF;
    if (blank)
        return READING_REC_EBLANK;
    unsigned kind = in[0] & 0x0F;
    if ((in[0] & 0xE0) || kind < READING_REC_READING || kind > READING_REC_END ||
        reading_rec__get(in + 30, 2) != reading_rec_crc16(in, 30))
        return READING_REC_ECRC;
    memset(c, 0, sizeof *c);
    c->kind = (reading_rec_kind)kind;
    c->sent = (in[0] & 0x10) != 0;
    if (c->kind == READING_REC_CURSOR) {
        c->cursor = reading_rec__get(in + 4, 8);
        return READING_REC_OK;
    }
    c->spo2 = in[1];
    c->hr = (uint16_t)reading_rec__get(in + 2, 2);
    c->boot = (uint32_t)reading_rec__get(in + 4, 4);
    c->seq = (uint32_t)reading_rec__get(in + 8, 4);
    c->uptime_ms = reading_rec__get(in + 12, 5);
    c->ts_ms = reading_rec__get(in + 17, 6);
    c->battery = in[23];
    c->obj_cc = (int16_t)(uint16_t)reading_rec__get(in + 24, 2);
    c->amb_cc = (int16_t)(uint16_t)reading_rec__get(in + 26, 2);
    c->rssi = (int8_t)in[28];
    return READING_REC_OK;
}
