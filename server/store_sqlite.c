/* store_sqlite — the embedded SQLite implementation of store.h.
 *
 * Threads and ownership:
 *  - Callers of store_put_*() (the ingest thread) copy records into a
 *    bounded ring (st->ring) under st->lock and signal st->wake. Nothing on
 *    that path touches SQLite or blocks on I/O, so ingest never stalls.
 *  - One writer thread (writer_main) owns the read-write connection st->wdb
 *    and every w_* statement. It moves up to batch_max records from the ring
 *    into its private st->batch and writes them in one transaction. If the
 *    transaction fails (disk full, I/O error, lock held elsewhere...) the
 *    batch stays in st->batch and is retried with exponential backoff, while
 *    the ring keeps accepting records until it is full (then STORE_EFULL).
 *    Between batches it prunes old readings (retention) in small chunks.
 *  - Reads run on the caller's thread through a second, read-only
 *    connection st->rdb; st->rlock serializes them (one connection, one
 *    user at a time). WAL lets them run beside the writer.
 *  - Counters live in st->stats under st->lock.
 *  - store_close() sets st->stop; the writer drains the ring, exits, and is
 *    joined; then both connections are closed on the closing thread.
 *
 * Schema versions are kept in PRAGMA user_version; migrations[] holds the
 * steps, applied in order in one transaction at open. */
#include "store.h"
#include "vclock.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "log.h"

#define TAG "store"

#define DEFAULT_QUEUE_CAPACITY 65536
#define DEFAULT_BATCH_MAX 2048
#define BUSY_TIMEOUT_MS 1000        /* how long one statement waits for a lock held elsewhere */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STOP_GIVE_UP_MS 10000       /* at close, retry a failing batch this long, then drop it */
#define PRUNE_INTERVAL_MS 2000      /* retention pass period when caught up */
#define PRUNE_CATCHUP_MS 50         /* ... and when the last pass found a full chunk */
#define PRUNE_CHUNK 5000            /* rows deleted per retention transaction */
#define GROUP_COMMIT_MS 10          /* wait for more records before a small batch */

/* readings.flags: the TELEMETRY_HAS_* bits, then the device's validity flags. */
#define FLAG_PRESENT_MASK 0xFFFFu
#define FLAG_HR_VALID (1u << 16)
#define FLAG_SPO2_VALID (1u << 17)
#define FLAG_TEMP_VALID (1u << 18)

/* Schema steps: migrations[i] takes user_version i to i + 1. Append only;
 * never edit a released step. */
static const char *const migrations[] = {
    /* 1: initial schema. */
    "CREATE TABLE devices ("
    "  key INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  online INTEGER,"            /* NULL: never reported a status */
    "  status_at INTEGER,"         /* when online last changed */
    "  fw TEXT,"
    "  interval_ms INTEGER,"
    "  boot INTEGER,"
    /* A copy of the latest reading (by receive time), not a reference, so
     * retention never takes a device's last values away. NULL last_received:
     * no reading yet. Same columns and order as readings. */
    "  last_t INTEGER, last_received INTEGER, last_ts INTEGER, last_uptime INTEGER,"
    "  last_boot INTEGER, last_seq INTEGER, last_object_temp REAL, last_ambient_temp REAL,"
    "  last_heart_rate REAL, last_spo2 REAL, last_battery REAL, last_rssi INTEGER,"
    "  last_flags INTEGER, last_sensor_type TEXT, last_fw TEXT"
    ");"
    "CREATE TABLE readings ("
    "  device INTEGER NOT NULL REFERENCES devices(key),"
    "  t INTEGER NOT NULL,"        /* ts if the device sent one, else received */
    "  received INTEGER NOT NULL,"
    "  ts INTEGER,"
    "  uptime INTEGER,"
    "  boot INTEGER NOT NULL DEFAULT 0," /* 0 when absent */
    "  seq INTEGER,"               /* NULL when absent */
    "  object_temp REAL, ambient_temp REAL, heart_rate REAL, spo2 REAL,"
    "  battery REAL, rssi INTEGER,"
    "  flags INTEGER NOT NULL,"    /* present bits | validity << 16 */
    "  sensor_type TEXT, fw TEXT"
    ");"
    "CREATE INDEX readings_device_t ON readings(device, t);"
    /* Idempotence: a redelivered (device, boot, seq) is ignored. Readings
     * without seq cannot be told apart, so they are always stored. */
    "CREATE UNIQUE INDEX readings_device_boot_seq ON readings(device, boot, seq)"
    "  WHERE seq IS NOT NULL;",
    /* 2: ranges of readings given up as lost by the completeness tracker,
     * so the gap stays visible after a restart (docs/RELIABILITY.md). */
    "CREATE TABLE lost_ranges ("
    "  device INTEGER NOT NULL REFERENCES devices(key),"
    "  boot INTEGER NOT NULL,"
    "  from_seq INTEGER NOT NULL,"
    "  to_seq INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  marked_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX lost_ranges_device ON lost_ranges(device, boot, from_seq);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

#define READING_COLS                                                           \
    "t, received, ts, uptime, boot, seq, object_temp, ambient_temp, heart_rate, " \
    "spo2, battery, rssi, flags, sensor_type, fw"
#define LAST_COLS                                                              \
    "last_t, last_received, last_ts, last_uptime, last_boot, last_seq, "       \
    "last_object_temp, last_ambient_temp, last_heart_rate, last_spo2, "        \
    "last_battery, last_rssi, last_flags, last_sensor_type, last_fw"
#define DEVICE_COLS                                                            \
    "id, first_seen, last_seen, online, status_at, fw, interval_ms, boot, " LAST_COLS

enum { REC_READING = 1, REC_STATUS, REC_LOST };

typedef struct store_lost_rec {
    char device_id[TELEMETRY_ID_MAX + 1];
    int64_t boot, from_seq, to_seq, at_ms;
    char reason[16];
} store_lost_rec;

typedef struct store_rec {
    int kind;
    union {
        telemetry_reading r;
        telemetry_status s;
        store_lost_rec l;
    } u;
} store_rec;

struct store {
    /* Guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* writer waits here for records, stop or a timer */
    store_rec *ring;
    size_t cap, head, count;  /* records live at ring[(head + i) % cap] */
    int stop;
    store_stats stats;

    /* Writer thread only (after store_open returns). */
    sqlite3 *wdb;
    sqlite3_stmt *w_begin, *w_commit, *w_rollback;
    sqlite3_stmt *w_touch, *w_insert, *w_last, *w_status;
    sqlite3_stmt *w_prune_devs, *w_prune, *w_lost;
    store_rec *batch;
    size_t batch_max, batch_n;
    /* Device id -> key, so a reading costs one INSERT, not an upsert too.
     * Open addressing, keys_cap a power of two; cleared on rollback (a
     * rolled-back device row's key may be handed to another device). */
    struct key_slot { char id[TELEMETRY_ID_MAX + 1]; int64_t key; } *keys;
    size_t keys_cap, keys_n;
    /* Per batch: the latest stored reading of each device, applied to the
     * devices row once per batch instead of once per reading. */
    struct last_slot { int64_t key; size_t idx; } *lasts;
    size_t lasts_cap;         /* power of two >= 2 * batch_max */
    size_t *lasts_used;       /* slots in use, to reset them cheaply */
    size_t lasts_n;
    int64_t retention_ms;
    int64_t prune_cursor;     /* device key the next retention pass starts after */
    int prune_failing;
    char werr[256];           /* message of the last failed batch, kept before rollback */

    /* Guarded by rlock. */
    pthread_mutex_t rlock;
    sqlite3 *rdb;
    sqlite3_stmt *r_begin, *r_end, *r_list, *r_get, *r_key, *r_count, *r_raw, *r_ds;

    pthread_t writer;
    int writer_started;
    int lock_init, rlock_init, wake_init;
};

/* ---- small helpers ---------------------------------------------------- */

/* Waits on st->wake until the monotonic time deadline_ms (lock held). */
static void wait_until(store *st, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000,
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000};
    int rc = pthread_cond_timedwait(&st->wake, &st->lock, &ts);
    if (rc != 0 && rc != ETIMEDOUT)
        LOG_E(TAG, "pthread_cond_timedwait: %s", strerror(rc));
}

