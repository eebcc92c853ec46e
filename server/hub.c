/* hub — device table and WebSocket fan-out. See hub.h for the threading and
 * back-pressure rules; in short: hub_post() is the only entry from another
 * thread, everything else runs on the lws service thread. */
#include "hub.h"
#include "vclock.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

_Static_assert(HUB_PRE >= LWS_PRE, "HUB_PRE must leave room for lws' frame header");

#define TAG "hub"
#define SNAPSHOT_CHUNK (64 * 1024)   /* bytes per writable callback for a snapshot */
#define WRITE_BUDGET 256             /* messages per writable callback: fairness */
#define BATCH_BYTES (64 * 1024)      /* largest batched frame */
#define FILTER_MAX 10000             /* device ids a client may subscribe to */
#define DRAIN_BATCH 256              /* messages fanned out per service-loop pass */

typedef struct hub_device {
    char id[TELEMETRY_ID_MAX + 1];
    int64_t first_seen_ms, last_seen_ms, status_ms;
    int online;                      /* 1, 0, or -1 unknown */
    char fw[TELEMETRY_FW_MAX + 1];
    int64_t interval_ms;             /* 0 unknown */
    int64_t boot;                    /* -1 unknown */
    hub_msg *last;                   /* latest reading (a reference), or NULL */
} hub_device;

struct hub_client {
    struct lws *wsi;
    hub_client *prev, *next;         /* all open clients */
    hub_msg **q;                     /* ring of references, hub->ws_queue entries */
    uint32_t head, count;
    int closing;                     /* dropped: being killed by lws */
    int batch;                       /* client accepts JSON arrays of messages */
    int filtered;                    /* 0: all devices */
    char (*filter)[TELEMETRY_ID_MAX + 1]; /* sorted ids when filtered */
    size_t nfilter;
    sbuf snap;                       /* snapshot being sent, HUB_PRE headroom */
    size_t snap_off;
    int snap_again;                  /* a subscribe came while a snapshot was in flight */
    sbuf scratch;                    /* batched frame */
};

struct hub {
    vigil_metrics *m;
    size_t ws_queue;
    /* inbox: {lock} */
    pthread_mutex_t lock;
    hub_msg **inbox;
    size_t inbox_cap, inbox_head, inbox_count;
    void (*wake)(void *);
    void *wake_arg;
    atomic_int wake_pending;         /* a wake is posted and not yet drained */
    tracker *trk;                    /* set before the web thread starts; locks itself */
    /* web thread only */
    hub_device **dev;                /* open addressing, dev_cap a power of two */
    size_t dev_cap, ndev;
    hub_client *clients;
};

static const char *kind_type(hub_kind k)
{
    switch (k) {
    case HUB_SENSOR_DATA: return "sensor_data";
    case HUB_DEVICE_STATUS: return "device_status";
    case HUB_COMMAND_RESULT: return "command_result";
    }
    return "unknown";
}

/* ---- messages ---- */

static hub_msg *msg_alloc(size_t len)
{
    hub_msg *m = malloc(sizeof *m + HUB_PRE + len + 1);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    atomic_init(&m->refs, 1);
    m->text = m->buf + HUB_PRE;
    m->len = len;
    m->text[len] = 0;
    return m;
}

hub_msg *hub_msg_new(hub_kind kind, const char *device_id, const char *data, size_t data_len)
{
    char prefix[48];
    int pn = snprintf(prefix, sizeof prefix, "{\"type\":\"%s\",\"data\":", kind_type(kind));
    hub_msg *m = msg_alloc((size_t)pn + data_len + 1);
    if (!m)
        return NULL;
    m->kind = (uint8_t)kind;
    snprintf(m->device_id, sizeof m->device_id, "%s", device_id);
    memcpy(m->text, prefix, (size_t)pn);
    memcpy(m->text + pn, data, data_len);
    m->text[pn + data_len] = '}';
    m->data_off = (size_t)pn;
    m->data_len = data_len;
    return m;
}

