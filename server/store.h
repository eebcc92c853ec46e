/* store — where readings and device state are kept. This header is the
 * storage interface: ingest, live and API code only ever see store_*, so a
 * PostgreSQL implementation can sit behind it later. The SQLite store
 * (store_sqlite.c, store_sqlite_writer.c, store_sqlite_read.c) is the
 * embedded default.
 *
 * Writes are asynchronous. store_put_*() copies the record into a bounded
 * queue and returns at once; a writer thread owned by the store drains it in
 * batched transactions. When the queue is full the record is NOT stored:
 * store_put_*() returns STORE_EFULL, the store counts it (dropped_full), and
 * the caller carries on — the live path is never stalled by storage. Those
 * readings are then missing from the store, which the completeness tracker
 * sees as a gap and asks the device to resend.
 *
 * Reads (store_list_devices, store_get_device, store_query_readings,
 * store_load_completeness) are synchronous on the caller's thread, through a
 * separate read-only connection (WAL lets it run beside the writer). They
 * are serialized by a mutex inside the store, so any thread other than the
 * store's own writer may call them. Today that is main at startup (loading
 * the hub and the completeness tracker) and then the query worker thread
 * that serves REST history and device reads; a long query delays the next
 * read, never a write.
 *
 * Ownership: strings passed in are copied; arrays returned through out
 * parameters are malloc'ed and owned by the caller (free with the matching
 * *_free function). */
#ifndef VIGIL_STORE_H
#define VIGIL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "downsample.h"
#include "telemetry.h"

typedef enum store_err {
    STORE_OK = 0,
    STORE_EFULL = -1,     /* write queue full; record not queued */
    STORE_ENOTFOUND = -2, /* no such device */
    STORE_EINVAL = -3,    /* bad argument */
    STORE_EIO = -4,       /* database error; detail was logged */
    STORE_ENOMEM = -5,
    STORE_EEXIST = -6,    /* admin: a user with that name already exists */
} store_err;

typedef struct store store;

typedef struct store_options {
    const char *path;        /* SQLite file; created if missing */
    size_t queue_capacity;   /* records; 0 means 65536 */
    size_t batch_max;        /* records per transaction; 0 means 2048 */
    int64_t retention_ms;    /* readings older than this are pruned; 0 keeps all */
} store_options;

/* Opens (and migrates) the database and starts the writer thread.
 * On failure returns an error and writes a message into err. */
store_err store_open(const store_options *opt, store **out, char *err, size_t errlen);

/* Stops accepting writes, flushes everything queued, joins the writer and
 * closes the database. NULL is allowed. */
void store_close(store *st);

/* The engine's name: "sqlite" or "postgresql" ("" for NULL). Any thread. */
const char *store_engine(const store *st);

/* Queue a validated reading / status change. Any thread; never blocks. */
store_err store_put_reading(store *st, const telemetry_reading *r);
store_err store_put_status(store *st, const telemetry_status *s);

/* A range of readings the completeness tracker gave up on (docs/RELIABILITY.md).
 * Queued like a reading; reason is copied (≤ 15 chars). Any thread. */
store_err store_put_lost(store *st, const char *device_id, int64_t boot, int64_t from_seq,
                         int64_t to_seq, const char *reason, int64_t at_ms);

/* Startup, before the ingest thread runs: what completeness needs to rebuild
 * itself. Calls island() once per maximal run of consecutive seqs stored for
 * a device's current boot, within its last 200,000 seqs (nothing older can
 * be resent) — gaps-and-islands over the unique (device, boot, seq) index —
 * then lost() once per persisted lost range. Caller's thread. */
typedef struct store_completeness_cb {
    void (*island)(void *ctx, const char *device_id, int64_t boot, int64_t lo, int64_t hi);
    void (*lost)(void *ctx, const char *device_id, int64_t boot, int64_t lo, int64_t hi);
    void *ctx;
} store_completeness_cb;
store_err store_load_completeness(store *st, const store_completeness_cb *cb);

/* ---- alarms (server/alarm.h) ----
 * One alarm event, queued like a reading (same bound, same "when full"
 * rule): the alarm's row takes its new state and the event joins the
 * alarm's history. Any thread. */
typedef struct alarm_event alarm_event;
typedef struct alarm_rec alarm_rec;
store_err store_put_alarm(store *st, const alarm_event *ev);
/* Startup: every alarm not cleared, oldest first. Caller's thread (read
 * connection). *out malloc'ed (NULL when *n == 0). */
store_err store_load_open_alarms(store *st, alarm_rec **out, size_t *n);
/* A device's alarms that started in [from_ms, to_ms] (cleared or not),
 * newest first, at most limit. */
