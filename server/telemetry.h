/* telemetry — parsing and validation of what devices publish. Pure logic:
 * no I/O, no allocation that outlives a call, so it can be unit-tested and
 * fuzzed (tests/unit/fuzz_telemetry.c). One process-wide state: cJSON's
 * allocation hooks, installed before main, which serve a parse's nodes from
 * a per-call stack arena and everything else from malloc (telemetry.c).
 *
 * Every byte handed in here came from the network and is hostile until a
 * function below returned TELEMETRY_OK. Out-of-range values are rejected with
 * a reason, never clamped. The accepted ranges are documented in
 * docs/PROTOCOL.md and defined in protocol/vital_ranges.h.
 *
 * Thread safety: every function is reentrant; the structs are plain values
 * owned by the caller. */
#ifndef VIGIL_TELEMETRY_H
#define VIGIL_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "device_id.h"
#include "vital_ranges.h"

#define TELEMETRY_ID_MAX DEVICE_ID_MAX /* device id: 1..64 of [A-Za-z0-9_.-] */
#define TELEMETRY_SENSOR_TYPE_MAX VITAL_SENSOR_TYPE_LEN_MAX
#define TELEMETRY_FW_MAX VITAL_FW_LEN_MAX
#define TELEMETRY_PAYLOAD_MAX_DEFAULT 4096

/* Why a message was rejected. The metric label is telemetry_reason_name(). */
typedef enum telemetry_reason {
    TELEMETRY_OK = 0,
    TELEMETRY_BAD_TOPIC,       /* topic is not sensors/esp32/{id}/{kind} or id is invalid */
    TELEMETRY_OVERSIZE,        /* payload longer than the configured cap */
    TELEMETRY_MALFORMED_JSON,  /* not parseable as JSON (or not UTF-8 text) */
    TELEMETRY_NOT_OBJECT,      /* JSON, but not an object */
    TELEMETRY_WRONG_TYPE,      /* a known field has the wrong JSON type */
    TELEMETRY_OUT_OF_RANGE,    /* a known field is outside physical plausibility */
    TELEMETRY_ID_MISMATCH,     /* payload device_id differs from the topic's id */
    TELEMETRY_DUPLICATE_FIELD, /* a known field appears twice */
    TELEMETRY_EMPTY,           /* no vital and no sequence number: nothing to record */
    TELEMETRY_BAD_STATUS,      /* status message that is neither of the known forms */
    TELEMETRY_DEVICE_CAP,      /* a new device id while vigild knows --max-devices */
    TELEMETRY_NEW_DEVICE_RATE, /* a new device id faster than --new-devices-per-s allows */
    TELEMETRY_UNKNOWN_COMMAND, /* an ack for a command not sent to that device (or expired) */
    TELEMETRY_BAD_ACK,         /* an ack without "cmd_id"/"cfg_id" and "ok" */
    TELEMETRY_REASON_COUNT
} telemetry_reason;

const char *telemetry_reason_name(telemetry_reason r); /* "bad_topic", ... */

/* What the topic says. */
typedef enum telemetry_kind {
    TELEMETRY_KIND_DATA = 0, /* sensors/esp32/{id}/data */
    TELEMETRY_KIND_STATUS,   /* sensors/esp32/{id}/status */
    TELEMETRY_KIND_ACK,      /* sensors/esp32/{id}/ack (command/config results) */
} telemetry_kind;

/* Parses a topic of the form sensors/esp32/{id}/{data|status|ack} (layout
 * owned by protocol/topics.h; the other kinds are not vigild's input) and copies
 * the id (NUL-terminated) into id_out, which must hold TELEMETRY_ID_MAX + 1.
 * Returns TELEMETRY_OK or TELEMETRY_BAD_TOPIC. */
telemetry_reason telemetry_parse_topic(const char *topic, size_t topic_len,
                                       char *id_out, telemetry_kind *kind_out);

/* 1 if s[0..len) is a valid device id: protocol/device_id.h's rule. */
int telemetry_id_valid(const char *s, size_t len);

