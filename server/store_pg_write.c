/* store_pg_write — the PostgreSQL engine's writes (store_backend.h
 * write_batch and prune). Writer thread only; see store_pg_int.h.
 *
 * A batch is one transaction sent in libpq pipeline mode: BEGIN, then the
 * records in queue order — each run of consecutive readings as ONE
 * statement over arrays (unnest ... WITH ORDINALITY, S_RUN), preceded by a
 * devices upsert for each device not seen yet; any other record as its own
 * prepared statement — then one "last reading" update per device and
 * COMMIT, all behind one Sync. Results are read back every PIPE_CHUNK
 * statements so neither side blocks on a full socket buffer. Queue order
 * is kept (a status may create the device a later reading names;
 * first_seen is its first record's), which is why runs, not a regrouping
 * of the batch by kind.
 * Measured (test_pg_throughput, 10 batches of 2048 readings, loopback, a
 * shared 2-core machine at load 5-9): one pipelined INSERT per reading
 * 3,500 readings/s; arrays per run 13,000-20,000 readings/s — hence S_RUN.
 * (pgbench on the same box: a 2048-row INSERT ... SELECT over arrays
 * ~90 ms.)
 *
 * A record the database refuses for itself (SQLSTATE class 22 data, 23
 * constraint) aborts a PostgreSQL transaction, unlike SQLite's: the batch is
 * then written again record by record, each under a SAVEPOINT, and only the
 * refused ones are dropped (counted rejected). Anything else — connection
 * lost, timeout, lock — is STORE_WR_RETRY: the transaction is rolled back
 * whole, and the connection is reset on the next call. A backend that does
 * not answer within the deadline (store_pg__await) is the same: w is
 * dropped, the batch fails, the next call connects anew. */
#include "store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vclock.h"

#define TAG STORE_TAG
#define PIPE_CHUNK 256          /* statements sent before reading their results */
#define AUDIT_PRUNE_CHUNK 5000
#define SEQ_PRUNE_FACTOR 10     /* reading_seqs keys deleted per pass: budget x this */

/* ---- statements ------------------------------------------------------- */

#define READING_COLS "t, received, ts, uptime, boot, seq, object_temp, ambient_temp, heart_rate, " \
                     "spo2, battery, rssi, flags, sensor_type, fw"
#define ALARM_COLS "alarm_id, device_id, condition, priority, state, value, lim, started_at, " \
                   "cleared_at, acked_by, acked_at, silenced_until, escalation, retrospective, news2"
#define SETTING_COLS "device_id, condition, enabled, latching, lim, lim_high, hysteresis, onset_ms, " \
                     "onset_high_ms, clear_ms"

enum { S_TOUCH, S_READING, S_RUN, S_LAST, S_STATUS, S_LOST, S_ALARM, S_ALARM_EVENT, S_SETTING,
       S_DEL_SESSIONS, S_AUTH0 };
#define S_COUNT (S_AUTH0 + STORE_AUTH_AUDIT + 1)

