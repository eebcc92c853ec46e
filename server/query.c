/* query — see query.h. */
#include "query.h"

#include "alarm.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "auth.h"
#include "downsample.h"
#include "jsonw.h"
#include "log.h"
#include "ring.h"
#include "sched_slice.h"
#include "store.h"
#include "tracker.h"
#include "vclock.h"
#include "vthread.h"

#define TAG "query"
#define QUERY_CAP_DEFAULT 64
#define COMPLETENESS_GAPS_MAX 1000 /* gaps listed per completeness answer */
/* The worker's nice value above the process's: a history query costs
 * ~12 ms of CPU, and on a busy host it should take what the live path
 * (ingest, web) leaves, not compete with it. +10 is a weight of ~1/10 under
 * CFS: a query still runs, ~10x slower only while the cores are full.
 * SCHED_IDLE was measured and not taken: with both cores busy it let one
 * query take 1.1-1.3 s, against 0.2 s at +10 (docs/BENCHMARKS.md "Issue 13
 * — history load, second pass"). */
#ifndef QUERY_NICE
#define QUERY_NICE 10
#endif
/* The worker's time slice under EEVDF (Linux 6.6+; sched_attr.sched_runtime
 * is honoured for normal threads since 6.12, ignored before). A nice value
 * sets a thread's share, not its slice: once picked, a +10 worker is
 * protected for a whole default slice (0.7 ms x (1 + log2 cores)), and an
 * ingest or web thread that wakes meanwhile waits behind it. With the
 * smallest slice the kernel takes, a waking live thread preempts the worker
 * at once; the worker keeps its nice +10 share of a busy host, where
 * SCHED_IDLE starved it (docs/BENCHMARKS.md, "Issue 13 — history load,
 * third pass"). */
#ifndef QUERY_SLICE_NS
#define QUERY_SLICE_NS 100000u
#endif

typedef struct query__job {
    query_job job;
    uint64_t serial;
    int cancelled;
} query__job;

typedef struct query__done {
    query_done d;
    int cancelled;
} query__done;

struct query {
    query_config cfg;
    thread_owner worker;       /* the worker thread, bound in query__main */
    pthread_t thread;
    /* Guarded by lock. */
    vmutex lock;
    pthread_cond_t cond;       /* jobs pushed, or stop */
    ring jobs;                 /* query__job */
    ring done;                 /* query__done */
    int running;               /* 1 while the worker runs a job */
    uint64_t running_serial;
    int running_cancelled;
    int stop;
    /* Web thread only. */
    uint64_t next_serial;
    /* Worker only: what an unknown user's password is checked against, so
     * that a wrong name costs the same as a wrong password. Made on the
     * first login. */
    char dummy_hash[AUTH_PWHASH_MAX];
};

/* ---- the answers (worker thread; pure but for the store/tracker reads) ---- */

static void query__error(sbuf *o, const char *msg)
{
    sbuf_adds(o, "{\"error\":");
    sbuf_add_json_str(o, msg);
    sbuf_adds(o, "}");
}

/* History bodies are ~200 KB of numbers (1,000 buckets x 12 values) and
 * formatting them was ~half of a query's CPU through printf; these append
 * the same bytes without it. A literal, with its length known: */
#define QUERY__LIT(o, lit) sbuf_add((o), (lit), sizeof(lit) - 1)

/* v as "%.10g" prints it (jsonw_fmt_double: same bytes, integer
 * arithmetic for values with up to 3 decimals, as readings are). */
static void query__dbl(sbuf *o, double v)
{
    char tmp[JSONW_DOUBLE_MAX];
    size_t n = jsonw_fmt_double(v, tmp, sizeof tmp);
    if (n)
        sbuf_add(o, tmp, n);
    else
        sbuf_addf(o, "%.10g", v);
}

/* v as "%" PRId64 prints it. */
static void query__i64(sbuf *o, int64_t v)
{
    char tmp[JSONW_I64_MAX];
    const char *p = jsonw_fmt_i64(v, tmp);
    sbuf_add(o, p, (size_t)(tmp + sizeof tmp - p));
}