/* Errors worth retrying the whole batch for: the database or its file is
 * (for now) unusable. Anything else is a problem with one record. */
static int is_batch_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return 0;
    default:
        return 1;
    }
}

static void copy_text(char *dst, size_t dstlen, sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    size_t n = 0;
    if (t) {
        n = (size_t)sqlite3_column_bytes(s, col);
        if (n >= dstlen)
            n = dstlen - 1;
        memcpy(dst, t, n);
    }
    dst[n] = '\0';
}

/* Steps a statement that returns no rows, resets it, returns the step code. */
static int exec_stmt(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s); /* returns the same error as step; already in rc */
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err, size_t errlen)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "prepare failed: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static int64_t reading_t(const telemetry_reading *r)
{
    return (r->present & TELEMETRY_HAS_TS) ? r->ts_ms : r->received_ms;
}

/* Binds ?2..?16 in READING_COLS order (?1 is the device key). */
static int bind_reading(sqlite3_stmt *s, const telemetry_reading *r)
{
    uint32_t p = r->present;
    uint32_t flags = (p & FLAG_PRESENT_MASK) | (r->hr_valid ? FLAG_HR_VALID : 0) |
                     (r->spo2_valid ? FLAG_SPO2_VALID : 0) |
                     (r->temp_valid ? FLAG_TEMP_VALID : 0);
    int rc = SQLITE_OK;
#define B(x)                                                                   \
    do {                                                                       \
        int b_ = (x);                                                          \
        if (b_ != SQLITE_OK && rc == SQLITE_OK)                                \
            rc = b_;                                                           \
    } while (0)
#define B_I64(i, bit, v) B((p & (bit)) ? sqlite3_bind_int64(s, (i), (v)) : sqlite3_bind_null(s, (i)))
#define B_DBL(i, bit, v) B((p & (bit)) ? sqlite3_bind_double(s, (i), (v)) : sqlite3_bind_null(s, (i)))
#define B_TXT(i, bit, v)                                                       \
    B((p & (bit)) ? sqlite3_bind_text(s, (i), (v), -1, SQLITE_STATIC) : sqlite3_bind_null(s, (i)))
    B(sqlite3_bind_int64(s, 2, reading_t(r)));
    B(sqlite3_bind_int64(s, 3, r->received_ms));
    B_I64(4, TELEMETRY_HAS_TS, r->ts_ms);
    B_I64(5, TELEMETRY_HAS_UPTIME, r->uptime_ms);
    B(sqlite3_bind_int64(s, 6, (p & TELEMETRY_HAS_BOOT) ? r->boot : 0));
    B_I64(7, TELEMETRY_HAS_SEQ, r->seq);
    B_DBL(8, TELEMETRY_HAS_OBJECT_TEMP, r->object_temp);
    B_DBL(9, TELEMETRY_HAS_AMBIENT_TEMP, r->ambient_temp);
    B_DBL(10, TELEMETRY_HAS_HEART_RATE, r->heart_rate);
    B_DBL(11, TELEMETRY_HAS_SPO2, r->spo2);
    B_DBL(12, TELEMETRY_HAS_BATTERY, r->battery);
    B_I64(13, TELEMETRY_HAS_RSSI, r->rssi);
    B(sqlite3_bind_int64(s, 14, flags));
    B_TXT(15, TELEMETRY_HAS_SENSOR_TYPE, r->sensor_type);
    B_TXT(16, TELEMETRY_HAS_FW, r->fw);
#undef B_TXT
#undef B_DBL
#undef B_I64
#undef B
    return rc;
}

/* Reads a row laid out as READING_COLS starting at column c. */
static void row_to_reading(sqlite3_stmt *s, int c, const char *id, telemetry_reading *r,
                           int64_t *t_out)
{
    memset(r, 0, sizeof *r);
    snprintf(r->device_id, sizeof r->device_id, "%s", id);
    uint32_t flags = (uint32_t)sqlite3_column_int64(s, c + 12);
    uint32_t p = flags & FLAG_PRESENT_MASK;
    if (t_out)
        *t_out = sqlite3_column_int64(s, c + 0);
    r->received_ms = sqlite3_column_int64(s, c + 1);
    r->ts_ms = sqlite3_column_int64(s, c + 2);
    r->uptime_ms = sqlite3_column_int64(s, c + 3);
    r->boot = sqlite3_column_int64(s, c + 4);
    r->seq = sqlite3_column_int64(s, c + 5);
    r->object_temp = sqlite3_column_double(s, c + 6);
    r->ambient_temp = sqlite3_column_double(s, c + 7);
    r->heart_rate = sqlite3_column_double(s, c + 8);
    r->spo2 = sqlite3_column_double(s, c + 9);
    r->battery = sqlite3_column_double(s, c + 10);
    r->rssi = (int32_t)sqlite3_column_int64(s, c + 11);
    r->hr_valid = (flags & FLAG_HR_VALID) != 0;
    r->spo2_valid = (flags & FLAG_SPO2_VALID) != 0;
    r->temp_valid = (flags & FLAG_TEMP_VALID) != 0;
    copy_text(r->sensor_type, sizeof r->sensor_type, s, c + 13);
    copy_text(r->fw, sizeof r->fw, s, c + 14);
    r->present = p;
}

/* ---- writer ----------------------------------------------------------- */

