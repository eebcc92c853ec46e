/* fanout — see fanout.h for the back-pressure and write rules. */
#include "fanout.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonin.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "ring.h"
#include "sbuf.h"
#include "telemetry.h"
#include "vthread.h"

#define TAG "hub"
#define FANOUT_SHARED_MAX 256 /* messages in one shared batch frame */

struct fanout_client {
    void *conn;
    fanout_client *prev, *next;      /* all open clients */
    ring q;                          /* hub_msg *, ws_queue entries */
    size_t qmsgs;                    /* messages in q (a shared batch counts all it holds) */
    int open;
    int closing;                     /* dropped: being killed by the transport */
    /* Lagging or not reading (fanout__stalled). took is set by every write
     * to it and cleared when a message lands in its empty queue and at a
     * resync: a full queue with took clear means nothing was written to it
     * since its oldest entry came; last_write_ms says for how long. */
    int took;
    int64_t last_write_ms;           /* when a frame was last written to it (or it opened) */
    size_t resync_dropped;           /* messages dropped, announced before the next snapshot */
    int batch;                       /* client accepts JSON arrays of messages */
    int filtered;                    /* 0: all devices */
    char (*filter)[TELEMETRY_ID_MAX + 1]; /* sorted ids when filtered */
    size_t nfilter;
    /* The snapshot is streamed: rendered FANOUT_SNAPSHOT_CHUNK bytes at a
     * time as the socket drains, walking the fanout's sorted id index from
     * a cursor, so a client that does not read holds at most one chunk. */
    int snap_active;                 /* a snapshot is being sent */
    int snap_sent;                   /* fragments of it written */
    size_t snap_items;               /* devices rendered into it */
    int snap_done;                   /* every device rendered, "]}" added */
    char snap_cursor[TELEMETRY_ID_MAX + 1]; /* last id examined ("" before the first) */
    sbuf snap;                       /* rendered, not yet written (FANOUT_PRE headroom) */
    int snap_again;                  /* a subscribe came while a snapshot was in flight */
    /* The filter the half-sent snapshot began with, kept until it is
     * finished (the new one already applies to live messages). */
    int old_filtered;
    char (*old_filter)[TELEMETRY_ID_MAX + 1];
    size_t nold;
    int snap_old;                    /* the snapshot renders with old_* */
    int64_t sub_times[FANOUT_SUBSCRIBE_BURST]; /* when the last subscribes came (ring) */
    size_t sub_n;                    /* subscribes seen, for the ring */
    sbuf scratch;                    /* batched frame */
};

struct fanout {
    vigil_metrics *m;
    size_t ws_queue;
    live *lv;
    const fanout_conn_ops *ops;
    const thread_owner *owner;
    int64_t (*now_ms)(void);         /* monotonic ms, given at create (never NULL) */
    fanout_client *clients;
    /* Every device id of the live model, sorted as live_devices_array
     * sorts them; rebuilt when the model's count changes (ids are never
     * removed). Shared by every streaming snapshot. */
    char (*ids)[TELEMETRY_ID_MAX + 1];
    size_t nids, capids;
    int ids_failed;
    /* Messages pushed since the last seal, for the full-stream batch
     * clients (batch, no filter): sealed (fanout__seal) into ONE JSON array
     * frame that each of them queues by reference — built once per pass,
     * not copied per client. At most FANOUT_SHARED_MAX messages (and
     * ws_queue) and FANOUT_BATCH_BYTES of array; when full it is sealed. */
    hub_msg *pend[FANOUT_SHARED_MAX];
    size_t npend;
    size_t pend_bytes;               /* length of the array they make, "[...]" */
    sbuf shared;                     /* where it is built (kept: no allocation per pass) */
};

#define FANOUT_ASSERT_OWNER(f) \
    do { if ((f)->owner) THREAD_ASSERT_OWNER((f)->owner); } while (0)

fanout *fanout_create(vigil_metrics *m, size_t ws_queue, live *lv, const fanout_conn_ops *ops,
                      int64_t (*now_ms)(void), const thread_owner *owner)
{
    if (!ws_queue || !now_ms)
        return NULL;
    fanout *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    *f = (fanout){.m = m, .ws_queue = ws_queue, .lv = lv, .ops = ops, .owner = owner,
                  .now_ms = now_ms};
    sbuf_init(&f->shared, 0);
    return f;
}

