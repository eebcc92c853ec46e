/* vital_ranges — the accepted range of every field of the telemetry wire
 * format, shared by vigild (server/telemetry.c rejects a value outside it)
 * and the device core (device/telemetry_enc.c leaves such a value out, so
 * vigild never rejects a whole reading for one bad sensor). The table in
 * docs/PROTOCOL.md ("Readings" and "Status") states the same numbers; change
 * both together.
 *
 * All bounds are inclusive. Header only, constants only (nothing to own,
 * any thread); portable C. */
#ifndef VIGIL_VITAL_RANGES_H
#define VIGIL_VITAL_RANGES_H

#include <stdint.h>

/* Vitals (doubles on the wire). */
#define VITAL_OBJECT_TEMP_MIN (-20.0)  /* °C, skin / object (MLX90614 Tobj1) */
#define VITAL_OBJECT_TEMP_MAX 60.0
#define VITAL_AMBIENT_TEMP_MIN (-40.0) /* °C, MLX90614 Ta operating range */
#define VITAL_AMBIENT_TEMP_MAX 85.0
#define VITAL_HEART_RATE_MIN 20.0      /* beats/min */
#define VITAL_HEART_RATE_MAX 300.0
#define VITAL_SPO2_MIN 50.0            /* % */
#define VITAL_SPO2_MAX 100.0

/* Device health. */
#define VITAL_BATTERY_MIN 0            /* % */
#define VITAL_BATTERY_MAX 100
#define VITAL_RSSI_MIN (-127)          /* dBm */
#define VITAL_RSSI_MAX 0

/* Status "interval_ms": the sampling interval a device may announce. */
#define VITAL_INTERVAL_MS_MIN 10
#define VITAL_INTERVAL_MS_MAX 3600000

/* "ts", epoch ms: a synced clock lies in 2017-01-01 .. 2100-01-01 UTC. */
#define VITAL_TS_MIN_MS INT64_C(1483228800000)
#define VITAL_TS_MAX_MS INT64_C(4102444800000)

/* "timestamp", "seq", "boot": 0 .. 2^53. Integers travel as JSON numbers,
 * i.e. doubles, and 2^53 is the largest value every integer below which is
 * exact. */
#define VITAL_COUNTER_MIN 0
#define VITAL_COUNTER_MAX INT64_C(9007199254740992)

/* Strings: "fw" and "sensor_type", printable ASCII, at most this many bytes. */
#define VITAL_FW_LEN_MAX 32
#define VITAL_SENSOR_TYPE_LEN_MAX 32

#endif
