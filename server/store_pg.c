/* store_pg — the PostgreSQL engine of the store (store_backend.h) over
 * libpq: connections, open/close, the schema and its migrations, the daily
 * partitions of readings, and the backend table. Writes are in
 * store_pg_write.c, reads and admin calls in store_pg_read.c; threads and
 * ownership in store_pg_int.h.
 *
 * Schema versions live in vigil_schema(version); migrations[] holds the
 * steps, applied in order in one transaction at open under an advisory
 * transaction lock, so several vigild opening one database at once migrate
 * it exactly once.
 *
 * readings is partitioned by RANGE (t), one partition per UTC day
 * (readings_pYYYYMMDD), created for today and the next STORE_PG_PARTS_AHEAD
 * days at open and again whenever prune sees a new day; readings_default
 * catches any t without a partition (a device clock far off, old resends),
 * so no batch fails for want of one. Retention drops whole day partitions
 * below the cutoff and deletes row by row only inside the day that holds
 * it and in the default partition.
 *
 * Idempotence on (device, boot, seq): a unique index on a partitioned
 * table must contain the partition key t, and t is not stable across a
 * resend — a reading without ts gets t = its receive time, new on every
 * delivery — so (device, boot, seq, t) would store a resend twice. Instead
 * a plain table reading_seqs(device, boot, seq) PRIMARY KEY, t holds one
 * row per stored reading that has a seq; a reading is inserted only if its
 * key row was (ON CONFLICT DO NOTHING, in the same statement). Readings
 * without seq (NULL) never enter it, so they are never deduplicated, as in
 * SQLite. Cost: one more index entry per reading and, on retention, a row
 * DELETE from reading_seqs (by its t index) where the readings themselves
 * go by DROP TABLE. It also serves the completeness islands at start-up. */
#include "store_pg.h"
#include "store_pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pgwait.h"
#include "vclock.h"

#define TAG STORE_TAG
#define CONNECT_TIMEOUT_S "10"
#define STORE_PG__STR2(x) #x
#define STORE_PG__STR(x) STORE_PG__STR2(x)

/* Schema steps: migrations[i] takes version i to i + 1. Append only; never
 * edit a released step. Text ordering is always COLLATE "C" in queries (the
 * database's locale is not ours), integers are bigint (epoch ms). */