static void fanout__unpend(fanout *f)
{
    for (size_t i = 0; i < f->npend; i++)
        hub_msg_unref(f->pend[i]);
    f->npend = 0;
    f->pend_bytes = 0;
}

void fanout_destroy(fanout *f)
{
    if (f) {
        fanout__unpend(f);
        sbuf_free(&f->shared);
        free(f->ids);
    }
    free(f);
}

size_t fanout_client_size(void) { return sizeof(fanout_client); }

static size_t fanout__weight(const hub_msg *m) { return m->nbatch > 1 ? m->nbatch : 1; }

/* The front entry, out of the queue; the caller owns its reference. */
static hub_msg *fanout__pop(fanout_client *c)
{
    hub_msg *m;
    if (ring_pop_copy(&c->q, &m) != RING_OK)
        return NULL;
    c->qmsgs -= fanout__weight(m);
    return m;
}

static void fanout__clear_queue(fanout_client *c)
{
    hub_msg *m;
    while ((m = fanout__pop(c)))
        hub_msg_unref(m);
}

static int fanout__cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static int fanout__wants(void *ctx, const char *id)
{
    const fanout_client *c = ctx;
    return !c->filtered ||
           bsearch(id, c->filter, c->nfilter, sizeof *c->filter, fanout__cmp_id) != NULL;
}

static void fanout__drop(fanout *f, fanout_client *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    fanout__clear_queue(c);
    atomic_fetch_add_explicit(&f->m->ws_dropped_clients, 1, memory_order_relaxed);
    LOG_W(TAG, "dropping WebSocket client fd %d: %s", f->ops->fd(c->conn), why);
    f->ops->kill(c->conn);
}

static void fanout__snapshot(fanout *f, fanout_client *c);

/* After every frame written to c. */
static void fanout__wrote(fanout *f, fanout_client *c)
{
    atomic_fetch_add_explicit(&f->m->ws_frames, 1, memory_order_relaxed);
    c->took = 1;
    c->last_write_ms = f->now_ms();
}

/* 1 if c, whose queue is full, does not read (fanout.h). */
static int fanout__stalled(fanout *f, fanout_client *c)
{
    if (c->took)
        return 0;
    if (!f->ops->choked(c->conn)) /* a syscall, but only on an overflow */
        return 0; /* its socket takes more: this thread is what is behind */
    return f->now_ms() - c->last_write_ms >= FANOUT_STALL_MS;
}

/* A full queue on a client that is reading, only not fast enough (a burst):
 * everything queued goes, oldest first — the snapshot that follows
 * supersedes all of it — and the client is told: {"type":"resync",
 * "dropped":N}, then a snapshot. A half-sent snapshot is finished first
 * (snap_again), as for a subscribe. */
static void fanout__resync(fanout *f, fanout_client *c)
{
    size_t n = c->qmsgs;
    fanout__clear_queue(c);
    c->resync_dropped += n;
    c->took = 0;
    atomic_fetch_add_explicit(&f->m->ws_resyncs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->m->ws_resync_dropped, n, memory_order_relaxed);
    if (c->snap_active && c->snap_sent)
        c->snap_again = 1;
    else
        fanout__snapshot(f, c);
    f->ops->want_write(c->conn);
}

static void fanout__push(fanout *f, fanout_client *c, hub_msg *m)
{
    if (c->closing)
        return;
    size_t w = fanout__weight(m);
    if (c->qmsgs + w > f->ws_queue) { /* full (ws_queue messages) */
        if (fanout__stalled(f, c)) {
            fanout__drop(f, c, "send queue full (client not reading)");
            return;
        }
        fanout__resync(f, c);
    }
    hub_msg **slot = c->qmsgs + w <= f->ws_queue ? ring_push(&c->q) : NULL;
    if (!slot) {
        fanout__drop(f, c, "send queue full (client not reading)");
        return;
    }
    if (ring_count(&c->q) == 1) /* the first entry since the queue was empty */
        c->took = 0;
    *slot = hub_msg_ref(m);
    c->qmsgs += w;
}

