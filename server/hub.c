/* hub — messages, the inbox between threads, and the drain that feeds the
 * live model and the fan-out. See hub.h for the threading rules; in short:
 * hub_post() is the only entry from another thread. */
#include "hub.h"

#include "alarm.h"

#include <stdlib.h>
#include <string.h>

#include "fanout.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "ring.h"
#include "vclock.h"
#include "vthread.h"

#define TAG "hub"
#define DRAIN_BATCH 256 /* messages fanned out per service-loop pass */

struct hub {
    vigil_metrics *m;
    size_t ws_queue;
    /* inbox: {lock} */
    vmutex lock;
    ring inbox;                      /* hub_msg *; when full: drop for the live path, counted */
    void (*wake)(void *);
    void *wake_arg;
    atomic_int wake_pending;         /* a wake is posted and not yet drained */
    /* web thread only */
    thread_owner owner;
    uint64_t flush_ns;               /* hub_set_flush_window; 0: drain at every wake */
    uint64_t last_drain_ns;          /* when hub_drain last took messages */
    int backlog;                     /* the last drain left messages behind */
    live *lv;
    fanout *fo;                      /* created by hub_set_conn_ops */
};

/* The head of each kind's frame, {"type":"<type>","data":, as a literal:
 * hub_msg_new runs for every reading, and formatting it there was one of
 * the ingest thread's two snprintf per reading (issue 13). */
typedef struct hub__head {
    const char *s;
    size_t n;
} hub__head;

#define HUB__HEAD_S(type) "{\"type\":\"" type "\",\"data\":"
#define HUB__HEAD(type) {HUB__HEAD_S(type), sizeof HUB__HEAD_S(type) - 1}

static hub__head hub__kind_head(hub_kind k)
{
    static const hub__head heads[] = {
        [HUB_SENSOR_DATA] = HUB__HEAD("sensor_data"),
        [HUB_DEVICE_STATUS] = HUB__HEAD("device_status"),
        [HUB_COMMAND_RESULT] = HUB__HEAD("command_result"),
        [HUB_ALARM] = HUB__HEAD("alarm"),
    };
    static const hub__head unknown = HUB__HEAD("unknown");
    return (unsigned)k < sizeof heads / sizeof heads[0] ? heads[k] : unknown;
}

/* ---- messages ---- */

static hub_msg *hub__msg_alloc(size_t len)
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

hub_msg *hub_msg_alarm(const alarm_rec *a, int64_t at)
{
    char json[ALARM_JSON_MAX];
    size_t len = alarm_json(a, json, sizeof json);
    hub_msg *m = len ? hub_msg_new(HUB_ALARM, a->device_id, json, len) : NULL;
    if (!m)
        return NULL;
    m->received_ms = at;
    m->alarm_id = a->alarm_id;
    m->alarm_open = a->state != ALARM_CLEARED;
    m->alarm_priority = (uint8_t)a->priority;
    m->alarm_started = a->started_at;
    return m;
}

hub_msg *hub_msg_new(hub_kind kind, const char *device_id, const char *data, size_t data_len)
{
    hub__head head = hub__kind_head(kind);
    size_t pn = head.n;
    hub_msg *m = hub__msg_alloc(pn + data_len + 1);
    if (!m)
        return NULL;
    m->kind = (uint8_t)kind;
    /* As snprintf("%s") would: cut to the field, always terminated. */
    size_t idn = strnlen(device_id, sizeof m->device_id - 1);
    memcpy(m->device_id, device_id, idn);
    m->device_id[idn] = '\0';
    memcpy(m->text, head.s, pn);
    memcpy(m->text + pn, data, data_len);
    m->text[pn + data_len] = '}';
    m->data_off = pn;
    m->data_len = data_len;
    return m;
}

hub_msg *hub_msg_text(const char *text, size_t len)
{
    hub_msg *m = hub__msg_alloc(len);
    if (m)
        memcpy(m->text, text, len);
    return m;
}

hub_msg *hub_msg_ref(hub_msg *m)
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
    h->lv = live_create(&h->owner);
    if (!h->lv || ring_init(&h->inbox, inbox, sizeof(hub_msg *)) != RING_OK ||
        vmutex_init(&h->lock) != 0) {
        live_destroy(h->lv);
        ring_free(&h->inbox);
        free(h);
        return NULL;
    }
    return h;
}

void hub_destroy(hub *h)
{
    if (!h)
        return;
    hub_msg *m;
    while (ring_pop_copy(&h->inbox, &m) == RING_OK)
        hub_msg_unref(m);
    ring_free(&h->inbox);
    fanout_destroy(h->fo);
    live_destroy(h->lv);
    vmutex_destroy(&h->lock);
    free(h);
}

void hub_set_annotator(hub *h, vigil_annotator a) { live_set_annotator(h->lv, a); }

int hub_load_device(hub *h, const struct store_device *d) { return live_load_device(h->lv, d); }

void hub_set_waker(hub *h, void (*wake)(void *), void *arg)
{
    h->wake = wake;
    h->wake_arg = arg;
}

static int64_t hub__now_ms(void) { return vclock_mono_ms(); }

void hub_set_conn_ops(hub *h, const fanout_conn_ops *ops)
{
    THREAD_ASSERT_OWNER(&h->owner);
    fanout_destroy(h->fo);
    h->fo = fanout_create(h->m, h->ws_queue, h->lv, ops, hub__now_ms, &h->owner);
}

void hub_thread_bind(hub *h) { thread_owner_bind(&h->owner); }
void hub_thread_release(hub *h) { thread_owner_release(&h->owner); }

/* One wake in flight: lws reads its cancel pipe a few bytes per pass, so a
 * wake per message fills the pipe (writes fail with EAGAIN). */
