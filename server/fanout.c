/* fanout — see fanout.h for the back-pressure and write rules. */
#include "fanout.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"
#include "log.h"
#include "metrics.h"
#include "ring.h"
#include "sbuf.h"
#include "telemetry.h"
#include "vthread.h"

#define TAG "hub"

struct fanout_client {
    void *conn;
    fanout_client *prev, *next;      /* all open clients */
    ring q;                          /* hub_msg *, ws_queue entries */
    int open;
    int closing;                     /* dropped: being killed by the transport */
    int batch;                       /* client accepts JSON arrays of messages */
    int filtered;                    /* 0: all devices */
    char (*filter)[TELEMETRY_ID_MAX + 1]; /* sorted ids when filtered */
    size_t nfilter;
    sbuf snap;                       /* snapshot being sent, FANOUT_PRE headroom */
    size_t snap_off;
    int snap_again;                  /* a subscribe came while a snapshot was in flight */
    sbuf scratch;                    /* batched frame */
};

struct fanout {
    vigil_metrics *m;
    size_t ws_queue;
    live *lv;
    const fanout_conn_ops *ops;
    const thread_owner *owner;
    fanout_client *clients;
};

#define FANOUT_ASSERT_OWNER(f) \
    do { if ((f)->owner) THREAD_ASSERT_OWNER((f)->owner); } while (0)

fanout *fanout_create(vigil_metrics *m, size_t ws_queue, live *lv, const fanout_conn_ops *ops,
                      const thread_owner *owner)
{
    if (!ws_queue)
        return NULL;
    fanout *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    *f = (fanout){.m = m, .ws_queue = ws_queue, .lv = lv, .ops = ops, .owner = owner};
    return f;
}

void fanout_destroy(fanout *f) { free(f); }

size_t fanout_client_size(void) { return sizeof(fanout_client); }