/* A client that gets every message in arrays: it takes the shared frame. */
static int fanout__shared_client(const fanout_client *c)
{
    return c->batch && !c->filtered && !c->closing;
}

/* Queues what was pended on every full-stream batch client: several as one
 * shared array frame, else each message as itself. Called before anything that could reorder a client's queue
 * or change who is a full-stream client (open, receive, flush, writable). */
static void fanout__seal(fanout *f)
{
    if (!f->npend)
        return;
    size_t takers = 0;
    for (fanout_client *c = f->clients; c && takers < 2; c = c->next)
        takers += (size_t)fanout__shared_client(c);
    /* One message goes as itself; for one client its own batch frame costs
     * the same single copy, so only two or more share one. */
    hub_msg *out = NULL;
    if (f->npend > 1 && takers > 1) {
        sbuf_reset(&f->shared);
        sbuf_adds(&f->shared, "[");
        for (size_t i = 0; i < f->npend; i++) {
            if (i)
                sbuf_adds(&f->shared, ",");
            sbuf_add(&f->shared, f->pend[i]->text, f->pend[i]->len);
        }
        sbuf_adds(&f->shared, "]");
        out = sbuf_ok(&f->shared) ? hub_msg_text(sbuf_data(&f->shared), f->shared.len) : NULL;
        if (out)
            out->nbatch = (uint32_t)f->npend;
    }
    for (fanout_client *c = f->clients; c; c = c->next) {
        if (!fanout__shared_client(c))
            continue;
        if (out)
            fanout__push(f, c, out);
        else /* one message, one client, or no memory: each on its own, as before */
            for (size_t i = 0; i < f->npend; i++)
                fanout__push(f, c, f->pend[i]);
    }
    hub_msg_unref(out);
    fanout__unpend(f);
}

/* Adds m to the shared frame being built, sealing it first if m would
 * take it past FANOUT_BATCH_BYTES (the same packing rule as
 * fanout__write_batch) or its message bound. */
static void fanout__pend(fanout *f, hub_msg *m)
{
    size_t cap = f->ws_queue < FANOUT_SHARED_MAX ? f->ws_queue : FANOUT_SHARED_MAX;
    if (f->npend && (f->npend == cap || f->pend_bytes + 1 + m->len + 1 > FANOUT_BATCH_BYTES))
        fanout__seal(f);
    if (!f->npend)
        f->pend_bytes = 1; /* "[" */
    else
        f->pend_bytes += 1; /* "," */
    f->pend_bytes += m->len;
    f->pend[f->npend++] = hub_msg_ref(m);
}

/* Starts a snapshot: nothing is rendered until the socket is writable. */
static void fanout__snapshot(fanout *f, fanout_client *c)
{
    sbuf_free(&c->snap);
    sbuf_init(&c->snap, FANOUT_PRE);
    c->snap_active = 1;
    c->snap_sent = 0;
    c->snap_items = 0;
    c->snap_done = 0;
    c->snap_cursor[0] = 0;
    /* Anything queued before the snapshot is reflected in it. After a
     * resync that is more dropped: the count says so. */
    if (c->resync_dropped) {
        atomic_fetch_add_explicit(&f->m->ws_resync_dropped, c->qmsgs, memory_order_relaxed);
        c->resync_dropped += c->qmsgs;
    }
    fanout__clear_queue(c);
}

/* Collects ids through live_devices_array's filter (which wants none). */
static int fanout__collect_id(void *ctx, const char *id)
{
    fanout *f = ctx;
    if (f->nids == f->capids) {
        size_t cap = f->capids ? f->capids * 2 : 256;
        void *p = realloc(f->ids, cap * sizeof *f->ids);
        if (!p) {
            f->ids_failed = 1;
            return 0;
        }
        f->ids = p;
        f->capids = cap;
    }
    snprintf(f->ids[f->nids++], sizeof f->ids[0], "%s", id);
    return 0;
}

