/* tracker — see tracker.h. */
#include "tracker.h"

#include <stdlib.h>

#include "log.h"

#define TAG "completeness"

tracker *tracker_create(const completeness_config *cfg)
{
    tracker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->c = completeness_new(cfg);
    if (!t->c || pthread_mutex_init(&t->lock, NULL) != 0) {
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
    pthread_mutex_destroy(&t->lock);
    completeness_free(t->c);
    free(t);
}

typedef struct load_ctx {
    completeness *c;
    size_t islands, lost, refused;
} load_ctx;

static void on_island(void *ctx, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    load_ctx *l = ctx;
    l->islands++;
    if (completeness_load_island(l->c, id, boot, lo, hi) != 0)
        l->refused++;
}

static void on_lost(void *ctx, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    load_ctx *l = ctx;
    l->lost++;
    if (completeness_load_lost(l->c, id, boot, lo, hi) != 0)
        l->refused++;
}

int tracker_load(tracker *t, store *st, int64_t now_ms)
{
    load_ctx l = {.c = t->c};
    store_completeness_cb cb = {.island = on_island, .lost = on_lost, .ctx = &l};
    pthread_mutex_lock(&t->lock);
    store_err e = store_load_completeness(st, &cb);
    completeness_load_done(t->c, now_ms);
    completeness_counts tot;
    completeness_totals(t->c, &tot);
    pthread_mutex_unlock(&t->lock);
    if (e != STORE_OK) {
        LOG_E(TAG, "cannot rebuild from the store");
        return -1;
    }
    LOG_I(TAG, "rebuilt from the store: %zu islands, %zu lost ranges (%zu not tracked); "
               "%llu expected, %llu stored, %llu lost, %llu pending",
          l.islands, l.lost, l.refused, (unsigned long long)tot.expected,
          (unsigned long long)tot.received, (unsigned long long)tot.lost,
          (unsigned long long)tot.pending);
    return 0;
}

void tracker_summary_json(tracker *t, const char *id, sbuf *out)
{
    if (!t) {
        sbuf_adds(out, "null");
        return;
    }
    pthread_mutex_lock(&t->lock);
    completeness_summary_json(t->c, id, out);
    pthread_mutex_unlock(&t->lock);
}

int tracker_device_json(tracker *t, const char *id, int64_t boot, int64_t from, int64_t to,
                        size_t max_gaps, sbuf *out)
{
    if (!t)
        return -1;
    pthread_mutex_lock(&t->lock);
    int rc = completeness_device_json(t->c, id, boot, from, to, max_gaps, out);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static void tracker__annotate(void *ctx, const char *id, sbuf *out) { tracker_summary_json(ctx, id, out); }

vigil_annotator tracker_annotator(tracker *t)
{
    return (vigil_annotator){.annotate = tracker__annotate, .ctx = t};
}