static const char *const store_pgw__sql[S_COUNT] = {
    [S_TOUCH] = "INSERT INTO devices(id, first_seen, last_seen) VALUES($1, $2, $2) "
                "ON CONFLICT (id) DO UPDATE SET last_seen = greatest(devices.last_seen, excluded.last_seen)",
    /* The key row first: the reading goes in only if its (device, boot,
     * seq) was new, or it has no seq. $1 id, then READING_COLS. */
    [S_READING] =
        "WITH d AS (SELECT key FROM devices WHERE id = $1), "
        "k AS (INSERT INTO reading_seqs(device, boot, seq, t) SELECT key, $6, $7, $2 FROM d "
        "      WHERE $7::bigint IS NOT NULL ON CONFLICT DO NOTHING RETURNING 1) "
        "INSERT INTO readings(device, " READING_COLS ") "
        "SELECT key, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM d "
        "WHERE $7::bigint IS NULL OR EXISTS (SELECT 1 FROM k)",
    /* A run of consecutive readings of the batch as one statement over
     * arrays ($1 ids, then READING_COLS), in queue order (ord). Same rules
     * as S_READING: a reading goes in if it has no seq or its key row was
     * new — and of several copies in one run, only the first (the key
     * rows are inserted in ord order, so a later copy conflicts with the
     * earlier one). Returns the ords stored. */
    [S_RUN] =
        "WITH u AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], "
        "  $5::bigint[], $6::bigint[], $7::bigint[], $8::float8[], $9::float8[], $10::float8[], "
        "  $11::float8[], $12::float8[], $13::bigint[], $14::bigint[], $15::text[], $16::text[]) "
        "  WITH ORDINALITY AS u(id, " READING_COLS ", ord)), "
        "d AS (SELECT dv.key, u.* FROM u JOIN devices dv ON dv.id = u.id), "
        "k AS (INSERT INTO reading_seqs(device, boot, seq, t) SELECT key, boot, seq, t FROM d "
        "      WHERE seq IS NOT NULL ORDER BY ord ON CONFLICT DO NOTHING RETURNING device, boot, seq), "
        "w AS (SELECT * FROM d WHERE seq IS NULL UNION ALL "
        "      (SELECT DISTINCT ON (d.key, d.boot, d.seq) d.* FROM d "
        "       JOIN k ON k.device = d.key AND k.boot = d.boot AND k.seq = d.seq "
        "       ORDER BY d.key, d.boot, d.seq, d.ord)), "
        "ins AS (INSERT INTO readings(device, " READING_COLS ") "
        "        SELECT key, " READING_COLS " FROM w ORDER BY ord RETURNING 1) "
        "SELECT ord FROM w ORDER BY ord",
    /* Latest by receive time; fw and boot follow the latest reading. */
    [S_LAST] = "UPDATE devices SET last_seen = greatest(last_seen, $3), last_t = $2, last_received = $3, "
               "last_ts = $4, last_uptime = $5, last_boot = $6, last_seq = $7, last_object_temp = $8, "
               "last_ambient_temp = $9, last_heart_rate = $10, last_spo2 = $11, last_battery = $12, "
               "last_rssi = $13, last_flags = $14, last_sensor_type = $15, last_fw = $16, "
               "fw = coalesce($16, fw), boot = CASE WHEN ($14::bigint & 128) <> 0 THEN $6 ELSE boot END "
               "WHERE id = $1 AND (last_received IS NULL OR last_received <= $3)",
    /* status_at moves only when online changes: a retained status replayed
     * on reconnect is not a change. */
    [S_STATUS] = "INSERT INTO devices(id, first_seen, last_seen, online, status_at, fw, interval_ms, boot) "
                 "VALUES($1, $2, $2, $3, $2, $4, $5, $6) "
                 "ON CONFLICT (id) DO UPDATE SET last_seen = greatest(devices.last_seen, excluded.last_seen), "
                 "status_at = CASE WHEN devices.online IS NOT DISTINCT FROM excluded.online "
                 "AND devices.status_at IS NOT NULL THEN devices.status_at ELSE excluded.status_at END, "
                 "online = excluded.online, fw = coalesce(excluded.fw, devices.fw), "
                 "interval_ms = coalesce(excluded.interval_ms, devices.interval_ms), "
                 "boot = coalesce(excluded.boot, devices.boot)",
    /* A device never stored has no key and nothing to be lost against. */
    [S_LOST] = "INSERT INTO lost_ranges(device, boot, from_seq, to_seq, reason, marked_at) "
               "SELECT key, $2, $3, $4, $5, $6 FROM devices WHERE id = $1",
    [S_ALARM] = "INSERT INTO alarms(" ALARM_COLS ", updated_at) VALUES"
                "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
                "ON CONFLICT (alarm_id) DO UPDATE SET device_id = excluded.device_id, "
                "condition = excluded.condition, priority = excluded.priority, state = excluded.state, "
                "value = excluded.value, lim = excluded.lim, started_at = excluded.started_at, "
                "cleared_at = excluded.cleared_at, acked_by = excluded.acked_by, "
                "acked_at = excluded.acked_at, silenced_until = excluded.silenced_until, "
                "escalation = excluded.escalation, retrospective = excluded.retrospective, "
                "news2 = excluded.news2, updated_at = excluded.updated_at",
    [S_ALARM_EVENT] = "INSERT INTO alarm_events(alarm_id, device_id, t, kind, user_name, state, priority) "
                      "VALUES($1, $2, $3, $4, $5, $6, $7)",
    [S_SETTING] = "INSERT INTO alarm_settings(" SETTING_COLS ", updated_at, updated_by) "
                  "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
                  "ON CONFLICT (device_id, condition) DO UPDATE SET enabled = excluded.enabled, "
                  "latching = excluded.latching, lim = excluded.lim, lim_high = excluded.lim_high, "
                  "hysteresis = excluded.hysteresis, onset_ms = excluded.onset_ms, "
                  "onset_high_ms = excluded.onset_high_ms, clear_ms = excluded.clear_ms, "
                  "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    [S_DEL_SESSIONS] = STORE_PG_DEL_USER_SESSIONS,
};

static const char *store_pgw__sql_of(int s)
{
    return s >= S_AUTH0 ? store_pg__auth_sql[s - S_AUTH0] : store_pgw__sql[s];
}

static void store_pgw__name(int s, char name[16])
{
    snprintf(name, 16, "vw%d", s);
}

/* Connects or resets w as needed and prepares the statements once per
 * session (a reset session has none). */
static int store_pgw__ready(store_pg *pg, char *err, size_t errlen)
{
    if (!pg->w || PQstatus(pg->w) != CONNECTION_OK)
        pg->w_ready = 0; /* a new session (reset, or dropped as hung) has no statements */
    if (store_pg__ensure(pg, STORE_PG_APP_WRITER, &pg->w, err, errlen) != 0) {
        pg->w_ready = 0;
        return -1;
    }
    if (pg->w_ready)
        return 0;
    for (int s = 0; s < S_COUNT; s++) {
        const char *sql = store_pgw__sql_of(s);
        if (!sql)
            continue;
        char name[16];
        store_pgw__name(s, name);
        PGresult *r = store_pg__finish(pg, &pg->w, pg->w && PQsendPrepare(pg->w, name, sql, 0, NULL),
                                       err, errlen);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok && r)
            store_pg__errmsg(pg, err, errlen, "prepare", PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            return -1;
    }
    pg->w_ready = 1;
    return 0;
}

/* ---- one record's parameters ------------------------------------------ */

static int64_t store_pgw__reading_t(const telemetry_reading *r)
{
    return (r->present & TELEMETRY_HAS_TS) ? r->ts_ms : r->received_ms;
}

