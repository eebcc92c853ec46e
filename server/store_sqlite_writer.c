/* store_sqlite_writer — the write side of the SQLite store: the queue
 * (store_put_*), the writer thread, batches with group commit, retention,
 * retry with backoff. See store_sqlite_int.h for threads and ownership. */
#include "store_sqlite_int.h"
#include "vclock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define TAG STORE_TAG

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STOP_GIVE_UP_MS 10000       /* at close, retry a failing batch this long, then drop it */
#define PRUNE_INTERVAL_MS 2000      /* retention pass period when caught up */
#define PRUNE_CATCHUP_MS 50         /* ... and when the last pass found a full chunk */
#define PRUNE_CHUNK 5000            /* rows deleted per retention transaction */
#define GROUP_COMMIT_MS 10          /* wait for more records before a small batch */

/* ---- small helpers ---------------------------------------------------- */

/* Waits on st->wake until signalled or, if deadline_ms >= 0, until that
 * monotonic time. Called with lock held (the wait releases and retakes it). */
static void store__wait(store *st, int64_t deadline_ms)
{
    VMUTEX_ASSERT_HELD(&st->lock);
    int rc;
    if (deadline_ms < 0) {
        rc = vmutex_cond_wait(&st->wake, &st->lock);
    } else {
        struct timespec ts = {.tv_sec = deadline_ms / 1000,
                              .tv_nsec = (long)(deadline_ms % 1000) * 1000000};
        rc = vmutex_cond_timedwait(&st->wake, &st->lock, &ts);
    }
    if (rc != 0 && rc != ETIMEDOUT)
        LOG_E(TAG, "waiting for records: %s", strerror(rc));
}

/* Errors worth retrying the whole batch for: the database or its file is
 * (for now) unusable. Anything else is a problem with one record. */
static int store__is_batch_error(int rc)
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

static int64_t store__reading_t(const telemetry_reading *r)
{
    return (r->present & TELEMETRY_HAS_TS) ? r->ts_ms : r->received_ms;
}

/* Binds ?2..?16 in STORE_READING_COLS order (?1 is the device key). */
static int store__bind_reading(sqlite3_stmt *s, const telemetry_reading *r)
{
    uint32_t p = r->present;
    uint32_t flags = (p & STORE_FLAG_PRESENT_MASK) | (r->hr_valid ? STORE_FLAG_HR_VALID : 0) |
                     (r->spo2_valid ? STORE_FLAG_SPO2_VALID : 0) |
                     (r->temp_valid ? STORE_FLAG_TEMP_VALID : 0);
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
    B(sqlite3_bind_int64(s, 2, store__reading_t(r)));
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

/* ---- writer thread ---------------------------------------------------- */
/* Everything in this section is writer thread only (THREAD_ASSERT_OWNER),
 * and runs without lock held unless it says so. */

static const void *store__key_of_key(const void *e) { return ((const store_key *)e)->id; }
static const void *store__key_of_last(const void *e) { return &((const store_last *)e)->key; }

static const idtable_type store__keys_type = {
    .entry_size = sizeof(store_key),
    .key_of = store__key_of_key,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};
static const idtable_type store__lasts_type = {
    .entry_size = sizeof(store_last),
    .key_of = store__key_of_last,
    .hash = idtable_hash_i64,
    .equal = idtable_equal_i64,
};

/* The device's key, creating its row on first sight. */
static int store__device_key(store *st, const telemetry_reading *r, int64_t *key)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    const store_key *k = idtable_find(&st->keys, r->device_id);
    if (k) {
        *key = k->key;
        return SQLITE_DONE;
    }
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
    store_key e = {.key = *key};
    memcpy(e.id, r->device_id, sizeof e.id); /* NUL-terminated: checked by store_put_reading */
    void *slot;
    if (idtable_put(&st->keys, &e, &slot) == IDTABLE_EEXIST)
        ((store_key *)slot)->key = *key;
    /* Any other failure: not cached, the upsert path still works. */
    return SQLITE_DONE;
}

/* Remembers batch[idx] as the device's latest stored reading of this batch
 * (by receive time, later records winning ties). */
