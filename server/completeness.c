/* completeness — see completeness.h. Data layout:
 *   devices: open-addressing hash of cdev*, grown at 70 % load;
 *   per device: up to max_boots cboot, each with two sorted, disjoint,
 *   non-adjacent interval lists (recv, lost) searched by binary search.
 * Memory is per device and the fleet is large (10,000 devices is the
 * measured case, docs/BENCHMARKS.md "Issue 13 — RSS"), so a cdev holds its
 * id at its own length and its boots array grows one boot at a time: one
 * boot is the rule, max_boots only for a device that rebooted that often.
 * Every loop runs over a bounded list (intervals, boots, devices). The
 * model decides; what must be done is appended to a completeness_actions.
 *
 * The tick looks only at devices that may be due: a min-heap (due) keyed by
 * a lower bound of the time a device next needs the tick (a deadline, a
 * retry, a settled gap). A device with nothing pending is not in it, so a
 * tick with nothing due costs O(1), not a walk of the fleet (issue 13: 10,000
 * devices every 250 ms). Any event off the in-order path (a gap, a boot, an
 * ack, a fill) re-keys its device to "now": the next tick looks at it and
 * files it at its exact due time, or drops it. Looking at a device early is
 * a no-op, so the decisions are those of a walk of every device; the due
 * devices are visited in table order from where the last tick stopped, as
 * that walk did. */
#include "completeness.h"

#include <stdlib.h>
#include <string.h>

#include "idtable.h"
#include "ivset.h"
#include "telemetry.h"

#define SEQ_MAX ((int64_t)1 << 53)   /* protocol bound for seq and boot */
#define ID_MAX COMPLETENESS_ID_MAX

typedef struct cboot {
    int64_t boot;
    int64_t base, hi;        /* expected seqs: base..hi (empty while hi < base) */
    ivset recv, lost;
    uint64_t nrecv, nlost, refilled;
    int64_t last_change_ms;  /* a gap opened or was partly filled */
    int64_t replaced_ms;     /* 0 while this is the device's current boot */
    int64_t last_seen_ms;
    /* seqs far above hi (> max_jump): a run of them, each within max_jump
     * of the one before, moves hi only once it is jump_confirm long */
    int64_t jump_seq;
    int jump_n;
} cboot;

/* A resend request as the model remembers it. */
typedef struct creq {
    int has, tries;
    uint64_t id;
    int64_t boot, from, to;
} creq;

typedef struct cdev {
    cboot *boots;            /* nboots used of boots_cap allocated (<= max_boots) */
    int64_t current;         /* highest boot id seen; -1 none */
    /* boots retired from tracking */
    uint64_t r_expected, r_received, r_refilled, r_lost;
    uint64_t gaps_detected, requests, duplicates, untracked;
    /* the last resend request (one outstanding at most) */
    creq req;
    creq undo;               /* req before the last issue: completeness_request_failed */
    int64_t req_deadline, next_at;
    uint32_t nboots, boots_cap; /* max_boots is clamped to fit (config_defaults) */
    uint32_t pos;            /* its position in the device table (idtable order) */
    uint32_t due_at;         /* its index in the due heap + 1; 0: not in it */
    unsigned char outstanding;
    char id[];               /* NUL-terminated, at most ID_MAX: allocated at its length */
} cdev;

/* A device in the due heap: at is a lower bound of when it needs the tick. */
typedef struct cdue {
    int64_t at;
    cdev *d;
} cdue;

#define DUE_NOW INT64_MIN    /* "look at it at the next tick" */
#define DUE_NEVER INT64_MAX  /* nothing pending: not in the heap */

struct completeness {
    completeness_config cfg;
    idtable dev;             /* cdev * entries (they stay put), keyed by id */
    uint64_t next_req;
    double tokens;
    int64_t tokens_at;
    size_t scan;             /* the table position the next tick starts at: fairness */
    /* min-heap on at; room for every device (reserved when one is created,
     * so filing a device never fails) */
    cdue *due;
    size_t ndue, due_cap;
    uint64_t tick_visits;    /* devices the ticks have looked at */
};

static const void *completeness__dev_key(const void *entry)
{
    return (*(cdev *const *)entry)->id;
}

static const idtable_type completeness__dev_type = {
    .entry_size = sizeof(cdev *),
    .key_of = completeness__dev_key,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};

/* ---- the due heap ---- */

static void completeness__due_set(completeness *c, size_t i, cdue e)
{
    c->due[i] = e;
    e.d->due_at = (uint32_t)(i + 1);
}

