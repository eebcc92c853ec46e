/* store — the engine-independent front of store.h: the bounded write queue
 * (store_put_*), the writer thread with group commit, retry with backoff
 * and the retention schedule, store_sync (and store_sync_device, through
 * each device's last queued serial), stats, and the forwarding of
 * reads and administration to the engine (store_backend.h) chosen by the
 * path: a postgresql:// URL selects PostgreSQL, anything else SQLite.
 *
 * Threads and ownership:
 *  - Callers of store_put_*() (the ingest, web and query threads) copy
 *    records into a bounded ring (st->queue) under st->lock and signal
 *    st->wake. Nothing on that path touches the database or blocks on I/O,
 *    so ingest never stalls. When the ring is full the record is refused
 *    (STORE_EFULL) and counted in stats.dropped_full.
 *  - One writer thread (store__writer_main) moves up to batch_max records
 *    from the ring into its private st->batch and hands them to the
 *    engine's write_batch, one transaction. If it fails as a whole
 *    (STORE_WR_RETRY) the batch stays in st->batch and is retried with
 *    exponential backoff while the ring keeps accepting records until it is
 *    full. Between batches it runs one retention step.
 *  - Reads and administration run on the caller's thread, straight into
 *    the engine, which serializes them itself.
 *  - Counters live in st->stats under st->lock.
 *  - store_close() sets st->stop; the writer drains the ring (giving up on
 *    a still-failing batch after STOP_GIVE_UP_MS), exits and is joined;
 *    then the engine is closed on the closing thread. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "idtable.h"
#include "log.h"
#include "ring.h"
#include "store_backend.h"
#include "vclock.h"
#include "vthread.h"

#define TAG STORE_TAG

#define DEFAULT_QUEUE_CAPACITY 65536
#define DEFAULT_BATCH_MAX 2048
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STOP_GIVE_UP_MS 10000       /* at close, retry a failing batch this long, then drop it */
#define PRUNE_INTERVAL_MS 2000      /* retention step period when caught up */
#define PRUNE_CATCHUP_MS 50         /* ... and when the last step found a full chunk */
#define PRUNE_CHUNK 5000            /* rows removed per retention step */
/* Group commit: a short queue waits up to GROUP_COMMIT_MS for more records,
 * or until GROUP_COMMIT_N are waiting, whichever comes first. At 1,000
 * readings/s that is ~5 transactions/s instead of ~80 (docs/BENCHMARKS.md,
 * "Issue 13 — history load and the store writer"). Nothing waits on it:
 * PUBACK does not depend on the store (a kill -9 loses the window and the
 * completeness tracker asks for it again, as for any uncommitted batch),
 * and store_sync cuts the window short. */
#define GROUP_COMMIT_MS 200
#define GROUP_COMMIT_N 512
#define STORE_QUEUE_KEEP 8192       /* queue slots (~2.7 MB) kept resident after a burst */
/* Devices whose last queued record is remembered (store_sync_device). Past
 * that the table starts over (see store__note_device): ~80 B a device. */
#define STORE_PENDING_DEVICES_MAX 16384
/* How long a read of the devices rows waits for the writer to bring them
 * up to date (store__flush_latest); past it, it reads what is stored. */
#define STORE_FLUSH_WAIT_MS 2000

/* A device's last record queued: its serial, the value stats.queued took
 * when it was accepted. The ring is FIFO and `written` counts finished
 * records from its front, so that record (and every earlier one of the
 * device) is finished once written >= serial. */
typedef struct store__last_queued {
    char id[TELEMETRY_ID_MAX + 1];
    uint64_t serial;
} store__last_queued;

static const void *store__key_of_last_queued(const void *e) { return ((const store__last_queued *)e)->id; }

static const idtable_type store__last_queued_type = {
    .entry_size = sizeof(store__last_queued),
    .key_of = store__key_of_last_queued,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};

struct store {
    const store_backend *be;
    void *impl;               /* the engine's, from open to close */