/* ,"name": — name is one of ours, no escaping needed. */
static void query__key(sbuf *o, const char *name)
{
    QUERY__LIT(o, ",\"");
    sbuf_adds(o, name);
    QUERY__LIT(o, "\":");
}

static void query__add_stat(sbuf *o, const char *name, const downsample_stat *s)
{
    query__key(o, name);
    if (!s->n) {
        QUERY__LIT(o, "null");
        return;
    }
    QUERY__LIT(o, "{\"min\":");
    query__dbl(o, s->min);
    QUERY__LIT(o, ",\"avg\":");
    query__dbl(o, s->sum / s->n);
    QUERY__LIT(o, ",\"max\":");
    query__dbl(o, s->max);
    QUERY__LIT(o, "}");
}

static void query__add_num(sbuf *o, const char *name, int has, double v)
{
    query__key(o, name);
    if (has)
        query__dbl(o, v);
    else
        QUERY__LIT(o, "null");
}

static void query__add_bool(sbuf *o, const char *name, int v)
{
    query__key(o, name);
    if (v)
        QUERY__LIT(o, "true");
    else
        QUERY__LIT(o, "false");
}

static void query__buckets(sbuf *o, const store_series *s)
{
    QUERY__LIT(o, ",\"bucket_ms\":");
    query__i64(o, s->ds.width);
    QUERY__LIT(o, ",\"buckets\":[");
    /* ~200 B a bucket with readings (at most total of them): one allocation. */
    (void)sbuf_reserve(o, (s->total < s->ds.nbuckets ? s->total : s->ds.nbuckets) * 200);
    int first = 1;
    for (size_t i = 0; i < s->ds.nbuckets; i++) {
        const downsample_bucket *b = &s->ds.b[i];
        if (!b->count)
            continue;
        if (first)
            QUERY__LIT(o, "{\"t\":");
        else
            QUERY__LIT(o, ",{\"t\":");
        first = 0;
        query__i64(o, b->t_start);
        QUERY__LIT(o, ",\"n\":");
        query__i64(o, (int64_t)b->count);
        query__add_stat(o, "heart_rate", &b->ch[DS_HEART_RATE]);
        query__add_stat(o, "spo2", &b->ch[DS_SPO2]);
        query__add_stat(o, "object_temp", &b->ch[DS_OBJECT_TEMP]);
        query__add_stat(o, "ambient_temp", &b->ch[DS_AMBIENT_TEMP]);
        QUERY__LIT(o, "}");
    }
}

static void query__raw(sbuf *o, const store_series *s)
{
    QUERY__LIT(o, ",\"readings\":[");
    (void)sbuf_reserve(o, s->total * 250); /* ~250 B a reading */
    char iso[32];
    for (size_t i = 0; i < s->total; i++) {
        const telemetry_reading *r = &s->raw[i];
        telemetry_format_iso(r->received_ms, iso, sizeof iso);
        if (i)
            QUERY__LIT(o, ",{\"t\":");
        else
            QUERY__LIT(o, "{\"t\":");
        query__i64(o, s->raw_t[i]);
        QUERY__LIT(o, ",\"received_at\":\"");
        sbuf_adds(o, iso);
        QUERY__LIT(o, "\"");
        if (r->present & TELEMETRY_HAS_SEQ) {
            query__key(o, "seq");
            query__i64(o, r->seq);
        }
        if (r->present & TELEMETRY_HAS_BOOT) {
            query__key(o, "boot");
            query__i64(o, r->boot);
        }
        query__add_num(o, "object_temp", r->present & TELEMETRY_HAS_OBJECT_TEMP, r->object_temp);
        query__add_num(o, "ambient_temp", r->present & TELEMETRY_HAS_AMBIENT_TEMP, r->ambient_temp);
        query__add_num(o, "heart_rate", r->present & TELEMETRY_HAS_HEART_RATE, r->heart_rate);
        query__add_num(o, "spo2", r->present & TELEMETRY_HAS_SPO2, r->spo2);
        if (r->present & TELEMETRY_HAS_HR_VALID)
            query__add_bool(o, "hr_valid", r->hr_valid);
        if (r->present & TELEMETRY_HAS_SPO2_VALID)
            query__add_bool(o, "spo2_valid", r->spo2_valid);
        if (r->present & TELEMETRY_HAS_TEMP_VALID)
            query__add_bool(o, "temp_valid", r->temp_valid);
        QUERY__LIT(o, "}");
    }
}

