/* store_sqlite — the embedded SQLite engine behind store.h (store_backend.h):
 * open and close, the schema and its migrations, the engine's table. Batch
 * writing is in store_sqlite_writer.c, the reads in store_sqlite_read.c;
 * threads and ownership are described in store_sqlite_int.h.
 *
 * Schema versions are kept in PRAGMA user_version; migrations[] holds the
 * steps, applied in order in one transaction at open. */
#include "store_sqlite_int.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define TAG STORE_TAG

/* WAL size (4 KB pages) that triggers a checkpoint; docs/BENCHMARKS.md,
 * "Issue 13 — the SQLite writer's cost per reading". A power cut may lose
 * the transactions since the last checkpoint (synchronous=NORMAL): at most
 * this many pages, ~5 commits at 10,000 readings/s, which the completeness
 * tracker asks the devices to resend like any other gap. */
#define STORE_WAL_CHECKPOINT_PAGES 4000


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
    /* 3: access control (docs/SECURITY.md). Secrets are stored hashed. */
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL,"
    "  pwhash TEXT NOT NULL,"      /* Argon2id string */
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"  /* hex BLAKE2b of the token */
    "  name TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER"
    ");"
    "CREATE TABLE sessions ("
    "  key TEXT PRIMARY KEY,"      /* hex BLAKE2b of the session id */
    "  user TEXT NOT NULL,"
    "  csrf TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE audit ("
    "  t INTEGER NOT NULL,"
    "  user TEXT, address TEXT,"
    "  action TEXT NOT NULL,"
    "  target TEXT,"
    "  outcome TEXT NOT NULL,"
    "  detail TEXT"
    ");"
    "CREATE INDEX audit_t ON audit(t);",
    /* 4: alarms (server/alarm.h): each alarm's current state, keyed by its
     * id, and the history of what happened to it. */
    "CREATE TABLE alarms ("
    "  alarm_id INTEGER PRIMARY KEY,"
    "  device_id TEXT NOT NULL,"
    "  condition TEXT NOT NULL,"
    "  priority TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  value REAL, lim REAL,"
    "  started_at INTEGER, cleared_at INTEGER,"
    "  acked_by TEXT, acked_at INTEGER, silenced_until INTEGER,"
    "  escalation INTEGER NOT NULL DEFAULT 0,"
    "  retrospective INTEGER NOT NULL DEFAULT 0,"
    "  news2 INTEGER NOT NULL DEFAULT 0,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX alarms_open ON alarms(state) WHERE state <> 'cleared';"
    "CREATE INDEX alarms_device ON alarms(device_id, started_at);"
    "CREATE TABLE alarm_events ("
    "  id INTEGER PRIMARY KEY,"
    "  alarm_id INTEGER NOT NULL,"
    "  device_id TEXT NOT NULL,"
    "  t INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  user TEXT,"
    "  state TEXT NOT NULL,"
    "  priority TEXT NOT NULL"
    ");"
    "CREATE INDEX alarm_events_alarm ON alarm_events(alarm_id);"
    /* Per-device alarm settings: one row per condition (and one named
     * "escalation" whose onset_ms is the escalation interval). */
    "CREATE TABLE alarm_settings ("
    "  device_id TEXT NOT NULL,"
    "  condition TEXT NOT NULL,"
    "  enabled INTEGER NOT NULL, latching INTEGER NOT NULL,"
    "  lim REAL NOT NULL, lim_high REAL NOT NULL, hysteresis REAL NOT NULL,"
    "  onset_ms INTEGER NOT NULL, onset_high_ms INTEGER NOT NULL, clear_ms INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL, updated_by TEXT,"
    "  PRIMARY KEY (device_id, condition)"
    ");",
    /* 5: compact readings (issue 13): ~131 -> ~47 bytes per reading on disk.
     *  - WITHOUT ROWID, keyed (device, boot, k): the idempotence index is
     *    the table. k is the seq; a reading without seq gets k = -1, -2, ...
     *    per (device, boot) (seqs are >= 0), so it never collides with a
     *    real seq and is never deduplicated, as before. The generated seq
     *    and received columns keep ad-hoc SQL working (they take no space).
     *  - No (device, t) index (it alone cost ~22 bytes per reading):
     *    reading_spans holds, per (device, boot, k >> 8) — 256 readings —
     *    bounds of their t (t_lo <= every t <= t_hi), so a time range is
     *    found by seeking the spans that overlap it.
     *  - Vitals and battery without a declared type (no affinity): an
     *    INTEGER is the value scaled (temperatures x100, the rest x10),
     *    written only when it divides back to exactly the same double; any
     *    other value stays REAL. ts is not stored (it is t when flags has
     *    TELEMETRY_HAS_TS); received is stored as rdelta = received - t
     *    (0 bytes when the device sent no ts); sensor_type and fw point into
     *    reading_meta; the NULL-heavy columns come last.
     * The copy below reproduces exactly what the API returned before: a
     * value whose present bit is unset was never read, so it is dropped. */
    "CREATE TABLE reading_meta ("
    "  id INTEGER PRIMARY KEY,"
    "  sensor_type TEXT, fw TEXT"  /* NULL: absent */
    ");"
    "CREATE INDEX reading_meta_texts ON reading_meta(sensor_type, fw);"
    "INSERT INTO reading_meta(sensor_type, fw) SELECT DISTINCT"
    "  CASE WHEN flags & 8192 THEN sensor_type END, CASE WHEN flags & 16384 THEN fw END"
    "  FROM readings WHERE flags & 24576;"
    "CREATE TABLE readings_v5 ("
    "  device INTEGER NOT NULL REFERENCES devices(key),"
    "  boot INTEGER NOT NULL,"     /* 0 when absent */
    "  k INTEGER NOT NULL,"        /* seq, or < 0 for a reading without one */
    "  t INTEGER NOT NULL,"        /* ts if the device sent one, else received */
    "  flags INTEGER NOT NULL,"    /* present bits | validity << 16 */
    "  rdelta INTEGER NOT NULL,"   /* received - t */
    "  uptime INTEGER,"
    "  object_temp, ambient_temp," /* x100 if INTEGER */
    "  heart_rate, spo2,"          /* x10 if INTEGER */
    "  meta INTEGER REFERENCES reading_meta(id),"
    "  battery,"                   /* x10 if INTEGER */
    "  rssi INTEGER,"
    "  seq INTEGER AS (CASE WHEN k >= 0 THEN k END) VIRTUAL,"
    "  received INTEGER AS (t + rdelta) VIRTUAL,"
    "  PRIMARY KEY (device, boot, k)"
    ") WITHOUT ROWID;"
