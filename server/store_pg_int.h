/* store_pg_int — private to the PostgreSQL engine (store_pg*.c): the
 * engine's state and the helpers its parts share. Nothing outside
 * store_pg*.c includes this; store.c sees only store_pg_backend
 * (store_backend.h).
 *
 * The parts:
 *  - store_pg.c        connections, open/close, schema migrations,
 *                      partitions, the backend table (store_path_is_pg is
 *                      store.c's);
 *  - store_pg_write.c  write_batch (pipeline mode) and prune;
 *  - store_pg_read.c   every read and the admin calls.
 *
 * Threads and ownership (as store_backend.h calls an engine):
 *  - w (the write connection) and everything under "Writer thread only"
 *    belong to the store's writer thread: write_batch and prune;
 *  - r (the read connection) is used under rlock by any reading thread;
 *  - a (the admin connection) by the CLI's thread, opened on first use;
 *  - conninfo and password are set at open and only read after; the
 *    password is kept only to scrub it out of messages, never printed.
 * A connection found broken is reset (PQreset, bounded by connect_timeout)
 * at its next use; the call that found it broken fails (STORE_WR_RETRY /
 * STORE_EIO).
 *
 * Every connection is non-blocking (PQsetnonblocking) and no call waits
 * inside libpq: each wait for an answer polls PQsocket for at most
 * answer_ms (store_pg__await). A backend alive at the TCP level that never
 * answers (stopped, hung storage) is thus treated as a lost connection:
 * PQfinish, the pointer set to NULL, the call fails and the next use
 * connects anew. */
#ifndef VIGIL_STORE_PG_INT_H
#define VIGIL_STORE_PG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "idtable.h"
#include "sbuf.h"
#include "store_backend.h"
#include "vthread.h"

typedef struct store_pg_params store_pg_params; /* below */

#define STORE_PG_DAY_MS 86400000LL
/* The server-side bound on one statement, set on every connection
 * (statement_timeout) unless the URL's options set their own. */
#define STORE_PG_STATEMENT_TIMEOUT_MS 30000
/* The client-side deadline on a wait for an answer is the session's
 * statement_timeout plus this margin: long enough that a live backend's own
 * timeout (an error, the session kept) always comes first, even after a
 * lock wait and the error's trip back over a WAN; short enough that a hung
 * backend frees the writer well before a full store queue (--store-queue:
 * ~100 s at 1,000 readings/s) refuses readings. */
#define STORE_PG_ANSWER_MARGIN_MS 5000
#define STORE_PG_PARTS_AHEAD 2 /* partitions exist for today and this many days after */

/* One result the writer expects back from the pipeline, in send order. */
typedef struct store_pg_expect {
    size_t rec;  /* index in the batch (a run: its first record) */
    int what;    /* STORE_PG_X_* */
} store_pg_expect;
enum { STORE_PG_X_OTHER = 0, STORE_PG_X_READING, STORE_PG_X_TOUCH, STORE_PG_X_RUN };
#define STORE_PG_RUN_COLS 16 /* arrays of a run of readings: id, then the reading's 15 columns */

/* A per-batch entry of store_pg.lasts. */
typedef struct store_pg_last {
    char id[TELEMETRY_ID_MAX + 1];
    size_t idx;
} store_pg_last;

typedef struct store_pg {
    char label[192];  /* host:port/dbname: the only name of the database we log */
    char *conninfo;   /* the URL as given (holds the password: never logged) */
    char *password;   /* the URL's password or NULL, to scrub it from messages */
    size_t batch_max;
    /* Deadline of any wait for an answer (statement_timeout + margin); set
     * at open from the writer's session, only read after. */
    int answer_ms;

    /* Writer thread only. */
    PGconn *w;
    /* Device ids known to have a row (committed), so a reading skips the
     * devices upsert; cleared on any failed batch. */
    idtable known;
    int w_ready;             /* statements prepared on this session of w */
    store_pg_expect *expect; /* pipeline results awaited: 4 * batch_max + 8 entries */
    unsigned char *stored;   /* per batch record: 1 reading inserted, 2 refused, else 0 */
    /* Per batch: device id -> index of its latest stored reading (by receive
     * time), applied once per device; sized for 2 * batch_max, never grows. */
    idtable lasts;
    int64_t parts_day;       /* the UTC day partitions were last ensured from (-1: never) */
    int prune_failing;
    sbuf run[STORE_PG_RUN_COLS]; /* a run of readings as array literals, one per column */

    /* Guarded by rlock. */
    vmutex rlock;
    int rlock_init;
    PGconn *r;

    /* The CLI's thread. */
    PGconn *a;
} store_pg;

/* ---- store_pg.c ---- */

/* application_name of each connection, so pg_stat_activity tells them
 * apart (an operator's view, the hung-backend test). */
#define STORE_PG_APP_WRITER "vigild-writer"
#define STORE_PG_APP_READER "vigild-reader"
#define STORE_PG_APP_ADMIN "vigild-admin"

/* Connects with the engine's safety settings (connect_timeout, keepalives,
 * statement_timeout, application_name app) over the URL, non-blocking. On
 * failure err says why without secrets and *out is NULL. */
int store_pg__connect(const store_pg *pg, const char *app, PGconn **out, char *err, size_t errlen);
/* Makes *c usable: connects if NULL, PQreset if broken. 0 or -1 (err set). */
int store_pg__ensure(const store_pg *pg, const char *app, PGconn **c, char *err, size_t errlen);

