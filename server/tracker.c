/* tracker — see tracker.h. */
#include "tracker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "completeness_json.h"
#include "ivset.h"
#include "log.h"
#include "sbuf.h"
#include "store.h"
#include "vthread.h"

#define TAG "completeness"

struct tracker {
    vmutex lock;
    completeness *c; /* {lock} */
};

tracker *tracker_create(const completeness_config *cfg)
{
    tracker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->c = completeness_new(cfg);
    if (!t->c || vmutex_init(&t->lock) != 0) {
        completeness_free(t->c);
        free(t);
        return NULL;
    }
    return t;
}

void tracker_destroy(tracker *t)
{
    if (!t)
        return;
    vmutex_destroy(&t->lock);
    completeness_free(t->c);
    free(t);
}

typedef struct tracker__load {
    completeness *c;
    size_t islands, lost, refused;
} tracker__load;

static void tracker__on_island(void *ctx, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    tracker__load *l = ctx;
    l->islands++;
    if (completeness_load_island(l->c, id, boot, lo, hi) != 0)
        l->refused++;
}

static void tracker__on_lost(void *ctx, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    tracker__load *l = ctx;
    l->lost++;
    if (completeness_load_lost(l->c, id, boot, lo, hi) != 0)
        l->refused++;
}

int tracker_load(tracker *t, store *st, int64_t now_ms)
{
    /* Start-up, before any other thread: the store is read under the lock
     * only because nobody else can want it yet. */
    tracker__load l = {.c = t->c};
    store_completeness_cb cb = {.island = tracker__on_island, .lost = tracker__on_lost, .ctx = &l};
    vmutex_lock(&t->lock);
    store_err e = store_load_completeness(st, &cb);
    completeness_load_done(t->c, now_ms);
    completeness_counts tot;
    completeness_totals(t->c, &tot);
    vmutex_unlock(&t->lock);
    if (e != STORE_OK)
        return -1; /* the store logged why; main says what it means */
    LOG_I(TAG, "rebuilt from the store: %zu islands, %zu lost ranges (%zu not tracked); "
               "%llu expected, %llu stored, %llu lost, %llu pending",
          l.islands, l.lost, l.refused, (unsigned long long)tot.expected,
          (unsigned long long)tot.received, (unsigned long long)tot.lost,
          (unsigned long long)tot.pending);
    return 0;
}

/* What the store said, buffered so the lock is not held during the read. */
typedef struct tracker__range {
    char id[COMPLETENESS_ID_MAX + 1];
    int64_t boot, lo, hi;
    int lost;
} tracker__range;

typedef struct tracker__buf {
    completeness_pick pick;
    void *ctx;
    tracker__range *v;
    size_t n, cap;
    int failed;
} tracker__buf;

