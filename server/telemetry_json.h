/* telemetry_json — serialisation of validated telemetry for the dashboard,
 * the WebSocket feed and the store: the enriched reading and status objects
 * and the ISO 8601 timestamps they carry. Split from telemetry.c so that
 * parsing (hostile input) and output (trusted structs) can change apart.
 *
 * Pure logic: no I/O, no clock, no allocation. Every function writes into
 * the caller's buffer and never leaves a truncated object: on overflow it
 * returns 0 and buf holds "".
 *
 * Threads: every function is reentrant. */
#ifndef VIGIL_TELEMETRY_JSON_H
#define VIGIL_TELEMETRY_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Defined in telemetry.h; a forward declaration is enough here. */
typedef struct telemetry_reading telemetry_reading;
typedef struct telemetry_status telemetry_status;

/* Formats epoch milliseconds as ISO 8601 UTC with milliseconds
 * ("2026-11-27T17:18:41.123Z"). buf must hold at least 25 bytes.
 * Returns the length written. */
size_t telemetry_format_iso(int64_t epoch_ms, char *buf, size_t len);

/* Serializes a reading as the design's enriched object — the payload's
 * validated fields plus "device_id", "received_at", "topic" — into buf,
 * without the {"type":...} wrapper. Unknown payload fields are not carried
 * (they were never validated). Returns the length, or 0 if buf is too small. */
size_t telemetry_reading_json(const telemetry_reading *r, char *buf, size_t len);

/* The same for a status: {"device_id","status","fw","interval_ms","boot","received_at"}. */
size_t telemetry_status_json(const telemetry_status *s, char *buf, size_t len);

#endif
