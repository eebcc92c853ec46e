/* store_sqlite_writer — the write side of the SQLite engine: one batch or
 * one retention step per transaction (store_backend.h write_batch, prune).
 * The queue, group commit and retry live in store.c. Writer thread only;
 * see store_sqlite_int.h for threads and ownership. */
#include "store_sqlite_int.h"
#include "vclock.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define TAG STORE_TAG


/* ---- small helpers ---------------------------------------------------- */

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

static uint32_t store__flags(const telemetry_reading *r)
{
    return (r->present & STORE_FLAG_PRESENT_MASK) | (r->hr_valid ? STORE_FLAG_HR_VALID : 0) |
           (r->spo2_valid ? STORE_FLAG_SPO2_VALID : 0) |
           (r->temp_valid ? STORE_FLAG_TEMP_VALID : 0);
}

/* Keeps the first failing bind code of a run of binds in rc. */
#define B(x)                                                                   \
    do {                                                                       \
        int b_ = (x);                                                          \
        if (b_ != SQLITE_OK && rc == SQLITE_OK)                                \
            rc = b_;                                                           \
    } while (0)

/* Binds ?2..?16 in STORE_READING_COLS order (?1 is the device key): the
 * devices row's copy of the latest reading. */
static int store__bind_reading(sqlite3_stmt *s, const telemetry_reading *r)
{
    uint32_t p = r->present;
    uint32_t flags = store__flags(r);
    int rc = SQLITE_OK;
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
    return rc;
}

/* A vital as stream_readings holds it (migration 5): value * scale as
 * an INTEGER when that divides back to exactly v (what the reader
 * computes), else v itself. -0.0 stays REAL: 0 would read back as +0. */
static int store__bind_vital(sqlite3_stmt *s, int i, int present, double v, double scale)
{
    if (!present)
        return sqlite3_bind_null(s, i);
    if (fabs(v) < 1e12 && !(v == 0 && signbit(v))) {
        double k = round(v * scale);
        if ((double)(int64_t)k / scale == v)
            return sqlite3_bind_int64(s, i, (int64_t)k);
    }
    return sqlite3_bind_double(s, i, v);
}

/* Binds ?2..?12 of w_insert in STORE_READINGS_COLS order (?1 is the
 * stream; k and meta come from the caller). A field whose present bit is
 * unset is bound NULL: that is how the bit is stored (STORE_DERIVED_FLAGS). */
static int store__bind_row(sqlite3_stmt *s, const telemetry_reading *r, int64_t k, int64_t meta)
{
    uint32_t p = r->present;
    int64_t t = store__reading_t(r);
    int rc = SQLITE_OK;
    B(sqlite3_bind_int64(s, 2, k));
    B(sqlite3_bind_int64(s, 3, t));
    B(sqlite3_bind_int64(s, 4, r->received_ms - t));
    B((p & TELEMETRY_HAS_UPTIME) ? sqlite3_bind_int64(s, 5, r->uptime_ms) : sqlite3_bind_null(s, 5));
    B(store__bind_vital(s, 6, p & TELEMETRY_HAS_OBJECT_TEMP, r->object_temp, STORE_SCALE_TEMP));
    B(store__bind_vital(s, 7, p & TELEMETRY_HAS_AMBIENT_TEMP, r->ambient_temp, STORE_SCALE_TEMP));
    B(store__bind_vital(s, 8, p & TELEMETRY_HAS_HEART_RATE, r->heart_rate, STORE_SCALE_TENTHS));
    B(store__bind_vital(s, 9, p & TELEMETRY_HAS_SPO2, r->spo2, STORE_SCALE_TENTHS));
    B(meta ? sqlite3_bind_int64(s, 10, meta) : sqlite3_bind_null(s, 10));
    B(store__bind_vital(s, 11, p & TELEMETRY_HAS_BATTERY, r->battery, STORE_SCALE_TENTHS));
    B((p & TELEMETRY_HAS_RSSI) ? sqlite3_bind_int64(s, 12, r->rssi) : sqlite3_bind_null(s, 12));
    return rc;
}
#undef B

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
static const void *store__key_of_pending(const void *e)
{
    return ((const store_pending *)e)->r.device_id;
}
static const idtable_type store__pending_type = {
    .entry_size = sizeof(store_pending),
    .key_of = store__key_of_pending,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};
