/* ivset — see ivset.h. Every loop runs over the n intervals at most. */
#include "ivset.h"

#include <stdlib.h>
#include <string.h>

void ivset_init(ivset *s, size_t max)
{
    s->v = NULL;
    s->n = s->cap = 0;
    s->max = max > UINT32_MAX ? UINT32_MAX : (uint32_t)max;
}

void ivset_free(ivset *s)
{
    if (!s)
        return;
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

size_t ivset_lower(const ivset *s, int64_t x)
{
    size_t a = 0, b = s->n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (s->v[m].hi < x)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

const ivset_iv *ivset_find(const ivset *s, int64_t x)
{
    size_t i = ivset_lower(s, x);
    return i < s->n && s->v[i].lo <= x ? &s->v[i] : NULL;
}

static int ivset__reserve(ivset *s, size_t want)
{
    if (want <= s->cap)
        return 0;
    if (want > s->max)
        return -1;
    size_t ncap = s->cap ? (size_t)s->cap * 2 : 1;
    while (ncap < want)
        ncap *= 2;
    if (ncap > s->max)
        ncap = s->max;
    ivset_iv *nv = realloc(s->v, ncap * sizeof *nv);
    if (!nv)
        return -1;
    s->v = nv;
    s->cap = (uint32_t)ncap;
    return 0;
}

/* Points of [lo, hi] in one interval. */
static uint64_t ivset__overlap(const ivset_iv *v, int64_t lo, int64_t hi)
{
    int64_t a = v->lo > lo ? v->lo : lo;
    int64_t b = v->hi < hi ? v->hi : hi;
    return b >= a ? (uint64_t)(b - a) + 1 : 0;
}

uint64_t ivset_count(const ivset *s, int64_t lo, int64_t hi)
{
    uint64_t n = 0;
    for (size_t i = ivset_lower(s, lo); i < s->n && s->v[i].lo <= hi; i++)
        n += ivset__overlap(&s->v[i], lo, hi);
    return n;
}

int64_t ivset_add(ivset *s, int64_t lo, int64_t hi)
{
    if (hi < lo)
        return IVSET_EINVAL;
    size_t i = ivset_lower(s, lo - 1); /* first that may touch (hi >= lo - 1) */
    size_t j = i;
    int64_t nlo = lo, nhi = hi;
    uint64_t covered = 0;
    while (j < s->n && s->v[j].lo <= hi + 1) {
        covered += ivset__overlap(&s->v[j], lo, hi);
        if (s->v[j].lo < nlo)
            nlo = s->v[j].lo;
        if (s->v[j].hi > nhi)
            nhi = s->v[j].hi;
        j++;
    }
    if (j == i) { /* nothing to merge: a new interval at i */
        if (ivset__reserve(s, (size_t)s->n + 1) != 0)
            return IVSET_EFULL;
        memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
        s->n++;
    } else if (j > i + 1) {
        memmove(&s->v[i + 1], &s->v[j], (s->n - j) * sizeof *s->v);
        s->n -= (uint32_t)(j - i - 1);
    }
    s->v[i] = (ivset_iv){nlo, nhi};
    return (int64_t)((uint64_t)(hi - lo) + 1 - covered);
}

ivset_err ivset_remove_point(ivset *s, int64_t x)
{
    size_t i = ivset_lower(s, x);
    if (i == s->n || s->v[i].lo > x)
        return IVSET_EINVAL;
    ivset_iv *v = &s->v[i];
    if (v->lo == x && v->hi == x) {
        memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
        s->n--;
    } else if (v->lo == x) {
        v->lo++;
    } else if (v->hi == x) {
        v->hi--;
    } else {
        if (ivset__reserve(s, (size_t)s->n + 1) != 0)
            return IVSET_EFULL;
        v = &s->v[i];
        ivset_iv right = {x + 1, v->hi};
        v->hi = x - 1;
        memmove(&s->v[i + 2], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
        s->v[i + 1] = right;
        s->n++;
    }
    return IVSET_OK;
}

ivset_err ivset_bridge(ivset *s, int64_t lo, int64_t hi)
{
    if (s->n == 0 || hi < lo)
        return IVSET_EINVAL;
    size_t i = ivset_lower(s, lo);
    if (i > 0) {
        s->v[i - 1].hi = hi;
        if (i < s->n && s->v[i].lo <= hi + 1) {
            s->v[i - 1].hi = s->v[i].hi;
            memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
            s->n--;
        }
    } else {
        s->v[0].lo = lo;
    }
    return IVSET_OK;
}
