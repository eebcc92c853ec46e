/* idtable — see idtable.h. Removal shifts the following run of the index
 * back (Knuth's algorithm R) instead of leaving tombstones, so lookups
 * never slow down with churn, and moves the last entry into the hole so
 * the entry array stays dense. */
#include "idtable.h"

#include <stdlib.h>
#include <string.h>

#define IDTABLE__MIN_CAP 16
#define IDTABLE__MIN_ECAP 8
#define IDTABLE__MAX_COUNT ((size_t)UINT32_MAX - 1) /* index slots hold position + 1 */

static unsigned char *idtable__entry(const idtable *t, size_t pos)
{
    return t->entries + pos * t->type->entry_size;
}

/* The entry an occupied index slot points to. */
static unsigned char *idtable__at(const idtable *t, size_t slot)
{
    return idtable__entry(t, (size_t)t->index[slot] - 1);
}

static size_t idtable__home(const idtable *t, const void *key)
{
    return (size_t)t->type->hash(key) & (t->cap - 1);
}

/* The index slot holding key, or the empty slot where it would go. */
static size_t idtable__probe(const idtable *t, const void *key, int *found)
{
    size_t mask = t->cap - 1;
    for (size_t i = idtable__home(t, key);; i = (i + 1) & mask) {
        if (!t->index[i]) {
            *found = 0;
            return i;
        }
        if (t->type->equal(t->type->key_of(idtable__at(t, i)), key)) {
            *found = 1;
            return i;
        }
    }
}

/* A fresh index of cap slots over the entries there are. */
static idtable_err idtable__reindex(idtable *t, size_t cap)
{
    uint32_t *index = calloc(cap, sizeof *index);
    if (!index)
        return IDTABLE_ENOMEM;
    free(t->index);
    t->index = index;
    t->cap = cap;
    for (size_t pos = 0; pos < t->count; pos++) {
        int found;
        size_t i = idtable__probe(t, t->type->key_of(idtable__entry(t, pos)), &found);
        t->index[i] = (uint32_t)(pos + 1);
    }
    return IDTABLE_OK;
}

/* Room for ecap entries (they may move). */
static idtable_err idtable__reserve(idtable *t, size_t ecap)
{
    if (ecap <= t->ecap)
        return IDTABLE_OK;
    if (ecap > SIZE_MAX / t->type->entry_size)
        return IDTABLE_ENOMEM;
    unsigned char *e = realloc(t->entries, ecap * t->type->entry_size);
    if (!e)
        return IDTABLE_ENOMEM;
    t->entries = e;
    t->ecap = ecap;
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
    size_t ecap = initial < IDTABLE__MIN_ECAP ? IDTABLE__MIN_ECAP : initial;
    if (max_entries && ecap > max_entries)
        ecap = max_entries;
    if (idtable__reserve(t, ecap) != IDTABLE_OK || idtable__reindex(t, cap) != IDTABLE_OK) {
        idtable_free(t);
        return IDTABLE_ENOMEM;
    }
    return IDTABLE_OK;
}

void idtable_free(idtable *t)
{
    if (!t)
        return;
    free(t->entries);
    free(t->index);
    t->entries = NULL;
    t->index = NULL;
    t->cap = t->ecap = t->count = 0;
}

void *idtable_find(const idtable *t, const void *key)
{
    if (!t->cap)
        return NULL;
    int found;
    size_t i = idtable__probe(t, key, &found);
    return found ? idtable__at(t, i) : NULL;
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
            *slot = idtable__at(t, i);
        return IDTABLE_EEXIST;
    }
    if ((t->max_entries && t->count >= t->max_entries) || t->count >= IDTABLE__MAX_COUNT)
        return IDTABLE_EFULL;
    if (t->count == t->ecap) {
        /* By half again: the array is dense, so what it over-allocates is
         * all the waste there is (an untouched tail costs no RSS). */
        size_t ecap = t->ecap + t->ecap / 2;
        if (t->max_entries && ecap > t->max_entries)
            ecap = t->max_entries;
        if (idtable__reserve(t, ecap) != IDTABLE_OK)
            return IDTABLE_ENOMEM;
    }
    if ((t->count + 1) * 10 > t->cap * 7) {
        if (t->cap > SIZE_MAX / 2 || idtable__reindex(t, t->cap * 2) != IDTABLE_OK)
            return IDTABLE_ENOMEM;
        i = idtable__probe(t, key, &found);
    }
    unsigned char *e = idtable__entry(t, t->count);
    memcpy(e, entry, t->type->entry_size);
    t->index[i] = (uint32_t)(++t->count);
    if (slot)
        *slot = e;
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
    size_t pos = (size_t)t->index[i] - 1;
    if (out)
        memcpy(out, idtable__entry(t, pos), es);
    /* Shift back every index slot of the run after i that may move to i. */
    for (size_t j = (i + 1) & mask; t->index[j]; j = (j + 1) & mask) {
        size_t home = idtable__home(t, t->type->key_of(idtable__at(t, j)));
        /* j's entry may fill i if its home is not cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        t->index[i] = t->index[j];
        i = j;
    }
    t->index[i] = 0;
    /* Keep the array dense: the last entry moves into the hole. */
    size_t last = t->count - 1;
    if (pos != last) {
        size_t k = idtable__probe(t, t->type->key_of(idtable__entry(t, last)), &found);
        memcpy(idtable__entry(t, pos), idtable__entry(t, last), es);
        t->index[k] = (uint32_t)(pos + 1);
    }
    memset(idtable__entry(t, last), 0, es);
    t->count--;
    return IDTABLE_OK;
}

void idtable_clear(idtable *t)
{
    if (!t->cap)
        return;
    memset(t->index, 0, t->cap * sizeof *t->index);
    t->count = 0;
}

void *idtable_next(const idtable *t, size_t *it)
{
    if (*it < t->count)
        return idtable__entry(t, (*it)++);
    *it = t->count;
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
