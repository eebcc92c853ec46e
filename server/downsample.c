/* downsample — see downsample.h.
 *
 * Offsets from `from` are computed in uint64_t: to - from can exceed
 * INT64_MAX (e.g. from = INT64_MIN), and signed overflow is undefined. */
#include "downsample.h"

#include <math.h>
#include <string.h>

int64_t downsample_width(int64_t from, int64_t to, size_t max_points)
{
    if (to < from || max_points == 0)
        return -1;
    uint64_t d = (uint64_t)to - (uint64_t)from; /* span - 1; span itself may be 2^64 */
    /* ceil((d + 1) / m) == d / m + 1 for d >= 0, m >= 1, without computing d + 1. */
    uint64_t q = d / (uint64_t)max_points;
    if (q >= (uint64_t)INT64_MAX) /* the width would not fit the int64_t field */
        return -1;
    return (int64_t)(q + 1);
}

int downsample_init(downsample *ds, int64_t from, int64_t to, size_t max_points,
                    downsample_bucket *storage, size_t cap)
{
    if (ds == NULL || storage == NULL)
        return -1;
    int64_t width = downsample_width(from, to, max_points);
    if (width < 1)
        return -1;
    uint64_t d = (uint64_t)to - (uint64_t)from;
    size_t nb = (size_t)(d / (uint64_t)width + 1); /* <= max_points, see downsample_width */
    if (nb > cap)
        return -1;

    ds->from = from;
    ds->to = to;
    ds->width = width;
    ds->nbuckets = nb;
    ds->b = storage;
    memset(storage, 0, nb * sizeof *storage);
    for (size_t i = 0; i < nb; i++) {
        /* from + i * width <= to, so the true value fits int64_t; the
         * unsigned sum wraps to its two's-complement representation. */
        uint64_t t = (uint64_t)from + (uint64_t)i * (uint64_t)width;
        storage[i].t_start = (int64_t)t;
    }
    return 0;
}

void downsample_add(downsample *ds, int64_t t, const double vals[DS_CHANNELS], unsigned mask)
{
    if (ds == NULL || ds->b == NULL || t < ds->from || t > ds->to)
        return;
    uint64_t idx = ((uint64_t)t - (uint64_t)ds->from) / (uint64_t)ds->width;
    if (idx >= ds->nbuckets) /* cannot happen after init; guards a hand-made ds */
        return;
    downsample_bucket *b = &ds->b[idx];
    b->count++;
    if (vals == NULL)
        return;
    for (int c = 0; c < DS_CHANNELS; c++) {
        /* A non-finite value would poison min/max/avg for the whole bucket. */
        if (!(mask & (1u << c)) || !isfinite(vals[c]))
            continue;
        downsample_stat *s = &b->ch[c];
        double v = vals[c];
        if (s->n == 0) {
            s->min = s->max = v;
        } else {
            if (v < s->min)
                s->min = v;
            if (v > s->max)
                s->max = v;
        }
        s->sum += v;
        s->n++;
    }
}
