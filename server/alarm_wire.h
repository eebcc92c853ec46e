/* alarm_wire — the alarm messages several vigild exchange over the broker
 * (docs/PROTOCOL.md, docs/ARCHITECTURE.md "Several instances"). Pure: no
 * I/O, no clock, no threads; fuzzed (tests/unit/fuzz_alarm_list.c).
 *
 *   alarms/esp32/{id}        retained, from the device's owner: its open
 *                            alarms {"device_id":..,"alarms":[ALARM...]}
 *                            (alarm_json). alarm_wire_parse_list reads it
 *                            back on the instances that do not own it.
 *   vigil/cluster/alarm-ops  QoS 1, not retained: an ack, audio pause or
 *                            settings change made on a non-owner, for the
 *                            owner to apply: {"op":"ack"|"silence"|
 *                            "settings","alarm_id":N,"device_id":"..",
 *                            "seconds":N,"user":"..","at":ms[,"settings":{}]}.
 *
 * Ownership: every output is the caller's (an op's settings are malloc'ed:
 * free them). */
#ifndef VIGIL_ALARM_WIRE_H
#define VIGIL_ALARM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "ports.h"

/* The retained list: device_id (ALARM_ID_MAX + 1 bytes) and up to
 * ALARM_COND_COUNT alarms, each of that device, one per condition.
 * ALARM_OK with *n set, or ALARM_EINVAL (nothing usable: out untouched
 * past *n = 0). An empty payload (a cleared retained topic) is ALARM_EINVAL. */
alarm_err alarm_wire_parse_list(const char *payload, size_t len, char *device_id,
                                alarm_rec *out, size_t *n);
/* One ALARM object back into a record. ALARM_OK or ALARM_EINVAL. */
typedef struct cJSON cJSON;
alarm_err alarm_wire_parse_alarm(const cJSON *o, alarm_rec *out);
/* ISO 8601 UTC as alarm_json writes it ("2026-12-01T12:03:06.123Z") to
 * epoch ms: 0, or -1 if it is not that shape. */
int alarm_wire_parse_iso(const char *s, int64_t *ms);

/* An operation for vigil/cluster/alarm-ops: the JSON into out (NUL-ended),
 * its length, or 0 if it does not fit (4096 always does). at = wall ms. */
#define ALARM_WIRE_OP_MAX 4096
size_t alarm_wire_build_op(const vigil_alarm_op *op, int64_t at, char *out, size_t cap);
/* Back: ALARM_OK with *op filled (settings malloc'ed for a settings op), or
 * ALARM_EINVAL / ALARM_ENOMEM (nothing to free). */
alarm_err alarm_wire_parse_op(const char *payload, size_t len, vigil_alarm_op *op);

#endif
