/* cmdtab — see cmdtab.h. */
#include "cmdtab.h"

#include <string.h>

#include "device_id.h"

typedef struct cmdtab__slot {
    char cmd_id[CMDTAB_ID_MAX + 1]; /* "" when free */
    int64_t expires_ms;
} cmdtab__slot;

typedef struct cmdtab__dev {
    char id[DEVICE_ID_MAX + 1];
    cmdtab__slot s[CMDTAB_PER_DEVICE];
} cmdtab__dev;

static const void *cmdtab__key(const void *e) { return ((const cmdtab__dev *)e)->id; }

static const idtable_type cmdtab__type = {
    .entry_size = sizeof(cmdtab__dev),
    .key_of = cmdtab__key,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};

int cmdtab_init(cmdtab *t, size_t max_devices, int64_t ttl_ms)
{
    memset(t, 0, sizeof *t);
    if (max_devices < 1 || ttl_ms <= 0)
        return -1;
    t->ttl_ms = ttl_ms;
    return idtable_init(&t->devs, &cmdtab__type, 16, max_devices) == IDTABLE_OK ? 0 : -1;
}

void cmdtab_free(cmdtab *t) { idtable_free(&t->devs); }

int cmdtab_record(cmdtab *t, const char *id, const char *cmd_id, int64_t now_ms)
{
    size_t n = strlen(cmd_id);
    if (!device_id_valid_str(id) || n == 0 || n > CMDTAB_ID_MAX)
        return -1;
    cmdtab__dev *d = idtable_find(&t->devs, id);
    if (!d) {
        cmdtab__dev e;
        memset(&e, 0, sizeof e);
        strcpy(e.id, id);
        void *slot;
        if (idtable_put(&t->devs, &e, &slot) != IDTABLE_OK) {
            cmdtab_expire(t, now_ms); /* full: make room from what expired */
            if (idtable_put(&t->devs, &e, &slot) != IDTABLE_OK)
                return -1;
        }
        d = slot;
    }
    /* A free or expired slot, else the one expiring first (the oldest). */
    size_t k = 0;
    for (size_t i = 0; i < CMDTAB_PER_DEVICE; i++) {
        if (!d->s[i].cmd_id[0] || d->s[i].expires_ms <= now_ms) {
            k = i;
            break;
        }
        if (d->s[i].expires_ms < d->s[k].expires_ms)
            k = i;
    }
    memcpy(d->s[k].cmd_id, cmd_id, n + 1);
    d->s[k].expires_ms = now_ms + t->ttl_ms;
    return 0;
}

int cmdtab_match(cmdtab *t, const char *id, const char *cmd_id, int64_t now_ms)
{
    cmdtab__dev *d = device_id_valid_str(id) ? idtable_find(&t->devs, id) : NULL;
    if (!d || !cmd_id[0])
        return 0;
    for (size_t i = 0; i < CMDTAB_PER_DEVICE; i++)
        if (d->s[i].cmd_id[0] && !strcmp(d->s[i].cmd_id, cmd_id)) {
            int live = d->s[i].expires_ms > now_ms;
            d->s[i].cmd_id[0] = 0;
            return live;
        }
    return 0;
}

static int cmdtab__empty(const cmdtab__dev *d, int64_t now_ms)
{
    for (size_t i = 0; i < CMDTAB_PER_DEVICE; i++)
        if (d->s[i].cmd_id[0] && d->s[i].expires_ms > now_ms)
            return 0;
    return 1;
}

void cmdtab_expire(cmdtab *t, int64_t now_ms)
{
    /* Removal moves entries: collect first, bounded by the table's size. */
    for (;;) {
        size_t it = 0;
        cmdtab__dev *d, *victim = NULL;
        while ((d = idtable_next(&t->devs, &it)))
            if (cmdtab__empty(d, now_ms)) {
                victim = d;
                break;
            }
        if (!victim)
            return;
        char id[DEVICE_ID_MAX + 1];
        strcpy(id, victim->id);
        idtable_remove(&t->devs, id, NULL);
    }
}

size_t cmdtab_pending(const cmdtab *t)
{
    size_t n = 0, it = 0;
    const cmdtab__dev *d;
    while ((d = idtable_next(&t->devs, &it)))
        for (size_t i = 0; i < CMDTAB_PER_DEVICE; i++)
            n += d->s[i].cmd_id[0] != 0;
    return n;
}
