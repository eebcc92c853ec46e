/* ring — the one bounded FIFO of vigild: fixed-size elements in a circular
 * buffer allocated once. Used for every queue between and inside threads
 * (store queue, hub inbox, client queues, publish queue).
 *
 * Bounded by construction: the capacity is fixed at ring_init and a push on
 * a full ring fails (NULL / RING_EFULL) without touching the ring. What a
 * full queue means — drop and count, refuse the request, cut a client — is
 * the owner's rule, written where the ring is owned.
 *
 * Ownership: the ring owns its buffer; elements are copied in and out as
 * bytes, so anything an element points to stays the owner's business (drain
 * before ring_free if elements hold references).
 *
 * Memory: an emptied ring starts again at its first slot, so a queue that
 * keeps up touches only as many slots as its deepest backlog — a large ring
 * is mapped lazily by malloc and its untouched pages cost no RAM (the store
 * queue is 100,000 × ~330 B). ring_trim gives back what a burst touched.
 *
 * Threads: none inside. A ring shared by threads is guarded by its owner's
 * lock (store.c, hub.c, ingest.c say which). */
#ifndef VIGIL_RING_H
#define VIGIL_RING_H

#include <stddef.h>

typedef enum ring_err {
    RING_OK = 0,
    RING_EFULL = -1,   /* push on a full ring: nothing was added */
    RING_EEMPTY = -2,  /* pop on an empty ring */
    RING_EINVAL = -3,  /* zero capacity or element size, or their product overflows */
    RING_ENOMEM = -4,
} ring_err;

typedef struct ring {
    unsigned char *mem; /* cap * esize bytes */
    size_t esize;       /* bytes per element */
    size_t cap;         /* elements */
    size_t head;        /* index of the oldest element */
    size_t count;       /* elements held */
    size_t touched;     /* slots [0, touched) may be resident (see ring_trim) */
} ring;

/* Allocates room for cap elements of esize bytes. */
ring_err ring_init(ring *r, size_t cap, size_t esize);
/* Frees the buffer (not what elements point to). NULL-safe; idempotent. */
void ring_free(ring *r);

/* Reserves the slot after the newest element and returns it (uninitialised,
 * already counted), or NULL when full. Filling it in place saves a copy of
 * large elements. */
void *ring_push(ring *r);
/* Copies esize bytes of e in as the newest element. */
ring_err ring_push_copy(ring *r, const void *e);

/* On an empty ring whose pushes touched more than keep slots since the last
 * trim: returns the whole pages past the first keep slots to the kernel
 * (madvise MADV_DONTNEED; they read back as zeros, and are mapped again when
 * a push reaches them). Returns 1 if it did, 0 if there was nothing to do or
 * the ring is not empty. One syscall, so callers do it after a burst, not per
 * element. */
int ring_trim(ring *r, size_t keep);

/* The oldest element, or NULL when empty. */
void *ring_front(const ring *r);
/* The i-th element from the oldest (0 = oldest), or NULL when i >= count. */
void *ring_at(const ring *r, size_t i);
/* Removes the oldest element (no-op when empty). */
void ring_pop(ring *r);
/* Copies the oldest element into out and removes it. */
ring_err ring_pop_copy(ring *r, void *out);

static inline size_t ring_count(const ring *r) { return r->count; }
static inline size_t ring_capacity(const ring *r) { return r->cap; }
static inline int ring_full(const ring *r) { return r->count == r->cap; }
static inline int ring_empty(const ring *r) { return r->count == 0; }

#endif