/* A REST read sees every record queued before it (a reading, an alarm, an
 * audit row vigild accepted just now): the store's group commit may hold
 * records for up to 200 ms, and store_sync has the writer commit them at
 * once. A read of one device's data (dev not NULL) waits only for that
 * device's records — none queued, as for a device not reporting now, and
 * it forces no commit (docs/BENCHMARKS.md "Issue 13 — history load, second
 * pass"). Not while the store cannot write (an outage): the read then
 * answers with what is stored, as before, instead of waiting out the
 * timeout on every request. */
#define QUERY_FRESH_WAIT_MS 1000
static void query__read_fresh(store *st, const char *dev)
{
    store_stats ss;
    store_get_stats(st, &ss);
    if (!ss.writable || !ss.queue_depth)
        return;
    store_err e = dev ? store_sync_device(st, dev, QUERY_FRESH_WAIT_MS) : store_sync(st, QUERY_FRESH_WAIT_MS);
    if (e != STORE_OK)
        LOG_D(TAG, "store still writing after %d ms: reading what it has", QUERY_FRESH_WAIT_MS);
}

static unsigned query__readings(store *st, const query_job *j, sbuf *o)
{
    query__read_fresh(st, j->dev);
    store_series s;
    store_err e = store_query_readings(st, j->dev, j->from, j->to, (size_t)j->max_points, &s);
    if (e == STORE_ENOTFOUND) {
        query__error(o, "unknown device");
        return 404;
    }
    if (e != STORE_OK) {
        query__error(o, "store query failed");
        return 500;
    }
    sbuf_adds(o, "{\"device_id\":");
    sbuf_add_json_str(o, j->dev);
    sbuf_addf(o, ",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"total\":%zu,\"downsampled\":%s", j->from,
              j->to, s.total, s.downsampled ? "true" : "false");
    if (s.downsampled)
        query__buckets(o, &s);
    else
        query__raw(o, &s);
    sbuf_adds(o, "]}");
    store_series_free(&s);
    return 200;
}

/* Per (boot, seq), not per time: a gap has no readings and so no time of
 * its own, while seqs are exact (docs/PROTOCOL.md). The web thread has
 * checked that the device is known. */
static unsigned query__completeness(tracker *trk, const query_job *j, sbuf *o)
{
    if (!trk) {
        query__error(o, "completeness tracking is off");
        return 503;
    }
    if (tracker_device_json(trk, j->dev, j->boot, j->from, j->to, COMPLETENESS_GAPS_MAX, o) != 0) {
        /* Known, but never sent a reading with a seq: nothing to account. */
        sbuf_reset(o);
        sbuf_adds(o, "{\"device_id\":");
        sbuf_add_json_str(o, j->dev);
        sbuf_addf(o, ",\"boot\":null,\"from\":%" PRId64 ",\"to\":%" PRId64
                     ",\"expected\":0,\"received\":0,\"refilled\":0,\"lost\":0,"
                     "\"pending\":0,\"ratio\":1,\"current_boot\":null,\"boots\":[],"
                     "\"gaps\":[],\"gaps_truncated\":false,\"untracked\":0}",
                  j->from, j->to);
    }
    return 200;
}

/* GET /api/alarms?device=ID&from=&to=: alarms that started in the window,
 * newest first, cleared ones included. */