static void completeness__due_up(completeness *c, size_t i)
{
    cdue e = c->due[i];
    while (i > 0 && c->due[(i - 1) / 2].at > e.at) {
        completeness__due_set(c, i, c->due[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    completeness__due_set(c, i, e);
}

static void completeness__due_down(completeness *c, size_t i)
{
    cdue e = c->due[i];
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= c->ndue)
            break;
        if (k + 1 < c->ndue && c->due[k + 1].at < c->due[k].at)
            k++;
        if (c->due[k].at >= e.at)
            break;
        completeness__due_set(c, i, c->due[k]);
        i = k;
    }
    completeness__due_set(c, i, e);
}

/* Files d at `at` (earlier only: the key stays a lower bound). Never fails:
 * the heap has room for every device. */
static void completeness__due_file(completeness *c, cdev *d, int64_t at)
{
    if (d->due_at) {
        size_t i = d->due_at - 1;
        if (at < c->due[i].at) {
            c->due[i].at = at;
            completeness__due_up(c, i);
        }
        return;
    }
    c->due[c->ndue] = (cdue){.at = at, .d = d};
    completeness__due_up(c, c->ndue++);
}

/* Something about d changed off the in-order path: look at it next tick. */
static void completeness__wake(completeness *c, cdev *d)
{
    completeness__due_file(c, d, DUE_NOW);
}

static void completeness__due_remove(completeness *c, cdev *d)
{
    if (!d->due_at)
        return;
    size_t i = d->due_at - 1;
    d->due_at = 0;
    if (i == --c->ndue)
        return;
    cdev *moved = c->due[c->ndue].d; /* the last entry fills the hole */
    completeness__due_set(c, i, c->due[c->ndue]);
    completeness__due_up(c, i);
    completeness__due_down(c, moved->due_at - 1);
}

/* ---- decisions ---- */

void completeness_actions_clear(completeness_actions *a)
{
    a->nrequests = a->nlost = 0;
    a->lost_overflow_ranges = a->lost_overflow_seqs = 0;
    a->gaps_opened = 0;
}

static void completeness__lost(completeness_actions *out, const cdev *d, int64_t boot,
                               int64_t lo, int64_t hi, completeness_reason why)
{
    if (!out)
        return;
    if (out->nlost == COMPLETENESS_ACTIONS_LOST) {
        out->lost_overflow_ranges++;
        out->lost_overflow_seqs += (uint64_t)(hi - lo) + 1;
        return;
    }
    completeness_lost *l = &out->lost[out->nlost++];
    memcpy(l->id, d->id, strlen(d->id) + 1); /* d->id is only as long as the id */
    l->boot = boot;
    l->from = lo;
    l->to = hi;
    l->why = why;
}

/* ---- boots ---- */

static uint64_t completeness__boot_expected(const cboot *b)
{
    return b->hi >= b->base ? (uint64_t)(b->hi - b->base + 1) : 0;
}

/* The first pending run of [base, top] minus recv minus lost starting at
 * or after x within [x, end]: returns 1 and sets [*lo, *hi], or 0 if none.
 * Each step skips one whole interval. */
static int completeness__pending_run(const ivset *recv, const ivset *lost, int64_t base, int64_t top,
                                     int64_t x, int64_t end, int64_t *lo, int64_t *hi)
{
    if (x < base)
        x = base;
    if (end > top)
        end = top;
    size_t guard = (size_t)recv->n + lost->n + 2;
    while (x <= end && guard--) {
        const ivset_iv *r = ivset_find(recv, x);
        if (r) {
            x = r->hi + 1;
            continue;
        }
        const ivset_iv *l = ivset_find(lost, x);
        if (l) {
            x = l->hi + 1;
            continue;
        }
        int64_t stop = end;
        size_t i = ivset_lower(recv, x);
        if (i < recv->n && recv->v[i].lo - 1 < stop)
            stop = recv->v[i].lo - 1;
        i = ivset_lower(lost, x);
        if (i < lost->n && lost->v[i].lo - 1 < stop)
            stop = lost->v[i].lo - 1;
        *lo = x;
        *hi = stop;
        return 1;
    }
    return 0;
}

static int completeness__next_pending(const cboot *b, int64_t x, int64_t end, int64_t *lo, int64_t *hi)
{
    return completeness__pending_run(&b->recv, &b->lost, b->base, b->hi, x, end, lo, hi);
}

int completeness_boot_next_pending(const completeness_boot_view *b, int64_t x, int64_t end,
                                   int64_t *lo, int64_t *hi)
{
    return completeness__pending_run(b->recv, b->lost, b->base, b->hi, x, end, lo, hi);
}

static int completeness__is_pending(const cboot *b, int64_t x)
{
    return x >= b->base && x <= b->hi && !ivset_find(&b->recv, x) && !ivset_find(&b->lost, x);
}

/* Marks every pending seq of [lo, hi] lost. */
static void completeness__mark_lost(completeness *c, completeness_actions *out, cdev *d, cboot *b,
                      int64_t lo, int64_t hi, completeness_reason why)
{
    int64_t glo, ghi, x = lo;
    size_t guard = (size_t)b->recv.n + b->lost.n + 2;
    while (guard-- && completeness__next_pending(b, x, hi, &glo, &ghi)) {
        int64_t added = ivset_add(&b->lost, glo, ghi);
        if (added < 0 && b->lost.n == 0) {
            added = ghi - glo + 1; /* out of memory: counted, not listed */
        } else if (added < 0) {
            /* List full: bridge into the last lost interval below. Seqs of
             * recv it spans stay counted as received; only pending ones
             * are counted lost. */
            ivset_bridge(&b->lost, glo, ghi);
            added = ghi - glo + 1;
        }
        b->nlost += (uint64_t)added;
        completeness__lost(out, d, b->boot, glo, ghi, why);
        x = ghi + 1;
        if (x > hi)
            break;
    }
}

static cboot *completeness__boot_find(cdev *d, int64_t boot)
{
    for (size_t i = 0; i < d->nboots; i++)
        if (d->boots[i].boot == boot)
            return &d->boots[i];
    return NULL;
}

static void completeness__boot_free(cboot *b)
{
    ivset_free(&b->recv);
    ivset_free(&b->lost);
}

/* A fresh boot record (both sets empty, bounded by max_ranges). */
static void completeness__boot_init(const completeness *c, cboot *b, int64_t boot)
{
    memset(b, 0, sizeof *b);
    b->boot = boot;
    ivset_init(&b->recv, c->cfg.max_ranges);
    ivset_init(&b->lost, c->cfg.max_ranges);
}

/* Makes room by retiring the least recently seen boot into the totals. */
static void completeness__boot_retire_one(completeness *c, completeness_actions *out, cdev *d)
{
    size_t k = 0;
    for (size_t i = 1; i < d->nboots; i++)
        if (d->boots[i].last_seen_ms < d->boots[k].last_seen_ms)
            k = i;
    cboot *b = &d->boots[k];
    completeness__mark_lost(c, out, d, b, b->base, b->hi, COMPLETENESS_LOST_REBOOT);
    d->r_expected += completeness__boot_expected(b);
    d->r_received += b->nrecv;
    d->r_refilled += b->refilled;
    d->r_lost += b->nlost;
    if (d->req.has && d->req.boot == b->boot)
        d->req.has = d->outstanding = 0;
    completeness__boot_free(b);
    d->boots[k] = d->boots[--d->nboots];
}

/* Room for one more boot in d->boots: grown by one (a reboot is rare, and
 * most devices never have a second boot) up to max_boots. Moves the boots:
 * no cboot pointer of d survives it. Returns 0, or -1 out of memory. */
static int completeness__boot_room(const completeness *c, cdev *d)
{
    if (d->nboots < d->boots_cap)
        return 0;
    if (d->boots_cap >= c->cfg.max_boots)
        return 0; /* full: the caller retires one */
    cboot *nb = realloc(d->boots, ((size_t)d->boots_cap + 1) * sizeof *nb);
    if (!nb)
        return -1;
    d->boots = nb;
    d->boots_cap++;
    return 0;
}

/* NULL out of memory (the reading is then untracked). */
static cboot *completeness__boot_new(completeness *c, completeness_actions *out, cdev *d, int64_t boot,
                       int64_t base, int64_t now_ms)
{
    if (completeness__boot_room(c, d) != 0)
        return NULL;
    int first = d->nboots == 0; /* a device's first boot: nothing to replace or retire */
    if (d->nboots == d->boots_cap)
        completeness__boot_retire_one(c, out, d);
    cboot *b = &d->boots[d->nboots++];
    completeness__boot_init(c, b, boot);
    b->base = base;
    b->hi = base - 1;
    b->last_seen_ms = now_ms;
    if (boot > d->current) {
        for (size_t i = 0; i < d->nboots; i++)
            if (d->boots[i].boot != boot && !d->boots[i].replaced_ms)
                d->boots[i].replaced_ms = now_ms ? now_ms : 1;
        d->current = boot;
    } else {
        b->replaced_ms = now_ms ? now_ms : 1;
    }
    if (!first)
        completeness__wake(c, d); /* replaced boots' deadlines, a retired request */
    return b;
}

/* ---- devices ---- */

static cdev *completeness__dev_find(const completeness *c, const char *id)
{
    cdev **e = idtable_find(&c->dev, id);
    return e ? *e : NULL;
}

static int completeness__id_ok(const char *id)
{
    return id && telemetry_id_valid(id, strnlen(id, ID_MAX + 1));
}

static cdev *completeness__dev_get(completeness *c, const char *id)
{
    if (!completeness__id_ok(id))
        return NULL;
    cdev *d = completeness__dev_find(c, id);
    if (d)
        return d;
    size_t count = idtable_count(&c->dev);
    if (count >= c->cfg.max_devices)
        return NULL;
    if (c->due_cap <= count) {
        /* Room in the due heap for every device, so filing one never fails. */
        size_t cap = c->due_cap ? c->due_cap * 2 : 1024;
        cdue *nd = realloc(c->due, cap * sizeof *nd);
        if (!nd)
            return NULL;
        c->due = nd;
        c->due_cap = cap;
    }
    size_t len = strlen(id); /* <= ID_MAX: completeness__id_ok */
    d = calloc(1, sizeof *d + len + 1);
    if (!d)
        return NULL;
    memcpy(d->id, id, len + 1);
    d->current = -1;
    d->pos = (uint32_t)count; /* the table appends (idtable.h: insertion order) */
    if (idtable_put(&c->dev, &d, NULL) != IDTABLE_OK) {
        free(d);
        return NULL;
    }
    return d;
}

/* ---- lifecycle ---- */

void completeness_config_defaults(completeness_config *k)
{
    if (k->settle_ms <= 0) k->settle_ms = 2000;
    if (k->ack_timeout_ms <= 0) k->ack_timeout_ms = 5000;
    if (k->max_tries <= 0) k->max_tries = 4;
    if (k->old_boot_deadline_ms <= 0) k->old_boot_deadline_ms = 60000;
    if (!(k->rate_per_s > 0)) k->rate_per_s = 50;
    if (!(k->burst >= 1)) k->burst = 100;
    if (!k->max_span) k->max_span = 1000;
    if (!k->coalesce_slack) k->coalesce_slack = 32;
    if (!k->lead_max) k->lead_max = 4096;
    if (!k->max_gap) k->max_gap = 1000000;
    if (!k->max_jump) k->max_jump = 100000;
    if (k->jump_confirm <= 0) k->jump_confirm = 3;
    if (!k->max_ranges) k->max_ranges = 4096;
    if (!k->max_boots) k->max_boots = 4;
    if (k->max_boots > UINT32_MAX) k->max_boots = UINT32_MAX; /* cdev counts boots in 32 bits */
    if (!k->max_devices) k->max_devices = 200000;
}

completeness *completeness_new(const completeness_config *cfg)
{
    completeness *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (cfg)
        c->cfg = *cfg;
    completeness_config_defaults(&c->cfg);
    if (idtable_init(&c->dev, &completeness__dev_type, 1024, c->cfg.max_devices) != IDTABLE_OK) {
        free(c);
        return NULL;
    }
    c->tokens = c->cfg.burst;
    return c;
}

void completeness_free(completeness *c)
{
    if (!c)
        return;
    cdev **e;
    size_t it = 0;
    while ((e = idtable_next(&c->dev, &it))) {
        cdev *d = *e;
        for (size_t k = 0; k < d->nboots; k++)
            completeness__boot_free(&d->boots[k]);
        free(d->boots);
        free(d);
    }
    idtable_free(&c->dev);
    free(c->due);
    free(c);
}

const char *completeness_reason_name(completeness_reason r)
{
    switch (r) {
    case COMPLETENESS_LOST_MISSING: return "missing";
    case COMPLETENESS_LOST_REBOOT: return "reboot";
    case COMPLETENESS_LOST_RETRIES: return "retries";
    case COMPLETENESS_LOST_UNSUPPORTED: return "unsupported";
    case COMPLETENESS_LOST_TOO_BIG: return "too_big";
    }
    return "unknown";
}

static int completeness__vals_ok(int64_t boot, int64_t seq)
{
    return boot >= 0 && boot <= SEQ_MAX && seq >= 0 && seq <= SEQ_MAX;
}

/* ---- loading ---- */

int completeness_load_island(completeness *c, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    if (!completeness__vals_ok(boot, lo) || !completeness__vals_ok(boot, hi) || hi < lo)
        return -1;
    cdev *d = completeness__dev_get(c, id);
    if (!d)
        return -1;
    cboot *b = completeness__boot_find(d, boot);
    if (!b) {
        if (completeness__boot_room(c, d) != 0) {
            d->untracked += (uint64_t)(hi - lo + 1);
            return -1;
        }
        if (d->nboots == d->boots_cap) {
            /* Keep the highest boots: replace the lowest if this is higher. */
            size_t k = 0;
            for (size_t i = 1; i < d->nboots; i++)
                if (d->boots[i].boot < d->boots[k].boot)
                    k = i;
            if (d->boots[k].boot > boot)
                return 0;
            cboot *o = &d->boots[k];
            d->r_expected += completeness__boot_expected(o);
            d->r_received += o->nrecv;
            d->r_lost += o->nlost;
            completeness__boot_free(o);
            d->boots[k] = d->boots[--d->nboots];
        }
        b = &d->boots[d->nboots++];
        completeness__boot_init(c, b, boot);
        b->base = lo;
        b->hi = hi;
        if (boot > d->current)
            d->current = boot;
    }
    if (lo < b->base)
        b->base = lo;
    if (hi > b->hi)
        b->hi = hi;
    completeness__wake(c, d); /* islands leave gaps between them */
    int64_t added = ivset_add(&b->recv, lo, hi);
    if (added < 0) {
        d->untracked += (uint64_t)(hi - lo + 1);
        return -1;
    }
    b->nrecv += (uint64_t)added;
    return 0;
}

int completeness_load_lost(completeness *c, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    if (!completeness__vals_ok(boot, lo) || !completeness__vals_ok(boot, hi) || hi < lo)
        return -1;
    cdev *d = completeness__dev_find(c, id);
    cboot *b = d ? completeness__boot_find(d, boot) : NULL;
    if (!b)
        return 0; /* nothing stored of that boot any more: nothing to show */
    if (lo < b->base)
        lo = b->base;
    if (hi > b->hi)
        hi = b->hi;
    if (lo > hi)
        return 0;
    /* Only what is still not stored: a late arrival recovered the rest. */
    completeness__mark_lost(c, NULL, d, b, lo, hi, COMPLETENESS_LOST_MISSING);
    completeness__wake(c, d);
    return 0;
}

/* A loaded device's timers start now; its highest boot is current. */
static void completeness__loaded(completeness *c, cdev *d, int64_t now_ms)
{
    completeness__wake(c, d);
    for (size_t k = 0; k < d->nboots; k++) {
        cboot *b = &d->boots[k];
        b->last_seen_ms = now_ms;
        b->last_change_ms = now_ms;
        b->replaced_ms = b->boot == d->current ? 0 : (now_ms ? now_ms : 1);
    }
}

void completeness_load_done(completeness *c, int64_t now_ms)
{
    cdev **e;
    size_t it = 0;
    while ((e = idtable_next(&c->dev, &it)))
        completeness__loaded(c, *e, now_ms);
}

void completeness_load_done_if(completeness *c, completeness_pick pred, void *ctx, int64_t now_ms)
{
    cdev **e;
    size_t it = 0;
    while ((e = idtable_next(&c->dev, &it)))
        if (pred(ctx, (*e)->id))
            completeness__loaded(c, *e, now_ms);
}

size_t completeness_forget_if(completeness *c, completeness_pick pred, void *ctx)
{
    /* Picked first, removed after: the table must not change while it is
     * iterated (idtable.h). */
    size_t n = 0, cap = idtable_count(&c->dev);
    cdev **pick = cap ? malloc(cap * sizeof *pick) : NULL;
    if (cap && !pick)
        return 0;
    cdev **e;
    size_t it = 0;
    while ((e = idtable_next(&c->dev, &it)) && n < cap)
        if (pred(ctx, (*e)->id))
            pick[n++] = *e;
    for (size_t i = 0; i < n; i++) {
        cdev *d = pick[i];
        completeness__due_remove(c, d);
        idtable_remove(&c->dev, d->id, NULL);
        for (size_t k = 0; k < d->nboots; k++)
            completeness__boot_free(&d->boots[k]);
        free(d->boots);
        free(d);
    }
    free(pick);
    /* A removal moves the table's last entry into the hole: positions again. */
    it = 0;
    while ((e = idtable_next(&c->dev, &it)))
        (*e)->pos = (uint32_t)(it - 1);
    return n;
}

/* ---- live ---- */

static int completeness__open_gap(completeness *c, completeness_actions *out, cdev *d, cboot *b,
                    int64_t lo, int64_t hi, int64_t now_ms)
{
    completeness__wake(c, d);
    /* A continuation of a pending tail is the same gap, not a new one. */
    int fresh = !(lo > b->base && completeness__is_pending(b, lo - 1));
    b->last_change_ms = now_ms;
    if (fresh) {
        d->gaps_detected++;
        if (out)
            out->gaps_opened++;
    }
    return fresh;
}

static cboot *completeness__boot_for(completeness *c, completeness_actions *out, cdev *d, int64_t boot,
                       int64_t seq, int64_t now_ms, int *created)
{
    cboot *b = completeness__boot_find(d, boot);
    *created = 0;
    if (!b) {
        /* Seqs start at 1: a boot first seen a little later has a leading
         * gap (e.g. its first readings died in a crashed vigild's queue). */
        int64_t base = seq >= 1 && (uint64_t)(seq - 1) <= c->cfg.lead_max ? 1 : seq;
        b = completeness__boot_new(c, out, d, boot, base, now_ms);
        if (!b)
            return NULL;
        *created = 1;
    }
    b->last_seen_ms = now_ms;
    return b;
}

/* Moves hi up to seq_hi, opening the gap (hi, gap_hi]. */
static void completeness__advance(completeness *c, completeness_actions *out, cdev *d, cboot *b,
                    int64_t gap_hi, int64_t new_hi, int64_t now_ms)
{
    int64_t lo = b->hi + 1;
    if (b->hi < b->base)
        lo = b->base;
    b->hi = new_hi;
    if (gap_hi >= lo) {
        completeness__open_gap(c, out, d, b, lo, gap_hi, now_ms);
        if ((uint64_t)(gap_hi - lo + 1) > c->cfg.max_gap)
            completeness__mark_lost(c, out, d, b, lo, gap_hi, COMPLETENESS_LOST_TOO_BIG);
    }
}

/* 1 if seq may move b's hi. One reading claiming a seq far beyond what the
 * boot has shown (a corrupted or hostile seq = 2^53) would otherwise turn
 * everything between into a lost range and the device's completeness to 0.
 * Such a seq moves hi only as the jump_confirm-th of a consistent run (a
 * device that really skipped ahead keeps counting from there); until then
 * the reading is untracked — still stored and shown live. */
static int completeness__jump_ok(const completeness *c, cboot *b, int64_t seq)
{
    if (b->hi < b->base || seq <= b->hi || (uint64_t)(seq - b->hi) <= c->cfg.max_jump) {
        b->jump_n = 0;
        return 1;
    }
    if (b->jump_n > 0 && seq > b->jump_seq && (uint64_t)(seq - b->jump_seq) <= c->cfg.max_jump)
        b->jump_n++;
    else
        b->jump_n = 1;
    b->jump_seq = seq;
    if (b->jump_n < c->cfg.jump_confirm)
        return 0;
    b->jump_n = 0;
    return 1;
}

/* The device and boot a (boot, seq) of device id belongs to, created on
 * first sight; NULL for out-of-range values or a full device table. */
static cboot *completeness__entry(completeness *c, completeness_actions *out, const char *id, int64_t boot,
                    int64_t seq, int64_t now_ms, cdev **dout)
{
    if (!completeness__vals_ok(boot, seq))
        return NULL;
    cdev *d = completeness__dev_get(c, id);
    if (!d)
        return NULL;
    int created;
    *dout = d;
    return completeness__boot_for(c, out, d, boot, seq, now_ms, &created);
}

completeness_result completeness_on_reading(completeness *c, completeness_actions *out,
                                            const char *id, int64_t boot, int64_t seq,
                                            int64_t now_ms)
{
    cdev *d;
    cboot *b = completeness__entry(c, out, id, boot, seq, now_ms, &d);
    if (!b)
        return COMPLETENESS_UNTRACKED;
    if (!completeness__jump_ok(c, b, seq)) {
        d->untracked++;
        return COMPLETENESS_UNTRACKED;
    }
    int refill = 0;
    if (seq < b->base) {
        /* Older than anything known of this boot (e.g. a pruned start):
         * the seqs between become a gap. */
        if ((uint64_t)(b->base - seq) > c->cfg.max_gap) {
            d->untracked++;
            return COMPLETENESS_UNTRACKED;
        }
        int64_t old = b->base;
        b->base = seq;
        completeness__wake(c, d);
        if (old - 1 >= seq + 1 && b->hi >= old)
            completeness__open_gap(c, out, d, b, seq + 1, old - 1, now_ms);
    }
    if (seq > b->hi) {
        completeness__advance(c, out, d, b, seq - 1, seq, now_ms);
    } else if (ivset_find(&b->recv, seq)) {
        d->duplicates++;
        return COMPLETENESS_DUPLICATE;
    } else {
        /* Fills a hole: a refill if we asked for it, else a late replay. */
        completeness__wake(c, d);
        if (ivset_find(&b->lost, seq)) {
            if (ivset_remove_point(&b->lost, seq) != 0) {
                d->untracked++;
                return COMPLETENESS_UNTRACKED;
            }
            b->nlost--;
        }
        b->last_change_ms = now_ms;
        if (d->req.has && d->req.boot == boot && seq >= d->req.from && seq <= d->req.to) {
            b->refilled++;
            refill = 1;
        }
    }
    int64_t added = ivset_add(&b->recv, seq, seq);
    if (added < 0) {
        /* Too fragmented to track exactly: say so rather than guess. */
        d->untracked++;
        completeness__wake(c, d);
        completeness__mark_lost(c, out, d, b, seq, seq, COMPLETENESS_LOST_TOO_BIG);
        return COMPLETENESS_UNTRACKED;
    }
    b->nrecv += (uint64_t)added;
    return refill ? COMPLETENESS_REFILLED : COMPLETENESS_NEW;
}

int completeness_on_unstored(completeness *c, completeness_actions *out, const char *id,
                             int64_t boot, int64_t seq, int64_t now_ms)
{
    cdev *d;
    cboot *b = completeness__entry(c, out, id, boot, seq, now_ms, &d);
    if (!b)
        return -1;
    if (!completeness__jump_ok(c, b, seq)) {
        d->untracked++;
        return -1;
    }
    if (seq > b->hi)
        completeness__advance(c, out, d, b, seq, seq, now_ms);
    else if (seq < b->base && (uint64_t)(b->base - seq) <= c->cfg.max_gap) {
        int64_t old = b->base;
        b->base = seq;
        completeness__open_gap(c, out, d, b, seq, old - 1, now_ms);
    }
    return 0;
}

int completeness_on_boot_end(completeness *c, completeness_actions *out, const char *id,
                             int64_t boot, int64_t last_seq, int64_t now_ms)
{
    if (!completeness__vals_ok(boot, last_seq) || last_seq < 1)
        return -1;
    cdev *d = completeness__dev_get(c, id);
    if (!d)
        return -1;
    cboot *b = completeness__boot_find(d, boot);
    if (!b && boot <= d->current)
        return -1; /* retired (or never tracked) while newer boots are: nothing to extend */
    /* The same bound as a reading: one status cannot claim a range larger
     * than max_jump beyond what the boot has shown. */
    int64_t top = b && b->hi >= b->base ? b->hi : 0;
    if (last_seq <= top)
        return 0;
    if ((uint64_t)(last_seq - top) > c->cfg.max_jump) {
        d->untracked++;
        return -1;
    }
    if (!b)
        b = completeness__boot_new(c, out, d, boot, 1, now_ms); /* seqs start at 1 */
    if (!b)
        return -1;
    b->last_seen_ms = now_ms;
    completeness__advance(c, out, d, b, last_seq, last_seq, now_ms);
    return 1;
}

int completeness_on_ack(completeness *c, completeness_actions *out, const char *id,
                        uint64_t req_id, int ok, int permanent, uint64_t sent, uint64_t missing,
                        int64_t now_ms)
{
    (void)sent;
    cdev *d = completeness__id_ok(id) ? completeness__dev_find(c, id) : NULL;
    if (!d || !d->req.has || d->req.id != req_id)
        return -1;
    completeness__wake(c, d);
    d->outstanding = 0;
    cboot *b = completeness__boot_find(d, d->req.boot);
    int shift = d->req.tries > 1 ? (d->req.tries - 1 > 6 ? 6 : d->req.tries - 1) : 0;
    if (!b)
        return 0;
    if (permanent) {
        completeness__mark_lost(c, out, d, b, d->req.from, d->req.to, COMPLETENESS_LOST_UNSUPPORTED);
        d->next_at = now_ms;
        return 0;
    }
    if (!ok) {
        d->next_at = now_ms + (c->cfg.ack_timeout_ms << shift);
        return 0;
    }
    if (missing > 0) {
        /* The device's outbox is a ring: what it lacks is the oldest part. */
        uint64_t span = (uint64_t)(d->req.to - d->req.from) + 1;
        if (missing > span)
            missing = span;
        completeness__mark_lost(c, out, d, b, d->req.from, d->req.from + (int64_t)missing - 1,
                  COMPLETENESS_LOST_MISSING);
    }
    /* Let what was sent arrive and be stored before judging the range again. */
    d->next_at = now_ms + c->cfg.settle_ms;
    return 0;
}

/* Picks the next range to ask for: the oldest eligible pending run of the
 * current boot first (its outbox is still filling over it), then older
 * boots. Coalesces nearby runs. Returns 1 if one was found. */
static int completeness__pick(const completeness *c, cdev *d, int64_t now_ms, cboot **ob, int64_t *from,
                int64_t *to)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < d->nboots; k++) {
            cboot *b = &d->boots[k];
            if ((pass == 0) != (b->boot == d->current))
                continue;
            if (now_ms - b->last_change_ms < c->cfg.settle_ms)
                continue;
            int64_t lo, hi;
            if (!completeness__next_pending(b, b->base, b->hi, &lo, &hi))
                continue;
            int64_t end = lo + (int64_t)c->cfg.max_span - 1;
            if (hi > end)
                hi = end;
            int64_t nlo, nhi;
            size_t guard = (size_t)b->recv.n + 1;
            while (guard-- && hi < end &&
                   completeness__next_pending(b, hi + 1, hi + 1 + (int64_t)c->cfg.coalesce_slack, &nlo,
                                              &nhi)) {
                int64_t l2, h2;
                completeness__next_pending(b, nlo, b->hi, &l2, &h2); /* the whole run */
                hi = h2 > end ? end : h2;
            }
            *ob = b;
            *from = lo;
            *to = hi;
            return 1;
        }
    }
    return 0;
}