/* $1 id, then READING_COLS, as S_READING and S_LAST take them. */
static void store_pgw__reading_params(const telemetry_reading *r, store_pg_params *p)
{
    uint32_t f = r->present;
    uint32_t flags = (f & STORE_FLAG_PRESENT_MASK) | (r->hr_valid ? STORE_FLAG_HR_VALID : 0) |
                     (r->spo2_valid ? STORE_FLAG_SPO2_VALID : 0) |
                     (r->temp_valid ? STORE_FLAG_TEMP_VALID : 0);
#define P_I64(bit, v) ((f & (bit)) ? store_pg__p_i64(p, (v)) : store_pg__p_txt(p, NULL))
#define P_DBL(bit, v) ((f & (bit)) ? store_pg__p_dbl(p, (v)) : store_pg__p_txt(p, NULL))
    p->n = 0;
    store_pg__p_txt(p, r->device_id);
    store_pg__p_i64(p, store_pgw__reading_t(r));
    store_pg__p_i64(p, r->received_ms);
    P_I64(TELEMETRY_HAS_TS, r->ts_ms);
    P_I64(TELEMETRY_HAS_UPTIME, r->uptime_ms);
    store_pg__p_i64(p, (f & TELEMETRY_HAS_BOOT) ? r->boot : 0);
    P_I64(TELEMETRY_HAS_SEQ, r->seq);
    P_DBL(TELEMETRY_HAS_OBJECT_TEMP, r->object_temp);
    P_DBL(TELEMETRY_HAS_AMBIENT_TEMP, r->ambient_temp);
    P_DBL(TELEMETRY_HAS_HEART_RATE, r->heart_rate);
    P_DBL(TELEMETRY_HAS_SPO2, r->spo2);
    P_DBL(TELEMETRY_HAS_BATTERY, r->battery);
    P_I64(TELEMETRY_HAS_RSSI, r->rssi);
    store_pg__p_i64(p, flags);
    store_pg__p_txt(p, (f & TELEMETRY_HAS_SENSOR_TYPE) ? r->sensor_type : NULL);
    store_pg__p_txt(p, (f & TELEMETRY_HAS_FW) ? r->fw : NULL);
#undef P_DBL
#undef P_I64
}

static void store_pgw__status_params(const telemetry_status *x, store_pg_params *p)
{
    p->n = 0;
    store_pg__p_txt(p, x->device_id);
    store_pg__p_i64(p, x->received_ms);
    store_pg__p_i64(p, x->online ? 1 : 0);
    store_pg__p_txt(p, (x->present & TELEMETRY_STATUS_HAS_FW) ? x->fw : NULL);
    if (x->present & TELEMETRY_STATUS_HAS_INTERVAL)
        store_pg__p_i64(p, x->interval_ms);
    else
        store_pg__p_txt(p, NULL);
    if (x->present & TELEMETRY_STATUS_HAS_BOOT)
        store_pg__p_i64(p, x->boot);
    else
        store_pg__p_txt(p, NULL);
}

static void store_pgw__lost_params(const store_lost_rec *l, store_pg_params *p)
{
    p->n = 0;
    store_pg__p_txt(p, l->device_id);
    store_pg__p_i64(p, l->boot);
    store_pg__p_i64(p, l->from_seq);
    store_pg__p_i64(p, l->to_seq);
    store_pg__p_txt(p, l->reason);
    store_pg__p_i64(p, l->at_ms);
}

/* An optional time: NULL when not set (<= 0), as SQLite stores it. */
static void store_pgw__p_time(store_pg_params *p, int64_t v)
{
    if (v > 0)
        store_pg__p_i64(p, v);
    else
        store_pg__p_txt(p, NULL);
}

static void store_pgw__alarm_params(const alarm_event *ev, store_pg_params *p)
{
    const alarm_rec *a = &ev->alarm;
    p->n = 0;
    store_pg__p_i64(p, (int64_t)a->alarm_id);
    store_pg__p_txt(p, a->device_id);
    store_pg__p_txt(p, alarm_condition_name(a->condition));
    store_pg__p_txt(p, alarm_priority_name(a->priority));
    store_pg__p_txt(p, alarm_state_name(a->state));
    if (a->has_value)
        store_pg__p_dbl(p, a->value);
    else
        store_pg__p_txt(p, NULL);
    store_pg__p_dbl(p, a->limit);
    store_pgw__p_time(p, a->started_at);
    store_pgw__p_time(p, a->cleared_at);
    store_pg__p_opt(p, a->acked_at > 0 ? a->acked_by : NULL);
    store_pgw__p_time(p, a->acked_at);
    store_pgw__p_time(p, a->silenced_until);
    store_pg__p_i64(p, a->escalation);
    store_pg__p_i64(p, a->retrospective);
    store_pg__p_i64(p, a->news2_score);
    store_pg__p_i64(p, ev->at);
}

static void store_pgw__alarm_event_params(const alarm_event *ev, store_pg_params *p)
{
    const alarm_rec *a = &ev->alarm;
    p->n = 0;
    store_pg__p_i64(p, (int64_t)a->alarm_id);
    store_pg__p_txt(p, a->device_id);
    store_pg__p_i64(p, ev->at);
    store_pg__p_txt(p, alarm_event_name(ev->kind));
    store_pg__p_opt(p, ev->user);
    store_pg__p_txt(p, alarm_state_name(a->state));
    store_pg__p_txt(p, alarm_priority_name(a->priority));
}