static void hub__wake(hub *h)
{
    if (h->wake && !atomic_exchange(&h->wake_pending, 1))
        h->wake(h->wake_arg);
}

/* Queues m; 1 if the inbox was empty before, 0 if not, -1 if full (m
 * released, counted). */
static int hub__enqueue(hub *h, hub_msg *m)
{
    VMUTEX_ASSERT_NOT_HELD(&h->lock);
    vmutex_lock(&h->lock);
    int was_empty = ring_empty(&h->inbox);
    int full = ring_push_copy(&h->inbox, &m) != RING_OK;
    atomic_store_explicit(&h->m->hub_queue_depth, ring_count(&h->inbox), memory_order_relaxed);
    vmutex_unlock(&h->lock);
    if (full) {
        hub_msg_unref(m);
        atomic_fetch_add_explicit(&h->m->hub_dropped, 1, memory_order_relaxed);
        return -1;
    }
    return was_empty;
}

int hub_post(hub *h, hub_msg *m)
{
    int rc = hub__enqueue(h, m);
    /* One wake-up per empty → non-empty transition: the web thread drains
     * everything that arrives until it runs. */
    if (rc == 1)
        hub__wake(h);
    return rc < 0 ? -1 : 0;
}

int hub_post_quiet(hub *h, hub_msg *m) { return hub__enqueue(h, m) < 0 ? -1 : 0; }

void hub_kick(hub *h)
{
    VMUTEX_ASSERT_NOT_HELD(&h->lock);
    vmutex_lock(&h->lock);
    int empty = ring_empty(&h->inbox);
    vmutex_unlock(&h->lock);
    if (!empty)
        hub__wake(h);
}

void hub_drain(hub *h)
{
    THREAD_ASSERT_OWNER(&h->owner);
    /* At most DRAIN_BATCH messages per service-loop pass, so clients' queues
     * are written between passes: a burst from the broker never fills a
     * healthy client's queue in one go. Whatever is left is drained on the
     * next pass (we wake ourselves); whatever is posted after the inbox
     * empties wakes us through hub_post(). */
    hub_msg *batch[DRAIN_BATCH];
    size_t n = 0;
    int more;
    atomic_store(&h->wake_pending, 0); /* before taking: a later post wakes us again */
    vmutex_lock(&h->lock);
    while (n < DRAIN_BATCH && ring_pop_copy(&h->inbox, &batch[n]) == RING_OK)
        n++;
    more = !ring_empty(&h->inbox);
    atomic_store_explicit(&h->m->hub_queue_depth, ring_count(&h->inbox), memory_order_relaxed);
    vmutex_unlock(&h->lock);
    h->backlog = more;
    if (!n)
        return;
    uint64_t t = vclock_mono_ns();
    h->last_drain_ns = t;
    for (size_t i = 0; i < n; i++) {
        hub_msg *m = batch[i];
        live_apply(h->lv, m);
        if (h->fo)
            fanout_push(h->fo, m);
        if (m->ingest_ns && t > m->ingest_ns)
            metrics_observe_latency(h->m, t - m->ingest_ns);
        hub_msg_unref(m);
    }
    atomic_fetch_add_explicit(&h->m->broadcast, n, memory_order_relaxed);
    if (h->fo)
        fanout_flush(h->fo);
    if (more)
        hub__wake(h);
}

void hub_set_flush_window(hub *h, uint32_t ms) { h->flush_ns = (uint64_t)ms * 1000000u; }

uint64_t hub_drain_paced(hub *h, uint64_t now_ns)
{
    THREAD_ASSERT_OWNER(&h->owner);
    /* Only the first message after a quiet spell, or a backlog, goes out at
     * once; within a window of the last drain, messages gather and go out in
     * one pass: one shared frame and one send per client for all of them. */
    uint64_t due = h->last_drain_ns + h->flush_ns;
    if (h->flush_ns == 0 || h->backlog || h->last_drain_ns == 0 || now_ns >= due) {
        hub_drain(h);
        return 0;
    }
    /* The caller drains at `due`; until then posts need not wake us. */
    atomic_store(&h->wake_pending, 1);
    return due - now_ns;
}

/* ---- clients (web thread only; asserted in fanout) ---- */

size_t hub_client_size(void) { return fanout_client_size(); }

int hub_client_open(hub *h, hub_client *c, void *conn)
{
    return h->fo ? fanout_open(h->fo, c, conn) : -1;
}

void hub_client_close(hub *h, hub_client *c)
{
    if (h->fo)
        fanout_close(h->fo, c);
}

void hub_client_receive(hub *h, hub_client *c, const char *in, size_t len, int64_t now_ms)
{
    if (h->fo)
        fanout_receive(h->fo, c, in, len, now_ms);
}

int hub_client_writable(hub *h, hub_client *c)
{
    return h->fo ? fanout_writable(h->fo, c) : -1;
}

/* ---- REST views (web thread only; asserted in live) ---- */

void hub_devices_json(hub *h, sbuf *out) { live_devices_json(h->lv, out); }
int hub_device_json(hub *h, const char *id, sbuf *out) { return live_device_json(h->lv, id, out); }
int hub_device_known(hub *h, const char *id) { return live_find(h->lv, id) != NULL; }
void hub_alarms_json(hub *h, sbuf *out) { live_alarms_json(h->lv, out); }
int hub_alarm_device(hub *h, uint64_t alarm_id, char *id) { return live_alarm_device(h->lv, alarm_id, id); }
int hub_load_alarm(hub *h, hub_msg *m)
{
    int rc = live_apply(h->lv, m);
    hub_msg_unref(m);
    return rc;
}
size_t hub_device_count(hub *h) { return live_count(h->lv); }
