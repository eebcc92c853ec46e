/* ingest — see ingest.h. The loop, in one picture:
 *
 *   poll(mosquitto socket [+POLLOUT when want_write], eventfd)
 *     (held, readhold.h: after a pass that read, only the eventfd for N µs;
 *      by default 1 ms while readings arrive at 3,000/s or more)
 *     socket readable  → mosquitto_loop_read → ingest__on_message → validate →
 *                        store_put_*, hub_post_quiet; hub_kick once per
 *                        read burst (or every INGEST_KICK_EVERY posts); the
 *                        burst reads on while the kernel holds more, asking
 *                        it (FIONREAD) only when the PUBLISH bytes counted
 *                        since its last answer used that up (readburst.h)
 *     socket writable  → mosquitto_loop_write
 *     eventfd          → publish what ingest_publish() queued; check stop
 *     every second     → mosquitto_loop_misc (keepalive)
 *     every 250 ms     → completeness tick: resend requests, timeouts, losses
 *   writes             while holds may happen the client is in libmosquitto's
 *                        "threaded" mode, so nothing it queues (PUBACKs,
 *                        publishes) is written at once: ingest__write sends
 *                        the burst's PUBACKs (every ACK_EVERY mid-burst, then
 *                        at the end of the pass; corked: one segment) after
 *                        their readings were handled. Without it libmosquitto
 *                        writes each packet as it is queued.
 *   completeness         the tracker decides under its lock; what it decided
 *                        (resends, lost ranges) is done here after the lock
 *                        is dropped (ingest__act)
 *   disconnected       → reconnect after a capped exponential backoff with
 *                        jitter; one log line per state change. */
#include "ingest.h"
#include "readburst.h"
#include "readhold.h"
#include "vclock.h"

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "admit.h"
#include "alarm.h"
#include "alarm_wire.h"
#include "cluster.h"
#include "idtable.h"
#include "jsonin.h"
#include "cmdtab.h"
#include "command.h"
#include "config.h"
#include "completeness.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "ring.h"
#include "store.h"
#include "telemetry.h"
#include "topics.h"
#include "tracker.h"
#include "vthread.h"

#define TAG "ingest"
#define PUBQ_CAP 1024         /* publishes waiting for the ingest thread */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define READ_BURST 512        /* PUBLISHes read per wake-up at most (give or take one call) */
#define ACK_EVERY 8           /* PUBACKs held mid-burst at most: well under the broker's window */
#define TICK_MS 250           /* completeness tick period */
#define INGEST_KICK_EVERY 32  /* posts before the web thread is woken mid-burst */
#define TICK_MAX_REQUESTS 64  /* resend requests per tick, on top of the tracker's own rate */
#define CMD_TTL_MS (10 * 60 * 1000) /* an ack later than this answers nothing we still wait for */
#define CMD_DEVICES 4096      /* devices with commands awaiting an ack, at most */
#define CMD_EXPIRE_MS 60000   /* how often expired commands are swept */
#define ALARM_OPS_CAP 256     /* acks / silences waiting for the ingest thread */
#define ALARM_REPUBLISH_MAX 256 /* alarm topics re-published per loop pass after a reconnect */
#define GAIN_SYNC_MS 500      /* buckets gained: wait this long at most for our store queue */

typedef struct pub_req {
    char topic[128];
    char *payload;            /* malloc'ed, owned by the request */
    size_t len;
    int qos, retain;
} pub_req;

struct ingest {
    const vigil_config *cfg;
    store *st;
    hub *hub;
    vigil_metrics *m;
    tracker *trk;             /* may be NULL; see tracker.h for the lock */
    struct mosquitto *mosq;
    pthread_t thread;
    int efd;                  /* wakes the loop: publishes queued, or stop */
    _Atomic int stop;
    _Atomic int connected;
    int started;              /* the thread was spawned (main's) */
    /* publish queue {lock}: ring of pub_req; full → PUBLISH_EFULL */
    vmutex lock;
    ring pubq;
    /* ingest thread only {owner} */
    thread_owner owner;
    completeness_actions act; /* the tracker's last decisions, carried out by ingest__act */
    int socket_up;            /* TCP connected (CONNACK may still be pending) */
    int acks_owed;            /* QoS 1 messages read since the last write: their PUBACKs wait */
    readhold hold;            /* --ingest-hold-us: when the next read waits (readhold.h) */
    readburst burst;          /* whether the read burst must ask FIONREAD (readburst.h) */
    int batching;             /* the client is in "threaded" mode: PUBACKs queued, sent by ingest__write */
    int corked;               /* TCP_CORK is on for this connection (batching): ingest__write pushes */
    int64_t next_connect_ms;
    int backoff_ms;
    int failed_attempts;      /* connection attempts since the last success */
    char last_why[256];       /* reason last logged for this outage */
    char lib_err[200];        /* last error libmosquitto logged (e.g. OpenSSL's) */
    uint32_t rng;
    log_ratelimit reject_rl;
    log_ratelimit lost_rl;
    char nonce[24];           /* this process's resend cmd_id prefix: stale acks never match */
    int64_t next_tick_ms;
    admit *adm;               /* which device ids are accepted (main loads, then ingest thread) */
    cmdtab cmds;              /* commands sent, awaiting their ack */
    int64_t next_cmd_expire_ms;
    /* alarms: the engine and its scratch event list {owner}; the ops queue
     * {lock}: ring of vigil_alarm_op, full -> submit answers -1 */
    alarm_engine *alarms;
    alarm_events aev;
    ring alarmq;
    idtable alarm_unsent;     /* ids whose alarms/esp32/{id} is not on the broker yet {owner} */
    int hub_owed;             /* posts since the last hub_kick {owner} */
    log_ratelimit alarm_rl;
    /* several instances (cluster.h). The port's "queue" is coalesced per
     * bucket and cannot fill: the latest wanted state plus a change count
     * per bucket (written by the cluster thread), applied by the ingest
     * thread on its next pass — a lose-and-regain in between shows as a
     * changed count and is applied as both. */
    int clustered;            /* 0: one instance, every device is ours */
    _Atomic uint64_t bucket_want;
    _Atomic uint32_t bucket_gen[CLUSTER_BUCKETS];
    _Atomic int bucket_dirty;
    _Atomic int cluster_up;   /* the cluster's session is up (port, cluster thread) */
    int session_up;           /* {owner}: cluster_up as of the last bucket changes applied */
    uint32_t bucket_seen[CLUSTER_BUCKETS]; /* {owner} */
    uint64_t owned;           /* {owner}: buckets whose state this ingest has loaded */
    idtable remote_alarms;    /* {owner}: devices we do not own: their alarms as the owner said */
};

typedef struct ingest__unsent { char id[TELEMETRY_ID_MAX + 1]; } ingest__unsent;

/* A device another instance owns: the alarms its retained alarm topic
 * listed last, enough to tell the hub which ones have cleared since. */
typedef struct ingest__remote {
    char id[TELEMETRY_ID_MAX + 1];
    uint8_t n;
    struct { uint64_t alarm_id; uint8_t condition, priority; int64_t started_at; } a[ALARM_COND_COUNT];
} ingest__remote;
static const void *ingest__remote_key(const void *e) { return ((const ingest__remote *)e)->id; }
static const idtable_type ingest__remote_type = {sizeof(ingest__remote), ingest__remote_key,
                                                 idtable_hash_str, idtable_equal_str};

/* Is this device's ordered stream ours (store, completeness, alarms)? */
static inline int ingest__owns(const ingest *in, const char *id)
{
    return !in->clustered || (in->owned & cluster_bit(cluster_bucket_of(id)));
}

/* Store it? The owner does; and so does everyone while the cluster's
 * session is down (nobody may own it then — a database outage — and the
 * store is idempotent on (device, boot, seq): a second copy is a no-op),
 * so the store queue holds an outage as with one vigild. */
static inline int ingest__stores(const ingest *in, int mine)
{
    return mine || !in->session_up;
}
static const void *ingest__unsent_key(const void *e) { return ((const ingest__unsent *)e)->id; }
static const idtable_type ingest__unsent_type = {sizeof(ingest__unsent), ingest__unsent_key,
                                                 idtable_hash_str, idtable_equal_str};

static void ingest__alarm_act(ingest *in);

/* Wakes the web thread for what was posted since the last kick. */
static void ingest__kick(ingest *in)
{
    if (in->hub_owed) {
        in->hub_owed = 0;
        hub_kick(in->hub);
    }
}

/* Hands m to the hub; the web thread is woken once per read burst
 * (ingest__main) or every INGEST_KICK_EVERY posts, not once per message:
 * its drain passes, and so the frames it writes, get bigger. */
static void ingest__post(ingest *in, hub_msg *m)
{
    THREAD_ASSERT_OWNER(&in->owner);
    hub_post_quiet(in->hub, m);
    if (++in->hub_owed >= INGEST_KICK_EVERY)
        ingest__kick(in);
}
static void ingest__alarm_err(ingest *in, alarm_err e, const char *id);