static const char *const migrations[] = {
    /* 1: the whole store as SQLite's versions 1-4 have it. */
    "CREATE TABLE devices ("
    "  key bigserial PRIMARY KEY,"
    "  id text NOT NULL UNIQUE,"
    "  first_seen bigint NOT NULL,"
    "  last_seen bigint NOT NULL,"
    "  online integer,"            /* NULL: never reported a status */
    "  status_at bigint,"          /* when online last changed */
    "  fw text, interval_ms bigint, boot bigint,"
    /* A copy of the latest reading (by receive time); NULL last_received:
     * none yet. Same columns and order as readings. */
    "  last_t bigint, last_received bigint, last_ts bigint, last_uptime bigint,"
    "  last_boot bigint, last_seq bigint, last_object_temp float8, last_ambient_temp float8,"
    "  last_heart_rate float8, last_spo2 float8, last_battery float8, last_rssi bigint,"
    "  last_flags bigint, last_sensor_type text, last_fw text"
    ");"
    "CREATE SEQUENCE readings_id_seq;"
    "CREATE TABLE readings ("
    "  device bigint NOT NULL,"    /* devices.key (no FK: partitions churn) */
    "  t bigint NOT NULL,"         /* ts if the device sent one, else received */
    "  received bigint NOT NULL, ts bigint, uptime bigint,"
    "  boot bigint NOT NULL DEFAULT 0," /* 0 when absent */
    "  seq bigint,"                /* NULL when absent */
    "  object_temp float8, ambient_temp float8, heart_rate float8, spo2 float8,"
    "  battery float8, rssi bigint,"
    "  flags bigint NOT NULL,"     /* present bits | validity << 16 */
    "  sensor_type text, fw text,"
    "  id bigint NOT NULL DEFAULT nextval('readings_id_seq')" /* arrival order, for ties in t */
    ") PARTITION BY RANGE (t);"
    "CREATE INDEX readings_device_t ON readings(device, t);"
    "CREATE TABLE readings_default PARTITION OF readings DEFAULT;"
    "CREATE INDEX readings_default_t ON readings_default(t);"
    /* Idempotence keys (see the header comment). */
    "CREATE TABLE reading_seqs ("
    "  device bigint NOT NULL, boot bigint NOT NULL, seq bigint NOT NULL, t bigint NOT NULL,"
    "  PRIMARY KEY (device, boot, seq)"
    ");"
    "CREATE INDEX reading_seqs_t ON reading_seqs(t);"
    "CREATE TABLE lost_ranges ("
    "  device bigint NOT NULL REFERENCES devices(key),"
    "  boot bigint NOT NULL, from_seq bigint NOT NULL, to_seq bigint NOT NULL,"
    "  reason text NOT NULL, marked_at bigint NOT NULL"
    ");"
    "CREATE INDEX lost_ranges_device ON lost_ranges(device, boot, from_seq);"
    "CREATE TABLE users ("
    "  name text PRIMARY KEY, role text NOT NULL, pwhash text NOT NULL, created_at bigint NOT NULL"
    ");"
    "CREATE TABLE tokens ("
    "  id text PRIMARY KEY, key text NOT NULL UNIQUE, name text NOT NULL, role text NOT NULL,"
    "  created_at bigint NOT NULL, last_used_at bigint"
    ");"
    "CREATE TABLE sessions ("
    "  key text PRIMARY KEY, user_name text NOT NULL, csrf text NOT NULL,"
    "  created_at bigint NOT NULL, last_used_at bigint NOT NULL, expires_at bigint NOT NULL"
    ");"
    "CREATE TABLE audit ("
    "  id bigserial PRIMARY KEY, t bigint NOT NULL, user_name text, address text,"
    "  action text NOT NULL, target text, outcome text NOT NULL, detail text"
    ");"
    "CREATE INDEX audit_t ON audit(t);"
    "CREATE TABLE alarms ("
    "  alarm_id bigint PRIMARY KEY, device_id text NOT NULL, condition text NOT NULL,"
    "  priority text NOT NULL, state text NOT NULL, value float8, lim float8,"
    "  started_at bigint, cleared_at bigint, acked_by text, acked_at bigint,"
    "  silenced_until bigint, escalation bigint NOT NULL DEFAULT 0,"
    "  retrospective integer NOT NULL DEFAULT 0, news2 integer NOT NULL DEFAULT 0,"
    "  updated_at bigint NOT NULL"
    ");"
    "CREATE INDEX alarms_open ON alarms(state) WHERE state <> 'cleared';"
    "CREATE INDEX alarms_device ON alarms(device_id, started_at);"
    "CREATE TABLE alarm_events ("
    "  id bigserial PRIMARY KEY, alarm_id bigint NOT NULL, device_id text NOT NULL,"
    "  t bigint NOT NULL, kind text NOT NULL, user_name text, state text NOT NULL,"
    "  priority text NOT NULL"
    ");"
    "CREATE INDEX alarm_events_alarm ON alarm_events(alarm_id);"
    "CREATE TABLE alarm_settings ("
    "  device_id text NOT NULL, condition text NOT NULL,"
    "  enabled integer NOT NULL, latching integer NOT NULL,"
    "  lim float8 NOT NULL, lim_high float8 NOT NULL, hysteresis float8 NOT NULL,"
    "  onset_ms bigint NOT NULL, onset_high_ms bigint NOT NULL, clear_ms bigint NOT NULL,"
    "  updated_at bigint NOT NULL, updated_by text,"
    "  PRIMARY KEY (device_id, condition)"
    ");",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

/* ---- messages without secrets ----------------------------------------- */

void store_pg__errmsg(const store_pg *pg, char *err, size_t errlen, const char *prefix,
                      const char *msg)
{
    if (!err || !errlen)
        return;
    snprintf(err, errlen, "%s%s%s", prefix ? prefix : "", prefix && *prefix ? ": " : "",
             msg && *msg ? msg : "unknown error");
    /* One line: libpq's messages end in '\n' and may hold a DETAIL line. */
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = *(p + 1) ? ' ' : '\0';
    /* libpq does not echo passwords today; make sure of it anyway. */
    const char *pw = pg ? pg->password : NULL;
    size_t pwlen = pw ? strlen(pw) : 0;
    if (pwlen == 0)
        return;
    /* Each hit becomes "***"; the search goes on after it (bounded by the
     * message's length, whatever the password is). */
    char *from = err, *hit;
    while ((hit = strstr(from, pw)) != NULL) {
        size_t keep = pwlen < 3 ? pwlen : 3;
        memset(hit, '*', keep);
        memmove(hit + keep, hit + pwlen, strlen(hit + pwlen) + 1);
        from = hit + keep;
    }
}

/* label = "postgresql host:port/dbname" of the URL; *password (if
 * password is not NULL) = a copy of its password, or NULL. */
static int store_pg__describe(const char *url, char *label, size_t n, char **password, char *err,
                              size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        snprintf(label, n, "postgresql (invalid URL)");
        store_pg__errmsg(NULL, err, errlen, "invalid PostgreSQL URL", perr ? perr : "out of memory");
        PQfreemem(perr);
        return -1;
    }
    const char *host = NULL, *port = NULL, *db = NULL, *pw = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (!strcmp(o->keyword, "host") || (!host && !strcmp(o->keyword, "hostaddr")))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            db = o->val;
        else if (!strcmp(o->keyword, "password"))
            pw = o->val;
    }
    snprintf(label, n, "postgresql %s:%s/%s", host ? host : "(default host)", port ? port : "5432",
             db ? db : "(default db)");
    int rc = 0;
    if (password && pw && *pw && !(*password = strdup(pw))) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    PQconninfoFree(opts);
    return rc;
}

