/* store_sqlite_int — private to the SQLite store (store_sqlite*.c): the
 * store struct and the helpers its parts share. Nothing outside
 * store_sqlite*.c includes this; everyone else sees store.h.
 *
 * The parts:
 *  - store_sqlite.c        open/close, schema and migrations[], stats;
 *  - store_sqlite_writer.c the queue (store_put_*), the writer thread,
 *                          batches, group commit, retention, retry/backoff;
 *  - store_sqlite_read.c   the read-only connection and every read.
 *
 * Threads and ownership:
 *  - Callers of store_put_*() (the ingest thread) copy records into a
 *    bounded ring (st->queue) under st->lock and signal st->wake. Nothing on
 *    that path touches SQLite or blocks on I/O, so ingest never stalls.
 *  - One writer thread (store_sqlite__writer_main) owns the read-write
 *    connection st->wdb and every w_* statement. It moves up to batch_max
 *    records from the ring into its private st->batch and writes them in one
 *    transaction. If the transaction fails (disk full, I/O error, lock held
 *    elsewhere...) the batch stays in st->batch and is retried with
 *    exponential backoff, while the ring keeps accepting records until it is
 *    full (then STORE_EFULL). Between batches it prunes old readings
 *    (retention) in small chunks.
 *  - Reads run on the caller's thread — the query worker, and main at
 *    startup; never the writer — through a second, read-only connection
 *    st->rdb; st->rlock serializes them (one connection, one user at a
 *    time). WAL lets them run beside the writer.
 *  - Counters live in st->stats under st->lock.
 *  - store_close() sets st->stop; the writer drains the ring, exits, and is
 *    joined; then both connections are closed on the closing thread. */
#ifndef VIGIL_STORE_SQLITE_INT_H
#define VIGIL_STORE_SQLITE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "alarm.h"
#include "idtable.h"
#include "ring.h"
#include "store.h"
#include "vthread.h"

#define STORE_TAG "store"
#define STORE_BUSY_TIMEOUT_MS 1000 /* how long one statement waits for a lock held elsewhere */

/* readings.flags: the TELEMETRY_HAS_* bits, then the device's validity flags. */
#define STORE_FLAG_PRESENT_MASK 0xFFFFu
#define STORE_FLAG_HR_VALID (1u << 16)
#define STORE_FLAG_SPO2_VALID (1u << 17)
#define STORE_FLAG_TEMP_VALID (1u << 18)

/* Columns of a reading, in the order of the readings table (after device). */
#define STORE_READING_COLS                                                     \
    "t, received, ts, uptime, boot, seq, object_temp, ambient_temp, heart_rate, " \
    "spo2, battery, rssi, flags, sensor_type, fw"

enum { STORE_REC_READING = 1, STORE_REC_STATUS, STORE_REC_LOST, STORE_REC_AUTH, STORE_REC_ALARM,
       STORE_REC_ALARM_SETTING };

typedef struct store_lost_rec {
    char device_id[TELEMETRY_ID_MAX + 1];
    int64_t boot, from_seq, to_seq, at_ms;
    char reason[16];
} store_lost_rec;

/* One condition's settings of one device (cond -1: the escalation
 * interval, in cs.onset_ms). */
typedef struct store_alarm_setting_rec {
    char device_id[TELEMETRY_ID_MAX + 1];
    char user[STORE_NAME_MAX + 1];
    int cond;
    alarm_cond_settings cs;
    int64_t at_ms;
} store_alarm_setting_rec;

typedef struct store_rec {
    int kind;
    union {
        telemetry_reading r;
        telemetry_status s;
        store_lost_rec l;
        store_auth_write a;
        alarm_event al;
        store_alarm_setting_rec as;
    } u;
} store_rec;

/* A device-key cache entry (st->keys): device id -> devices.key. */
typedef struct store_key {
    char id[TELEMETRY_ID_MAX + 1];
    int64_t key;
} store_key;

/* A per-batch entry (st->lasts): devices.key -> index in st->batch of the
 * device's latest stored reading of the batch. */
typedef struct store_last {
    int64_t key;
    size_t idx;
} store_last;

struct store {
    /* Guarded by lock. */
    vmutex lock;
    pthread_cond_t wake;      /* writer waits here for records, stop or a timer */
    /* The write queue: store_rec, capacity queue_capacity. When full,
     * store_put_*() refuses the record (STORE_EFULL), counts it in
     * stats.dropped_full and returns at once: the caller never blocks. */
    ring queue;
    int stop;
    store_stats stats;
    uint64_t written;         /* records taken from the queue and finished (stored, refused or given up) */
    pthread_cond_t synced;    /* broadcast when `written` grows (store_sync) */