static void ingest__reject(ingest *in, telemetry_reason r, const char *topic, const char *detail)
{
    atomic_fetch_add_explicit(&in->m->rejected[r], 1, memory_order_relaxed);
    uint64_t suppressed = 0;
    if (log_ratelimit_ok(&in->reject_rl, vclock_mono_ms(), &suppressed))
        LOG_W(TAG, "rejected %s on '%.128s': %s%s (%" PRIu64 " similar lines suppressed)",
              telemetry_reason_name(r), topic, detail && *detail ? detail : "-", "", suppressed);
}

/* A message from id passed validation: is the id one vigild accepts? New
 * ids are admitted within --max-devices and --new-devices-per-s; known ids
 * always (admit.h). Checked before anything is stored, tracked or posted. */
static int ingest__admitted(ingest *in, const char *id, const char *topic)
{
    admit_result a = admit_check(in->adm, id, vclock_mono_ms());
    if (a == ADMIT_KNOWN || a == ADMIT_NEW)
        return 1;
    char d[96];
    snprintf(d, sizeof d, "new device refused: %zu known (max %d), at most %d new per second",
             admit_count(in->adm), in->cfg->max_devices, in->cfg->new_devices_per_s);
    ingest__reject(in, a == ADMIT_RATE ? TELEMETRY_NEW_DEVICE_RATE : TELEMETRY_DEVICE_CAP, topic,
                   a == ADMIT_ENOMEM ? "out of memory" : d);
    return 0;
}

/* ---- completeness: the tracker's decisions, carried out here ---- */

/* Publishes one resend command. Returns 0 if it went out. */
static int ingest__publish_resend(ingest *in, const completeness_request *q)
{
    if (!atomic_load(&in->connected))
        return -1;
    char topic[TOPICS_BUF_SIZE];
    if (topics_build(TOPICS_CONTROL, q->id, topic, sizeof topic, NULL) != TOPICS_OK)
        return -1;
    sbuf payload;
    sbuf_init(&payload, 0);
    int rc = command_build_resend(in->nonce, q->req_id, q->boot, q->from, q->to, &payload);
    if (rc == 0)
        rc = mosquitto_publish_v5(in->mosq, NULL, topic, (int)payload.len, sbuf_data(&payload), 1,
                                  false, NULL) == MOSQ_ERR_SUCCESS
                 ? 0
                 : -1;
    sbuf_free(&payload);
    if (rc != 0) {
        atomic_fetch_add(&in->m->publish_failed, 1);
        return -1;
    }
    atomic_fetch_add_explicit(&in->m->resend_requests, 1, memory_order_relaxed);
    LOG_D(TAG, "resend %s boot %" PRId64 " seq %" PRId64 "..%" PRId64, q->id, q->boot, q->from,
          q->to);
    return 0;
}

static void ingest__lost_range(ingest *in, const completeness_lost *l)
{
    atomic_fetch_add_explicit(&in->m->readings_lost, (uint64_t)(l->to - l->from + 1),
                              memory_order_relaxed);
    /* Persisted so the loss survives a restart; if even that is refused
     * (queue full) it stays visible until the restart. */
    ingest__alarm_err(in, alarm_on_lost(in->alarms, &in->aev, l->id, l->to - l->from + 1, vclock_wall_ms()),
                      l->id);
    ingest__alarm_act(in);
    const char *why = completeness_reason_name(l->why);
    if (store_put_lost(in->st, l->id, l->boot, l->from, l->to, why, vclock_wall_ms()) != STORE_OK)
        LOG_W(TAG, "lost range of %s not persisted (store queue full)", l->id);
    uint64_t suppressed = 0;
    if (log_ratelimit_ok(&in->lost_rl, vclock_mono_ms(), &suppressed))
        LOG_W(TAG, "%s boot %" PRId64 ": readings %" PRId64 "..%" PRId64
                   " lost (%s) (%" PRIu64 " similar lines suppressed)",
              l->id, l->boot, l->from, l->to, why, suppressed);
}

/* Carries out what the tracker decided: never under its lock, so the web
 * thread's snapshots never wait on a socket, the store queue or a log. */
static void ingest__act(ingest *in, const completeness_actions *a)
{
    THREAD_ASSERT_OWNER(&in->owner);
    tracker_assert_not_held(in->trk);
    if (a->gaps_opened)
        atomic_fetch_add_explicit(&in->m->gaps_detected, a->gaps_opened, memory_order_relaxed);
    for (size_t i = 0; i < a->nrequests; i++) {
        const completeness_request *q = &a->requests[i];
        /* Not counted, asked again later (completeness.h). */
        if (ingest__publish_resend(in, q) != 0)
            tracker_request_failed(in->trk, q->id, q->req_id, vclock_mono_ms());
    }
    for (size_t i = 0; i < a->nlost; i++)
        ingest__lost_range(in, &a->lost[i]);
    if (a->lost_overflow_ranges) {
        /* More lost ranges at once than the decision list holds: counted
         * (model and metric), not persisted — as a refused store_put_lost. */
        atomic_fetch_add_explicit(&in->m->readings_lost, a->lost_overflow_seqs,
                                  memory_order_relaxed);
        LOG_W(TAG, "%" PRIu64 " more lost ranges (%" PRIu64 " readings) not persisted",
              a->lost_overflow_ranges, a->lost_overflow_seqs);
    }
}

/* ---- alarms: the engine's events, carried out here ---- */

/* alarms/esp32/{id} <- {"device_id":..,"alarms":[ALARM...]} (retained,
 * QoS 1). Not connected or refused: remembered, sent after the reconnect. */
static void ingest__alarm_publish(ingest *in, const char *id)
{
    char topic[TOPICS_BUF_SIZE];
    if (topics_build(TOPICS_ALARMS, id, topic, sizeof topic, NULL) != TOPICS_OK)
        return;
    alarm_rec list[ALARM_COND_COUNT];
    size_t n = alarm_list(in->alarms, id, list, ALARM_COND_COUNT);
    sbuf b;
    sbuf_init(&b, 0);
    sbuf_adds(&b, "{\"device_id\":");
    sbuf_add_json_str(&b, id);
    sbuf_adds(&b, ",\"alarms\":[");
    for (size_t i = 0; i < n && i < ALARM_COND_COUNT; i++) {
        char j[ALARM_JSON_MAX];
        size_t len = alarm_json(&list[i], j, sizeof j);
        if (i)
            sbuf_adds(&b, ",");
        sbuf_add(&b, j, len);
    }
    sbuf_adds(&b, "]}");
    int ok = sbuf_ok(&b) && atomic_load(&in->connected) &&
             mosquitto_publish_v5(in->mosq, NULL, topic, (int)b.len, sbuf_data(&b), 1, true, NULL) ==
                 MOSQ_ERR_SUCCESS;
    sbuf_free(&b);
    ingest__unsent u;
    snprintf(u.id, sizeof u.id, "%s", id);
    if (ok)
        idtable_remove(&in->alarm_unsent, u.id, NULL);
    else if (idtable_put(&in->alarm_unsent, &u, NULL) == IDTABLE_EFULL)
        LOG_W(TAG, "alarm topic of %s not published and not remembered (table full)", id);
}

/* After a reconnect: what could not be published, a bounded batch per pass. */
static void ingest__alarm_republish(ingest *in)
{
    if (!idtable_count(&in->alarm_unsent) || !atomic_load(&in->connected))
        return;
    ingest__unsent batch[ALARM_REPUBLISH_MAX];
    size_t n = 0, it = 0;
    ingest__unsent *e;
    while (n < ALARM_REPUBLISH_MAX && (e = idtable_next(&in->alarm_unsent, &it)))
        batch[n++] = *e;
    for (size_t i = 0; i < n; i++)
        ingest__alarm_publish(in, batch[i].id);
}

/* Carries out the engine's events: store (state + history), hub (every
 * WebSocket client, the live model), broker (the device's alarm topic). */
static void ingest__alarm_act(ingest *in)
{
    THREAD_ASSERT_OWNER(&in->owner);
    alarm_events *a = &in->aev;
    if (a->truncated)
        LOG_D(TAG, "alarm tick: event list full, the rest follow at the next tick");
    for (size_t i = 0; i < a->n; i++) {
        const alarm_event *ev = &a->ev[i];
        const alarm_rec *r = &ev->alarm;
        atomic_fetch_add_explicit(&in->m->alarm_events, 1, memory_order_relaxed);
        if (store_put_alarm(in->st, ev) != STORE_OK) {
            uint64_t suppressed = 0;
            if (log_ratelimit_ok(&in->alarm_rl, vclock_mono_ms(), &suppressed))
                LOG_W(TAG, "alarm %" PRIu64 " (%s) %s not persisted (store queue full)", r->alarm_id,
                      r->device_id, alarm_event_name(ev->kind));
        }
        if (ev->kind == ALARM_EV_RAISED)
            LOG_I(TAG, "alarm %" PRIu64 " raised: %s %s (%s)%s", r->alarm_id, r->device_id,
                  alarm_condition_name(r->condition), alarm_priority_name(r->priority),
                  r->retrospective ? " retrospective" : "");
        hub_msg *hm = hub_msg_alarm(r, ev->at);
        if (hm)
            ingest__post(in, hm);
        /* One publish per device per list: later events of it are in it. */
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = !strcmp(a->ev[k].alarm.device_id, r->device_id);
        if (!seen)
            ingest__alarm_publish(in, r->device_id);
    }
    alarm_events_clear(a);
}

