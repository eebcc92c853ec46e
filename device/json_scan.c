/* json_scan — see json_scan.h. */
#include "json_scan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct json_scan__state {
    const char *s;
    size_t n;
    size_t i;
    json_scan_status err; /* the first failure; the scan stops at it (no backtracking) */
} json_scan__state;

static bool json_scan__fail(json_scan__state *j, json_scan_status err)
{
    if (j->err == JSON_SCAN_OK)
        j->err = err;
    return false;
}

static void json_scan__ws(json_scan__state *j)
{
    while (j->i < j->n &&
           (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r'))
        j->i++;
}

static bool json_scan__hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool json_scan__string(json_scan__state *j, json_scan_span *out)
{
    if (j->i >= j->n || j->s[j->i] != '"')
        return json_scan__fail(j, JSON_SCAN_ESYNTAX);
    size_t start = ++j->i;
    while (j->i < j->n) {
        unsigned char c = (unsigned char)j->s[j->i];
        if (c == '"') {
            out->p = j->s + start;
            out->n = j->i - start;
            out->type = JSON_SCAN_STR;
            j->i++;
            return true;
        }
        if (c < 0x20)
            return json_scan__fail(j, JSON_SCAN_ESYNTAX);
        if (c == '\\') {
            if (++j->i >= j->n)
                return json_scan__fail(j, JSON_SCAN_ESYNTAX);
            char e = j->s[j->i];
            if (e == 'u') {
                /* four hex digits, and still room for the closing quote */
                if (j->i + 4 >= j->n)
                    return json_scan__fail(j, JSON_SCAN_ESYNTAX);
                for (int k = 1; k <= 4; k++)
                    if (!json_scan__hex(j->s[j->i + k]))
                        return json_scan__fail(j, JSON_SCAN_ESYNTAX);
                j->i += 4;
            } else if (e == '\0' || !strchr("\"\\/bfnrt", e)) {
                return json_scan__fail(j, JSON_SCAN_ESYNTAX);
            }
        }
        j->i++;
    }
    return json_scan__fail(j, JSON_SCAN_ESYNTAX);
}

static bool json_scan__digits(json_scan__state *j)
{
    size_t st = j->i;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
        j->i++;
    return j->i > st;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? — a leading zero ends the
 * integer part, so "01" leaves "1" for the caller to refuse. */
static bool json_scan__number(json_scan__state *j, json_scan_span *out)
{
    size_t st = j->i;
    if (j->i < j->n && j->s[j->i] == '-')
        j->i++;
    if (j->i < j->n && j->s[j->i] == '0')
        j->i++;
    else if (!json_scan__digits(j))
        return json_scan__fail(j, JSON_SCAN_ESYNTAX);
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        if (!json_scan__digits(j))
            return json_scan__fail(j, JSON_SCAN_ESYNTAX);
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
            j->i++;
        if (!json_scan__digits(j))
            return json_scan__fail(j, JSON_SCAN_ESYNTAX);
    }
    out->p = j->s + st;
    out->n = j->i - st;
    out->type = JSON_SCAN_NUM;
    return true;
}

static bool json_scan__lit(json_scan__state *j, const char *w, json_scan_type type,
                           json_scan_span *out)
{
    size_t n = strlen(w);
    if (j->n - j->i < n || memcmp(j->s + j->i, w, n) != 0)
        return json_scan__fail(j, JSON_SCAN_ESYNTAX);
    out->p = j->s + j->i;
    out->n = n;
    out->type = type;
    j->i += n;
    return true;
}

/* Parses one value at nesting level depth. With fields != NULL (only ever
 * the top-level object) its members are recorded, at most cap of them. */
static bool json_scan__value(json_scan__state *j, int depth, json_scan_span *out,
                             json_scan_field *fields, size_t cap, size_t *nfields)
{
    if (depth > JSON_SCAN_DEPTH)
        return json_scan__fail(j, JSON_SCAN_EDEPTH);
    json_scan__ws(j);
    if (j->i >= j->n)
        return json_scan__fail(j, JSON_SCAN_ESYNTAX);
    char c = j->s[j->i];
    size_t st = j->i;
    if (c == '"')
        return json_scan__string(j, out);
    if (c == 't')
        return json_scan__lit(j, "true", JSON_SCAN_TRUE, out);
    if (c == 'f')
        return json_scan__lit(j, "false", JSON_SCAN_FALSE, out);
    if (c == 'n')
        return json_scan__lit(j, "null", JSON_SCAN_NULL, out);
    if (c == '-' || (c >= '0' && c <= '9'))
        return json_scan__number(j, out);
    if (c != '{' && c != '[')
        return json_scan__fail(j, JSON_SCAN_ESYNTAX);
    bool obj = c == '{';
    char close = obj ? '}' : ']';
    j->i++;
    json_scan__ws(j);
    if (j->i < j->n && j->s[j->i] == close) {
        j->i++;
    } else {
        for (;;) {
            json_scan_span key = {0}, val = {0};
            json_scan__ws(j);
            if (obj) {
                if (!json_scan__string(j, &key))
                    return false;
                json_scan__ws(j);
                if (j->i >= j->n || j->s[j->i] != ':')
                    return json_scan__fail(j, JSON_SCAN_ESYNTAX);
                j->i++;
            }
            if (!json_scan__value(j, depth + 1, &val, NULL, 0, NULL))
                return false;
            if (obj && fields) {
                if (*nfields >= cap)
                    return json_scan__fail(j, JSON_SCAN_EFIELDS);
                fields[*nfields].key = key;
                fields[*nfields].val = val;
                (*nfields)++;
            }
            json_scan__ws(j);
            if (j->i >= j->n)
                return json_scan__fail(j, JSON_SCAN_ESYNTAX);
            if (j->s[j->i] == ',') {
                j->i++;
                continue;
            }
            if (j->s[j->i] != close)
                return json_scan__fail(j, JSON_SCAN_ESYNTAX);
            j->i++;
            break;
        }
    }
    out->p = j->s + st;
    out->n = j->i - st;
    out->type = obj ? JSON_SCAN_OBJ : JSON_SCAN_ARR;
    return true;
}

json_scan_status json_scan_object(const char *buf, size_t n, json_scan_field *fields, size_t cap,
                                  size_t *nfields)
{
    if (!nfields)
        return JSON_SCAN_EINVAL;
    *nfields = 0;
    if ((!buf && n) || (!fields && cap))
        return JSON_SCAN_EINVAL;
    json_scan__state j = {.s = buf, .n = n, .i = 0, .err = JSON_SCAN_OK};
    json_scan_span top;
    json_scan__ws(&j);
    if (j.i >= j.n || buf[j.i] != '{')
        return JSON_SCAN_ENOTOBJECT;
    /* fields may be NULL with cap 0: the scan then only accepts "{}" */
    json_scan_field none;
    if (!json_scan__value(&j, 0, &top, fields ? fields : &none, cap, nfields)) {
        *nfields = 0;
        return j.err;
    }
    json_scan__ws(&j);
    if (j.i != j.n) {
        *nfields = 0;
        return JSON_SCAN_ETRAILING;
    }
    return JSON_SCAN_OK;
}

bool json_scan_span_is(const json_scan_span *sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp->n == n && memcmp(sp->p, lit, n) == 0;
}

json_scan_status json_scan_get(const json_scan_field *fields, size_t nfields, const char *key,
                               json_scan_span *out)
{
    json_scan_status rc = JSON_SCAN_EABSENT;
    for (size_t i = 0; i < nfields; i++) {
        if (json_scan_span_is(&fields[i].key, key)) {
            if (rc == JSON_SCAN_OK)
                return JSON_SCAN_EDUPLICATE;
            *out = fields[i].val;
            rc = JSON_SCAN_OK;
        }
    }
    return rc;
}

json_scan_status json_scan_uint(const json_scan_span *sp, double lo, double hi, uint64_t *out)
{
    if (sp->type != JSON_SCAN_NUM || sp->n >= 40)
        return JSON_SCAN_ERANGE;
    char tmp[40];
    memcpy(tmp, sp->p, sp->n);
    tmp[sp->n] = '\0';
    double v = strtod(tmp, NULL);
    if (!isfinite(v) || v < lo || v > hi || v != floor(v))
        return JSON_SCAN_ERANGE;
    *out = (uint64_t)v;
    return JSON_SCAN_OK;
}
