/* query — REST reads (readings history, completeness) off the web thread.
 * A history query can take tens of milliseconds (24 h downsampled ~22 ms);
 * run on the web thread it would hold WebSocket fan-out that long. Here the
 * web thread validates a request, submits a job and carries on; a worker
 * thread runs the store / tracker read and builds the whole JSON body; the
 * web thread takes the finished answer back and writes it.
 *
 * One worker: every store read goes through the store's single read-only
 * connection and its mutex (store.h), so a second worker would only queue on
 * that lock; one keeps answers in submission order and the code simple. It
 * runs at nice +10 so that on a busy host queries take what the live path
 * leaves, and its REST reads of stored data sync the store first (they see
 * what vigild accepted before them, past the store's group commit).
 *
 * Queues, both rings under one vmutex:
 *   jobs  (web → worker), capacity `cap`. When full, query_submit refuses
 *         (QUERY_EFULL) and the request answers 503 "busy, retry".
 *   done  (worker → web), capacity `cap`. Never full: query_submit admits a
 *         job only while queued + running + finished-but-not-taken < cap.
 * After pushing to `done` the worker calls the waker (web passes one that
 * calls lws_cancel_service, as for the hub); the web thread then takes the
 * answers with query_take from LWS_CALLBACK_EVENT_WAIT_CANCELLED.
 *
 * Connections that go away: a job carries an opaque `conn` token (web.c
 * passes the wsi) and a serial number query_submit hands out, which web.c
 * keeps in the connection's per-session data while the answer is pending.
 * When the connection closes (or starts another transaction), web.c calls
 * query_cancel(serial): after that no answer with that serial is ever
 * returned by query_take — a queued job is dropped unrun, a running one's
 * answer is discarded, a finished one is freed. So every token query_take
 * returns belongs to a live connection, and web.c also checks the serial
 * against the one in its session data before answering.
 *
 * Ownership: query owns queued jobs and finished answers; query_take moves
 * the body (an sbuf with `headroom` bytes in front, LWS_PRE for web.c, so it
 * goes to lws_write without a copy) to the caller, who frees it. The store,
 * tracker and waker context are borrowed and must outlive query_stop.
 *
 * Threads: query_start/query_stop by the thread that owns the web (before
 * its thread starts / after it has been joined); query_submit, query_cancel
 * and query_take from the web thread only; everything else runs on the
 * worker. No libwebsockets here: only threads, store/tracker reads, JSON. */
#ifndef VIGIL_QUERY_H
#define VIGIL_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"
#include "telemetry.h"

typedef struct store store;
typedef struct tracker tracker;
typedef struct query query;

typedef enum query_err {
    QUERY_OK = 0,
    QUERY_EFULL = -1,   /* job queue full: nothing queued, answer 503 */
    QUERY_ENOMEM = -2,
    QUERY_ETHREAD = -3, /* the worker thread could not start */
} query_err;

typedef enum query_kind {
    QUERY_READINGS = 1,     /* store_query_readings(dev, from, to, max_points) */
    QUERY_COMPLETENESS = 2, /* tracker_device_json(dev, boot, from, to); device known */
    QUERY_ALARMS = 3,       /* store_query_alarms(dev, from, to, limit): alarm history */
    QUERY_ALARM_SETTINGS = 4, /* the device's alarm settings (after store_sync: a PUT just made is seen) */
    /* Access control (auth.h): slow or store-bound work the web thread must
     * not do. Secrets in a job are wiped once it has run. */
    QUERY_LOGIN = 10,       /* user, password: Argon2 verify (a dummy hash for
                               unknown users); answers auth_ok, role; no body */
    QUERY_AUTH_REFRESH = 11,/* no input: the sessions + tokens snapshot in
                               snap/nsnap; conn NULL; no body */
    QUERY_USERS = 12,       /* GET /api/users */
    QUERY_TOKENS = 13,      /* GET /api/tokens */
    QUERY_AUDIT = 14,       /* from, to, user ("" for all), limit */
    QUERY_USER_ADD = 15,    /* user, role, password: 201 / 409; hashes, queues the write */
    QUERY_USER_UPDATE = 16, /* user, role (0: unchanged), password (len 0: unchanged): 200 / 404;
                               a new password also deletes the user's sessions
                               but `keep` (the caller's own, "" for none) */
    QUERY_USER_DEL = 17,    /* user: 204 / 404; queues the delete */
} query_kind;

/* What a route needs, validated by the web thread. */
typedef struct query_job {
    query_kind kind;
    char dev[TELEMETRY_ID_MAX + 1];
    int64_t from, to;
    int64_t max_points;  /* readings: 1..10000 */
    int64_t boot;        /* completeness: -1 for the current boot */
    void *conn;          /* opaque to query: handed back in the answer */
    /* access-control jobs */
    char user[65];
    int role;            /* auth_role */
    char password[1025];
    size_t password_len;
    int64_t limit;
    char keep[65];       /* QUERY_USER_UPDATE: session key (hex) that survives a password change */
} query_job;

/* A finished answer. */
typedef struct query_done {
    void *conn;
    uint64_t serial;
    unsigned status;     /* HTTP status */
    sbuf body;           /* JSON, with `headroom`; the caller frees it */
    query_kind kind;
    int auth_ok;         /* QUERY_LOGIN: 1 if the password matched */
    int role;            /* QUERY_LOGIN, QUERY_USER_*: the user's role (auth_role) */
    struct auth_entry *snap; /* QUERY_AUTH_REFRESH: malloc'ed, nsnap entries; the caller frees */
    size_t nsnap;
} query_done;

typedef struct query_config {
    store *st;
    tracker *trk;                /* NULL: completeness jobs answer 503 */
    size_t cap;                  /* outstanding jobs; 0 means 64 */
    size_t headroom;             /* bytes in front of every body (LWS_PRE) */
    void (*wake)(void *ctx);     /* any thread; called after an answer is queued */
    void *wake_ctx;
} query_config;

/* Starts the worker. */
query_err query_start(const query_config *cfg, query **out);
/* Stops and joins the worker (after its current job), then discards queued
 * jobs and untaken answers. NULL-safe. */
void query_stop(query *q);

/* Queues a job; on QUERY_OK *serial (never 0) names it. Web thread. */
query_err query_submit(query *q, const query_job *job, uint64_t *serial);
/* No answer for serial will be returned any more. Idempotent; 0 is a no-op. Web thread. */
void query_cancel(query *q, uint64_t serial);
/* Moves the oldest finished answer into *out: 1, or 0 when none. Web thread. */
int query_take(query *q, query_done *out);

/* Builds the answer to one job (the worker's work, exposed for tests):
 * the status code, and the JSON body appended to `out`. */
unsigned query_run(store *st, tracker *trk, const query_job *job, sbuf *out);

/* The access-control snapshot (QUERY_AUTH_REFRESH's work): live sessions
 * with their user's role, and tokens, as auth_entry (session times as
 * given by the store). *out malloc'ed. Any thread but the store writer:
 * the worker, and the web's set-up (web_start) before its thread runs. */
int query_auth_snapshot(store *st, int64_t now_ms, struct auth_entry **out, size_t *n);

#endif
