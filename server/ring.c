/* ring — see ring.h. Indices wrap by comparison, not modulo: the capacity
 * need not be a power of two (--store-queue and --ws-queue are any size). */
#include "ring.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

ring_err ring_init(ring *r, size_t cap, size_t esize)
{
    memset(r, 0, sizeof *r);
    if (!cap || !esize || cap > SIZE_MAX / esize)
        return RING_EINVAL;
    r->mem = malloc(cap * esize);
    if (!r->mem)
        return RING_ENOMEM;
    r->cap = cap;
    r->esize = esize;
    return RING_OK;
}

void ring_free(ring *r)
{
    if (!r)
        return;
    free(r->mem);
    memset(r, 0, sizeof *r);
}

static size_t ring__index(const ring *r, size_t i)
{
    size_t k = r->head + i; /* head < cap and i < cap: no overflow */
    return k >= r->cap ? k - r->cap : k;
}

void *ring_push(ring *r)
{
    if (r->count == r->cap)
        return NULL;
    size_t i = ring__index(r, r->count);
    if (i >= r->touched)
        r->touched = i + 1;
    void *slot = r->mem + i * r->esize;
    r->count++;
    return slot;
}

ring_err ring_push_copy(ring *r, const void *e)
{
    void *slot = ring_push(r);
    if (!slot)
        return RING_EFULL;
    memcpy(slot, e, r->esize);
    return RING_OK;
}

void *ring_at(const ring *r, size_t i)
{
    return i < r->count ? r->mem + ring__index(r, i) * r->esize : NULL;
}

void *ring_front(const ring *r) { return ring_at(r, 0); }

void ring_pop(ring *r)
{
    if (!r->count)
        return;
    r->count--;
    /* Empty: start over at slot 0, so that a ring that keeps up stays within
     * its first pages instead of walking the whole buffer. */
    r->head = r->count ? ring__index(r, 1) : 0;
}

int ring_trim(ring *r, size_t keep)
{
    if (r->count || r->touched <= keep)
        return 0;
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    uintptr_t from = (uintptr_t)r->mem + keep * r->esize;
    uintptr_t to = (uintptr_t)r->mem + r->touched * r->esize;
    from = (from + page - 1) & ~(uintptr_t)(page - 1); /* whole pages of ours only */
    to &= ~(uintptr_t)(page - 1);
    r->touched = keep;
    if (to <= from)
        return 0;
    /* Advice only: if refused, the pages simply stay resident. */
    return madvise((void *)from, to - from, MADV_DONTNEED) == 0;
}

ring_err ring_pop_copy(ring *r, void *out)
{
    if (!r->count)
        return RING_EEMPTY;
    memcpy(out, ring_front(r), r->esize);
    ring_pop(r);
    return RING_OK;
}