/* Bits of telemetry_reading.present: which optional fields the payload had. */
enum {
    TELEMETRY_HAS_OBJECT_TEMP  = 1u << 0,
    TELEMETRY_HAS_AMBIENT_TEMP = 1u << 1,
    TELEMETRY_HAS_HEART_RATE   = 1u << 2,
    TELEMETRY_HAS_SPO2         = 1u << 3,
    TELEMETRY_HAS_UPTIME       = 1u << 4, /* "timestamp": device uptime, ms */
    TELEMETRY_HAS_TS           = 1u << 5, /* "ts": epoch ms, device clock synced */
    TELEMETRY_HAS_SEQ          = 1u << 6,
    TELEMETRY_HAS_BOOT         = 1u << 7,
    TELEMETRY_HAS_BATTERY      = 1u << 8,
    TELEMETRY_HAS_RSSI         = 1u << 9,
    TELEMETRY_HAS_HR_VALID     = 1u << 10,
    TELEMETRY_HAS_SPO2_VALID   = 1u << 11,
    TELEMETRY_HAS_TEMP_VALID   = 1u << 12,
    TELEMETRY_HAS_SENSOR_TYPE  = 1u << 13,
    TELEMETRY_HAS_FW           = 1u << 14,
};

/* One validated reading. A field is meaningful only if its HAS bit is set. */
typedef struct telemetry_reading {
    char device_id[TELEMETRY_ID_MAX + 1]; /* from the topic, never the payload */
    char sensor_type[TELEMETRY_SENSOR_TYPE_MAX + 1];
    char fw[TELEMETRY_FW_MAX + 1];
    uint32_t present;      /* TELEMETRY_HAS_* */
    double object_temp;    /* °C */
    double ambient_temp;   /* °C */
    double heart_rate;     /* beats/min */
    double spo2;           /* % */
    double battery;        /* % */
    int32_t rssi;          /* dBm */
    int64_t uptime_ms;     /* payload "timestamp" */
    int64_t ts_ms;         /* payload "ts" */
    int64_t seq;           /* payload "seq", monotonic within a boot */
    int64_t boot;          /* payload "boot", boot id */
    uint8_t hr_valid, spo2_valid, temp_valid; /* payload validity flags */
    int64_t received_ms;   /* set by the caller: wall clock when vigild got it */
} telemetry_reading;

/* Validates a data payload for the device `topic_id`. On TELEMETRY_OK fills
 * *out (received_ms is left 0 for the caller). On rejection, writes a short
 * human-readable detail ("heart_rate 900 outside 20..300") into detail
 * (NUL-terminated, may be NULL). payload need not be NUL-terminated. */
telemetry_reason telemetry_parse_data(const char *topic_id, const char *payload,
                                      size_t len, size_t max_len,
                                      telemetry_reading *out,
                                      char *detail, size_t detail_len);

/* Device status, from sensors/esp32/{id}/status. Accepts the JSON object form
 * {"status":"online"|"offline", "fw":..., "interval_ms":..., "boot":...,
 * "prev_boot":..., "prev_last_seq":...} and, for older devices, the bare
 * words online / offline. prev_boot and prev_last_seq come together (one
 * without the other is bad_status): the previous boot stopped without
 * flushing its outbox (a power cut), and seqs up to prev_last_seq of it
 * may exist; prev_boot must be below boot when both are given. */
enum {
    TELEMETRY_STATUS_HAS_FW       = 1u << 0,
    TELEMETRY_STATUS_HAS_INTERVAL = 1u << 1,
    TELEMETRY_STATUS_HAS_BOOT     = 1u << 2,
    TELEMETRY_STATUS_HAS_PREV     = 1u << 3, /* prev_boot and prev_last_seq */
};
typedef struct telemetry_status {
    char device_id[TELEMETRY_ID_MAX + 1];
    int online;            /* 1 online, 0 offline */
    uint32_t present;      /* TELEMETRY_STATUS_HAS_* */
    char fw[TELEMETRY_FW_MAX + 1];
    int64_t interval_ms;   /* announced sampling interval, 10..3600000 */
    int64_t boot;
    int64_t prev_boot;     /* the unflushed boot before this one */
    int64_t prev_last_seq; /* the highest seq it may have taken */
    int64_t received_ms;   /* set by the caller */
} telemetry_status;

telemetry_reason telemetry_parse_status(const char *topic_id, const char *payload,
                                        size_t len, size_t max_len,
                                        telemetry_status *out,
                                        char *detail, size_t detail_len);

/* Output (telemetry_format_iso, telemetry_reading_json,
 * telemetry_status_json) lives in telemetry_json.h; included here so the
 * callers that predate the split keep compiling. */
#include "telemetry_json.h"

#endif
