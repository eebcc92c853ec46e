/* idtable — see idtable.h. Removal shifts the following run back (Knuth's
 * algorithm R) instead of leaving tombstones, so lookups never slow down
 * with churn. */
#include "idtable.h"

#include <stdlib.h>
#include <string.h>

#define IDTABLE__MIN_CAP 16

static unsigned char *idtable__slot(const idtable *t, size_t i)
{
    return t->slots + i * t->type->entry_size;
}

static size_t idtable__home(const idtable *t, const void *key)
{
    return (size_t)t->type->hash(key) & (t->cap - 1);
}

static idtable_err idtable__alloc(idtable *t, size_t cap)
{
    unsigned char *slots = calloc(cap, t->type->entry_size);
    unsigned char *used = calloc(cap, 1);
    if (!slots || !used) {
        free(slots);
        free(used);
        return IDTABLE_ENOMEM;
    }
    t->slots = slots;
    t->used = used;
    t->cap = cap;
    return IDTABLE_OK;
}

idtable_err idtable_init(idtable *t, const idtable_type *type, size_t initial, size_t max_entries)
{
    memset(t, 0, sizeof *t);
    if (!type || !type->entry_size || !type->key_of || !type->hash || !type->equal)
        return IDTABLE_EINVAL;
    t->type = type;
    t->max_entries = max_entries;
    size_t cap = IDTABLE__MIN_CAP;
    while (cap < SIZE_MAX / 4 && cap * 7 < initial * 10)
        cap *= 2;
    return idtable__alloc(t, cap);
}

void idtable_free(idtable *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t->used);
    t->slots = t->used = NULL;
    t->cap = t->count = 0;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t idtable__probe(const idtable *t, const void *key, int *found)
{
    size_t mask = t->cap - 1;
    for (size_t i = idtable__home(t, key);; i = (i + 1) & mask) {
        if (!t->used[i]) {
            *found = 0;
            return i;
        }
        if (t->type->equal(t->type->key_of(idtable__slot(t, i)), key)) {
            *found = 1;
            return i;
        }
    }
}

void *idtable_find(const idtable *t, const void *key)
{
    if (!t->cap)
        return NULL;
    int found;
    size_t i = idtable__probe(t, key, &found);
    return found ? idtable__slot(t, i) : NULL;
}

static idtable_err idtable__grow(idtable *t)
{
    idtable old = *t;
    if (idtable__alloc(t, old.cap * 2) != IDTABLE_OK) {
        *t = old;
        return IDTABLE_ENOMEM;
    }
    size_t es = t->type->entry_size;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.used[i])
            continue;
        const unsigned char *e = old.slots + i * es;
        int found;
        size_t j = idtable__probe(t, t->type->key_of(e), &found);
        memcpy(idtable__slot(t, j), e, es);
        t->used[j] = 1;
    }
    free(old.slots);
    free(old.used);
    return IDTABLE_OK;
}

idtable_err idtable_put(idtable *t, const void *entry, void **slot)
{
    if (!t->cap)
        return IDTABLE_EINVAL;
    const void *key = t->type->key_of(entry);
    int found;
    size_t i = idtable__probe(t, key, &found);
    if (found) {
        if (slot)
            *slot = idtable__slot(t, i);
        return IDTABLE_EEXIST;
    }
    if (t->max_entries && t->count >= t->max_entries)
        return IDTABLE_EFULL;
    if ((t->count + 1) * 10 > t->cap * 7) {
        if (idtable__grow(t) != IDTABLE_OK)
            return IDTABLE_ENOMEM;
        i = idtable__probe(t, key, &found);
    }
    memcpy(idtable__slot(t, i), entry, t->type->entry_size);
    t->used[i] = 1;
    t->count++;
    if (slot)
        *slot = idtable__slot(t, i);
    return IDTABLE_OK;
}

idtable_err idtable_remove(idtable *t, const void *key, void *out)
{
    if (!t->cap)
        return IDTABLE_EINVAL;
    int found;
    size_t i = idtable__probe(t, key, &found);
    if (!found)
        return IDTABLE_EINVAL;
    size_t es = t->type->entry_size, mask = t->cap - 1;
    if (out)
        memcpy(out, idtable__slot(t, i), es);
    /* Shift back every entry of the run after i that may move to i. */
    for (size_t j = (i + 1) & mask; t->used[j]; j = (j + 1) & mask) {
        size_t home = idtable__home(t, t->type->key_of(idtable__slot(t, j)));
        /* j's entry may fill i if its home is not cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        memcpy(idtable__slot(t, i), idtable__slot(t, j), es);
        i = j;
    }
    t->used[i] = 0;
    memset(idtable__slot(t, i), 0, es);
    t->count--;
    return IDTABLE_OK;
}

void idtable_clear(idtable *t)
{
    if (!t->cap)
        return;
    memset(t->used, 0, t->cap);
    t->count = 0;
}

void *idtable_next(const idtable *t, size_t *it)
{
    for (size_t i = *it; i < t->cap; i++)
        if (t->used[i]) {
            *it = i + 1;
            return idtable__slot(t, i);
        }
    *it = t->cap;
    return NULL;
}

uint64_t idtable_hash_str(const void *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

int idtable_equal_str(const void *a, const void *b) { return strcmp(a, b) == 0; }

uint64_t idtable_hash_i64(const void *key)
{
    uint64_t v;
    memcpy(&v, key, sizeof v);
    /* Fibonacci hashing: the high bits are well mixed, so fold them down. */
    v *= 11400714819323198485ull;
    return v ^ (v >> 32);
}

int idtable_equal_i64(const void *a, const void *b)
{
    int64_t x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return x == y;
}
