/* cluster — see cluster.h. The thread, in one picture:
 *
 *   every CLUSTER_TICK_MS (or sooner when stopped):
 *     no session     → connect (keepalives on both ends), take the shared
 *                      membership lock; failure: retry next tick
 *     one round trip → members N, buckets held by other sessions
 *     decide         → cluster_plan_decide (pure)
 *     lock           → pg_try_advisory_lock on the chosen free buckets,
 *                      one statement; the granted ones are ours
 *     unlock         → stop owning first (port), then pg_advisory_unlock
 *     any failure    → drop the session, KEEP the buckets owned (alarms
 *                      must not stop with the database); on reconnect
 *                      re-lock them at once and drop those another
 *                      instance took meanwhile. */
#include "cluster.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "idtable.h"
#include "log.h"
#include "metrics.h"
#include "pgwait.h"
#include "vclock.h"
#include "vthread.h"

#define TAG "cluster"

struct cluster {
    char *conninfo;           /* never logged: it may carry a password */
    char name[65];
    vigil_metrics *m;
    cluster_port port;
    unsigned start;           /* where this instance looks for free buckets first */
    _Atomic uint64_t owned;   /* the truth for cluster_owns; written by the thread only */
    _Atomic int stop;
    _Atomic int ready;        /* a first decision was made on a settled view */
    pthread_t thread;
    int started;
    vmutex lock;              /* guards only the stop wait */
    pthread_cond_t cond;
    vmutex tick_lock;         /* held through each tick: cluster_freeze waits for it */
    int frozen;               /* {tick_lock}: no more changes, no more port calls */
    /* cluster thread only */
    PGconn *pg;
    uint64_t seen_elsewhere;  /* buckets ever seen held by another session: takeovers */
    int was_up;               /* for one log line per state change */
    int fresh;                /* the session was made this tick: look, do not take yet */
    int announced;            /* on_session(1) told for this session */
};

/* ---- pure ---- */

unsigned cluster_bucket_of(const char *id)
{
    uint64_t h = idtable_hash_str(id);
    return (unsigned)((h ^ (h >> 32) ^ (h >> 16)) % CLUSTER_BUCKETS);
}

unsigned cluster_popcount(uint64_t mask)
{
    unsigned n = 0;
    for (; mask; mask &= mask - 1)
        n++;
    return n;
}

unsigned cluster_fair_share(unsigned members)
{
    if (members == 0)
        members = 1;
    return (CLUSTER_BUCKETS + members - 1) / members;
}

cluster_plan cluster_plan_decide(unsigned members, uint64_t owned, uint64_t held_elsewhere,
                                 unsigned start)
{
    cluster_plan p = {0, 0};
    unsigned fair = cluster_fair_share(members), n = cluster_popcount(owned);
    if (n < fair) {
        uint64_t free_ = ~(owned | held_elsewhere);
        unsigned want = fair - n;
        for (unsigned i = 0; i < CLUSTER_BUCKETS && want; i++) {
            unsigned b = (start + i) % CLUSTER_BUCKETS;
            if (free_ & cluster_bit(b)) {
                p.lock |= cluster_bit(b);
                want--;
            }
        }
    } else if (n > fair) {
        /* One per tick: a joining instance takes them as they come free,
         * and a miscount for one tick moves one bucket, not half. The last
         * one before start, so what we keep is what we searched first. */
        for (unsigned i = 1; i <= CLUSTER_BUCKETS; i++) {
            unsigned b = (start + CLUSTER_BUCKETS - i) % CLUSTER_BUCKETS;
            if (owned & cluster_bit(b)) {
                p.unlock = cluster_bit(b);
                break;
            }
        }
    }
    return p;
}

/* ---- the session ---- */

/* Stops owning what is in mask, telling the port bucket by bucket. */
static void cluster__drop(cluster *c, uint64_t mask)
{
    uint64_t before = atomic_fetch_and(&c->owned, ~mask);
    uint64_t gone = before & mask;
    for (unsigned b = 0; b < CLUSTER_BUCKETS && !c->frozen; b++)
        if (gone & cluster_bit(b))
            c->port.on_change(c->port.ctx, b, 0);
    atomic_store_explicit(&c->m->cluster_owned, cluster_popcount(atomic_load(&c->owned)),
                          memory_order_relaxed);
}

/* The session is gone or cannot be trusted. Clinical rule first: the
 * buckets stay owned, so their alarms, escalations and completeness go on
 * through a database outage (the store queue holds the writes). Only when
 * the session is back and another instance is found holding a bucket is it
 * dropped (cluster__relock). The cost, during a partition that cuts this
 * instance alone from the database: after the server drops its session
 * (~CLUSTER_SILENT_DROP_S) another instance takes its buckets and both
 * evaluate them until the partition heals — duplicate alarms, never none. */