static const void *store__key_of_meta(const void *e) { return ((const store_meta *)e)->key; }
static const void *store__key_of_span(const void *e) { return &((const store_span *)e)->key; }
static const idtable_type store__metas_type = {
    .entry_size = sizeof(store_meta),
    .key_of = store__key_of_meta,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};
static const idtable_type store__spans_type = {
    .entry_size = sizeof(store_span),
    .key_of = store__key_of_span,
    .hash = idtable_hash_i64,
    .equal = idtable_equal_i64,
};

/* Runs a one-row, one-column query; *out gets the value (0 when no row or
 * NULL). Returns SQLITE_DONE on success. */
static int store__step_int(sqlite3_stmt *s, int64_t *out)
{
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_DONE : rc;
}

/* Appends tag and text (at most max bytes of it) and a 0x1f, or "-\x1f"
 * when text is NULL; returns the end. */
static char *store__meta_part(char *o, char tag, const char *text, size_t max)
{
    if (text) {
        size_t n = strnlen(text, max);
        *o++ = tag;
        memcpy(o, text, n);
        o += n;
    } else {
        *o++ = '-';
    }
    *o++ = '\x1f';
    return o;
}

/* st->metas' key (store_meta.key): "s<sensor_type>\x1f" or "-\x1f", then
 * "f<fw>\x1f" or "-\x1f", then flags in hex. Built by hand: snprintf cost
 * ~1,600 instructions per reading, a tenth of the writer's. */
static void store__meta_key(char key[static TELEMETRY_SENSOR_TYPE_MAX + TELEMETRY_FW_MAX + 16],
                            const char *sensor_type, const char *fw, uint32_t flags)
{
    char *o = store__meta_part(key, 's', sensor_type, TELEMETRY_SENSOR_TYPE_MAX);
    o = store__meta_part(o, 'f', fw, TELEMETRY_FW_MAX);
    int shift = 28;
    while (shift > 0 && !(flags >> shift))
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        *o++ = "0123456789abcdef"[(flags >> shift) & 0xf];
    *o = '\0';
}

/* The reading_meta id of the reading's (sensor_type, fw, flags not held
 * by columns), creating the row on first sight; 0 when it has none. */
static int store__meta_id(store_sqlite *st, const telemetry_reading *r, int64_t *id)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    int has_st = (r->present & TELEMETRY_HAS_SENSOR_TYPE) != 0;
    int has_fw = (r->present & TELEMETRY_HAS_FW) != 0;
    uint32_t flags = store__flags(r) & ~(uint32_t)STORE_DERIVED_FLAGS;
    *id = 0;
    if (!has_st && !has_fw && !flags)
        return SQLITE_DONE;
    store_meta e = {.id = 0};
    store__meta_key(e.key, has_st ? r->sensor_type : NULL, has_fw ? r->fw : NULL, flags);
    const store_meta *m = idtable_find(&st->metas, e.key);
    if (m) {
        *id = m->id;
        return SQLITE_DONE;
    }
    sqlite3_stmt *sel[] = {st->w_meta_get, st->w_meta_put};
    int rc = SQLITE_OK;
    for (int i = 0; i < 2 && *id == 0; i++) {
        sqlite3_stmt *s = sel[i];
        rc = has_st ? sqlite3_bind_text(s, 1, r->sensor_type, -1, SQLITE_STATIC)
                    : sqlite3_bind_null(s, 1);
        if (rc == SQLITE_OK)
            rc = has_fw ? sqlite3_bind_text(s, 2, r->fw, -1, SQLITE_STATIC) : sqlite3_bind_null(s, 2);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(s, 3, flags);
        if (rc != SQLITE_OK)
            return rc;
        rc = store__step_int(s, id);
        if (rc != SQLITE_DONE)
            return rc;
    }
    if (*id == 0)
        return SQLITE_INTERNAL; /* RETURNING gave no id: cannot happen */
    e.id = *id;
    void *slot;
    (void)idtable_put(&st->metas, &e, &slot); /* not cached: looked up again next time */
    return SQLITE_DONE;
}