static void keys_clear(store *st)
{
    if (st->keys)
        memset(st->keys, 0, st->keys_cap * sizeof *st->keys);
    st->keys_n = 0;
}

static int keys_put(store *st, const char *id, int64_t key)
{
    if ((st->keys_n + 1) * 10 > st->keys_cap * 7) {
        size_t ncap = st->keys_cap ? st->keys_cap * 2 : 1024;
        struct key_slot *n = calloc(ncap, sizeof *n);
        if (!n)
            return -1; /* not cached: the upsert path still works */
        for (size_t i = 0; i < st->keys_cap; i++) {
            if (!st->keys[i].id[0])
                continue;
            size_t j = telemetry_id_hash(st->keys[i].id) & (ncap - 1);
            while (n[j].id[0])
                j = (j + 1) & (ncap - 1);
            n[j] = st->keys[i];
        }
        free(st->keys);
        st->keys = n;
        st->keys_cap = ncap;
    }
    size_t j = telemetry_id_hash(id) & (st->keys_cap - 1);
    while (st->keys[j].id[0] && strcmp(st->keys[j].id, id) != 0)
        j = (j + 1) & (st->keys_cap - 1);
    if (!st->keys[j].id[0])
        st->keys_n++;
    snprintf(st->keys[j].id, sizeof st->keys[j].id, "%s", id);
    st->keys[j].key = key;
    return 0;
}

static int64_t keys_get(store *st, const char *id)
{
    if (!st->keys_cap)
        return 0;
    for (size_t j = telemetry_id_hash(id) & (st->keys_cap - 1); st->keys[j].id[0];
         j = (j + 1) & (st->keys_cap - 1))
        if (!strcmp(st->keys[j].id, id))
            return st->keys[j].key;
    return 0;
}

/* The device's key, creating its row on first sight. */
static int device_key(store *st, const telemetry_reading *r, int64_t *key)
{
    *key = keys_get(st, r->device_id);
    if (*key)
        return SQLITE_DONE;
    sqlite3_stmt *s = st->w_touch;
    int rc = sqlite3_bind_text(s, 1, r->device_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, r->received_ms);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    *key = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return rc;
    keys_put(st, r->device_id, *key);
    return SQLITE_DONE;
}

/* Remembers batch[idx] as the device's latest stored reading of this batch
 * (by receive time, later records winning ties). */
static void last_note(store *st, int64_t key, size_t idx)
{
    size_t mask = st->lasts_cap - 1, j = (size_t)((uint64_t)key * 11400714819323198485ull) & mask;
    while (st->lasts[j].key && st->lasts[j].key != key)
        j = (j + 1) & mask;
    if (!st->lasts[j].key) {
        st->lasts[j].key = key;
        st->lasts[j].idx = idx;
        st->lasts_used[st->lasts_n++] = j;
        return;
    }
    if (st->batch[idx].u.r.received_ms >= st->batch[st->lasts[j].idx].u.r.received_ms)
        st->lasts[j].idx = idx;
}

/* Applies one reading inside the open transaction. *stored tells whether it
 * was new. Returns an SQLite code (SQLITE_DONE on success). */
static int write_reading(store *st, size_t idx, int *stored)
{
    const telemetry_reading *r = &st->batch[idx].u.r;
    int64_t key;
    int rc = device_key(st, r, &key);
    if (rc != SQLITE_DONE)
        return rc;
    sqlite3_stmt *s = st->w_insert;
    rc = sqlite3_bind_int64(s, 1, key);
    if (rc == SQLITE_OK)
        rc = bind_reading(s, r);
    if (rc != SQLITE_OK)
        return rc;
    rc = exec_stmt(s);
    if (rc != SQLITE_DONE)
        return rc;
    *stored = sqlite3_changes(st->wdb) > 0;
    if (*stored) /* a redelivery leaves the device's latest values alone */
        last_note(st, key, idx);
    return SQLITE_DONE;
}

/* Updates each device touched by the batch once, with its latest reading. */
static int write_lasts(store *st)
{
    int rc = SQLITE_DONE;
    for (size_t i = 0; i < st->lasts_n && rc == SQLITE_DONE; i++) {
        struct last_slot *l = &st->lasts[st->lasts_used[i]];
        sqlite3_stmt *s = st->w_last;
        rc = sqlite3_bind_int64(s, 1, l->key);
        if (rc == SQLITE_OK)
            rc = bind_reading(s, &st->batch[l->idx].u.r);
        rc = rc == SQLITE_OK ? exec_stmt(s) : rc;
    }
    return rc;
}

static void lasts_reset(store *st)
{
    for (size_t i = 0; i < st->lasts_n; i++)
        st->lasts[st->lasts_used[i]].key = 0;
    st->lasts_n = 0;
}

static int write_status(store *st, const telemetry_status *x)
{
    sqlite3_stmt *s = st->w_status;
    int rc = SQLITE_OK;
    int b[6];
    b[0] = sqlite3_bind_text(s, 1, x->device_id, -1, SQLITE_STATIC);
    b[1] = sqlite3_bind_int64(s, 2, x->received_ms);
    b[2] = sqlite3_bind_int(s, 3, x->online ? 1 : 0);
    b[3] = (x->present & TELEMETRY_STATUS_HAS_FW)
               ? sqlite3_bind_text(s, 4, x->fw, -1, SQLITE_STATIC)
               : sqlite3_bind_null(s, 4);
    b[4] = (x->present & TELEMETRY_STATUS_HAS_INTERVAL)
               ? sqlite3_bind_int64(s, 5, x->interval_ms)
               : sqlite3_bind_null(s, 5);
    b[5] = (x->present & TELEMETRY_STATUS_HAS_BOOT) ? sqlite3_bind_int64(s, 6, x->boot)
                                                    : sqlite3_bind_null(s, 6);
    for (int i = 0; i < 6; i++)
        if (b[i] != SQLITE_OK)
            return b[i];
    rc = exec_stmt(s);
    return rc;
}

static int write_lost(store *st, const store_lost_rec *l)
{
    sqlite3_stmt *s = st->w_lost;
    int b[6] = {
        sqlite3_bind_text(s, 1, l->device_id, -1, SQLITE_STATIC),
        sqlite3_bind_int64(s, 2, l->boot),
        sqlite3_bind_int64(s, 3, l->from_seq),
        sqlite3_bind_int64(s, 4, l->to_seq),
        sqlite3_bind_text(s, 5, l->reason, -1, SQLITE_STATIC),
        sqlite3_bind_int64(s, 6, l->at_ms),
    };
    for (int i = 0; i < 6; i++)
        if (b[i] != SQLITE_OK)
            return b[i];
    return exec_stmt(s);
}

