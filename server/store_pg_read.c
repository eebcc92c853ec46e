/* store_pg_read — the PostgreSQL engine's reads (one read connection under
 * rlock, any thread but the writer) and administration (the CLI's own
 * connection, opened on first use). See store_pg_int.h.
 *
 * A read that finds the connection lost, or whose answer does not come
 * within the deadline (store_pg__await: the connection is then dropped),
 * returns STORE_EIO; the next read resets or reconnects it. Multi-statement reads (count then rows) run in one REPEATABLE
 * READ transaction so they see one snapshot, as SQLite's read transaction. */
#include "store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define TAG STORE_TAG

#define READING_COLS "t, received, ts, uptime, boot, seq, object_temp, ambient_temp, heart_rate, " \
                     "spo2, battery, rssi, flags, sensor_type, fw"
#define LAST_COLS                                                              \
    "last_t, last_received, last_ts, last_uptime, last_boot, last_seq, "       \
    "last_object_temp, last_ambient_temp, last_heart_rate, last_spo2, "        \
    "last_battery, last_rssi, last_flags, last_sensor_type, last_fw"
#define DEVICE_COLS "id, first_seen, last_seen, online, status_at, fw, interval_ms, boot, " LAST_COLS
#define ALARM_COLS "alarm_id, device_id, condition, priority, state, value, lim, started_at, " \
                   "cleared_at, acked_by, acked_at, silenced_until, escalation, retrospective, news2"
#define SETTING_COLS "device_id, condition, enabled, latching, lim, lim_high, hysteresis, onset_ms, " \
                     "onset_high_ms, clear_ms"

/* ---- access-control statements (writer and admin) --------------------- */

const char *const store_pg__auth_sql[STORE_AUTH_AUDIT + 1] = {
    [STORE_AUTH_USER_ADD] = "INSERT INTO users(name, role, pwhash, created_at) VALUES($1, $2, $3, $4)",
    [STORE_AUTH_USER_UPDATE] = "UPDATE users SET role = coalesce($2, role), pwhash = coalesce($3, pwhash) "
                               "WHERE name = $1",
    [STORE_AUTH_USER_DEL] = "DELETE FROM users WHERE name = $1",
    [STORE_AUTH_TOKEN_ADD] = "INSERT INTO tokens(id, key, name, role, created_at) VALUES($1, $2, $3, $4, $5)",
    [STORE_AUTH_TOKEN_DEL] = "DELETE FROM tokens WHERE id = $1",
    [STORE_AUTH_TOKEN_USED] = "UPDATE tokens SET last_used_at = greatest(coalesce(last_used_at, 0), $2) "
                              "WHERE id = $1",
    [STORE_AUTH_SESSION_ADD] = "INSERT INTO sessions(key, user_name, csrf, created_at, last_used_at, expires_at) "
                               "VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO UPDATE SET "
                               "user_name = excluded.user_name, csrf = excluded.csrf, "
                               "created_at = excluded.created_at, last_used_at = excluded.last_used_at, "
                               "expires_at = excluded.expires_at",
    [STORE_AUTH_SESSION_DEL] = "DELETE FROM sessions WHERE key = $1",
    [STORE_AUTH_SESSION_USED] = "UPDATE sessions SET last_used_at = greatest(last_used_at, $2) WHERE key = $1",
    [STORE_AUTH_AUDIT] = "INSERT INTO audit(t, user_name, address, action, target, outcome, detail) "
                         "VALUES($1, $2, $3, $4, $5, $6, $7)",
};

