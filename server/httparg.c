/* httparg — see httparg.h. */
#include "httparg.h"

#include <stddef.h>

int httparg_int64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || lo > hi)
        return -1;
    int neg = *s == '-';
    const char *p = s + neg;
    /* Accumulate as a negative number: its range holds INT64_MIN. */
    int64_t v = 0;
    size_t n = 0;
    for (; *p; p++, n++) {
        if (*p < '0' || *p > '9' || n >= 19)
            return -1;
        int d = *p - '0';
        if (v < (INT64_MIN + d) / 10)
            return -1;
        v = v * 10 - d;
    }
    if (n == 0)
        return -1;
    if (!neg) {
        if (v == INT64_MIN)
            return -1;
        v = -v;
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int httparg_sub(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

int httparg_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}