static int64_t store__floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The stream of (device key, boot): the cached one when the device's
 * latest reading had that boot, else its reading_streams row, created on
 * first sight. */
static int store__stream_id(store_sqlite *st, int64_t key, int64_t boot, int64_t *stream)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    const store_span *c = idtable_find(&st->spans, &key);
    if (c && c->boot == boot) {
        *stream = c->stream;
        return SQLITE_DONE;
    }
    *stream = 0;
    sqlite3_stmt *sel[] = {st->w_stream_get, st->w_stream_put};
    for (int i = 0; i < 2 && *stream == 0; i++) {
        int rc = sqlite3_bind_int64(sel[i], 1, key);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(sel[i], 2, boot);
        rc = rc == SQLITE_OK ? store__step_int(sel[i], stream) : rc;
        if (rc != SQLITE_DONE)
            return rc;
    }
    return *stream ? SQLITE_DONE : SQLITE_INTERNAL; /* RETURNING gave no id: cannot happen */
}

/* Makes reading_spans cover a stored reading at (k, t) of stream, (key,
 * boot): nothing when the device's cached span already does, else one
 * upsert that widens the span by whole STORE_SPAN_T_MS steps. */
static int store__span_note(store_sqlite *st, int64_t key, int64_t boot, int64_t stream, int64_t k,
                            int64_t t)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    int64_t blk = store__floor_div(k, (int64_t)1 << STORE_SPAN_SHIFT);
    store_span *c = idtable_find(&st->spans, &key);
    if (c && c->boot == boot && c->blk == blk && t >= c->t_lo && t <= c->t_hi)
        return SQLITE_DONE;
    int64_t lo = store__floor_div(t, STORE_SPAN_T_MS) * STORE_SPAN_T_MS;
    int64_t hi = lo + (STORE_SPAN_T_MS - 1);
    if (c && c->boot == boot && c->blk == blk) {
        /* The row holds at least the cached bounds: widen them. */
        lo = lo < c->t_lo ? lo : c->t_lo;
        hi = hi > c->t_hi ? hi : c->t_hi;
    }
    sqlite3_stmt *s = st->w_span;
    int rc = SQLITE_OK;
    int64_t v[4] = {stream, blk, lo, hi};
    for (int i = 0; i < 4 && rc == SQLITE_OK; i++)
        rc = sqlite3_bind_int64(s, i + 1, v[i]);
    if (rc != SQLITE_OK)
        return rc;
    rc = store_sqlite__exec_stmt(s);
    if (rc != SQLITE_DONE)
        return rc;
    store_span e = {.key = key, .boot = boot, .stream = stream, .blk = blk, .t_lo = lo, .t_hi = hi};
    void *slot;
    if (idtable_put(&st->spans, &e, &slot) == IDTABLE_EEXIST)
        *(store_span *)slot = e;
    /* Any other failure: not cached, the next reading upserts again. */
    return SQLITE_DONE;
}

/* The key of a reading: its seq, or for one without seq the next free
 * negative k of its stream (one index seek). */
static int store__reading_k(store_sqlite *st, int64_t stream, const telemetry_reading *r, int64_t *k)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    if (r->present & TELEMETRY_HAS_SEQ) {
        *k = r->seq;
        return SQLITE_DONE;
    }
    sqlite3_stmt *s = st->w_seqless;
    int rc = sqlite3_bind_int64(s, 1, stream);
    return rc == SQLITE_OK ? store__step_int(s, k) : rc;
}