static void ingest__alarm_err(ingest *in, alarm_err e, const char *id)
{
    if (e == ALARM_OK)
        return;
    uint64_t suppressed = 0;
    if (log_ratelimit_ok(&in->alarm_rl, vclock_mono_ms(), &suppressed))
        LOG_W(TAG, "alarms of %s not evaluated: %s", id,
              e == ALARM_EFULL ? "alarm device table full (--max-devices)" : "out of memory");
}

/* ---- several instances (cluster.h) ---- */

/* What a device's alarm list became, told to the hub: every listed alarm
 * (the live model replaces it by id), and a cleared copy of every alarm
 * the previous list had that this one lacks. Remembered for next time
 * when keep is set (a device we do not own); forgotten otherwise. */
static void ingest__alarm_sync(ingest *in, const char *id, const alarm_rec *v, size_t n, int keep)
{
    ingest__remote *old = idtable_find(&in->remote_alarms, id);
    int64_t now = vclock_wall_ms();
    for (size_t k = 0; old && k < old->n; k++) {
        int still = 0;
        for (size_t i = 0; i < n && !still; i++)
            still = v[i].alarm_id == old->a[k].alarm_id;
        if (still)
            continue;
        alarm_rec gone = {.alarm_id = old->a[k].alarm_id, .condition = old->a[k].condition,
                          .priority = old->a[k].priority, .state = ALARM_CLEARED,
                          .started_at = old->a[k].started_at, .cleared_at = now};
        snprintf(gone.device_id, sizeof gone.device_id, "%s", id);
        hub_msg *hm = hub_msg_alarm(&gone, now);
        if (hm)
            hub_post(in->hub, hm);
    }
    for (size_t i = 0; i < n; i++) {
        hub_msg *hm = hub_msg_alarm(&v[i], now);
        if (hm)
            hub_post(in->hub, hm);
    }
    if (!keep) {
        idtable_remove(&in->remote_alarms, id, NULL);
        return;
    }
    ingest__remote r = {.n = (uint8_t)(n < ALARM_COND_COUNT ? n : ALARM_COND_COUNT)};
    snprintf(r.id, sizeof r.id, "%s", id);
    for (size_t i = 0; i < r.n; i++) {
        r.a[i].alarm_id = v[i].alarm_id;
        r.a[i].condition = (uint8_t)v[i].condition;
        r.a[i].priority = (uint8_t)v[i].priority;
        r.a[i].started_at = v[i].started_at;
    }
    void *slot = NULL;
    idtable_err e = idtable_put(&in->remote_alarms, &r, &slot);
    if (e == IDTABLE_EEXIST)
        memcpy(slot, &r, sizeof r);
    else if (e != IDTABLE_OK)
        LOG_W(TAG, "alarms of %s not remembered (table full): a later clear may be missed", id);
}

/* alarms/esp32/{id} from the device's owner (retained): for a device we do
 * not own, the hub follows it. Our own, echoed back: ignored. */
static void ingest__remote_alarms(ingest *in, const char *id, const struct mosquitto_message *msg)
{
    if (ingest__owns(in, id))
        return;
    char dev[ALARM_ID_MAX + 1];
    alarm_rec v[ALARM_COND_COUNT];
    size_t n = 0;
    if (msg->payloadlen == 0) { /* cleared topic: nothing open */
        ingest__alarm_sync(in, id, v, 0, 1);
        return;
    }
    if (alarm_wire_parse_list(msg->payload, (size_t)msg->payloadlen, dev, v, &n) != ALARM_OK ||
        strcmp(dev, id) != 0) {
        ingest__reject(in, TELEMETRY_MALFORMED_JSON, msg->topic, "alarm list refused");
        return;
    }
    ingest__alarm_sync(in, id, v, n, 1);
}

typedef struct ingest__mask { uint64_t mask; } ingest__mask;

static int ingest__in_mask(void *ctx, const char *id)
{
    return (((const ingest__mask *)ctx)->mask & cluster_bit(cluster_bucket_of(id))) != 0;
}

/* Buckets lost: their devices' tracker and alarm state go (the new owner
 * rebuilds them from the store). Their alarms as we last had them become
 * the remote view, so the new owner's list is compared with it. */
static void ingest__buckets_lost(ingest *in, uint64_t mask)
{
    ingest__mask m = {mask};
    size_t cap = alarm_list(in->alarms, NULL, NULL, 0);
    alarm_rec *v = cap ? malloc(cap * sizeof *v) : NULL;
    size_t n = v ? alarm_list(in->alarms, NULL, v, cap) : 0;
    for (size_t i = 0; i < n && i < cap; i++) {
        if (!ingest__in_mask(&m, v[i].device_id))
            continue;
        ingest__remote *r = idtable_find(&in->remote_alarms, v[i].device_id);
        if (!r) {
            ingest__remote e = {0};
            snprintf(e.id, sizeof e.id, "%s", v[i].device_id);
            if (idtable_put(&in->remote_alarms, &e, (void **)&r) != IDTABLE_OK)
                continue;
        }
        if (r->n < ALARM_COND_COUNT) {
            r->a[r->n].alarm_id = v[i].alarm_id;
            r->a[r->n].condition = (uint8_t)v[i].condition;
            r->a[r->n].priority = (uint8_t)v[i].priority;
            r->a[r->n].started_at = v[i].started_at;
            r->n++;
        }
    }
    free(v);
    size_t na = alarm_forget_if(in->alarms, ingest__in_mask, &m);
    size_t nt = in->trk ? tracker_forget_if(in->trk, ingest__in_mask, &m) : 0;
    /* Not ours to publish any more: the new owner's list is the truth. */
    ingest__unsent *u;
    size_t it = 0, nu = 0;
    ingest__unsent drop[ALARM_REPUBLISH_MAX];
    while (nu < ALARM_REPUBLISH_MAX && (u = idtable_next(&in->alarm_unsent, &it)))
        if (ingest__in_mask(&m, u->id))
            drop[nu++] = *u;
    for (size_t i = 0; i < nu; i++)
        idtable_remove(&in->alarm_unsent, drop[i].id, NULL);
    LOG_I(TAG, "%u buckets handed over: %zu devices' alarms, %zu devices' completeness dropped",
          cluster_popcount(mask), na, nt);
}

typedef struct ingest__gain { ingest *in; ingest__mask m; } ingest__gain;

/* Only the gained devices: a device we already own may have newer
 * settings in our engine than the store has committed. */
static void ingest__settings_one(void *ctx, const char *id, const alarm_settings *s)
{
    ingest__gain *g = ctx;
    if (ingest__in_mask(&g->m, id))
        ingest__alarm_err(g->in, alarm_set_settings(g->in->alarms, id, s), id);
}

/* Buckets gained: completeness from the store (the gap check then asks
 * for what the previous owner never stored), open alarms and settings;
 * then our alarm list for each device is published, so every instance's
 * hub agrees with the new owner. in->owned already includes mask. */
static void ingest__buckets_gained(ingest *in, uint64_t mask)
{
    ingest__mask m = {mask};
    int64_t t0 = vclock_mono_ms();
    /* What our own queue still holds (stored while nobody owned it, during
     * an outage) should count as stored, not be asked for again: a short,
     * bounded wait — past it the resends cover it, the store dedupes. */
    if (store_sync(in->st, GAIN_SYNC_MS) != STORE_OK)
        LOG_D(TAG, "store queue not drained within %d ms of a takeover", GAIN_SYNC_MS);
    if (in->trk && tracker_load_if(in->trk, in->st, ingest__in_mask, &m, t0) != 0)
        LOG_W(TAG, "completeness of %u gained buckets not loaded (store read failed): "
                   "gaps from before the takeover are not asked for",
              cluster_popcount(mask));
    alarm_rec *v = NULL;
    size_t n = 0;
    if (store_load_open_alarms(in->st, &v, &n) != STORE_OK) {
        LOG_W(TAG, "open alarms of %u gained buckets not loaded (store read failed)", cluster_popcount(mask));
        n = 0;
    }
    size_t restored = 0;
    for (size_t i = 0; i < n; i++)
        if (ingest__in_mask(&m, v[i].device_id) &&
            alarm_restore(in->alarms, &v[i], vclock_wall_ms()) == ALARM_OK)
            restored++;
    free(v);
    ingest__gain g = {in, m};
    if (store_load_alarm_settings(in->st, ingest__settings_one, &g) != STORE_OK)
        LOG_W(TAG, "alarm settings of %u gained buckets not loaded (store read failed)", cluster_popcount(mask));
    /* Devices with a remote view or open alarms: our list replaces it. */
    ingest__remote *r;
    size_t it = 0, k = 0;
    char (*ids)[TELEMETRY_ID_MAX + 1] = malloc((idtable_count(&in->remote_alarms) + 1) * sizeof *ids);
    while (ids && (r = idtable_next(&in->remote_alarms, &it)))
        if (ingest__in_mask(&m, r->id))
            snprintf(ids[k++], sizeof ids[0], "%s", r->id);
    for (size_t i = 0; i < k; i++) {
        alarm_rec list[ALARM_COND_COUNT];
        size_t ln = alarm_list(in->alarms, ids[i], list, ALARM_COND_COUNT);
        ingest__alarm_sync(in, ids[i], list, ln < ALARM_COND_COUNT ? ln : ALARM_COND_COUNT, 0);
        ingest__alarm_publish(in, ids[i]);
    }
    free(ids);
    LOG_I(TAG, "%u buckets taken over in %lld ms: %zu open alarms restored", cluster_popcount(mask),
          (long long)(vclock_mono_ms() - t0), restored);
}