static hub_msg *msg_from_sbuf(const sbuf *b)
{
    hub_msg *m = msg_alloc(b->len);
    if (m)
        memcpy(m->text, sbuf_data(b), b->len);
    return m;
}

static hub_msg *msg_ref(hub_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void hub_msg_unref(hub_msg *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

/* ---- lifecycle ---- */

hub *hub_create(vigil_metrics *m, size_t ws_queue, size_t inbox)
{
    hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->m = m;
    h->ws_queue = ws_queue;
    h->inbox_cap = inbox;
    h->inbox = calloc(inbox, sizeof *h->inbox);
    h->dev_cap = 1024;
    h->dev = calloc(h->dev_cap, sizeof *h->dev);
    if (!h->inbox || !h->dev || pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h->inbox);
        free(h->dev);
        free(h);
        return NULL;
    }
    return h;
}

void hub_destroy(hub *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->inbox_count; i++)
        hub_msg_unref(h->inbox[(h->inbox_head + i) % h->inbox_cap]);
    for (size_t i = 0; i < h->dev_cap; i++)
        if (h->dev[i]) {
            hub_msg_unref(h->dev[i]->last);
            free(h->dev[i]);
        }
    pthread_mutex_destroy(&h->lock);
    free(h->inbox);
    free(h->dev);
    free(h);
}

void hub_set_tracker(hub *h, tracker *t) { h->trk = t; }
tracker *hub_tracker(hub *h) { return h->trk; }

void hub_set_waker(hub *h, void (*wake)(void *), void *arg)
{
    h->wake = wake;
    h->wake_arg = arg;
}

int hub_post(hub *h, hub_msg *m)
{
    int was_empty, full;
    pthread_mutex_lock(&h->lock);
    full = h->inbox_count == h->inbox_cap;
    was_empty = h->inbox_count == 0;
    if (!full) {
        h->inbox[(h->inbox_head + h->inbox_count) % h->inbox_cap] = m;
        h->inbox_count++;
        atomic_store_explicit(&h->m->hub_queue_depth, h->inbox_count, memory_order_relaxed);
    }
    pthread_mutex_unlock(&h->lock);
    if (full) {
        hub_msg_unref(m);
        atomic_fetch_add_explicit(&h->m->hub_dropped, 1, memory_order_relaxed);
        return -1;
    }
    /* One wake-up per empty → non-empty transition: the web thread drains
     * everything that arrives until it runs. */
    /* At most one wake in flight: lws reads its cancel pipe a few bytes per
     * pass, so a wake per message fills the pipe (writes fail with EAGAIN). */
    if (was_empty && h->wake && !atomic_exchange(&h->wake_pending, 1))
        h->wake(h->wake_arg);
    return 0;
}

/* ---- device table ---- */

static hub_device *dev_find(hub *h, const char *id)
{
    size_t mask = h->dev_cap - 1;
    for (size_t i = telemetry_id_hash(id) & mask;; i = (i + 1) & mask) {
        if (!h->dev[i])
            return NULL;
        if (!strcmp(h->dev[i]->id, id))
            return h->dev[i];
    }
}

static int dev_grow(hub *h)
{
    size_t ncap = h->dev_cap * 2;
    hub_device **n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < h->dev_cap; i++) {
        hub_device *d = h->dev[i];
        if (!d)
            continue;
        size_t j = telemetry_id_hash(d->id) & (ncap - 1);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = d;
    }
    free(h->dev);
    h->dev = n;
    h->dev_cap = ncap;
    return 0;
}

static hub_device *dev_get(hub *h, const char *id, int64_t now_ms)
{
    hub_device *d = dev_find(h, id);
    if (d)
        return d;
    if ((h->ndev + 1) * 10 > h->dev_cap * 7 && dev_grow(h) != 0)
        return NULL;
    d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    snprintf(d->id, sizeof d->id, "%s", id);
    d->first_seen_ms = now_ms;
    d->online = -1;
    d->boot = -1;
    size_t mask = h->dev_cap - 1, i = telemetry_id_hash(id) & mask;
    while (h->dev[i])
        i = (i + 1) & mask;
    h->dev[i] = d;
    h->ndev++;
    return d;
}