    /* Guarded by lock. */
    vmutex lock;
    pthread_cond_t wake;      /* writer waits here for records, stop or a timer */
    ring queue;               /* store_rec; full: refuse, count, return (never block) */
    int stop;
    store_stats stats;
    uint64_t written;         /* records taken from the queue and finished (stored, refused or given up) */
    pthread_cond_t synced;    /* broadcast when `written` grows (store_sync) */
    unsigned sync_waiters;    /* store_sync calls waiting: commit now, no group-commit window */
    size_t batch_n;           /* records in batch (read by stats: they still wait) */
    idtable last_queued;      /* store__last_queued by device id; full: cleared, see below */
    uint64_t queued_floor;    /* every record up to this serial counts as any device's */
    /* One open request for the engine's flush_latest (store__flush_latest):
     * of flush_id, or of all devices when flush_all or when two readers
     * ask for different devices. flush_done reaches flush_asked when the
     * writer has run it (broadcast on synced). */
    int flush_open, flush_all;
    char flush_id[TELEMETRY_ID_MAX + 1];
    uint64_t flush_asked, flush_done;

    /* Writer thread only (bound while it runs). */
    thread_owner writer_owner;
    store_rec *batch;
    size_t batch_max;
    int64_t retention_ms;
    int prune_failing;

    pthread_t writer;
    int writer_started;
    int lock_init, wake_init, synced_init;
};

int store_path_is_pg(const char *path)
{
    return path && (!strncmp(path, "postgresql://", 13) || !strncmp(path, "postgres://", 11));
}

const char *store_rec_device(const store_rec *rec)
{
    switch (rec->kind) {
    case STORE_REC_READING: return rec->u.r.device_id;
    case STORE_REC_STATUS: return rec->u.s.device_id;
    case STORE_REC_LOST: return rec->u.l.device_id;
    case STORE_REC_ALARM: return rec->u.al.alarm.device_id;
    case STORE_REC_ALARM_SETTING: return rec->u.as.device_id;
    default: return "access control";
    }
}

int store_alarm_setting_cond(const char *name)
{
    alarm_condition c;
    if (name && !strcmp(name, "escalation"))
        return -1;
    return name && alarm_condition_from_name(name, &c) == 0 ? (int)c : -2;
}

static void store__apply_setting(alarm_settings *s, const store_alarm_setting_row *r)
{
    if (r->cond == -1)
        s->escalation_ms = r->cs.onset_ms;
    else if (r->cond >= 0 && r->cond < ALARM_COND_COUNT)
        s->cond[r->cond] = r->cs;
}

store_err store_alarm_settings_of(const store_alarm_setting_row *rows, size_t n, alarm_settings *out)
{
    alarm_settings_default(out);
    for (size_t i = 0; i < n; i++)
        store__apply_setting(out, &rows[i]);
    return n ? STORE_OK : STORE_ENOTFOUND;
}

void store_alarm_settings_each(const store_alarm_setting_row *rows, size_t n,
                               void (*cb)(void *ctx, const char *device_id, const alarm_settings *s),
                               void *ctx)
{
    for (size_t i = 0; i < n;) { /* one device's rows are adjacent */
        alarm_settings s;
        alarm_settings_default(&s);
        size_t j = i;
        for (; j < n && !strcmp(rows[j].device_id, rows[i].device_id); j++)
            store__apply_setting(&s, &rows[j]);
        cb(ctx, rows[i].device_id, &s);
        i = j;
    }
}

/* ---- writer thread ---------------------------------------------------- */

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

/* Records that end the group-commit window early: GROUP_COMMIT_N, or less
 * for a small batch or queue (a queue that fills up must not wait out the
 * window while refusing records). */
static size_t store__group_n(const store *st)
{
    size_t n = GROUP_COMMIT_N;
    size_t half_queue = ring_capacity(&st->queue) / 2;
    if (st->batch_max < n)
        n = st->batch_max;
    if (half_queue < n)
        n = half_queue ? half_queue : 1;
    return n;
}

/* Fills st->batch from the ring once records are waiting (lock held). */
static void store__take_batch(store *st, int64_t next_prune)
{
    VMUTEX_ASSERT_HELD(&st->lock);
    while (ring_empty(&st->queue) && !st->stop && !st->flush_open) {
        if (st->retention_ms <= 0)
            store__wait(st, -1);
        else if (vclock_mono_ms() >= next_prune)
            return;
        else
            store__wait(st, next_prune);
    }
    /* Group commit: a transaction costs far more than a row, so when only a
     * few records are waiting, let more arrive for a while. Storage lags by
     * GROUP_COMMIT_MS (plus one transaction) at most; the live path does not
     * wait for it. Enqueue wakes us when GROUP_COMMIT_N are waiting, and
     * store_sync / close at once. */
    if (!ring_empty(&st->queue)) {
        int64_t deadline = vclock_mono_ms() + GROUP_COMMIT_MS;
        while (ring_count(&st->queue) < store__group_n(st) && !st->stop && !st->sync_waiters &&
               !st->flush_open && vclock_mono_ms() < deadline)
            store__wait(st, deadline);
    }
    size_t n = ring_count(&st->queue);
    if (n > st->batch_max)
        n = st->batch_max;
    for (size_t i = 0; i < n; i++)
        (void)ring_pop_copy(&st->queue, &st->batch[i]); /* i < count: cannot fail */
    st->batch_n = n;
    /* A burst (a reconnecting fleet, a slow disk) may have walked the queue
     * far; once drained, that memory goes back. A ring that keeps up stays
     * within its first slots (ring.h) and is never trimmed. */
    (void)ring_trim(&st->queue, STORE_QUEUE_KEEP);
}