static int store__last_note(store *st, int64_t key, size_t idx)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    store_last e = {.key = key, .idx = idx};
    void *slot;
    idtable_err rc = idtable_put(&st->lasts, &e, &slot);
    if (rc == IDTABLE_OK)
        return SQLITE_DONE;
    if (rc != IDTABLE_EEXIST)
        return SQLITE_NOMEM; /* cannot happen (sized at open); retry the batch */
    store_last *l = slot;
    if (st->batch[idx].u.r.received_ms >= st->batch[l->idx].u.r.received_ms)
        l->idx = idx;
    return SQLITE_DONE;
}

/* Applies one reading inside the open transaction. *stored tells whether it
 * was new. Returns an SQLite code (SQLITE_DONE on success). */
static int store__write_reading(store *st, size_t idx, int *stored)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    const telemetry_reading *r = &st->batch[idx].u.r;
    int64_t key;
    int rc = store__device_key(st, r, &key);
    if (rc != SQLITE_DONE)
        return rc;
    sqlite3_stmt *s = st->w_insert;
    rc = sqlite3_bind_int64(s, 1, key);
    if (rc == SQLITE_OK)
        rc = store__bind_reading(s, r);
    if (rc != SQLITE_OK)
        return rc;
    rc = store_sqlite__exec_stmt(s);
    if (rc != SQLITE_DONE)
        return rc;
    *stored = sqlite3_changes(st->wdb) > 0;
    if (!*stored) /* a redelivery leaves the device's latest values alone */
        return SQLITE_DONE;
    return store__last_note(st, key, idx);
}

/* Updates each device touched by the batch once, with its latest reading. */
static int store__write_lasts(store *st)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    int rc = SQLITE_DONE;
    size_t it = 0;
    const store_last *l;
    while (rc == SQLITE_DONE && (l = idtable_next(&st->lasts, &it))) {
        sqlite3_stmt *s = st->w_last;
        rc = sqlite3_bind_int64(s, 1, l->key);
        if (rc == SQLITE_OK)
            rc = store__bind_reading(s, &st->batch[l->idx].u.r);
        rc = rc == SQLITE_OK ? store_sqlite__exec_stmt(s) : rc;
    }
    return rc;
}

static int store__write_status(store *st, const telemetry_status *x)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
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
    rc = store_sqlite__exec_stmt(s);
    return rc;
}

static int store__write_lost(store *st, const store_lost_rec *l)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
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
    return store_sqlite__exec_stmt(s);
}

/* Ends a failed transaction. The reason goes into st->werr (with the
 * rollback's own failure, if any), for the caller's one log line: the
 * writer loop for a batch, store__prune_pass for retention. */
static void store__rollback(store *st)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    idtable_clear(&st->keys); /* device rows created in this transaction are gone */
    idtable_clear(&st->lasts);
    /* Keep the reason: a successful ROLLBACK resets sqlite3_errmsg(). */
    snprintf(st->werr, sizeof st->werr, "%s", sqlite3_errmsg(st->wdb));
    /* SQLite may already have rolled back on its own (FULL, IOERR, NOMEM). */
    if (!sqlite3_get_autocommit(st->wdb)) {
        int rc = store_sqlite__exec_stmt(st->w_rollback);
        size_t n = strlen(st->werr);
        if (rc != SQLITE_DONE && n + 1 < sizeof st->werr)
            snprintf(st->werr + n, sizeof st->werr - n, "; rollback failed: %s",
                     sqlite3_errmsg(st->wdb));
    }
}

/* Writes st->batch in one transaction. Returns SQLITE_DONE, or the code of
 * the failure that aborted it (then nothing of the batch was stored). */
