/* completeness — see completeness.h. Data layout:
 *   devices: open-addressing hash of cdev*, grown at 70 % load;
 *   per device: up to max_boots cboot, each with two sorted, disjoint,
 *   non-adjacent interval lists (recv, lost) searched by binary search.
 * Every loop runs over a bounded list (intervals, boots, devices). */
#include "completeness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry.h"

#define SEQ_MAX ((int64_t)1 << 53)   /* protocol bound for seq and boot */
#define ID_MAX 64

typedef struct iv {
    int64_t lo, hi;
} iv;

typedef struct ivlist {
    iv *v;
    size_t n, cap;
} ivlist;

typedef struct cboot {
    int64_t boot;
    int64_t base, hi;        /* expected seqs: base..hi (empty while hi < base) */
    ivlist recv, lost;
    uint64_t nrecv, nlost, refilled;
    int64_t last_change_ms;  /* a gap opened or was partly filled */
    int64_t replaced_ms;     /* 0 while this is the device's current boot */
    int64_t last_seen_ms;
} cboot;

typedef struct cdev {
    char id[ID_MAX + 1];
    cboot *boots;
    size_t nboots;
    int64_t current;         /* highest boot id seen; -1 none */
    /* boots retired from tracking */
    uint64_t r_expected, r_received, r_refilled, r_lost;
    uint64_t gaps_detected, requests, duplicates, untracked;
    /* the last resend request (one outstanding at most) */
    int outstanding, has_req, tries;
    uint64_t req_id;
    int64_t req_boot, req_from, req_to, req_deadline, next_at;
} cdev;

struct completeness {
    completeness_config cfg;
    cdev **dev;
    size_t cap, n;
    uint64_t next_req;
    double tokens;
    int64_t tokens_at;
    size_t scan;             /* where the next tick starts: fairness */
};

/* ---- interval lists ---- */

/* Index of the first interval with hi >= x (n if none). */
static size_t iv_lower(const ivlist *l, int64_t x)
{
    size_t a = 0, b = l->n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (l->v[m].hi < x)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* The interval containing x, or NULL. */
static const iv *iv_at(const ivlist *l, int64_t x)
{
    size_t i = iv_lower(l, x);
    return i < l->n && l->v[i].lo <= x ? &l->v[i] : NULL;
}

static int iv_reserve(ivlist *l, size_t want, size_t max)
{
    if (want <= l->cap)
        return 0;
    if (want > max)
        return -1;
    size_t ncap = l->cap ? l->cap * 2 : 8;
    while (ncap < want)
        ncap *= 2;
    if (ncap > max)
        ncap = max;
    iv *nv = realloc(l->v, ncap * sizeof *nv);
    if (!nv)
        return -1;
    l->v = nv;
    l->cap = ncap;
    return 0;
}

/* Seqs of [lo, hi] covered by the list. */
static uint64_t iv_count(const ivlist *l, int64_t lo, int64_t hi)
{
    uint64_t n = 0;
    for (size_t i = iv_lower(l, lo); i < l->n && l->v[i].lo <= hi; i++) {
        int64_t a = l->v[i].lo > lo ? l->v[i].lo : lo;
        int64_t b = l->v[i].hi < hi ? l->v[i].hi : hi;
        if (b >= a)
            n += (uint64_t)(b - a + 1);
    }
    return n;
}

/* Adds [lo, hi], merging with overlapping or adjacent intervals. Returns
 * the number of seqs newly covered, or -1 if the list is full. */
static int64_t iv_add(ivlist *l, int64_t lo, int64_t hi, size_t max)
{
    size_t i = iv_lower(l, lo - 1); /* first that may touch (hi >= lo - 1) */
    size_t j = i;
    int64_t nlo = lo, nhi = hi;
    uint64_t covered = 0;
    while (j < l->n && l->v[j].lo <= hi + 1) {
        covered += iv_count(&(ivlist){.v = &l->v[j], .n = 1}, lo, hi);
        if (l->v[j].lo < nlo)
            nlo = l->v[j].lo;
        if (l->v[j].hi > nhi)
            nhi = l->v[j].hi;
        j++;
    }
    if (j == i) { /* nothing to merge: a new interval at i */
        if (iv_reserve(l, l->n + 1, max) != 0)
            return -1;
        memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof *l->v);
        l->n++;
    } else if (j > i + 1) {
        memmove(&l->v[i + 1], &l->v[j], (l->n - j) * sizeof *l->v);
        l->n -= j - i - 1;
    }
    l->v[i] = (iv){nlo, nhi};
    return (int64_t)((uint64_t)(hi - lo + 1) - covered);
}

