/* store_sqlite_read — the read side of the SQLite store: the read-only
 * connection and every read (devices, readings, completeness). See
 * store_sqlite_int.h for threads and ownership. */
#include "store_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define TAG STORE_TAG

#define LAST_COLS                                                              \
    "last_t, last_received, last_ts, last_uptime, last_boot, last_seq, "       \
    "last_object_temp, last_ambient_temp, last_heart_rate, last_spo2, "        \
    "last_battery, last_rssi, last_flags, last_sensor_type, last_fw"
#define DEVICE_COLS                                                            \
    "id, first_seen, last_seen, online, status_at, fw, interval_ms, boot, " LAST_COLS

static void store__copy_text(char *dst, size_t dstlen, sqlite3_stmt *s, int col)
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

/* Reads a device's copy of its latest reading, laid out as
 * STORE_READING_COLS starting at column c. */
static void store__row_to_reading(sqlite3_stmt *s, int c, const char *id, telemetry_reading *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->device_id, sizeof r->device_id, "%s", id);
    uint32_t flags = (uint32_t)sqlite3_column_int64(s, c + 12);
    uint32_t p = flags & STORE_FLAG_PRESENT_MASK;
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
    r->hr_valid = (flags & STORE_FLAG_HR_VALID) != 0;
    r->spo2_valid = (flags & STORE_FLAG_SPO2_VALID) != 0;
    r->temp_valid = (flags & STORE_FLAG_TEMP_VALID) != 0;
    store__copy_text(r->sensor_type, sizeof r->sensor_type, s, c + 13);
    store__copy_text(r->fw, sizeof r->fw, s, c + 14);
    r->present = p;
}

/* A vital column of stream_readings (migration 5): an INTEGER is value *
 * scale. */
static double store__vital(sqlite3_stmt *s, int col, double scale)
{
    if (sqlite3_column_type(s, col) == SQLITE_INTEGER)
        return (double)sqlite3_column_int64(s, col) / scale;
    return sqlite3_column_double(s, col);
}

/* Rows r of device ?1 with t in ?2..?3: its streams rs, and of them the
 * spans s that overlap the range. */
#define SPANS_JOIN                                                             \
    "reading_streams AS rs CROSS JOIN reading_spans AS s ON s.stream = rs.id "   \
    "CROSS JOIN stream_readings AS r ON " STORE_SPAN_JOIN("s", "r") " "
#define IN_RANGE "WHERE rs.device = ?1 AND s.t_lo <= ?3 AND s.t_hi >= ?2 AND r.t BETWEEN ?2 AND ?3"
#define ROWS_IN_RANGE SPANS_JOIN IN_RANGE

/* The present bits a row holds as non-NULL columns (STORE_DERIVED_FLAGS),
 * by STORE_ROW_COLS index. */
static const struct {
    int col;
    uint32_t bit;
} store__derived[] = {
    {2, TELEMETRY_HAS_UPTIME},      {5, TELEMETRY_HAS_OBJECT_TEMP},
    {6, TELEMETRY_HAS_AMBIENT_TEMP}, {7, TELEMETRY_HAS_HEART_RATE},
    {8, TELEMETRY_HAS_SPO2},        {9, TELEMETRY_HAS_BATTERY},
    {10, TELEMETRY_HAS_RSSI},       {12, TELEMETRY_HAS_SENSOR_TYPE},
    {13, TELEMETRY_HAS_FW},
};

/* A row's flags (present bits | validity << 16): reading_meta's (NULL: 0)
 * and those its columns hold. */
static uint32_t store__row_flags(sqlite3_stmt *s, int c0)
{
    uint32_t flags = (uint32_t)sqlite3_column_int64(s, c0 + 11);
    for (size_t i = 0; i < sizeof store__derived / sizeof *store__derived; i++)
        if (sqlite3_column_type(s, c0 + store__derived[i].col) != SQLITE_NULL)
            flags |= store__derived[i].bit;
    if (sqlite3_column_int64(s, c0 + 4) >= 0) /* k: the seq, or < 0 without one */
        flags |= TELEMETRY_HAS_SEQ;
    return flags;
}