static void store_pgw__setting_params(const store_alarm_setting_rec *r, store_pg_params *p)
{
    const alarm_cond_settings *c = &r->cs;
    p->n = 0;
    store_pg__p_txt(p, r->device_id);
    store_pg__p_txt(p, r->cond < 0 ? "escalation" : alarm_condition_name((alarm_condition)r->cond));
    store_pg__p_i64(p, c->enabled);
    store_pg__p_i64(p, c->latching);
    store_pg__p_dbl(p, c->limit);
    store_pg__p_dbl(p, c->limit_high);
    store_pg__p_dbl(p, c->hysteresis);
    store_pg__p_i64(p, c->onset_ms);
    store_pg__p_i64(p, c->onset_high_ms);
    store_pg__p_i64(p, c->clear_ms);
    store_pg__p_i64(p, r->at_ms);
    store_pg__p_opt(p, r->user);
}

/* ---- sending: pipelined, or one by one (careful mode) ------------------ */

/* A batch in flight. In pipeline mode statements are queued and their
 * expectations noted; in careful mode each runs at once and its outcome is
 * applied right away. */
typedef struct store_pgw__tx {
    store_pg *pg;
    const store_rec *batch;
    int careful;
    size_t nexp;          /* pipeline: expectations queued, not yet read */
    int failed;           /* a statement failed (err, sqlstate set) */
    char sqlstate[6];
    char *err;
    size_t errlen;
} store_pgw__tx;

static void store_pgw__fail(store_pgw__tx *tx, const PGresult *r)
{
    if (tx->failed)
        return; /* the first failure is the reason */
    tx->failed = 1;
    const char *ss = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(tx->sqlstate, sizeof tx->sqlstate, "%s", ss ? ss : "");
    store_pg__errmsg(tx->pg, tx->err, tx->errlen, NULL,
                     r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(tx->pg->w));
}

/* A command's result arrived: applies it. 0, or -1 if it failed. */
static int store_pgw__took(store_pgw__tx *tx, const PGresult *r, const store_pg_expect *x)
{
    if (x->what == STORE_PG_X_RUN && PQresultStatus(r) == PGRES_TUPLES_OK) {
        for (int row = 0; row < PQntuples(r); row++) {
            long long ord = strtoll(PQgetvalue(r, row, 0), NULL, 10);
            if (ord >= 1 && x->rec + (size_t)ord - 1 < tx->pg->batch_max)
                tx->pg->stored[x->rec + (size_t)ord - 1] = 1;
        }
        return 0;
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        store_pgw__fail(tx, r);
        return -1;
    }
    if (x->what == STORE_PG_X_READING)
        tx->pg->stored[x->rec] = strcmp(PQcmdTuples((PGresult *)r), "1") == 0;
    return 0;
}

static int store_pgw__stmt(store_pgw__tx *tx, int s, const store_pg_params *p, size_t rec, int what)
{
    store_pg *pg = tx->pg;
    char name[16];
    store_pgw__name(s, name);
    store_pg_expect x = {.rec = rec, .what = what};
    if (tx->careful) {
        PGresult *r = store_pg__finish(
            pg, &pg->w, pg->w && PQsendQueryPrepared(pg->w, name, p->n, p->v, NULL, NULL, 0), tx->err,
            tx->errlen);
        if (!r) {
            tx->failed = 1; /* the connection is gone: err says why */
            tx->sqlstate[0] = '\0';
            return -1;
        }
        int rc = store_pgw__took(tx, r, &x);
        PQclear(r);
        return rc;
    }
    if (!PQsendQueryPrepared(pg->w, name, p->n, p->v, NULL, NULL, 0)) {
        store_pgw__fail(tx, NULL);
        return -1;
    }
    pg->expect[tx->nexp++] = x;
    return 0;
}

/* Reading batch[i]: marks it not stored (yet) and, for a device not known
 * to have a row, sends the devices upsert first. */
static int store_pgw__touch(store_pgw__tx *tx, size_t i)
{
    store_pg *pg = tx->pg;
    const telemetry_reading *r = &tx->batch[i].u.r;
    pg->stored[i] = 0;
    if (idtable_find(&pg->known, r->device_id))
        return 0;
    store_pg_params p = {0};
    store_pg__p_txt(&p, r->device_id);
    store_pg__p_i64(&p, r->received_ms);
    if (store_pgw__stmt(tx, S_TOUCH, &p, i, STORE_PG_X_TOUCH) != 0)
        return -1;
    char key[TELEMETRY_ID_MAX + 1] = {0};
    memcpy(key, r->device_id, sizeof key - 1);
    void *slot;
    (void)idtable_put(&pg->known, key, &slot); /* not cached: touched again, still right */
    return 0;
}