/* The cluster thread's changes, applied on the ingest thread. */
static void ingest__apply_buckets(ingest *in)
{
    THREAD_ASSERT_OWNER(&in->owner);
    if (!in->clustered || !atomic_exchange(&in->bucket_dirty, 0))
        return;
    /* "up" read first: the gains it follows are then all visible below. */
    int up = atomic_load(&in->cluster_up);
    uint64_t want = atomic_load(&in->bucket_want), lose = 0, gain = 0;
    for (unsigned b = 0; b < CLUSTER_BUCKETS; b++) {
        uint32_t g = atomic_load(&in->bucket_gen[b]);
        int changed = g != in->bucket_seen[b];
        in->bucket_seen[b] = g;
        uint64_t bit = cluster_bit(b);
        if ((in->owned & bit) && (!(want & bit) || changed))
            lose |= bit;
        if ((want & bit) && (!(in->owned & bit) || changed))
            gain |= bit;
    }
    if (lose) {
        in->owned &= ~lose;
        ingest__buckets_lost(in, lose);
    }
    if (gain) {
        in->owned |= gain;
        ingest__buckets_gained(in, gain);
    }
    /* The port tells the gains before "up" and the losses before "down". */
    in->session_up = up;
}

/* An alarm operation for a device this instance does not own: to its
 * owner (vigil/cluster/alarm-ops, QoS 1). Not connected: dropped and said
 * so (the operator sees the alarm unchanged and tries again). */
static void ingest__alarm_forward(ingest *in, const vigil_alarm_op *op)
{
    char buf[ALARM_WIRE_OP_MAX];
    size_t n = alarm_wire_build_op(op, vclock_wall_ms(), buf, sizeof buf);
    if (!n || !atomic_load(&in->connected) ||
        mosquitto_publish_v5(in->mosq, NULL, CLUSTER_ALARM_OPS_TOPIC, (int)n, buf, 1, false, NULL) !=
            MOSQ_ERR_SUCCESS) {
        atomic_fetch_add(&in->m->publish_failed, 1);
        LOG_W(TAG, "alarm operation for %s not forwarded to its owner (broker away)", op->device_id);
    }
}

/* Whose is an operation: the device's owner applies it. An ack/pause
 * names its alarm; its device comes from the op or our engine. */
static int ingest__op_is_mine(ingest *in, const vigil_alarm_op *op)
{
    if (!in->clustered)
        return 1;
    if (op->device_id[0])
        return ingest__owns(in, op->device_id);
    return alarm_find(in->alarms, op->alarm_id, NULL) == 0;
}

static void ingest__alarm_apply(ingest *in, vigil_alarm_op *op);

/* vigil/cluster/alarm-ops from another instance (or our own, echoed). */
static void ingest__remote_op(ingest *in, const struct mosquitto_message *msg)
{
    vigil_alarm_op op;
    if (alarm_wire_parse_op(msg->payload, (size_t)msg->payloadlen, &op) != ALARM_OK) {
        ingest__reject(in, TELEMETRY_MALFORMED_JSON, msg->topic, "alarm operation refused");
        return;
    }
    if (op.device_id[0] && ingest__owns(in, op.device_id))
        ingest__alarm_apply(in, &op);
    else
        free(op.settings);
}

/* Acks and pauses the web thread queued (ports.h). */
static void ingest__alarm_ops(ingest *in)
{
    THREAD_ASSERT_OWNER(&in->owner);
    for (int i = 0; i < ALARM_OPS_CAP; i++) {
        vigil_alarm_op op;
        vmutex_lock(&in->lock);
        ring_err e = ring_pop_copy(&in->alarmq, &op);
        vmutex_unlock(&in->lock);
        if (e != RING_OK)
            return;
        if (ingest__op_is_mine(in, &op))
            ingest__alarm_apply(in, &op);
        else {
            ingest__alarm_forward(in, &op);
            free(op.settings);
        }
    }
}

/* One operation on our engine; frees its settings. */
static void ingest__alarm_apply(ingest *in, vigil_alarm_op *op)
{
    int64_t now = vclock_wall_ms();
    if (op->kind == VIGIL_ALARM_SETTINGS) {
        alarm_err r = alarm_set_settings(in->alarms, op->device_id, op->settings);
        free(op->settings);
        op->settings = NULL;
        ingest__alarm_err(in, r, op->device_id);
        return;
    }
    alarm_err r = op->kind == VIGIL_ALARM_ACK
                      ? alarm_ack(in->alarms, &in->aev, op->alarm_id, op->user, now)
                      : alarm_silence(in->alarms, &in->aev, op->alarm_id, op->seconds, op->user, now);
    if (r != ALARM_OK)
        LOG_D(TAG, "alarm %llu: %s by %s not applied (cleared meanwhile?)", op->alarm_id,
              op->kind == VIGIL_ALARM_ACK ? "ack" : "silence", op->user);
    ingest__alarm_act(in);
}

static void ingest__tick(ingest *in, int64_t now)
{
    THREAD_ASSERT_OWNER(&in->owner);
    /* Time-based alarm conditions: stale, offline delay, data_lost expiry,
     * escalation, audio-pause end (wall clock: they are about people). */
    alarm_tick(in->alarms, &in->aev, vclock_wall_ms());
    ingest__alarm_act(in);
    if (!in->trk)
        return;
    store_stats ss;
    store_get_stats(in->st, &ss);
    /* No requests while the broker is away or the store is congested: the
     * answers would only be refused again. Deadlines still run. */
    int can = atomic_load(&in->connected) && ss.queue_depth * 2 < ss.queue_capacity;
    tracker_tick(in->trk, now, can, TICK_MAX_REQUESTS, &in->act);
    ingest__act(in, &in->act);
}

/* A resend ack (cmd_id carries our nonce): feeds the tracker. Anything odd
 * is ignored (the request then times out). */
static void ingest__resend_ack(ingest *in, const char *id, const struct mosquitto_message *msg)
{
    command_resend_ack ack;
    if (command_parse_resend_ack(msg->payload, (size_t)msg->payloadlen, in->nonce, &ack) !=
        COMMAND_ACK_RESEND)
        return;
    tracker_on_ack(in->trk, id, ack.req_id, ack.ok, ack.permanent, ack.sent, ack.missing,
                   vclock_mono_ms(), &in->act);
    ingest__act(in, &in->act);
}

static void ingest__handle_data(ingest *in, const char *id, const char *topic,
                        const struct mosquitto_message *msg, uint64_t t_ns)
{
    THREAD_ASSERT_OWNER(&in->owner);
    telemetry_reading r;
    char detail[160] = "";
    telemetry_reason why = telemetry_parse_data(id, msg->payload, (size_t)msg->payloadlen,
                                                (size_t)in->cfg->max_payload, &r, detail,
                                                sizeof detail);
    if (why != TELEMETRY_OK) {
        ingest__reject(in, why, topic, detail);
        return;
    }
    if (!ingest__admitted(in, id, topic))
        return;
    r.received_ms = vclock_wall_ms();
    atomic_fetch_add_explicit(&in->m->accepted_data, 1, memory_order_relaxed);
    /* Every instance fans out every reading; only the owner stores,
     * tracks and evaluates it (cluster.h). */
    int mine = ingest__owns(in, id);
    store_err se = ingest__stores(in, mine) ? store_put_reading(in->st, &r) : STORE_OK;
    if (mine && in->trk && (r.present & TELEMETRY_HAS_SEQ)) {
        /* Only what the store accepted counts as received. A reading the
         * queue refused (counted there as dropped_full) still goes live, and
         * becomes a pending gap that is asked for again once the store has
         * room: it is never silently absent. */
        int64_t boot = (r.present & TELEMETRY_HAS_BOOT) ? r.boot : 0;
        if (tracker_on_reading(in->trk, id, boot, r.seq, se == STORE_OK, vclock_mono_ms(),
                               &in->act) == COMPLETENESS_REFILLED)
            atomic_fetch_add_explicit(&in->m->readings_refilled, 1, memory_order_relaxed);
        ingest__act(in, &in->act);
    }
    /* Evaluated first so the reading carries its partial NEWS2; the events
     * are acted on after the post, so a client sees the value before its alarm.
     * Only by the device's owner (cluster.h): elsewhere the live reading goes
     * without its NEWS2 member. */
    if (mine)
        ingest__alarm_err(in, alarm_on_reading(in->alarms, &in->aev, &r, r.received_ms), id);
    char json[2048];
    size_t len = telemetry_reading_json(&r, json, sizeof json), n2off = 0, n2len = 0;
    if (!len)
        LOG_E(TAG, "reading of %s too large to serialize", id);
    if (mine && len && in->aev.has_news2) {
        size_t grown = alarm_news2_append(&in->aev.news2, json, len, sizeof json, &n2off);
        n2len = grown ? grown - 1 - n2off : 0; /* the member, without the object's '}' */
        len = grown ? grown : len;
    }
    hub_msg *hm = len ? hub_msg_new(HUB_SENSOR_DATA, id, json, len) : NULL;
    if (hm) {
        hm->ingest_ns = t_ns;
        hm->received_ms = r.received_ms;
        hm->news2_off = n2len ? hm->data_off + n2off : 0;
        hm->news2_len = n2len;
        ingest__post(in, hm);
    }
    ingest__alarm_act(in);
}