void store_sqlite__row_from_table(sqlite3_stmt *s, int c0, const char *id, telemetry_reading *r,
                                  int64_t *t_out)
{
    memset(r, 0, sizeof *r);
    snprintf(r->device_id, sizeof r->device_id, "%s", id);
    uint32_t flags = store__row_flags(s, c0);
    int64_t t = sqlite3_column_int64(s, c0 + 0);
    *t_out = t;
    r->received_ms = t + sqlite3_column_int64(s, c0 + 1);
    r->ts_ms = (flags & TELEMETRY_HAS_TS) ? t : 0; /* t is ts when the device sent one */
    r->uptime_ms = sqlite3_column_int64(s, c0 + 2);
    r->boot = sqlite3_column_int64(s, c0 + 3);
    int64_t k = sqlite3_column_int64(s, c0 + 4);
    r->seq = k >= 0 ? k : 0;
    r->object_temp = store__vital(s, c0 + 5, STORE_SCALE_TEMP);
    r->ambient_temp = store__vital(s, c0 + 6, STORE_SCALE_TEMP);
    r->heart_rate = store__vital(s, c0 + 7, STORE_SCALE_TENTHS);
    r->spo2 = store__vital(s, c0 + 8, STORE_SCALE_TENTHS);
    r->battery = store__vital(s, c0 + 9, STORE_SCALE_TENTHS);
    r->rssi = (int32_t)sqlite3_column_int64(s, c0 + 10);
    r->hr_valid = (flags & STORE_FLAG_HR_VALID) != 0;
    r->spo2_valid = (flags & STORE_FLAG_SPO2_VALID) != 0;
    r->temp_valid = (flags & STORE_FLAG_TEMP_VALID) != 0;
    store__copy_text(r->sensor_type, sizeof r->sensor_type, s, c0 + 12);
    store__copy_text(r->fw, sizeof r->fw, s, c0 + 13);
    r->present = flags & STORE_FLAG_PRESENT_MASK;
}

int store_sqlite__reader_open(store_sqlite *st, const char *path, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(path, &st->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s (read-only): %s", path,
                 st->rdb ? sqlite3_errmsg(st->rdb) : sqlite3_errstr(rc));
        return -1;
    }
    if (sqlite3_busy_timeout(st->rdb, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK) {
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
        {&st->r_count, "SELECT count(*) FROM " ROWS_IN_RANGE},
        /* Ties on t in arrival order: received, then boot and seq (a
         * reading without seq: -1, -2, ... in arrival order). */
        {&st->r_raw, "SELECT " STORE_ROW_COLS " FROM " SPANS_JOIN
                     "LEFT JOIN reading_meta AS m ON m.id = r.meta " IN_RANGE " "
                     "ORDER BY r.t, r.rdelta, rs.boot, abs(r.k)"},
        {&st->r_ds, "SELECT r.t, r.object_temp, r.ambient_temp, r.heart_rate, r.spo2 FROM "
                    ROWS_IN_RANGE},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++)
        if (store_sqlite__prepare(st->rdb, stmts[i].sql, stmts[i].s, err, errlen) != 0)
            return -1;
    return 0;
}

/* ---- reads ------------------------------------------------------------ */

static void store__row_to_device(sqlite3_stmt *s, store_device *d)
{
    memset(d, 0, sizeof *d);
    store__copy_text(d->id, sizeof d->id, s, 0);
    d->first_seen_ms = sqlite3_column_int64(s, 1);
    d->last_seen_ms = sqlite3_column_int64(s, 2);
    d->online = sqlite3_column_type(s, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 3) != 0;
    d->status_ms = sqlite3_column_int64(s, 4);
    store__copy_text(d->fw, sizeof d->fw, s, 5);
    d->interval_ms = sqlite3_column_int64(s, 6);
    d->boot = sqlite3_column_type(s, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 7);
    d->has_last = sqlite3_column_type(s, 9) != SQLITE_NULL; /* last_received */
    if (d->has_last)
        store__row_to_reading(s, 8, d->id, &d->last);
}

/* Logs a read failure (the one log line for it; callers get STORE_EIO).
 * rlock held: the message belongs to st->rdb. */
static store_err store__read_error(store_sqlite *st, const char *what)
{
    VMUTEX_ASSERT_HELD(&st->rlock);
    LOG_E(TAG, "%s: %s", what, sqlite3_errmsg(st->rdb));
    return STORE_EIO;
}