static void rollback(store *st)
{
    keys_clear(st); /* device rows created in this transaction are gone */
    lasts_reset(st);
    /* Keep the reason: a successful ROLLBACK resets sqlite3_errmsg(). */
    snprintf(st->werr, sizeof st->werr, "%s", sqlite3_errmsg(st->wdb));
    /* SQLite may already have rolled back on its own (FULL, IOERR, NOMEM). */
    if (!sqlite3_get_autocommit(st->wdb)) {
        int rc = exec_stmt(st->w_rollback);
        if (rc != SQLITE_DONE)
            LOG_E(TAG, "rollback failed: %s", sqlite3_errmsg(st->wdb));
    }
}

/* Writes st->batch in one transaction. Returns SQLITE_DONE, or the code of
 * the failure that aborted it (then nothing of the batch was stored). */
static int write_batch(store *st, uint64_t *n_stored, uint64_t *n_dup, uint64_t *n_rejected)
{
    uint64_t stored = 0, dup = 0, rejected = 0;
    int rc = exec_stmt(st->w_begin);
    if (rc != SQLITE_DONE) {
        snprintf(st->werr, sizeof st->werr, "%s", sqlite3_errmsg(st->wdb));
        return rc;
    }
    for (size_t i = 0; i < st->batch_n; i++) {
        const store_rec *rec = &st->batch[i];
        int was_stored = 0;
        rc = rec->kind == REC_READING ? write_reading(st, i, &was_stored)
             : rec->kind == REC_LOST  ? write_lost(st, &rec->u.l)
                                      : write_status(st, &rec->u.s);
        if (rc == SQLITE_DONE) {
            if (rec->kind == REC_READING)
                was_stored ? stored++ : dup++;
            continue;
        }
        if (is_batch_error(rc) || sqlite3_get_autocommit(st->wdb)) {
            rollback(st);
            return rc;
        }
        /* Only this record is refused; retrying it would wedge the store. */
        rejected++;
        LOG_W(TAG, "record for %s refused by the database, dropped: %s",
              rec->kind == REC_READING ? rec->u.r.device_id
              : rec->kind == REC_LOST  ? rec->u.l.device_id
                                       : rec->u.s.device_id,
              sqlite3_errmsg(st->wdb));
    }
    rc = write_lasts(st);
    if (rc != SQLITE_DONE) {
        rollback(st);
        return rc;
    }
    rc = exec_stmt(st->w_commit);
    if (rc != SQLITE_DONE) {
        rollback(st);
        return rc;
    }
    lasts_reset(st);
    *n_stored = stored;
    *n_dup = dup;
    *n_rejected = rejected;
    return SQLITE_DONE;
}

/* One retention pass: deletes up to PRUNE_CHUNK readings older than the
 * cutoff, device by device (the (device, t) index makes each step cheap),
 * resuming after the device where the last pass stopped. Returns the number
 * deleted, or -1 on error. */