static void cluster__fence(cluster *c, const char *why)
{
    uint64_t had = atomic_load(&c->owned);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    atomic_store_explicit(&c->m->cluster_connected, 0, memory_order_relaxed);
    atomic_store_explicit(&c->m->cluster_members, 0, memory_order_relaxed);
    if (c->port.on_session && !c->frozen && c->announced)
        c->port.on_session(c->port.ctx, 0);
    c->announced = 0;
    if (had && c->was_up)
        atomic_fetch_add_explicit(&c->m->cluster_fences, 1, memory_order_relaxed);
    if (c->was_up)
        LOG_W(TAG, "database session lost (%s): keeping my %u buckets through the outage; "
                   "reconnecting", why, cluster_popcount(had));
    c->was_up = 0;
}

/* One statement with a deadline: a result of the given status, or NULL
 * (the caller fences). One deadline for all its results (pgwait_ready) so
 * a silent server cannot hold ownership past CLUSTER_QUERY_TIMEOUT_MS; a
 * server that closed the session gives its error result, logged here. */
static PGresult *cluster__exec(cluster *c, const char *sql, int nparams, const char *const *params,
                               ExecStatusType want)
{
    if (!PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0))
        return NULL;
    int64_t deadline = vclock_mono_ms() + CLUSTER_QUERY_TIMEOUT_MS;
    PGresult *first = NULL;
    for (int guard = 0; guard < 1000; guard++) {
        if (pgwait_ready(c->pg, deadline) != PGWAIT_OK)
            goto fail;
        PGresult *r = PQgetResult(c->pg);
        if (!r)
            break;
        if (!first)
            first = r;
        else
            PQclear(r);
    }
    if (first && PQresultStatus(first) == want)
        return first;
    if (first)
        LOG_D(TAG, "query failed: %s", PQresultErrorMessage(first));
fail:
    PQclear(first);
    return NULL;
}

static int cluster__relock(cluster *c);

static int cluster__connect(cluster *c)
{
    char app[96];
    snprintf(app, sizeof app, "vigild-cluster %s", c->name);
    /* Client keepalives find a dead server; the session options make the
     * server drop a silent vigild within CLUSTER_SILENT_DROP_S, freeing its
     * buckets for the others. The URL comes first: what follows wins. */
    const char *const keys[] = {"dbname", "application_name", "connect_timeout", "keepalives",
                                "keepalives_idle", "keepalives_interval", "keepalives_count",
                                "tcp_user_timeout", "options", NULL};
    const char *const vals[] = {c->conninfo, app, "2", "1", "3", "2", "3", "9000",
                                "-c tcp_keepalives_idle=3 -c tcp_keepalives_interval=2 "
                                "-c tcp_keepalives_count=3",
                                NULL};
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        if (c->was_up || !c->started) /* never the message: it may echo the URL */
            LOG_D(TAG, "cannot connect to the database");
        PQfinish(c->pg);
        c->pg = NULL;
        return -1;
    }
    char ns[16];
    snprintf(ns, sizeof ns, "%d", CLUSTER_NS);
    const char *p[1] = {ns};
    PGresult *r = cluster__exec(c, "SELECT pg_advisory_lock_shared($1::int, 0)", 1, p, PGRES_TUPLES_OK);
    if (!r) {
        cluster__fence(c, "membership lock refused");
        return -1;
    }
    PQclear(r);
    if (cluster__relock(c) != 0) {
        cluster__fence(c, "re-locking the kept buckets failed");
        return -1;
    }
    atomic_store_explicit(&c->m->cluster_connected, 1, memory_order_relaxed);
    LOG_I(TAG, "member of the cluster as %s", c->name);
    c->was_up = 1;
    c->fresh = 1;
    return 0;
}

/* Members, and the buckets other sessions hold, in one round trip. */
static int cluster__survey(cluster *c, unsigned *members, uint64_t *elsewhere)
{
    char ns[16];
    snprintf(ns, sizeof ns, "%d", CLUSTER_NS);
    const char *p[1] = {ns};
    PGresult *r = cluster__exec(
        c,
        "SELECT objid::int, pid = pg_backend_pid() FROM pg_locks "
        "WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = $1::int::oid "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND objid <= 64",
        1, p, PGRES_TUPLES_OK);
    if (!r)
        return -1;
    unsigned n = 0;
    uint64_t other = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int obj = atoi(PQgetvalue(r, i, 0));
        int mine = PQgetvalue(r, i, 1)[0] == 't';
        if (obj == 0)
            n++;
        else if (obj >= 1 && obj <= CLUSTER_BUCKETS && !mine)
            other |= cluster_bit((unsigned)(obj - 1));
    }
    PQclear(r);
    *members = n;
    *elsewhere = other;
    return 0;
}

