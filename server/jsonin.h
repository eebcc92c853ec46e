/* jsonin — the gate in front of cJSON for JSON text from the network
 * (telemetry, acks, REST bodies, WebSocket messages, peers' alarm lists).
 *
 * cJSON is lax where the validation above it must not be: it stops at a NUL
 * (raw, or decoded from "\u0000", or from a \u whose digits are not hex,
 * which it decodes as U+0000), so "heart_rate\u00zz" would be read as
 * "heart_rate" and "ESP32_001\u0000x" as "ESP32_001"; and it takes raw
 * control bytes and any bytes that are not UTF-8. jsonin_text_ok() refuses
 * all of those before cJSON sees the text, so what cJSON returns is exactly
 * what the text says.
 *
 * Ownership: the functions borrow the text; jsonin_parse() returns a tree the
 * caller frees with cJSON_Delete(). Threads: reentrant, any thread. */
#ifndef VIGIL_JSONIN_H
#define VIGIL_JSONIN_H

#include <stddef.h>

struct cJSON;

/* 1 if text[0..len) is strict UTF-8 (no overlongs, no surrogates, nothing
 * past U+10FFFF) without NUL bytes, without control bytes (below 0x20)
 * inside strings or outside them other than tab, LF and CR, and without a
 * backslash-u escape inside a string that is not four hex digits or is
 * \u0000; else 0. Syntax is cJSON's business. */
int jsonin_text_ok(const char *text, size_t len);

/* cJSON_ParseWithLengthOpts(text, len, end, 0) behind jsonin_text_ok():
 * NULL (and *end, if given, NULL) when the text is refused or is not JSON. */
struct cJSON *jsonin_parse(const char *text, size_t len, const char **end);

#endif