/* The device's key, creating its row on first sight. */
static int store__device_key(store_sqlite *st, const telemetry_reading *r, int64_t *key)
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
static int store__last_note(store_sqlite *st, int64_t key, size_t idx)
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
static int store__write_reading(store_sqlite *st, size_t idx, int *stored)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    const telemetry_reading *r = &st->batch[idx].u.r;
    int64_t key;
    int rc = store__device_key(st, r, &key);
    if (rc != SQLITE_DONE)
        return rc;
    int64_t boot = (r->present & TELEMETRY_HAS_BOOT) ? r->boot : 0;
    int64_t stream = 0, k = 0, meta = 0;
    rc = store__stream_id(st, key, boot, &stream);
    if (rc == SQLITE_DONE)
        rc = store__reading_k(st, stream, r, &k);
    if (rc == SQLITE_DONE)
        rc = store__meta_id(st, r, &meta);
    if (rc != SQLITE_DONE)
        return rc;
    sqlite3_stmt *s = st->w_insert;
    rc = sqlite3_bind_int64(s, 1, stream);
    if (rc == SQLITE_OK)
        rc = store__bind_row(s, r, k, meta);
    if (rc != SQLITE_OK)
        return rc;
    rc = store_sqlite__exec_stmt(s);
    if (rc != SQLITE_DONE)
        return rc;
    *stored = sqlite3_changes(st->wdb) > 0;
    if (!*stored) /* a redelivery leaves the device's latest values alone */
        return SQLITE_DONE;
    rc = store__span_note(st, key, boot, stream, k, store__reading_t(r));
    return rc == SQLITE_DONE ? store__last_note(st, key, idx) : rc;
}

/* Copies reading r into devices row key (w_last: only if r is not older
 * than what the row holds). */
static int store__write_row(store_sqlite *st, int64_t key, const telemetry_reading *r)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    sqlite3_stmt *s = st->w_last;
    int rc = sqlite3_bind_int64(s, 1, key);
    if (rc == SQLITE_OK)
        rc = store__bind_reading(s, r);
    return rc == SQLITE_OK ? store_sqlite__exec_stmt(s) : rc;
}

/* A status record about to change the device's row (fw, boot, last_seen):
 * its pending reading is written first, as its own batch's UPDATE was
 * before the status, so the row ends as it did when every batch wrote it.
 * The entry leaves st->pending when this transaction commits. */
static int store__pending_before_status(store_sqlite *st, const char *device_id)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    store_pending *p = idtable_find(&st->pending, device_id);
    if (!p || p->gen == st->txn_gen || st->n_pending_flushed >= st->batch_max)
        return SQLITE_DONE; /* none, already written, or (cannot happen) no room */
    int rc = store__write_row(st, p->key, &p->r);
    if (rc != SQLITE_DONE)
        return rc;
    p->gen = st->txn_gen;
    memcpy(st->pending_flushed[st->n_pending_flushed++], p->r.device_id, TELEMETRY_ID_MAX + 1);
    return SQLITE_DONE;
}

/* 1 if writing r alone leaves the row as writing p, then r, would: r is not
 * older (checked by the caller) and carries fw and boot whenever p does
 * (w_last keeps the row's fw and boot when a reading has none). */
static int store__supersedes(const telemetry_reading *r, const telemetry_reading *p)
{
    uint32_t need = p->present & (TELEMETRY_HAS_FW | TELEMETRY_HAS_BOOT);
    return (r->present & need) == need;
}

/* Decides, inside the batch's transaction, what each device's row gets:
 *  - flush_all (every STORE_DEVICE_ROW_FLUSH_MS): every pending row, then
 *    the batch's latest readings, are written now;
 *  - otherwise the batch's latest reading of a device becomes its pending
 *    entry at commit (l->stage); the entry it replaces is written now only
 *    when the new one does not supersede it, and a device past
 *    STORE_PENDING_MAX is written now, as before. */