/* Outcome of a wait for the server's answer. */
typedef enum {
    STORE_PG_WAIT_OK = 0,      /* a result can be taken without blocking */
    STORE_PG_WAIT_BROKEN = -1, /* the connection failed (err set) */
    STORE_PG_WAIT_HUNG = -2    /* no answer within answer_ms: *c finished, NULL (err set) */
} store_pg_wait;
/* Sends what libpq holds for *c and waits until PQgetResult will not block,
 * for at most pg->answer_ms (pgwait_ready).
 * On HUNG the connection is dropped like a lost one: PQfinish, *c = NULL. */
store_pg_wait store_pg__await(const store_pg *pg, PGconn **c, char *err, size_t errlen);
/* After a PQsend* on *c (sent: its return value), outside pipeline mode:
 * every result of the command, each wait bounded by store_pg__await;
 * returns the last one (PQexec's rule), to PQclear. NULL when the send
 * failed, the connection broke or hung (then *c is NULL), err set. */
PGresult *store_pg__finish(const store_pg *pg, PGconn **c, int sent, char *err, size_t errlen);
/* PQexecParams with a bounded wait (p NULL: no parameters). As
 * store_pg__finish. */
PGresult *store_pg__exec_params(const store_pg *pg, PGconn **c, const char *sql,
                                const store_pg_params *p, char *err, size_t errlen);
/* err = prefix + the connection's / result's message, password scrubbed,
 * one line. */
void store_pg__errmsg(const store_pg *pg, char *err, size_t errlen, const char *prefix,
                      const char *msg);
/* Runs a command without parameters (several statements allowed), waits
 * bounded; 0, or -1 with err set. */
int store_pg__exec(const store_pg *pg, PGconn **c, const char *sql, char *err, size_t errlen);
/* Creates the partitions for day .. day + STORE_PG_PARTS_AHEAD (UTC days
 * since the epoch) that do not exist yet, inside the caller's transaction
 * (which holds the schema lock). 0 or -1 (err set). */
int store_pg__ensure_partitions(const store_pg *pg, PGconn **c, int64_t day, char *err,
                                size_t errlen);
/* The advisory lock key shared by migrations and partition DDL. */
#define STORE_PG_LOCK_SCHEMA 0x76696731LL /* "vig1" */
#define STORE_PG_LOCK_PRUNE 0x76696732LL  /* "vig2" */

/* ---- store_pg_write.c ---- */
store_wr store_pg__write_batch(void *impl, const store_rec *batch, size_t n,
                               store_batch_result *res, char *err, size_t errlen);
int64_t store_pg__prune(void *impl, int64_t cutoff_ms, int64_t now_ms, int64_t budget, char *err,
                        size_t errlen);

/* ---- store_pg_read.c ---- */
store_err store_pg__list_devices(void *impl, store_device **out, size_t *n);
store_err store_pg__get_device(void *impl, const char *id, store_device *out);
store_err store_pg__query_readings(void *impl, const char *id, int64_t from_ms, int64_t to_ms,
                                   size_t max_points, store_series *out);
store_err store_pg__load_completeness(void *impl, const store_completeness_cb *cb);
store_err store_pg__load_open_alarms(void *impl, alarm_rec **out, size_t *n);
store_err store_pg__query_alarms(void *impl, const char *device_id, int64_t from_ms,
                                 int64_t to_ms, size_t limit, alarm_rec **out, size_t *n);
store_err store_pg__get_alarm_settings(void *impl, const char *device_id, alarm_settings *out);
store_err store_pg__load_alarm_settings(void *impl,
                                        void (*cb)(void *ctx, const char *device_id,
                                                   const alarm_settings *s),
                                        void *ctx);
store_err store_pg__get_user(void *impl, const char *name, store_user *out);
store_err store_pg__list_users(void *impl, store_user **out, size_t *n);
store_err store_pg__list_tokens(void *impl, store_token **out, size_t *n);
store_err store_pg__list_sessions(void *impl, int64_t now_ms, store_session **out, size_t *n);
store_err store_pg__query_audit(void *impl, int64_t from_ms, int64_t to_ms, const char *user,
                                size_t limit, store_audit **out, size_t *n);
store_err store_pg__admin_user_add(void *impl, const store_user *u);
store_err store_pg__admin_user_update(void *impl, const char *name, const char *role,
                                      const char *pwhash);
store_err store_pg__admin_user_del(void *impl, const char *name);
store_err store_pg__admin_token_add(void *impl, const store_token *t);
store_err store_pg__admin_token_del(void *impl, const char *id);
store_err store_pg__admin_audit(void *impl, const store_audit *a);

/* Text-format parameters for PQexecParams & co; a NULL value is SQL NULL. */
#define STORE_PG_PARAMS_MAX 20
struct store_pg_params {
    int n;
    const char *v[STORE_PG_PARAMS_MAX];
    char buf[STORE_PG_PARAMS_MAX][32];
};
void store_pg__p_i64(store_pg_params *p, int64_t x);
void store_pg__p_dbl(store_pg_params *p, double x);
void store_pg__p_txt(store_pg_params *p, const char *s); /* NULL: SQL NULL */
void store_pg__p_opt(store_pg_params *p, const char *s); /* NULL or "": SQL NULL */

/* SQL text of the access-control writes, shared by the writer and the
 * admin calls ($1.. as store_pg__auth_params fills them). */
extern const char *const store_pg__auth_sql[STORE_AUTH_AUDIT + 1];
void store_pg__auth_params(const store_auth_write *w, store_pg_params *p);
#define STORE_PG_DEL_USER_SESSIONS "DELETE FROM sessions WHERE user_name = $1"

#endif