static int fanout__refresh_ids(fanout *f)
{
    if (f->ids && f->nids == live_count(f->lv))
        return 0;
    f->nids = 0;
    f->ids_failed = 0;
    sbuf none;
    sbuf_init(&none, 0);
    live_devices_array(f->lv, fanout__collect_id, f, &none);
    int failed = !sbuf_ok(&none) || f->ids_failed;
    sbuf_free(&none);
    if (failed) {
        f->nids = 0;
        return -1;
    }
    if (f->nids > 1)
        qsort(f->ids, f->nids, sizeof *f->ids, fanout__cmp_id);
    return 0;
}

/* Index of the first id after cursor. */
static size_t fanout__after(const fanout *f, const char *cursor)
{
    size_t lo = 0, hi = f->nids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(f->ids[mid], cursor) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int fanout__snap_wants(const fanout_client *c, const char *id)
{
    if (!c->snap_old)
        return fanout__wants((void *)c, id);
    return !c->old_filtered ||
           bsearch(id, c->old_filter, c->nold, sizeof *c->old_filter, fanout__cmp_id) != NULL;
}

static void fanout__free_old_filter(fanout_client *c)
{
    free(c->old_filter);
    c->old_filter = NULL;
    c->nold = 0;
    c->old_filtered = 0;
    c->snap_old = 0;
}

/* Renders devices until a whole chunk is buffered or all are. The same
 * bytes, in the same order, as live_devices_array would give at once. */
static int fanout__render_snapshot(fanout *f, fanout_client *c)
{
    if (!c->snap_sent && !c->snap_items && !c->snap.len)
        sbuf_adds(&c->snap, "{\"type\":\"snapshot\",\"devices\":[");
    if (fanout__refresh_ids(f) != 0)
        return -1;
    size_t i = fanout__after(f, c->snap_cursor);
    for (; i < f->nids && c->snap.len < FANOUT_SNAPSHOT_CHUNK; i++) {
        memcpy(c->snap_cursor, f->ids[i], sizeof c->snap_cursor);
        if (!fanout__snap_wants(c, f->ids[i]))
            continue;
        if (c->snap_items++)
            sbuf_adds(&c->snap, ",");
        live_device_json(f->lv, f->ids[i], &c->snap);
    }
    if (i == f->nids && !c->snap_done) {
        sbuf_adds(&c->snap, "]}");
        c->snap_done = 1;
    }
    return sbuf_ok(&c->snap) ? 0 : -1;
}

int fanout_open(fanout *f, fanout_client *c, void *conn)
{
    FANOUT_ASSERT_OWNER(f);
    fanout__seal(f); /* what was pushed before c opened is not c's */
    memset(c, 0, sizeof *c);
    c->conn = conn;
    if (ring_init(&c->q, f->ws_queue, sizeof(hub_msg *)) != RING_OK)
        return -1;
    c->open = 1;
    c->last_write_ms = f->now_ms();
    sbuf_init(&c->scratch, FANOUT_PRE);
    c->next = f->clients;
    if (f->clients)
        f->clients->prev = c;
    f->clients = c;
    atomic_fetch_add_explicit(&f->m->ws_clients, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->m->ws_connections, 1, memory_order_relaxed);
    fanout__snapshot(f, c);
    f->ops->want_write(conn);
    return 0;
}

void fanout_close(fanout *f, fanout_client *c)
{
    FANOUT_ASSERT_OWNER(f);
    if (!c->open)
        return; /* never opened */
    fanout__clear_queue(c);
    ring_free(&c->q);
    c->open = 0;
    free(c->filter);
    c->filter = NULL;
    fanout__free_old_filter(c);
    sbuf_free(&c->snap);
    sbuf_free(&c->scratch);
    if (c->prev)
        c->prev->next = c->next;
    else
        f->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub_explicit(&f->m->ws_clients, 1, memory_order_relaxed);
}

static void fanout__reply_error(fanout *f, fanout_client *c, const char *msg)
{
    sbuf b;
    sbuf_init(&b, 0);
    sbuf_adds(&b, "{\"type\":\"error\",\"error\":");
    sbuf_add_json_str(&b, msg);
    sbuf_adds(&b, "}");
    hub_msg *m = sbuf_ok(&b) ? hub_msg_text(sbuf_data(&b), b.len) : NULL;
    sbuf_free(&b);
    if (m) {
        fanout__push(f, c, m);
        hub_msg_unref(m);
        f->ops->want_write(c->conn);
    }
}

static void fanout__error(fanout *f, fanout_client *c, const char *msg)
{
    atomic_fetch_add_explicit(&f->m->ws_bad_messages, 1, memory_order_relaxed);
    fanout__reply_error(f, c, msg);
}

/* Parses the filter of a subscribe into a sorted array (NULL for "all").
 * Returns NULL and sets *err on a bad one. */
static char (*fanout__parse_filter(const cJSON *devs, size_t *n, const char **err))[TELEMETRY_ID_MAX + 1]
{
    *n = 0;
    if (!cJSON_IsArray(devs))
        return NULL;
    size_t cnt = (size_t)cJSON_GetArraySize(devs);
    if (cnt > FANOUT_FILTER_MAX) {
        *err = "too many devices in one subscription";
        return NULL;
    }
    char (*ids)[TELEMETRY_ID_MAX + 1] = calloc(cnt ? cnt : 1, sizeof *ids);
    if (!ids) {
        *err = "out of memory";
        return NULL;
    }
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, devs)
    {
        if (!cJSON_IsString(it) || !telemetry_id_valid(it->valuestring, strlen(it->valuestring))) {
            free(ids);
            *err = "invalid device id in \"devices\"";
            return NULL;
        }
        snprintf(ids[k++], sizeof ids[0], "%s", it->valuestring);
    }
    qsort(ids, cnt, sizeof *ids, fanout__cmp_id);
    *n = cnt;
    return ids;
}