/* Removes the point x (which must be covered). -1 if a split needs room. */
static int iv_remove_point(ivlist *l, int64_t x, size_t max)
{
    size_t i = iv_lower(l, x);
    iv *v = &l->v[i];
    if (v->lo == x && v->hi == x) {
        memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof *l->v);
        l->n--;
    } else if (v->lo == x) {
        v->lo++;
    } else if (v->hi == x) {
        v->hi--;
    } else {
        if (iv_reserve(l, l->n + 1, max) != 0)
            return -1;
        v = &l->v[i];
        iv right = {x + 1, v->hi};
        v->hi = x - 1;
        memmove(&l->v[i + 2], &l->v[i + 1], (l->n - i - 1) * sizeof *l->v);
        l->v[i + 1] = right;
        l->n++;
    }
    return 0;
}

/* ---- boots ---- */

static uint64_t boot_expected(const cboot *b)
{
    return b->hi >= b->base ? (uint64_t)(b->hi - b->base + 1) : 0;
}

/* The first pending run starting at or after x within [x, end]: returns 1
 * and sets [*lo, *hi], or 0 if none. Each step skips one whole interval. */
static int next_pending(const cboot *b, int64_t x, int64_t end, int64_t *lo, int64_t *hi)
{
    if (x < b->base)
        x = b->base;
    if (end > b->hi)
        end = b->hi;
    size_t guard = b->recv.n + b->lost.n + 2;
    while (x <= end && guard--) {
        const iv *r = iv_at(&b->recv, x);
        if (r) {
            x = r->hi + 1;
            continue;
        }
        const iv *l = iv_at(&b->lost, x);
        if (l) {
            x = l->hi + 1;
            continue;
        }
        int64_t stop = end;
        size_t i = iv_lower(&b->recv, x);
        if (i < b->recv.n && b->recv.v[i].lo - 1 < stop)
            stop = b->recv.v[i].lo - 1;
        i = iv_lower(&b->lost, x);
        if (i < b->lost.n && b->lost.v[i].lo - 1 < stop)
            stop = b->lost.v[i].lo - 1;
        *lo = x;
        *hi = stop;
        return 1;
    }
    return 0;
}

static int is_pending(const cboot *b, int64_t x)
{
    return x >= b->base && x <= b->hi && !iv_at(&b->recv, x) && !iv_at(&b->lost, x);
}

/* Marks every pending seq of [lo, hi] lost. */
static void mark_lost(completeness *c, const completeness_sink *sink, cdev *d, cboot *b,
                      int64_t lo, int64_t hi, completeness_reason why)
{
    int64_t glo, ghi, x = lo;
    size_t guard = b->recv.n + b->lost.n + 2;
    while (guard-- && next_pending(b, x, hi, &glo, &ghi)) {
        int64_t added = iv_add(&b->lost, glo, ghi, c->cfg.max_ranges);
        if (added < 0 && b->lost.n == 0) {
            added = ghi - glo + 1; /* out of memory: counted, not listed */
        } else if (added < 0) {
            /* List full: bridge into the last lost interval below. Seqs of
             * recv it spans stay counted as received; only pending ones
             * are counted lost. */
            size_t i = iv_lower(&b->lost, glo);
            if (i > 0) {
                b->lost.v[i - 1].hi = ghi;
                if (i < b->lost.n && b->lost.v[i].lo <= ghi + 1) {
                    b->lost.v[i - 1].hi = b->lost.v[i].hi;
                    memmove(&b->lost.v[i], &b->lost.v[i + 1], (b->lost.n - i - 1) * sizeof(iv));
                    b->lost.n--;
                }
            } else {
                b->lost.v[0].lo = glo;
            }
            added = ghi - glo + 1;
        }
        b->nlost += (uint64_t)added;
        if (sink && sink->on_lost)
            sink->on_lost(sink->ctx, d->id, b->boot, glo, ghi, why);
        x = ghi + 1;
        if (x > hi)
            break;
    }
}

static cboot *boot_find(cdev *d, int64_t boot)
{
    for (size_t i = 0; i < d->nboots; i++)
        if (d->boots[i].boot == boot)
            return &d->boots[i];
    return NULL;
}

