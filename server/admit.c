/* admit — see admit.h. */
#include "admit.h"

#include <stdlib.h>
#include <string.h>

#include "device_id.h"
#include "idtable.h"

typedef struct admit__entry {
    char id[DEVICE_ID_MAX + 1];
} admit__entry;

struct admit {
    idtable ids;
    size_t max;
    double rate, burst, tokens;
    int64_t tokens_at;
    int started;
};

static const void *admit__key(const void *e) { return ((const admit__entry *)e)->id; }

static const idtable_type admit__type = {
    .entry_size = sizeof(admit__entry),
    .key_of = admit__key,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};

admit *admit_new(size_t max_devices, double rate_per_s, double burst)
{
    if (max_devices < 1 || !(rate_per_s > 0) || !(burst >= 1))
        return NULL;
    admit *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    /* No bound of the table's own: loaded ids may exceed max (admit.h). */
    if (idtable_init(&a->ids, &admit__type, 64, 0) != IDTABLE_OK) {
        free(a);
        return NULL;
    }
    a->max = max_devices;
    a->rate = rate_per_s;
    a->burst = a->tokens = burst;
    return a;
}

void admit_free(admit *a)
{
    if (!a)
        return;
    idtable_free(&a->ids);
    free(a);
}

static int admit__put(admit *a, const char *id)
{
    admit__entry e;
    if (!device_id_valid_str(id))
        return -1;
    memset(&e, 0, sizeof e);
    strcpy(e.id, id);
    idtable_err r = idtable_put(&a->ids, &e, NULL);
    return r == IDTABLE_OK || r == IDTABLE_EEXIST ? 0 : -1;
}

int admit_add_known(admit *a, const char *id) { return admit__put(a, id); }

admit_result admit_check(admit *a, const char *id, int64_t now_ms)
{
    if (idtable_find(&a->ids, id))
        return ADMIT_KNOWN;
    if (idtable_count(&a->ids) >= a->max)
        return ADMIT_FULL;
    if (!a->started) {
        a->started = 1;
        a->tokens_at = now_ms;
    }
    if (now_ms > a->tokens_at) {
        a->tokens += (double)(now_ms - a->tokens_at) * a->rate / 1000.0;
        if (a->tokens > a->burst)
            a->tokens = a->burst;
        a->tokens_at = now_ms;
    }
    if (a->tokens < 1)
        return ADMIT_RATE;
    if (admit__put(a, id) != 0)
        return ADMIT_ENOMEM;
    a->tokens -= 1;
    return ADMIT_NEW;
}

size_t admit_count(const admit *a) { return idtable_count(&a->ids); }