fanout_parse_result fanout_parse_subscribe(const char *in, size_t len, fanout_subscribe *out)
{
    memset(out, 0, sizeof *out);
    cJSON *j = jsonin_parse(in, len, NULL);
    const cJSON *type = j ? cJSON_GetObjectItemCaseSensitive(j, "type") : NULL;
    fanout_parse_result r = FANOUT_PARSE_OK;
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        out->err = "expected a JSON object with a \"type\"";
        r = FANOUT_PARSE_BAD;
        goto out;
    }
    if (strcmp(type->valuestring, "subscribe") != 0) {
        out->err = "unknown message type";
        r = FANOUT_PARSE_BAD;
        goto out;
    }
    r = FANOUT_PARSE_BAD_SUBSCRIBE; /* from here on it is a subscribe */
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    const cJSON *batch = cJSON_GetObjectItemCaseSensitive(j, "batch");
    if (batch && !cJSON_IsBool(batch)) {
        out->err = "\"batch\" must be true or false";
        goto out;
    }
    if (devs && !cJSON_IsNull(devs) && !cJSON_IsArray(devs)) {
        out->err = "\"devices\" must be an array of device ids or null";
        goto out;
    }
    out->ids = fanout__parse_filter(devs, &out->nids, &out->err);
    if (out->err)
        goto out;
    out->filtered = out->ids != NULL;
    out->batch_set = batch != NULL;
    out->batch = cJSON_IsTrue(batch);
    r = FANOUT_PARSE_OK;
out:
    cJSON_Delete(j);
    return r;
}

void fanout_subscribe_free(fanout_subscribe *s)
{
    free(s->ids);
    s->ids = NULL;
    s->nids = 0;
}

/* 1 if one more subscribe is within FANOUT_SUBSCRIBE_BURST per
 * FANOUT_SUBSCRIBE_WINDOW_MS; notes it if so. Each subscribe rebuilds a
 * snapshot: without this one client could keep the web thread busy. */
static int fanout__subscribe_allowed(fanout_client *c, int64_t now_ms)
{
    int64_t *oldest = &c->sub_times[c->sub_n % FANOUT_SUBSCRIBE_BURST];
    if (c->sub_n >= FANOUT_SUBSCRIBE_BURST && now_ms - *oldest < FANOUT_SUBSCRIBE_WINDOW_MS)
        return 0;
    *oldest = now_ms;
    c->sub_n++;
    return 1;
}