static unsigned query__alarms(store *st, const query_job *j, sbuf *o)
{
    query__read_fresh(st, j->dev);
    alarm_rec *a;
    size_t n;
    if (store_query_alarms(st, j->dev, j->from, j->to, (size_t)j->limit, &a, &n) != STORE_OK) {
        query__error(o, "store read failed");
        return 500;
    }
    sbuf_adds(o, "{\"device_id\":");
    sbuf_add_json_str(o, j->dev);
    sbuf_addf(o, ",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"alarms\":[", j->from, j->to);
    for (size_t i = 0; i < n; i++) {
        char json[ALARM_JSON_MAX];
        size_t len = alarm_json(&a[i], json, sizeof json);
        if (i)
            sbuf_adds(o, ",");
        sbuf_add(o, json, len);
    }
    sbuf_adds(o, "]}");
    free(a);
    return 200;
}

/* GET /api/devices/{id}/alarm-settings: stored over the defaults. */
static unsigned query__alarm_settings(store *st, const query_job *j, sbuf *o)
{
    if (store_sync_device(st, j->dev, 2000) != STORE_OK) /* the PUT before this GET is written */
        LOG_W("query", "alarm settings of %s read before the store caught up", j->dev);
    alarm_settings s;
    store_err e = store_get_alarm_settings(st, j->dev, &s);
    if (e != STORE_OK && e != STORE_ENOTFOUND) {
        query__error(o, "store read failed");
        return 500;
    }
    char json[ALARM_SETTINGS_JSON_MAX];
    size_t n = alarm_settings_json(&s, json, sizeof json);
    (void)e; /* not found: the defaults */
    sbuf_add(o, json, n);
    return 200;
}

unsigned query_run(store *st, tracker *trk, const query_job *job, sbuf *out)
{
    switch (job->kind) {
    case QUERY_ALARM_SETTINGS:
        return query__alarm_settings(st, job, out);
    case QUERY_ALARMS:
        return query__alarms(st, job, out);
    case QUERY_READINGS:
        return query__readings(st, job, out);
    case QUERY_COMPLETENESS:
        return query__completeness(trk, job, out);
    default: /* the access-control kinds need the worker (query__auth) */
        break;
    }
    query__error(out, "unknown query");
    return 500;
}

/* ---- access control (worker thread) ---- */

static void query__iso(sbuf *o, const char *name, int64_t ms)
{
    char iso[32];
    if (ms <= 0) {
        sbuf_addf(o, ",\"%s\":null", name);
        return;
    }
    telemetry_format_iso(ms, iso, sizeof iso);
    sbuf_addf(o, ",\"%s\":\"%s\"", name, iso);
}

static void query__kv(sbuf *o, const char *sep, const char *name, const char *v)
{
    sbuf_addf(o, "%s\"%s\":", sep, name);
    sbuf_add_json_str(o, v);
}

int query_auth_snapshot(store *st, int64_t now_ms, auth_entry **out, size_t *n)
{
    store_session *ss = NULL;
    store_token *ts = NULL;
    size_t ns = 0, nt = 0;
    *out = NULL;
    *n = 0;
    if (store_list_sessions(st, now_ms, &ss, &ns) != STORE_OK)
        return -1;
    store_user *us = NULL;
    size_t nu = 0;
    if (store_list_tokens(st, &ts, &nt) != STORE_OK || store_list_users(st, &us, &nu) != STORE_OK) {
        free(ss);
        free(ts);
        return -1;
    }
    auth_entry *v = ns + nt + nu ? calloc(ns + nt + nu, sizeof *v) : NULL;
    if (ns + nt + nu && !v) {
        free(ss);
        free(ts);
        free(us);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < nu; i++, k++) {
        v[k].kind = AUTH_USER_MARK;
        snprintf(v[k].key, sizeof v[k].key, "u:%s", us[i].name);
    }
    free(us);
    for (size_t i = 0; i < ns; i++) {
        auth_entry *e = &v[k];
        auth_role r;
        if (auth_role_parse(ss[i].role, &r) != AUTH_OK || strlen(ss[i].key) != AUTH_KEY_HEX)
            continue;
        memcpy(e->key, ss[i].key, AUTH_KEY_HEX + 1);
        e->kind = AUTH_SESSION;
        e->role = r;
        snprintf(e->user, sizeof e->user, "%s", ss[i].user);
        snprintf(e->csrf, sizeof e->csrf, "%.*s", AUTH_SECRET_B64, ss[i].csrf);
        e->created_ms = ss[i].created_ms;
        e->last_used_ms = e->persisted_used_ms = ss[i].last_used_ms;
        e->expires_ms = ss[i].expires_ms;
        k++;
    }
    for (size_t i = 0; i < nt; i++) {
        auth_entry *e = &v[k];
        auth_role r;
        if (auth_role_parse(ts[i].role, &r) != AUTH_OK || strlen(ts[i].key) != AUTH_KEY_HEX)
            continue;
        memcpy(e->key, ts[i].key, AUTH_KEY_HEX + 1);
        e->kind = AUTH_TOKEN;
        e->role = r;
        snprintf(e->user, sizeof e->user, "%s", ts[i].name);
        snprintf(e->id, sizeof e->id, "%.*s", AUTH_TOKEN_ID_LEN, ts[i].id);
        e->created_ms = ts[i].created_ms;
        e->last_used_ms = e->persisted_used_ms = ts[i].last_used_ms;
        k++;
    }
    sodium_memzero(ss, ns * sizeof *ss); /* csrf values */
    free(ss);
    free(ts);
    *out = v;
    *n = k;
    return 0;
}

