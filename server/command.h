/* command — the backend → device half of the protocol, as pure logic:
 * validating REST bodies into command / config payloads, and validating the
 * results devices send back on sensors/esp32/{id}/ack, and the resend
 * commands the completeness tracker asks for (with their acks). No I/O;
 * reentrant.
 *
 * Formats are in docs/PROTOCOL.md. Every body is hostile until a function
 * here returned 0; on failure err receives a message for the HTTP 400 body.
 *
 * Ownership: inputs are borrowed for the call; output goes to the caller's
 * sbuf / struct. Threads: any (web thread for REST bodies, ingest thread for
 * acks and resends). */
#ifndef VIGIL_COMMAND_H
#define VIGIL_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

#define COMMAND_ID_MAX 64
#define COMMAND_INTERVAL_MIN 10
#define COMMAND_INTERVAL_MAX 3600000

/* Body of POST /api/devices/{id}/commands → payload for
 * commands/esp32/{id}/control, with "cmd_id" set to id. */
int command_build(const char *body, size_t len, const char *cmd_id, sbuf *payload,
                  char *err, size_t errlen);

/* Body of PUT /api/devices/{id}/config → retained payload for
 * sensors/esp32/{id}/config, with "cfg_id" set to id. */
int command_build_config(const char *body, size_t len, const char *cfg_id, sbuf *payload,
                         char *err, size_t errlen);

/* Validates an ack payload and writes the "data" object for the WebSocket
 * command_result message: the validated fields plus device_id and received_at
 * (ISO 8601); cmd_id (COMMAND_ID_MAX + 1 bytes, may be NULL) receives the
 * ack's "cmd_id" or "" if it has none (a config ack: "cfg_id" only).
 * Returns TELEMETRY_OK (0), or the rejection reason with err set: oversize,
 * malformed_json, not_object, wrong_type, out_of_range, duplicate_field (a
 * known field twice), bad_ack (no "cmd_id"/"cfg_id", or no "ok"). */
int command_parse_ack(const char *device_id, const char *payload, size_t len, size_t max_len,
                      int64_t received_ms, sbuf *data, char *cmd_id, char *err, size_t errlen);

/* The resend command vigild's completeness tracker sends on
 * commands/esp32/{id}/control: {"cmd_id":"<prefix><req_id>","cmd":"resend",
 * "boot":..,"from":..,"to":..}. prefix is this process's nonce (printable,
 * at most COMMAND_ID_MAX - 20 chars), so acks of an earlier run never match.
 * Returns 0, or -1 (bad prefix or range, out of memory). */
int command_build_resend(const char *prefix, uint64_t req_id, int64_t boot, int64_t from,
                         int64_t to, sbuf *payload);

/* An ack to one of our resend commands, from a payload command_parse_ack
 * already accepted. */
typedef struct command_resend_ack {
    uint64_t req_id;
    int ok;
    int permanent;     /* not ok, and the device can never resend that range:
                        * "unknown command", "invalid range", "not supported" */
    uint64_t sent, missing;
} command_resend_ack;

typedef enum command_ack_kind {
    COMMAND_ACK_RESEND = 0,  /* ours: *out filled */
    COMMAND_ACK_OTHER = 1,   /* not a resend ack of ours (other prefix, no cmd_id) */
    COMMAND_ACK_INVALID = -1 /* ours, but a field is malformed: ignore (the request times out) */
} command_ack_kind;

command_ack_kind command_parse_resend_ack(const char *payload, size_t len, const char *prefix,
                                          command_resend_ack *out);

#endif