static void boot_free(cboot *b)
{
    free(b->recv.v);
    free(b->lost.v);
}

/* Makes room by retiring the least recently seen boot into the totals. */
static void boot_retire_one(completeness *c, const completeness_sink *sink, cdev *d)
{
    size_t k = 0;
    for (size_t i = 1; i < d->nboots; i++)
        if (d->boots[i].last_seen_ms < d->boots[k].last_seen_ms)
            k = i;
    cboot *b = &d->boots[k];
    mark_lost(c, sink, d, b, b->base, b->hi, COMPLETENESS_LOST_REBOOT);
    d->r_expected += boot_expected(b);
    d->r_received += b->nrecv;
    d->r_refilled += b->refilled;
    d->r_lost += b->nlost;
    if (d->has_req && d->req_boot == b->boot)
        d->has_req = d->outstanding = 0;
    boot_free(b);
    d->boots[k] = d->boots[--d->nboots];
}

static cboot *boot_new(completeness *c, const completeness_sink *sink, cdev *d, int64_t boot,
                       int64_t base, int64_t now_ms)
{
    if (d->nboots == c->cfg.max_boots)
        boot_retire_one(c, sink, d);
    cboot *b = &d->boots[d->nboots++];
    memset(b, 0, sizeof *b);
    b->boot = boot;
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
    return b;
}

/* ---- devices ---- */

static cdev *dev_find(const completeness *c, const char *id)
{
    size_t mask = c->cap - 1;
    for (size_t i = telemetry_id_hash(id) & mask, k = 0; k < c->cap; i = (i + 1) & mask, k++) {
        if (!c->dev[i])
            return NULL;
        if (!strcmp(c->dev[i]->id, id))
            return c->dev[i];
    }
    return NULL;
}

static int dev_grow(completeness *c)
{
    size_t ncap = c->cap * 2;
    cdev **n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->dev[i])
            continue;
        size_t j = telemetry_id_hash(c->dev[i]->id) & (ncap - 1);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = c->dev[i];
    }
    free(c->dev);
    c->dev = n;
    c->cap = ncap;
    return 0;
}

static int id_ok(const char *id)
{
    return id && id[0] && memchr(id, '\0', ID_MAX + 1) != NULL;
}