static int store__write_batch(store *st, uint64_t *n_stored, uint64_t *n_dup, uint64_t *n_rejected)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    uint64_t stored = 0, dup = 0, rejected = 0;
    int rc = store_sqlite__exec_stmt(st->w_begin);
    if (rc != SQLITE_DONE) {
        snprintf(st->werr, sizeof st->werr, "%s", sqlite3_errmsg(st->wdb));
        return rc;
    }
    for (size_t i = 0; i < st->batch_n; i++) {
        const store_rec *rec = &st->batch[i];
        int was_stored = 0;
        rc = rec->kind == STORE_REC_READING ? store__write_reading(st, i, &was_stored)
             : rec->kind == STORE_REC_LOST  ? store__write_lost(st, &rec->u.l)
             : rec->kind == STORE_REC_AUTH  ? store_sqlite__write_auth(st, &rec->u.a)
             : rec->kind == STORE_REC_ALARM ? store_sqlite__write_alarm(st, &rec->u.al)
             : rec->kind == STORE_REC_ALARM_SETTING ? store_sqlite__write_alarm_setting(st, &rec->u.as)
                                      : store__write_status(st, &rec->u.s);
        if (rc == SQLITE_DONE) {
            if (rec->kind == STORE_REC_READING)
                was_stored ? stored++ : dup++;
            continue;
        }
        if (store__is_batch_error(rc) || sqlite3_get_autocommit(st->wdb)) {
            store__rollback(st);
            return rc;
        }
        /* Only this record is refused; retrying it would wedge the store. */
        rejected++;
        LOG_W(TAG, "record for %s refused by the database, dropped: %s",
              rec->kind == STORE_REC_READING ? rec->u.r.device_id
              : rec->kind == STORE_REC_LOST  ? rec->u.l.device_id
              : rec->kind == STORE_REC_AUTH  ? "access control"
              : rec->kind == STORE_REC_ALARM ? rec->u.al.alarm.device_id
              : rec->kind == STORE_REC_ALARM_SETTING ? rec->u.as.device_id
                                       : rec->u.s.device_id,
              sqlite3_errmsg(st->wdb));
    }
    rc = store__write_lasts(st);
    if (rc != SQLITE_DONE) {
        store__rollback(st);
        return rc;
    }
    rc = store_sqlite__exec_stmt(st->w_commit);
    if (rc != SQLITE_DONE) {
        store__rollback(st);
        return rc;
    }
    idtable_clear(&st->lasts);
    *n_stored = stored;
    *n_dup = dup;
    *n_rejected = rejected;
    return SQLITE_DONE;
}

/* One retention pass: deletes up to PRUNE_CHUNK readings older than the
 * cutoff, device by device (the (device, t) index makes each step cheap),
 * resuming after the device where the last pass stopped. Returns the number
 * deleted, or -1 on error. */
static int64_t store__prune_pass(store *st, int64_t cutoff)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    int64_t budget = PRUNE_CHUNK, deleted = 0;
    int rc = store_sqlite__exec_stmt(st->w_begin);
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
        rc = store_sqlite__exec_stmt(p);
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
    if (rc == SQLITE_DONE)
        rc = store_sqlite__prune_auth(st, cutoff, vclock_wall_ms());
    if (rc != SQLITE_DONE)
        goto fail;
    rc = store_sqlite__exec_stmt(st->w_commit);
    if (rc != SQLITE_DONE)
        goto fail;
    st->prune_cursor = next_cursor;
    if (st->prune_failing) {
        st->prune_failing = 0;
        LOG_I(TAG, "retention pruning works again");
    }
    return deleted;
fail:
    store__rollback(st);
    if (!st->prune_failing) {
        st->prune_failing = 1;
        LOG_W(TAG, "retention pruning failed, will retry: %s", st->werr);
    }
    return -1;
}