static unsigned query__login(query *q, const query_job *j, query_done *d)
{
    store_user u;
    store_err e = store_get_user(q->cfg.st, j->user, &u);
    if (e != STORE_OK && e != STORE_ENOTFOUND) {
        query__error(&d->body, "store read failed");
        return 500;
    }
    if (e == STORE_ENOTFOUND) {
        if (!q->dummy_hash[0] && auth_password_hash("not a password of anyone", 24, q->dummy_hash) != AUTH_OK)
            q->dummy_hash[0] = 0;
        (void)auth_password_verify(q->dummy_hash, j->password, j->password_len);
        return 200; /* auth_ok stays 0 */
    }
    auth_role r;
    d->auth_ok = auth_password_verify(u.pwhash, j->password, j->password_len) &&
                 auth_role_parse(u.role, &r) == AUTH_OK;
    d->role = d->auth_ok ? (int)r : 0;
    sodium_memzero(u.pwhash, sizeof u.pwhash);
    return 200;
}

/* Admin lists read their writes: a token or user this vigild just accepted
 * (queued to the store, answered at once) is in the list that follows.
 * Bounded: past the wait the list is read as the store has it. */
static void query__read_own_writes(query *q)
{
    THREAD_ASSERT_OWNER(&q->worker);
    if (store_sync(q->cfg.st, 2000) != STORE_OK)
        LOG_D(TAG, "store still writing after 2 s: listing what it has");
}

static unsigned query__users(query *q, sbuf *o)
{
    store_user *u;
    size_t n;
    query__read_own_writes(q);
    if (store_list_users(q->cfg.st, &u, &n) != STORE_OK) {
        query__error(o, "store read failed");
        return 500;
    }
    sbuf_adds(o, "{\"users\":[");
    for (size_t i = 0; i < n; i++) {
        query__kv(o, i ? ",{" : "{", "username", u[i].name);
        query__kv(o, ",", "role", u[i].role);
        query__iso(o, "created_at", u[i].created_ms);
        sbuf_adds(o, "}");
    }
    sbuf_adds(o, "]}");
    free(u);
    return 200;
}

static unsigned query__tokens(query *q, sbuf *o)
{
    store_token *t;
    size_t n;
    query__read_own_writes(q);
    if (store_list_tokens(q->cfg.st, &t, &n) != STORE_OK) {
        query__error(o, "store read failed");
        return 500;
    }
    sbuf_adds(o, "{\"tokens\":[");
    for (size_t i = 0; i < n; i++) {
        query__kv(o, i ? ",{" : "{", "id", t[i].id);
        query__kv(o, ",", "name", t[i].name);
        query__kv(o, ",", "role", t[i].role);
        query__iso(o, "created_at", t[i].created_ms);
        query__iso(o, "last_used_at", t[i].last_used_ms);
        sbuf_adds(o, "}");
    }
    sbuf_adds(o, "]}");
    free(t);
    return 200;
}