void fanout_receive(fanout *f, fanout_client *c, const char *in, size_t len, int64_t now_ms)
{
    FANOUT_ASSERT_OWNER(f);
    if (c->closing)
        return;
    fanout__seal(f); /* before c's filter or batch mode can change */
    fanout_subscribe sub;
    fanout_parse_result r = fanout_parse_subscribe(in, len, &sub);
    if (r != FANOUT_PARSE_BAD && !fanout__subscribe_allowed(c, now_ms)) {
        atomic_fetch_add_explicit(&f->m->ws_subscribe_limited, 1, memory_order_relaxed);
        fanout_subscribe_free(&sub);
        fanout__reply_error(f, c, "too many subscribes: at most 5 per 10 s; this one is ignored");
        return;
    }
    if (r != FANOUT_PARSE_OK) {
        fanout__error(f, c, sub.err);
        fanout_subscribe_free(&sub);
        return;
    }
    if (c->snap_active && c->snap_sent && !c->snap_old) {
        /* The half-sent snapshot finishes with the filter it began with. */
        c->old_filter = c->filter;
        c->nold = c->nfilter;
        c->old_filtered = c->filtered;
        c->snap_old = 1;
    } else
        free(c->filter);
    c->filter = sub.ids;
    c->nfilter = sub.nids;
    c->filtered = sub.filtered;
    if (sub.batch_set)
        c->batch = sub.batch;
    /* Coalesced: a snapshot not yet begun is simply restarted for the new
     * filter; one half sent is finished, then one more follows — never a
     * queue of them. */
    if (c->snap_active && c->snap_sent)
        c->snap_again = 1;
    else
        fanout__snapshot(f, c);
    f->ops->want_write(c->conn);
}

/* Drops the first n bytes. What is left (under one device's JSON) moves to
 * a buffer of its own size, so an idle client keeps no full chunk. */
static void fanout__consume(sbuf *b, size_t n)
{
    sbuf rest;
    sbuf_init(&rest, FANOUT_PRE);
    if (b->len > n)
        sbuf_add(&rest, sbuf_data(b) + n, b->len - n); /* a failure stays marked in rest */
    sbuf_free(b);
    *b = rest;
}

/* {"type":"resync","dropped":N} as its own frame, before the snapshot that
 * follows a resync. */
static int fanout__write_resync(fanout *f, fanout_client *c)
{
    sbuf_reset(&c->scratch);
    sbuf_addf(&c->scratch, "{\"type\":\"resync\",\"dropped\":%zu}", c->resync_dropped);
    if (!sbuf_ok(&c->scratch))
        return -1;
    if (f->ops->write(c->conn, (unsigned char *)sbuf_data(&c->scratch), c->scratch.len, FANOUT_TEXT) < 0)
        return -1;
    fanout__wrote(f, c);
    c->resync_dropped = 0;
    f->ops->want_write(c->conn); /* the snapshot on the next callback */
    return 0;
}

static int fanout__write_snapshot(fanout *f, fanout_client *c)
{
    if (!c->snap_sent && c->resync_dropped)
        return fanout__write_resync(f, c);
    if (fanout__render_snapshot(f, c) != 0) {
        fanout__drop(f, c, "out of memory building the snapshot");
        return 0;
    }
    size_t n = c->snap.len > FANOUT_SNAPSHOT_CHUNK ? FANOUT_SNAPSHOT_CHUNK : c->snap.len;
    int last = c->snap_done && n == c->snap.len;
    fanout_frame kind = !c->snap_sent ? (last ? FANOUT_TEXT : FANOUT_FIRST)
                                      : (last ? FANOUT_FINAL : FANOUT_CONTINUE);
    /* The bytes before the chunk are headroom: the transport may write its
     * frame header there. */
    if (f->ops->write(c->conn, (unsigned char *)sbuf_data(&c->snap), n, kind) < 0)
        return -1;
    fanout__wrote(f, c);
    c->snap_sent++;
    fanout__consume(&c->snap, n);
    if (last) {
        sbuf_free(&c->snap);
        sbuf_init(&c->snap, FANOUT_PRE);
        c->snap_active = 0;
        fanout__free_old_filter(c);
        if (c->snap_again) {
            c->snap_again = 0;
            fanout__snapshot(f, c);
        }
    }
    f->ops->want_write(c->conn);
    return 0;
}