/* pg_try_advisory_lock on every bucket of want, one statement: *got says
 * which were granted. */
static int cluster__try(cluster *c, uint64_t want, uint64_t *got)
{
    char list[CLUSTER_BUCKETS * 4 + 4], ns[16];
    size_t len = 0;
    list[len++] = '{';
    for (unsigned b = 0; b < CLUSTER_BUCKETS; b++)
        if (want & cluster_bit(b))
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%u", len > 1 ? "," : "", b);
    snprintf(list + len, sizeof list - len, "}");
    snprintf(ns, sizeof ns, "%d", CLUSTER_NS);
    const char *p[2] = {ns, list};
    PGresult *r = cluster__exec(c,
                                "SELECT b FROM unnest($2::int[]) AS b "
                                "WHERE pg_try_advisory_lock($1::int, 1 + b)",
                                2, p, PGRES_TUPLES_OK);
    if (!r)
        return -1;
    *got = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int b = atoi(PQgetvalue(r, i, 0));
        if (b >= 0 && b < CLUSTER_BUCKETS)
            *got |= cluster_bit((unsigned)b) & want;
    }
    PQclear(r);
    return 0;
}

static int cluster__lock(cluster *c, uint64_t want)
{
    uint64_t got;
    if (cluster__try(c, want, &got) != 0)
        return -1;
    for (unsigned b = 0; b < CLUSTER_BUCKETS; b++) {
        if (!(got & cluster_bit(b)))
            continue;
        atomic_fetch_or(&c->owned, cluster_bit(b));
        if (c->seen_elsewhere & cluster_bit(b))
            atomic_fetch_add_explicit(&c->m->cluster_takeovers, 1, memory_order_relaxed);
        c->port.on_change(c->port.ctx, b, 1);
    }
    return 0;
}

/* Right after a reconnect: takes back the locks of the buckets kept
 * through the outage; those another session took meanwhile are dropped. */
static int cluster__relock(cluster *c)
{
    uint64_t kept = atomic_load(&c->owned), got;
    if (!kept)
        return 0;
    if (cluster__try(c, kept, &got) != 0)
        return -1;
    if (kept & ~got)
        LOG_W(TAG, "%u of the %u buckets kept through the outage were taken by another instance: "
                   "dropped", cluster_popcount(kept & ~got), cluster_popcount(kept));
    cluster__drop(c, kept & ~got);
    return 0;
}

static int cluster__unlock(cluster *c, uint64_t one)
{
    unsigned b = 0;
    while (b < CLUSTER_BUCKETS && !(one & cluster_bit(b)))
        b++;
    /* Stop owning before anyone else can take it. */
    cluster__drop(c, one);
    char ns[16], bs[8];
    snprintf(ns, sizeof ns, "%d", CLUSTER_NS);
    snprintf(bs, sizeof bs, "%u", b + 1);
    const char *p[2] = {ns, bs};
    PGresult *r = cluster__exec(c, "SELECT pg_advisory_unlock($1::int, $2::int)", 2, p, PGRES_TUPLES_OK);
    if (!r)
        return -1;
    PQclear(r);
    LOG_D(TAG, "released bucket %u (rebalancing)", b);
    return 0;
}

static void cluster__tick(cluster *c)
{
    if (!c->pg && cluster__connect(c) != 0)
        return;
    unsigned members;
    uint64_t elsewhere;
    if (cluster__survey(c, &members, &elsewhere) != 0) {
        cluster__fence(c, PQstatus(c->pg) == CONNECTION_OK ? "query timed out" : "connection lost");
        return;
    }
    c->seen_elsewhere |= elsewhere;
    atomic_store_explicit(&c->m->cluster_members, members, memory_order_relaxed);
    cluster_plan p = cluster_plan_decide(members, atomic_load(&c->owned), elsewhere, c->start);
    /* A session one tick old takes nothing: instances started together
     * then all see each other first and take their share at once, instead
     * of the first one taking everything and handing it back one bucket
     * per tick. */
    int fresh = c->fresh;
    if (fresh) {
        c->fresh = 0;
        p.lock = 0;
    }
    int rc = 0;
    if (p.lock)
        rc = cluster__lock(c, p.lock);
    else if (p.unlock)
        rc = cluster__unlock(c, p.unlock);
    if (rc != 0) {
        cluster__fence(c, "lock statement failed");
        return;
    }
    if (!fresh) {
        atomic_store(&c->ready, 1);
        /* Up once the first share is taken (its gains told first): until
         * then the receiver treats the devices as nobody's. */
        if (!c->announced && c->port.on_session)
            c->port.on_session(c->port.ctx, 1);
        c->announced = 1;
    }
    atomic_store_explicit(&c->m->cluster_owned, cluster_popcount(atomic_load(&c->owned)),
                          memory_order_relaxed);
}