int hub_device_known(hub *h, const char *id) { return dev_find(h, id) != NULL; }
size_t hub_device_count(hub *h) { return h->ndev; }

int hub_load_devices(hub *h, store *st)
{
    store_device *devs = NULL;
    size_t n = 0;
    if (store_list_devices(st, &devs, &n) != STORE_OK)
        return -1;
    char json[2048];
    for (size_t i = 0; i < n; i++) {
        const store_device *s = &devs[i];
        hub_device *d = dev_get(h, s->id, s->first_seen_ms);
        if (!d)
            break;
        d->last_seen_ms = s->last_seen_ms;
        d->online = s->online;
        d->status_ms = s->status_ms;
        snprintf(d->fw, sizeof d->fw, "%s", s->fw);
        d->interval_ms = s->interval_ms;
        d->boot = s->boot;
        if (s->has_last) {
            size_t len = telemetry_reading_json(&s->last, json, sizeof json);
            if (len)
                d->last = hub_msg_new(HUB_SENSOR_DATA, s->id, json, len);
        }
    }
    free(devs);
    LOG_I(TAG, "loaded %zu devices from the store", h->ndev);
    return 0;
}

/* Applies a message to the device table. Readings only move "last" forward
 * in receive order: the table mirrors what the live stream showed. */
static void dev_apply(hub *h, hub_msg *m)
{
    hub_device *d = dev_get(h, m->device_id, m->received_ms);
    if (!d)
        return;
    if (m->received_ms > d->last_seen_ms)
        d->last_seen_ms = m->received_ms;
    if (m->kind == HUB_SENSOR_DATA) {
        hub_msg_unref(d->last);
        d->last = msg_ref(m);
    } else if (m->kind == HUB_DEVICE_STATUS) {
        const telemetry_status *s = &m->status;
        if (d->online != s->online)
            d->status_ms = m->received_ms;
        d->online = s->online;
        if (s->present & TELEMETRY_STATUS_HAS_FW)
            snprintf(d->fw, sizeof d->fw, "%s", s->fw);
        if (s->present & TELEMETRY_STATUS_HAS_INTERVAL)
            d->interval_ms = s->interval_ms;
        if (s->present & TELEMETRY_STATUS_HAS_BOOT)
            d->boot = s->boot;
    }
}

static void add_iso_or_null(sbuf *o, int64_t ms)
{
    if (ms <= 0) {
        sbuf_adds(o, "null");
        return;
    }
    char iso[32];
    size_t n = telemetry_format_iso(ms, iso, sizeof iso);
    sbuf_adds(o, "\"");
    sbuf_add(o, iso, n);
    sbuf_adds(o, "\"");
}

static void device_json(const hub *h, const hub_device *d, sbuf *o)
{
    sbuf_adds(o, "{\"device_id\":");
    sbuf_add_json_str(o, d->id);
    sbuf_addf(o, ",\"status\":\"%s\",\"first_seen\":",
              d->online == 1 ? "online" : d->online == 0 ? "offline" : "unknown");
    add_iso_or_null(o, d->first_seen_ms);
    sbuf_adds(o, ",\"last_seen\":");
    add_iso_or_null(o, d->last_seen_ms);
    sbuf_adds(o, ",\"status_at\":");
    add_iso_or_null(o, d->status_ms);
    sbuf_adds(o, ",\"fw\":");
    if (d->fw[0])
        sbuf_add_json_str(o, d->fw);
    else
        sbuf_adds(o, "null");
    if (d->interval_ms > 0)
        sbuf_addf(o, ",\"interval_ms\":%" PRId64, d->interval_ms);
    else
        sbuf_adds(o, ",\"interval_ms\":null");
    if (d->boot >= 0)
        sbuf_addf(o, ",\"boot\":%" PRId64, d->boot);
    else
        sbuf_adds(o, ",\"boot\":null");
    sbuf_adds(o, ",\"last\":");
    if (d->last)
        sbuf_add(o, d->last->text + d->last->data_off, d->last->data_len);
    else
        sbuf_adds(o, "null");
    sbuf_adds(o, ",\"completeness\":");
    tracker_summary_json(h->trk, d->id, o);
    sbuf_adds(o, "}");
}

