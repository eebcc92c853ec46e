/* store_sqlite_int — private to the SQLite engine (store_sqlite*.c): the
 * engine's struct and the helpers its parts share. Nothing outside
 * store_sqlite*.c includes this; store.c sees store_sqlite_backend
 * (store_backend.h), everyone else store.h.
 *
 * The parts:
 *  - store_sqlite.c        open/close, schema and migrations[], the
 *                          store_backend table;
 *  - store_sqlite_writer.c write_batch, prune and flush_latest (one
 *                          transaction each), the reconcile at open;
 *  - store_sqlite_read.c   the read-only connection and every read;
 *  - store_sqlite_auth.c, store_sqlite_alarm.c  their tables, both sides.
 *
 * Threads and ownership (store_backend.h says who calls what):
 *  - The store's writer thread owns the read-write connection st->wdb and
 *    every w_* statement (writer_owner, bound on its first call). A failed
 *    transaction is rolled back whole and reported STORE_WR_RETRY; store.c
 *    keeps the batch and retries it.
 *  - Reads run on the caller's thread — the query worker, and main at
 *    startup; never the writer — through a second, read-only connection
 *    st->rdb; st->rlock serializes them (one connection, one user at a
 *    time). WAL lets them run beside the writer.
 *  - close runs after the writer has been joined, on the closing thread. */
#ifndef VIGIL_STORE_SQLITE_INT_H
#define VIGIL_STORE_SQLITE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "alarm.h"
#include "idtable.h"
#include "store_backend.h"
#include "vthread.h"

#define STORE_BUSY_TIMEOUT_MS 1000 /* how long one statement waits for a lock held elsewhere */

/* Columns of a device's copy of its latest reading (devices.last_*), in
 * order. */
#define STORE_READING_COLS                                                     \
    "t, received, ts, uptime, boot, seq, object_temp, ambient_temp, heart_rate, " \
    "spo2, battery, rssi, flags, sensor_type, fw"

/* The stream_readings table since schema 6 (store_sqlite.c migrations 5
 * and 6 say why): the columns written, in order, after stream. */
#define STORE_READINGS_COLS                                                    \
    "k, t, rdelta, uptime, object_temp, ambient_temp, heart_rate, spo2, meta, battery, rssi"
/* The present bits a stream_readings row holds as its columns being
 * non-NULL (seq: k >= 0; sensor_type, fw: reading_meta's); 25439 in the
 * migration's SQL. Every other bit of a reading's flags (present bits |
 * validity << 16) is in reading_meta.flags. */
#define STORE_DERIVED_FLAGS                                                    \
    (TELEMETRY_HAS_OBJECT_TEMP | TELEMETRY_HAS_AMBIENT_TEMP | TELEMETRY_HAS_HEART_RATE | \
     TELEMETRY_HAS_SPO2 | TELEMETRY_HAS_UPTIME | TELEMETRY_HAS_SEQ | TELEMETRY_HAS_BATTERY | \
     TELEMETRY_HAS_RSSI | TELEMETRY_HAS_SENSOR_TYPE | TELEMETRY_HAS_FW)
/* Scale of a vital stored as an INTEGER (value * scale, exact). */
#define STORE_SCALE_TEMP 100.0   /* object_temp, ambient_temp */
#define STORE_SCALE_TENTHS 10.0  /* heart_rate, spo2, battery */
/* reading_spans: one row per 256 consecutive k of a stream, whose
 * [t_lo, t_hi] holds every t of them. The writer widens a span by whole
 * STORE_SPAN_T_MS steps, so it touches the row about once a minute per
 * device, not once per reading. */
#define STORE_SPAN_SHIFT 8
#define STORE_SPAN_T_MS 65536
/* The rows of span s (alias) in stream_readings r (alias). */
#define STORE_SPAN_JOIN(s, r)                                                  \
    r ".stream = " s ".stream AND " r ".k BETWEEN " s ".blk * 256 AND " s ".blk * 256 + 255"

/* A reading_meta cache entry (st->metas): "s<sensor_type>\x1f" or "-\x1f",
 * then "f<fw>\x1f" or "-\x1f", then the flags in hex -> reading_meta.id. */
typedef struct store_meta {
    char key[TELEMETRY_SENSOR_TYPE_MAX + TELEMETRY_FW_MAX + 16];
    int64_t id;
} store_meta;

/* A span cache entry (st->spans): the stream (reading_streams.id of
 * (device, boot)) and span the device's latest stored reading fell in, and
 * bounds that reading_spans is known to cover. */
typedef struct store_span {
    int64_t key; /* devices.key */
    int64_t boot, stream, blk, t_lo, t_hi;
} store_span;

typedef struct store_sqlite store_sqlite;

/* A device-key cache entry (st->keys): device id -> devices.key. */
typedef struct store_key {
    char id[TELEMETRY_ID_MAX + 1];
    int64_t key;
} store_key;

/* A per-batch entry (st->lasts): devices.key -> index in st->batch of the
 * device's latest stored reading of the batch, and what the commit does
 * with it (store_sqlite_writer.c, store__settle_lasts). */
