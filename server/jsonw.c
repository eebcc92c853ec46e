/* jsonw — see jsonw.h. */
#include "jsonw.h"

#include "json_escape.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void jsonw_init(jsonw *w, char *buf, size_t cap)
{
    w->p = buf;
    w->cap = cap;
    w->n = 0;
    w->ok = buf != NULL && cap > 0;
    w->first = 1;
}

void jsonw_raw(jsonw *w, const char *s, size_t n)
{
    if (!w->ok)
        return;
    if (w->cap - w->n <= n) { /* keep room for the NUL */
        w->ok = 0;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void jsonw__sink(void *ctx, const char *p, size_t n)
{
    jsonw_raw(ctx, p, n);
}

void jsonw_esc(jsonw *w, const char *s)
{
    json_escape(s, jsonw__sink, w);
}

void jsonw_str(jsonw *w, const char *s)
{
    JSONW_LIT(w, "\"");
    jsonw_esc(w, s);
    JSONW_LIT(w, "\"");
}

void jsonw_key(jsonw *w, const char *k)
{
    if (!w->first)
        JSONW_LIT(w, ",");
    w->first = 0;
    JSONW_LIT(w, "\"");
    jsonw_raw(w, k, strlen(k));
    JSONW_LIT(w, "\":");
}

/* The fast path of jsonw_fmt_double: v is exactly the nearest double to a
 * decimal with at most 3 decimals and at most 10 significant digits (every
 * reading a sensor gives: 36.6, 98, 3.7). Then "%.10g" rounds v back to that
 * decimal and strips trailing zeros, so printing the decimal itself with
 * integer arithmetic gives the same bytes, ~10x faster than snprintf.
 * Returns the length, or 0 when v is not such a value. */
static size_t jsonw__fixed3(double v, char *out)
{
    if (!(v > -1e7 && v < 1e7) || (v == 0 && signbit(v)))
        return 0; /* 10 digits at most; "-0" is left to snprintf */
    double sv = v * 1000.0;
    int64_t s = (int64_t)(sv < 0 ? sv - 0.5 : sv + 0.5);
    /* Division is correctly rounded: equal means v is the nearest double
     * to s/1000, hence what %.10g would round it back to. */
    if ((double)s / 1000.0 != v)
        return 0;
    char *p = out;
    uint64_t a = s < 0 ? (uint64_t)-s : (uint64_t)s;
    if (s < 0)
        *p++ = '-';
    uint64_t ip = a / 1000;
    unsigned fr = (unsigned)(a % 1000);
    char rev[8];
    int nr = 0;
    do {
        rev[nr++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (nr)
        *p++ = rev[--nr];
    if (fr) {
        *p++ = '.';
        *p++ = (char)('0' + fr / 100);
        fr %= 100;
        if (fr) {
            *p++ = (char)('0' + fr / 10);
            fr %= 10;
            if (fr)
                *p++ = (char)('0' + fr);
        }
    }
    return (size_t)(p - out);
}

size_t jsonw_fmt_double(double v, char *out, size_t cap)
{
    if (cap < JSONW_DOUBLE_MAX)
        return 0;
    size_t n = jsonw__fixed3(v, out);
    if (n) {
        out[n] = '\0';
        return n;
    }
    int r = snprintf(out, cap, "%.10g", v);
    return r < 0 || (size_t)r >= cap ? 0 : (size_t)r;
}

void jsonw_double(jsonw *w, const char *k, double v)
{
    jsonw_key(w, k);
    if (!isfinite(v)) { /* JSON has no inf/nan */
        JSONW_LIT(w, "null");
        return;
    }
    char tmp[JSONW_DOUBLE_MAX];
    size_t n = jsonw_fmt_double(v, tmp, sizeof tmp);
    if (!n) {
        w->ok = 0;
        return;
    }
    jsonw_raw(w, tmp, n);
}

const char *jsonw_fmt_i64(int64_t v, char out[JSONW_I64_MAX])
{
    char *p = out + JSONW_I64_MAX;
    uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + a % 10);
        a /= 10;
    } while (a);
    if (v < 0)
        *--p = '-';
    return p;
}

void jsonw_int(jsonw *w, const char *k, int64_t v)
{
    jsonw_key(w, k);
    char tmp[JSONW_I64_MAX];
    const char *p = jsonw_fmt_i64(v, tmp);
    jsonw_raw(w, p, (size_t)(tmp + sizeof tmp - p));
}

void jsonw_bool(jsonw *w, const char *k, int v)
{
    jsonw_key(w, k);
    if (v)
        JSONW_LIT(w, "true");
    else
        JSONW_LIT(w, "false");
}

size_t jsonw_finish(jsonw *w)
{
    if (!w->ok) {
        if (w->p != NULL && w->cap > 0)
            w->p[0] = '\0';
        return 0;
    }
    w->p[w->n] = '\0';
    return w->n;
}