#define MIG5_SCALED(col, bit, scale)                                           \
    "CASE WHEN (flags & " #bit ") = 0 OR " #col " IS NULL THEN NULL "           \
    "WHEN abs(" #col ") < 1e12 AND CAST(round(" #col " * " #scale ") AS INTEGER) / " #scale ".0 = " #col " " \
    "THEN CAST(round(" #col " * " #scale ") AS INTEGER) ELSE " #col " END"
    "INSERT INTO readings_v5(device, boot, k, t, flags, rdelta, uptime, object_temp, ambient_temp,"
    "  heart_rate, spo2, meta, battery, rssi) "
    "SELECT device, boot,"
    "  coalesce(seq, -row_number() OVER (PARTITION BY device, boot, seq IS NULL ORDER BY rowid)),"
    "  t, flags, received - t, CASE WHEN flags & 16 THEN uptime END, "
    MIG5_SCALED(object_temp, 1, 100) ", " MIG5_SCALED(ambient_temp, 2, 100) ", "
    MIG5_SCALED(heart_rate, 4, 10) ", " MIG5_SCALED(spo2, 8, 10) ", "
    "  (SELECT m.id FROM reading_meta AS m"
    "    WHERE m.sensor_type IS (CASE WHEN r.flags & 8192 THEN r.sensor_type END)"
    "      AND m.fw IS (CASE WHEN r.flags & 16384 THEN r.fw END) AND r.flags & 24576), "
    MIG5_SCALED(battery, 256, 10) ", "
    "  CASE WHEN flags & 512 THEN rssi END "
    "FROM readings AS r;"