void store_pg__auth_params(const store_auth_write *w, store_pg_params *p)
{
    const store_user *u = &w->v.u;
    const store_token *t = &w->v.t;
    const store_session *x = &w->v.s;
    const store_audit *a = &w->v.a;
    p->n = 0;
    switch (w->op) {
    case STORE_AUTH_USER_ADD:
        store_pg__p_txt(p, u->name);
        store_pg__p_txt(p, u->role);
        store_pg__p_txt(p, u->pwhash);
        store_pg__p_i64(p, u->created_ms);
        break;
    case STORE_AUTH_USER_UPDATE:
        store_pg__p_txt(p, u->name);
        store_pg__p_opt(p, u->role);
        store_pg__p_opt(p, u->pwhash);
        break;
    case STORE_AUTH_USER_DEL: store_pg__p_txt(p, u->name); break;
    case STORE_AUTH_TOKEN_ADD:
        store_pg__p_txt(p, t->id);
        store_pg__p_txt(p, t->key);
        store_pg__p_txt(p, t->name);
        store_pg__p_txt(p, t->role);
        store_pg__p_i64(p, t->created_ms);
        break;
    case STORE_AUTH_TOKEN_DEL: store_pg__p_txt(p, t->id); break;
    case STORE_AUTH_TOKEN_USED:
        store_pg__p_txt(p, t->id);
        store_pg__p_i64(p, t->last_used_ms);
        break;
    case STORE_AUTH_SESSION_ADD:
        store_pg__p_txt(p, x->key);
        store_pg__p_txt(p, x->user);
        store_pg__p_txt(p, x->csrf);
        store_pg__p_i64(p, x->created_ms);
        store_pg__p_i64(p, x->last_used_ms);
        store_pg__p_i64(p, x->expires_ms);
        break;
    case STORE_AUTH_SESSION_DEL: store_pg__p_txt(p, x->key); break;
    case STORE_AUTH_SESSION_USED:
        store_pg__p_txt(p, x->key);
        store_pg__p_i64(p, x->last_used_ms);
        break;
    case STORE_AUTH_AUDIT:
        store_pg__p_i64(p, a->t_ms);
        store_pg__p_txt(p, a->user);
        store_pg__p_opt(p, a->address);
        store_pg__p_txt(p, a->action);
        store_pg__p_opt(p, a->target);
        store_pg__p_opt(p, a->outcome);
        store_pg__p_opt(p, a->detail);
        break;
    }
}

/* ---- values ----------------------------------------------------------- */

static int store_pgr__null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col);
}

