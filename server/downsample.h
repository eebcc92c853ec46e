/* downsample — min/avg/max buckets over a time range, for history charts.
 * Pure logic, no I/O: the store feeds it rows in any order; it keeps at most
 * max_points buckets, so memory is bounded by the request, not by the range.
 *
 * Thread safety: a downsample value belongs to one thread at a time. */
#ifndef VIGIL_DOWNSAMPLE_H
#define VIGIL_DOWNSAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* The channels kept per bucket, in this order. */
enum { DS_OBJECT_TEMP = 0, DS_AMBIENT_TEMP, DS_HEART_RATE, DS_SPO2, DS_CHANNELS };

typedef struct downsample_stat {
    double min, max, sum;
    uint32_t n; /* values seen; 0 means the channel had no value in this bucket */
} downsample_stat;

typedef struct downsample_bucket {
    int64_t t_start;   /* epoch ms, inclusive; the bucket covers [t_start, t_start + width) */
    uint32_t count;    /* rows that fell in the bucket */
    downsample_stat ch[DS_CHANNELS];
} downsample_bucket;

typedef struct downsample {
    int64_t from, to;  /* the requested range, inclusive */
    int64_t width;     /* bucket width in ms, >= 1 */
    size_t nbuckets;   /* ceil((to - from + 1) / width) <= max_points */
    downsample_bucket *b; /* caller-owned storage for nbuckets entries */
} downsample;

/* Width (ms) that splits [from, to] into at most max_points buckets:
 * ceil((to - from + 1) / max_points), at least 1. Returns -1 if to < from or
 * max_points == 0. */
int64_t downsample_width(int64_t from, int64_t to, size_t max_points);

/* Prepares ds over [from, to] with at most max_points buckets, using the
 * caller's storage (cap entries; must be >= the bucket count, which never
 * exceeds max_points). Returns 0, or -1 on bad arguments. */
int downsample_init(downsample *ds, int64_t from, int64_t to, size_t max_points,
                    downsample_bucket *storage, size_t cap);

/* Adds one row at time t. vals[i] counts only when bit i of mask is set.
 * Rows outside [from, to] are ignored. */
void downsample_add(downsample *ds, int64_t t, const double vals[DS_CHANNELS],
                    unsigned mask);

#endif