static void *cluster__main(void *arg)
{
    cluster *c = arg;
    vthread_name("vigil-cluster");
    while (!atomic_load(&c->stop)) {
        int64_t t0 = vclock_mono_ms();
        vmutex_lock(&c->tick_lock);
        if (!c->frozen)
            cluster__tick(c);
        vmutex_unlock(&c->tick_lock);
        /* Sleep the rest of the tick; cluster_stop signals the condition. */
        int64_t wake = t0 + CLUSTER_TICK_MS;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t left = wake - vclock_mono_ms();
        if (left > 0) {
            ts.tv_sec += left / 1000;
            ts.tv_nsec += (long)(left % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            vmutex_lock(&c->lock);
            if (!atomic_load(&c->stop))
                vmutex_cond_timedwait(&c->cond, &c->lock, &ts);
            vmutex_unlock(&c->lock);
        }
    }
    vmutex_lock(&c->tick_lock);
    cluster__drop(c, CLUSTER_ALL); /* told to the port unless frozen */
    vmutex_unlock(&c->tick_lock);
    if (c->pg) {
        PQfinish(c->pg); /* frees every lock of the session */
        c->pg = NULL;
    }
    atomic_store_explicit(&c->m->cluster_connected, 0, memory_order_relaxed);
    return NULL;
}

cluster_err cluster_create(const char *conninfo, const char *name, vigil_metrics *m,
                           cluster_port port, cluster **out)
{
    if (!conninfo || !name || !m || !port.on_change || !out)
        return CLUSTER_EINVAL;
    cluster *c = calloc(1, sizeof *c);
    if (!c)
        return CLUSTER_ENOMEM;
    c->conninfo = strdup(conninfo);
    pthread_condattr_t ca;
    int cond_ok = pthread_condattr_init(&ca) == 0 &&
                  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                  pthread_cond_init(&c->cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    int lock_ok = vmutex_init(&c->lock) == 0;
    int tick_ok = vmutex_init(&c->tick_lock) == 0;
    if (!c->conninfo || !cond_ok || !lock_ok || !tick_ok) {
        if (cond_ok)
            pthread_cond_destroy(&c->cond);
        if (lock_ok)
            vmutex_destroy(&c->lock);
        if (tick_ok)
            vmutex_destroy(&c->tick_lock);
        free(c->conninfo);
        free(c);
        return CLUSTER_ENOMEM;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    c->m = m;
    c->port = port;
    c->start = cluster_bucket_of(name);
    atomic_store(&m->cluster_enabled, 1);
    *out = c;
    return CLUSTER_OK;
}

cluster_err cluster_start(cluster *c)
{
    if (pthread_create(&c->thread, NULL, cluster__main, c) != 0) {
        LOG_E(TAG, "cannot start the cluster thread");
        return CLUSTER_ETHREAD;
    }
    c->started = 1;
    return CLUSTER_OK;
}

void cluster_stop(cluster *c)
{
    if (!c)
        return;
    if (c->started) {
        vmutex_lock(&c->lock);
        atomic_store(&c->stop, 1);
        pthread_cond_signal(&c->cond);
        vmutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
    }
    pthread_cond_destroy(&c->cond);
    vmutex_destroy(&c->lock);
    vmutex_destroy(&c->tick_lock);
    free(c->conninfo);
    free(c);
}

void cluster_freeze(cluster *c)
{
    if (!c)
        return;
    vmutex_lock(&c->tick_lock); /* waits out a tick in progress (bounded by its deadlines) */
    c->frozen = 1;
    vmutex_unlock(&c->tick_lock);
}

int cluster_owns(const cluster *c, const char *device_id)
{
    if (!c)
        return 1;
    return (atomic_load_explicit(&c->owned, memory_order_acquire) &
            cluster_bit(cluster_bucket_of(device_id))) != 0;
}

uint64_t cluster_owned_mask(const cluster *c)
{
    return c ? atomic_load_explicit(&c->owned, memory_order_acquire) : CLUSTER_ALL;
}

int cluster_ready(const cluster *c)
{
    return !c || atomic_load(&c->ready);
}
