/* telemetry_enc — encodes one reading into the wire JSON of docs/PROTOCOL.md.
 *
 * Shape: the original design's fields (sensor_type "MAX30614", device_id,
 * object_temp, ambient_temp, heart_rate, spo2, timestamp = uptime ms) plus
 * the Vigil extras (seq, boot, ts when the clock is synced, the *_valid
 * flags, battery, rssi, fw). A vital the device does not trust is left out
 * and its flag is false — never sent as 0, which a dashboard would plot as
 * cardiac arrest. A value outside the protocol's accepted range is treated
 * the same way, because vigild would otherwise reject the whole message.
 *
 * Ownership: writes into the caller's buffer; no allocation, no state.
 * Threading: reentrant. */
#ifndef VIGIL_TELEMETRY_ENC_H
#define VIGIL_TELEMETRY_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TENC_SENSOR_TYPE "MAX30614"
/* Longest encoding with a 64-character id and a 32-character fw is ~380 B. */
#define TENC_MAX_LEN 448

typedef enum tenc_status {
    TENC_OK = 0,
    TENC_EINVAL = -1, /* NULL argument or bad device id */
    TENC_ETRUNC = -2, /* buffer too small; buf holds a truncated, unusable string */
} tenc_status;

typedef struct tenc_reading {
    double object_temp;  /* °C, MLX90614 Tobj1 */
    double ambient_temp; /* °C, MLX90614 Ta */
    double heart_rate;   /* /min, used only when hr_valid */
    double spo2;         /* %, used only when spo2_valid */
    bool hr_valid;
    bool spo2_valid;
    bool temp_valid;     /* false: object_temp is left out, ambient kept if sane */
    uint64_t uptime_ms;  /* "timestamp" */
    uint64_t seq;
    uint32_t boot;
    bool ts_synced;      /* "ts" is sent only when true */
    uint64_t ts_ms;
    int battery;         /* 0..100, or -1 to leave out */
    int rssi;            /* -127..0 dBm, or 1 to leave out */
} tenc_reading;

/* Encodes r for device_id (1..64 chars of [A-Za-z0-9_.-]) and firmware
 * version fw (may be NULL) into buf. On success stores the length (without
 * the NUL) in *len_out when it is not NULL. */
tenc_status tenc_encode(const tenc_reading *r, const char *device_id, const char *fw, char *buf,
                        size_t cap, size_t *len_out);

/* True when id is a valid device id per the protocol (protocol/device_id.h,
 * the rule vigild applies too). */
bool tenc_valid_device_id(const char *id);

#endif