store_err store_sqlite_list_devices(void *impl, store_device **out, size_t *n)
{
    store_sqlite *st = impl;
    if (!st || !out || !n)
        return STORE_EINVAL;
    *out = NULL;
    *n = 0;
    store_device *v = NULL;
    size_t len = 0, cap = 0;
    store_err ret = STORE_OK;
    int rc;
    vmutex_lock(&st->rlock);
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
        store__row_to_device(st->r_list, &v[len++]);
    }
    if (ret == STORE_OK && rc != SQLITE_DONE)
        ret = store__read_error(st, "listing devices");
    sqlite3_reset(st->r_list);
    vmutex_unlock(&st->rlock);
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

store_err store_sqlite_get_device(void *impl, const char *id, store_device *out)
{
    store_sqlite *st = impl;
    if (!st || !id || !out)
        return STORE_EINVAL;
    store_err ret;
    vmutex_lock(&st->rlock);
    int rc = sqlite3_bind_text(st->r_get, 1, id, -1, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) {
        ret = store__read_error(st, "get device");
    } else {
        rc = sqlite3_step(st->r_get);
        if (rc == SQLITE_ROW) {
            store__row_to_device(st->r_get, out);
            ret = STORE_OK;
        } else if (rc == SQLITE_DONE) {
            ret = STORE_ENOTFOUND;
        } else {
            ret = store__read_error(st, "get device");
        }
    }
    sqlite3_reset(st->r_get);
    vmutex_unlock(&st->rlock);
    return ret;
}

/* Runs inside the read transaction, rlock held. */
static store_err store__query_locked(store_sqlite *st, const char *id, int64_t from_ms, int64_t to_ms,
                              size_t max_points, store_series *out)
{
    VMUTEX_ASSERT_HELD(&st->rlock);
    sqlite3_stmt *s = st->r_key;
    int rc = sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK)
        return store__read_error(st, "query readings");
    rc = sqlite3_step(s);
    int64_t key = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return STORE_ENOTFOUND;
    if (rc != SQLITE_ROW)
        return store__read_error(st, "query readings (device)");

    s = st->r_count;
    if (sqlite3_bind_int64(s, 1, key) != SQLITE_OK || sqlite3_bind_int64(s, 2, from_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, to_ms) != SQLITE_OK)
        return store__read_error(st, "query readings (bind)");
    rc = sqlite3_step(s);
    int64_t total = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return store__read_error(st, "query readings (count)");
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
            return store__read_error(st, "query readings (bind)");
        size_t i = 0;
        /* Same read transaction as the count, so exactly total rows come. */
        while (i < out->total && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            store_sqlite__row_from_table(s, 0, id, &out->raw[i], &out->raw_t[i]);
            i++;
        }
        if (i < out->total && rc != SQLITE_DONE) {
            sqlite3_reset(s);
            return store__read_error(st, "query readings (rows)");
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
        return store__read_error(st, "query readings (bind)");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        double vals[DS_CHANNELS];
        unsigned mask = 0;
        static const double scale[DS_CHANNELS] = {STORE_SCALE_TEMP, STORE_SCALE_TEMP,
                                                  STORE_SCALE_TENTHS, STORE_SCALE_TENTHS};
        for (int c = 0; c < DS_CHANNELS; c++) {
            /* Column order matches DS_OBJECT_TEMP.. DS_SPO2; NULL: absent. */
            if (sqlite3_column_type(s, c + 1) != SQLITE_NULL) {
                vals[c] = store__vital(s, c + 1, scale[c]);
                mask |= 1u << c;
            } else {
                vals[c] = 0;
            }
        }
        downsample_add(&out->ds, sqlite3_column_int64(s, 0), vals, mask);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store__read_error(st, "query readings (rows)");
    return STORE_OK;
}

store_err store_sqlite_query_readings(void *impl, const char *id, int64_t from_ms, int64_t to_ms,
                               size_t max_points, store_series *out)
{
    store_sqlite *st = impl;
    if (!out)
        return STORE_EINVAL;
    memset(out, 0, sizeof *out);
    if (!st || !id || max_points == 0 || to_ms < from_ms)
        return STORE_EINVAL;
    vmutex_lock(&st->rlock);
    store_err ret;
    /* One read transaction: count and rows see the same snapshot. */
    if (store_sqlite__exec_stmt(st->r_begin) != SQLITE_DONE) {
        ret = store__read_error(st, "query readings (begin)");
    } else {
        ret = store__query_locked(st, id, from_ms, to_ms, max_points, out);
        if (store_sqlite__exec_stmt(st->r_end) != SQLITE_DONE && ret == STORE_OK)
            ret = store__read_error(st, "query readings (end)");
    }
    vmutex_unlock(&st->rlock);
    if (ret != STORE_OK)
        store_series_free(out);
    return ret;
}

