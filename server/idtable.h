/* idtable — the one keyed table of vigild: open addressing with linear
 * probing, specialised by a type (the key inside an entry, how to hash and
 * compare keys), as Redis' dict is by its dictType. Laid out like CPython's
 * compact dict: the fixed-size entries are stored densely in one array, in
 * insertion order, and the hash index holds 32-bit positions into it, so
 * the empty slots a hash table needs (30-60 % of them) cost 4 bytes each,
 * not an entry each (docs/BENCHMARKS.md "Issue 13 — RSS"). Device ids are the usual keys (the hub's devices, the
 * completeness tracker's devices, the store's key cache); integers work too
 * (the store's per-batch table of device keys).
 *
 * Entries move when the table grows or an entry is removed: a pointer
 * returned by idtable_find/idtable_put is valid only until the next put or
 * remove. Tables whose entries must stay put (they are referenced from
 * elsewhere) store pointers as entries.
 *
 * Bounded: the index grows (doubling, load <= 0.7) and the entry array by
 * half again until max_entries; past that idtable_put answers IDTABLE_EFULL.
 * 0 means no bound of its own (the owner bounds it; at most UINT32_MAX - 1
 * entries in any case).
 *
 * Ownership: the table owns its slot arrays; entries are copied in as bytes,
 * and whatever they point to stays the owner's (iterate and release before
 * idtable_free).
 *
 * Threads: none inside; one owner thread, or the owner's lock. */
#ifndef VIGIL_IDTABLE_H
#define VIGIL_IDTABLE_H

#include <stddef.h>
#include <stdint.h>

typedef enum idtable_err {
    IDTABLE_OK = 0,
    IDTABLE_EEXIST = -1, /* put: an entry with that key is already there (left as is) */
    IDTABLE_EFULL = -2,  /* put: max_entries reached */
    IDTABLE_ENOMEM = -3,
    IDTABLE_EINVAL = -4,
} idtable_err;

typedef struct idtable_type {
    size_t entry_size;
    const void *(*key_of)(const void *entry);         /* the key inside an entry */
    uint64_t (*hash)(const void *key);
    int (*equal)(const void *a, const void *b);       /* keys; 1 if equal */
} idtable_type;

typedef struct idtable {
    const idtable_type *type;
    unsigned char *entries; /* ecap * entry_size; the first count are in use */
    uint32_t *index;       /* cap slots: 0 empty, else an entry's position + 1 */
    size_t cap;            /* index slots, a power of two */
    size_t ecap;           /* entries allocated */
    size_t count;
    size_t max_entries;    /* 0: unbounded */
} idtable;

/* initial: entries expected (rounded up); max_entries as above. */
idtable_err idtable_init(idtable *t, const idtable_type *type, size_t initial, size_t max_entries);
void idtable_free(idtable *t); /* NULL-safe; idempotent */

/* The entry with that key, or NULL. */
void *idtable_find(const idtable *t, const void *key);
/* Copies entry in (its key is type->key_of(entry)). On IDTABLE_OK or
 * IDTABLE_EEXIST, *slot (if not NULL) receives the table's entry. */
idtable_err idtable_put(idtable *t, const void *entry, void **slot);
/* Removes the entry with that key; copies it to out (if not NULL) first.
 * Returns IDTABLE_OK, or IDTABLE_EINVAL if there was none. */
idtable_err idtable_remove(idtable *t, const void *key, void *out);
/* Empties the table, keeping its capacity. */
void idtable_clear(idtable *t);

/* Iteration: size_t it = 0; while ((e = idtable_next(t, &it))) ... Any
 * order (insertion order, but a removal moves the last entry into the
 * hole); no put/remove while iterating. it is a position in
 * [0, idtable_count(t)]: a scan may stop and resume there later. */
void *idtable_next(const idtable *t, size_t *it);

static inline size_t idtable_count(const idtable *t) { return t->count; }

/* Key kinds. A string key is a NUL-terminated device id (FNV-1a), an
 * integer key an int64_t (Fibonacci hashing). */
uint64_t idtable_hash_str(const void *key);
int idtable_equal_str(const void *a, const void *b);
uint64_t idtable_hash_i64(const void *key);
int idtable_equal_i64(const void *a, const void *b);

#endif