static void ingest__handle_status(ingest *in, const char *id, const char *topic,
                          const struct mosquitto_message *msg, uint64_t t_ns)
{
    THREAD_ASSERT_OWNER(&in->owner);
    telemetry_status s;
    char detail[160] = "";
    if (msg->payloadlen == 0)
        return; /* a cleared retained status: nothing to record */
    telemetry_reason why = telemetry_parse_status(id, msg->payload, (size_t)msg->payloadlen,
                                                  (size_t)in->cfg->max_payload, &s, detail,
                                                  sizeof detail);
    if (why != TELEMETRY_OK) {
        ingest__reject(in, why, topic, detail);
        return;
    }
    if (!ingest__admitted(in, id, topic))
        return;
    s.received_ms = vclock_wall_ms();
    atomic_fetch_add_explicit(&in->m->accepted_status, 1, memory_order_relaxed);
    /* The live model always; the store, completeness and alarms: the owner. */
    int mine = ingest__owns(in, id);
    if (ingest__stores(in, mine))
        store_put_status(in->st, &s);
    if (mine && in->trk && (s.present & TELEMETRY_STATUS_HAS_PREV)) {
        /* A power cut ended the previous boot before its outbox wrote the
         * last readings: expect its seqs up to prev_last_seq, so those
         * that never come are asked for and marked lost, not unseen. */
        int rc = tracker_on_boot_end(in->trk, id, s.prev_boot, s.prev_last_seq, vclock_mono_ms(),
                                     &in->act);
        if (rc > 0)
            LOG_W(TAG, "%s: boot %lld ended without flushing; expecting seqs up to %lld", id,
                  (long long)s.prev_boot, (long long)s.prev_last_seq);
        else if (rc < 0)
            LOG_W(TAG, "%s: end of boot %lld at seq %lld not tracked (out of range)", id,
                  (long long)s.prev_boot, (long long)s.prev_last_seq);
        ingest__act(in, &in->act);
    }
    if (mine) {
        ingest__alarm_err(in, alarm_on_status(in->alarms, &in->aev, id, s.online,
                                              (s.present & TELEMETRY_STATUS_HAS_INTERVAL) ? s.interval_ms : 0,
                                              s.received_ms),
                          id);
        ingest__alarm_act(in);
    }
    char json[512];
    size_t len = telemetry_status_json(&s, json, sizeof json);
    hub_msg *hm = len ? hub_msg_new(HUB_DEVICE_STATUS, id, json, len) : NULL;
    if (!hm)
        return;
    hm->ingest_ns = t_ns;
    hm->received_ms = s.received_ms;
    hm->status = s;
    ingest__post(in, hm);
}

static void ingest__handle_ack(ingest *in, const char *id, const char *topic,
                       const struct mosquitto_message *msg, uint64_t t_ns)
{
    THREAD_ASSERT_OWNER(&in->owner);
    char err[160];
    char cmd_id[COMMAND_ID_MAX + 1];
    sbuf data;
    sbuf_init(&data, 0);
    int64_t now = vclock_wall_ms();
    int why = command_parse_ack(id, msg->payload ? msg->payload : "", (size_t)msg->payloadlen,
                                (size_t)in->cfg->max_payload, now, &data, cmd_id, err, sizeof err);
    size_t nl = strlen(in->nonce);
    if (why == TELEMETRY_OK && cmd_id[0] && strncmp(cmd_id, in->nonce, nl) != 0 &&
        !cmdtab_match(&in->cmds, id, cmd_id, vclock_mono_ms())) {
        /* Not an answer to anything we sent that device (or too late):
         * a device must not invent results of commands nobody gave. Our
         * resend commands are matched by the tracker (nonce, req_id); a
         * config ack (cfg_id only) answers a retained config, which the
         * device re-applies, and re-acks, on every connect. */
        why = TELEMETRY_UNKNOWN_COMMAND;
        snprintf(err, sizeof err, "no command '%.64s' awaiting an ack", cmd_id);
    }
    if (why == TELEMETRY_UNKNOWN_COMMAND && in->clustered) {
        /* Every instance sees every ack: one to another instance's command
         * is not ours to accept nor to refuse. */
        LOG_D(TAG, "ack of %s for '%.64s': not a command of this instance", id, cmd_id);
        sbuf_free(&data);
        return;
    }
    if (why != TELEMETRY_OK) {
        ingest__reject(in, (telemetry_reason)why, topic, err);
        sbuf_free(&data);
        return;
    }
    if (in->trk && cmd_id[0] && !strncmp(cmd_id, in->nonce, nl) && ingest__owns(in, id))
        ingest__resend_ack(in, id, msg);
    hub_msg *hm = hub_msg_new(HUB_COMMAND_RESULT, id, sbuf_data(&data), data.len);
    sbuf_free(&data);
    if (!hm)
        return;
    hm->ingest_ns = t_ns;
    hm->received_ms = now;
    ingest__post(in, hm);
}

/* The topics only several instances use: 1 if msg was one of them. */
static int ingest__cluster_message(ingest *in, const char *topic, const struct mosquitto_message *msg)
{
    if (!strcmp(topic, CLUSTER_ALARM_OPS_TOPIC)) {
        if ((size_t)msg->payloadlen <= (size_t)in->cfg->max_payload)
            ingest__remote_op(in, msg);
        return 1;
    }
    char id[TELEMETRY_ID_MAX + 1];
    topics_kind k;
    if (topics_parse(topic, strlen(topic), id, &k) != TOPICS_OK || k != TOPICS_ALARMS)
        return 0;
    ingest__remote_alarms(in, id, msg);
    return 1;
}

static void ingest__on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    (void)mosq;
    ingest *in = obj;
    THREAD_ASSERT_OWNER(&in->owner);
    if (msg->qos > 0)
        in->acks_owed++; /* libmosquitto queued its PUBACK before calling us */
    const char *topic = msg->topic ? msg->topic : "";
    size_t topic_len = strlen(topic);
    /* Its size on the wire, for the read burst's count (properties: not told). */
    readburst_publish(&in->burst, props ? 0
                                        : readburst_publish_size(in->cfg->mqtt_version, topic_len,
                                                                 msg->qos, 0, (size_t)msg->payloadlen));
    uint64_t t_ns = vclock_mono_ns();
    char id[TELEMETRY_ID_MAX + 1];
    telemetry_kind kind;
    if (in->clustered && ingest__cluster_message(in, topic, msg))
        return;
    if (telemetry_parse_topic(topic, topic_len, id, &kind) != TELEMETRY_OK) {
        atomic_fetch_add_explicit(&in->m->received_other, 1, memory_order_relaxed);
        ingest__reject(in, TELEMETRY_BAD_TOPIC, topic, "expected sensors/esp32/{id}/data|status|ack");
        return;
    }
    if ((size_t)msg->payloadlen > (size_t)in->cfg->max_payload) {
        /* Checked before any parsing, for every kind. */
        atomic_fetch_add_explicit(kind == TELEMETRY_KIND_DATA ? &in->m->received_data
                                  : kind == TELEMETRY_KIND_STATUS ? &in->m->received_status
                                                                  : &in->m->received_ack,
                                  1, memory_order_relaxed);
        char d[64];
        snprintf(d, sizeof d, "%d bytes > %d", msg->payloadlen, in->cfg->max_payload);
        ingest__reject(in, TELEMETRY_OVERSIZE, topic, d);
        return;
    }
    switch (kind) {
    case TELEMETRY_KIND_DATA:
        atomic_fetch_add_explicit(&in->m->received_data, 1, memory_order_relaxed);
        ingest__handle_data(in, id, topic, msg, t_ns);
        break;
    case TELEMETRY_KIND_STATUS:
        atomic_fetch_add_explicit(&in->m->received_status, 1, memory_order_relaxed);
        ingest__handle_status(in, id, topic, msg, t_ns);
        break;
    case TELEMETRY_KIND_ACK:
        atomic_fetch_add_explicit(&in->m->received_ack, 1, memory_order_relaxed);
        ingest__handle_ack(in, id, topic, msg, t_ns);
        break;
    }
}

