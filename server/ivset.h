/* ivset — a set of int64 points kept as a sorted array of disjoint,
 * non-adjacent closed intervals [lo, hi], searched by binary search. The
 * completeness model keeps two per boot (seqs received, seqs lost); nothing
 * in here knows about seqs, devices or boots.
 *
 * Bounded: at most `max` intervals (ivset_init); an operation that would
 * need more answers IVSET_EFULL and leaves the set unchanged (ivset_bridge
 * is the one way to add past the bound, by over-covering).
 *
 * Values: any int64 in (INT64_MIN, INT64_MAX) — adjacency is tested with
 * lo - 1 and hi + 1, so the two extreme values themselves are not allowed.
 *
 * Ownership: the set owns its array (ivset_free). Threads: none inside. */
#ifndef VIGIL_IVSET_H
#define VIGIL_IVSET_H

#include <stddef.h>
#include <stdint.h>

typedef enum ivset_err {
    IVSET_OK = 0,
    IVSET_EFULL = -1,  /* would exceed max intervals, or out of memory */
    IVSET_EINVAL = -2, /* hi < lo, a point not in the set, or an empty set to bridge into */
} ivset_err;

typedef struct ivset_iv {
    int64_t lo, hi;
} ivset_iv;

/* 32-bit counts: the completeness model keeps two sets per boot of every
 * device, so the struct's size counts (24 bytes, not 32). */
typedef struct ivset {
    ivset_iv *v;   /* n sorted intervals */
    uint32_t n, cap;
    uint32_t max;  /* bound on n */
} ivset;

/* An empty set of at most max intervals (allocates nothing yet; a max
 * above UINT32_MAX is UINT32_MAX). The array grows by doubling from one
 * interval: a device's set of received seqs is one interval while nothing
 * is missing, so a bigger first allocation would be mostly waste. */
void ivset_init(ivset *s, size_t max);
void ivset_free(ivset *s); /* NULL-safe; leaves an empty set */

/* Index of the first interval with hi >= x (n if none). */
size_t ivset_lower(const ivset *s, int64_t x);
/* The interval containing x, or NULL. Valid until the next change. */
const ivset_iv *ivset_find(const ivset *s, int64_t x);
/* Points of [lo, hi] in the set. */
uint64_t ivset_count(const ivset *s, int64_t lo, int64_t hi);

/* Adds [lo, hi], merging with overlapping or adjacent intervals. Returns
 * the number of points newly covered (>= 0), or IVSET_EFULL / IVSET_EINVAL. */
int64_t ivset_add(ivset *s, int64_t lo, int64_t hi);
/* Removes the point x, splitting its interval if needed. IVSET_EINVAL if x
 * is not in the set, IVSET_EFULL if a split needs room past max. */
ivset_err ivset_remove_point(ivset *s, int64_t x);
/* For a full set: covers [lo, hi] (which must not overlap the set) by
 * stretching the interval just below it up to hi (merging the one above if
 * it then touches), or, with none below, the first one down to lo. Points
 * between get covered too: the caller accounts for them. */
ivset_err ivset_bridge(ivset *s, int64_t lo, int64_t hi);

#endif
