/* cluster — several vigild on one broker and one PostgreSQL: who is a
 * member, and which instance owns which devices (docs/ARCHITECTURE.md,
 * "Several instances").
 *
 * Devices hash into CLUSTER_BUCKETS buckets (cluster_bucket_of, pure and
 * stable: every instance must agree). An instance is a member while its
 * session holds a shared advisory lock on (CLUSTER_NS, 0); it owns bucket b
 * while it holds the exclusive advisory lock (CLUSTER_NS, 1 + b). A dead
 * instance's session ends and PostgreSQL frees its locks at once (kill -9
 * closes the socket); a silent one is dropped by TCP keepalives (set on both
 * ends, CLUSTER_SILENT_DROP_S). Every CLUSTER_TICK_MS the cluster thread
 * counts the members N and moves towards its fair share ceil(K/N): it tries
 * free buckets while it owns fewer, releases at most one per tick while it
 * owns more (cluster_plan_decide, pure). A failed or slow
 * (CLUSTER_QUERY_TIMEOUT_MS) round trip drops the session but keeps the
 * buckets owned through the outage — alarms must not stop with the
 * database —; on reconnect they are re-locked at once and those another
 * instance took meanwhile are dropped (a partition isolating one instance
 * can thus give a bucket two evaluators until it heals: duplicate alarms,
 * never none).
 *
 * Without a cluster (no postgresql:// store: one instance) there is no
 * cluster object; the caller owns every bucket.
 *
 * Threads: cluster_create/start/stop from main. The cluster thread owns the
 * libpq connection and calls the port (on_change) — the receiver must only
 * record it and return. cluster_owns / cluster_owned_mask: any thread,
 * lock-free (one atomic load). Ownership: the conninfo and name are copied;
 * m and the port's ctx are borrowed and must outlive the cluster. */
#ifndef VIGIL_CLUSTER_H
#define VIGIL_CLUSTER_H

#include <stdint.h>

typedef struct cluster cluster;
typedef struct vigil_metrics vigil_metrics;

#define CLUSTER_BUCKETS 64           /* K: a bitmap in one 64-bit word */
#define CLUSTER_ALL ((uint64_t)~0ull)
#define CLUSTER_NS 1447642929        /* advisory lock namespace ("VIG1") */
#define CLUSTER_TICK_MS 500
#define CLUSTER_QUERY_TIMEOUT_MS 2000 /* a round trip slower than this drops the session */
#define CLUSTER_SILENT_DROP_S 9       /* keepalives: idle 3 s + 3 probes x 2 s */
/* Broker topic: alarm operations a non-owner forwards to the owner
 * (docs/PROTOCOL.md; QoS 1, not retained). */
#define CLUSTER_ALARM_OPS_TOPIC "vigil/cluster/alarm-ops"

/* ---- pure ---- */

/* The bucket of a device id: FNV-1a (as idtable), folded. Stable forever:
 * changing it needs every instance stopped. */
unsigned cluster_bucket_of(const char *id);
static inline uint64_t cluster_bit(unsigned bucket) { return (uint64_t)1 << (bucket & 63u); }

/* One tick's decision: lock these free buckets, or unlock these owned
 * ones (never both; at most one unlock). */
typedef struct cluster_plan {
    uint64_t lock, unlock;
} cluster_plan;
/* members: granted membership locks (0 counts as 1: ourselves); owned: ours;
 * held_elsewhere: buckets another session holds; start: where the search
 * for free buckets begins (spreads concurrent starters). */
cluster_plan cluster_plan_decide(unsigned members, uint64_t owned, uint64_t held_elsewhere,
                                 unsigned start);
unsigned cluster_fair_share(unsigned members);
unsigned cluster_popcount(uint64_t mask);

/* ---- the service ---- */

/* Bucket gained (owned 1) or lost (owned 0); the session up (1: after its
 * first share was taken, the gains told first) or lost (0: every bucket
 * lost just before). On the cluster thread. on_session may be NULL. */
typedef struct cluster_port {
    void (*on_change)(void *ctx, unsigned bucket, int owned);
    void (*on_session)(void *ctx, int up);
    void *ctx;
} cluster_port;

typedef enum cluster_err { CLUSTER_OK = 0, CLUSTER_EINVAL = -1, CLUSTER_ENOMEM = -2, CLUSTER_ETHREAD = -3 } cluster_err;

/* conninfo: the postgresql:// URL (never logged); name: this instance (the
 * MQTT client id), shown as application_name. No connection is made yet. */
cluster_err cluster_create(const char *conninfo, const char *name, vigil_metrics *m,
                           cluster_port port, cluster **out);
cluster_err cluster_start(cluster *c);
/* Shutdown, before the port's receiver goes: from its return on, ownership
 * no longer changes and the port is never called again; the locks stay
 * held (nobody else takes our buckets yet). Waits out a tick in progress.
 * NULL-safe. */
void cluster_freeze(cluster *c);
/* Stops the thread, releases every lock (closes the session); the port is
 * told of the losses unless frozen. NULL-safe. */
void cluster_stop(cluster *c);

/* 1 once the thread has taken its first decision on a settled view of the
 * members (it owns its share, or knows there is none for it): main waits
 * for it, bounded, before the broker session starts. Any thread. */
int cluster_ready(const cluster *c);

/* Lock-free, any thread. A NULL cluster owns everything. */
int cluster_owns(const cluster *c, const char *device_id);
uint64_t cluster_owned_mask(const cluster *c);

#endif