/* Sends record i's statements. */
static int store_pgw__record(store_pgw__tx *tx, size_t i)
{
    const store_rec *rec = &tx->batch[i];
    store_pg_params p;
    switch (rec->kind) {
    case STORE_REC_READING: {
        const telemetry_reading *r = &rec->u.r;
        if (store_pgw__touch(tx, i) != 0)
            return -1;
        store_pgw__reading_params(r, &p);
        return store_pgw__stmt(tx, S_READING, &p, i, STORE_PG_X_READING);
    }
    case STORE_REC_STATUS:
        store_pgw__status_params(&rec->u.s, &p);
        return store_pgw__stmt(tx, S_STATUS, &p, i, STORE_PG_X_OTHER);
    case STORE_REC_LOST:
        store_pgw__lost_params(&rec->u.l, &p);
        return store_pgw__stmt(tx, S_LOST, &p, i, STORE_PG_X_OTHER);
    case STORE_REC_AUTH: {
        const store_auth_write *w = &rec->u.a;
        if (w->op < STORE_AUTH_USER_ADD || w->op > STORE_AUTH_AUDIT)
            return 0; /* refused at store_put_auth; nothing to do */
        store_pg__auth_params(w, &p);
        if (store_pgw__stmt(tx, S_AUTH0 + (int)w->op, &p, i, STORE_PG_X_OTHER) != 0)
            return -1;
        if (w->op != STORE_AUTH_USER_DEL)
            return 0;
        p.n = 0; /* a user's sessions go with the user */
        store_pg__p_txt(&p, w->v.u.name);
        return store_pgw__stmt(tx, S_DEL_SESSIONS, &p, i, STORE_PG_X_OTHER);
    }
    case STORE_REC_ALARM:
        store_pgw__alarm_params(&rec->u.al, &p);
        if (store_pgw__stmt(tx, S_ALARM, &p, i, STORE_PG_X_OTHER) != 0)
            return -1;
        store_pgw__alarm_event_params(&rec->u.al, &p);
        return store_pgw__stmt(tx, S_ALARM_EVENT, &p, i, STORE_PG_X_OTHER);
    case STORE_REC_ALARM_SETTING:
        store_pgw__setting_params(&rec->u.as, &p);
        return store_pgw__stmt(tx, S_SETTING, &p, i, STORE_PG_X_OTHER);
    default:
        return 0;
    }
}

static int store_pgw__collect(store_pgw__tx *tx);

/* Pipeline mode: reads the results back once PIPE_CHUNK statements are
 * waiting, so the server never blocks writing them while we write more. */
static int store_pgw__drain(store_pgw__tx *tx)
{
    return !tx->careful && tx->nexp >= PIPE_CHUNK ? store_pgw__collect(tx) : 0;
}

/* Appends one array element: NULL, a number, or (quoted) a text. */
static void store_pgw__elem(sbuf *b, const char *v, int text)
{
    if (b->len > 1)
        sbuf_add(b, ",", 1);
    if (!v) {
        sbuf_adds(b, "NULL");
        return;
    }
    if (!text) {
        sbuf_adds(b, v);
        return;
    }
    sbuf_add(b, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            sbuf_add(b, "\\", 1);
        sbuf_add(b, p, 1);
    }
    sbuf_add(b, "\"", 1);
}

/* Sends the readings batch[i0 .. i0 + len) as one S_RUN, after a touch for
 * each device not known yet (in queue order: first_seen is its first
 * reading's). */
static int store_pgw__run(store_pgw__tx *tx, size_t i0, size_t len)
{
    store_pg *pg = tx->pg;
    store_pg_params p;
    for (size_t i = i0; i < i0 + len; i++)
        if (store_pgw__touch(tx, i) != 0 || store_pgw__drain(tx) != 0)
            return -1;
    for (int c = 0; c < STORE_PG_RUN_COLS; c++) {
        sbuf_reset(&pg->run[c]);
        sbuf_add(&pg->run[c], "{", 1);
    }
    for (size_t i = i0; i < i0 + len; i++) {
        store_pgw__reading_params(&tx->batch[i].u.r, &p);
        for (int c = 0; c < STORE_PG_RUN_COLS; c++)
            store_pgw__elem(&pg->run[c], p.v[c], c == 0 || c == 14 || c == 15);
    }
    p.n = 0;
    for (int c = 0; c < STORE_PG_RUN_COLS; c++) {
        sbuf_add(&pg->run[c], "}", 1);
        if (!sbuf_ok(&pg->run[c])) {
            snprintf(tx->err, tx->errlen, "out of memory for a run of %zu readings", len);
            tx->failed = 1;
            return -1;
        }
        store_pg__p_txt(&p, sbuf_data(&pg->run[c]));
    }
    /* The arrays stay in pg->run until the next run: libpq copies them into
     * its output buffer at the send. */
    return store_pgw__stmt(tx, S_RUN, &p, i0, STORE_PG_X_RUN);
}

/* Waits (bounded) until the next PQgetResult on w will not block. A hung
 * backend drops w (NULL): the batch fails as on a lost connection. */
static int store_pgw__await(store_pgw__tx *tx)
{
    char msg[256];
    if (store_pg__await(tx->pg, &tx->pg->w, msg, sizeof msg) == STORE_PG_WAIT_OK)
        return 0;
    if (!tx->failed) {
        tx->failed = 1;
        tx->sqlstate[0] = '\0';
        snprintf(tx->err, tx->errlen, "%s", msg);
    }
    return -1;
}

