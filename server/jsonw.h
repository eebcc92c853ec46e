/* jsonw — an append-only JSON writer into a fixed caller buffer, for output
 * built on a hot path without allocation (telemetry_json). Growable output
 * uses sbuf instead; both escape strings with protocol/json_escape, the one
 * escaper.
 *
 * Any overflow poisons the writer: later appends are ignored and
 * jsonw_finish() returns 0 with buf holding "", so a caller never ships a
 * truncated object and checks once at the end.
 *
 * Ownership: the writer borrows buf for its lifetime; it allocates nothing.
 * Threads: one writer per thread; the functions are reentrant. */
#ifndef VIGIL_JSONW_H
#define VIGIL_JSONW_H

#include <stddef.h>
#include <stdint.h>

typedef struct jsonw {
    char *p;
    size_t cap, n;
    int ok;    /* 0 after an overflow */
    int first; /* no member written yet: the next key needs no comma */
} jsonw;

/* Starts writing at buf[0]; cap includes the room for the NUL. */
void jsonw_init(jsonw *w, char *buf, size_t cap);
/* n bytes as they are. */
void jsonw_raw(jsonw *w, const char *s, size_t n);
#define JSONW_LIT(w, lit) jsonw_raw((w), (lit), sizeof(lit) - 1)
/* s escaped, without quotes. */
void jsonw_esc(jsonw *w, const char *s);
/* s as a JSON string literal, quotes included. */
void jsonw_str(jsonw *w, const char *s);
/* The member name k (trusted: written as is), preceded by a comma unless it
 * is the first member, and the colon. */
void jsonw_key(jsonw *w, const char *k);
/* v exactly as snprintf("%.10g") prints it, NUL-terminated, into out (cap
 * >= JSONW_DOUBLE_MAX); values with at most 3 decimals (readings) take an
 * integer-arithmetic path with the same bytes. Returns the length, or 0. */
#define JSONW_DOUBLE_MAX 40
size_t jsonw_fmt_double(double v, char *out, size_t cap);
/* v as "%" PRId64 prints it, without printf, at the end of out[0..24):
 * returns where the digits start (the text is not NUL-terminated). */
#define JSONW_I64_MAX 24
const char *jsonw_fmt_i64(int64_t v, char out[JSONW_I64_MAX]);
/* Members "k":value. Doubles as %.10g, non-finite as null. */
void jsonw_double(jsonw *w, const char *k, double v);
void jsonw_int(jsonw *w, const char *k, int64_t v);
void jsonw_bool(jsonw *w, const char *k, int v);
/* NUL-terminates; returns the length, or 0 (buf "") after an overflow. */
size_t jsonw_finish(jsonw *w);

#endif