/* Deadlines, and at most one new request, for one device. *picked: it
 * was eligible and its ranges were looked at. */
static size_t completeness__tick_device(completeness *c, completeness_actions *out, cdev *d, int64_t now_ms,
                          int can_request, int budget, int *picked)
{
    *picked = 0;
    /* Deadlines run whatever the request budget. */
    if (d->outstanding && now_ms >= d->req_deadline) {
        d->outstanding = 0;
        d->next_at = now_ms;
    }
    for (size_t i = 0; i < d->nboots; i++) {
        cboot *b = &d->boots[i];
        if (b->replaced_ms && now_ms - b->replaced_ms >= c->cfg.old_boot_deadline_ms &&
            b->nrecv + b->nlost < completeness__boot_expected(b))
            completeness__mark_lost(c, out, d, b, b->base, b->hi, COMPLETENESS_LOST_REBOOT);
    }
    if (!can_request || d->outstanding || now_ms < d->next_at || !budget || c->tokens < 1)
        return 0;
    *picked = 1;
    cboot *b;
    int64_t from, to;
    for (int guard = 0; guard < 4 && completeness__pick(c, d, now_ms, &b, &from, &to); guard++) {
        int same = d->req.has && d->req.boot == b->boot && from <= d->req.to && to >= d->req.from;
        int tries = same ? d->req.tries + 1 : 1;
        if (tries > c->cfg.max_tries) {
            completeness__mark_lost(c, out, d, b, from, to, COMPLETENESS_LOST_RETRIES);
            d->req.has = 0;
            d->req.tries = 0;
            continue; /* the next range, if any */
        }
        completeness_request *q = &out->requests[out->nrequests++];
        memcpy(q->id, d->id, strlen(d->id) + 1); /* d->id is only as long as the id */
        q->boot = b->boot;
        q->from = from;
        q->to = to;
        q->req_id = ++c->next_req;
        d->undo = d->req;
        d->req = (creq){.has = 1, .tries = tries, .id = q->req_id, .boot = b->boot, .from = from,
                        .to = to};
        d->outstanding = 1;
        int shift = tries - 1 > 6 ? 6 : tries - 1;
        d->req_deadline = now_ms + (c->cfg.ack_timeout_ms << shift);
        d->requests++;
        c->tokens -= 1;
        return 1;
    }
    return 0;
}