void store_pg_log_name(const char *path, char *buf, size_t n)
{
    if (!buf || !n)
        return;
    if (!store_path_is_pg(path)) {
        snprintf(buf, n, "%s", path ? path : "");
        return;
    }
    char err[8];
    (void)store_pg__describe(path, buf, n, NULL, err, sizeof err); /* label set either way */
}

/* Replaces s[0..len) by "***"; the bytes freed after the string's NUL
 * are zeroed. */
static void store_pg__mask(char *s, size_t len)
{
    static const char stars[] = "***";
    size_t tail = strlen(s + len) + 1; /* with the NUL */
    if (len < sizeof stars - 1) {
        memset(s, '*', len); /* too short to shift: masked in place */
        return;
    }
    memcpy(s, stars, sizeof stars - 1);
    memmove(s + sizeof stars - 1, s + len, tail);
    memset(s + sizeof stars - 1 + tail, 0, len - (sizeof stars - 1));
}

int store_pg_hide_password(char *arg)
{
    if (!arg)
        return 0;
    char *url = strstr(arg, "postgresql://");
    if (!url)
        url = strstr(arg, "postgres://");
    if (!url)
        return 0;
    int hidden = 0;
    char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    char *at = NULL; /* userinfo ends at the authority's last '@' */
    for (char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    if (at) {
        char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon && at > colon + 1) {
            store_pg__mask(colon + 1, (size_t)(at - colon - 1));
            hidden = 1;
        }
    }
    char *q = strchr(auth, '?');
    for (char *p = q; p && *p && *p != '#';) {
        p++; /* past '?' or '&' */
        size_t plen = strcspn(p, "&#");
        if (plen > 9 && !strncmp(p, "password=", 9)) {
            store_pg__mask(p + 9, plen - 9);
            hidden = 1;
            plen = strcspn(p, "&#");
        }
        p += plen;
    }
    return hidden;
}

/* ---- parameters ------------------------------------------------------- */