/* The bytes a queued entry adds to a batch array: a shared array joins
 * without its brackets. */
static size_t fanout__inner_len(const hub_msg *m) { return m->nbatch > 1 ? m->len - 2 : m->len; }

/* 1 if the front entry is a shared array that would make the next frame
 * alone (the entry after it would not fit): it is written from its own
 * buffer, with no copy. */
static int fanout__front_alone(const fanout_client *c)
{
    hub_msg *const *front = ring_front(&c->q);
    if (!front || (*front)->nbatch <= 1)
        return 0;
    hub_msg *const *next = ring_count(&c->q) > 1 ? ring_at(&c->q, 1) : NULL;
    return !next || (*front)->len + 1 + fanout__inner_len(*next) > FANOUT_BATCH_BYTES;
}

/* Several queued messages as one JSON array in one frame: one syscall
 * instead of many when a client is behind. */
static int fanout__write_batch(fanout *f, fanout_client *c)
{
    sbuf_reset(&c->scratch);
    sbuf_adds(&c->scratch, "[");
    hub_msg **front;
    while ((front = ring_front(&c->q))) {
        hub_msg *m = *front;
        const unsigned char *t = m->nbatch > 1 ? m->text + 1 : m->text;
        size_t len = fanout__inner_len(m);
        if (c->scratch.len > 1 && c->scratch.len + 1 + len + 1 > FANOUT_BATCH_BYTES)
            break; /* the next frame takes it */
        if (c->scratch.len > 1)
            sbuf_adds(&c->scratch, ",");
        sbuf_add(&c->scratch, t, len);
        hub_msg_unref(fanout__pop(c));
    }
    sbuf_adds(&c->scratch, "]");
    if (!sbuf_ok(&c->scratch))
        return -1;
    return f->ops->write(c->conn, (unsigned char *)sbuf_data(&c->scratch), c->scratch.len,
                         FANOUT_TEXT);
}

int fanout_writable(fanout *f, fanout_client *c)
{
    FANOUT_ASSERT_OWNER(f);
    if (c->closing || !c->open)
        return -1;
    fanout__seal(f);
    if (c->snap_active)
        return fanout__write_snapshot(f, c);
    int budget = FANOUT_WRITE_BUDGET;
    /* We are called only when the socket is writable; choked() is a poll()
     * syscall, so ask it only before a second write. */
    int first_write = 1;
    while (ring_count(&c->q) && budget-- > 0 && (first_write || !f->ops->choked(c->conn))) {
        first_write = 0;
        if (c->batch && ring_count(&c->q) > 1 && !fanout__front_alone(c)) {
            if (fanout__write_batch(f, c) < 0)
                return -1;
        } else {
            /* One message, or one shared array: its own buffer, no copy. */
            hub_msg *m = fanout__pop(c);
            int rc = f->ops->write(c->conn, m->text, m->len, FANOUT_TEXT);
            hub_msg_unref(m);
            if (rc < 0) {
                LOG_W(TAG, "WebSocket write failed on fd %d: closing", f->ops->fd(c->conn));
                return -1;
            }
        }
        fanout__wrote(f, c);
    }
    if (ring_count(&c->q))
        f->ops->want_write(c->conn);
    return 0;
}

void fanout_push(fanout *f, hub_msg *m)
{
    FANOUT_ASSERT_OWNER(f);
    int shared = 0;
    for (fanout_client *c = f->clients; c; c = c->next) {
        if (fanout__shared_client(c))
            shared = 1; /* gets it through the shared frame */
        else if (m->kind == HUB_ALARM || fanout__wants(c, m->device_id)) /* alarms reach everyone */
            fanout__push(f, c, m);
    }
    if (shared)
        fanout__pend(f, m);
}

void fanout_flush(fanout *f)
{
    FANOUT_ASSERT_OWNER(f);
    fanout__seal(f);
    for (fanout_client *c = f->clients; c; c = c->next)
        if (ring_count(&c->q) && !c->closing)
            f->ops->want_write(c->conn);
}