/* a + b without overflow (config values are bounded, callers' times are not) */
static int64_t completeness__add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

/* The earliest now at which completeness__tick_device would do anything
 * for d as it is: its request's deadline, a replaced boot's deadline, or
 * (no request outstanding) its retry time once a pending boot has settled.
 * DUE_NEVER if none. Mirrors the conditions of completeness__tick_device. */
static int64_t completeness__due_time(const completeness *c, const cdev *d)
{
    int64_t at = d->outstanding ? d->req_deadline : DUE_NEVER;
    for (size_t i = 0; i < d->nboots; i++) {
        const cboot *b = &d->boots[i];
        if (b->replaced_ms && b->nrecv + b->nlost < completeness__boot_expected(b)) {
            int64_t t = completeness__add_sat(b->replaced_ms, c->cfg.old_boot_deadline_ms);
            if (t < at)
                at = t;
        }
        int64_t lo, hi;
        if (!d->outstanding && completeness__next_pending(b, b->base, b->hi, &lo, &hi)) {
            int64_t t = completeness__add_sat(b->last_change_ms, c->cfg.settle_ms);
            if (t < d->next_at)
                t = d->next_at;
            if (t < at)
                at = t;
        }
    }
    return at;
}

static int completeness__by_pos(const void *a, const void *b)
{
    uint32_t x = ((const cdue *)a)->d->pos, y = ((const cdue *)b)->d->pos;
    return (x > y) - (x < y);
}