store_err store_query_alarms(store *st, const char *device_id, int64_t from_ms, int64_t to_ms,
                             size_t limit, alarm_rec **out, size_t *n);
/* A device's alarm settings (PUT .../alarm-settings), queued as one row per
 * condition: all of them or, when the queue has no room for all, none
 * (STORE_EFULL). Any thread. */
typedef struct alarm_settings alarm_settings;
store_err store_put_alarm_settings(store *st, const char *device_id, const alarm_settings *s,
                                   const char *user, int64_t at_ms);
/* The stored settings of one device over the defaults: STORE_OK (found),
 * STORE_ENOTFOUND (*out = the defaults). Read connection. */
store_err store_get_alarm_settings(store *st, const char *device_id, alarm_settings *out);
/* Startup: every device with stored settings; cb per device. */
store_err store_load_alarm_settings(store *st,
                                    void (*cb)(void *ctx, const char *device_id, const alarm_settings *s),
                                    void *ctx);

/* Counters, for /metrics and /healthz. Any thread. */
typedef struct store_stats {
    uint64_t queued;        /* records accepted into the queue */
    uint64_t stored;        /* readings inserted */
    uint64_t duplicates;    /* readings ignored as already stored (device, boot, seq) */
    uint64_t dropped_full;  /* records refused because the queue was full */
    uint64_t write_errors;  /* failed transactions (records are retried, see store_sqlite_writer.c) */
    uint64_t pruned;        /* readings removed by retention */
    uint64_t rejected;      /* records the database refused permanently (constraint); dropped */
    size_t queue_depth;
    size_t queue_capacity;
    int writable;           /* 1 if the last write transaction succeeded */
} store_stats;
void store_get_stats(store *st, store_stats *out);

/* A device as the store knows it. */
typedef struct store_device {
    char id[TELEMETRY_ID_MAX + 1];
    int64_t first_seen_ms;
    int64_t last_seen_ms;    /* last reading or status received */
    int online;              /* 1 online, 0 offline, -1 never reported */
    int64_t status_ms;       /* when the status last changed */
    char fw[TELEMETRY_FW_MAX + 1];
    int64_t interval_ms;     /* announced sampling interval, 0 if unknown */
    int64_t boot;            /* last boot id seen, -1 if unknown */
    int has_last;
    telemetry_reading last;  /* latest reading (by receive time), if has_last */
} store_device;

/* All devices, sorted by id. *out is malloc'ed (NULL when *n == 0).
 * These two (and store_load_completeness) see every reading committed
 * before the call: an engine that copies the latest reading into the row
 * later (SQLite) has the writer do it first, waiting up to 2 s for it,
 * and not at all while writes fail (the read gets what is stored). */
store_err store_list_devices(store *st, store_device **out, size_t *n);
store_err store_get_device(store *st, const char *id, store_device *out);

/* Readings of one device with t in [from_ms, to_ms], where t is the device's
 * epoch time "ts" when it sent one, else the receive time. If the range holds
 * at most max_points readings they are returned raw, oldest first; otherwise
 * they are reduced to at most max_points min/avg/max buckets. */
typedef struct store_series {
    size_t total;                 /* readings in the range */
    int downsampled;
    telemetry_reading *raw;       /* when !downsampled: total entries, t order */
    int64_t *raw_t;               /* the t of each raw entry */
    downsample ds;                /* when downsampled: ds.b holds ds.nbuckets */
} store_series;
store_err store_query_readings(store *st, const char *id, int64_t from_ms, int64_t to_ms,
                               size_t max_points, store_series *out);
void store_series_free(store_series *s);

/* ---- access control: users, API tokens, sessions, the audit trail ----
 * Secrets never reach the store in clear: passwords as Argon2id strings,
 * tokens and session ids as the hex BLAKE2b of their text (auth.h). Roles
 * are their names ("viewer" .. "admin"). Audit rows are pruned with the
 * readings (same retention cutoff); expired sessions with them. */
#define STORE_NAME_MAX 64
#define STORE_HASH_MAX 127      /* an Argon2id string */
#define STORE_KEY_HEX 64
#define STORE_TOKEN_ID_MAX 16
#define STORE_ROLE_MAX 15

typedef struct store_user {
    char name[STORE_NAME_MAX + 1];
    char role[STORE_ROLE_MAX + 1];
    char pwhash[STORE_HASH_MAX + 1];
    int64_t created_ms;
} store_user;