void store_pg__p_i64(store_pg_params *p, int64_t x)
{
    if (p->n >= STORE_PG_PARAMS_MAX)
        return; /* callers' statements stay below the bound */
    snprintf(p->buf[p->n], sizeof p->buf[p->n], "%lld", (long long)x);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

void store_pg__p_dbl(store_pg_params *p, double x)
{
    if (p->n >= STORE_PG_PARAMS_MAX)
        return;
    snprintf(p->buf[p->n], sizeof p->buf[p->n], "%.17g", x); /* round-trips exactly */
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

void store_pg__p_txt(store_pg_params *p, const char *s)
{
    if (p->n < STORE_PG_PARAMS_MAX)
        p->v[p->n++] = s;
}

void store_pg__p_opt(store_pg_params *p, const char *s)
{
    store_pg__p_txt(p, s && *s ? s : NULL);
}

/* ---- connections ------------------------------------------------------ */

static void store_pg__quiet(void *arg, const char *msg)
{
    (void)arg; /* NOTICEs ("already exists, skipping") are not news */
    (void)msg;
}

int store_pg__connect(const store_pg *pg, const char *app, PGconn **out, char *err, size_t errlen)
{
    /* Ours first, then the URL: anything the URL sets wins. */
    /* tcp_user_timeout bounds a write the server never acknowledges (a
     * partition mid-batch): without it Linux retries for ~15 minutes while
     * the store still looks writable. Keepalives cover an idle connection. */
    static const char *const keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
                                       "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                                       "options", "application_name", "dbname", NULL};
    const char *vals[] = {CONNECT_TIMEOUT_S, "1", "30", "10", "3", "30000",
                          "-c statement_timeout=" STORE_PG__STR(STORE_PG_STATEMENT_TIMEOUT_MS)
                          " -c client_min_messages=warning",
                          app, pg->conninfo, NULL};
    *out = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(err, errlen, "%s: out of memory", pg->label);
        return -1;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        store_pg__errmsg(pg, err, errlen, pg->label, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    /* Non-blocking: a send never waits on a full socket, so every wait is
     * store_pg__await's, bounded. */
    if (PQsetnonblocking(c, 1) != 0) {
        store_pg__errmsg(pg, err, errlen, pg->label, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PQsetNoticeProcessor(c, store_pg__quiet, NULL);
    *out = c;
    return 0;
}

int store_pg__ensure(const store_pg *pg, const char *app, PGconn **c, char *err, size_t errlen)
{
    if (*c && PQstatus(*c) == CONNECTION_OK)
        return 0;
    if (*c) {
        PQreset(*c); /* blocking, bounded by connect_timeout */
        if (PQstatus(*c) == CONNECTION_OK && PQsetnonblocking(*c, 1) == 0) {
            PQsetNoticeProcessor(*c, store_pg__quiet, NULL);
            LOG_I(TAG, "%s: reconnected", pg->label);
            return 0;
        }
        store_pg__errmsg(pg, err, errlen, pg->label, PQerrorMessage(*c));
        return -1;
    }
    return store_pg__connect(pg, app, c, err, errlen);
}

store_pg_wait store_pg__await(const store_pg *pg, PGconn **c, char *err, size_t errlen)
{
    if (!*c) {
        snprintf(err, errlen, "%s: connection dropped", pg->label);
        return STORE_PG_WAIT_BROKEN;
    }
    switch (pgwait_ready(*c, vclock_mono_ms() + pg->answer_ms)) {
    case PGWAIT_OK:
        return STORE_PG_WAIT_OK;
    case PGWAIT_TIMEOUT:
        /* Alive for TCP (keepalives and tcp_user_timeout see nothing
         * wrong), silent for us: drop it as if lost. */
        snprintf(err, errlen,
                 "%s: no answer from the server in %d ms (backend hung or stopped?); "
                 "connection dropped (pid %d)",
                 pg->label, pg->answer_ms, PQbackendPID(*c));
        PQfinish(*c); /* non-blocking: its goodbye never waits */
        *c = NULL;
        return STORE_PG_WAIT_HUNG;
    case PGWAIT_POLL:
        snprintf(err, errlen, "%s: poll: %s", pg->label, strerror(errno));
        return STORE_PG_WAIT_BROKEN;
    case PGWAIT_CONN:
        break;
    }
    store_pg__errmsg(pg, err, errlen, pg->label, PQerrorMessage(*c));
    return STORE_PG_WAIT_BROKEN;
}

PGresult *store_pg__finish(const store_pg *pg, PGconn **c, int sent, char *err, size_t errlen)
{
    if (!sent) {
        if (*c)
            store_pg__errmsg(pg, err, errlen, pg->label, PQerrorMessage(*c));
        else
            snprintf(err, errlen, "%s: connection dropped", pg->label);
        return NULL;
    }
    PGresult *last = NULL;
    /* Bounded: a command has as many results as statements, and each wait
     * is bounded; the cap guards a server that never ends them. */
    for (int k = 0; k < 4096; k++) {
        if (store_pg__await(pg, c, err, errlen) != STORE_PG_WAIT_OK) {
            PQclear(last);
            return NULL;
        }
        PGresult *r = PQgetResult(*c);
        if (!r)
            return last;
        PQclear(last);
        last = r;
        if (PQstatus(*c) == CONNECTION_BAD)
            return last;
    }
    return last;
}

PGresult *store_pg__exec_params(const store_pg *pg, PGconn **c, const char *sql,
                                const store_pg_params *p, char *err, size_t errlen)
{
    int sent = *c && PQsendQueryParams(*c, sql, p ? p->n : 0, NULL, p ? p->v : NULL, NULL, NULL, 0);
    return store_pg__finish(pg, c, sent, err, errlen);
}

int store_pg__exec(const store_pg *pg, PGconn **c, const char *sql, char *err, size_t errlen)
{
    PGresult *res = store_pg__finish(pg, c, *c && PQsendQuery(*c, sql), err, errlen);
    if (!res)
        return -1;
    ExecStatusType s = PQresultStatus(res);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        store_pg__errmsg(pg, err, errlen, NULL, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

/* ---- partitions ------------------------------------------------------- */

int store_pg__ensure_partitions(const store_pg *pg, PGconn **c, int64_t day, char *err,
                                size_t errlen)
{
    for (int64_t d = day; d <= day + STORE_PG_PARTS_AHEAD; d++) {
        time_t secs = (time_t)(d * 86400);
        struct tm tm;
        if (!gmtime_r(&secs, &tm)) {
            snprintf(err, errlen, "partition day %lld out of range", (long long)d);
            return -1;
        }
        char name[32], sql[512];
        strftime(name, sizeof name, "readings_p%Y%m%d", &tm);
        long long lo = (long long)(d * STORE_PG_DAY_MS), hi = lo + STORE_PG_DAY_MS;
        /* A day whose rows already sit in the default partition cannot get
         * a partition (PostgreSQL refuses); they stay there, and retention
         * deletes them row by row. */
        snprintf(sql, sizeof sql,
                 "DO $$BEGIN IF to_regclass('%s') IS NULL AND NOT EXISTS ("
                 "SELECT 1 FROM readings_default WHERE t >= %lld AND t < %lld) THEN "
                 "CREATE TABLE %s PARTITION OF readings FOR VALUES FROM (%lld) TO (%lld); "
                 "END IF; END$$",
                 name, lo, hi, name, lo, hi);
        char msg[256];
        if (store_pg__exec(pg, c, sql, msg, sizeof msg) != 0) {
            snprintf(err, errlen, "creating partition %s: %s", name, msg);
            return -1;
        }
    }
    return 0;
}

/* ---- open / close ----------------------------------------------------- */

static int64_t store_pg__today(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec / 86400;
}

/* Brings the schema to SCHEMA_VERSION and today's partitions into being,
 * all in one transaction under the schema lock. */
static int store_pg__migrate(store_pg *pg, char *err, size_t errlen)
{
    PGconn **c = &pg->w;
    char msg[256];
    if (store_pg__exec(pg, c, "BEGIN", msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: cannot start migration: %s", pg->label, msg);
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld)", (long long)STORE_PG_LOCK_SCHEMA);
    if (store_pg__exec(pg, c, sql, msg, sizeof msg) != 0 ||
        store_pg__exec(pg, c, "CREATE TABLE IF NOT EXISTS vigil_schema (version integer NOT NULL)", msg,
                       sizeof msg) != 0 ||
        store_pg__exec(pg, c, "INSERT INTO vigil_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM vigil_schema)",
                       msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: cannot read schema version: %s", pg->label, msg);
        goto fail;
    }
    PGresult *res = store_pg__exec_params(pg, c, "SELECT max(version) FROM vigil_schema", NULL, msg,
                                          sizeof msg);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (res)
            store_pg__errmsg(pg, msg, sizeof msg, NULL, PQresultErrorMessage(res));
        snprintf(err, errlen, "%s: cannot read schema version: %s", pg->label, msg);
        PQclear(res);
        goto fail;
    }
    int v = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (v > SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s: database schema version %d is newer than this vigild supports (%d); "
                 "upgrade vigild or use another database",
                 pg->label, v, SCHEMA_VERSION);
        goto fail;
    }
    if (v < 0) {
        snprintf(err, errlen, "%s: invalid schema version %d", pg->label, v);
        goto fail;
    }
    for (int i = v; i < SCHEMA_VERSION; i++) {
        if (store_pg__exec(pg, c, migrations[i], msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s: migration to version %d failed: %s", pg->label, i + 1, msg);
            goto fail;
        }
    }
    snprintf(sql, sizeof sql, "UPDATE vigil_schema SET version = %d", SCHEMA_VERSION);
    if (v < SCHEMA_VERSION && store_pg__exec(pg, c, sql, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: cannot set schema version: %s", pg->label, msg);
        goto fail;
    }
    int64_t today = store_pg__today();
    if (store_pg__ensure_partitions(pg, c, today, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: %s", pg->label, msg);
        goto fail;
    }
    if (store_pg__exec(pg, c, "COMMIT", msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: migration commit failed: %s", pg->label, msg);
        goto fail;
    }
    pg->parts_day = today;
    if (v < SCHEMA_VERSION)
        LOG_I(TAG, "%s: schema migrated from version %d to %d", pg->label, v, SCHEMA_VERSION);
    return 0;
fail:
    (void)store_pg__exec(pg, c, "ROLLBACK", msg, sizeof msg); /* failure already reported */
    return -1;
}

/* The deadline on every wait for an answer, from the session's
 * statement_timeout (ours, or the URL's options): below it a legitimately
 * long statement would be cut; 0 (none) keeps ours, so a hang stays
 * bounded. */
static int store_pg__answer_bound(store_pg *pg, char *err, size_t errlen)
{
    PGresult *r = store_pg__exec_params(
        pg, &pg->w, "SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'", NULL,
        err, errlen);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        if (r)
            store_pg__errmsg(pg, err, errlen, pg->label, PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    long long st = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (st <= 0)
        st = STORE_PG_STATEMENT_TIMEOUT_MS;
    else if (st > STORE_PG_DAY_MS)
        st = STORE_PG_DAY_MS; /* keeps the sum an int */
    pg->answer_ms = (int)st + STORE_PG_ANSWER_MARGIN_MS;
    return 0;
}

static const void *store_pg__known_key(const void *e) { return e; }

static const idtable_type store_pg__known_type = {
    .entry_size = TELEMETRY_ID_MAX + 1,
    .key_of = store_pg__known_key,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};

static const idtable_type store_pg__lasts_type = {
    .entry_size = sizeof(store_pg_last),
    .key_of = store_pg__known_key, /* the id comes first */
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};

static void store_pg__close(void *impl)
{
    store_pg *pg = impl;
    if (!pg)
        return;
    PQfinish(pg->w); /* NULL-safe */
    PQfinish(pg->r);
    PQfinish(pg->a);
    if (pg->rlock_init)
        vmutex_destroy(&pg->rlock);
    idtable_free(&pg->known);
    for (int i = 0; i < STORE_PG_RUN_COLS; i++)
        sbuf_free(&pg->run[i]);
    free(pg->expect);
    free(pg->stored);
    idtable_free(&pg->lasts);
    if (pg->password) {
        memset(pg->password, 0, strlen(pg->password));
        free(pg->password);
    }
    if (pg->conninfo) {
        memset(pg->conninfo, 0, strlen(pg->conninfo));
        free(pg->conninfo);
    }
    free(pg);
}

static store_err store_pg__open(const store_options *opt, size_t batch_max, void **impl, char *err,
                                size_t errlen)
{
    *impl = NULL;
    if (!opt || !opt->path || !store_path_is_pg(opt->path) || batch_max == 0) {
        snprintf(err, errlen, "store_pg: not a postgresql:// URL");
        return STORE_EINVAL;
    }
    store_pg *pg = calloc(1, sizeof *pg);
    if (!pg) {
        snprintf(err, errlen, "out of memory");
        return STORE_ENOMEM;
    }
    pg->batch_max = batch_max;
    pg->parts_day = -1;
    for (int i = 0; i < STORE_PG_RUN_COLS; i++)
        sbuf_init(&pg->run[i], 0);
    pg->conninfo = strdup(opt->path);
    pg->expect = calloc(4 * batch_max + 8, sizeof *pg->expect);
    pg->stored = calloc(batch_max, 1);
    if (!pg->conninfo || !pg->expect || !pg->stored ||
        idtable_init(&pg->known, &store_pg__known_type, 1024, 0) != IDTABLE_OK ||
        idtable_init(&pg->lasts, &store_pg__lasts_type, 2 * batch_max, 0) != IDTABLE_OK) {
        snprintf(err, errlen, "out of memory");
        store_pg__close(pg);
        return STORE_ENOMEM;
    }
    if (vmutex_init(&pg->rlock) != 0) {
        snprintf(err, errlen, "mutex init failed");
        store_pg__close(pg);
        return STORE_ENOMEM;
    }
    pg->rlock_init = 1;
    if (store_pg__describe(opt->path, pg->label, sizeof pg->label, &pg->password, err, errlen) != 0) {
        store_pg__close(pg);
        return STORE_EINVAL;
    }
    pg->answer_ms = STORE_PG_STATEMENT_TIMEOUT_MS + STORE_PG_ANSWER_MARGIN_MS;
    if (store_pg__connect(pg, STORE_PG_APP_WRITER, &pg->w, err, errlen) != 0 ||
        store_pg__answer_bound(pg, err, errlen) != 0 || store_pg__migrate(pg, err, errlen) != 0 ||
        store_pg__connect(pg, STORE_PG_APP_READER, &pg->r, err, errlen) != 0) {
        store_pg__close(pg);
        return STORE_EIO;
    }
    LOG_I(TAG, "%s: open (schema version %d, answer deadline %d ms)", pg->label, SCHEMA_VERSION,
          pg->answer_ms);
    *impl = pg;
    return STORE_OK;
}

const store_backend store_pg_backend = {
    .name = "postgresql",
    .open = store_pg__open,
    .close = store_pg__close,
    .write_batch = store_pg__write_batch,
    .prune = store_pg__prune,
    .list_devices = store_pg__list_devices,
    .get_device = store_pg__get_device,
    .query_readings = store_pg__query_readings,
    .load_completeness = store_pg__load_completeness,
    .load_open_alarms = store_pg__load_open_alarms,
    .query_alarms = store_pg__query_alarms,
    .get_alarm_settings = store_pg__get_alarm_settings,
    .load_alarm_settings = store_pg__load_alarm_settings,
    .get_user = store_pg__get_user,
    .list_users = store_pg__list_users,
    .list_tokens = store_pg__list_tokens,
    .list_sessions = store_pg__list_sessions,
    .query_audit = store_pg__query_audit,
    .admin_user_add = store_pg__admin_user_add,
    .admin_user_update = store_pg__admin_user_update,
    .admin_user_del = store_pg__admin_user_del,
    .admin_token_add = store_pg__admin_token_add,
    .admin_token_del = store_pg__admin_token_del,
    .admin_audit = store_pg__admin_audit,
};