size_t completeness_tick(completeness *c, completeness_actions *out, int64_t now_ms,
                         int can_request, size_t max_requests)
{
    if (c->tokens_at == 0)
        c->tokens_at = now_ms;
    if (now_ms > c->tokens_at) {
        c->tokens += (double)(now_ms - c->tokens_at) * c->cfg.rate_per_s / 1000.0;
        if (c->tokens > c->cfg.burst)
            c->tokens = c->cfg.burst;
        c->tokens_at = now_ms;
    }
    /* A full request list is the per-call cap: the rest go next time. */
    size_t room = COMPLETENESS_ACTIONS_REQUESTS - out->nrequests;
    if (max_requests > room)
        max_requests = room;
    /* The devices due by now leave the heap for its tail, [ndue, top). */
    size_t top = c->ndue;
    while (c->ndue && c->due[0].at <= now_ms) {
        cdue e = c->due[0];
        e.d->due_at = 0;
        if (--c->ndue) {
            completeness__due_set(c, 0, c->due[c->ndue]);
            completeness__due_down(c, 0);
        }
        c->due[c->ndue] = e;
    }
    size_t nv = top - c->ndue;
    if (nv == 0) /* nothing due (c->due is still NULL before the first device is) */
        return 0;
    cdue *v = c->due + c->ndue;
    qsort(v, nv, sizeof *v, completeness__by_pos);
    c->tick_visits += nv;
    /* In table order from where the last tick stopped, then from the start,
     * as a walk of the whole table would meet them. */
    size_t cap = idtable_count(&c->dev), start = c->scan < cap ? c->scan : 0, first = 0;
    while (first < nv && v[first].d->pos < start)
        first++;
    size_t issued = 0;
    for (size_t k = 0; k < nv; k++) {
        cdev *d = v[(first + k) % nv].d;
        int picked;
        issued += completeness__tick_device(c, out, d, now_ms, can_request, issued < max_requests,
                                            &picked);
        if (picked && (issued >= max_requests || c->tokens < 1))
            c->scan = (size_t)d->pos + 1; /* the rest go first next time */
    }
    /* Filed again at their exact due times; those with nothing left go.
     * Refiling writes at index ndue <= the tail index read: no entry of the
     * tail is overwritten before it is read. */
    for (size_t k = 0; k < nv; k++) {
        cdue e = v[k];
        e.at = completeness__due_time(c, e.d);
        if (e.at != DUE_NEVER)
            completeness__due_file(c, e.d, e.at);
    }
    return issued;
}