static int store__settle_lasts(store_sqlite *st, int flush_all)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    int rc = SQLITE_DONE;
    size_t it = 0;
    store_pending *p;
    /* Older readings first, as their own batches would have written them. */
    while (flush_all && rc == SQLITE_DONE && (p = idtable_next(&st->pending, &it)))
        if (p->gen != st->txn_gen)
            rc = store__write_row(st, p->key, &p->r);
    size_t staged = 0;
    store_last *l;
    it = 0;
    while (rc == SQLITE_DONE && (l = idtable_next(&st->lasts, &it))) {
        const telemetry_reading *r = &st->batch[l->idx].u.r;
        l->stage = 0;
        if (flush_all) {
            rc = store__write_row(st, l->key, r);
            continue;
        }
        p = idtable_find(&st->pending, r->device_id);
        if (p && p->gen == st->txn_gen)
            p = NULL; /* a status wrote it in this transaction: it goes at commit */
        if (!p) {
            if (idtable_count(&st->pending) + staged < STORE_PENDING_MAX) {
                l->stage = 1;
                staged++;
            } else {
                rc = store__write_row(st, l->key, r); /* full: this row now */
            }
        } else if (r->received_ms >= p->r.received_ms) {
            /* (An older r would not change a row that has p: skipped.) */
            if (!store__supersedes(r, &p->r))
                rc = store__write_row(st, p->key, &p->r);
            l->stage = 1;
        }
    }
    return rc;
}

/* After the batch's commit: st->pending takes what store__settle_lasts
 * decided. Puts cannot fail: the table is allocated whole at open and
 * settle kept it under STORE_PENDING_MAX. */
static void store__commit_lasts(store_sqlite *st, int flush_all)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    if (flush_all) {
        idtable_clear(&st->pending);
    } else {
        for (size_t i = 0; i < st->n_pending_flushed; i++)
            (void)idtable_remove(&st->pending, st->pending_flushed[i], NULL);
        size_t it = 0;
        const store_last *l;
        while ((l = idtable_next(&st->lasts, &it))) {
            if (!l->stage)
                continue;
            store_pending e = {.r = st->batch[l->idx].u.r, .key = l->key, .gen = 0};
            void *slot;
            if (idtable_put(&st->pending, &e, &slot) == IDTABLE_EEXIST)
                *(store_pending *)slot = e;
        }
    }
    st->n_pending_flushed = 0;
}

static int store__write_status(store_sqlite *st, const telemetry_status *x)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    int rc = store__pending_before_status(st, x->device_id);
    if (rc != SQLITE_DONE)
        return rc;
    sqlite3_stmt *s = st->w_status;
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

static int store__write_lost(store_sqlite *st, const store_lost_rec *l)
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
static void store__rollback(store_sqlite *st)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    idtable_clear(&st->keys); /* device rows created in this transaction are gone */
    idtable_clear(&st->lasts);
    st->n_pending_flushed = 0; /* st->pending itself changes only after a commit */
    idtable_clear(&st->metas); /* so are its reading_meta rows and span updates */
    idtable_clear(&st->spans);
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
static int store__write_batch(store_sqlite *st, size_t batch_n, uint64_t *n_stored, uint64_t *n_dup,
                              uint64_t *n_rejected)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    uint64_t stored = 0, dup = 0, rejected = 0;
    int rc = store_sqlite__exec_stmt(st->w_begin);
    if (rc != SQLITE_DONE) {
        snprintf(st->werr, sizeof st->werr, "%s", sqlite3_errmsg(st->wdb));
        return rc;
    }
    st->txn_gen++;
    st->n_pending_flushed = 0;
    for (size_t i = 0; i < batch_n; i++) {
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
              store_rec_device(rec), sqlite3_errmsg(st->wdb));
    }
    int64_t now = vclock_mono_ms();
    int flush_all = now >= st->next_row_flush_ms;
    rc = store__settle_lasts(st, flush_all);
    if (rc != SQLITE_DONE) {
        store__rollback(st);
        return rc;
    }
    rc = store_sqlite__exec_stmt(st->w_commit);
    if (rc != SQLITE_DONE) {
        store__rollback(st);
        return rc;
    }
    store__commit_lasts(st, flush_all);
    if (flush_all)
        st->next_row_flush_ms = now + STORE_DEVICE_ROW_FLUSH_MS;
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
static int64_t store__prune_pass(store_sqlite *st, int64_t cutoff, int64_t now_ms, int64_t budget)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    int64_t deleted = 0;
    idtable_clear(&st->spans); /* reading_spans rows may go below */
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
        if (budget > 0) {
            /* Every reading of the device before cutoff is gone, so are
             * the spans that held only such readings. */
            sqlite3_stmt *sp = st->w_prune_spans;
            b1 = sqlite3_bind_int64(sp, 1, key);
            b2 = sqlite3_bind_int64(sp, 2, cutoff);
            rc = b1 != SQLITE_OK ? b1 : b2 != SQLITE_OK ? b2 : store_sqlite__exec_stmt(sp);
            if (rc != SQLITE_DONE)
                break;
        }
        if (budget <= 0) {
            next_cursor = key - 1; /* this device may have more */
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(d);
    if (rc == SQLITE_DONE)
        rc = store_sqlite__prune_auth(st, cutoff, now_ms);
    if (rc != SQLITE_DONE)
        goto fail;
    rc = store_sqlite__exec_stmt(st->w_commit);
    if (rc != SQLITE_DONE)
        goto fail;
    st->prune_cursor = next_cursor;
    return deleted;
fail:
    store__rollback(st);
    return -1; /* st->werr says why; store.c logs it */
}