typedef struct store_token {
    char id[STORE_TOKEN_ID_MAX + 1];
    char key[STORE_KEY_HEX + 1];
    char name[STORE_NAME_MAX + 1];
    char role[STORE_ROLE_MAX + 1];
    int64_t created_ms, last_used_ms; /* last_used 0: never */
} store_token;

typedef struct store_session {
    char key[STORE_KEY_HEX + 1];
    char user[STORE_NAME_MAX + 1];
    char role[STORE_ROLE_MAX + 1];  /* reads: the user's current role */
    char csrf[48];
    int64_t created_ms, last_used_ms, expires_ms;
} store_session;

typedef struct store_audit {
    int64_t t_ms;
    char user[STORE_NAME_MAX + 1];
    char address[48];
    char action[16];
    char target[STORE_NAME_MAX + 1];
    char outcome[12];
    char detail[40];
} store_audit;

/* One asynchronous access-control write, queued like a reading (same
 * bound, same "when full" rule: STORE_EFULL, counted). Any thread. */
typedef enum store_auth_op {
    STORE_AUTH_USER_ADD = 1,      /* u (fails on the row's UNIQUE name: rejected, logged) */
    STORE_AUTH_USER_UPDATE,       /* u.name; u.role and/or u.pwhash where not "" */
    STORE_AUTH_USER_DEL,          /* u.name; also deletes the user's sessions */
    STORE_AUTH_TOKEN_ADD,         /* t */
    STORE_AUTH_TOKEN_DEL,         /* t.id */
    STORE_AUTH_TOKEN_USED,        /* t.id, t.last_used_ms */
    STORE_AUTH_SESSION_ADD,       /* s */
    STORE_AUTH_SESSION_DEL,       /* s.key */
    STORE_AUTH_SESSION_USED,      /* s.key, s.last_used_ms */
    STORE_AUTH_AUDIT,             /* a */
} store_auth_op;

typedef struct store_auth_write {
    store_auth_op op;
    union {
        store_user u;
        store_token t;
        store_session s;
        store_audit a;
    } v;
} store_auth_write;
store_err store_put_auth(store *st, const store_auth_write *w);
/* Waits until every record queued before the call has been written (or
 * refused), at most timeout_ms: STORE_OK, or STORE_EIO on timeout. The
 * writer commits at once for it (no group-commit wait, see store.c). For
 * the query worker after an admin change, so the next check reads it. Any
 * thread but the writer. */
store_err store_sync(store *st, int64_t timeout_ms);
/* The same for one device's records (readings, statuses, lost ranges,
 * alarms, alarm settings — not access control): waits until every one of
 * them queued before the call has been written, at most timeout_ms. Returns
 * at once, without forcing a commit, when none of them is still waiting —
 * so a REST read of a device that is not reporting does not cost the
 * writer a transaction. May wait for other devices' records queued before
 * (the queue is FIFO). Any thread but the writer. */
store_err store_sync_device(store *st, const char *device_id, int64_t timeout_ms);

/* Reads (the read connection; any thread but the writer). Arrays are
 * malloc'ed, owned by the caller (free()); NULL when *n == 0. */
store_err store_get_user(store *st, const char *name, store_user *out); /* STORE_ENOTFOUND */
store_err store_list_users(store *st, store_user **out, size_t *n);      /* by name; pwhash "" */
store_err store_list_tokens(store *st, store_token **out, size_t *n);    /* by created */
/* Sessions not yet past expires_ms at now_ms, with their user's current
 * role (sessions of deleted users are not returned). */
store_err store_list_sessions(store *st, int64_t now_ms, store_session **out, size_t *n);
/* Audit rows with t in [from_ms, to_ms] (and of user, if not NULL), newest
 * first, at most limit. */
store_err store_query_audit(store *st, int64_t from_ms, int64_t to_ms, const char *user,
                            size_t limit, store_audit **out, size_t *n);

/* Administration, synchronous on the caller's thread through a connection
 * of its own (opened on first use, closed by store_close): for the CLI, a
 * separate process that may run beside vigild (SQLite locks; a busy database
 * is waited for up to 5 s). Never from vigild's own threads. */
store_err store_admin_user_add(store *st, const store_user *u);   /* STORE_EEXIST */
store_err store_admin_user_update(store *st, const char *name, const char *role,
                                  const char *pwhash);             /* NULL: unchanged; a new pwhash also
                                                                      deletes the user's sessions; STORE_ENOTFOUND */
store_err store_admin_user_del(store *st, const char *name);      /* + sessions; STORE_ENOTFOUND */
store_err store_admin_token_add(store *st, const store_token *t);
store_err store_admin_token_del(store *st, const char *id);       /* STORE_ENOTFOUND */
store_err store_admin_audit(store *st, const store_audit *a);

#endif