uint64_t completeness_tick_visits(const completeness *c)
{
    return c->tick_visits;
}

int completeness_request_failed(completeness *c, const char *id, uint64_t req_id, int64_t now_ms)
{
    cdev *d = completeness__id_ok(id) ? completeness__dev_find(c, id) : NULL;
    if (!d || !d->outstanding || !d->req.has || d->req.id != req_id)
        return -1;
    completeness__wake(c, d);
    d->req = d->undo;
    d->outstanding = 0;
    d->requests--;
    c->tokens += 1;
    d->next_at = now_ms + 1000;
    return 0;
}

/* ---- views ---- */

static void completeness__dev_counts(const cdev *d, completeness_counts *o)
{
    memset(o, 0, sizeof *o);
    o->expected = d->r_expected;
    o->received = d->r_received;
    o->refilled = d->r_refilled;
    o->lost = d->r_lost;
    for (size_t k = 0; k < d->nboots; k++) {
        const cboot *b = &d->boots[k];
        o->expected += completeness__boot_expected(b);
        o->received += b->nrecv;
        o->refilled += b->refilled;
        o->lost += b->nlost;
    }
    o->pending = o->expected > o->received + o->lost ? o->expected - o->received - o->lost : 0;
    o->gaps_detected = d->gaps_detected;
    o->requests = d->requests;
    o->duplicates = d->duplicates;
}