static int cmp_dev(const void *a, const void *b)
{
    return strcmp((*(hub_device *const *)a)->id, (*(hub_device *const *)b)->id);
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static int client_wants(const hub_client *c, const char *id)
{
    return !c->filtered ||
           bsearch(id, c->filter, c->nfilter, sizeof *c->filter, cmp_id) != NULL;
}

/* Devices sorted by id, optionally restricted to what client c wants. */
static void devices_array(hub *h, const hub_client *c, sbuf *o)
{
    hub_device **list = malloc((h->ndev ? h->ndev : 1) * sizeof *list);
    if (!list) {
        o->failed = 1;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < h->dev_cap; i++)
        if (h->dev[i] && (!c || client_wants(c, h->dev[i]->id)))
            list[n++] = h->dev[i];
    qsort(list, n, sizeof *list, cmp_dev);
    sbuf_adds(o, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_adds(o, ",");
        device_json(h, list[i], o);
    }
    sbuf_adds(o, "]");
    free(list);
}

void hub_devices_json(hub *h, sbuf *out)
{
    sbuf_adds(out, "{\"devices\":");
    devices_array(h, NULL, out);
    sbuf_adds(out, "}");
}

int hub_device_json(hub *h, const char *id, sbuf *out)
{
    hub_device *d = dev_find(h, id);
    if (!d)
        return -1;
    device_json(h, d, out);
    return 0;
}

/* ---- clients ---- */

size_t hub_client_size(void) { return sizeof(hub_client); }

static void client_clear_queue(hub_client *c, size_t cap)
{
    while (c->count) {
        hub_msg_unref(c->q[c->head]);
        c->head = (uint32_t)((c->head + 1) % cap);
        c->count--;
    }
}

static void client_drop(hub *h, hub_client *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    client_clear_queue(c, h->ws_queue);
    atomic_fetch_add_explicit(&h->m->ws_dropped_clients, 1, memory_order_relaxed);
    LOG_W(TAG, "dropping WebSocket client fd %d: %s", (int)lws_get_socket_fd(c->wsi), why);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void client_push(hub *h, hub_client *c, hub_msg *m)
{
    if (c->closing)
        return;
    if (c->count == h->ws_queue) {
        client_drop(h, c, "send queue full (client not reading)");
        return;
    }
    c->q[(c->head + c->count) % h->ws_queue] = msg_ref(m);
    c->count++;
}

static void client_snapshot(hub *h, hub_client *c)
{
    sbuf_free(&c->snap);
    sbuf_init(&c->snap, HUB_PRE);
    sbuf_adds(&c->snap, "{\"type\":\"snapshot\",\"devices\":");
    devices_array(h, c, &c->snap);
    sbuf_adds(&c->snap, "}");
    c->snap_off = 0;
    /* Anything queued before the snapshot is already reflected in it. */
    client_clear_queue(c, h->ws_queue);
    if (!sbuf_ok(&c->snap))
        client_drop(h, c, "out of memory building the snapshot");
}

int hub_client_open(hub *h, hub_client *c, struct lws *wsi)
{
    memset(c, 0, sizeof *c);
    c->wsi = wsi;
    c->q = calloc(h->ws_queue, sizeof *c->q);
    if (!c->q)
        return -1;
    sbuf_init(&c->scratch, HUB_PRE);
    c->next = h->clients;
    if (h->clients)
        h->clients->prev = c;
    h->clients = c;
    atomic_fetch_add_explicit(&h->m->ws_clients, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->m->ws_connections, 1, memory_order_relaxed);
    client_snapshot(h, c);
    lws_callback_on_writable(wsi);
    return 0;
}

void hub_client_close(hub *h, hub_client *c)
{
    if (!c->q)
        return; /* never opened */
    client_clear_queue(c, h->ws_queue);
    free(c->q);
    c->q = NULL;
    free(c->filter);
    sbuf_free(&c->snap);
    sbuf_free(&c->scratch);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub_explicit(&h->m->ws_clients, 1, memory_order_relaxed);
}

static void client_error(hub *h, hub_client *c, const char *msg)
{
    atomic_fetch_add_explicit(&h->m->ws_bad_messages, 1, memory_order_relaxed);
    sbuf b;
    sbuf_init(&b, 0);
    sbuf_adds(&b, "{\"type\":\"error\",\"error\":");
    sbuf_add_json_str(&b, msg);
    sbuf_adds(&b, "}");
    hub_msg *m = sbuf_ok(&b) ? msg_from_sbuf(&b) : NULL;
    sbuf_free(&b);
    if (m) {
        client_push(h, c, m);
        hub_msg_unref(m);
        lws_callback_on_writable(c->wsi);
    }
}

void hub_client_receive(hub *h, hub_client *c, const char *in, size_t len)
{
    if (c->closing)
        return;
    cJSON *j = cJSON_ParseWithLength(in, len);
    const cJSON *type = j ? cJSON_GetObjectItemCaseSensitive(j, "type") : NULL;
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        client_error(h, c, "expected a JSON object with a \"type\"");
        goto out;
    }
    if (strcmp(type->valuestring, "subscribe") != 0) {
        client_error(h, c, "unknown message type");
        goto out;
    }
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    const cJSON *batch = cJSON_GetObjectItemCaseSensitive(j, "batch");
    if (batch && !cJSON_IsBool(batch)) {
        client_error(h, c, "\"batch\" must be true or false");
        goto out;
    }
    if (devs && !cJSON_IsNull(devs) && !cJSON_IsArray(devs)) {
        client_error(h, c, "\"devices\" must be an array of device ids or null");
        goto out;
    }
    size_t n = cJSON_IsArray(devs) ? (size_t)cJSON_GetArraySize(devs) : 0;
    if (n > FILTER_MAX) {
        client_error(h, c, "too many devices in one subscription");
        goto out;
    }
    char (*ids)[TELEMETRY_ID_MAX + 1] = NULL;
    if (cJSON_IsArray(devs)) {
        ids = calloc(n ? n : 1, sizeof *ids);
        if (!ids) {
            client_error(h, c, "out of memory");
            goto out;
        }
        size_t k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, devs)
        {
            if (!cJSON_IsString(it) || !telemetry_id_valid(it->valuestring, strlen(it->valuestring))) {
                free(ids);
                client_error(h, c, "invalid device id in \"devices\"");
                goto out;
            }
            snprintf(ids[k++], sizeof ids[0], "%s", it->valuestring);
        }
        qsort(ids, n, sizeof *ids, cmp_id);
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
        client_snapshot(h, c);
    lws_callback_on_writable(c->wsi);
out:
    cJSON_Delete(j);
}

static int write_snapshot(hub *h, hub_client *c)
{
    size_t left = c->snap.len - c->snap_off;
    size_t n = left > SNAPSHOT_CHUNK ? SNAPSHOT_CHUNK : left;
    int flags = c->snap_off == 0 ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;
    if (n < left)
        flags |= LWS_WRITE_NO_FIN;
    /* The bytes before the chunk are headroom (first chunk) or already sent:
     * lws may write its frame header there. */
    unsigned char *p = (unsigned char *)sbuf_data(&c->snap) + c->snap_off;
    if (lws_write(c->wsi, p, n, (enum lws_write_protocol)flags) < 0)
        return -1;
    atomic_fetch_add_explicit(&h->m->ws_frames, 1, memory_order_relaxed);
    c->snap_off += n;
    if (c->snap_off == c->snap.len) {
        sbuf_free(&c->snap);
        sbuf_init(&c->snap, HUB_PRE);
        c->snap_off = 0;
        if (c->snap_again) {
            c->snap_again = 0;
            client_snapshot(h, c);
        }
    }
    lws_callback_on_writable(c->wsi);
    return 0;
}

int hub_client_writable(hub *h, hub_client *c)
{
    if (c->closing || !c->q)
        return -1;
    if (c->snap.len)
        return write_snapshot(h, c);
    int budget = WRITE_BUDGET;
    /* lws calls us only when the socket is writable; lws_send_pipe_choked()
     * is a poll() syscall, so ask it only before a second write. */
    int first_write = 1;
    while (c->count && budget-- > 0 && (first_write || !lws_send_pipe_choked(c->wsi))) {
        first_write = 0;
        if (c->batch && c->count > 1) {
            /* Several messages as one JSON array in one frame: one syscall
             * instead of many when a client is behind. */
            sbuf_reset(&c->scratch);
            sbuf_adds(&c->scratch, "[");
            int first = 1;
            while (c->count && c->scratch.len < BATCH_BYTES) {
                hub_msg *m = c->q[c->head];
                if (!first)
                    sbuf_adds(&c->scratch, ",");
                sbuf_add(&c->scratch, m->text, m->len);
                first = 0;
                hub_msg_unref(m);
                c->head = (uint32_t)((c->head + 1) % h->ws_queue);
                c->count--;
            }
            sbuf_adds(&c->scratch, "]");
            if (!sbuf_ok(&c->scratch))
                return -1;
            if (lws_write(c->wsi, (unsigned char *)sbuf_data(&c->scratch), c->scratch.len,
                          LWS_WRITE_TEXT) < 0)
                return -1;
        } else {
            hub_msg *m = c->q[c->head];
            int rc = lws_write(c->wsi, m->text, m->len, LWS_WRITE_TEXT);
            hub_msg_unref(m);
            c->head = (uint32_t)((c->head + 1) % h->ws_queue);
            c->count--;
            if (rc < 0) {
                LOG_W(TAG, "WebSocket write failed on fd %d: closing", (int)lws_get_socket_fd(c->wsi));
                return -1;
            }
        }
        atomic_fetch_add_explicit(&h->m->ws_frames, 1, memory_order_relaxed);
    }
    if (c->count)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void hub_drain(hub *h)
{
    /* At most DRAIN_BATCH messages per service-loop pass, so clients' queues
     * are written between passes: a burst from the broker never fills a
     * healthy client's queue in one go. Whatever is left is drained on the
     * next pass (we wake ourselves); whatever is posted after the inbox
     * empties wakes us through hub_post(). */
    hub_msg *batch[DRAIN_BATCH];
    size_t n = 0;
    int more;
    atomic_store(&h->wake_pending, 0); /* before taking: a later post wakes us again */
    pthread_mutex_lock(&h->lock);
    while (h->inbox_count && n < DRAIN_BATCH) {
        batch[n++] = h->inbox[h->inbox_head];
        h->inbox_head = (h->inbox_head + 1) % h->inbox_cap;
        h->inbox_count--;
    }
    more = h->inbox_count != 0;
    atomic_store_explicit(&h->m->hub_queue_depth, h->inbox_count, memory_order_relaxed);
    pthread_mutex_unlock(&h->lock);
    if (!n)
        return;
    uint64_t t = vclock_mono_ns();
    for (size_t i = 0; i < n; i++) {
        hub_msg *m = batch[i];
        dev_apply(h, m);
        for (hub_client *c = h->clients; c; c = c->next)
            if (client_wants(c, m->device_id))
                client_push(h, c, m);
        if (m->ingest_ns && t > m->ingest_ns)
            metrics_observe_latency(h->m, t - m->ingest_ns);
        hub_msg_unref(m);
    }
    atomic_fetch_add_explicit(&h->m->broadcast, n, memory_order_relaxed);
    for (hub_client *c = h->clients; c; c = c->next)
        if (c->count && !c->closing)
            lws_callback_on_writable(c->wsi);
    if (more && h->wake && !atomic_exchange(&h->wake_pending, 1))
        h->wake(h->wake_arg);
}