static void ingest__on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)props;
    ingest *in = obj;
    THREAD_ASSERT_OWNER(&in->owner);
    if (rc != 0) {
        LOG_E(TAG, "broker %s refused the connection: %s", in->cfg->broker,
              in->cfg->mqtt_version == 5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
        return; /* the broker closes the socket; the loop backs off */
    }
    char *const subs[TOPICS_SUBSCRIPTION_COUNT] = TOPICS_SUBSCRIPTIONS;
    int src = mosquitto_subscribe_multiple(mosq, NULL, TOPICS_SUBSCRIPTION_COUNT, subs, 1, 0, NULL);
    if (src == MOSQ_ERR_SUCCESS && in->clustered) {
        /* The owners' alarm lists (retained) and forwarded alarm operations. */
        char *const csubs[2] = {TOPICS_ALARMS_PREFIX "+", CLUSTER_ALARM_OPS_TOPIC};
        src = mosquitto_subscribe_multiple(mosq, NULL, 2, csubs, 1, 0, NULL);
    }
    if (src != MOSQ_ERR_SUCCESS) {
        LOG_E(TAG, "subscribe failed: %s", mosquitto_strerror(src));
        mosquitto_disconnect(mosq);
        return;
    }
    atomic_store(&in->connected, 1);
    atomic_store(&in->m->mqtt_connected, 1);
    atomic_fetch_add(&in->m->mqtt_connects, 1);
    in->backoff_ms = 0;
    LOG_I(TAG, "connected to %s (session %s)%s", in->cfg->broker,
          (flags & 1) ? "resumed: queued readings follow" : "new",
          in->failed_attempts ? " after an outage" : "");
    in->failed_attempts = 0;
    in->last_why[0] = 0;
    /* libmosquitto formats a debug line for every PUBLISH read and every
     * PUBACK sent whenever a log callback is set (a malloc, a vsnprintf and
     * a free each: ~5,000 instructions, ~16 % of the ingest thread's own
     * work per reading, docs/BENCHMARKS.md "ingest thread, third pass"),
     * and we keep only its errors, which name why a connect failed. So no
     * callback while connected; ingest__on_disconnect sets it again before
     * the next attempt. What is lost: libmosquitto's own line for an error
     * that ends a session (the outage line still gives its code). */
    mosquitto_log_callback_set(mosq, NULL);
}

static void ingest__on_log(struct mosquitto *mosq, void *obj, int level, const char *str);

static void ingest__on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *p)
{
    (void)p;
    ingest *in = obj;
    mosquitto_log_callback_set(mosq, ingest__on_log); /* for the reconnects (ingest__on_connect) */
    if (atomic_exchange(&in->connected, 0)) {
        atomic_store(&in->m->mqtt_connected, 0);
        atomic_fetch_add(&in->m->mqtt_disconnects, 1);
        if (!atomic_load(&in->stop))
            LOG_W(TAG, "disconnected from %s: %s", in->cfg->broker, mosquitto_strerror(rc));
    }
}

/* libmosquitto's own error lines (TLS verification, for one) carry the
 * real reason of a failed connect; keep the last one for the outage line. */
static void ingest__on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    (void)mosq;
    ingest *in = obj;
    if (level & MOSQ_LOG_ERR) {
        snprintf(in->lib_err, sizeof in->lib_err, "%s", str);
        LOG_D(TAG, "libmosquitto: %s", str);
    }
}

static void ingest__schedule_reconnect(ingest *in, const char *why)
{
    THREAD_ASSERT_OWNER(&in->owner);
    in->socket_up = 0;
    in->corked = 0; /* a new connection starts uncorked */
    int b = in->backoff_ms ? in->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (b > BACKOFF_MAX_MS)
        b = BACKOFF_MAX_MS;
    in->backoff_ms = b;
    /* Full jitter over [b/2, b]: many vigild replicas (or a restart storm)
     * do not hit the broker in lockstep. */
    in->rng = in->rng * 1103515245u + 12345u;
    int delay = b / 2 + (int)((in->rng >> 8) % (uint32_t)(b / 2 + 1));
    in->next_connect_ms = vclock_mono_ms() + delay;
    if (!why)
        return;
    in->failed_attempts++;
    char reason[sizeof in->last_why];
    snprintf(reason, sizeof reason, "%s%s%s", why, in->lib_err[0] ? ": " : "", in->lib_err);
    in->lib_err[0] = 0;
    /* One line per outage (and per change of reason), not one per retry. */
    if (strcmp(reason, in->last_why) != 0) {
        LOG_W(TAG, "broker %s unreachable (%s); retrying with backoff up to %d s", in->cfg->broker,
              reason, BACKOFF_MAX_MS / 1000);
        snprintf(in->last_why, sizeof in->last_why, "%s", reason);
    } else
        LOG_D(TAG, "broker %s still unreachable after %d attempts; next in %d ms", in->cfg->broker,
              in->failed_attempts, delay);
}

static void ingest__try_connect(ingest *in)
{
    THREAD_ASSERT_OWNER(&in->owner);
    mosquitto_property *props = NULL;
    if (in->cfg->mqtt_version == 5 && in->cfg->session_expiry_s > 0)
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                     (uint32_t)in->cfg->session_expiry_s);
    int rc = mosquitto_connect_bind_v5(in->mosq, in->cfg->broker_host, in->cfg->broker_port,
                                       in->cfg->keepalive_s, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS) {
        ingest__schedule_reconnect(in, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return;
    }
    in->socket_up = 1;
}

/* A command went out on a control topic: remember its cmd_id (the payload
 * is ours, built by command.c), so that only its ack is accepted. */
static void ingest__record_command(ingest *in, const pub_req *r)
{
    char id[TELEMETRY_ID_MAX + 1];
    topics_kind kind;
    if (topics_parse(r->topic, strlen(r->topic), id, &kind) != TOPICS_OK || kind != TOPICS_CONTROL)
        return;
    cJSON *j = jsonin_parse(r->payload, r->len, NULL);
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(j, "cmd_id");
    if (!cJSON_IsString(cid) || cmdtab_record(&in->cmds, id, cid->valuestring, vclock_mono_ms()) != 0)
        LOG_W(TAG, "command to %s not recorded (table of %d devices full?): its ack will be refused",
              id, CMD_DEVICES);
    cJSON_Delete(j);
}

static void ingest__flush_publishes(ingest *in)
{
    THREAD_ASSERT_OWNER(&in->owner);
    for (;;) {
        pub_req r;
        vmutex_lock(&in->lock);
        ring_err e = ring_pop_copy(&in->pubq, &r);
        vmutex_unlock(&in->lock);
        if (e != RING_OK)
            return;
        int rc = mosquitto_publish_v5(in->mosq, NULL, r.topic, (int)r.len, r.payload, r.qos,
                                      r.retain != 0, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            atomic_fetch_add(&in->m->publish_failed, 1);
            LOG_E(TAG, "publish to %s failed: %s", r.topic, mosquitto_strerror(rc));
        } else
            ingest__record_command(in, &r);
        free(r.payload);
    }
}

static void ingest__cork(int sock, int on)
{
    /* Only a hint: a socket that refuses it still sends, one segment per packet. */
    if (setsockopt(sock, IPPROTO_TCP, TCP_CORK, &on, sizeof on) != 0)
        LOG_D(TAG, "TCP_CORK %d: %s", on, strerror(errno));
}

/* Sends what a corked socket holds: setting TCP_NODELAY pushes pending
 * output even while TCP_CORK is set (tcp(7)); the cork stays for the next
 * writes (the socket has TCP_NODELAY already: MOSQ_OPT_TCP_NODELAY below). */