int completeness_counts_get(const completeness *c, const char *id, completeness_counts *out)
{
    const cdev *d = completeness__id_ok(id) ? completeness__dev_find(c, id) : NULL;
    if (!d)
        return -1;
    completeness__dev_counts(d, out);
    return 0;
}

void completeness_totals(const completeness *c, completeness_counts *out)
{
    memset(out, 0, sizeof *out);
    cdev **e;
    size_t it = 0;
    while ((e = idtable_next(&c->dev, &it))) {
        completeness_counts x;
        completeness__dev_counts(*e, &x);
        out->expected += x.expected;
        out->received += x.received;
        out->refilled += x.refilled;
        out->lost += x.lost;
        out->pending += x.pending;
        out->gaps_detected += x.gaps_detected;
        out->requests += x.requests;
        out->duplicates += x.duplicates;
    }
}

int completeness_device_view_get(const completeness *c, const char *id,
                                 completeness_device_view *out)
{
    const cdev *d = completeness__id_ok(id) ? completeness__dev_find(c, id) : NULL;
    if (!d)
        return -1;
    memset(out, 0, sizeof *out);
    out->id = d->id;
    out->current = d->current;
    out->untracked = d->untracked;
    out->retired.expected = d->r_expected;
    out->retired.received = d->r_received;
    out->retired.refilled = d->r_refilled;
    out->retired.lost = d->r_lost;
    for (size_t k = 0; k < d->nboots && out->nboots < COMPLETENESS_VIEW_BOOTS; k++) {
        const cboot *b = &d->boots[k];
        out->boots[out->nboots++] = (completeness_boot_view){
            .boot = b->boot, .base = b->base, .hi = b->hi, .refilled = b->refilled,
            .recv = &b->recv, .lost = &b->lost};
    }
    return 0;
}