/* ---- set-up ----------------------------------------------------------- */

int store_sqlite__writer_init(store_sqlite *st, char *err, size_t errlen)
{
    if (idtable_init(&st->keys, &store__keys_type, 1024, 0) != IDTABLE_OK ||
        idtable_init(&st->lasts, &store__lasts_type, 2 * st->batch_max, 0) != IDTABLE_OK ||
        idtable_init(&st->metas, &store__metas_type, 16, 0) != IDTABLE_OK ||
        idtable_init(&st->spans, &store__spans_type, 1024, 0) != IDTABLE_OK ||
        idtable_init(&st->pending, &store__pending_type, STORE_PENDING_MAX, STORE_PENDING_MAX) !=
            IDTABLE_OK ||
        !(st->pending_flushed = calloc(st->batch_max ? st->batch_max : 1,
                                       sizeof *st->pending_flushed))) {
        snprintf(err, errlen, "out of memory for the writer's tables");
        return -1;
    }
    st->next_row_flush_ms = vclock_mono_ms() + STORE_DEVICE_ROW_FLUSH_MS;
    return 0;
}

/* w_last's copy of a reading (store__bind_reading's ?1..?16), applied
 * only when it is not older than the row's. */
#define STORE__SET_LAST                                                        \
    "last_seen = max(last_seen, ?3), last_t = ?2, last_received = ?3, last_ts = ?4, "   \
    "last_uptime = ?5, last_boot = ?6, last_seq = ?7, last_object_temp = ?8, "          \
    "last_ambient_temp = ?9, last_heart_rate = ?10, last_spo2 = ?11, last_battery = ?12, " \
    "last_rssi = ?13, last_flags = ?14, last_sensor_type = ?15, last_fw = ?16"
#define STORE__WHERE_NEWER "WHERE key = ?1 AND (last_received IS NULL OR last_received <= ?3)"

