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

void jsonw_double(jsonw *w, const char *k, double v)
{
    jsonw_key(w, k);
    if (!isfinite(v)) { /* JSON has no inf/nan */
        JSONW_LIT(w, "null");
        return;
    }
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.10g", v);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        w->ok = 0;
        return;
    }
    jsonw_raw(w, tmp, (size_t)n);
}

void jsonw_int(jsonw *w, const char *k, int64_t v)
{
    jsonw_key(w, k);
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        w->ok = 0;
        return;
    }
    jsonw_raw(w, tmp, (size_t)n);
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