#undef MIG5_SCALED
    "DROP TABLE readings;"
    "ALTER TABLE readings_v5 RENAME TO readings;"
    "CREATE TABLE reading_spans ("
    "  device INTEGER NOT NULL,"
    "  boot INTEGER NOT NULL,"
    "  blk INTEGER NOT NULL,"      /* k >> 8: k in blk * 256 .. blk * 256 + 255 */
    "  t_lo INTEGER NOT NULL,"
    "  t_hi INTEGER NOT NULL,"
    "  PRIMARY KEY (device, boot, blk)"
    ") WITHOUT ROWID;"
    "INSERT INTO reading_spans SELECT device, boot, k >> 8, min(t), max(t) FROM readings"
    "  GROUP BY device, boot, k >> 8;",
    /* 6: readings keyed by stream (issue 13): ~51 -> ~43 bytes per reading.
     *  - reading_streams numbers each (device, boot); stream_readings and
     *    reading_spans are keyed by that id instead of repeating device and
     *    boot in every row.
     *  - No flags column: a present bit whose field has a column is that
     *    column being non-NULL (vitals, uptime, battery, rssi; seq is k >= 0;
     *    sensor_type and fw are reading_meta's columns). The other bits (ts,
     *    boot, the *_valid ones, validity << 16: STORE_META_FLAGS) go into
     *    reading_meta.flags — a few combinations per fleet, so one small id.
     *    meta is NULL when a reading has none of them.
     *  - readings becomes a view with the schema-5 columns (device, boot, k,
     *    seq, t, received, ts, flags, ...), so ad-hoc SQL keeps working.
     * 25439 is the bits derived from columns (STORE_DERIVED_FLAGS). */
    "CREATE TABLE reading_streams ("
    "  id INTEGER PRIMARY KEY,"
    "  device INTEGER NOT NULL REFERENCES devices(key),"
    "  boot INTEGER NOT NULL,"     /* 0 when absent */
    "  UNIQUE (device, boot)"
    ");"
    "INSERT INTO reading_streams(device, boot)"
    "  SELECT DISTINCT device, boot FROM readings ORDER BY device, boot;"
    "CREATE TABLE reading_meta_v6 ("
    "  id INTEGER PRIMARY KEY,"
    "  sensor_type TEXT, fw TEXT," /* NULL: absent */
    "  flags INTEGER NOT NULL"     /* the reading's flags & ~25439 */
    ");"
    "INSERT INTO reading_meta_v6(sensor_type, fw, flags)"
    "  SELECT DISTINCT m.sensor_type, m.fw, r.flags & ~25439"
    "  FROM readings AS r LEFT JOIN reading_meta AS m ON m.id = r.meta"
    "  WHERE r.meta IS NOT NULL OR r.flags & ~25439 != 0;"
    "CREATE INDEX reading_meta_key ON reading_meta_v6(sensor_type, fw, flags);"
    "CREATE TABLE stream_readings ("
    "  stream INTEGER NOT NULL REFERENCES reading_streams(id),"
    "  k INTEGER NOT NULL,"        /* seq, or < 0 for a reading without one */
    "  t INTEGER NOT NULL,"        /* ts if the device sent one, else received */
    "  rdelta INTEGER NOT NULL,"   /* received - t */
    "  uptime INTEGER,"
    "  object_temp, ambient_temp," /* x100 if INTEGER */
    "  heart_rate, spo2,"          /* x10 if INTEGER */
    "  meta INTEGER REFERENCES reading_meta_v6(id),"
    "  battery,"                   /* x10 if INTEGER */
    "  rssi INTEGER,"
    "  seq INTEGER AS (CASE WHEN k >= 0 THEN k END) VIRTUAL,"
    "  received INTEGER AS (t + rdelta) VIRTUAL,"
    "  PRIMARY KEY (stream, k)"
    ") WITHOUT ROWID;"
    /* A column whose present bit is unset was never read: dropped. */
    "INSERT INTO stream_readings(stream, k, t, rdelta, uptime, object_temp, ambient_temp,"
    "  heart_rate, spo2, meta, battery, rssi) "
    "SELECT s.id, r.k, r.t, r.rdelta, CASE WHEN r.flags & 16 THEN r.uptime END,"
    "  CASE WHEN r.flags & 1 THEN r.object_temp END, CASE WHEN r.flags & 2 THEN r.ambient_temp END,"
    "  CASE WHEN r.flags & 4 THEN r.heart_rate END, CASE WHEN r.flags & 8 THEN r.spo2 END,"
    "  (SELECT n.id FROM reading_meta_v6 AS n WHERE n.sensor_type IS m.sensor_type"
    "    AND n.fw IS m.fw AND n.flags = r.flags & ~25439),"
    "  CASE WHEN r.flags & 256 THEN r.battery END, CASE WHEN r.flags & 512 THEN r.rssi END "
    "FROM readings AS r JOIN reading_streams AS s ON s.device = r.device AND s.boot = r.boot"
    "  LEFT JOIN reading_meta AS m ON m.id = r.meta "
    "ORDER BY s.id, r.k;"
    "CREATE TABLE reading_spans_v6 ("
    "  stream INTEGER NOT NULL,"
    "  blk INTEGER NOT NULL,"      /* k >> 8: k in blk * 256 .. blk * 256 + 255 */
    "  t_lo INTEGER NOT NULL,"
    "  t_hi INTEGER NOT NULL,"
    "  PRIMARY KEY (stream, blk)"
    ") WITHOUT ROWID;"
    "INSERT INTO reading_spans_v6 SELECT s.id, p.blk, p.t_lo, p.t_hi"
    "  FROM reading_spans AS p JOIN reading_streams AS s ON s.device = p.device AND s.boot = p.boot;"
    "DROP TABLE readings;"
    "DROP TABLE reading_spans;"
    "DROP TABLE reading_meta;"
    "ALTER TABLE reading_meta_v6 RENAME TO reading_meta;"
    "ALTER TABLE reading_spans_v6 RENAME TO reading_spans;"
    "CREATE VIEW readings AS SELECT s.device AS device, s.boot AS boot, r.k AS k, r.seq AS seq,"
    "  r.t AS t, r.received AS received, CASE WHEN m.flags & 32 THEN r.t END AS ts,"
    "  r.uptime AS uptime, r.object_temp AS object_temp, r.ambient_temp AS ambient_temp,"
    "  r.heart_rate AS heart_rate, r.spo2 AS spo2, r.battery AS battery, r.rssi AS rssi,"
    /* | and << bind alike in SQL: each term in its own parentheses. */
    "  coalesce(m.flags, 0) | (r.object_temp IS NOT NULL) | ((r.ambient_temp IS NOT NULL) << 1)"
    "  | ((r.heart_rate IS NOT NULL) << 2) | ((r.spo2 IS NOT NULL) << 3)"
    "  | ((r.uptime IS NOT NULL) << 4) | ((r.k >= 0) << 6) | ((r.battery IS NOT NULL) << 8)"
    "  | ((r.rssi IS NOT NULL) << 9) | ((m.sensor_type IS NOT NULL) << 13)"
    "  | ((m.fw IS NOT NULL) << 14) AS flags,"
    "  m.sensor_type AS sensor_type, m.fw AS fw, r.stream AS stream, r.meta AS meta"
    "  FROM stream_readings AS r JOIN reading_streams AS s ON s.id = r.stream"
    "  LEFT JOIN reading_meta AS m ON m.id = r.meta;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))