void *store_sqlite__writer_main(void *arg)
{
    store *st = arg;
    int64_t backoff = 0;       /* > 0 while the current batch keeps failing */
    int64_t retry_at = 0;
    int64_t give_up_at = 0;    /* set once stop is seen with a failing batch */
    int64_t next_prune = vclock_mono_ms();
    uint64_t failures = 0;     /* in the current unwritable period */
    int stop_kicked = 0;

    thread_owner_bind(&st->writer_owner);
    vmutex_lock(&st->lock);
    for (;;) {
        if (st->batch_n == 0) {
            while (ring_empty(&st->queue) && !st->stop) {
                if (st->retention_ms <= 0) {
                    store__wait(st, -1);
                } else if (vclock_mono_ms() >= next_prune) {
                    break;
                } else {
                    store__wait(st, next_prune);
                }
            }
            /* Group commit: a transaction costs far more than a row, so
             * when only a few records are waiting, let more arrive for a
             * moment. Storage lags by GROUP_COMMIT_MS at most; the live
             * path does not wait for it. */
            size_t queued = ring_count(&st->queue);
            if (queued > 0 && queued < st->batch_max && !st->stop) {
                vmutex_unlock(&st->lock);
                struct timespec gc = {0, GROUP_COMMIT_MS * 1000000L};
                nanosleep(&gc, NULL);
                vmutex_lock(&st->lock);
            }
            /* Take everything queued, up to one batch. */
            size_t n = ring_count(&st->queue);
            if (n > st->batch_max)
                n = st->batch_max;
            for (size_t i = 0; i < n; i++)
                (void)ring_pop_copy(&st->queue, &st->batch[i]); /* i < count: cannot fail */
            st->batch_n = n;
        } else {
            /* A failed batch waits out its backoff; close cuts the current
             * wait short once (a last prompt try), then backoff applies. */
            while (vclock_mono_ms() < retry_at) {
                if (st->stop && !stop_kicked) {
                    stop_kicked = 1;
                    break;
                }
                store__wait(st, retry_at);
            }
        }
        int stopping = st->stop;
        vmutex_unlock(&st->lock);

        if (st->batch_n > 0) {
            uint64_t stored = 0, dup = 0, rejected = 0;
            int rc = store__write_batch(st, &stored, &dup, &rejected);
            vmutex_lock(&st->lock);
            if (rc == SQLITE_DONE) {
                st->stats.stored += stored;
                st->stats.duplicates += dup;
                st->stats.rejected += rejected;
                if (!st->stats.writable)
                    LOG_I(TAG, "database writable again after %" PRIu64 " failed attempts",
                          failures);
                st->stats.writable = 1;
                st->written += st->batch_n;
                pthread_cond_broadcast(&st->synced);
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
                              ring_count(&st->queue), st->batch_n);
                        st->written += ring_count(&st->queue) + st->batch_n;
                        pthread_cond_broadcast(&st->synced);
                        while (!ring_empty(&st->queue))
                            ring_pop(&st->queue);
                        st->batch_n = 0;
                    }
                }
            }
            vmutex_unlock(&st->lock);
        }

        /* Retention between batches, only while writes work, and never
         * more than one chunk per batch so ingest keeps flowing. */
        if (st->retention_ms > 0 && st->batch_n == 0 && !stopping &&
            vclock_mono_ms() >= next_prune) {
            int64_t n = store__prune_pass(st, vclock_wall_ms() - st->retention_ms);
            next_prune = vclock_mono_ms() + (n >= PRUNE_CHUNK ? PRUNE_CATCHUP_MS : PRUNE_INTERVAL_MS);
            if (n > 0) {
                vmutex_lock(&st->lock);
                st->stats.pruned += (uint64_t)n;
                vmutex_unlock(&st->lock);
            }
        }

        vmutex_lock(&st->lock);
        if (st->stop && ring_empty(&st->queue) && st->batch_n == 0)
            break;
    }
    vmutex_unlock(&st->lock);
    thread_owner_release(&st->writer_owner);
    return NULL;
}

/* ---- set-up ----------------------------------------------------------- */

int store_sqlite__writer_init(store *st, size_t queue_capacity, char *err, size_t errlen)
{
    st->batch = calloc(st->batch_max, sizeof *st->batch);
    /* malloc maps a large ring lazily (mmap): untouched slots cost no RAM. */
    if (ring_init(&st->queue, queue_capacity, sizeof(store_rec)) != RING_OK || !st->batch ||
        idtable_init(&st->keys, &store__keys_type, 1024, 0) != IDTABLE_OK ||
        idtable_init(&st->lasts, &store__lasts_type, 2 * st->batch_max, 0) != IDTABLE_OK) {
        snprintf(err, errlen, "out of memory for a queue of %zu records", queue_capacity);
        return -1;
    }
    return 0;
}

int store_sqlite__writer_prepare(store *st, char *err, size_t errlen)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
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
        {&st->w_insert, "INSERT OR IGNORE INTO readings(device, " STORE_READING_COLS ") "
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
        if (store_sqlite__prepare(st->wdb, stmts[i].sql, stmts[i].s, err, errlen) != 0)
            return -1;
    return 0;
}


/* ---- queue ------------------------------------------------------------ */

/* The id is read from a fixed TELEMETRY_ID_MAX + 1 array (or a caller's
 * string): find its NUL within that bound first, then validate it. */
static int store__id_valid(const char *id)
{
    const char *end = memchr(id, '\0', TELEMETRY_ID_MAX + 1);
    return end && telemetry_id_valid(id, (size_t)(end - id));
}

/* Queues n records of one kind (recs: n x size bytes) all together or, when
 * the queue has no room for all of them, none (each refused one counted). */
