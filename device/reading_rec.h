/* reading_rec — the outbox's fixed 32-byte binary record and its codec.
 *
 * A reading is kept in flash in this form and turned into the wire JSON
 * (telemetry_enc) only when it is sent, live or replayed, so the bytes on
 * the wire are the same for both. Values are scaled to integers at the
 * precision the wire carries (temperatures 0.01 °C, heart rate and SpO2
 * whole units); a value the encoder would leave out is stored as "none".
 *
 * Layout (little endian, CRC-16/CCITT-FALSE over bytes 0..29):
 *    0 kind | flags (low nibble kind, bit 4 = published live)
 *    1 spo2 (% , 0 = none)         2 heart rate u16 (/min, 0 = none)
 *    4 boot u32                    8 seq u32
 *   12 uptime ms, 40 bits         17 ts epoch ms, 48 bits (0 = not synced)
 *   23 battery (0xFF = none)      24 object temp i16 centi-°C (INT16_MIN = none)
 *   26 ambient temp i16           28 rssi i8 (1 = none)   29 reserved (0)
 *   30 CRC-16
 * A CURSOR record keeps a ring position in bytes 4..11 (see outbox.c); an
 * END record marks a boot that stopped cleanly (boot, seq = its last seq).
 * An erased slot is all 0xFF, which no kind byte takes.
 *
 * Limits: seq ≤ 2^32-1 (497 days at 100 Hz), uptime < 2^40 ms (34 years).
 *
 * Ownership: works on the caller's buffers; no state. Threading: reentrant. */
#ifndef VIGIL_READING_REC_H
#define VIGIL_READING_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry_enc.h"

#define READING_REC_SIZE 32

typedef enum reading_rec_kind {
    READING_REC_READING = 1,
    READING_REC_CURSOR = 2,
    READING_REC_END = 3,
} reading_rec_kind;

typedef enum reading_rec_status {
    READING_REC_OK = 0,
    READING_REC_EBLANK = -1, /* erased slot: all 0xFF */
    READING_REC_ECRC = -2,   /* torn or corrupt: CRC or kind wrong */
    READING_REC_EINVAL = -3, /* NULL argument */
} reading_rec_status;

typedef struct reading_rec {
    reading_rec_kind kind;
    bool sent;           /* published live when it was taken */
    uint32_t boot;
    uint32_t seq;
    uint64_t uptime_ms;
    uint64_t ts_ms;      /* 0: clock not synced */
    int16_t obj_cc;      /* INT16_MIN: none */
    int16_t amb_cc;      /* INT16_MIN: none */
    uint16_t hr;         /* 0: none */
    uint8_t spo2;        /* 0: none */
    uint8_t battery;     /* 0xFF: none */
    int8_t rssi;         /* 1: none */
    uint64_t cursor;     /* CURSOR records only */
} reading_rec;

/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); also used by flash_ring. */
uint16_t reading_rec_crc16(const uint8_t *p, size_t n);

/* Scales the vitals of r (seq, boot, uptime, ts included) into a READING. */
void reading_rec_from_tenc(const tenc_reading *r, reading_rec *out);
/* The inverse: what tenc_encode needs to produce the wire JSON. */
void reading_rec_to_tenc(const reading_rec *rec, tenc_reading *out);

void reading_rec_pack(const reading_rec *rec, uint8_t out[READING_REC_SIZE]);
reading_rec_status reading_rec_unpack(const uint8_t in[READING_REC_SIZE], reading_rec *out);

#endif