static int64_t store_pgr__i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static double store_pgr__dbl(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

static void store_pgr__text(char *dst, size_t n, const PGresult *r, int row, int col)
{
    snprintf(dst, n, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* A row laid out as READING_COLS from column c. */
static void store_pgr__reading(const PGresult *r, int row, int c, const char *id,
                               telemetry_reading *x, int64_t *t_out)
{
    memset(x, 0, sizeof *x);
    snprintf(x->device_id, sizeof x->device_id, "%s", id);
    uint32_t flags = (uint32_t)store_pgr__i64(r, row, c + 12);
    if (t_out)
        *t_out = store_pgr__i64(r, row, c + 0);
    x->received_ms = store_pgr__i64(r, row, c + 1);
    x->ts_ms = store_pgr__i64(r, row, c + 2);
    x->uptime_ms = store_pgr__i64(r, row, c + 3);
    x->boot = store_pgr__i64(r, row, c + 4);
    x->seq = store_pgr__i64(r, row, c + 5);
    x->object_temp = store_pgr__dbl(r, row, c + 6);
    x->ambient_temp = store_pgr__dbl(r, row, c + 7);
    x->heart_rate = store_pgr__dbl(r, row, c + 8);
    x->spo2 = store_pgr__dbl(r, row, c + 9);
    x->battery = store_pgr__dbl(r, row, c + 10);
    x->rssi = (int32_t)store_pgr__i64(r, row, c + 11);
    x->hr_valid = (flags & STORE_FLAG_HR_VALID) != 0;
    x->spo2_valid = (flags & STORE_FLAG_SPO2_VALID) != 0;
    x->temp_valid = (flags & STORE_FLAG_TEMP_VALID) != 0;
    store_pgr__text(x->sensor_type, sizeof x->sensor_type, r, row, c + 13);
    store_pgr__text(x->fw, sizeof x->fw, r, row, c + 14);
    x->present = flags & STORE_FLAG_PRESENT_MASK;
}

/* ---- running a read --------------------------------------------------- */

/* One statement on the read connection, rlock held. Returns a
 * PGRES_TUPLES_OK / COMMAND_OK result, or NULL after logging the failure
 * (the one log line for it). */
static PGresult *store_pgr__run(store_pg *pg, const char *what, const char *sql,
                                const store_pg_params *p)
{
    VMUTEX_ASSERT_HELD(&pg->rlock);
    char err[256];
    if (store_pg__ensure(pg, STORE_PG_APP_READER, &pg->r, err, sizeof err) != 0) {
        LOG_E(TAG, "%s: %s", what, err);
        return NULL;
    }
    /* Bounded: a backend that never answers drops r (NULL, STORE_EIO here,
     * a new connection at the next read). */
    PGresult *r = store_pg__exec_params(pg, &pg->r, sql, p, err, sizeof err);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
        return r;
    if (r)
        store_pg__errmsg(pg, err, sizeof err, NULL, PQresultErrorMessage(r));
    LOG_E(TAG, "%s: %s", what, err);
    PQclear(r);
    return NULL;
}

typedef void (*store_pgr__row_fn)(const PGresult *r, int row, void *dst);

/* A SELECT whose rows become an array of esize-byte elements (zeroed, then
 * row()); *out malloc'ed, NULL when *n == 0. */
static store_err store_pgr__select(store_pg *pg, const char *sql, const store_pg_params *p,
                                   store_pgr__row_fn row, size_t esize, void **out, size_t *n)
{
    if (!pg || !out || !n)
        return STORE_EINVAL;
    *out = NULL;
    *n = 0;
    vmutex_lock(&pg->rlock);
    PGresult *r = store_pgr__run(pg, "read", sql, p);
    vmutex_unlock(&pg->rlock);
    if (!r)
        return STORE_EIO;
    size_t rows = (size_t)PQntuples(r);
    unsigned char *v = rows ? calloc(rows, esize) : NULL;
    if (rows && !v) {
        PQclear(r);
        return STORE_ENOMEM;
    }
    for (size_t i = 0; i < rows; i++)
        row(r, (int)i, v + i * esize);
    PQclear(r);
    *out = v;
    *n = rows;
    return STORE_OK;
}

/* ---- devices ---------------------------------------------------------- */

static void store_pgr__device(const PGresult *r, int row, void *dst)
{
    store_device *d = dst;
    store_pgr__text(d->id, sizeof d->id, r, row, 0);
    d->first_seen_ms = store_pgr__i64(r, row, 1);
    d->last_seen_ms = store_pgr__i64(r, row, 2);
    d->online = store_pgr__null(r, row, 3) ? -1 : store_pgr__i64(r, row, 3) != 0;
    d->status_ms = store_pgr__i64(r, row, 4);
    store_pgr__text(d->fw, sizeof d->fw, r, row, 5);
    d->interval_ms = store_pgr__i64(r, row, 6);
    d->boot = store_pgr__null(r, row, 7) ? -1 : store_pgr__i64(r, row, 7);
    d->has_last = !store_pgr__null(r, row, 9); /* last_received */
    if (d->has_last)
        store_pgr__reading(r, row, 8, d->id, &d->last, NULL);
}

store_err store_pg__list_devices(void *impl, store_device **out, size_t *n)
{
    return store_pgr__select(impl, "SELECT " DEVICE_COLS " FROM devices ORDER BY id COLLATE \"C\"", NULL,
                             store_pgr__device, sizeof **out, (void **)out, n);
}

store_err store_pg__get_device(void *impl, const char *id, store_device *out)
{
    store_pg_params p = {0};
    store_pg__p_txt(&p, id);
    store_device *v = NULL;
    size_t n = 0;
    store_err e = store_pgr__select(impl, "SELECT " DEVICE_COLS " FROM devices WHERE id = $1", &p,
                                    store_pgr__device, sizeof *v, (void **)&v, &n);
    if (e != STORE_OK)
        return e;
    if (n)
        *out = v[0];
    free(v);
    return n ? STORE_OK : STORE_ENOTFOUND;
}

/* ---- readings --------------------------------------------------------- */

/* Inside the read transaction, rlock held. */
static store_err store_pgr__query_locked(store_pg *pg, const char *id, int64_t from_ms,
                                         int64_t to_ms, size_t max_points, store_series *out)
{
    store_pg_params p = {0};
    store_pg__p_txt(&p, id);
    PGresult *r = store_pgr__run(pg, "query readings (device)", "SELECT key FROM devices WHERE id = $1", &p);
    if (!r)
        return STORE_EIO;
    int found = PQntuples(r) == 1;
    int64_t key = found ? store_pgr__i64(r, 0, 0) : 0;
    PQclear(r);
    if (!found)
        return STORE_ENOTFOUND;
    p.n = 0;
    store_pg__p_i64(&p, key);
    store_pg__p_i64(&p, from_ms);
    store_pg__p_i64(&p, to_ms);
    r = store_pgr__run(pg, "query readings (count)",
                       "SELECT count(*) FROM readings WHERE device = $1 AND t BETWEEN $2 AND $3", &p);
    if (!r)
        return STORE_EIO;
    out->total = (size_t)store_pgr__i64(r, 0, 0);
    PQclear(r);

    if (out->total <= max_points) {
        r = store_pgr__run(pg, "query readings (rows)",
                           "SELECT " READING_COLS " FROM readings WHERE device = $1 AND t BETWEEN $2 AND $3 "
                           "ORDER BY t, id", &p);
        if (!r)
            return STORE_EIO;
        size_t rows = (size_t)PQntuples(r); /* same snapshot as the count */
        if (rows > out->total)
            rows = out->total;
        if (rows) {
            out->raw = malloc(rows * sizeof *out->raw);
            out->raw_t = malloc(rows * sizeof *out->raw_t);
            if (!out->raw || !out->raw_t) {
                PQclear(r);
                return STORE_ENOMEM;
            }
        }
        for (size_t i = 0; i < rows; i++)
            store_pgr__reading(r, (int)i, 0, id, &out->raw[i], &out->raw_t[i]);
        PQclear(r);
        out->total = rows;
        return STORE_OK;
    }

    /* Buckets in SQL, on downsample.h's boundaries: bucket (t - from) / width.
     * Non-finite values are left out, as downsample_add does. */
    out->downsampled = 1;
    out->ds.b = calloc(max_points, sizeof *out->ds.b);
    if (!out->ds.b)
        return STORE_ENOMEM;
    if (downsample_init(&out->ds, from_ms, to_ms, max_points, out->ds.b, max_points) != 0)
        return STORE_EINVAL;
    store_pg__p_i64(&p, out->ds.width);
#define CH(c) "count(" c ") FILTER (WHERE " c " < 'Infinity' AND " c " > '-Infinity'), "          \
              "min(" c ") FILTER (WHERE " c " < 'Infinity' AND " c " > '-Infinity'), "            \
              "max(" c ") FILTER (WHERE " c " < 'Infinity' AND " c " > '-Infinity'), "            \
              "sum(" c ") FILTER (WHERE " c " < 'Infinity' AND " c " > '-Infinity')"
    r = store_pgr__run(pg, "query readings (buckets)",
                       "SELECT (t - $2) / $4 AS b, count(*), " CH("object_temp") ", " CH("ambient_temp")
                       ", " CH("heart_rate") ", " CH("spo2") " FROM readings "
                       "WHERE device = $1 AND t BETWEEN $2 AND $3 GROUP BY b ORDER BY b", &p);
#undef CH
    if (!r)
        return STORE_EIO;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t b = store_pgr__i64(r, i, 0);
        if (b < 0 || (uint64_t)b >= out->ds.nbuckets)
            continue; /* cannot happen: t is within [from, to] */
        downsample_bucket *k = &out->ds.b[b];
        k->count = (uint32_t)store_pgr__i64(r, i, 1);
        for (int c = 0; c < DS_CHANNELS; c++) {
            downsample_stat *s = &k->ch[c];
            s->n = (uint32_t)store_pgr__i64(r, i, 2 + 4 * c);
            if (!s->n)
                continue;
            s->min = store_pgr__dbl(r, i, 3 + 4 * c);
            s->max = store_pgr__dbl(r, i, 4 + 4 * c);
            s->sum = store_pgr__dbl(r, i, 5 + 4 * c);
        }
    }
    PQclear(r);
    return STORE_OK;
}

/* BEGIN/COMMIT of a read snapshot, rlock held. */
static int store_pgr__tx(store_pg *pg, const char *what, int begin)
{
    PGresult *r = store_pgr__run(pg, what, begin ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "COMMIT",
                                 NULL);
    PQclear(r);
    return r ? 0 : -1;
}

static void store_pgr__tx_end(store_pg *pg, const char *what)
{
    /* After a failed statement: back to idle (COMMIT of an aborted
     * transaction rolls it back). A lost connection is reset next time. */
    if (pg->r && PQstatus(pg->r) == CONNECTION_OK && PQtransactionStatus(pg->r) != PQTRANS_IDLE)
        (void)store_pgr__tx(pg, what, 0);
}

store_err store_pg__query_readings(void *impl, const char *id, int64_t from_ms, int64_t to_ms,
                                   size_t max_points, store_series *out)
{
    store_pg *pg = impl;
    if (!out)
        return STORE_EINVAL;
    memset(out, 0, sizeof *out);
    if (!pg || !id || max_points == 0 || to_ms < from_ms)
        return STORE_EINVAL;
    vmutex_lock(&pg->rlock);
    store_err ret = STORE_EIO;
    if (store_pgr__tx(pg, "query readings (begin)", 1) == 0) {
        ret = store_pgr__query_locked(pg, id, from_ms, to_ms, max_points, out);
        if (store_pgr__tx(pg, "query readings (end)", 0) != 0 && ret == STORE_OK)
            ret = STORE_EIO;
    }
    store_pgr__tx_end(pg, "query readings (end)");
    vmutex_unlock(&pg->rlock);
    if (ret != STORE_OK)
        store_series_free(out);
    return ret;
}

/* ---- completeness ----------------------------------------------------- */

/* Gaps and islands over reading_seqs (the (device, boot, seq) keys of the
 * stored readings): seq - row_number() is constant along a run. Only each
 * device's current boot and its last ISLANDS_HORIZON seqs, as in SQLite. */
#define ISLANDS_HORIZON 200000
#define ISLANDS_SQL                                                                        \
    "SELECT d.id, g.boot, min(g.seq), max(g.seq) FROM ("                                   \
    "  SELECT r.device, r.boot, r.seq,"                                                    \
    "         r.seq - row_number() OVER (PARTITION BY r.device, r.boot ORDER BY r.seq) AS grp" \
    "  FROM devices AS k JOIN reading_seqs AS r ON r.device = k.key AND r.boot = k.boot"   \
    "   AND r.seq > (SELECT max(x.seq) FROM reading_seqs AS x"                             \
    "                WHERE x.device = k.key AND x.boot = k.boot) - $1"                     \
    "  WHERE k.boot IS NOT NULL) AS g "                                                    \
    "JOIN devices AS d ON d.key = g.device "                                               \
    "GROUP BY g.device, d.id, g.boot, g.grp ORDER BY g.device, g.boot, 3"
#define LOST_SQL                                                               \
    "SELECT d.id, l.boot, l.from_seq, l.to_seq FROM lost_ranges AS l "         \
    "JOIN devices AS d ON d.key = l.device ORDER BY l.device, l.boot, l.from_seq"

static store_err store_pgr__load_rows(store_pg *pg, const char *sql, const store_pg_params *p,
                                      void (*fn)(void *, const char *, int64_t, int64_t, int64_t),
                                      void *ctx)
{
    PGresult *r = store_pgr__run(pg, "completeness", sql, p);
    if (!r)
        return STORE_EIO;
    for (int i = 0; fn && i < PQntuples(r); i++) {
        char id[TELEMETRY_ID_MAX + 1];
        store_pgr__text(id, sizeof id, r, i, 0);
        fn(ctx, id, store_pgr__i64(r, i, 1), store_pgr__i64(r, i, 2), store_pgr__i64(r, i, 3));
    }
    PQclear(r);
    return STORE_OK;
}

store_err store_pg__load_completeness(void *impl, const store_completeness_cb *cb)
{
    store_pg *pg = impl;
    if (!pg || !cb)
        return STORE_EINVAL;
    vmutex_lock(&pg->rlock);
    store_err ret = STORE_EIO;
    /* One snapshot for both: a lost range and the islands agree. */
    if (store_pgr__tx(pg, "completeness (begin)", 1) == 0) {
        store_pg_params p = {0};
        store_pg__p_i64(&p, ISLANDS_HORIZON);
        ret = store_pgr__load_rows(pg, ISLANDS_SQL, &p, cb->island, cb->ctx);
        if (ret == STORE_OK)
            ret = store_pgr__load_rows(pg, LOST_SQL, NULL, cb->lost, cb->ctx);
        if (store_pgr__tx(pg, "completeness (end)", 0) != 0 && ret == STORE_OK)
            ret = STORE_EIO;
    }
    store_pgr__tx_end(pg, "completeness (end)");
    vmutex_unlock(&pg->rlock);
    return ret;
}

/* ---- alarms ----------------------------------------------------------- */

static void store_pgr__alarm(const PGresult *r, int row, void *dst)
{
    alarm_rec *a = dst;
    a->alarm_id = (uint64_t)store_pgr__i64(r, row, 0);
    store_pgr__text(a->device_id, sizeof a->device_id, r, row, 1);
    alarm_condition c = ALARM_SPO2_LOW;
    alarm_condition_from_name(PQgetvalue(r, row, 2), &c);
    a->condition = c;
    alarm_priority p = ALARM_PRIO_LOW;
    alarm_priority_from_name(PQgetvalue(r, row, 3), &p);
    a->priority = p;
    alarm_state s = ALARM_CLEARED;
    alarm_state_from_name(PQgetvalue(r, row, 4), &s);
    a->state = s;
    a->has_value = !store_pgr__null(r, row, 5);
    a->value = store_pgr__dbl(r, row, 5);
    a->limit = store_pgr__dbl(r, row, 6);
    a->started_at = store_pgr__i64(r, row, 7);
    a->cleared_at = store_pgr__i64(r, row, 8);
    store_pgr__text(a->acked_by, sizeof a->acked_by, r, row, 9);
    a->acked_at = store_pgr__i64(r, row, 10);
    a->silenced_until = store_pgr__i64(r, row, 11);
    a->escalation = (uint32_t)store_pgr__i64(r, row, 12);
    a->retrospective = store_pgr__i64(r, row, 13) != 0;
    a->news2_score = (int)store_pgr__i64(r, row, 14);
}

store_err store_pg__load_open_alarms(void *impl, alarm_rec **out, size_t *n)
{
    return store_pgr__select(impl, "SELECT " ALARM_COLS " FROM alarms WHERE state <> 'cleared' ORDER BY alarm_id",
                             NULL, store_pgr__alarm, sizeof **out, (void **)out, n);
}

store_err store_pg__query_alarms(void *impl, const char *device_id, int64_t from_ms,
                                 int64_t to_ms, size_t limit, alarm_rec **out, size_t *n)
{
    if (!device_id)
        return STORE_EINVAL;
    store_pg_params p = {0};
    store_pg__p_txt(&p, device_id);
    store_pg__p_i64(&p, from_ms);
    store_pg__p_i64(&p, to_ms);
    store_pg__p_i64(&p, (int64_t)limit);
    return store_pgr__select(impl, "SELECT " ALARM_COLS " FROM alarms WHERE device_id = $1 AND "
                                   "started_at BETWEEN $2 AND $3 ORDER BY started_at DESC, alarm_id DESC LIMIT $4",
                             &p, store_pgr__alarm, sizeof **out, (void **)out, n);
}

static void store_pgr__setting(const PGresult *r, int row, void *dst)
{
    store_alarm_setting_row *x = dst;
    store_pgr__text(x->device_id, sizeof x->device_id, r, row, 0);
    x->cond = store_alarm_setting_cond(PQgetvalue(r, row, 1));
    x->cs.enabled = (int)store_pgr__i64(r, row, 2);
    x->cs.latching = (int)store_pgr__i64(r, row, 3);
    x->cs.limit = store_pgr__dbl(r, row, 4);
    x->cs.limit_high = store_pgr__dbl(r, row, 5);
    x->cs.hysteresis = store_pgr__dbl(r, row, 6);
    x->cs.onset_ms = store_pgr__i64(r, row, 7);
    x->cs.onset_high_ms = store_pgr__i64(r, row, 8);
    x->cs.clear_ms = store_pgr__i64(r, row, 9);
}

store_err store_pg__get_alarm_settings(void *impl, const char *device_id, alarm_settings *out)
{
    alarm_settings_default(out);
    store_pg_params p = {0};
    store_pg__p_txt(&p, device_id);
    store_alarm_setting_row *v = NULL;
    size_t n = 0;
    store_err e = store_pgr__select(impl, "SELECT " SETTING_COLS " FROM alarm_settings WHERE device_id = $1", &p,
                                    store_pgr__setting, sizeof *v, (void **)&v, &n);
    if (e != STORE_OK)
        return e;
    e = store_alarm_settings_of(v, n, out);
    free(v);
    return e;
}

store_err store_pg__load_alarm_settings(void *impl,
                                        void (*cb)(void *ctx, const char *device_id,
                                                   const alarm_settings *s),
                                        void *ctx)
{
    store_alarm_setting_row *v = NULL;
    size_t n = 0;
    store_err e = store_pgr__select(impl, "SELECT " SETTING_COLS " FROM alarm_settings "
                                          "ORDER BY device_id COLLATE \"C\"", NULL,
                                    store_pgr__setting, sizeof *v, (void **)&v, &n);
    if (e != STORE_OK)
        return e;
    store_alarm_settings_each(v, n, cb, ctx);
    free(v);
    return STORE_OK;
}

/* ---- access control --------------------------------------------------- */

static void store_pgr__user(const PGresult *r, int row, void *dst)
{
    store_user *u = dst;
    store_pgr__text(u->name, sizeof u->name, r, row, 0);
    store_pgr__text(u->role, sizeof u->role, r, row, 1);
    store_pgr__text(u->pwhash, sizeof u->pwhash, r, row, 2);
    u->created_ms = store_pgr__i64(r, row, 3);
}

static void store_pgr__token(const PGresult *r, int row, void *dst)
{
    store_token *t = dst;
    store_pgr__text(t->id, sizeof t->id, r, row, 0);
    store_pgr__text(t->key, sizeof t->key, r, row, 1);
    store_pgr__text(t->name, sizeof t->name, r, row, 2);
    store_pgr__text(t->role, sizeof t->role, r, row, 3);
    t->created_ms = store_pgr__i64(r, row, 4);
    t->last_used_ms = store_pgr__i64(r, row, 5);
}

static void store_pgr__session(const PGresult *r, int row, void *dst)
{
    store_session *x = dst;
    store_pgr__text(x->key, sizeof x->key, r, row, 0);
    store_pgr__text(x->user, sizeof x->user, r, row, 1);
    store_pgr__text(x->role, sizeof x->role, r, row, 2);
    store_pgr__text(x->csrf, sizeof x->csrf, r, row, 3);
    x->created_ms = store_pgr__i64(r, row, 4);
    x->last_used_ms = store_pgr__i64(r, row, 5);
    x->expires_ms = store_pgr__i64(r, row, 6);
}

static void store_pgr__audit(const PGresult *r, int row, void *dst)
{
    store_audit *a = dst;
    a->t_ms = store_pgr__i64(r, row, 0);
    store_pgr__text(a->user, sizeof a->user, r, row, 1);
    store_pgr__text(a->address, sizeof a->address, r, row, 2);
    store_pgr__text(a->action, sizeof a->action, r, row, 3);
    store_pgr__text(a->target, sizeof a->target, r, row, 4);
    store_pgr__text(a->outcome, sizeof a->outcome, r, row, 5);
    store_pgr__text(a->detail, sizeof a->detail, r, row, 6);
}

store_err store_pg__get_user(void *impl, const char *name, store_user *out)
{
    store_pg_params p = {0};
    store_pg__p_txt(&p, name);
    store_user *v = NULL;
    size_t n = 0;
    store_err e = store_pgr__select(impl, "SELECT name, role, pwhash, created_at FROM users WHERE name = $1", &p,
                                    store_pgr__user, sizeof *v, (void **)&v, &n);
    if (e != STORE_OK)
        return e;
    if (n)
        *out = v[0];
    free(v);
    return n ? STORE_OK : STORE_ENOTFOUND;
}

store_err store_pg__list_users(void *impl, store_user **out, size_t *n)
{
    return store_pgr__select(impl, "SELECT name, role, '', created_at FROM users ORDER BY name COLLATE \"C\"",
                             NULL, store_pgr__user, sizeof **out, (void **)out, n);
}

store_err store_pg__list_tokens(void *impl, store_token **out, size_t *n)
{
    return store_pgr__select(impl, "SELECT id, key, name, role, created_at, coalesce(last_used_at, 0) "
                                   "FROM tokens ORDER BY created_at, id COLLATE \"C\"",
                             NULL, store_pgr__token, sizeof **out, (void **)out, n);
}

store_err store_pg__list_sessions(void *impl, int64_t now_ms, store_session **out, size_t *n)
{
    store_pg_params p = {0};
    store_pg__p_i64(&p, now_ms);
    return store_pgr__select(impl, "SELECT s.key, s.user_name, u.role, s.csrf, s.created_at, s.last_used_at, "
                                   "s.expires_at FROM sessions s JOIN users u ON u.name = s.user_name "
                                   "WHERE s.expires_at > $1 ORDER BY s.created_at, s.key COLLATE \"C\"",
                             &p, store_pgr__session, sizeof **out, (void **)out, n);
}

store_err store_pg__query_audit(void *impl, int64_t from_ms, int64_t to_ms, const char *user,
                                size_t limit, store_audit **out, size_t *n)
{
    store_pg_params p = {0};
    store_pg__p_i64(&p, from_ms);
    store_pg__p_i64(&p, to_ms);
    store_pg__p_i64(&p, (int64_t)limit);
    if (user)
        store_pg__p_txt(&p, user);
    return store_pgr__select(impl,
                             user ? "SELECT t, user_name, address, action, target, outcome, detail FROM audit "
                                    "WHERE t BETWEEN $1 AND $2 AND user_name = $4 ORDER BY t DESC, id DESC LIMIT $3"
                                  : "SELECT t, user_name, address, action, target, outcome, detail FROM audit "
                                    "WHERE t BETWEEN $1 AND $2 ORDER BY t DESC, id DESC LIMIT $3",
                             &p, store_pgr__audit, sizeof **out, (void **)out, n);
}

/* ---- administration (the CLI's own connection) ------------------------- */

/* Runs one statement on the admin connection; *changes = rows touched.
 * sqlstate gets the failure's code. 0 or -1. */
static int store_pgr__admin_exec(store_pg *pg, const char *sql, const store_pg_params *p,
                                 int64_t *changes, char sqlstate[6])
{
    char err[256];
    PGresult *r = store_pg__exec_params(pg, &pg->a, sql, p, err, sizeof err);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (ok && changes)
        *changes = strtoll(PQcmdTuples(r), NULL, 10);
    if (!ok) {
        const char *ss = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        snprintf(sqlstate, 6, "%s", ss ? ss : "");
        if (strncmp(sqlstate, "23", 2) != 0) {
            if (r)
                store_pg__errmsg(pg, err, sizeof err, pg->label, PQresultErrorMessage(r));
            LOG_E(TAG, "admin: %s", err);
        }
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/* Applies one write now, in a transaction of its own; changes: rows it
 * touched. */
static store_err store_pgr__admin(store_pg *pg, const store_auth_write *w, int64_t *changes)
{
    if (!pg)
        return STORE_EINVAL;
    char err[256], ss[6] = "";
    if (store_pg__ensure(pg, STORE_PG_APP_ADMIN, &pg->a, err, sizeof err) != 0) {
        LOG_E(TAG, "admin connection: %s", err);
        return STORE_EIO;
    }
    store_pg_params p;
    store_pg__auth_params(w, &p);
    int64_t ch = 0;
    int rc = store_pgr__admin_exec(pg, "BEGIN", NULL, NULL, ss);
    if (rc == 0)
        rc = store_pgr__admin_exec(pg, store_pg__auth_sql[w->op], &p, &ch, ss);
    /* A deleted user's sessions go; so do all sessions of a user whose
     * password the CLI changed. */
    if (rc == 0 && ch > 0 &&
        (w->op == STORE_AUTH_USER_DEL || (w->op == STORE_AUTH_USER_UPDATE && w->v.u.pwhash[0]))) {
        p.n = 0;
        store_pg__p_txt(&p, w->v.u.name);
        rc = store_pgr__admin_exec(pg, STORE_PG_DEL_USER_SESSIONS, &p, NULL, ss);
    }
    if (rc == 0)
        rc = store_pgr__admin_exec(pg, "COMMIT", NULL, NULL, ss);
    if (rc != 0 && PQstatus(pg->a) == CONNECTION_OK && PQtransactionStatus(pg->a) != PQTRANS_IDLE) {
        char rs[6];
        (void)store_pgr__admin_exec(pg, "ROLLBACK", NULL, NULL, rs);
    }
    if (changes)
        *changes = ch;
    if (rc != 0)
        return !strncmp(ss, "23", 2) ? STORE_EEXIST : STORE_EIO;
    return STORE_OK;
}

store_err store_pg__admin_user_add(void *impl, const store_user *u)
{
    store_auth_write w = {.op = STORE_AUTH_USER_ADD, .v.u = *u};
    return store_pgr__admin(impl, &w, NULL);
}

store_err store_pg__admin_user_update(void *impl, const char *name, const char *role,
                                      const char *pwhash)
{
    store_auth_write w = {.op = STORE_AUTH_USER_UPDATE};
    snprintf(w.v.u.name, sizeof w.v.u.name, "%s", name);
    snprintf(w.v.u.role, sizeof w.v.u.role, "%s", role ? role : "");
    snprintf(w.v.u.pwhash, sizeof w.v.u.pwhash, "%s", pwhash ? pwhash : "");
    int64_t ch = 0;
    store_err e = store_pgr__admin(impl, &w, &ch);
    return e == STORE_OK && ch == 0 ? STORE_ENOTFOUND : e;
}

store_err store_pg__admin_user_del(void *impl, const char *name)
{
    store_auth_write w = {.op = STORE_AUTH_USER_DEL};
    snprintf(w.v.u.name, sizeof w.v.u.name, "%s", name);
    int64_t ch = 0;
    store_err e = store_pgr__admin(impl, &w, &ch);
    return e == STORE_OK && ch == 0 ? STORE_ENOTFOUND : e;
}

store_err store_pg__admin_token_add(void *impl, const store_token *t)
{
    store_auth_write w = {.op = STORE_AUTH_TOKEN_ADD, .v.t = *t};
    return store_pgr__admin(impl, &w, NULL);
}

store_err store_pg__admin_token_del(void *impl, const char *id)
{
    store_auth_write w = {.op = STORE_AUTH_TOKEN_DEL};
    snprintf(w.v.t.id, sizeof w.v.t.id, "%s", id);
    int64_t ch = 0;
    store_err e = store_pgr__admin(impl, &w, &ch);
    return e == STORE_OK && ch == 0 ? STORE_ENOTFOUND : e;
}

store_err store_pg__admin_audit(void *impl, const store_audit *a)
{
    store_auth_write w = {.op = STORE_AUTH_AUDIT, .v.a = *a};
    return store_pgr__admin(impl, &w, NULL);
}