/* Reads the results of the queued expectations (pipeline mode). */
static int store_pgw__collect(store_pgw__tx *tx)
{
    store_pg *pg = tx->pg;
    if (!PQsendFlushRequest(pg->w) || PQflush(pg->w) < 0) { /* 1: the rest goes in the waits */
        store_pgw__fail(tx, NULL);
        return -1;
    }
    for (size_t k = 0; k < tx->nexp; k++) {
        if (store_pgw__await(tx) != 0)
            return -1;
        PGresult *r = PQgetResult(pg->w);
        if (!r) {
            store_pgw__fail(tx, NULL);
            return -1;
        }
        int rc = store_pgw__took(tx, r, &pg->expect[k]);
        PQclear(r);
        if (store_pgw__await(tx) != 0)
            return -1;
        PGresult *end = PQgetResult(pg->w); /* NULL ends each command's results */
        if (end) {
            PQclear(end);
            if (rc == 0) {
                snprintf(tx->err, tx->errlen, "unexpected extra result in pipeline");
                tx->failed = 1;
                rc = -1;
            }
        }
        if (rc != 0)
            return -1;
    }
    tx->nexp = 0;
    return 0;
}

/* Ends the pipeline: a Sync, then every result up to its PGRES_PIPELINE_SYNC
 * (bounded: at most what was queued, then the sync). 0 if all went well. */
static int store_pgw__sync(store_pgw__tx *tx)
{
    store_pg *pg = tx->pg;
    if (!PQpipelineSync(pg->w)) {
        store_pgw__fail(tx, NULL);
        return -1;
    }
    size_t k = 0, bound = 2 * tx->nexp + 8;
    for (size_t loops = 0; loops < bound; loops++) {
        if (store_pgw__await(tx) != 0)
            return -1;
        PGresult *r = PQgetResult(pg->w);
        if (!r) {
            if (PQstatus(pg->w) == CONNECTION_BAD) {
                store_pgw__fail(tx, NULL);
                return -1;
            }
            continue; /* the end of one command's results */
        }
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return tx->failed ? -1 : 0;
        }
        if (s != PGRES_PIPELINE_ABORTED && k < tx->nexp)
            (void)store_pgw__took(tx, r, &pg->expect[k]);
        else if (s == PGRES_FATAL_ERROR)
            store_pgw__fail(tx, r);
        k++;
        PQclear(r);
    }
    if (!tx->failed) {
        snprintf(tx->err, tx->errlen, "pipeline sync not seen");
        tx->failed = 1;
    }
    return -1;
}

/* Notes batch[i] (stored) as its device's latest reading of the batch, by
 * receive time, later records winning ties. */
static void store_pgw__last_note(store_pg *pg, const store_rec *batch, size_t i)
{
    store_pg_last e = {.idx = i};
    memcpy(e.id, batch[i].u.r.device_id, sizeof e.id - 1);
    void *slot;
    if (idtable_put(&pg->lasts, &e, &slot) == IDTABLE_EEXIST) {
        store_pg_last *l = slot;
        if (batch[i].u.r.received_ms >= batch[l->idx].u.r.received_ms)
            l->idx = i;
    }
}

/* Sends one S_LAST per device touched. */
static int store_pgw__lasts(store_pgw__tx *tx, size_t n)
{
    store_pg *pg = tx->pg;
    idtable_clear(&pg->lasts);
    for (size_t i = 0; i < n; i++)
        if (tx->batch[i].kind == STORE_REC_READING && pg->stored[i] == 1)
            store_pgw__last_note(pg, tx->batch, i);
    size_t it = 0;
    const store_pg_last *l;
    while ((l = idtable_next(&pg->lasts, &it))) {
        store_pg_params p;
        store_pgw__reading_params(&tx->batch[l->idx].u.r, &p);
        if (store_pgw__stmt(tx, S_LAST, &p, l->idx, STORE_PG_X_OTHER) != 0 || store_pgw__drain(tx) != 0)
            return -1;
    }
    return 0;
}

static int store_pgw__plain(store_pg *pg, const char *sql, char *err, size_t errlen)
{
    return store_pg__exec(pg, &pg->w, sql, err, errlen);
}

/* On a new UTC day, the partitions for it and the days ahead, in a
 * transaction of their own under the schema lock. A failure is logged and
 * not fatal: the default partition takes the rows meanwhile. */
static void store_pgw__days(store_pg *pg, int64_t now_ms)
{
    int64_t day = now_ms / STORE_PG_DAY_MS;
    if (day == pg->parts_day)
        return;
    char err[256], sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld)", (long long)STORE_PG_LOCK_SCHEMA);
    if (store_pg__exec(pg, &pg->w, "BEGIN", err, sizeof err) == 0 &&
        store_pg__exec(pg, &pg->w, sql, err, sizeof err) == 0 &&
        store_pg__ensure_partitions(pg, &pg->w, day, err, sizeof err) == 0 &&
        store_pg__exec(pg, &pg->w, "COMMIT", err, sizeof err) == 0) {
        pg->parts_day = day;
        return;
    }
    LOG_W(TAG, "%s: partitions for a new day not created (rows go to the default partition): %s",
          pg->label, err);
    if (PQstatus(pg->w) == CONNECTION_OK && PQtransactionStatus(pg->w) != PQTRANS_IDLE)
        (void)store_pg__exec(pg, &pg->w, "ROLLBACK", err, sizeof err);
}

/* SQLSTATE classes that mean "this record", not "the database". */
static int store_pgw__is_record_error(const char *sqlstate)
{
    return !strncmp(sqlstate, "22", 2) || !strncmp(sqlstate, "23", 2);
}