int store_sqlite__writer_prepare(store_sqlite *st, char *err, size_t errlen)
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
        /* OR IGNORE: a (stream, k) already stored is a redelivery. */
        {&st->w_insert, "INSERT OR IGNORE INTO stream_readings(stream, " STORE_READINGS_COLS ") "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"},
        {&st->w_seqless, "SELECT coalesce(min(k), 0) - 1 FROM stream_readings "
                         "WHERE stream = ?1 AND k < 0"},
        {&st->w_span, "INSERT INTO reading_spans(stream, blk, t_lo, t_hi) "
                      "VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET "
                      "t_lo = min(t_lo, excluded.t_lo), t_hi = max(t_hi, excluded.t_hi)"},
        {&st->w_meta_get,
         "SELECT id FROM reading_meta WHERE sensor_type IS ?1 AND fw IS ?2 AND flags = ?3"},
        {&st->w_meta_put,
         "INSERT INTO reading_meta(sensor_type, fw, flags) VALUES(?1, ?2, ?3) RETURNING id"},
        {&st->w_stream_get, "SELECT id FROM reading_streams WHERE device = ?1 AND boot = ?2"},
        {&st->w_stream_put, "INSERT INTO reading_streams(device, boot) VALUES(?1, ?2) RETURNING id"},
        /* Latest by receive time; fw and boot follow the latest reading. */
        {&st->w_last, "UPDATE devices SET " STORE__SET_LAST ", "
                      "fw = coalesce(?16, fw), boot = CASE WHEN (?14 & 128) != 0 THEN ?6 ELSE boot END "
                      STORE__WHERE_NEWER},
        /* Reconcile: the latest reading's copy only. fw and boot also come
         * with the device's status, written at once, and a database written
         * by other means (a migration's test) keeps its boot. */
        {&st->w_last_only, "UPDATE devices SET " STORE__SET_LAST " " STORE__WHERE_NEWER},
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
        /* The spans that start before the cutoff lead to the rows. A
         * stream's row stays (a few bytes per boot). */
        {&st->w_prune, "DELETE FROM stream_readings WHERE (stream, k) IN ("
                       "SELECT r.stream, r.k FROM reading_streams AS rs "
                       "CROSS JOIN reading_spans AS s ON s.stream = rs.id "
                       "CROSS JOIN stream_readings AS r ON " STORE_SPAN_JOIN("s", "r") " "
                       "WHERE rs.device = ?1 AND s.t_lo < ?2 AND r.t < ?2 LIMIT ?3)"},
        {&st->w_prune_spans, "DELETE FROM reading_spans WHERE stream IN "
                             "(SELECT id FROM reading_streams WHERE device = ?1) AND t_hi < ?2"},
        /* Reconcile at open: each stream's newest reading with seq (max k)
         * and without (min k < 0) that is newer than its device's row, in
         * receive order — w_last on each leaves the row with the latest.
         * Index-driven: one seek per stream and end (PRIMARY KEY (stream,
         * k)), no scan of the readings. */
        {&st->w_reconcile,
         "SELECT d.key, d.id, " STORE_ROW_COLS " FROM devices AS d "
         "CROSS JOIN reading_streams AS rs ON rs.device = d.key "
         "CROSS JOIN stream_readings AS r ON r.stream = rs.id AND r.k IN ("
         "(SELECT max(k) FROM stream_readings WHERE stream = rs.id), "
         "(SELECT min(k) FROM stream_readings WHERE stream = rs.id AND k < 0)) "
         "LEFT JOIN reading_meta AS m ON m.id = r.meta "
         "WHERE d.last_received IS NULL OR r.t + r.rdelta > d.last_received "
         "ORDER BY d.key, r.t + r.rdelta"},
        /* A device never stored has no key and nothing to be lost against. */
        {&st->w_lost, "INSERT INTO lost_ranges(device, boot, from_seq, to_seq, reason, marked_at) "
                      "SELECT key, ?2, ?3, ?4, ?5, ?6 FROM devices WHERE id = ?1"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++)
        if (store_sqlite__prepare(st->wdb, stmts[i].sql, stmts[i].s, err, errlen) != 0)
            return -1;
    return 0;
}

/* ---- the engine's write entry points (store_backend.h) ----------------- */

/* The writer thread's first call binds it as the owner of the write side. */
static void store__writer_enter(store_sqlite *st)
{
    if (!st->writer_bound) {
        thread_owner_bind(&st->writer_owner);
        st->writer_bound = 1;
    }
    THREAD_ASSERT_OWNER(&st->writer_owner);
}