static void ingest__push(int sock)
{
    int one = 1;
    if (setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        LOG_D(TAG, "TCP_NODELAY push: %s", strerror(errno));
}

/* The cork is lifted (batching ends, or we leave): what it holds goes out. */
static void ingest__uncork(ingest *in)
{
    THREAD_ASSERT_OWNER(&in->owner);
    if (in->corked && in->socket_up && mosquitto_socket(in->mosq) >= 0)
        ingest__cork(mosquitto_socket(in->mosq), 0);
    in->corked = 0;
}

/* Sends what libmosquitto queued. In threaded mode (while reads may be held:
 * readhold_batching) a PUBACK is queued, not written, when its PUBLISH is
 * read: a burst's acks go out here together, after the readings were
 * handled, corked so that they leave as one segment — one pass through the
 * broker's receive path per burst instead of per reading. The socket stays
 * corked while batching and each write is pushed with one setsockopt,
 * instead of a cork and an uncork around every write of several acks. */
static int ingest__write(ingest *in)
{
    THREAD_ASSERT_OWNER(&in->owner);
    if (!mosquitto_want_write(in->mosq)) {
        in->acks_owed = 0;
        return MOSQ_ERR_SUCCESS;
    }
    int sock = mosquitto_socket(in->mosq);
    if (in->batching && !in->corked && in->acks_owed > 1 && sock >= 0) {
        ingest__cork(sock, 1);
        in->corked = 1;
    }
    int rc = mosquitto_loop_write(in->mosq, 1000);
    if (in->corked && sock >= 0 && in->socket_up && mosquitto_socket(in->mosq) == sock)
        ingest__push(sock);
    in->acks_owed = 0;
    return rc;
}

static void *ingest__main(void *arg)
{
    ingest *in = arg;
    vthread_name("vigil-ingest");
    thread_owner_bind(&in->owner);
    ingest__apply_buckets(in); /* what the cluster decided before we ran: before any message */
    int64_t last_misc = vclock_mono_ms();
    int hold = 0; /* µs the next read waits (readhold_after_pass) */
    while (!atomic_load(&in->stop)) {
        int64_t now = vclock_mono_ms();
        if (!in->socket_up && now >= in->next_connect_ms)
            ingest__try_connect(in);
        struct pollfd pfd[2] = {{.fd = in->efd, .events = POLLIN}};
        int nfds = 1;
        int sock = in->socket_up ? mosquitto_socket(in->mosq) : -1;
        /* Held: the next readings gather in the kernel for hold µs and are
         * then read in one pass, instead of one wake-up each at light load.
         * Only the eventfd is watched meanwhile (stop, publishes). */
        if (hold && (sock < 0 || mosquitto_want_write(in->mosq)))
            hold = 0;
        if (sock >= 0 && !hold) {
            pfd[1].fd = sock;
            pfd[1].events = POLLIN | (mosquitto_want_write(in->mosq) ? POLLOUT : 0);
            nfds = 2;
        }
        ingest__kick(in); /* whatever the rest of the last pass posted (alarms, ticks) */
        int timeout = TICK_MS;
        if (!in->socket_up) {
            int64_t wait = in->next_connect_ms - vclock_mono_ms();
            timeout = wait < 0 ? 0 : wait > TICK_MS ? TICK_MS : (int)wait;
        }
        struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000L};
        if (hold)
            ts = (struct timespec){hold / 1000000, (long)(hold % 1000000) * 1000L};
        if (ppoll(pfd, (nfds_t)nfds, &ts, NULL) < 0 && errno != EINTR) {
            LOG_E(TAG, "poll: %s", strerror(errno));
            break;
        }
        hold = 0;
        if (pfd[0].revents & POLLIN) {
            uint64_t v;
            if (read(in->efd, &v, sizeof v) < 0 && errno != EAGAIN)
                LOG_E(TAG, "eventfd read: %s", strerror(errno));
        }
        if (atomic_load(&in->stop))
            break;
        /* Operators' changes (settings, ack, silence) accepted before this
         * wake-up apply to every reading read after it: drain them first. */
        ingest__alarm_ops(in);
        int rc = MOSQ_ERR_SUCCESS;
        unsigned packets = 0;
        int backlog = 0;
        if (nfds == 2 && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP))) {
            /* libmosquitto 2.0 reads one packet per call: keep reading
             * while the kernel holds more, instead of one poll() per
             * reading. Bounded so publishes and keepalive still run. The
             * kernel is asked (FIONREAD) only when the PUBLISH bytes read
             * since the last answer used it up (readburst.h), not after
             * every packet; the burst still ends only on its "nothing". */
            int more = 0, i = 0;
            readburst_begin(&in->burst);
            while (i < READ_BURST && in->burst.publishes < READ_BURST) {
                rc = mosquitto_loop_read(in->mosq, 1);
                i++;
                if (rc != MOSQ_ERR_SUCCESS || !in->socket_up)
                    break;
                if (readburst_ask(&in->burst)) {
                    if (ioctl(sock, FIONREAD, &more) != 0 || more <= 0)
                        break;
                    readburst_avail(&in->burst, more);
                }
                /* The broker sends only so many unacknowledged messages
                 * (max_inflight_messages, 20 by default): acks held for a
                 * whole burst would drain its window and stall the flow. */
                if (in->acks_owed >= ACK_EVERY && (rc = ingest__write(in)) != MOSQ_ERR_SUCCESS)
                    break;
            }
            /* Readings, not calls: one call may read hundreds of packets
             * while QoS 1 publishes of ours await their PUBACKs. */
            packets = in->burst.publishes > (unsigned)i ? in->burst.publishes : (unsigned)i;
            /* A full burst means a backlog: no hold, read on at once. */
            backlog = rc != MOSQ_ERR_SUCCESS || packets >= READ_BURST;
            ingest__kick(in);
        }
        hold = readhold_after_pass(&in->hold, vclock_mono_ms(), packets, backlog);
        ingest__apply_buckets(in);
        ingest__alarm_ops(in);
        if (rc == MOSQ_ERR_SUCCESS && in->socket_up && atomic_load(&in->connected)) {
            ingest__flush_publishes(in);
            ingest__alarm_republish(in);
        }
        if (rc == MOSQ_ERR_SUCCESS && in->socket_up)
            rc = ingest__write(in);
        if (readhold_batching(&in->hold) != in->batching) {
            /* Between passes, everything queued so far was just written. */
            in->batching = !in->batching;
            if (!in->batching)
                ingest__uncork(in);
            mosquitto_threaded_set(in->mosq, in->batching);
            LOG_D(TAG, "PUBACKs %s", in->batching ? "batched (holds on)" : "written at once (holds off)");
        }
        now = vclock_mono_ms();
        if (rc == MOSQ_ERR_SUCCESS && in->socket_up && now - last_misc >= 1000) {
            rc = mosquitto_loop_misc(in->mosq);
            last_misc = now;
        }
        if (rc != MOSQ_ERR_SUCCESS && in->socket_up) {
            ingest__on_disconnect(in->mosq, in, rc, NULL);
            ingest__schedule_reconnect(in, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        }
        if (now >= in->next_cmd_expire_ms) {
            cmdtab_expire(&in->cmds, now);
            in->next_cmd_expire_ms = now + CMD_EXPIRE_MS;
        }
        if (now >= in->next_tick_ms) {
            ingest__tick(in, now);
            in->next_tick_ms = now + TICK_MS;
            /* Requests just queued go out now, not at the next poll. */
            if (in->socket_up && atomic_load(&in->connected) &&
                ingest__write(in) != MOSQ_ERR_SUCCESS) {
                ingest__on_disconnect(in->mosq, in, MOSQ_ERR_CONN_LOST, NULL);
                ingest__schedule_reconnect(in, "write failed");
            }
        }
    }
    if (in->socket_up) {
        /* Deliver publishes still queued (config, commands), then leave
         * cleanly so the broker keeps our session and queues for us. */
        ingest__uncork(in); /* these writes are not pushed one by one */
        if (atomic_load(&in->connected)) {
            ingest__flush_publishes(in);
            for (int i = 0; i < 50 && mosquitto_want_write(in->mosq); i++)
                if (mosquitto_loop_write(in->mosq, 1000) != MOSQ_ERR_SUCCESS)
                    break;
        }
        mosquitto_disconnect_v5(in->mosq, 0, NULL);
        mosquitto_loop_write(in->mosq, 1);
        atomic_store(&in->connected, 0);
        atomic_store(&in->m->mqtt_connected, 0);
    }
    thread_owner_release(&in->owner);
    return NULL;
}