static unsigned query__audit(query *q, const query_job *j, sbuf *o)
{
    query__read_fresh(q->cfg.st, NULL);
    store_audit *a;
    size_t n;
    if (store_query_audit(q->cfg.st, j->from, j->to, j->user[0] ? j->user : NULL, (size_t)j->limit, &a,
                          &n) != STORE_OK) {
        query__error(o, "store read failed");
        return 500;
    }
    sbuf_adds(o, "{\"entries\":[");
    for (size_t i = 0; i < n; i++) {
        char iso[32];
        telemetry_format_iso(a[i].t_ms, iso, sizeof iso);
        sbuf_addf(o, "%s{\"t\":\"%s\"", i ? "," : "", iso);
        query__kv(o, ",", "user", a[i].user);
        query__kv(o, ",", "address", a[i].address);
        query__kv(o, ",", "action", a[i].action);
        query__kv(o, ",", "target", a[i].target);
        query__kv(o, ",", "outcome", a[i].outcome);
        query__kv(o, ",", "detail", a[i].detail);
        sbuf_adds(o, "}");
    }
    sbuf_adds(o, "]}");
    free(a);
    return 200;
}

/* A new password ends the user's other sessions: their rows are deleted
 * (queued before the caller's store_sync), all but `keep`. Tokens stay. */
static store_err query__end_sessions(store *st, const char *user, const char *keep)
{
    store_session *ss = NULL;
    size_t n = 0;
    store_err e = store_list_sessions(st, INT64_MIN, &ss, &n);
    for (size_t i = 0; e == STORE_OK && i < n; i++) {
        if (strcmp(ss[i].user, user) || !strcmp(ss[i].key, keep))
            continue;
        store_auth_write w = {.op = STORE_AUTH_SESSION_DEL};
        memcpy(w.v.s.key, ss[i].key, sizeof w.v.s.key);
        e = store_put_auth(st, &w);
    }
    if (ss)
        sodium_memzero(ss, n * sizeof *ss); /* csrf values */
    free(ss);
    return e;
}

/* POST, PUT and DELETE of /api/users: the existence check and the Argon2
 * hash here; the write itself is queued to the store. */
static unsigned query__user_change(query *q, const query_job *j, query_done *d)
{
    sbuf *o = &d->body;
    store_user cur;
    store_err e = store_get_user(q->cfg.st, j->user, &cur);
    sodium_memzero(cur.pwhash, sizeof cur.pwhash);
    if (e != STORE_OK && e != STORE_ENOTFOUND) {
        query__error(o, "store read failed");
        return 500;
    }
    if (j->kind == QUERY_USER_ADD && e == STORE_OK) {
        query__error(o, "user exists");
        return 409;
    }
    if (j->kind != QUERY_USER_ADD && e == STORE_ENOTFOUND) {
        query__error(o, "unknown user");
        return 404;
    }
    store_auth_write w = {.op = j->kind == QUERY_USER_ADD      ? STORE_AUTH_USER_ADD
                                : j->kind == QUERY_USER_UPDATE ? STORE_AUTH_USER_UPDATE
                                                               : STORE_AUTH_USER_DEL};
    snprintf(w.v.u.name, sizeof w.v.u.name, "%s", j->user);
    if (j->role)
        snprintf(w.v.u.role, sizeof w.v.u.role, "%s", auth_role_name((auth_role)j->role));
    w.v.u.created_ms = vclock_wall_ms();
    if (j->password_len && auth_password_hash(j->password, j->password_len, w.v.u.pwhash) != AUTH_OK) {
        query__error(o, "cannot hash the password");
        return 500;
    }
    e = store_put_auth(q->cfg.st, &w);
    sodium_memzero(w.v.u.pwhash, sizeof w.v.u.pwhash);
    if (e == STORE_OK && j->kind == QUERY_USER_UPDATE && j->password_len)
        e = query__end_sessions(q->cfg.st, j->user, j->keep);
    /* Written before the answer, so the next check (and a login) sees it. */
    if (e != STORE_OK || store_sync(q->cfg.st, 5000) != STORE_OK) {
        query__error(o, "store busy, retry");
        return 503;
    }
    auth_role r = AUTH_ROLE_NONE;
    if (j->role)
        r = (auth_role)j->role;
    else
        (void)auth_role_parse(cur.role, &r);
    d->role = (int)r;
    if (j->kind == QUERY_USER_DEL)
        return 204;
    query__kv(o, "{", "username", j->user);
    query__kv(o, ",", "role", auth_role_name(r));
    sbuf_adds(o, "}");
    return j->kind == QUERY_USER_ADD ? 201 : 200;
}