static void store_pgw__abort(store_pg *pg)
{
    idtable_clear(&pg->known); /* device rows of this transaction are gone */
    idtable_clear(&pg->lasts);
    if (PQpipelineStatus(pg->w) != PQ_PIPELINE_OFF)
        (void)PQexitPipelineMode(pg->w); /* fails only with results pending: then the reset below */
    if (PQstatus(pg->w) == CONNECTION_OK && PQtransactionStatus(pg->w) != PQTRANS_IDLE) {
        char msg[128];
        if (store_pgw__plain(pg, "ROLLBACK", msg, sizeof msg) != 0)
            LOG_D(TAG, "rollback: %s", msg);
    }
    if (PQstatus(pg->w) != CONNECTION_OK) {
        pg->w_ready = 0; /* store_pgw__ready resets it at the next call */
    } else if (PQpipelineStatus(pg->w) != PQ_PIPELINE_OFF) {
        pg->w_ready = 0; /* stuck mid-pipeline: a fresh session at the next call */
        PQfinish(pg->w);
        pg->w = NULL;
    }
}

/* The whole batch in one pipelined transaction. */
static int store_pgw__pipelined(store_pgw__tx *tx, size_t n)
{
    store_pg *pg = tx->pg;
    if (!PQenterPipelineMode(pg->w)) {
        store_pgw__fail(tx, NULL);
        return -1;
    }
    tx->nexp = 0;
    if (!PQsendQueryParams(pg->w, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) {
        store_pgw__fail(tx, NULL);
        return -1;
    }
    pg->expect[tx->nexp++] = (store_pg_expect){.what = STORE_PG_X_OTHER};
    for (size_t i = 0; i < n && !tx->failed;) {
        size_t j = i;
        while (j < n && tx->batch[j].kind == STORE_REC_READING)
            j++;
        if (j > i) { /* a run of readings: one statement */
            if (store_pgw__run(tx, i, j - i) != 0)
                break;
            i = j;
        } else if (store_pgw__record(tx, i++) != 0) {
            break;
        }
        if (store_pgw__drain(tx) != 0)
            break;
    }
    if (!tx->failed)
        (void)store_pgw__collect(tx);
    if (!tx->failed && store_pgw__lasts(tx, n) == 0 &&
        PQsendQueryParams(pg->w, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        pg->expect[tx->nexp++] = (store_pg_expect){.what = STORE_PG_X_OTHER};
    else if (!tx->failed)
        store_pgw__fail(tx, NULL);
    int rc = store_pgw__sync(tx);
    if (rc == 0 && !PQexitPipelineMode(pg->w)) {
        store_pgw__fail(tx, NULL);
        rc = -1;
    }
    /* A COMMIT that failed leaves nothing; it is not a record's fault. */
    return rc;
}

/* The batch again, each record under a savepoint; refused ones dropped. */
static int store_pgw__careful(store_pgw__tx *tx, size_t n, uint64_t *rejected)
{
    store_pg *pg = tx->pg;
    tx->careful = 1;
    idtable_clear(&pg->known);
    if (store_pgw__plain(pg, "BEGIN", tx->err, tx->errlen) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (store_pgw__plain(pg, "SAVEPOINT r", tx->err, tx->errlen) != 0)
            return -1;
        tx->failed = 0;
        if (store_pgw__record(tx, i) == 0)
            continue;
        if (!store_pgw__is_record_error(tx->sqlstate))
            return -1;
        /* Only this record is refused; retrying it would wedge the store. */
        (*rejected)++;
        LOG_W(TAG, "record for %s refused by the database, dropped: %s",
              store_rec_device(&tx->batch[i]), tx->err);
        pg->stored[i] = 2; /* refused */
        idtable_clear(&pg->known); /* its device row may have gone with it */
        char msg[128];
        if (store_pgw__plain(pg, "ROLLBACK TO SAVEPOINT r", msg, sizeof msg) != 0) {
            snprintf(tx->err, tx->errlen, "%s", msg);
            return -1;
        }
    }
    tx->failed = 0;
    if (store_pgw__lasts(tx, n) != 0 || store_pgw__plain(pg, "COMMIT", tx->err, tx->errlen) != 0)
        return -1;
    return 0;
}

store_wr store_pg__write_batch(void *impl, const store_rec *batch, size_t n,
                               store_batch_result *res, char *err, size_t errlen)
{
    store_pg *pg = impl;
    memset(res, 0, sizeof *res);
    if (n > pg->batch_max) {
        snprintf(err, errlen, "batch of %zu over the engine's %zu", n, pg->batch_max);
        return STORE_WR_RETRY;
    }
    if (store_pgw__ready(pg, err, errlen) != 0)
        return STORE_WR_RETRY;
    store_pgw__days(pg, vclock_wall_ms()); /* also without retention, which would do it in prune */
    store_pgw__tx tx = {.pg = pg, .batch = batch, .err = err, .errlen = errlen};
    uint64_t rejected = 0;
    if (store_pgw__pipelined(&tx, n) != 0) {
        int careful = PQstatus(pg->w) == CONNECTION_OK && store_pgw__is_record_error(tx.sqlstate);
        store_pgw__abort(pg);
        if (!careful)
            return STORE_WR_RETRY;
        if (store_pgw__careful(&tx, n, &rejected) != 0) {
            store_pgw__abort(pg);
            return STORE_WR_RETRY;
        }
    }
    uint64_t readings = 0, stored = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        if (batch[i].kind != STORE_REC_READING)
            continue;
        readings++;
        stored += pg->stored[i] == 1;
        refused += pg->stored[i] == 2;
    }
    idtable_clear(&pg->lasts);
    res->stored = stored;
    res->rejected = rejected;
    res->duplicates = readings - stored - refused; /* a refused reading is no duplicate */
    return STORE_WR_OK;
}

/* ---- retention -------------------------------------------------------- */

/* A tuples-affected count of a command result, -1 on failure. */
static int64_t store_pgw__count(store_pg *pg, const char *sql, const store_pg_params *p, char *err,
                                size_t errlen)
{
    PGresult *r = store_pg__exec_params(pg, &pg->w, sql, p, err, errlen);
    if (!r)
        return -1; /* err set */
    ExecStatusType s = PQresultStatus(r);
    int64_t n = -1;
    if (s == PGRES_COMMAND_OK)
        n = strtoll(PQcmdTuples(r), NULL, 10);
    else if (s == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) >= 1)
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        store_pg__errmsg(pg, err, errlen, NULL, PQresultErrorMessage(r));
    PQclear(r);
    return n;
}

/* Drops the day partitions that end at or before cutoff; adds their rows
 * to *deleted. */
static int store_pgw__drop_days(store_pg *pg, int64_t cutoff, int64_t *deleted, char *err,
                                size_t errlen)
{
    PGresult *r = store_pg__exec_params(pg, &pg->w,
                                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                                        "ON c.oid = i.inhrelid WHERE i.inhparent = 'readings'::regclass "
                                        "AND c.relname ~ '^readings_p[0-9]{8}$' ORDER BY 1",
                                        NULL, err, errlen);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (r)
            store_pg__errmsg(pg, err, errlen, "listing partitions", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *name = PQgetvalue(r, i, 0);
        struct tm tm = {0};
        if (sscanf(name, "readings_p%4d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
            continue;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        int64_t hi = ((int64_t)timegm(&tm) + 86400) * 1000;
        if (hi > cutoff)
            break; /* sorted by day: the rest are newer */
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", name);
        int64_t n = store_pgw__count(pg, sql, NULL, err, errlen);
        snprintf(sql, sizeof sql, "DROP TABLE %s", name);
        if (n < 0 || store_pgw__plain(pg, sql, err, errlen) != 0) {
            rc = -1;
            break;
        }
        *deleted += n;
        LOG_I(TAG, "%s: retention dropped partition %s (%lld readings)", pg->label, name, (long long)n);
    }
    PQclear(r);
    return rc;
}

static int64_t store_pgw__prune_tx(store_pg *pg, int64_t cutoff, int64_t now_ms, int64_t budget,
                                   char *err, size_t errlen)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_xact_lock(%lld)::int", (long long)STORE_PG_LOCK_PRUNE);
    int64_t got = store_pgw__count(pg, sql, NULL, err, errlen);
    if (got <= 0)
        return got; /* 0: another vigild is pruning this database right now */
    int64_t deleted = 0;
    if (store_pgw__drop_days(pg, cutoff, &deleted, err, errlen) != 0)
        return -1;
    store_pg_params p = {0};
    store_pg__p_i64(&p, cutoff);
    store_pg__p_i64(&p, budget > 0 ? budget : 1);
    /* The day that holds the cutoff, and the default partition, row by row.
     * (tableoid, ctid): a ctid alone repeats across partitions. */
    int64_t n = store_pgw__count(pg, "DELETE FROM readings WHERE (tableoid, ctid) IN "
                                     "(SELECT tableoid, ctid FROM readings WHERE t < $1 LIMIT $2)",
                                 &p, err, errlen);
    if (n < 0)
        return -1;
    deleted += n;
    p.n = 1;
    store_pg__p_i64(&p, (budget > 0 ? budget : 1) * SEQ_PRUNE_FACTOR);
    if (store_pgw__count(pg, "DELETE FROM reading_seqs WHERE ctid IN "
                             "(SELECT ctid FROM reading_seqs WHERE t < $1 LIMIT $2)",
                         &p, err, errlen) < 0)
        return -1;
    p.n = 1;
    store_pg__p_i64(&p, AUDIT_PRUNE_CHUNK);
    if (store_pgw__count(pg, "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE t < $1 LIMIT $2)",
                         &p, err, errlen) < 0)
        return -1;
    p.n = 0;
    store_pg__p_i64(&p, now_ms);
    if (store_pgw__count(pg, "DELETE FROM sessions WHERE expires_at < $1", &p, err, errlen) < 0)
        return -1;
    return deleted;
}

int64_t store_pg__prune(void *impl, int64_t cutoff_ms, int64_t now_ms, int64_t budget, char *err,
                        size_t errlen)
{
    store_pg *pg = impl;
    if (store_pgw__ready(pg, err, errlen) != 0)
        return -1;
    store_pgw__days(pg, now_ms);
    if (store_pgw__plain(pg, "BEGIN", err, errlen) != 0) {
        store_pgw__abort(pg);
        return -1;
    }
    int64_t n = store_pgw__prune_tx(pg, cutoff_ms, now_ms, budget, err, errlen);
    if (n < 0 || store_pgw__plain(pg, "COMMIT", err, errlen) != 0) {
        store_pgw__abort(pg);
        return -1;
    }
    return n;
}