/* ---- completeness ----------------------------------------------------- */

/* Gaps and islands: within one (device, boot), seq - row_number() is
 * constant along a run of consecutive seqs, so grouping by it yields the
 * runs. Only each device's current boot (devices.boot) and, of it, only the
 * last ISLANDS_HORIZON seqs are read: nothing older can still be in a
 * device's outbox, so there is nothing to ask for, and the startup cost is
 * bounded by devices x horizon instead of the whole table. CROSS JOIN keeps
 * devices, then their current stream, as the outer loops, so both max(k)
 * and the rows are range seeks of the table's (stream, k) key (measured
 * with schema 5: 1M rows, 200 devices, ~1 s; the window's sort is over
 * those rows only). */
#define ISLANDS_HORIZON 200000
#define ISLANDS_SQL                                                            \
    "SELECT d.id, g.boot, min(g.k), max(g.k) FROM ("                           \
    "  SELECT rs.device, rs.boot, r.k,"                                        \
    "         r.k - row_number() OVER (PARTITION BY r.stream ORDER BY r.k) AS grp" \
    "  FROM devices AS dv" /* devices outer: seeks */                          \
    "  CROSS JOIN reading_streams AS rs ON rs.device = dv.key AND rs.boot = dv.boot" \
    "  CROSS JOIN stream_readings AS r"                                        \
    "    ON r.stream = rs.id AND r.k >= 0" /* k >= 0: seq */                   \
    "   AND r.k > (SELECT max(x.k) FROM stream_readings AS x"                  \
    "              WHERE x.stream = rs.id AND x.k >= 0) - ?1"                  \
    "  WHERE dv.boot IS NOT NULL) AS g "                                       \
    "JOIN devices AS d ON d.key = g.device "                                   \
    "GROUP BY g.device, g.boot, g.grp"
#define LOST_SQL                                                               \
    "SELECT d.id, l.boot, l.from_seq, l.to_seq FROM lost_ranges AS l "         \
    "JOIN devices AS d ON d.key = l.device ORDER BY l.device, l.boot, l.from_seq"

/* Runs one completeness query inside the read transaction, rlock held. */
static store_err store__load_rows(store_sqlite *st, const char *sql,
                           void (*fn)(void *, const char *, int64_t, int64_t, int64_t), void *ctx)
{
    VMUTEX_ASSERT_HELD(&st->rlock);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->rdb, sql, -1, &s, NULL) != SQLITE_OK)
        return store__read_error(st, "completeness (prepare)");
    if (sqlite3_bind_parameter_count(s) >= 1 &&
        sqlite3_bind_int64(s, 1, ISLANDS_HORIZON) != SQLITE_OK) {
        sqlite3_finalize(s);
        return store__read_error(st, "completeness (bind)");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char id[TELEMETRY_ID_MAX + 1];
        store__copy_text(id, sizeof id, s, 0);
        if (fn)
            fn(ctx, id, sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
               sqlite3_column_int64(s, 3));
    }
    store_err ret = rc == SQLITE_DONE ? STORE_OK : store__read_error(st, "completeness (rows)");
    sqlite3_finalize(s);
    return ret;
}

store_err store_sqlite_load_completeness(void *impl, const store_completeness_cb *cb)
{
    store_sqlite *st = impl;
    if (!st || !cb)
        return STORE_EINVAL;
    vmutex_lock(&st->rlock);
    store_err ret;
    /* One snapshot for both: a lost range and the islands agree. */
    if (store_sqlite__exec_stmt(st->r_begin) != SQLITE_DONE) {
        ret = store__read_error(st, "completeness (begin)");
    } else {
        ret = store__load_rows(st, ISLANDS_SQL, cb->island, cb->ctx);
        if (ret == STORE_OK)
            ret = store__load_rows(st, LOST_SQL, cb->lost, cb->ctx);
        if (store_sqlite__exec_stmt(st->r_end) != SQLITE_DONE && ret == STORE_OK)
            ret = store__read_error(st, "completeness (end)");
    }
    vmutex_unlock(&st->rlock);
    return ret;
}