/* The access-control kinds; 0 if job is not one. */
static unsigned query__auth(query *q, const query_job *j, query_done *d)
{
    switch (j->kind) {
    case QUERY_LOGIN: return query__login(q, j, d);
    case QUERY_AUTH_REFRESH:
        if (query_auth_snapshot(q->cfg.st, vclock_wall_ms(), &d->snap, &d->nsnap) != 0)
            return 500;
        return 200;
    case QUERY_USERS: return query__users(q, &d->body);
    case QUERY_TOKENS: return query__tokens(q, &d->body);
    case QUERY_AUDIT: return query__audit(q, j, &d->body);
    case QUERY_USER_ADD:
    case QUERY_USER_UPDATE:
    case QUERY_USER_DEL: return query__user_change(q, j, d);
    default: return 0;
    }
}

/* ---- the worker ---- */

/* Runs one job outside the lock; returns its answer in *d. Worker thread. */
static void query__work(query *q, const query__job *j, query_done *d)
{
    THREAD_ASSERT_OWNER(&q->worker);
    VMUTEX_ASSERT_NOT_HELD(&q->lock);
    d->conn = j->job.conn;
    d->serial = j->serial;
    d->kind = j->job.kind;
    sbuf_init(&d->body, q->cfg.headroom);
    unsigned st = query__auth(q, &j->job, d);
    d->status = st ? st : query_run(q->cfg.st, q->cfg.trk, &j->job, &d->body);
}

/* Lowers the calling thread's priority (Linux: nice is per thread, by tid)
 * and shortens its slice (QUERY_SLICE_NS). Best effort: on failure the
 * worker runs at the process's priority, or with the default slice. */
static void query__lower_priority(void)
{
    sched_slice_result r = sched_slice_set(sched_slice_nice() + QUERY_NICE, QUERY_SLICE_NS);
    if (r == SCHED_SLICE_ENICE || r == SCHED_SLICE_ESLICE)
        LOG_D(TAG, "cannot lower the worker's priority or shorten its slice: %s: %s", sched_slice_str(r),
              strerror(errno));
}

static void *query__main(void *arg)
{
    query *q = arg;
    vthread_name("vigil-query");
    thread_owner_bind(&q->worker);
    query__lower_priority();
    vmutex_lock(&q->lock);
    for (;;) {
        while (!q->stop && ring_empty(&q->jobs))
            vmutex_cond_wait(&q->cond, &q->lock);
        if (q->stop)
            break;
        query__job j;
        query__job *front = ring_front(&q->jobs);
        j = *front;
        sodium_memzero(front->job.password, sizeof front->job.password); /* no copy left behind */
        ring_pop(&q->jobs);
        if (j.cancelled)
            continue;
        q->running = 1;
        q->running_serial = j.serial;
        q->running_cancelled = 0;
        vmutex_unlock(&q->lock);

        query__done done = {.cancelled = 0};
        query__work(q, &j, &done.d);
        sodium_memzero(j.job.password, sizeof j.job.password);

        vmutex_lock(&q->lock);
        q->running = 0;
        int keep = !q->running_cancelled;
        /* Cannot fail: admission keeps queued + running + done <= cap. */
        if (keep && ring_push_copy(&q->done, &done) != RING_OK)
            keep = 0;
        if (!keep) {
            sbuf_free(&done.d.body);
            free(done.d.snap);
            continue;
        }
        vmutex_unlock(&q->lock);
        if (q->cfg.wake)
            q->cfg.wake(q->cfg.wake_ctx);
        vmutex_lock(&q->lock);
    }
    vmutex_unlock(&q->lock);
    thread_owner_release(&q->worker);
    return NULL;
}