static void fanout__clear_queue(fanout_client *c)
{
    hub_msg *m;
    while (ring_pop_copy(&c->q, &m) == RING_OK)
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

static void fanout__push(fanout *f, fanout_client *c, hub_msg *m)
{
    if (c->closing)
        return;
    hub_msg **slot = ring_push(&c->q);
    if (!slot) { /* full: the client is not reading */
        fanout__drop(f, c, "send queue full (client not reading)");
        return;
    }
    *slot = hub_msg_ref(m);
}

static void fanout__snapshot(fanout *f, fanout_client *c)
{
    sbuf_free(&c->snap);
    sbuf_init(&c->snap, FANOUT_PRE);
    sbuf_adds(&c->snap, "{\"type\":\"snapshot\",\"devices\":");
    live_devices_array(f->lv, fanout__wants, c, &c->snap);
    sbuf_adds(&c->snap, "}");
    c->snap_off = 0;
    /* Anything queued before the snapshot is already reflected in it. */
    fanout__clear_queue(c);
    if (!sbuf_ok(&c->snap))
        fanout__drop(f, c, "out of memory building the snapshot");
}

int fanout_open(fanout *f, fanout_client *c, void *conn)
{
    FANOUT_ASSERT_OWNER(f);
    memset(c, 0, sizeof *c);
    c->conn = conn;
    if (ring_init(&c->q, f->ws_queue, sizeof(hub_msg *)) != RING_OK)
        return -1;
    c->open = 1;
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

static void fanout__error(fanout *f, fanout_client *c, const char *msg)
{
    atomic_fetch_add_explicit(&f->m->ws_bad_messages, 1, memory_order_relaxed);
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

void fanout_receive(fanout *f, fanout_client *c, const char *in, size_t len)
{
    FANOUT_ASSERT_OWNER(f);
    if (c->closing)
        return;
    cJSON *j = cJSON_ParseWithLength(in, len);
    const cJSON *type = j ? cJSON_GetObjectItemCaseSensitive(j, "type") : NULL;
    const char *err = NULL;
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        fanout__error(f, c, "expected a JSON object with a \"type\"");
        goto out;
    }
    if (strcmp(type->valuestring, "subscribe") != 0) {
        fanout__error(f, c, "unknown message type");
        goto out;
    }
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    const cJSON *batch = cJSON_GetObjectItemCaseSensitive(j, "batch");
    if (batch && !cJSON_IsBool(batch)) {
        fanout__error(f, c, "\"batch\" must be true or false");
        goto out;
    }
    if (devs && !cJSON_IsNull(devs) && !cJSON_IsArray(devs)) {
        fanout__error(f, c, "\"devices\" must be an array of device ids or null");
        goto out;
    }
    size_t n;
    char (*ids)[TELEMETRY_ID_MAX + 1] = fanout__parse_filter(devs, &n, &err);
    if (err) {
        fanout__error(f, c, err);
        goto out;
    }
    free(c->filter);
    c->filter = ids;
    c->nfilter = n;
    c->filtered = ids != NULL;
    if (batch)
        c->batch = cJSON_IsTrue(batch);
    if (c->snap.len && c->snap_off) /* a snapshot is half sent: finish it first */
        c->snap_again = 1;
    else
        fanout__snapshot(f, c);
    f->ops->want_write(c->conn);
out:
    cJSON_Delete(j);
}

static int fanout__write_snapshot(fanout *f, fanout_client *c)
{
    size_t left = c->snap.len - c->snap_off;
    size_t n = left > FANOUT_SNAPSHOT_CHUNK ? FANOUT_SNAPSHOT_CHUNK : left;
    fanout_frame kind = c->snap_off == 0 ? (n < left ? FANOUT_FIRST : FANOUT_TEXT)
                                         : (n < left ? FANOUT_CONTINUE : FANOUT_FINAL);
    /* The bytes before the chunk are headroom (first chunk) or already sent:
     * the transport may write its frame header there. */
    unsigned char *p = (unsigned char *)sbuf_data(&c->snap) + c->snap_off;
    if (f->ops->write(c->conn, p, n, kind) < 0)
        return -1;
    atomic_fetch_add_explicit(&f->m->ws_frames, 1, memory_order_relaxed);
    c->snap_off += n;
    if (c->snap_off == c->snap.len) {
        sbuf_free(&c->snap);
        sbuf_init(&c->snap, FANOUT_PRE);
        c->snap_off = 0;
        if (c->snap_again) {
            c->snap_again = 0;
            fanout__snapshot(f, c);
        }
    }
    f->ops->want_write(c->conn);
    return 0;
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
        if (c->scratch.len > 1 && c->scratch.len + 1 + m->len + 1 > FANOUT_BATCH_BYTES)
            break; /* the next frame takes it */
        if (c->scratch.len > 1)
            sbuf_adds(&c->scratch, ",");
        sbuf_add(&c->scratch, m->text, m->len);
        hub_msg_unref(m);
        ring_pop(&c->q);
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
    if (c->snap.len)
        return fanout__write_snapshot(f, c);
    int budget = FANOUT_WRITE_BUDGET;
    /* We are called only when the socket is writable; choked() is a poll()
     * syscall, so ask it only before a second write. */
    int first_write = 1;
    while (ring_count(&c->q) && budget-- > 0 && (first_write || !f->ops->choked(c->conn))) {
        first_write = 0;
        if (c->batch && ring_count(&c->q) > 1) {
            if (fanout__write_batch(f, c) < 0)
                return -1;
        } else {
            hub_msg *m;
            ring_pop_copy(&c->q, &m);
            int rc = f->ops->write(c->conn, m->text, m->len, FANOUT_TEXT);
            hub_msg_unref(m);
            if (rc < 0) {
                LOG_W(TAG, "WebSocket write failed on fd %d: closing", f->ops->fd(c->conn));
                return -1;
            }
        }
        atomic_fetch_add_explicit(&f->m->ws_frames, 1, memory_order_relaxed);
    }
    if (ring_count(&c->q))
        f->ops->want_write(c->conn);
    return 0;
}

void fanout_push(fanout *f, hub_msg *m)
{
    FANOUT_ASSERT_OWNER(f);
    for (fanout_client *c = f->clients; c; c = c->next)
        if (fanout__wants(c, m->device_id))
            fanout__push(f, c, m);
}

void fanout_flush(fanout *f)
{
    FANOUT_ASSERT_OWNER(f);
    for (fanout_client *c = f->clients; c; c = c->next)
        if (ring_count(&c->q) && !c->closing)
            f->ops->want_write(c->conn);
}