static store_err store__enqueue_n(store *st, int kind, const void *recs, size_t size, size_t n)
{
    store_err ret = STORE_OK;
    vmutex_lock(&st->lock);
    if (st->stop) {
        ret = STORE_EINVAL; /* closing: the caller is misusing the store */
    } else if (ring_capacity(&st->queue) - ring_count(&st->queue) < n) {
        /* Full: refuse and count; never wait for the writer. */
        st->stats.dropped_full += n;
        ret = STORE_EFULL;
    } else {
        int was_empty = ring_count(&st->queue) == 0;
        for (size_t i = 0; i < n; i++) {
            store_rec *slot = ring_push(&st->queue);
            slot->kind = kind;
            memcpy(&slot->u, (const unsigned char *)recs + i * size, size);
        }
        if (was_empty && n)
            pthread_cond_signal(&st->wake); /* the writer only sleeps on an empty ring */
        st->stats.queued += n;
    }
    vmutex_unlock(&st->lock);
    return ret;
}

static store_err store__enqueue(store *st, int kind, const void *rec, size_t size)
{
    return store__enqueue_n(st, kind, rec, size, 1);
}

store_err store_put_reading(store *st, const telemetry_reading *r)
{
    if (!st || !r || !store__id_valid(r->device_id))
        return STORE_EINVAL;
    return store__enqueue(st, STORE_REC_READING, r, sizeof *r);
}

store_err store_put_status(store *st, const telemetry_status *s)
{
    if (!st || !s || !store__id_valid(s->device_id))
        return STORE_EINVAL;
    return store__enqueue(st, STORE_REC_STATUS, s, sizeof *s);
}

store_err store_put_auth(store *st, const store_auth_write *w)
{
    if (!st || !w || w->op < STORE_AUTH_USER_ADD || w->op > STORE_AUTH_AUDIT)
        return STORE_EINVAL;
    return store__enqueue(st, STORE_REC_AUTH, w, sizeof *w);
}

store_err store_put_alarm(store *st, const alarm_event *ev)
{
    if (!st || !ev || !store__id_valid(ev->alarm.device_id))
        return STORE_EINVAL;
    return store__enqueue(st, STORE_REC_ALARM, ev, sizeof *ev);
}

store_err store_put_alarm_settings(store *st, const char *device_id, const alarm_settings *s,
                                   const char *user, int64_t at_ms)
{
    if (!st || !s || !device_id || !store__id_valid(device_id))
        return STORE_EINVAL;
    store_alarm_setting_rec r[ALARM_COND_COUNT + 1];
    memset(r, 0, sizeof r);
    for (int c = -1; c < ALARM_COND_COUNT; c++) {
        store_alarm_setting_rec *x = &r[c + 1];
        snprintf(x->device_id, sizeof x->device_id, "%s", device_id);
        snprintf(x->user, sizeof x->user, "%s", user ? user : "");
        x->cond = c;
        if (c < 0)
            x->cs.onset_ms = s->escalation_ms;
        else
            x->cs = s->cond[c];
        x->at_ms = at_ms;
    }
    return store__enqueue_n(st, STORE_REC_ALARM_SETTING, r, sizeof *r, ALARM_COND_COUNT + 1);
}

store_err store_sync(store *st, int64_t timeout_ms)
{
    if (!st)
        return STORE_EINVAL;
    vmutex_lock(&st->lock);
    uint64_t target = st->stats.queued;
    int64_t deadline = vclock_mono_ms() + timeout_ms;
    while (st->written < target && vclock_mono_ms() < deadline) {
        struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (long)(deadline % 1000) * 1000000};
        (void)vmutex_cond_timedwait(&st->synced, &st->lock, &ts);
    }
    int ok = st->written >= target;
    vmutex_unlock(&st->lock);
    return ok ? STORE_OK : STORE_EIO;
}

store_err store_put_lost(store *st, const char *device_id, int64_t boot, int64_t from_seq,
                         int64_t to_seq, const char *reason, int64_t at_ms)
{
    if (!st || !device_id || !store__id_valid(device_id) || from_seq > to_seq)
        return STORE_EINVAL;
    store_lost_rec l;
    memset(&l, 0, sizeof l);
    snprintf(l.device_id, sizeof l.device_id, "%s", device_id);
    snprintf(l.reason, sizeof l.reason, "%s", reason ? reason : "");
    l.boot = boot;
    l.from_seq = from_seq;
    l.to_seq = to_seq;
    l.at_ms = at_ms;
    return store__enqueue(st, STORE_REC_LOST, &l, sizeof l);
}
