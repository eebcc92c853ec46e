/* command — the backend → device half of the protocol, as pure logic:
 * validating REST bodies into command / config payloads, and validating the
 * results devices send back on sensors/esp32/{id}/ack. No I/O; reentrant.
 *
 * Formats are in docs/PROTOCOL.md. Every body is hostile until a function
 * here returned 0; on failure err receives a message for the HTTP 400 body. */
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
 * (ISO 8601). Returns 0, or -1 with err set. */
int command_parse_ack(const char *device_id, const char *payload, size_t len, size_t max_len,
                      int64_t received_ms, sbuf *data, char *err, size_t errlen);

#endif