_Static_assert(STORE_DERIVED_FLAGS == 25439, "migration 6 spells STORE_DERIVED_FLAGS as 25439");

/* ---- shared helpers (see store_sqlite_int.h) -------------------------- */

int store_sqlite__exec_stmt(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s); /* returns the same error as step; already in rc */
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

int store_sqlite__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err,
                          size_t errlen)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "prepare failed: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* ---- open / close ----------------------------------------------------- */

static int store__exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
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

static int store__read_user_version(sqlite3 *db, int *out)
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
static int store__migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char msg[256];
    if (store__exec_sql(db, "BEGIN IMMEDIATE", msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: cannot start migration: %s", path, msg);
        return -1;
    }
    int v;
    /* Read inside the transaction: another process may have just migrated. */
    if (store__read_user_version(db, &v) != 0) {
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
        if (store__exec_sql(db, migrations[i], msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s: migration to version %d failed: %s", path, i + 1, msg);
            goto fail;
        }
    }
    if (v < SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        if (store__exec_sql(db, sql, msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s: cannot set schema version: %s", path, msg);
            goto fail;
        }
    }
    if (store__exec_sql(db, "COMMIT", msg, sizeof msg) != 0) {
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

static void store__finalize_all(sqlite3_stmt **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_finalize(list[i]); /* NULL is a no-op */
        list[i] = NULL;
    }
}

static void store__close_db(sqlite3 **db, const char *what)
{
    if (*db && sqlite3_close(*db) != SQLITE_OK)
        LOG_E(TAG, "closing the %s connection: %s", what, sqlite3_errmsg(*db));
    *db = NULL;
}

static void store__destroy(store_sqlite *st)
{
    sqlite3_stmt *w[] = {st->w_begin, st->w_commit, st->w_rollback, st->w_touch, st->w_insert,
                         st->w_last, st->w_status, st->w_reconcile, st->w_last_only, st->w_prune_devs, st->w_prune,
                         st->w_prune_spans, st->w_lost, st->w_seqless, st->w_span,
                         st->w_meta_get, st->w_meta_put, st->w_stream_get, st->w_stream_put};
    sqlite3_stmt *r[] = {st->r_begin, st->r_end, st->r_list, st->r_get,
                         st->r_key, st->r_count, st->r_raw, st->r_ds};
    /* Called after the writer was joined: the closing thread owns it all. */
    if (st->writer_bound)
        thread_owner_release(&st->writer_owner);
    /* The rows still behind their latest readings (store_close flushes
     * everything; a failure here is what a kill -9 leaves, reconciled at
     * the next open). */
    char err[256];
    if (st->w_last && store_sqlite__flush_latest(st, NULL, err, sizeof err) != STORE_WR_OK)
        LOG_E(TAG, "closing: devices' latest readings not written: %s", err);
    store__finalize_all(r, sizeof r / sizeof *r);
    store__finalize_all(w, sizeof w / sizeof *w);
    store_sqlite__auth_close(st);
    store_sqlite__alarm_close(st);
    /* Reader first: the last connection to close checkpoints the WAL. */
    store__close_db(&st->rdb, "read");
    store__close_db(&st->wdb, "write");
    if (st->rlock_init)
        vmutex_destroy(&st->rlock);
    idtable_free(&st->spans);
    idtable_free(&st->metas);
    idtable_free(&st->lasts);
    idtable_free(&st->pending);
    free(st->pending_flushed);
    idtable_free(&st->keys);
    free(st->path);
    free(st);
}

/* The database holds health data: a new file is created 0600 here, before
 * SQLite would create it 0644 (less the umask). SQLite gives the -wal and
 * -shm files the main file's mode, so they follow. An existing file keeps
 * the mode its administrator chose. In-memory and URI names are SQLite's. */
static int store__create_private(const char *path, char *err, size_t errlen)
{
    if (!path[0] || path[0] == ':' || !strncmp(path, "file:", 5))
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static int store__open_writer(store_sqlite *st, const char *path, char *err, size_t errlen)
{
    if (store__create_private(path, err, errlen) != 0)
        return -1;
    int rc = sqlite3_open_v2(path, &st->wdb,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path,
                 st->wdb ? sqlite3_errmsg(st->wdb) : sqlite3_errstr(rc));
        return -1;
    }
    sqlite3_extended_result_codes(st->wdb, 1);
    if (sqlite3_busy_timeout(st->wdb, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK) {
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
    if (store__exec_sql(st->wdb, "PRAGMA synchronous=NORMAL", msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    /* Checkpoint when the WAL passes STORE_WAL_CHECKPOINT_PAGES, not
     * SQLite's 1,000: at 10,000 devices x 1 Hz a commit writes hundreds of
     * pages (one leaf per device, and most of the devices table), so the
     * default checkpointed — two fdatasyncs and a copy of every page back —
     * every commit or two, copying the same devices pages each time. */
    if (sqlite3_wal_autocheckpoint(st->wdb, STORE_WAL_CHECKPOINT_PAGES) != SQLITE_OK) {
        snprintf(err, errlen, "%s: wal_autocheckpoint: %s", path, sqlite3_errmsg(st->wdb));
        return -1;
    }
    if (store__migrate(st->wdb, path, err, errlen) != 0)
        return -1;

    if (store_sqlite__writer_prepare(st, err, errlen) != 0)
        return -1;
    return store_sqlite__reconcile(st, err, errlen);
}

static store_err store__open(const store_options *opt, size_t batch_max, void **impl, char *err,
                             size_t errlen)
{
    *impl = NULL;
    store_sqlite *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return STORE_ENOMEM;
    }
    st->batch_max = batch_max;
    st->path = strdup(opt->path);
    if (!st->path || store_sqlite__writer_init(st, err, errlen) != 0) {
        if (!st->path)
            snprintf(err, errlen, "out of memory");
        store__destroy(st);
        return STORE_ENOMEM;
    }
    int rc = vmutex_init(&st->rlock);
    st->rlock_init = rc == 0;
    if (rc != 0) {
        snprintf(err, errlen, "pthread init: %s", strerror(rc));
        store__destroy(st);
        return STORE_ENOMEM;
    }
    if (store__open_writer(st, opt->path, err, errlen) != 0 ||
        store_sqlite__reader_open(st, opt->path, err, errlen) != 0) {
        store__destroy(st);
        return STORE_EIO;
    }
    *impl = st;
    return STORE_OK;
}

static void store__close(void *impl)
{
    if (impl)
        store__destroy(impl);
}

const store_backend store_sqlite_backend = {
    .name = "sqlite",
    .open = store__open,
    .close = store__close,
    .write_batch = store_sqlite__write_batch,
    .flush_latest = store_sqlite__flush_latest,
    .prune = store_sqlite__prune,
    .list_devices = store_sqlite_list_devices,
    .get_device = store_sqlite_get_device,
    .query_readings = store_sqlite_query_readings,
    .load_completeness = store_sqlite_load_completeness,
    .load_open_alarms = store_sqlite_load_open_alarms,
    .query_alarms = store_sqlite_query_alarms,
    .get_alarm_settings = store_sqlite_get_alarm_settings,
    .load_alarm_settings = store_sqlite_load_alarm_settings,
    .get_user = store_sqlite_get_user,
    .list_users = store_sqlite_list_users,
    .list_tokens = store_sqlite_list_tokens,
    .list_sessions = store_sqlite_list_sessions,
    .query_audit = store_sqlite_query_audit,
    .admin_user_add = store_sqlite_admin_user_add,
    .admin_user_update = store_sqlite_admin_user_update,
    .admin_user_del = store_sqlite_admin_user_del,
    .admin_token_add = store_sqlite_admin_token_add,
    .admin_token_del = store_sqlite_admin_token_del,
    .admin_audit = store_sqlite_admin_audit,
};