static void tracker__buf_add(tracker__buf *b, const char *id, int64_t boot, int64_t lo, int64_t hi,
                             int lost)
{
    if (b->failed || strlen(id) > COMPLETENESS_ID_MAX || !b->pick(b->ctx, id))
        return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        tracker__range *v = realloc(b->v, cap * sizeof *v);
        if (!v) {
            b->failed = 1;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    tracker__range *r = &b->v[b->n++];
    snprintf(r->id, sizeof r->id, "%s", id);
    r->boot = boot;
    r->lo = lo;
    r->hi = hi;
    r->lost = lost;
}

static void tracker__buf_island(void *ctx, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    tracker__buf_add(ctx, id, boot, lo, hi, 0);
}

static void tracker__buf_lost(void *ctx, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    tracker__buf_add(ctx, id, boot, lo, hi, 1);
}

int tracker_load_if(tracker *t, store *st, completeness_pick pick, void *ctx, int64_t now_ms)
{
    tracker__buf b = {.pick = pick, .ctx = ctx};
    store_completeness_cb cb = {.island = tracker__buf_island, .lost = tracker__buf_lost, .ctx = &b};
    if (store_load_completeness(st, &cb) != STORE_OK || b.failed) {
        free(b.v);
        return -1;
    }
    /* Islands before lost ranges, as at start-up (the store sends them so). */
    size_t refused = 0;
    vmutex_lock(&t->lock);
    completeness_forget_if(t->c, pick, ctx);
    for (size_t i = 0; i < b.n; i++) {
        const tracker__range *r = &b.v[i];
        if ((r->lost ? completeness_load_lost : completeness_load_island)(t->c, r->id, r->boot, r->lo,
                                                                          r->hi) != 0)
            refused++;
    }
    completeness_load_done_if(t->c, pick, ctx, now_ms);
    vmutex_unlock(&t->lock);
    free(b.v);
    if (refused)
        LOG_W(TAG, "%zu stored ranges not tracked while taking devices over", refused);
    return 0;
}

size_t tracker_forget_if(tracker *t, completeness_pick pick, void *ctx)
{
    vmutex_lock(&t->lock);
    size_t n = completeness_forget_if(t->c, pick, ctx);
    vmutex_unlock(&t->lock);
    return n;
}

completeness_result tracker_on_reading(tracker *t, const char *id, int64_t boot, int64_t seq,
                                       int stored, int64_t now_ms, completeness_actions *out)
{
    completeness_actions_clear(out);
    vmutex_lock(&t->lock);
    completeness_result r;
    if (stored)
        r = completeness_on_reading(t->c, out, id, boot, seq, now_ms);
    else
        r = completeness_on_unstored(t->c, out, id, boot, seq, now_ms) == 0
                ? COMPLETENESS_NEW
                : COMPLETENESS_UNTRACKED;
    vmutex_unlock(&t->lock);
    return r;
}

int tracker_on_boot_end(tracker *t, const char *id, int64_t boot, int64_t last_seq, int64_t now_ms,
                        completeness_actions *out)
{
    completeness_actions_clear(out);
    vmutex_lock(&t->lock);
    int rc = completeness_on_boot_end(t->c, out, id, boot, last_seq, now_ms);
    vmutex_unlock(&t->lock);
    return rc;
}

int tracker_on_ack(tracker *t, const char *id, uint64_t req_id, int ok, int permanent,
                   uint64_t sent, uint64_t missing, int64_t now_ms, completeness_actions *out)
{
    completeness_actions_clear(out);
    vmutex_lock(&t->lock);
    int rc = completeness_on_ack(t->c, out, id, req_id, ok, permanent, sent, missing, now_ms);
    vmutex_unlock(&t->lock);
    return rc;
}

size_t tracker_tick(tracker *t, int64_t now_ms, int can_request, size_t max_requests,
                    completeness_actions *out)
{
    completeness_actions_clear(out);
    vmutex_lock(&t->lock);
    size_t n = completeness_tick(t->c, out, now_ms, can_request, max_requests);
    vmutex_unlock(&t->lock);
    return n;
}

int tracker_request_failed(tracker *t, const char *id, uint64_t req_id, int64_t now_ms)
{
    vmutex_lock(&t->lock);
    int rc = completeness_request_failed(t->c, id, req_id, now_ms);
    vmutex_unlock(&t->lock);
    return rc;
}

void tracker_assert_not_held(tracker *t)
{
    if (t)
        VMUTEX_ASSERT_NOT_HELD(&t->lock);
}

void tracker_summary_json(tracker *t, const char *id, sbuf *out)
{
    if (!t) {
        sbuf_adds(out, "null");
        return;
    }
    vmutex_lock(&t->lock);
    completeness_summary_json(t->c, id, out);
    vmutex_unlock(&t->lock);
}

/* A device view that outlives the lock: the id and every interval set of
 * the boots asked for copied out of the model, in one block. */
typedef struct tracker__view {
    completeness_device_view v;
    char id[COMPLETENESS_ID_MAX + 1];
    ivset sets[2 * COMPLETENESS_VIEW_BOOTS]; /* recv, lost of boot k at 2k, 2k+1 */
    ivset_iv *ivs;                           /* the sets' intervals */
} tracker__view;

/* Copies the model's view of id into *out (lock held): memcpy of the
 * intervals, nothing formatted. The boots another boot filter would drop
 * are left out. 0, or -1 (not tracked, or out of memory). */
static int tracker__copy_view(const completeness *c, const char *id, int64_t boot, tracker__view *out)
{
    completeness_device_view *v = &out->v;
    if (completeness_device_view_get(c, id, v) != 0)
        return -1;
    size_t keep = 0, total = 0;
    for (size_t k = 0; k < v->nboots; k++) {
        if (boot >= 0 && v->boots[k].boot != boot)
            continue;
        v->boots[keep++] = v->boots[k];
        total += (size_t)v->boots[k].recv->n + v->boots[k].lost->n;
    }
    v->nboots = keep;
    snprintf(out->id, sizeof out->id, "%s", v->id);
    v->id = out->id;
    out->ivs = total ? malloc(total * sizeof *out->ivs) : NULL;
    if (total && !out->ivs)
        return -1;
    ivset_iv *at = out->ivs;
    for (size_t k = 0; k < keep; k++) {
        const ivset *src[2] = {v->boots[k].recv, v->boots[k].lost};
        for (int i = 0; i < 2; i++) {
            ivset *dst = &out->sets[2 * k + (size_t)i];
            *dst = (ivset){.v = at, .n = src[i]->n, .cap = src[i]->n, .max = src[i]->n};
            if (src[i]->n)
                memcpy(at, src[i]->v, src[i]->n * sizeof *at);
            at += src[i]->n;
        }
        v->boots[k].recv = &out->sets[2 * k];
        v->boots[k].lost = &out->sets[2 * k + 1];
    }
    return 0;
}

/* Decide under the lock, act after it: the body (up to max_gaps gaps,
 * ~70 B each through printf) is formatted from a copy once the lock is
 * released, so the ingest thread, which takes the lock for every reading,
 * never waits for the query worker's formatting — a worker that runs at a
 * lower priority (query.c) and could otherwise hold it while preempted. */
int tracker_device_json(tracker *t, const char *id, int64_t boot, int64_t from, int64_t to,
                        size_t max_gaps, sbuf *out)
{
    if (!t)
        return -1;
    tracker__view *cv = calloc(1, sizeof *cv); /* ~6 KB: heap, not the caller's stack */
    if (!cv)
        return -1;
    vmutex_lock(&t->lock);
    int rc = tracker__copy_view(t->c, id, boot, cv);
    vmutex_unlock(&t->lock);
    if (rc == 0)
        rc = completeness_view_json(&cv->v, boot, from, to, max_gaps, out);
    free(cv->ivs);
    free(cv);
    return rc;
}

static void tracker__annotate(void *ctx, const char *device_id, sbuf *out)
{
    tracker_summary_json(ctx, device_id, out);
}

vigil_annotator tracker_annotator(tracker *t)
{
    return (vigil_annotator){.annotate = tracker__annotate, .ctx = t};
}