typedef struct store_last {
    int64_t key;
    size_t idx;
    int stage; /* 1: becomes the device's st->pending entry at commit */
} store_last;

/* A device's latest stored reading not yet copied into its devices row
 * (st->pending), keyed by r.device_id. The row is written from it at most
 * every STORE_DEVICE_ROW_FLUSH_MS, and before anything reads or overwrites
 * those columns (docs/BENCHMARKS.md "Issue 13 — the devices row"). */
typedef struct store_pending {
    telemetry_reading r;
    int64_t key;  /* devices.key */
    uint64_t gen; /* == st->txn_gen: already written in the open transaction */
} store_pending;

/* How often a device's row takes its pending latest reading; a kill -9 may
 * leave the rows this much behind readings (reconciled at open). */
#define STORE_DEVICE_ROW_FLUSH_MS 5000
/* Devices with a pending row, at most; when full a device's row is written
 * in its batch's transaction, as before (~250 B a device). */
#define STORE_PENDING_MAX 16384

struct store_sqlite {
    /* Writer thread only (asserted against writer_owner once bound). */
    thread_owner writer_owner;
    int writer_bound;
    sqlite3 *wdb;
    sqlite3_stmt *w_begin, *w_commit, *w_rollback;
    sqlite3_stmt *w_touch, *w_insert, *w_last, *w_status, *w_reconcile, *w_last_only;
    sqlite3_stmt *w_prune_devs, *w_prune, *w_prune_spans, *w_lost;
    sqlite3_stmt *w_seqless, *w_span, *w_meta_get, *w_meta_put, *w_stream_get, *w_stream_put;
    const store_rec *batch;   /* the batch being written (store.c's), during write_batch */
    size_t batch_max;
    /* Device id -> key (store_key), so a reading costs one INSERT, not an
     * upsert too. Cleared on rollback (a rolled-back device row's key may be
     * handed to another device). */
    idtable keys;
    /* Per batch: the latest stored reading of each device (store_last),
     * applied to the devices row once per batch instead of once per reading.
     * Sized at open for 2 * batch_max entries, so it never grows (a batch
     * touches at most batch_max devices); cleared after each batch. */
    idtable lasts;
    /* Devices whose row lags their latest committed reading (store_pending),
     * bounded by STORE_PENDING_MAX and allocated whole at open (a put never
     * fails below it). Changed only after a commit: a rolled-back
     * transaction leaves it as it was. pending_flushed lists the entries a
     * status record wrote in the open transaction (<= batch_max), removed
     * at its commit; txn_gen numbers the transactions. */
    idtable pending;
    char (*pending_flushed)[TELEMETRY_ID_MAX + 1];
    size_t n_pending_flushed;
    uint64_t txn_gen;
    int64_t next_row_flush_ms; /* monotonic: the next batch writes every pending row */
    /* (sensor_type, fw) -> reading_meta.id (store_meta), and each device's
     * current span (store_span): both bounded by what the fleet sends (a
     * few texts; one span per device); cleared on rollback like keys, and
     * spans also by each retention pass (it deletes reading_spans rows). */
    idtable metas, spans;
    sqlite3_stmt *w_auth[STORE_AUTH_AUDIT + 1]; /* by store_auth_op, prepared on first use */
    sqlite3_stmt *w_prune_audit, *w_prune_sessions;
    sqlite3_stmt *w_alarm, *w_alarm_event, *w_alarm_setting; /* prepared on first use */
    int64_t prune_cursor;     /* device key the next retention pass starts after */
    char werr[256];           /* message of the last failed transaction, kept before rollback */

    /* Guarded by rlock. */
    vmutex rlock;
    sqlite3 *rdb;
    sqlite3_stmt *r_begin, *r_end, *r_list, *r_get, *r_key, *r_count, *r_raw, *r_ds;

    /* Caller's thread (the CLI): the administration connection. */
    char *path;
    sqlite3 *adb;

    int rlock_init;
};

/* ---- shared helpers (store_sqlite.c) ---------------------------------- */

/* Steps a statement that returns no rows, resets it, returns the step code
 * (SQLITE_DONE on success). */
int store_sqlite__exec_stmt(sqlite3_stmt *s);
/* Prepares a persistent statement; on failure writes a message into err. */
int store_sqlite__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err,
                          size_t errlen);

/* ---- writer (store_sqlite_writer.c) ----------------------------------- */

/* Allocates the writer's tables (st->batch_max set); on failure writes a
 * message into err (the caller destroys st). */
int store_sqlite__writer_init(store_sqlite *st, char *err, size_t errlen);
/* Prepares the w_* statements on st->wdb (open, before the writer runs). */
int store_sqlite__writer_prepare(store_sqlite *st, char *err, size_t errlen);
store_wr store_sqlite__write_batch(void *impl, const store_rec *batch, size_t n,
                                   store_batch_result *res, char *err, size_t errlen);
/* store_backend.flush_latest: writes the pending rows of device_id (NULL:
 * all) in one transaction. Writer thread (or the closing thread once the
 * writer is joined). */
