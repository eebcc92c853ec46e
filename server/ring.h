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
