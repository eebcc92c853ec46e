#include "sbuf.h"

#include "json_escape.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(sbuf *b, size_t headroom)
{
    memset(b, 0, sizeof *b);
    b->head = headroom;
}

void sbuf_free(sbuf *b)
{
    if (!b)
        return;
    free(b->mem);
    b->mem = NULL;
    b->len = b->cap = 0;
}

int sbuf_ok(const sbuf *b) { return !b->failed; }

char *sbuf_data(const sbuf *b) { return b->mem ? b->mem + b->head : NULL; }

void sbuf_reset(sbuf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->mem)
        b->mem[b->head] = 0;
}

int sbuf_reserve(sbuf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (b->mem && b->len + extra <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + extra)
        ncap *= 2;
    char *m = realloc(b->mem, b->head + ncap + 1);
    if (!m) {
        b->failed = 1;
        return -1;
    }
    b->mem = m;
    b->cap = ncap;
    return 0;
}

void sbuf_add(sbuf *b, const void *p, size_t n)
{
    if (sbuf_reserve(b, n) != 0)
        return;
    memcpy(b->mem + b->head + b->len, p, n);
    b->len += n;
    b->mem[b->head + b->len] = 0;
}

void sbuf_adds(sbuf *b, const char *s) { sbuf_add(b, s, strlen(s)); }

void sbuf_addf(sbuf *b, const char *fmt, ...)
{
    if (sbuf_reserve(b, 64) != 0)
        return;
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->mem + b->head + b->len, b->cap - b->len + 1, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n <= b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        if (sbuf_reserve(b, (size_t)n) != 0)
            return;
    }
}

static void sbuf__sink(void *ctx, const char *p, size_t n)
{
    sbuf_add(ctx, p, n);
}

void sbuf_add_json_str(sbuf *b, const char *s)
{
    sbuf_add(b, "\"", 1);
    json_escape(s, sbuf__sink, b);
    sbuf_add(b, "\"", 1);
}
