/* json_scan — a bounded JSON scanner for the device core's incoming config
 * and command payloads.
 *
 * json_scan_object validates one whole document and records the members of
 * its top-level object as raw spans; nothing is decoded or copied. Strings
 * stay escaped: the session only compares them with plain ASCII literals and
 * echoes them back verbatim inside quotes, which is valid JSON by
 * construction. No allocation, no platform headers, no global state.
 *
 * Accepts exactly one JSON object (RFC 8259 grammar), optionally surrounded
 * by whitespace (space, tab, LF, CR), whose values may be any JSON value.
 * Rejects:
 *  - a top level that is not an object                 JSON_SCAN_ENOTOBJECT
 *  - any grammar error, including truncated input, raw control bytes
 *    (< 0x20, so also NUL) inside strings, bad escapes, leading '+',
 *    leading zeros, "1.", ".5", "1e", bare words       JSON_SCAN_ESYNTAX
 *  - a value nested more than JSON_SCAN_DEPTH levels below the top-level
 *    object (the object is level 0)                    JSON_SCAN_EDEPTH
 *  - more top-level members than the caller has room for  JSON_SCAN_EFIELDS
 *  - anything but whitespace after the object          JSON_SCAN_ETRAILING
 * Not checked (the session never decodes strings): UTF-8 validity of raw
 * bytes ≥ 0x80 and pairing of \uD800-\uDFFF surrogate escapes. Duplicate
 * keys are recorded as they come; json_scan_get reports them.
 *
 * Bounds: at most JSON_SCAN_DEPTH + 2 nested calls whatever the input,
 * time linear in its length; the input need not be NUL-terminated and may
 * contain NUL bytes (they are simply rejected).
 *
 * Ownership: spans point into the caller's buffer and are valid only while
 * it is; the caller owns the fields array. Threading: reentrant, no shared
 * state; any thread may call any function on its own buffers. */
#ifndef VIGIL_JSON_SCAN_H
#define VIGIL_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_SCAN_DEPTH 8   /* deepest level a value may sit at (top object = 0) */
#define JSON_SCAN_FIELDS 24 /* the device core's member cap: more is hostile input */

typedef enum json_scan_status {
    JSON_SCAN_OK = 0,
    JSON_SCAN_EINVAL = -1,     /* NULL nfields; NULL buf with n > 0; NULL fields with cap > 0 */
    JSON_SCAN_ENOTOBJECT = -2, /* the top-level value is not an object (or there is none) */
    JSON_SCAN_ESYNTAX = -3,    /* not JSON, or input ends before the document does */
    JSON_SCAN_EDEPTH = -4,     /* nested deeper than JSON_SCAN_DEPTH */
    JSON_SCAN_EFIELDS = -5,    /* more top-level members than the fields array holds */
    JSON_SCAN_ETRAILING = -6,  /* non-whitespace after the object */
    JSON_SCAN_EABSENT = -7,    /* json_scan_get: no member with that key */
    JSON_SCAN_EDUPLICATE = -8, /* json_scan_get: the key is given twice */
    JSON_SCAN_ERANGE = -9,     /* json_scan_uint: not an integral number within [lo, hi] */
} json_scan_status;

typedef enum json_scan_type {
    JSON_SCAN_STR,
    JSON_SCAN_NUM,
    JSON_SCAN_TRUE,
    JSON_SCAN_FALSE,
    JSON_SCAN_NULL,
    JSON_SCAN_OBJ,
    JSON_SCAN_ARR,
} json_scan_type;

/* A value's raw text inside the caller's buffer. For strings the span is
 * the content between the quotes, still escaped; for everything else it is
 * the value's whole text (an object's span runs from '{' to '}'). */
typedef struct json_scan_span {
    const char *p;
    size_t n;
    json_scan_type type;
} json_scan_span;

typedef struct json_scan_field {
    json_scan_span key; /* always JSON_SCAN_STR */
    json_scan_span val;
} json_scan_field;

/* Scans buf[0..n) as one JSON object. On JSON_SCAN_OK, *nfields top-level
 * members are in fields[0..*nfields), in document order. On any error
 * *nfields is 0 and the contents of fields are unspecified. Returns one of
 * OK, EINVAL, ENOTOBJECT, ESYNTAX, EDEPTH, EFIELDS, ETRAILING. */
json_scan_status json_scan_object(const char *buf, size_t n, json_scan_field *fields, size_t cap,
                                  size_t *nfields);

/* True when the span's raw text is exactly the NUL-terminated lit (for a
 * string: its escaped content, so "p\u0069ng" is not "ping"). */
bool json_scan_span_is(const json_scan_span *sp, const char *lit);

/* Finds the member named key (compared raw, as json_scan_span_is). Returns
 * OK with its value in *out, EABSENT, or EDUPLICATE (refused: which one
 * would the sender have meant? *out is then unspecified). */
json_scan_status json_scan_get(const json_scan_field *fields, size_t nfields, const char *key,
                               json_scan_span *out);

/* Reads an integral JSON number within [lo, hi] (bounds ≤ 2^53, where a
 * double is exact) into *out: "1e3" and "1000.0" are 1000. Returns OK or
 * ERANGE (not a number, not integral, out of range, or over 39 chars). */
json_scan_status json_scan_uint(const json_scan_span *sp, double lo, double hi, uint64_t *out);

#endif