static int64_t prune_pass(store *st, int64_t cutoff)
{
    int64_t budget = PRUNE_CHUNK, deleted = 0;
    int rc = exec_stmt(st->w_begin);
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_stmt *d = st->w_prune_devs;
    rc = sqlite3_bind_int64(d, 1, st->prune_cursor);
    if (rc != SQLITE_OK)
        goto fail;
    int64_t next_cursor = 0; /* wrap around unless the budget runs out */
    while ((rc = sqlite3_step(d)) == SQLITE_ROW) {
        int64_t key = sqlite3_column_int64(d, 0);
        sqlite3_stmt *p = st->w_prune;
        int b1 = sqlite3_bind_int64(p, 1, key);
        int b2 = sqlite3_bind_int64(p, 2, cutoff);
        int b3 = sqlite3_bind_int64(p, 3, budget);
        if (b1 != SQLITE_OK || b2 != SQLITE_OK || b3 != SQLITE_OK) {
            rc = b1 != SQLITE_OK ? b1 : b2 != SQLITE_OK ? b2 : b3;
            break;
        }
        rc = exec_stmt(p);
        if (rc != SQLITE_DONE)
            break;
        int n = sqlite3_changes(st->wdb);
        deleted += n;
        budget -= n;
        if (budget <= 0) {
            next_cursor = key - 1; /* this device may have more */
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(d);
    if (rc != SQLITE_DONE)
        goto fail;
    rc = exec_stmt(st->w_commit);
    if (rc != SQLITE_DONE)
        goto fail;
    st->prune_cursor = next_cursor;
    if (st->prune_failing) {
        st->prune_failing = 0;
        LOG_I(TAG, "retention pruning works again");
    }
    return deleted;
fail:
    if (!st->prune_failing) {
        st->prune_failing = 1;
        LOG_W(TAG, "retention pruning failed, will retry: %s", sqlite3_errmsg(st->wdb));
    }
    rollback(st);
    return -1;
}

static void *writer_main(void *arg)
{
    store *st = arg;
    int64_t backoff = 0;       /* > 0 while the current batch keeps failing */
    int64_t retry_at = 0;
    int64_t give_up_at = 0;    /* set once stop is seen with a failing batch */
    int64_t next_prune = vclock_mono_ms();
    uint64_t failures = 0;     /* in the current unwritable period */
    int stop_kicked = 0;

    pthread_mutex_lock(&st->lock);
    for (;;) {
        if (st->batch_n == 0) {
            while (st->count == 0 && !st->stop) {
                if (st->retention_ms <= 0) {
                    int rc = pthread_cond_wait(&st->wake, &st->lock);
                    if (rc != 0)
                        LOG_E(TAG, "pthread_cond_wait: %s", strerror(rc));
                } else if (vclock_mono_ms() >= next_prune) {
                    break;
                } else {
                    wait_until(st, next_prune);
                }
            }
            /* Group commit: a transaction costs far more than a row, so
             * when only a few records are waiting, let more arrive for a
             * moment. Storage lags by GROUP_COMMIT_MS at most; the live
             * path does not wait for it. */
            if (st->count > 0 && st->count < st->batch_max && !st->stop) {
                pthread_mutex_unlock(&st->lock);
                struct timespec gc = {0, GROUP_COMMIT_MS * 1000000L};
                nanosleep(&gc, NULL);
                pthread_mutex_lock(&st->lock);
            }
            /* Take everything queued, up to one batch. */
            size_t n = st->count < st->batch_max ? st->count : st->batch_max;
            for (size_t i = 0; i < n; i++) {
                st->batch[i] = st->ring[st->head];
                st->head = (st->head + 1) % st->cap;
            }
            st->count -= n;
            st->batch_n = n;
        } else {
            /* A failed batch waits out its backoff; close cuts the current
             * wait short once (a last prompt try), then backoff applies. */
            while (vclock_mono_ms() < retry_at) {
                if (st->stop && !stop_kicked) {
                    stop_kicked = 1;
                    break;
                }
                wait_until(st, retry_at);
            }
        }
        int stopping = st->stop;
        pthread_mutex_unlock(&st->lock);

        if (st->batch_n > 0) {
            uint64_t stored = 0, dup = 0, rejected = 0;
            int rc = write_batch(st, &stored, &dup, &rejected);
            pthread_mutex_lock(&st->lock);
            if (rc == SQLITE_DONE) {
                st->stats.stored += stored;
                st->stats.duplicates += dup;
                st->stats.rejected += rejected;
                if (!st->stats.writable)
                    LOG_I(TAG, "database writable again after %" PRIu64 " failed attempts",
                          failures);
                st->stats.writable = 1;
                st->batch_n = 0;
                backoff = 0;
                failures = 0;
            } else {
                st->stats.write_errors++;
                failures++;
                if (st->stats.writable)
                    LOG_E(TAG, "write failed, database not writable; retrying with "
                               "backoff (records queue meanwhile): %s (%d)",
                          st->werr, rc);
                else
                    LOG_D(TAG, "retry failed: %s", st->werr);
                st->stats.writable = 0;
                backoff = backoff == 0 ? BACKOFF_MIN_MS
                                       : (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                       : backoff * 2);
                int64_t now = vclock_mono_ms();
                retry_at = now + backoff;
                if (st->stop) {
                    if (give_up_at == 0)
                        give_up_at = now + STOP_GIVE_UP_MS;
                    else if (now >= give_up_at) {
                        LOG_E(TAG, "closing: giving up on %zu queued + %zu batched "
                                   "records, database still not writable",
                              st->count, st->batch_n);
                        st->count = 0;
                        st->batch_n = 0;
                    }
                }
            }
            pthread_mutex_unlock(&st->lock);
        }

        /* Retention between batches, only while writes work, and never
         * more than one chunk per batch so ingest keeps flowing. */
        if (st->retention_ms > 0 && st->batch_n == 0 && !stopping &&
            vclock_mono_ms() >= next_prune) {
            int64_t n = prune_pass(st, vclock_wall_ms() - st->retention_ms);
            next_prune = vclock_mono_ms() + (n >= PRUNE_CHUNK ? PRUNE_CATCHUP_MS : PRUNE_INTERVAL_MS);
            if (n > 0) {
                pthread_mutex_lock(&st->lock);
                st->stats.pruned += (uint64_t)n;
                pthread_mutex_unlock(&st->lock);
            }
        }

        pthread_mutex_lock(&st->lock);
        if (st->stop && st->count == 0 && st->batch_n == 0)
            break;
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* ---- open / close ----------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int read_user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Brings the schema to SCHEMA_VERSION; all steps in one transaction, so a
 * crash mid-way leaves the previous version intact. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char msg[256];
    if (exec_sql(db, "BEGIN IMMEDIATE", msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: cannot start migration: %s", path, msg);
        return -1;
    }
    int v;
    /* Read inside the transaction: another process may have just migrated. */
    if (read_user_version(db, &v) != 0) {
        snprintf(err, errlen, "%s: cannot read schema version: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    if (v > SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s: database schema version %d is newer than this vigild supports (%d); "
                 "upgrade vigild or use another database file",
                 path, v, SCHEMA_VERSION);
        goto fail;
    }
    if (v < 0) {
        snprintf(err, errlen, "%s: invalid schema version %d", path, v);
        goto fail;
    }
    for (int i = v; i < SCHEMA_VERSION; i++) {
        if (exec_sql(db, migrations[i], msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s: migration to version %d failed: %s", path, i + 1, msg);
            goto fail;
        }
    }
    if (v < SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        if (exec_sql(db, sql, msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s: cannot set schema version: %s", path, msg);
            goto fail;
        }
    }
    if (exec_sql(db, "COMMIT", msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: migration commit failed: %s", path, msg);
        goto fail;
    }
    if (v < SCHEMA_VERSION)
        LOG_I(TAG, "%s: schema migrated from version %d to %d", path, v, SCHEMA_VERSION);
    return 0;
fail:
    if (!sqlite3_get_autocommit(db))
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* failure already reported */
    return -1;
}

static void finalize_all(sqlite3_stmt **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_finalize(list[i]); /* NULL is a no-op */
        list[i] = NULL;
    }
}

static void close_db(sqlite3 **db, const char *what)
{
    if (*db && sqlite3_close(*db) != SQLITE_OK)
        LOG_E(TAG, "closing the %s connection: %s", what, sqlite3_errmsg(*db));
    *db = NULL;
}

static void destroy(store *st)
{
    sqlite3_stmt *w[] = {st->w_begin, st->w_commit, st->w_rollback, st->w_touch, st->w_insert,
                         st->w_last, st->w_status, st->w_prune_devs, st->w_prune, st->w_lost};
    sqlite3_stmt *r[] = {st->r_begin, st->r_end, st->r_list, st->r_get,
                         st->r_key, st->r_count, st->r_raw, st->r_ds};
    finalize_all(r, sizeof r / sizeof *r);
    finalize_all(w, sizeof w / sizeof *w);
    /* Reader first: the last connection to close checkpoints the WAL. */
    close_db(&st->rdb, "read");
    close_db(&st->wdb, "write");
    if (st->wake_init)
        pthread_cond_destroy(&st->wake);
    if (st->lock_init)
        pthread_mutex_destroy(&st->lock);
    if (st->rlock_init)
        pthread_mutex_destroy(&st->rlock);
    free(st->ring);
    free(st->batch);
    free(st->lasts);
    free(st->lasts_used);
    free(st->keys);
    free(st);
}

static int open_writer(store *st, const char *path, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(path, &st->wdb,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path,
                 st->wdb ? sqlite3_errmsg(st->wdb) : sqlite3_errstr(rc));
        return -1;
    }
    sqlite3_extended_result_codes(st->wdb, 1);
    if (sqlite3_busy_timeout(st->wdb, BUSY_TIMEOUT_MS) != SQLITE_OK) {
        snprintf(err, errlen, "%s: busy_timeout: %s", path, sqlite3_errmsg(st->wdb));
        return -1;
    }
    /* WAL: readers never block the writer and vice versa. NORMAL: fsync at
     * checkpoints only — a power cut may lose the last transactions but
     * never corrupts the file. */
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->wdb, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(st->wdb));
        return -1;
    }
    rc = sqlite3_step(s);
    int wal = rc == SQLITE_ROW && sqlite3_column_text(s, 0) &&
              strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    if (rc != SQLITE_ROW)
        snprintf(err, errlen, "%s: cannot set WAL mode: %s", path, sqlite3_errmsg(st->wdb));
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return -1;
    if (!wal)
        LOG_W(TAG, "%s: WAL mode unavailable, reads may wait for writes", path);
    char msg[256];
    if (exec_sql(st->wdb, "PRAGMA synchronous=NORMAL", msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    if (migrate(st->wdb, path, err, errlen) != 0)
        return -1;

    const struct {
        sqlite3_stmt **s;
        const char *sql;
    } stmts[] = {
        {&st->w_begin, "BEGIN IMMEDIATE"},
        {&st->w_commit, "COMMIT"},
        {&st->w_rollback, "ROLLBACK"},
        {&st->w_touch,
         "INSERT INTO devices(id, first_seen, last_seen) VALUES(?1, ?2, ?2) "
         "ON CONFLICT(id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen) "
         "RETURNING key"},
        {&st->w_insert, "INSERT OR IGNORE INTO readings(device, " READING_COLS ") "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                        "?15, ?16)"},
        /* Latest by receive time; fw and boot follow the latest reading. */
        {&st->w_last,
         "UPDATE devices SET last_seen = max(last_seen, ?3), last_t = ?2, last_received = ?3, last_ts = ?4, last_uptime = ?5, "
         "last_boot = ?6, last_seq = ?7, last_object_temp = ?8, last_ambient_temp = ?9, "
         "last_heart_rate = ?10, last_spo2 = ?11, last_battery = ?12, last_rssi = ?13, "
         "last_flags = ?14, last_sensor_type = ?15, last_fw = ?16, "
         "fw = coalesce(?16, fw), boot = CASE WHEN (?14 & 128) != 0 THEN ?6 ELSE boot END "
         "WHERE key = ?1 AND (last_received IS NULL OR last_received <= ?3)"},
        /* status_at moves only when online changes: a retained status
         * replayed on reconnect is not a change. */
        {&st->w_status,
         "INSERT INTO devices(id, first_seen, last_seen, online, status_at, fw, interval_ms, boot) "
         "VALUES(?1, ?2, ?2, ?3, ?2, ?4, ?5, ?6) "
         "ON CONFLICT(id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), "
         "status_at = CASE WHEN online IS excluded.online AND status_at IS NOT NULL "
         "THEN status_at ELSE excluded.status_at END, "
         "online = excluded.online, fw = coalesce(excluded.fw, fw), "
         "interval_ms = coalesce(excluded.interval_ms, interval_ms), "
         "boot = coalesce(excluded.boot, boot)"},
        {&st->w_prune_devs, "SELECT key FROM devices WHERE key > ?1 ORDER BY key"},
        {&st->w_prune, "DELETE FROM readings WHERE rowid IN (SELECT rowid FROM readings "
                       "WHERE device = ?1 AND t < ?2 LIMIT ?3)"},
        /* A device never stored has no key and nothing to be lost against. */
        {&st->w_lost, "INSERT INTO lost_ranges(device, boot, from_seq, to_seq, reason, marked_at) "
                      "SELECT key, ?2, ?3, ?4, ?5, ?6 FROM devices WHERE id = ?1"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++)
        if (prepare(st->wdb, stmts[i].sql, stmts[i].s, err, errlen) != 0)
            return -1;
    return 0;
}

static int open_reader(store *st, const char *path, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(path, &st->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s (read-only): %s", path,
                 st->rdb ? sqlite3_errmsg(st->rdb) : sqlite3_errstr(rc));
        return -1;
    }
    if (sqlite3_busy_timeout(st->rdb, BUSY_TIMEOUT_MS) != SQLITE_OK) {
        snprintf(err, errlen, "%s: busy_timeout: %s", path, sqlite3_errmsg(st->rdb));
        return -1;
    }
    const struct {
        sqlite3_stmt **s;
        const char *sql;
    } stmts[] = {
        {&st->r_begin, "BEGIN"},
        {&st->r_end, "COMMIT"},
        {&st->r_list, "SELECT " DEVICE_COLS " FROM devices ORDER BY id"},
        {&st->r_get, "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1"},
        {&st->r_key, "SELECT key FROM devices WHERE id = ?1"},
        {&st->r_count, "SELECT count(*) FROM readings WHERE device = ?1 AND t BETWEEN ?2 AND ?3"},
        {&st->r_raw, "SELECT " READING_COLS " FROM readings "
                     "WHERE device = ?1 AND t BETWEEN ?2 AND ?3 ORDER BY t, rowid"},
        {&st->r_ds, "SELECT t, object_temp, ambient_temp, heart_rate, spo2 FROM readings "
                    "WHERE device = ?1 AND t BETWEEN ?2 AND ?3"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++)
        if (prepare(st->rdb, stmts[i].sql, stmts[i].s, err, errlen) != 0)
            return -1;
    return 0;
}

store_err store_open(const store_options *opt, store **out, char *err, size_t errlen)
{
    char scratch[1];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!opt || !opt->path || !out) {
        snprintf(err, errlen, "store_open: missing path");
        return STORE_EINVAL;
    }
    *out = NULL;
    store *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return STORE_ENOMEM;
    }
    st->cap = opt->queue_capacity ? opt->queue_capacity : DEFAULT_QUEUE_CAPACITY;
    st->batch_max = opt->batch_max ? opt->batch_max : DEFAULT_BATCH_MAX;
    st->retention_ms = opt->retention_ms > 0 ? opt->retention_ms : 0;
    /* calloc of a large ring maps lazily: untouched slots cost no RAM. */
    st->ring = calloc(st->cap, sizeof *st->ring);
    st->batch = calloc(st->batch_max, sizeof *st->batch);
    for (st->lasts_cap = 16; st->lasts_cap < 2 * st->batch_max; st->lasts_cap *= 2)
        ;
    st->lasts = calloc(st->lasts_cap, sizeof *st->lasts);
    st->lasts_used = calloc(st->batch_max, sizeof *st->lasts_used);
    if (!st->ring || !st->batch || !st->lasts || !st->lasts_used) {
        snprintf(err, errlen, "out of memory for a queue of %zu records", st->cap);
        destroy(st);
        return STORE_ENOMEM;
    }
    st->stats.queue_capacity = st->cap;
    st->stats.writable = 1;

    pthread_condattr_t ca;
    int rc = pthread_mutex_init(&st->lock, NULL);
    st->lock_init = rc == 0;
    if (rc == 0) {
        rc = pthread_mutex_init(&st->rlock, NULL);
        st->rlock_init = rc == 0;
    }
    if (rc == 0 && (rc = pthread_condattr_init(&ca)) == 0) {
        /* Monotonic: backoff and retention timers ignore wall-clock jumps. */
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (rc == 0)
            rc = pthread_cond_init(&st->wake, &ca);
        st->wake_init = rc == 0;
        pthread_condattr_destroy(&ca);
    }
    if (rc != 0) {
        snprintf(err, errlen, "pthread init: %s", strerror(rc));
        destroy(st);
        return STORE_ENOMEM;
    }

    if (open_writer(st, opt->path, err, errlen) != 0 ||
        open_reader(st, opt->path, err, errlen) != 0) {
        destroy(st);
        return STORE_EIO;
    }

    rc = pthread_create(&st->writer, NULL, writer_main, st);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the writer thread: %s", strerror(rc));
        destroy(st);
        return STORE_ENOMEM;
    }
    st->writer_started = 1;
    *out = st;
    return STORE_OK;
}

void store_close(store *st)
{
    if (!st)
        return;
    if (st->writer_started) {
        pthread_mutex_lock(&st->lock);
        st->stop = 1;
        pthread_cond_signal(&st->wake);
        pthread_mutex_unlock(&st->lock);
        int rc = pthread_join(st->writer, NULL);
        if (rc != 0)
            LOG_E(TAG, "joining the writer: %s", strerror(rc));
    }
    destroy(st);
}

/* ---- queue ------------------------------------------------------------ */

static int id_ok(const char *id)
{
    return id[0] != '\0' && memchr(id, '\0', TELEMETRY_ID_MAX + 1) != NULL;
}

static store_err enqueue(store *st, int kind, const void *rec, size_t size)
{
    store_err ret = STORE_OK;
    pthread_mutex_lock(&st->lock);
    if (st->stop) {
        ret = STORE_EINVAL; /* closing: the caller is misusing the store */
    } else if (st->count == st->cap) {
        st->stats.dropped_full++;
        ret = STORE_EFULL;
    } else {
        store_rec *slot = &st->ring[(st->head + st->count) % st->cap];
        slot->kind = kind;
        memcpy(&slot->u, rec, size);
        if (st->count++ == 0)
            pthread_cond_signal(&st->wake); /* the writer only sleeps on an empty ring */
        st->stats.queued++;
    }
    pthread_mutex_unlock(&st->lock);
    return ret;
}

store_err store_put_reading(store *st, const telemetry_reading *r)
{
    if (!st || !r || !id_ok(r->device_id))
        return STORE_EINVAL;
    return enqueue(st, REC_READING, r, sizeof *r);
}

store_err store_put_status(store *st, const telemetry_status *s)
{
    if (!st || !s || !id_ok(s->device_id))
        return STORE_EINVAL;
    return enqueue(st, REC_STATUS, s, sizeof *s);
}

store_err store_put_lost(store *st, const char *device_id, int64_t boot, int64_t from_seq,
                         int64_t to_seq, const char *reason, int64_t at_ms)
{
    if (!st || !device_id || !id_ok(device_id) || from_seq > to_seq)
        return STORE_EINVAL;
    store_lost_rec l;
    memset(&l, 0, sizeof l);
    snprintf(l.device_id, sizeof l.device_id, "%s", device_id);
    snprintf(l.reason, sizeof l.reason, "%s", reason ? reason : "");
    l.boot = boot;
    l.from_seq = from_seq;
    l.to_seq = to_seq;
    l.at_ms = at_ms;
    return enqueue(st, REC_LOST, &l, sizeof l);
}

void store_get_stats(store *st, store_stats *out)
{
    if (!out)
        return;
    if (!st) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&st->lock);
    *out = st->stats;
    /* Records held by a failing batch are still waiting: count them. */
    out->queue_depth = st->count + st->batch_n;
    pthread_mutex_unlock(&st->lock);
}

/* ---- reads ------------------------------------------------------------ */

static void row_to_device(sqlite3_stmt *s, store_device *d)
{
    memset(d, 0, sizeof *d);
    copy_text(d->id, sizeof d->id, s, 0);
    d->first_seen_ms = sqlite3_column_int64(s, 1);
    d->last_seen_ms = sqlite3_column_int64(s, 2);
    d->online = sqlite3_column_type(s, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 3) != 0;
    d->status_ms = sqlite3_column_int64(s, 4);
    copy_text(d->fw, sizeof d->fw, s, 5);
    d->interval_ms = sqlite3_column_int64(s, 6);
    d->boot = sqlite3_column_type(s, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 7);
    d->has_last = sqlite3_column_type(s, 9) != SQLITE_NULL; /* last_received */
    if (d->has_last)
        row_to_reading(s, 8, d->id, &d->last, NULL);
}

static store_err read_error(store *st, const char *what)
{
    LOG_E(TAG, "%s: %s", what, sqlite3_errmsg(st->rdb));
    return STORE_EIO;
}

store_err store_list_devices(store *st, store_device **out, size_t *n)
{
    if (!st || !out || !n)
        return STORE_EINVAL;
    *out = NULL;
    *n = 0;
    store_device *v = NULL;
    size_t len = 0, cap = 0;
    store_err ret = STORE_OK;
    int rc;
    pthread_mutex_lock(&st->rlock);
    while ((rc = sqlite3_step(st->r_list)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            store_device *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                ret = STORE_ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        row_to_device(st->r_list, &v[len++]);
    }
    if (ret == STORE_OK && rc != SQLITE_DONE)
        ret = read_error(st, "listing devices");
    sqlite3_reset(st->r_list);
    pthread_mutex_unlock(&st->rlock);
    if (ret != STORE_OK) {
        free(v);
        return ret;
    }
    if (len == 0) {
        free(v);
        v = NULL;
    }
    *out = v;
    *n = len;
    return STORE_OK;
}

store_err store_get_device(store *st, const char *id, store_device *out)
{
    if (!st || !id || !out)
        return STORE_EINVAL;
    store_err ret;
    pthread_mutex_lock(&st->rlock);
    int rc = sqlite3_bind_text(st->r_get, 1, id, -1, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) {
        ret = read_error(st, "get device");
    } else {
        rc = sqlite3_step(st->r_get);
        if (rc == SQLITE_ROW) {
            row_to_device(st->r_get, out);
            ret = STORE_OK;
        } else if (rc == SQLITE_DONE) {
            ret = STORE_ENOTFOUND;
        } else {
            ret = read_error(st, "get device");
        }
    }
    sqlite3_reset(st->r_get);
    pthread_mutex_unlock(&st->rlock);
    return ret;
}

/* Runs inside the read transaction, rlock held. */
static store_err query_locked(store *st, const char *id, int64_t from_ms, int64_t to_ms,
                              size_t max_points, store_series *out)
{
    sqlite3_stmt *s = st->r_key;
    int rc = sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK)
        return read_error(st, "query readings");
    rc = sqlite3_step(s);
    int64_t key = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return STORE_ENOTFOUND;
    if (rc != SQLITE_ROW)
        return read_error(st, "query readings (device)");

    s = st->r_count;
    if (sqlite3_bind_int64(s, 1, key) != SQLITE_OK || sqlite3_bind_int64(s, 2, from_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, to_ms) != SQLITE_OK)
        return read_error(st, "query readings (bind)");
    rc = sqlite3_step(s);
    int64_t total = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return read_error(st, "query readings (count)");
    out->total = (size_t)total;

    if (out->total <= max_points) {
        if (total > 0) {
            out->raw = malloc(out->total * sizeof *out->raw);
            out->raw_t = malloc(out->total * sizeof *out->raw_t);
            if (!out->raw || !out->raw_t)
                return STORE_ENOMEM;
        }
        s = st->r_raw;
        if (sqlite3_bind_int64(s, 1, key) != SQLITE_OK ||
            sqlite3_bind_int64(s, 2, from_ms) != SQLITE_OK ||
            sqlite3_bind_int64(s, 3, to_ms) != SQLITE_OK)
            return read_error(st, "query readings (bind)");
        size_t i = 0;
        /* Same read transaction as the count, so exactly total rows come. */
        while (i < out->total && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            row_to_reading(s, 0, id, &out->raw[i], &out->raw_t[i]);
            i++;
        }
        if (i < out->total && rc != SQLITE_DONE) {
            sqlite3_reset(s);
            return read_error(st, "query readings (rows)");
        }
        sqlite3_reset(s);
        out->total = i;
        return STORE_OK;
    }

    out->downsampled = 1;
    out->ds.b = calloc(max_points, sizeof *out->ds.b);
    if (!out->ds.b)
        return STORE_ENOMEM;
    if (downsample_init(&out->ds, from_ms, to_ms, max_points, out->ds.b, max_points) != 0)
        return STORE_EINVAL;
    s = st->r_ds;
    if (sqlite3_bind_int64(s, 1, key) != SQLITE_OK || sqlite3_bind_int64(s, 2, from_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, to_ms) != SQLITE_OK)
        return read_error(st, "query readings (bind)");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        double vals[DS_CHANNELS];
        unsigned mask = 0;
        for (int c = 0; c < DS_CHANNELS; c++) {
            /* Column order matches DS_OBJECT_TEMP.. DS_SPO2; NULL: absent. */
            if (sqlite3_column_type(s, c + 1) != SQLITE_NULL) {
                vals[c] = sqlite3_column_double(s, c + 1);
                mask |= 1u << c;
            } else {
                vals[c] = 0;
            }
        }
        downsample_add(&out->ds, sqlite3_column_int64(s, 0), vals, mask);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return read_error(st, "query readings (rows)");
    return STORE_OK;
}

store_err store_query_readings(store *st, const char *id, int64_t from_ms, int64_t to_ms,
                               size_t max_points, store_series *out)
{
    if (!out)
        return STORE_EINVAL;
    memset(out, 0, sizeof *out);
    if (!st || !id || max_points == 0 || to_ms < from_ms)
        return STORE_EINVAL;
    pthread_mutex_lock(&st->rlock);
    store_err ret;
    /* One read transaction: count and rows see the same snapshot. */
    if (exec_stmt(st->r_begin) != SQLITE_DONE) {
        ret = read_error(st, "query readings (begin)");
    } else {
        ret = query_locked(st, id, from_ms, to_ms, max_points, out);
        if (exec_stmt(st->r_end) != SQLITE_DONE && ret == STORE_OK)
            ret = read_error(st, "query readings (end)");
    }
    pthread_mutex_unlock(&st->rlock);
    if (ret != STORE_OK)
        store_series_free(out);
    return ret;
}

void store_series_free(store_series *s)
{
    if (!s)
        return;
    free(s->raw);
    free(s->raw_t);
    free(s->ds.b);
    memset(s, 0, sizeof *s);
}

/* ---- completeness ----------------------------------------------------- */

/* Gaps and islands: within one (device, boot), seq - row_number() is
 * constant along a run of consecutive seqs, so grouping by it yields the
 * runs. Only each device's current boot (devices.boot) and, of it, only the
 * last ISLANDS_HORIZON seqs are read: nothing older can still be in a
 * device's outbox, so there is nothing to ask for, and the startup cost is
 * bounded by devices x horizon instead of the whole table. CROSS JOIN keeps
 * devices as the outer loop, so both max(seq) and the rows are range seeks
 * of the unique (device, boot, seq) index (measured: 1M rows, 200 devices,
 * ~1 s; the window's sort is over those rows only). */
#define ISLANDS_HORIZON 200000
#define ISLANDS_SQL                                                            \
    "SELECT d.id, g.boot, min(g.seq), max(g.seq) FROM ("                       \
    "  SELECT r.device, r.boot, r.seq,"                                        \
    "         r.seq - row_number() OVER (PARTITION BY r.device, r.boot ORDER BY r.seq) AS grp" \
    "  FROM devices AS k CROSS JOIN readings AS r" /* devices outer: seeks */ \
    "    ON r.device = k.key AND r.boot = k.boot AND r.seq IS NOT NULL"       \
    "   AND r.seq > (SELECT max(x.seq) FROM readings AS x"                     \
    "                WHERE x.device = k.key AND x.boot = k.boot AND x.seq IS NOT NULL) - ?1" \
    "  WHERE k.boot IS NOT NULL) AS g "                                        \
    "JOIN devices AS d ON d.key = g.device "                                   \
    "GROUP BY g.device, g.boot, g.grp"
#define LOST_SQL                                                               \
    "SELECT d.id, l.boot, l.from_seq, l.to_seq FROM lost_ranges AS l "         \
    "JOIN devices AS d ON d.key = l.device ORDER BY l.device, l.boot, l.from_seq"

static store_err load_rows(store *st, const char *sql,
                           void (*fn)(void *, const char *, int64_t, int64_t, int64_t), void *ctx)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->rdb, sql, -1, &s, NULL) != SQLITE_OK)
        return read_error(st, "completeness (prepare)");
    if (sqlite3_bind_parameter_count(s) >= 1 &&
        sqlite3_bind_int64(s, 1, ISLANDS_HORIZON) != SQLITE_OK) {
        sqlite3_finalize(s);
        return read_error(st, "completeness (bind)");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char id[TELEMETRY_ID_MAX + 1];
        copy_text(id, sizeof id, s, 0);
        if (fn)
            fn(ctx, id, sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
               sqlite3_column_int64(s, 3));
    }
    store_err ret = rc == SQLITE_DONE ? STORE_OK : read_error(st, "completeness (rows)");
    sqlite3_finalize(s);
    return ret;
}

store_err store_load_completeness(store *st, const store_completeness_cb *cb)
{
    if (!st || !cb)
        return STORE_EINVAL;
    pthread_mutex_lock(&st->rlock);
    store_err ret;
    /* One snapshot for both: a lost range and the islands agree. */
    if (exec_stmt(st->r_begin) != SQLITE_DONE) {
        ret = read_error(st, "completeness (begin)");
    } else {
        ret = load_rows(st, ISLANDS_SQL, cb->island, cb->ctx);
        if (ret == STORE_OK)
            ret = load_rows(st, LOST_SQL, cb->lost, cb->ctx);
        if (exec_stmt(st->r_end) != SQLITE_DONE && ret == STORE_OK)
            ret = read_error(st, "completeness (end)");
    }
    pthread_mutex_unlock(&st->rlock);
    return ret;
}