store_wr store_sqlite__flush_latest(void *impl, const char *device_id, char *err, size_t errlen);
/* At open, before the writer runs: a devices row older than the device's
 * newest stored reading (a kill -9 before its row was written) takes that
 * reading. Returns 0, or -1 with err set. */
int store_sqlite__reconcile(store_sqlite *st, char *err, size_t errlen);
int64_t store_sqlite__prune(void *impl, int64_t cutoff_ms, int64_t now_ms, int64_t budget,
                            char *err, size_t errlen);

/* ---- access control (store_sqlite_auth.c) ---------------------------- */

/* Applies one access-control write inside the writer's transaction. Writer
 * thread; returns an SQLite code (SQLITE_DONE on success). */
int store_sqlite__write_auth(store_sqlite *st, const store_auth_write *w);
/* Retention for the audit trail and expired sessions, inside the prune
 * transaction. Writer thread; returns an SQLite code. */
int store_sqlite__prune_auth(store_sqlite *st, int64_t cutoff_ms, int64_t now_ms);
/* Finalizes the auth statements and closes the admin connection. */
void store_sqlite__auth_close(store_sqlite *st);

/* A read on st->rdb under rlock: binds fmt ('i' int64_t, 't' text), calls
 * row() per result row into a zeroed element of esize bytes; *out is
 * malloc'ed (NULL when *n == 0). Any thread but the writer. */
typedef void (*store_sqlite__row_fn)(sqlite3_stmt *s, void *dst);
store_err store_sqlite__select(store_sqlite *st, const char *sql, store_sqlite__row_fn row, size_t esize,
                               void **out, size_t *n, const char *fmt, ...);

/* ---- alarms (store_sqlite_alarm.c) ------------------------------------ */

/* Applies one alarm event inside the writer's transaction: the alarm's row
 * (current state) and one event-history row. Writer thread. */
int store_sqlite__write_alarm(store_sqlite *st, const alarm_event *ev);
int store_sqlite__write_alarm_setting(store_sqlite *st, const store_alarm_setting_rec *r);
void store_sqlite__alarm_close(store_sqlite *st);

/* ---- reads (store_sqlite_read.c) -------------------------------------- */

/* The columns of a stream_readings row r (with its stream rs and
 * reading_meta m), as store_sqlite__row_from_table reads them. */
#define STORE_ROW_COLS                                                         \
    "r.t, r.rdelta, r.uptime, rs.boot, r.k, r.object_temp, r.ambient_temp, r.heart_rate, " \
    "r.spo2, r.battery, r.rssi, m.flags, m.sensor_type, m.fw"
/* Reads a row laid out as STORE_ROW_COLS from column c0 on; *t_out gets
 * its t. Any thread, any connection. */
void store_sqlite__row_from_table(sqlite3_stmt *s, int c0, const char *id, telemetry_reading *r,
                                  int64_t *t_out);

/* Opens the read-only connection st->rdb and prepares the r_* statements. */
int store_sqlite__reader_open(store_sqlite *st, const char *path, char *err, size_t errlen);

/* ---- the store_backend entry points (store_backend.h) ------------------ */

store_err store_sqlite_list_devices(void *impl, store_device **out, size_t *n);
store_err store_sqlite_get_device(void *impl, const char *id, store_device *out);
store_err store_sqlite_query_readings(void *impl, const char *id, int64_t from_ms, int64_t to_ms,
                                      size_t max_points, store_series *out);
store_err store_sqlite_load_completeness(void *impl, const store_completeness_cb *cb);
store_err store_sqlite_load_open_alarms(void *impl, alarm_rec **out, size_t *n);
store_err store_sqlite_query_alarms(void *impl, const char *device_id, int64_t from_ms,
                                    int64_t to_ms, size_t limit, alarm_rec **out, size_t *n);
store_err store_sqlite_get_alarm_settings(void *impl, const char *device_id, alarm_settings *out);
store_err store_sqlite_load_alarm_settings(void *impl,
                                           void (*cb)(void *ctx, const char *device_id,
                                                      const alarm_settings *s),
                                           void *ctx);
store_err store_sqlite_get_user(void *impl, const char *name, store_user *out);
store_err store_sqlite_list_users(void *impl, store_user **out, size_t *n);
store_err store_sqlite_list_tokens(void *impl, store_token **out, size_t *n);
store_err store_sqlite_list_sessions(void *impl, int64_t now_ms, store_session **out, size_t *n);
store_err store_sqlite_query_audit(void *impl, int64_t from_ms, int64_t to_ms, const char *user,
                                   size_t limit, store_audit **out, size_t *n);
store_err store_sqlite_admin_user_add(void *impl, const store_user *u);
store_err store_sqlite_admin_user_update(void *impl, const char *name, const char *role,
                                         const char *pwhash);
store_err store_sqlite_admin_user_del(void *impl, const char *name);
store_err store_sqlite_admin_token_add(void *impl, const store_token *t);
store_err store_sqlite_admin_token_del(void *impl, const char *id);
store_err store_sqlite_admin_audit(void *impl, const store_audit *a);

#endif
