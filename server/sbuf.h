/* sbuf — a growable byte buffer for building JSON and text responses.
 * Optionally reserves LWS_PRE-style headroom in front of the data so the
 * result can be handed to lws_write() without a copy.
 *
 * Ownership: the sbuf owns its memory; sbuf_free() releases it (NULL-safe),
 * sbuf_steal() hands it to the caller. After an allocation failure the
 * buffer is marked failed, further appends are ignored and sbuf_ok() is 0,
 * so callers check once at the end. One thread at a time. */
#ifndef VIGIL_SBUF_H
#define VIGIL_SBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sbuf {
    char *mem;       /* headroom + data */
    size_t head;     /* bytes reserved before the data */
    size_t len;      /* data bytes */
    size_t cap;      /* data capacity (excluding headroom and the NUL) */
    int failed;
} sbuf;

void sbuf_init(sbuf *b, size_t headroom);
void sbuf_free(sbuf *b);
int sbuf_ok(const sbuf *b);
char *sbuf_data(const sbuf *b); /* NUL-terminated data (never NULL after an append) */
void sbuf_reset(sbuf *b);
void sbuf_add(sbuf *b, const void *p, size_t n);
void sbuf_adds(sbuf *b, const char *s);
void sbuf_addf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, escaped by
 * protocol/json_escape (the one escaper). */
void sbuf_add_json_str(sbuf *b, const char *s);
int sbuf_reserve(sbuf *b, size_t extra);

#endif
