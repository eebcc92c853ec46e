/* topics — the one owner of Vigil's MQTT topic layout (docs/PROTOCOL.md):
 *
 *   sensors/esp32/{id}/data      device -> vigild  readings
 *   sensors/esp32/{id}/status    device -> vigild  online/offline (also the LWT)
 *   sensors/esp32/{id}/ack       device -> vigild  command/config results
 *   sensors/esp32/{id}/config    vigild -> device  configuration (retained)
 *   commands/esp32/{id}/control  vigild -> device  commands
 *   alarms/esp32/{id}            vigild -> anyone  that device's open alarms
 *                                                  (retained, QoS 1: nurse call,
 *                                                  pagers; docs/ALARMS.md)
 *
 * Used by vigild (ingest, web, telemetry) and by the device core (session),
 * so a topic is spelled in exactly one place. {id} follows device_id.h.
 *
 * Ownership: writes only into the caller's buffers; no allocation, no state.
 * Threads: reentrant. Portable C (runs on the MCU too). */
#ifndef VIGIL_TOPICS_H
#define VIGIL_TOPICS_H

#include <stddef.h>

#include "device_id.h"

#define TOPICS_SENSORS_PREFIX "sensors/esp32/"
#define TOPICS_COMMANDS_PREFIX "commands/esp32/"
#define TOPICS_ALARMS_PREFIX "alarms/esp32/"

typedef enum topics_kind {
    TOPICS_DATA = 0,
    TOPICS_STATUS,
    TOPICS_ACK,
    TOPICS_CONFIG,
    TOPICS_CONTROL,
    TOPICS_ALARMS, /* no suffix: the topic ends with the id */
    TOPICS_KIND_COUNT
} topics_kind;

typedef enum topics_err {
    TOPICS_OK = 0,
    TOPICS_EINVAL,    /* NULL argument or unknown kind */
    TOPICS_EBADID,    /* the id breaks device_id.h's rule */
    TOPICS_ENOSPC,    /* build: the topic does not fit the caller's buffer */
    TOPICS_EBADTOPIC, /* parse: not one of the layouts above */
} topics_err;

/* "ok", "einval", ... for log lines. */
const char *topics_err_name(topics_err e);

/* Longest topic (a control topic with a 64-byte id), and a buffer that holds
 * any topic with its NUL. */
#define TOPICS_MAX_LEN (sizeof TOPICS_COMMANDS_PREFIX - 1 + DEVICE_ID_MAX + sizeof "/control" - 1)
#define TOPICS_BUF_SIZE (TOPICS_MAX_LEN + 1)

/* Writes the topic of `kind` for the NUL-terminated device id into buf
 * (cap bytes, NUL included) and its length into *len_out when not NULL.
 * On any error buf holds "" (when cap > 0) and *len_out is untouched. */
topics_err topics_build(topics_kind kind, const char *id, char *buf, size_t cap,
                        size_t *len_out);

/* What vigild subscribes to: every device's data, status and ack. Literals,
 * so they can initialise the char *const array libmosquitto takes. */
#define TOPICS_SUB_DATA TOPICS_SENSORS_PREFIX "+/data"
#define TOPICS_SUB_STATUS TOPICS_SENSORS_PREFIX "+/status"
#define TOPICS_SUB_ACK TOPICS_SENSORS_PREFIX "+/ack"
#define TOPICS_SUBSCRIPTION_COUNT 3
#define TOPICS_SUBSCRIPTIONS {TOPICS_SUB_DATA, TOPICS_SUB_STATUS, TOPICS_SUB_ACK}

/* Parses topic[0..len) (need not be NUL-terminated) as one of the
 * layouts. On TOPICS_OK copies the id, NUL-terminated, into id_out (room for
 * DEVICE_ID_MAX + 1; may be NULL) and the kind into *kind_out (may be NULL);
 * on error neither is written. Extra levels ("…/data/x"), an empty or invalid
 * id, a wrong prefix or an unknown kind give TOPICS_EBADTOPIC. */
topics_err topics_parse(const char *topic, size_t len, char *id_out, topics_kind *kind_out);

#endif