store_wr store_sqlite__write_batch(void *impl, const store_rec *batch, size_t n,
                                   store_batch_result *res, char *err, size_t errlen)
{
    store_sqlite *st = impl;
    store__writer_enter(st);
    st->batch = batch;
    int rc = store__write_batch(st, n, &res->stored, &res->duplicates, &res->rejected);
    st->batch = NULL;
    if (rc == SQLITE_DONE)
        return STORE_WR_OK;
    snprintf(err, errlen, "%s (%d)", st->werr, rc);
    return STORE_WR_RETRY;
}

int64_t store_sqlite__prune(void *impl, int64_t cutoff_ms, int64_t now_ms, int64_t budget,
                            char *err, size_t errlen)
{
    store_sqlite *st = impl;
    store__writer_enter(st);
    int64_t n = store__prune_pass(st, cutoff_ms, now_ms, budget);
    if (n < 0)
        snprintf(err, errlen, "%s", st->werr);
    return n;
}

/* Writes the pending rows of device_id (NULL: all) in one transaction;
 * SQLITE_DONE when there were none. */
static int store__flush_pending(store_sqlite *st, const char *device_id)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    store_pending *one = device_id ? idtable_find(&st->pending, device_id) : NULL;
    if (device_id ? !one : !idtable_count(&st->pending))
        return SQLITE_DONE;
    int rc = store_sqlite__exec_stmt(st->w_begin);
    if (rc != SQLITE_DONE) {
        snprintf(st->werr, sizeof st->werr, "%s", sqlite3_errmsg(st->wdb));
        return rc;
    }
    st->txn_gen++;
    if (one) {
        rc = store__write_row(st, one->key, &one->r);
    } else {
        size_t it = 0;
        const store_pending *p;
        while (rc == SQLITE_DONE && (p = idtable_next(&st->pending, &it)))
            rc = store__write_row(st, p->key, &p->r);
    }
    if (rc == SQLITE_DONE)
        rc = store_sqlite__exec_stmt(st->w_commit);
    if (rc != SQLITE_DONE) {
        store__rollback(st);
        return rc;
    }
    if (device_id)
        (void)idtable_remove(&st->pending, device_id, NULL);
    else
        idtable_clear(&st->pending);
    return SQLITE_DONE;
}

store_wr store_sqlite__flush_latest(void *impl, const char *device_id, char *err, size_t errlen)
{
    store_sqlite *st = impl;
    store__writer_enter(st);
    int rc = store__flush_pending(st, device_id);
    if (rc == SQLITE_DONE)
        return STORE_WR_OK;
    snprintf(err, errlen, "%s (%d)", st->werr, rc);
    return STORE_WR_RETRY;
}

int store_sqlite__reconcile(store_sqlite *st, char *err, size_t errlen)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    int rc = store_sqlite__exec_stmt(st->w_begin);
    int64_t n = 0;
    sqlite3_stmt *s = st->w_reconcile;
    while (rc == SQLITE_DONE && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        char id[TELEMETRY_ID_MAX + 1];
        const unsigned char *t = sqlite3_column_text(s, 1);
        snprintf(id, sizeof id, "%s", t ? (const char *)t : "");
        telemetry_reading r;
        int64_t rt;
        store_sqlite__row_from_table(s, 2, id, &r, &rt);
        sqlite3_stmt *u = st->w_last_only;
        rc = sqlite3_bind_int64(u, 1, sqlite3_column_int64(s, 0));
        if (rc == SQLITE_OK)
            rc = store__bind_reading(u, &r);
        rc = rc == SQLITE_OK ? store_sqlite__exec_stmt(u) : rc;
        n++;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        rc = store_sqlite__exec_stmt(st->w_commit);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "reconciling the devices' latest readings: %s",
                 sqlite3_errmsg(st->wdb));
        if (!sqlite3_get_autocommit(st->wdb))
            (void)store_sqlite__exec_stmt(st->w_rollback); /* reported above */
        return -1;
    }
    if (n)
        LOG_I(TAG, "%" PRId64 " devices' latest readings restored from their stored readings "
                   "(the store was not closed cleanly)", n);
    return 0;
}