    /* Writer thread only (after store_open returns; asserted against
     * writer_owner, bound by the writer thread while it runs). */
    thread_owner writer_owner;
    sqlite3 *wdb;
    sqlite3_stmt *w_begin, *w_commit, *w_rollback;
    sqlite3_stmt *w_touch, *w_insert, *w_last, *w_status;
    sqlite3_stmt *w_prune_devs, *w_prune, *w_lost;
    store_rec *batch;
    size_t batch_max, batch_n;
    /* Device id -> key (store_key), so a reading costs one INSERT, not an
     * upsert too. Cleared on rollback (a rolled-back device row's key may be
     * handed to another device). */
    idtable keys;
    /* Per batch: the latest stored reading of each device (store_last),
     * applied to the devices row once per batch instead of once per reading.
     * Sized at open for 2 * batch_max entries, so it never grows (a batch
     * touches at most batch_max devices); cleared after each batch. */
    idtable lasts;
    sqlite3_stmt *w_auth[STORE_AUTH_AUDIT + 1]; /* by store_auth_op, prepared on first use */
    sqlite3_stmt *w_prune_audit, *w_prune_sessions;
    sqlite3_stmt *w_alarm, *w_alarm_event, *w_alarm_setting; /* prepared on first use */
    int64_t retention_ms;
    int64_t prune_cursor;     /* device key the next retention pass starts after */
    int prune_failing;
    char werr[256];           /* message of the last failed batch, kept before rollback */

    /* Guarded by rlock. */
    vmutex rlock;
    sqlite3 *rdb;
    sqlite3_stmt *r_begin, *r_end, *r_list, *r_get, *r_key, *r_count, *r_raw, *r_ds;

    /* Caller's thread (the CLI): the administration connection. */
    char *path;
    sqlite3 *adb;

    pthread_t writer;
    int writer_started;
    int lock_init, rlock_init, wake_init, synced_init;
};

/* ---- shared helpers (store_sqlite.c) ---------------------------------- */

/* Steps a statement that returns no rows, resets it, returns the step code
 * (SQLITE_DONE on success). */
int store_sqlite__exec_stmt(sqlite3_stmt *s);
/* Prepares a persistent statement; on failure writes a message into err. */
int store_sqlite__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err,
                          size_t errlen);

/* ---- writer (store_sqlite_writer.c) ----------------------------------- */

/* Allocates the queue, the batch and the writer's tables (st->batch_max
 * set); on failure writes a message into err (the caller destroys st). */
int store_sqlite__writer_init(store *st, size_t queue_capacity, char *err, size_t errlen);
/* Prepares the w_* statements on st->wdb (open, before the thread starts). */
int store_sqlite__writer_prepare(store *st, char *err, size_t errlen);
/* The writer thread's main; arg is the store. */
void *store_sqlite__writer_main(void *arg);

/* ---- access control (store_sqlite_auth.c) ---------------------------- */

/* Applies one access-control write inside the writer's transaction. Writer
 * thread; returns an SQLite code (SQLITE_DONE on success). */
int store_sqlite__write_auth(store *st, const store_auth_write *w);
/* Retention for the audit trail and expired sessions, inside the prune
 * transaction. Writer thread; returns an SQLite code. */
int store_sqlite__prune_auth(store *st, int64_t cutoff_ms, int64_t now_ms);
/* Finalizes the auth statements and closes the admin connection. */
void store_sqlite__auth_close(store *st);

/* A read on st->rdb under rlock: binds fmt ('i' int64_t, 't' text), calls
 * row() per result row into a zeroed element of esize bytes; *out is
 * malloc'ed (NULL when *n == 0). Any thread but the writer. */
typedef void (*store_sqlite__row_fn)(sqlite3_stmt *s, void *dst);
store_err store_sqlite__select(store *st, const char *sql, store_sqlite__row_fn row, size_t esize,
                               void **out, size_t *n, const char *fmt, ...);

/* ---- alarms (store_sqlite_alarm.c) ------------------------------------ */

/* Applies one alarm event inside the writer's transaction: the alarm's row
 * (current state) and one event-history row. Writer thread. */
int store_sqlite__write_alarm(store *st, const alarm_event *ev);
int store_sqlite__write_alarm_setting(store *st, const store_alarm_setting_rec *r);
void store_sqlite__alarm_close(store *st);

/* ---- reads (store_sqlite_read.c) -------------------------------------- */

/* Opens the read-only connection st->rdb and prepares the r_* statements. */
int store_sqlite__reader_open(store *st, const char *path, char *err, size_t errlen);

#endif