static cdev *dev_get(completeness *c, const char *id)
{
    if (!id_ok(id))
        return NULL;
    cdev *d = dev_find(c, id);
    if (d)
        return d;
    if (c->n >= c->cfg.max_devices)
        return NULL;
    if ((c->n + 1) * 10 > c->cap * 7 && dev_grow(c) != 0)
        return NULL;
    d = calloc(1, sizeof *d);
    if (!d || !(d->boots = calloc(c->cfg.max_boots, sizeof *d->boots))) {
        free(d);
        return NULL;
    }
    snprintf(d->id, sizeof d->id, "%s", id);
    d->current = -1;
    size_t mask = c->cap - 1, i = telemetry_id_hash(id) & mask;
    while (c->dev[i])
        i = (i + 1) & mask;
    c->dev[i] = d;
    c->n++;
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
    if (!k->max_ranges) k->max_ranges = 4096;
    if (!k->max_boots) k->max_boots = 4;
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
    c->cap = 1024;
    c->dev = calloc(c->cap, sizeof *c->dev);
    if (!c->dev) {
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
    for (size_t i = 0; i < c->cap; i++) {
        cdev *d = c->dev[i];
        if (!d)
            continue;
        for (size_t k = 0; k < d->nboots; k++)
            boot_free(&d->boots[k]);
        free(d->boots);
        free(d);
    }
    free(c->dev);
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

static int vals_ok(int64_t boot, int64_t seq)
{
    return boot >= 0 && boot <= SEQ_MAX && seq >= 0 && seq <= SEQ_MAX;
}

/* ---- loading ---- */

int completeness_load_island(completeness *c, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    if (!vals_ok(boot, lo) || !vals_ok(boot, hi) || hi < lo)
        return -1;
    cdev *d = dev_get(c, id);
    if (!d)
        return -1;
    cboot *b = boot_find(d, boot);
    if (!b) {
        if (d->nboots == c->cfg.max_boots) {
            /* Keep the highest boots: replace the lowest if this is higher. */
            size_t k = 0;
            for (size_t i = 1; i < d->nboots; i++)
                if (d->boots[i].boot < d->boots[k].boot)
                    k = i;
            if (d->boots[k].boot > boot)
                return 0;
            cboot *o = &d->boots[k];
            d->r_expected += boot_expected(o);
            d->r_received += o->nrecv;
            d->r_lost += o->nlost;
            boot_free(o);
            d->boots[k] = d->boots[--d->nboots];
        }
        b = &d->boots[d->nboots++];
        memset(b, 0, sizeof *b);
        b->boot = boot;
        b->base = lo;
        b->hi = hi;
        if (boot > d->current)
            d->current = boot;
    }
    if (lo < b->base)
        b->base = lo;
    if (hi > b->hi)
        b->hi = hi;
    int64_t added = iv_add(&b->recv, lo, hi, c->cfg.max_ranges);
    if (added < 0) {
        d->untracked += (uint64_t)(hi - lo + 1);
        return -1;
    }
    b->nrecv += (uint64_t)added;
    return 0;
}

int completeness_load_lost(completeness *c, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    if (!vals_ok(boot, lo) || !vals_ok(boot, hi) || hi < lo)
        return -1;
    cdev *d = dev_find(c, id);
    cboot *b = d ? boot_find(d, boot) : NULL;
    if (!b)
        return 0; /* nothing stored of that boot any more: nothing to show */
    if (lo < b->base)
        lo = b->base;
    if (hi > b->hi)
        hi = b->hi;
    if (lo > hi)
        return 0;
    /* Only what is still not stored: a late arrival recovered the rest. */
    mark_lost(c, NULL, d, b, lo, hi, COMPLETENESS_LOST_MISSING);
    return 0;
}

void completeness_load_done(completeness *c, int64_t now_ms)
{
    for (size_t i = 0; i < c->cap; i++) {
        cdev *d = c->dev[i];
        if (!d)
            continue;
        for (size_t k = 0; k < d->nboots; k++) {
            cboot *b = &d->boots[k];
            b->last_seen_ms = now_ms;
            b->last_change_ms = now_ms;
            b->replaced_ms = b->boot == d->current ? 0 : (now_ms ? now_ms : 1);
        }
    }
}

/* ---- live ---- */

static int open_gap(const completeness_sink *sink, cdev *d, cboot *b,
                    int64_t lo, int64_t hi, int64_t now_ms)
{
    /* A continuation of a pending tail is the same gap, not a new one. */
    int fresh = !(lo > b->base && is_pending(b, lo - 1));
    b->last_change_ms = now_ms;
    if (fresh) {
        d->gaps_detected++;
        if (sink && sink->on_gap)
            sink->on_gap(sink->ctx, d->id, b->boot, lo, hi);
    }
    return fresh;
}

static cboot *boot_for(completeness *c, const completeness_sink *sink, cdev *d, int64_t boot,
                       int64_t seq, int64_t now_ms, int *created)
{
    cboot *b = boot_find(d, boot);
    *created = 0;
    if (!b) {
        /* Seqs start at 1: a boot first seen a little later has a leading
         * gap (e.g. its first readings died in a crashed vigild's queue). */
        int64_t base = seq >= 1 && (uint64_t)(seq - 1) <= c->cfg.lead_max ? 1 : seq;
        b = boot_new(c, sink, d, boot, base, now_ms);
        *created = 1;
    }
    b->last_seen_ms = now_ms;
    return b;
}

/* Moves hi up to seq_hi, opening the gap (hi, gap_hi]. */
static void advance(completeness *c, const completeness_sink *sink, cdev *d, cboot *b,
                    int64_t gap_hi, int64_t new_hi, int64_t now_ms)
{
    int64_t lo = b->hi + 1;
    if (b->hi < b->base)
        lo = b->base;
    b->hi = new_hi;
    if (gap_hi >= lo) {
        open_gap(sink, d, b, lo, gap_hi, now_ms);
        if ((uint64_t)(gap_hi - lo + 1) > c->cfg.max_gap)
            mark_lost(c, sink, d, b, lo, gap_hi, COMPLETENESS_LOST_TOO_BIG);
    }
}

/* The device and boot a (boot, seq) of device id belongs to, created on
 * first sight; NULL for out-of-range values or a full device table. */
static cboot *entry(completeness *c, const completeness_sink *sink, const char *id, int64_t boot,
                    int64_t seq, int64_t now_ms, cdev **dout)
{
    if (!vals_ok(boot, seq))
        return NULL;
    cdev *d = dev_get(c, id);
    if (!d)
        return NULL;
    int created;
    *dout = d;
    return boot_for(c, sink, d, boot, seq, now_ms, &created);
}

int completeness_on_reading(completeness *c, const completeness_sink *sink, const char *id,
                            int64_t boot, int64_t seq, int64_t now_ms)
{
    cdev *d;
    cboot *b = entry(c, sink, id, boot, seq, now_ms, &d);
    if (!b)
        return -1;
    int refill = 0;
    if (seq < b->base) {
        /* Older than anything known of this boot (e.g. a pruned start):
         * the seqs between become a gap. */
        if ((uint64_t)(b->base - seq) > c->cfg.max_gap) {
            d->untracked++;
            return -1;
        }
        int64_t old = b->base;
        b->base = seq;
        if (old - 1 >= seq + 1 && b->hi >= old)
            open_gap(sink, d, b, seq + 1, old - 1, now_ms);
    }
    if (seq > b->hi) {
        advance(c, sink, d, b, seq - 1, seq, now_ms);
    } else if (iv_at(&b->recv, seq)) {
        d->duplicates++;
        return 0;
    } else {
        /* Fills a hole: a refill if we asked for it, else a late replay. */
        if (iv_at(&b->lost, seq)) {
            if (iv_remove_point(&b->lost, seq, c->cfg.max_ranges) != 0) {
                d->untracked++;
                return -1;
            }
            b->nlost--;
        }
        b->last_change_ms = now_ms;
        if (d->has_req && d->req_boot == boot && seq >= d->req_from && seq <= d->req_to) {
            b->refilled++;
            refill = 1;
        }
    }
    int64_t added = iv_add(&b->recv, seq, seq, c->cfg.max_ranges);
    if (added < 0) {
        /* Too fragmented to track exactly: say so rather than guess. */
        d->untracked++;
        mark_lost(c, sink, d, b, seq, seq, COMPLETENESS_LOST_TOO_BIG);
        return -1;
    }
    b->nrecv += (uint64_t)added;
    return refill ? 2 : 1;
}

int completeness_on_unstored(completeness *c, const completeness_sink *sink, const char *id,
                             int64_t boot, int64_t seq, int64_t now_ms)
{
    cdev *d;
    cboot *b = entry(c, sink, id, boot, seq, now_ms, &d);
    if (!b)
        return -1;
    if (seq > b->hi)
        advance(c, sink, d, b, seq, seq, now_ms);
    else if (seq < b->base && (uint64_t)(b->base - seq) <= c->cfg.max_gap) {
        int64_t old = b->base;
        b->base = seq;
        open_gap(sink, d, b, seq, old - 1, now_ms);
    }
    return 0;
}

int completeness_on_ack(completeness *c, const completeness_sink *sink, const char *id,
                        uint64_t req_id, int ok, int permanent, uint64_t sent, uint64_t missing,
                        int64_t now_ms)
{
    (void)sent;
    cdev *d = id_ok(id) ? dev_find(c, id) : NULL;
    if (!d || !d->has_req || d->req_id != req_id)
        return -1;
    d->outstanding = 0;
    cboot *b = boot_find(d, d->req_boot);
    int shift = d->tries > 1 ? (d->tries - 1 > 6 ? 6 : d->tries - 1) : 0;
    if (!b)
        return 0;
    if (permanent) {
        mark_lost(c, sink, d, b, d->req_from, d->req_to, COMPLETENESS_LOST_UNSUPPORTED);
        d->next_at = now_ms;
        return 0;
    }
    if (!ok) {
        d->next_at = now_ms + (c->cfg.ack_timeout_ms << shift);
        return 0;
    }
    if (missing > 0) {
        /* The device's outbox is a ring: what it lacks is the oldest part. */
        uint64_t span = (uint64_t)(d->req_to - d->req_from) + 1;
        if (missing > span)
            missing = span;
        mark_lost(c, sink, d, b, d->req_from, d->req_from + (int64_t)missing - 1,
                  COMPLETENESS_LOST_MISSING);
    }
    /* Let what was sent arrive and be stored before judging the range again. */
    d->next_at = now_ms + c->cfg.settle_ms;
    return 0;
}

/* Picks the next range to ask for: the oldest eligible pending run of the
 * current boot first (its outbox is still filling over it), then older
 * boots. Coalesces nearby runs. Returns 1 if one was found. */
static int pick(const completeness *c, cdev *d, int64_t now_ms, cboot **ob, int64_t *from,
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
            if (!next_pending(b, b->base, b->hi, &lo, &hi))
                continue;
            int64_t end = lo + (int64_t)c->cfg.max_span - 1;
            if (hi > end)
                hi = end;
            int64_t nlo, nhi;
            size_t guard = b->recv.n + 1;
            while (guard-- && hi < end &&
                   next_pending(b, hi + 1, hi + 1 + (int64_t)c->cfg.coalesce_slack, &nlo, &nhi)) {
                int64_t l2, h2;
                next_pending(b, nlo, b->hi, &l2, &h2); /* the whole run */
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

size_t completeness_tick(completeness *c, const completeness_sink *sink, int64_t now_ms,
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
    size_t issued = 0;
    size_t start = c->scan;
    for (size_t k = 0; k < c->cap; k++) {
        size_t slot = (start + k) % c->cap;
        cdev *d = c->dev[slot];
        if (!d)
            continue;
        /* Deadlines run whatever the request budget. */
        if (d->outstanding && now_ms >= d->req_deadline) {
            d->outstanding = 0;
            d->next_at = now_ms;
        }
        for (size_t i = 0; i < d->nboots; i++) {
            cboot *b = &d->boots[i];
            if (b->replaced_ms && now_ms - b->replaced_ms >= c->cfg.old_boot_deadline_ms &&
                b->nrecv + b->nlost < boot_expected(b))
                mark_lost(c, sink, d, b, b->base, b->hi, COMPLETENESS_LOST_REBOOT);
        }
        if (!can_request || d->outstanding || now_ms < d->next_at || issued >= max_requests ||
            c->tokens < 1)
            continue;
        cboot *b;
        int64_t from, to;
        for (int guard = 0; guard < 4 && pick(c, d, now_ms, &b, &from, &to); guard++) {
            int same = d->has_req && d->req_boot == b->boot && from <= d->req_to && to >= d->req_from;
            int tries = same ? d->tries + 1 : 1;
            if (tries > c->cfg.max_tries) {
                mark_lost(c, sink, d, b, from, to, COMPLETENESS_LOST_RETRIES);
                d->has_req = 0;
                d->tries = 0;
                continue; /* the next range, if any */
            }
            uint64_t rid = ++c->next_req;
            if (sink && sink->on_request &&
                sink->on_request(sink->ctx, d->id, b->boot, from, to, rid) != 0) {
                d->next_at = now_ms + 1000;
                break;
            }
            d->has_req = 1;
            d->outstanding = 1;
            d->req_id = rid;
            d->req_boot = b->boot;
            d->req_from = from;
            d->req_to = to;
            d->tries = tries;
            int shift = tries - 1 > 6 ? 6 : tries - 1;
            d->req_deadline = now_ms + (c->cfg.ack_timeout_ms << shift);
            d->requests++;
            c->tokens -= 1;
            issued++;
            break;
        }
        if (issued >= max_requests || c->tokens < 1)
            c->scan = slot + 1; /* the rest go first next time */
    }
    return issued;
}

/* ---- views ---- */

static void dev_counts(const cdev *d, completeness_counts *o)
{
    memset(o, 0, sizeof *o);
    o->expected = d->r_expected;
    o->received = d->r_received;
    o->refilled = d->r_refilled;
    o->lost = d->r_lost;
    for (size_t k = 0; k < d->nboots; k++) {
        const cboot *b = &d->boots[k];
        o->expected += boot_expected(b);
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
    const cdev *d = id_ok(id) ? dev_find(c, id) : NULL;
    if (!d)
        return -1;
    dev_counts(d, out);
    return 0;
}

void completeness_totals(const completeness *c, completeness_counts *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->dev[i])
            continue;
        completeness_counts x;
        dev_counts(c->dev[i], &x);
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

static double ratio(uint64_t received, uint64_t expected)
{
    return expected ? (double)received / (double)expected : 1.0;
}

void completeness_summary_json(const completeness *c, const char *id, sbuf *o)
{
    completeness_counts x;
    if (!c || completeness_counts_get(c, id, &x) != 0) {
        sbuf_adds(o, "null");
        return;
    }
    sbuf_addf(o,
              "{\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ",\"refilled\":%" PRIu64
              ",\"lost\":%" PRIu64 ",\"pending\":%" PRIu64 ",\"ratio\":%.6f}",
              x.expected, x.received, x.refilled, x.lost, x.pending, ratio(x.received, x.expected));
}

static int cmp_boot(const void *a, const void *b)
{
    int64_t x = (*(const cboot *const *)a)->boot, y = (*(const cboot *const *)b)->boot;
    return x < y ? -1 : x > y;
}

int completeness_device_json(const completeness *c, const char *id, int64_t boot, int64_t from,
                             int64_t to, size_t max_gaps, sbuf *o)
{
    const cdev *d = id_ok(id) ? dev_find(c, id) : NULL;
    if (!d)
        return -1;
    const cboot *list[64];
    size_t n = 0;
    for (size_t k = 0; k < d->nboots && n < sizeof list / sizeof *list; k++)
        if (boot < 0 || d->boots[k].boot == boot)
            list[n++] = &d->boots[k];
    qsort(list, n, sizeof *list, cmp_boot);
    uint64_t expected = 0, received = 0, refilled = 0, lost = 0;
    int whole = boot < 0 && from <= 0 && to >= SEQ_MAX;
    if (whole) {
        expected = d->r_expected;
        received = d->r_received;
        refilled = d->r_refilled;
        lost = d->r_lost;
    }
    for (size_t k = 0; k < n; k++) {
        const cboot *b = list[k];
        int64_t lo = b->base > from ? b->base : from, hi = b->hi < to ? b->hi : to;
        if (hi >= lo) {
            expected += (uint64_t)(hi - lo + 1);
            received += iv_count(&b->recv, lo, hi);
            lost += iv_count(&b->lost, lo, hi);
        }
        refilled += b->refilled;
    }
    sbuf_adds(o, "{\"device_id\":");
    sbuf_add_json_str(o, d->id);
    if (boot >= 0)
        sbuf_addf(o, ",\"boot\":%" PRId64, boot);
    else
        sbuf_adds(o, ",\"boot\":null");
    uint64_t pending = expected > received + lost ? expected - received - lost : 0;
    sbuf_addf(o,
              ",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"expected\":%" PRIu64
              ",\"received\":%" PRIu64 ",\"refilled\":%" PRIu64 ",\"lost\":%" PRIu64
              ",\"pending\":%" PRIu64 ",\"ratio\":%.6f,\"current_boot\":",
              from, to, expected, received, refilled, lost, pending, ratio(received, expected));
    if (d->current >= 0)
        sbuf_addf(o, "%" PRId64, d->current);
    else
        sbuf_adds(o, "null");
    sbuf_adds(o, ",\"boots\":[");
    for (size_t k = 0; k < n; k++)
        sbuf_addf(o, "%s{\"boot\":%" PRId64 ",\"first_seq\":%" PRId64 ",\"last_seq\":%" PRId64 "}",
                  k ? "," : "", list[k]->boot, list[k]->base, list[k]->hi);
    sbuf_adds(o, "],\"gaps\":[");
    size_t ng = 0;
    int truncated = 0;
    for (size_t k = 0; k < n && !truncated; k++) {
        const cboot *b = list[k];
        int64_t x = b->base > from ? b->base : from, end = b->hi < to ? b->hi : to;
        size_t guard = b->recv.n + b->lost.n + 2;
        while (x <= end && guard--) {
            const iv *r = iv_at(&b->recv, x);
            if (r) {
                x = r->hi + 1;
                continue;
            }
            int64_t glo, ghi;
            const char *state;
            const iv *l = iv_at(&b->lost, x);
            if (l) {
                glo = x;
                ghi = l->hi < end ? l->hi : end;
                state = "lost";
            } else if (next_pending(b, x, end, &glo, &ghi)) {
                state = "pending";
            } else {
                break;
            }
            if (ng == max_gaps) {
                truncated = 1;
                break;
            }
            sbuf_addf(o, "%s{\"boot\":%" PRId64 ",\"from_seq\":%" PRId64 ",\"to_seq\":%" PRId64
                         ",\"state\":\"%s\"}",
                      ng ? "," : "", b->boot, glo, ghi, state);
            ng++;
            x = ghi + 1;
        }
    }
    sbuf_addf(o, "],\"gaps_truncated\":%s,\"untracked\":%" PRIu64 "}", truncated ? "true" : "false",
              d->untracked);
    return 0;
}