/* ---- the web thread's side ---- */

query_err query_start(const query_config *cfg, query **out)
{
    query *q = calloc(1, sizeof *q);
    if (!q)
        return QUERY_ENOMEM;
    q->cfg = *cfg;
    if (!q->cfg.cap)
        q->cfg.cap = QUERY_CAP_DEFAULT;
    if (ring_init(&q->jobs, q->cfg.cap, sizeof(query__job)) != RING_OK ||
        ring_init(&q->done, q->cfg.cap, sizeof(query__done)) != RING_OK) {
        ring_free(&q->jobs);
        free(q);
        return QUERY_ENOMEM;
    }
    vmutex_init(&q->lock);
    pthread_cond_init(&q->cond, NULL);
    if (pthread_create(&q->thread, NULL, query__main, q) != 0) {
        LOG_E(TAG, "cannot start the query worker");
        pthread_cond_destroy(&q->cond);
        vmutex_destroy(&q->lock);
        ring_free(&q->jobs);
        ring_free(&q->done);
        free(q);
        return QUERY_ETHREAD;
    }
    *out = q;
    return QUERY_OK;
}

void query_stop(query *q)
{
    if (!q)
        return;
    vmutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_signal(&q->cond);
    vmutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    /* Queued jobs may hold a password: wipe them; untaken answers hold their bodies. */
    for (size_t i = 0; i < ring_count(&q->jobs); i++)
        sodium_memzero(((query__job *)ring_at(&q->jobs, i))->job.password, sizeof(((query__job *)0)->job.password));
    query__done d;
    while (ring_pop_copy(&q->done, &d) == RING_OK) {
        sbuf_free(&d.d.body);
        free(d.d.snap);
    }
    ring_free(&q->jobs);
    ring_free(&q->done);
    pthread_cond_destroy(&q->cond);
    vmutex_destroy(&q->lock);
    free(q);
}

query_err query_submit(query *q, const query_job *job, uint64_t *serial)
{
    vmutex_lock(&q->lock);
    size_t outstanding = ring_count(&q->jobs) + (size_t)q->running + ring_count(&q->done);
    query__job *slot = outstanding < q->cfg.cap ? ring_push(&q->jobs) : NULL;
    if (!slot) {
        vmutex_unlock(&q->lock);
        return QUERY_EFULL;
    }
    slot->job = *job;
    slot->serial = ++q->next_serial;
    slot->cancelled = 0;
    *serial = slot->serial;
    pthread_cond_signal(&q->cond);
    vmutex_unlock(&q->lock);
    return QUERY_OK;
}

/* A linear scan: both rings hold at most cap (64) entries and a cancel only
 * happens when a connection closes with its answer still pending. */
void query_cancel(query *q, uint64_t serial)
{
    if (!serial)
        return;
    vmutex_lock(&q->lock);
    for (size_t i = 0; i < ring_count(&q->jobs); i++) {
        query__job *j = ring_at(&q->jobs, i);
        if (j->serial == serial)
            j->cancelled = 1;
    }
    if (q->running && q->running_serial == serial)
        q->running_cancelled = 1;
    for (size_t i = 0; i < ring_count(&q->done); i++) {
        query__done *d = ring_at(&q->done, i);
        if (d->d.serial == serial && !d->cancelled) {
            d->cancelled = 1;
            sbuf_free(&d->d.body);
            free(d->d.snap);
            d->d.snap = NULL;
        }
    }
    vmutex_unlock(&q->lock);
}

int query_take(query *q, query_done *out)
{
    vmutex_lock(&q->lock);
    query__done d;
    int got = 0;
    while (!got && ring_pop_copy(&q->done, &d) == RING_OK)
        got = !d.cancelled;
    vmutex_unlock(&q->lock);
    if (got)
        *out = d.d;
    return got;
}