int ingest_create(const vigil_config *cfg, store *st, hub *h, vigil_metrics *m, tracker *trk,
                  ingest **out)
{
    ingest *in = calloc(1, sizeof *in);
    if (!in)
        return -1;
    in->trk = trk;
    in->lost_rl = (log_ratelimit)LOG_RATELIMIT_INIT(20);
    snprintf(in->nonce, sizeof in->nonce, "rs-%x-", (unsigned)(vclock_mono_ns() ^ (uint64_t)getpid()) & 0xffffffu);
    in->cfg = cfg;
    readhold_init(&in->hold, cfg->ingest_hold_us);
    readburst_init(&in->burst, !cfg->broker_tls); /* TLS: FIONREAD after every call, as before */
    in->st = st;
    in->hub = h;
    in->m = m;
    in->rng = (uint32_t)vclock_mono_ns() ^ (uint32_t)getpid();
    in->reject_rl = (log_ratelimit)LOG_RATELIMIT_INIT(20);
    in->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (in->efd < 0 || vmutex_init(&in->lock) != 0) {
        LOG_E(TAG, "eventfd/mutex: %s", strerror(errno));
        if (in->efd >= 0)
            close(in->efd);
        free(in);
        return -1;
    }
    if (ring_init(&in->pubq, PUBQ_CAP, sizeof(pub_req)) != RING_OK) {
        LOG_E(TAG, "out of memory for the publish queue");
        goto fail;
    }
    in->adm = admit_new((size_t)cfg->max_devices, cfg->new_devices_per_s, cfg->new_devices_burst);
    if (!in->adm || cmdtab_init(&in->cmds, CMD_DEVICES, CMD_TTL_MS) != 0) {
        LOG_E(TAG, "out of memory for the device and command tables");
        goto fail;
    }
    /* The alarm engine holds the same devices admission lets in. */
    in->alarms = alarm_engine_new((size_t)cfg->max_devices);
    in->alarm_rl = (log_ratelimit)LOG_RATELIMIT_INIT(20);
    if (!in->alarms || ring_init(&in->alarmq, ALARM_OPS_CAP, sizeof(vigil_alarm_op)) != RING_OK ||
        idtable_init(&in->alarm_unsent, &ingest__unsent_type, 64, (size_t)cfg->max_devices) != IDTABLE_OK ||
        idtable_init(&in->remote_alarms, &ingest__remote_type, 64, (size_t)cfg->max_devices) != IDTABLE_OK) {
        LOG_E(TAG, "out of memory for the alarm engine");
        goto fail;
    }
    /* Persistent session: clean start off, keyed on the client id. */
    in->mosq = mosquitto_new(cfg->client_id, false, in);
    if (!in->mosq) {
        LOG_E(TAG, "mosquitto_new: %s", strerror(errno));
        goto fail;
    }
    mosquitto_int_option(in->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         cfg->mqtt_version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_int_option(in->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(in->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
    /* While reads may be held (readhold_batching), "threaded": libmosquitto
     * then queues every packet instead of writing it from inside the call
     * (packet__queue; the flag changes nothing else for a client driven by
     * its own loop, so ingest__main may switch it between passes), and
     * ingest__write sends a burst's PUBACKs together. Without holds, each
     * PUBACK goes out as its PUBLISH is read, before the reading is handled:
     * held acks then cost the ingest thread more wake-ups at light load than
     * they save (docs/BENCHMARKS.md, "Issue 13 — ingest: PUBACKs and
     * wake-ups"). */
    in->batching = readhold_batching(&in->hold);
    mosquitto_threaded_set(in->mosq, in->batching);
    if (cfg->username || cfg->password) {
        int rc = mosquitto_username_pw_set(in->mosq, cfg->username, cfg->password);
        if (rc != MOSQ_ERR_SUCCESS) {
            LOG_E(TAG, "credentials: %s", mosquitto_strerror(rc));
            goto fail;
        }
    }
    if (cfg->broker_tls) {
        int rc = mosquitto_tls_set(in->mosq, cfg->tls_ca, cfg->tls_ca ? NULL : "/etc/ssl/certs",
                                   cfg->tls_cert, cfg->tls_key, NULL);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_tls_opts_set(in->mosq, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
        if (rc == MOSQ_ERR_SUCCESS && cfg->tls_insecure)
            rc = mosquitto_tls_insecure_set(in->mosq, true);
        if (rc != MOSQ_ERR_SUCCESS) {
            LOG_E(TAG, "TLS setup (ca %s, cert %s): %s", cfg->tls_ca ? cfg->tls_ca : "system",
                  cfg->tls_cert ? cfg->tls_cert : "none", mosquitto_strerror(rc));
            goto fail;
        }
    }
    mosquitto_connect_v5_callback_set(in->mosq, ingest__on_connect);
    mosquitto_disconnect_v5_callback_set(in->mosq, ingest__on_disconnect);
    mosquitto_message_v5_callback_set(in->mosq, ingest__on_message);
    mosquitto_log_callback_set(in->mosq, ingest__on_log);
    *out = in;
    return 0;
fail:
    mosquitto_destroy(in->mosq);
    alarm_engine_free(in->alarms);
    ring_free(&in->alarmq);
    idtable_free(&in->alarm_unsent);
    idtable_free(&in->remote_alarms);
    admit_free(in->adm);
    cmdtab_free(&in->cmds);
    ring_free(&in->pubq);
    vmutex_destroy(&in->lock);
    close(in->efd);
    free(in);
    return -1;
}

int ingest_know_device(ingest *in, const char *id)
{
    THREAD_ASSERT_OWNER(&in->owner); /* unbound until the thread starts: main */
    return admit_add_known(in->adm, id);
}

int ingest_start(ingest *in)
{
    if (pthread_create(&in->thread, NULL, ingest__main, in) != 0) {
        LOG_E(TAG, "cannot start the ingest thread");
        return -1;
    }
    in->started = 1;
    return 0;
}

static void ingest__wake(ingest *in)
{
    uint64_t one = 1;
    if (write(in->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        LOG_E(TAG, "eventfd write: %s", strerror(errno));
}

void ingest_stop(ingest *in)
{
    if (!in)
        return;
    atomic_store(&in->stop, 1);
    if (in->started) {
        ingest__wake(in);
        pthread_join(in->thread, NULL);
        in->started = 0;
    }
}

void ingest_free(ingest *in)
{
    if (!in)
        return;
    ingest_stop(in); /* a no-op once stopped */
    mosquitto_destroy(in->mosq);
    pub_req r;
    while (ring_pop_copy(&in->pubq, &r) == RING_OK)
        free(r.payload);
    vigil_alarm_op op;
    while (ring_pop_copy(&in->alarmq, &op) == RING_OK)
        free(op.settings);
    ring_free(&in->pubq);
    alarm_engine_free(in->alarms);
    ring_free(&in->alarmq);
    idtable_free(&in->alarm_unsent);
    idtable_free(&in->remote_alarms);
    admit_free(in->adm);
    cmdtab_free(&in->cmds);
    vmutex_destroy(&in->lock);
    close(in->efd);
    free(in);
}

int ingest_connected(ingest *in) { return atomic_load(&in->connected); }

publish_err ingest_publish(ingest *in, const char *topic, const char *payload, size_t len,
                           int qos, int retain)
{
    if (strlen(topic) >= sizeof((pub_req *)0)->topic || len > 65536)
        return PUBLISH_EINVAL;
    if (!atomic_load(&in->connected))
        return PUBLISH_ENOTCONN;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return PUBLISH_ENOMEM;
    memcpy(copy, payload, len);
    vmutex_lock(&in->lock);
    pub_req *r = ring_push(&in->pubq);
    if (!r) { /* full: refused, the caller answers 503 */
        vmutex_unlock(&in->lock);
        free(copy);
        return PUBLISH_EFULL;
    }
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    r->payload = copy;
    r->len = len;
    r->qos = qos;
    r->retain = retain;
    vmutex_unlock(&in->lock);
    ingest__wake(in);
    return PUBLISH_OK;
}

static publish_err ingest__port_publish(void *ctx, const char *topic, const char *payload,
                                        size_t len, int qos, int retain)
{
    return ingest_publish(ctx, topic, payload, len, qos, retain);
}

static int ingest__port_connected(void *ctx) { return ingest_connected(ctx); }

vigil_publisher ingest_publisher(ingest *in)
{
    return (vigil_publisher){.publish = ingest__port_publish, .connected = ingest__port_connected,
                             .ctx = in};
}

int ingest_restore_alarm(ingest *in, const alarm_rec *a)
{
    THREAD_ASSERT_OWNER(&in->owner); /* unbound until the thread starts: main */
    return alarm_restore(in->alarms, a, vclock_wall_ms()) == ALARM_OK ? 0 : -1;
}

int ingest_set_alarm_settings(ingest *in, const char *id, const alarm_settings *s)
{
    THREAD_ASSERT_OWNER(&in->owner); /* unbound until the thread starts: main */
    return alarm_set_settings(in->alarms, id, s) == ALARM_OK ? 0 : -1;
}

static int ingest__port_alarm(void *ctx, const vigil_alarm_op *op)
{
    ingest *in = ctx;
    vmutex_lock(&in->lock);
    vigil_alarm_op *slot = ring_push(&in->alarmq);
    if (slot)
        *slot = *op;
    vmutex_unlock(&in->lock);
    if (!slot)
        return -1; /* full: the REST call answers 503 */
    ingest__wake(in);
    return 0;
}

vigil_alarm_port ingest_alarm_port(ingest *in)
{
    return (vigil_alarm_port){.submit = ingest__port_alarm, .ctx = in};
}

/* ---- several instances ---- */

void ingest_set_clustered(ingest *in)
{
    THREAD_ASSERT_OWNER(&in->owner); /* unbound until the thread starts: main */
    in->clustered = 1;
    in->owned = 0;
    /* Alarm ids unique across instances: a bucket has one owner at a time. */
    alarm_engine_stripe_ids(in->alarms, cluster_bucket_of);
}

static void ingest__port_bucket(void *ctx, unsigned bucket, int owned)
{
    ingest *in = ctx;
    if (bucket >= CLUSTER_BUCKETS)
        return;
    if (owned)
        atomic_fetch_or(&in->bucket_want, cluster_bit(bucket));
    else
        atomic_fetch_and(&in->bucket_want, ~cluster_bit(bucket));
    atomic_fetch_add(&in->bucket_gen[bucket], 1);
    atomic_store(&in->bucket_dirty, 1);
    ingest__wake(in);
}

static void ingest__port_session(void *ctx, int up)
{
    ingest *in = ctx;
    atomic_store(&in->cluster_up, up);
    atomic_store(&in->bucket_dirty, 1);
    ingest__wake(in);
}

cluster_port ingest_cluster_port(ingest *in)
{
    return (cluster_port){.on_change = ingest__port_bucket, .on_session = ingest__port_session, .ctx = in};
}