/* Runs the open flush_latest request (lock held; released around the
 * engine call), after the batch just written: a read that asked sees it. */
static void store__run_flush(store *st, char *err, size_t errlen)
{
    VMUTEX_ASSERT_HELD(&st->lock);
    char id[TELEMETRY_ID_MAX + 1];
    int all = st->flush_all;
    memcpy(id, st->flush_id, sizeof id);
    uint64_t ticket = st->flush_asked;
    st->flush_open = 0;
    vmutex_unlock(&st->lock);
    err[0] = '\0';
    if (st->be->flush_latest(st->impl, all ? NULL : id, err, errlen) != STORE_WR_OK)
        LOG_D(TAG, "devices' latest readings not brought up to date for a read: %s", err);
    vmutex_lock(&st->lock);
    st->flush_done = ticket;
    pthread_cond_broadcast(&st->synced);
}

static void *store__writer_main(void *arg)
{
    store *st = arg;
    vthread_name("vigil-store");
    int64_t backoff = 0;       /* > 0 while the current batch keeps failing */
    int64_t retry_at = 0;
    int64_t give_up_at = 0;    /* set once stop is seen with a failing batch */
    int64_t next_prune = vclock_mono_ms();
    uint64_t failures = 0;     /* in the current unwritable period */
    int stop_kicked = 0;
    char err[256];

    thread_owner_bind(&st->writer_owner);
    vmutex_lock(&st->lock);
    for (;;) {
        if (st->batch_n == 0) {
            store__take_batch(st, next_prune);
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
        size_t n = st->batch_n;
        vmutex_unlock(&st->lock);

        if (n > 0) {
            store_batch_result res = {0};
            err[0] = '\0';
            store_wr rc = st->be->write_batch(st->impl, st->batch, n, &res, err, sizeof err);
            vmutex_lock(&st->lock);
            if (rc == STORE_WR_OK) {
                st->stats.stored += res.stored;
                st->stats.duplicates += res.duplicates;
                st->stats.rejected += res.rejected;
                if (!st->stats.writable)
                    LOG_I(TAG, "database writable again after %" PRIu64 " failed attempts",
                          failures);
                st->stats.writable = 1;
                st->written += n;
                pthread_cond_broadcast(&st->synced);
                st->batch_n = 0;
                backoff = 0;
                failures = 0;
            } else {
                st->stats.write_errors++;
                failures++;
                if (st->stats.writable)
                    LOG_E(TAG, "write failed, database not writable; retrying with "
                               "backoff (records queue meanwhile): %s",
                          err);
                else
                    LOG_D(TAG, "retry failed: %s", err);
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

        vmutex_lock(&st->lock);
        if (st->flush_open)
            store__run_flush(st, err, sizeof err); /* unlocks and relocks */

        /* Retention between batches, only while writes work, and never
         * more than one step per batch so ingest keeps flowing. */
        int idle = st->batch_n == 0;
        vmutex_unlock(&st->lock);
        if (st->retention_ms > 0 && idle && !stopping && vclock_mono_ms() >= next_prune) {
            err[0] = '\0';
            int64_t now = vclock_wall_ms();
            int64_t pruned = st->be->prune(st->impl, now - st->retention_ms, now, PRUNE_CHUNK, err,
                                           sizeof err);
            if (pruned < 0 && !st->prune_failing)
                LOG_W(TAG, "retention pruning failed, will retry: %s", err);
            else if (pruned >= 0 && st->prune_failing)
                LOG_I(TAG, "retention pruning works again");
            st->prune_failing = pruned < 0;
            next_prune = vclock_mono_ms() +
                         (pruned >= PRUNE_CHUNK ? PRUNE_CATCHUP_MS : PRUNE_INTERVAL_MS);
            if (pruned > 0) {
                vmutex_lock(&st->lock);
                st->stats.pruned += (uint64_t)pruned;
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

/* ---- open / close ----------------------------------------------------- */

static void store__destroy(store *st)
{
    if (st->impl)
        st->be->close(st->impl);
    if (st->wake_init)
        pthread_cond_destroy(&st->wake);
    if (st->synced_init)
        pthread_cond_destroy(&st->synced);
    if (st->lock_init)
        vmutex_destroy(&st->lock);
    ring_free(&st->queue);
    idtable_free(&st->last_queued);
    free(st->batch);
    free(st);
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
#ifdef VIGIL_HAVE_PG
    st->be = store_path_is_pg(opt->path) ? &store_pg_backend : &store_sqlite_backend;
#else
    if (store_path_is_pg(opt->path)) {
        snprintf(err, errlen, "this vigild was built without the PostgreSQL engine");
        free(st);
        return STORE_EINVAL;
    }
    st->be = &store_sqlite_backend;
#endif
    size_t cap = opt->queue_capacity ? opt->queue_capacity : DEFAULT_QUEUE_CAPACITY;
    st->batch_max = opt->batch_max ? opt->batch_max : DEFAULT_BATCH_MAX;
    st->retention_ms = opt->retention_ms > 0 ? opt->retention_ms : 0;
    st->batch = calloc(st->batch_max, sizeof *st->batch);
    /* malloc maps a large ring lazily (mmap): untouched slots cost no RAM. */
    if (!st->batch || ring_init(&st->queue, cap, sizeof(store_rec)) != RING_OK ||
        idtable_init(&st->last_queued, &store__last_queued_type, 0, STORE_PENDING_DEVICES_MAX) !=
            IDTABLE_OK) {
        snprintf(err, errlen, "out of memory for a queue of %zu records", cap);
        store__destroy(st);
        return STORE_ENOMEM;
    }
    st->stats.queue_capacity = cap;
    st->stats.writable = 1;

    pthread_condattr_t ca;
    int rc = vmutex_init(&st->lock);
    st->lock_init = rc == 0;
    if (rc == 0 && (rc = pthread_condattr_init(&ca)) == 0) {
        /* Monotonic: backoff and retention timers ignore wall-clock jumps. */
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (rc == 0)
            rc = pthread_cond_init(&st->wake, &ca);
        st->wake_init = rc == 0;
        if (rc == 0)
            rc = pthread_cond_init(&st->synced, &ca);
        st->synced_init = rc == 0;
        pthread_condattr_destroy(&ca);
    }
    if (rc != 0) {
        snprintf(err, errlen, "pthread init: %s", strerror(rc));
        store__destroy(st);
        return STORE_ENOMEM;
    }

    store_err e = st->be->open(opt, st->batch_max, &st->impl, err, errlen);
    if (e != STORE_OK) {
        st->impl = NULL;
        store__destroy(st);
        return e;
    }

    rc = pthread_create(&st->writer, NULL, store__writer_main, st);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the writer thread: %s", strerror(rc));
        store__destroy(st);
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
        vmutex_lock(&st->lock);
        st->stop = 1;
        pthread_cond_signal(&st->wake);
        vmutex_unlock(&st->lock);
        int rc = pthread_join(st->writer, NULL);
        if (rc != 0)
            LOG_E(TAG, "joining the writer: %s", strerror(rc));
    }
    store__destroy(st);
}

const char *store_engine(const store *st)
{
    return st ? st->be->name : "";
}

/* ---- stats ------------------------------------------------------------ */

void store_get_stats(store *st, store_stats *out)
{
    if (!out)
        return;
    if (!st) {
        memset(out, 0, sizeof *out);
        return;
    }
    vmutex_lock(&st->lock);
    *out = st->stats;
    /* Records held by a failing batch are still waiting: count them. */
    out->queue_depth = ring_count(&st->queue) + st->batch_n;
    vmutex_unlock(&st->lock);
}

/* ---- queue ------------------------------------------------------------ */

/* The id is read from a fixed TELEMETRY_ID_MAX + 1 array (or a caller's
 * string): find its NUL within that bound first, then validate it. */
static int store__id_valid(const char *id)
{
    const char *end = memchr(id, '\0', TELEMETRY_ID_MAX + 1);
    return end && telemetry_id_valid(id, (size_t)(end - id));
}

/* Remembers that device id's latest record has serial `serial` (lock held).
 * When the table is full, or a put fails, it starts over: every record
 * queued so far then counts as every device's (queued_floor), so a
 * store_sync_device waits for more than it needs, never less. A fleet
 * larger than the table clears it once per STORE_PENDING_DEVICES_MAX new
 * devices: O(1) amortised. */
static void store__note_device(store *st, const char *id, uint64_t serial)
{
    VMUTEX_ASSERT_HELD(&st->lock);
    store__last_queued *e = idtable_find(&st->last_queued, id);
    if (e) {
        e->serial = serial;
        return;
    }
    store__last_queued n;
    memset(&n, 0, sizeof n);
    snprintf(n.id, sizeof n.id, "%s", id);
    n.serial = serial;
    if (idtable_put(&st->last_queued, &n, NULL) != IDTABLE_OK) {
        idtable_clear(&st->last_queued);
        st->queued_floor = serial;
    }
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
        size_t before = ring_count(&st->queue);
        const store_rec *last = NULL;
        for (size_t i = 0; i < n; i++) {
            store_rec *slot = ring_push(&st->queue);
            last = slot;
            slot->kind = kind;
            memcpy(&slot->u, (const unsigned char *)recs + i * size, size);
        }
        /* The writer sleeps on an empty ring, or in the group-commit window
         * until enough records wait: wake it on either edge only. */
        size_t group_n = store__group_n(st);
        if (n && (before == 0 || (before < group_n && before + n >= group_n)))
            pthread_cond_signal(&st->wake);
        st->stats.queued += n;
        /* Access-control records belong to no device (store_sync waits
         * for them); the others all name theirs the same way. */
        if (last && kind != STORE_REC_AUTH)
            store__note_device(st, store_rec_device(last), st->stats.queued);
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

/* Waits on `synced` until *counter >= target or the deadline (monotonic
 * ms) passes (lock held: the wait releases and retakes it). The writer
 * broadcasts `synced` whenever `written` or `flush_done` moves. */
static void store__await(store *st, const uint64_t *counter, uint64_t target, int64_t deadline)
{
    VMUTEX_ASSERT_HELD(&st->lock);
    while (*counter < target && vclock_mono_ms() < deadline) {
        struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (long)(deadline % 1000) * 1000000};
        (void)vmutex_cond_timedwait(&st->synced, &st->lock, &ts);
    }
}

/* Waits until written >= target or timeout_ms passes (lock held).
 * 1 if written reached target. */
static int store__sync_to(store *st, uint64_t target, int64_t timeout_ms)
{
    VMUTEX_ASSERT_HELD(&st->lock);
    if (st->written < target) {
        /* Someone waits: the writer commits what it holds without waiting
         * out its group-commit window. */
        st->sync_waiters++;
        pthread_cond_signal(&st->wake);
        store__await(st, &st->written, target, vclock_mono_ms() + timeout_ms);
        st->sync_waiters--;
    }
    return st->written >= target;
}

store_err store_sync(store *st, int64_t timeout_ms)
{
    if (!st)
        return STORE_EINVAL;
    vmutex_lock(&st->lock);
    int ok = store__sync_to(st, st->stats.queued, timeout_ms);
    vmutex_unlock(&st->lock);
    return ok ? STORE_OK : STORE_EIO;
}

store_err store_sync_device(store *st, const char *device_id, int64_t timeout_ms)
{
    if (!st || !device_id)
        return STORE_EINVAL;
    vmutex_lock(&st->lock);
    const store__last_queued *e = idtable_find(&st->last_queued, device_id);
    uint64_t target = st->queued_floor;
    if (e && e->serial > target)
        target = e->serial;
    int ok = store__sync_to(st, target, timeout_ms);
    vmutex_unlock(&st->lock);
    return ok ? STORE_OK : STORE_EIO;
}

/* ---- reads and administration: straight into the engine -------------- */

void store_series_free(store_series *s)
{
    if (!s)
        return;
    free(s->raw);
    free(s->raw_t);
    free(s->ds.b);
    memset(s, 0, sizeof *s);
}

#define STORE__FWD(call) return st ? st->be->call : STORE_EINVAL

/* Before a read of the devices rows: an engine that writes a device's
 * latest reading into its row later than the reading (flush_latest) has
 * the writer do it now, so the read sees every committed reading, as if
 * each batch had written its rows. Waits at most STORE_FLUSH_WAIT_MS; not
 * at all while the writer is in retry backoff (it would not write the rows
 * before its next retry, and they would fail like the batch): the read gets
 * what is stored. id NULL: all devices. */
static void store__flush_latest(store *st, const char *id)
{
    if (!st || !st->be->flush_latest || !st->writer_started)
        return;
    vmutex_lock(&st->lock);
    if (!st->stats.writable) {
        vmutex_unlock(&st->lock);
        return;
    }
    if (!st->flush_open) {
        st->flush_open = 1;
        st->flush_all = !id;
        snprintf(st->flush_id, sizeof st->flush_id, "%s", id ? id : "");
        st->flush_asked++;
        pthread_cond_signal(&st->wake);
    } else if (!id || strcmp(st->flush_id, id) != 0) {
        st->flush_all = 1; /* one request for both readers */
    }
    store__await(st, &st->flush_done, st->flush_asked, vclock_mono_ms() + STORE_FLUSH_WAIT_MS);
    vmutex_unlock(&st->lock);
}

store_err store_list_devices(store *st, store_device **out, size_t *n)
{
    store__flush_latest(st, NULL);
    STORE__FWD(list_devices(st->impl, out, n));
}
store_err store_get_device(store *st, const char *id, store_device *out)
{
    store__flush_latest(st, id);
    STORE__FWD(get_device(st->impl, id, out));
}
store_err store_query_readings(store *st, const char *id, int64_t from_ms, int64_t to_ms,
                               size_t max_points, store_series *out)
{
    STORE__FWD(query_readings(st->impl, id, from_ms, to_ms, max_points, out));
}
store_err store_load_completeness(store *st, const store_completeness_cb *cb)
{
    store__flush_latest(st, NULL); /* it reads each device's current boot from its row */
    STORE__FWD(load_completeness(st->impl, cb));
}
store_err store_load_open_alarms(store *st, alarm_rec **out, size_t *n)
{
    STORE__FWD(load_open_alarms(st->impl, out, n));
}
store_err store_query_alarms(store *st, const char *device_id, int64_t from_ms, int64_t to_ms,
                             size_t limit, alarm_rec **out, size_t *n)
{
    STORE__FWD(query_alarms(st->impl, device_id, from_ms, to_ms, limit, out, n));
}
store_err store_get_alarm_settings(store *st, const char *device_id, alarm_settings *out)
{
    STORE__FWD(get_alarm_settings(st->impl, device_id, out));
}
store_err store_load_alarm_settings(store *st,
                                    void (*cb)(void *ctx, const char *device_id, const alarm_settings *s),
                                    void *ctx)
{
    STORE__FWD(load_alarm_settings(st->impl, cb, ctx));
}
store_err store_get_user(store *st, const char *name, store_user *out)
{
    STORE__FWD(get_user(st->impl, name, out));
}
store_err store_list_users(store *st, store_user **out, size_t *n)
{
    STORE__FWD(list_users(st->impl, out, n));
}
store_err store_list_tokens(store *st, store_token **out, size_t *n)
{
    STORE__FWD(list_tokens(st->impl, out, n));
}
store_err store_list_sessions(store *st, int64_t now_ms, store_session **out, size_t *n)
{
    STORE__FWD(list_sessions(st->impl, now_ms, out, n));
}
store_err store_query_audit(store *st, int64_t from_ms, int64_t to_ms, const char *user,
                            size_t limit, store_audit **out, size_t *n)
{
    STORE__FWD(query_audit(st->impl, from_ms, to_ms, user, limit, out, n));
}
store_err store_admin_user_add(store *st, const store_user *u)
{
    STORE__FWD(admin_user_add(st->impl, u));
}
store_err store_admin_user_update(store *st, const char *name, const char *role, const char *pwhash)
{
    STORE__FWD(admin_user_update(st->impl, name, role, pwhash));
}
store_err store_admin_user_del(store *st, const char *name)
{
    STORE__FWD(admin_user_del(st->impl, name));
}
store_err store_admin_token_add(store *st, const store_token *t)
{
    STORE__FWD(admin_token_add(st->impl, t));
}
store_err store_admin_token_del(store *st, const char *id)
{
    STORE__FWD(admin_token_del(st->impl, id));
}
store_err store_admin_audit(store *st, const store_audit *a)
{
    STORE__FWD(admin_audit(st->impl, a));
}
