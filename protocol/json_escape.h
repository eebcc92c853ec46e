/* json_escape — the one JSON string escaper of Vigil, used by vigild
 * (sbuf_add_json_str, jsonw) and by the device core (telemetry_enc).
 *
 * Why here and not in server/sbuf.c: the server has two kinds of output (a
 * growable sbuf and fixed caller buffers) and the device core a third, so
 * the escaper writes through a sink instead of owning a buffer type; it lives
 * in protocol/ because escaping is wire knowledge both sides share.
 *
 * Rules: '"' and '\\' get a backslash, bytes below 0x20 become \u00xx
 * (lower-case hex), every other byte (UTF-8 included) passes through as is.
 *
 * Ownership: s is borrowed for the call; the sink receives pointers that are
 * valid only during its call. Threads: reentrant. Portable C, no allocation. */
#ifndef VIGIL_JSON_ESCAPE_H
#define VIGIL_JSON_ESCAPE_H

#include <stddef.h>

/* Receives the escaped text in pieces (n > 0), in order. */
typedef void (*json_escape_sink)(void *ctx, const char *p, size_t n);

/* Writes the NUL-terminated s escaped, without the surrounding quotes, to
 * put. A NULL s writes nothing. */
void json_escape(const char *s, json_escape_sink put, void *ctx);

#endif
