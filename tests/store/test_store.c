/* Tests of the store (store.h) against a real database, on either engine
 * with the same expectations:
 *  - SQLite (default): each test gets a fresh mkdtemp directory (setup)
 *    that teardown removes with its files. Lock-holding tests open a second
 *    SQLite connection on the same file and hold BEGIN EXCLUSIVE: that makes
 *    the store's writer fail with SQLITE_BUSY, which works as root too
 *    (unlike chmod).
 *  - PostgreSQL, when VIGIL_TEST_PG_URL names a server (CTest's
 *    store_test_store_pg, through tests/support/pg_cluster.py): each test
 *    gets a fresh database (CREATE DATABASE in setup, DROP in teardown).
 *    SQLite-only tests skip there (each says why); test_store_pg.c has the
 *    PostgreSQL-only ones (partitions, connection loss, secrets). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "log.h"
#include "pg_cluster.h"
#include "store.h"

typedef struct fixture {
    char dir[64];
    char path[256];   /* SQLite file, or the test database's URL */
    pg_testdb db;     /* PostgreSQL: the per-test database */
} fixture;

static const char *pg_url; /* VIGIL_TEST_PG_URL: run on PostgreSQL */

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (pg_url) {
        if (pg_cluster_create_db(&f->db, "vt") != 0) {
            free(f);
            return -1;
        }
        snprintf(f->path, sizeof f->path, "%s", f->db.url);
        *state = f;
        return 0;
    }
    snprintf(f->dir, sizeof f->dir, "/tmp/vigil-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/vigil.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (pg_url) {
        int rc = pg_cluster_drop_db(&f->db);
        free(f);
        return rc;
    }
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        char p[sizeof f->path + 16];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p); /* missing files are fine */
    }
    int rc = rmdir(f->dir);
    free(f);
    return rc;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static store *open_store(const fixture *f, size_t cap, size_t batch, int64_t retention)
{
    store_options o = {.path = f->path, .queue_capacity = cap, .batch_max = batch,
                       .retention_ms = retention};
    store *st = NULL;
    char err[256];
    store_err rc = store_open(&o, &st, err, sizeof err);
    if (rc != STORE_OK)
        print_error("store_open: %s\n", err);
    assert_int_equal(rc, STORE_OK);
    assert_non_null(st);
    return st;
}

/* Polls the stats until cond holds (s is the current stats), or fails. */
#define WAIT_FOR(st, s, cond, timeout_ms)                                      \
    do {                                                                       \
        int waited_ = 0;                                                       \
        for (;;) {                                                             \
            store_get_stats((st), &(s));                                       \
            if (cond)                                                          \
                break;                                                         \
            if (waited_ >= (timeout_ms))                                       \
                fail_msg("timed out waiting for %s", #cond);                   \
            sleep_ms(10);                                                      \
            waited_ += 10;                                                     \
        }                                                                      \
    } while (0)

static void wait_idle(store *st)
{
    store_stats s;
    WAIT_FOR(st, s, s.queue_depth == 0, 10000);
}

static telemetry_reading reading(const char *id, int64_t received)
{
    telemetry_reading r;
    memset(&r, 0, sizeof r);
    snprintf(r.device_id, sizeof r.device_id, "%s", id);
    snprintf(r.sensor_type, sizeof r.sensor_type, "MAX30614");
    r.present = TELEMETRY_HAS_OBJECT_TEMP | TELEMETRY_HAS_AMBIENT_TEMP |
                TELEMETRY_HAS_HEART_RATE | TELEMETRY_HAS_SPO2 | TELEMETRY_HAS_SENSOR_TYPE;
    r.object_temp = 36.6;
    r.ambient_temp = 24.1;
    r.heart_rate = 72;
    r.spo2 = 98;
    r.received_ms = received;
    return r;
}

static telemetry_reading reading_seq(const char *id, int64_t received, int64_t boot, int64_t seq)
{
    telemetry_reading r = reading(id, received);
    r.present |= TELEMETRY_HAS_BOOT | TELEMETRY_HAS_SEQ;
    r.boot = boot;
    r.seq = seq;
    return r;
}

/* One integer from the test's database, on either engine. */
static int64_t db_int(const char *path, const char *sql)
{
    if (pg_url) {
        int ok;
        int64_t v = pg_cluster_int(path, sql, &ok);
        assert_true(ok);
        return v;
    }
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

/* A second connection holding the database's write lock. */
static sqlite3 *hold_write_lock(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void release_write_lock(sqlite3 *db)
{
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static size_t query_total(store *st, const char *id, int64_t from, int64_t to)
{
    store_series s;
    assert_int_equal(store_query_readings(st, id, from, to, 1000000, &s), STORE_OK);
    assert_false(s.downsampled);
    size_t n = s.total;
    store_series_free(&s);
    return n;
}

/* ---- tests ------------------------------------------------------------ */

static void test_open_migrate_reopen(void **state)
{
    fixture *f = *state;
    store *st = open_store(f, 0, 0, 0);
    store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.writable, 1);
    assert_int_equal(s.queue_capacity, 65536);
    telemetry_reading r = reading_seq("dev-1", 1000, 1, 1);
    assert_int_equal(store_put_reading(st, &r), STORE_OK);
    store_close(st);

    const char *version_sql = pg_url ? "SELECT version FROM vigil_schema" : "PRAGMA user_version";
    assert_true(db_int(f->path, version_sql) >= 1);
    if (!pg_url) { /* WAL is SQLite's */
        sqlite3 *db;
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    int64_t v = db_int(f->path, version_sql);

    st = open_store(f, 0, 0, 0); /* already migrated: a no-op */
    assert_int_equal(query_total(st, "dev-1", 0, 10000), 1);
    store_close(st);
    assert_int_equal(db_int(f->path, version_sql), v);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM readings"), 1);
}

static void test_put_close_reopen_query(void **state)
{
    fixture *f = *state;
    store *st = open_store(f, 0, 64, 0);
    const int n = 1000;
    for (int i = 0; i < n; i++) {
        telemetry_reading r = reading_seq("dev-1", 100000 + i, 3, i);
        r.present |= TELEMETRY_HAS_TS | TELEMETRY_HAS_UPTIME | TELEMETRY_HAS_BATTERY |
                     TELEMETRY_HAS_RSSI | TELEMETRY_HAS_HR_VALID | TELEMETRY_HAS_FW;
        r.present &= ~(uint32_t)TELEMETRY_HAS_SPO2; /* absent channel */
        r.ts_ms = 1795794000000 + (int64_t)i * 1000;
        r.uptime_ms = 5000 + i;
        r.battery = 87.5;
        r.rssi = -61;
        r.hr_valid = 1;
        r.heart_rate = 60 + i % 50;
        snprintf(r.fw, sizeof r.fw, "0.1.0");
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    store_close(st); /* must flush everything queued */

    st = open_store(f, 0, 0, 0);
    store_series s;
    assert_int_equal(store_query_readings(st, "dev-1", 1795794000000, 1795794000000 + 999000,
                                          n, &s),
                     STORE_OK);
    assert_false(s.downsampled);
    assert_int_equal(s.total, n);
    for (int i = 0; i < n; i++) {
        const telemetry_reading *r = &s.raw[i];
        assert_int_equal(s.raw_t[i], 1795794000000 + (int64_t)i * 1000);
        assert_string_equal(r->device_id, "dev-1");
        assert_int_equal(r->seq, i);
        assert_int_equal(r->boot, 3);
        assert_int_equal(r->ts_ms, s.raw_t[i]);
        assert_int_equal(r->received_ms, 100000 + i);
        assert_int_equal(r->uptime_ms, 5000 + i);
        assert_true(r->present & TELEMETRY_HAS_SEQ);
        assert_false(r->present & TELEMETRY_HAS_SPO2);
        assert_true(r->present & TELEMETRY_HAS_HR_VALID);
        assert_int_equal(r->hr_valid, 1);
        assert_int_equal(r->spo2_valid, 0);
        assert_true(r->heart_rate == 60 + i % 50);
        assert_true(r->object_temp == 36.6);
        assert_true(r->battery == 87.5);
        assert_int_equal(r->rssi, -61);
        assert_string_equal(r->fw, "0.1.0");
        assert_string_equal(r->sensor_type, "MAX30614");
    }
    store_series_free(&s);
    store_close(st);
}

static void test_duplicates(void **state)
{
    fixture *f = *state;
    store *st = open_store(f, 0, 0, 0);
    telemetry_reading a = reading_seq("dev-1", 1000, 7, 41);
    telemetry_reading a2 = reading_seq("dev-1", 2000, 7, 41); /* redelivery */
    a2.heart_rate = 99;
    telemetry_reading b = reading_seq("dev-1", 3000, 8, 41); /* new boot, same seq */
    telemetry_reading c = reading_seq("dev-2", 3000, 7, 41); /* other device */
    telemetry_reading n1 = reading("dev-1", 4000);            /* no seq: always stored */
    telemetry_reading n2 = reading("dev-1", 4000);
    telemetry_reading nb = reading("dev-1", 5000); /* seq without boot: boot 0 */
    nb.present |= TELEMETRY_HAS_SEQ;
    nb.seq = 41;
    telemetry_reading nb2 = nb;
    const telemetry_reading *all[] = {&a, &a2, &b, &c, &n1, &n2, &nb, &nb2, &a};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        assert_int_equal(store_put_reading(st, all[i]), STORE_OK);
    wait_idle(st);
    store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.queued, 9);
    assert_int_equal(s.stored, 6);
    assert_int_equal(s.duplicates, 3);
    assert_int_equal(query_total(st, "dev-1", 0, 10000), 5);
    assert_int_equal(query_total(st, "dev-2", 0, 10000), 1);

    /* The first copy is kept, and a duplicate does not become "last". */
    store_series q;
    assert_int_equal(store_query_readings(st, "dev-1", 1000, 1000, 10, &q), STORE_OK);
    assert_int_equal(q.total, 1);
    assert_true(q.raw[0].heart_rate == 72);
    store_series_free(&q);
    store_device d;
    assert_int_equal(store_get_device(st, "dev-1", &d), STORE_OK);
    assert_int_equal(d.last.received_ms, 5000);
    assert_int_equal(d.last_seen_ms, 5000);
    store_close(st);

    /* Still idempotent across a restart. */
    st = open_store(f, 0, 0, 0);
    assert_int_equal(store_put_reading(st, &b), STORE_OK);
    wait_idle(st);
    store_get_stats(st, &s);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.stored, 0);
    store_close(st);
}

static void test_device_upsert(void **state)
{
    fixture *f = *state;
    store *st = open_store(f, 0, 0, 0);

    /* A device known only from readings. */
    telemetry_reading r0 = reading("plain", 500);
    assert_int_equal(store_put_reading(st, &r0), STORE_OK);

    telemetry_status on = {.online = 1,
                           .present = TELEMETRY_STATUS_HAS_FW | TELEMETRY_STATUS_HAS_INTERVAL |
                                      TELEMETRY_STATUS_HAS_BOOT,
                           .interval_ms = 1000,
                           .boot = 7,
                           .received_ms = 1000};
    snprintf(on.device_id, sizeof on.device_id, "ESP32_001");
    snprintf(on.fw, sizeof on.fw, "0.1.0");
    assert_int_equal(store_put_status(st, &on), STORE_OK);
    wait_idle(st);

    store_device d;
    assert_int_equal(store_get_device(st, "ESP32_001", &d), STORE_OK);
    assert_string_equal(d.id, "ESP32_001");
    assert_int_equal(d.online, 1);
    assert_int_equal(d.first_seen_ms, 1000);
    assert_int_equal(d.last_seen_ms, 1000);
    assert_int_equal(d.status_ms, 1000);
    assert_string_equal(d.fw, "0.1.0");
    assert_int_equal(d.interval_ms, 1000);
    assert_int_equal(d.boot, 7);
    assert_int_equal(d.has_last, 0);

    assert_int_equal(store_get_device(st, "plain", &d), STORE_OK);
    assert_int_equal(d.online, -1);
    assert_int_equal(d.boot, -1);
    assert_int_equal(d.interval_ms, 0);
    assert_string_equal(d.fw, "");
    assert_int_equal(d.has_last, 1);
    assert_int_equal(d.first_seen_ms, 500);

    /* A reading from a new boot with a new firmware. */
    telemetry_reading r = reading_seq("ESP32_001", 2000, 8, 1);
    r.present |= TELEMETRY_HAS_FW | TELEMETRY_HAS_TS;
    r.ts_ms = 1795794000123;
    snprintf(r.fw, sizeof r.fw, "0.2.0");
    assert_int_equal(store_put_reading(st, &r), STORE_OK);
    /* The same online status again (a retained replay): status_at stays. */
    telemetry_status on2 = on;
    on2.present = 0;
    on2.received_ms = 3000;
    assert_int_equal(store_put_status(st, &on2), STORE_OK);
    wait_idle(st);
    assert_int_equal(store_get_device(st, "ESP32_001", &d), STORE_OK);
    assert_int_equal(d.online, 1);
    assert_int_equal(d.status_ms, 1000);
    assert_int_equal(d.last_seen_ms, 3000);
    assert_int_equal(d.first_seen_ms, 1000);
    assert_string_equal(d.fw, "0.2.0");
    assert_int_equal(d.boot, 8);
    assert_int_equal(d.interval_ms, 1000); /* absent in on2: kept */
    assert_int_equal(d.has_last, 1);
    assert_int_equal(d.last.seq, 1);
    assert_int_equal(d.last.ts_ms, 1795794000123);
    assert_int_equal(d.last.received_ms, 2000);
    assert_string_equal(d.last.fw, "0.2.0");
    assert_string_equal(d.last.device_id, "ESP32_001");

    /* Offline: status_at moves. */
    telemetry_status off = {.online = 0, .received_ms = 4000};
    snprintf(off.device_id, sizeof off.device_id, "ESP32_001");
    assert_int_equal(store_put_status(st, &off), STORE_OK);
    wait_idle(st);
    assert_int_equal(store_get_device(st, "ESP32_001", &d), STORE_OK);
    assert_int_equal(d.online, 0);
    assert_int_equal(d.status_ms, 4000);
    assert_int_equal(d.last_seen_ms, 4000);
    assert_string_equal(d.fw, "0.2.0");
    store_close(st);
}

static void test_list_get_notfound(void **state)
{
    fixture *f = *state;
    store *st = open_store(f, 0, 0, 0);
    store_device *v = (store_device *)1;
    size_t n = 99;
    assert_int_equal(store_list_devices(st, &v, &n), STORE_OK);
    assert_null(v);
    assert_int_equal(n, 0);

    const char *ids[] = {"zeta", "alpha", "Mid_1", "beta.2"};
    for (size_t i = 0; i < 4; i++) {
        telemetry_reading r = reading(ids[i], 1000 + (int64_t)i);
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    wait_idle(st);
    assert_int_equal(store_list_devices(st, &v, &n), STORE_OK);
    assert_int_equal(n, 4);
    assert_string_equal(v[0].id, "Mid_1"); /* byte order */
    assert_string_equal(v[1].id, "alpha");
    assert_string_equal(v[2].id, "beta.2");
    assert_string_equal(v[3].id, "zeta");
    assert_int_equal(v[3].last_seen_ms, 1000);
    assert_int_equal(v[3].has_last, 1);
    free(v);

    store_device d;
    assert_int_equal(store_get_device(st, "nope", &d), STORE_ENOTFOUND);
    store_series s;
    assert_int_equal(store_query_readings(st, "nope", 0, 10, 10, &s), STORE_ENOTFOUND);
    assert_int_equal(store_query_readings(st, "alpha", 0, 10, 0, &s), STORE_EINVAL);
    assert_int_equal(store_query_readings(st, "alpha", 10, 0, 10, &s), STORE_EINVAL);
    store_series_free(&s);

    telemetry_reading bad = reading("", 1);
    assert_int_equal(store_put_reading(st, &bad), STORE_EINVAL);
    assert_int_equal(store_put_reading(NULL, &bad), STORE_EINVAL);
    store_close(st);
    store_close(NULL);
}

static void test_range_inclusive(void **state)
{
    fixture *f = *state;
    store *st = open_store(f, 0, 0, 0);
    for (int i = 1; i <= 3; i++) {
        telemetry_reading r = reading("d", 9999999); /* t comes from ts */
        r.present |= TELEMETRY_HAS_TS;
        r.ts_ms = i * 1000;
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    telemetry_reading nots = reading("d", 2500); /* no ts: t = received */
    assert_int_equal(store_put_reading(st, &nots), STORE_OK);
    wait_idle(st);
    assert_int_equal(query_total(st, "d", 1000, 3000), 4);
    assert_int_equal(query_total(st, "d", 1001, 2999), 2);
    assert_int_equal(query_total(st, "d", 2000, 2000), 1);
    assert_int_equal(query_total(st, "d", 3000, 3000), 1);
    assert_int_equal(query_total(st, "d", 3001, 99999), 0);
    store_series s;
    assert_int_equal(store_query_readings(st, "d", 0, 5000, 10, &s), STORE_OK);
    assert_int_equal(s.total, 4);
    assert_int_equal(s.raw_t[0], 1000);
    assert_int_equal(s.raw_t[1], 2000);
    assert_int_equal(s.raw_t[2], 2500);
    assert_int_equal(s.raw_t[3], 3000);
    assert_false(s.raw[2].present & TELEMETRY_HAS_TS);
    store_series_free(&s);
    /* Exactly max_points rows: still raw. One more than max_points: buckets. */
    assert_int_equal(store_query_readings(st, "d", 0, 5000, 4, &s), STORE_OK);
    assert_false(s.downsampled);
    store_series_free(&s);
    assert_int_equal(store_query_readings(st, "d", 0, 5000, 3, &s), STORE_OK);
    assert_true(s.downsampled);
    assert_int_equal(s.total, 4);
    assert_true(s.ds.nbuckets <= 3);
    store_series_free(&s);
    store_close(st);
}

static void test_downsample_vs_bruteforce(void **state)
{
    fixture *f = *state;
    store *st = open_store(f, 0, 0, 0);
    const int n = 20000;
    const int64_t from = 1795794000000, to = from + 3600000 - 1;
    telemetry_reading *rs = calloc((size_t)n, sizeof *rs);
    assert_non_null(rs);
    srand(12345);
    for (int i = 0; i < n; i++) {
        telemetry_reading r = reading_seq("rnd", from + i, 1, i);
        r.present &= ~(uint32_t)(TELEMETRY_HAS_OBJECT_TEMP | TELEMETRY_HAS_AMBIENT_TEMP |
                                 TELEMETRY_HAS_HEART_RATE | TELEMETRY_HAS_SPO2);
        /* Some rows fall just outside the range, some lack channels. */
        int64_t t = from - 5000 + (int64_t)(rand() % (3600000 + 10000));
        if (rand() % 10) {
            r.present |= TELEMETRY_HAS_TS;
            r.ts_ms = t;
        } else {
            r.received_ms = t;
        }
        if (rand() % 4) { r.present |= TELEMETRY_HAS_OBJECT_TEMP; r.object_temp = 30 + rand() % 1000 / 100.0; }
        if (rand() % 4) { r.present |= TELEMETRY_HAS_AMBIENT_TEMP; r.ambient_temp = 20 + rand() % 1000 / 100.0; }
        if (rand() % 3) { r.present |= TELEMETRY_HAS_HEART_RATE; r.heart_rate = 40 + rand() % 150; }
        if (rand() % 3) { r.present |= TELEMETRY_HAS_SPO2; r.spo2 = 80 + rand() % 21; }
        rs[i] = r;
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    wait_idle(st);

    const size_t max_points = 97;
    int64_t width = downsample_width(from, to, max_points);
    size_t nb = (size_t)((to - from) / width + 1);
    downsample_bucket *want = calloc(nb, sizeof *want);
    assert_non_null(want);
    size_t in_range = 0;
    for (int i = 0; i < n; i++) {
        const telemetry_reading *r = &rs[i];
        int64_t t = (r->present & TELEMETRY_HAS_TS) ? r->ts_ms : r->received_ms;
        if (t < from || t > to)
            continue;
        in_range++;
        downsample_bucket *b = &want[(t - from) / width];
        b->count++;
        const double vals[DS_CHANNELS] = {r->object_temp, r->ambient_temp, r->heart_rate, r->spo2};
        const uint32_t bits[DS_CHANNELS] = {TELEMETRY_HAS_OBJECT_TEMP, TELEMETRY_HAS_AMBIENT_TEMP,
                                            TELEMETRY_HAS_HEART_RATE, TELEMETRY_HAS_SPO2};
        for (int c = 0; c < DS_CHANNELS; c++) {
            if (!(r->present & bits[c]))
                continue;
            downsample_stat *s = &b->ch[c];
            if (s->n == 0 || vals[c] < s->min)
                s->min = vals[c];
            if (s->n == 0 || vals[c] > s->max)
                s->max = vals[c];
            s->sum += vals[c];
            s->n++;
        }
    }

    store_series s;
    assert_int_equal(store_query_readings(st, "rnd", from, to, max_points, &s), STORE_OK);
    assert_true(s.downsampled);
    assert_int_equal(s.total, in_range);
    assert_true(s.ds.nbuckets <= max_points);
    assert_int_equal(s.ds.nbuckets, nb);
    assert_int_equal(s.ds.width, width);
    for (size_t i = 0; i < nb; i++) {
        const downsample_bucket *g = &s.ds.b[i];
        assert_int_equal(g->t_start, from + (int64_t)i * width);
        assert_int_equal(g->count, want[i].count);
        for (int c = 0; c < DS_CHANNELS; c++) {
            assert_int_equal(g->ch[c].n, want[i].ch[c].n);
            if (g->ch[c].n == 0)
                continue;
            assert_true(g->ch[c].min == want[i].ch[c].min);
            assert_true(g->ch[c].max == want[i].ch[c].max);
            double ga = g->ch[c].sum / g->ch[c].n, wa = want[i].ch[c].sum / want[i].ch[c].n;
            assert_true(fabs(ga - wa) < 1e-9);
        }
    }
    store_series_free(&s);

    /* The same range with room for every row: raw, sorted, same count. */
    assert_int_equal(store_query_readings(st, "rnd", from, to, in_range, &s), STORE_OK);
    assert_false(s.downsampled);
    assert_int_equal(s.total, in_range);
    for (size_t i = 1; i < s.total; i++)
        assert_true(s.raw_t[i - 1] <= s.raw_t[i]);
    store_series_free(&s);

    free(want);
    free(rs);
    store_close(st);
}

static void test_queue_full(void **state)
{
    fixture *f = *state;
    if (pg_url)
        skip(); /* SQLite-only: holds SQLite's write lock (test_store_pg.c stops the server instead) */
    store *st = open_store(f, 4, 2, 0);
    sqlite3 *lock = hold_write_lock(f->path);
    int ok = 0, full = 0;
    for (int i = 0; i < 100; i++) {
        telemetry_reading r = reading_seq("d", 1000 + i, 1, i);
        store_err rc = store_put_reading(st, &r);
        assert_true(rc == STORE_OK || rc == STORE_EFULL);
        rc == STORE_OK ? ok++ : full++;
    }
    store_stats s;
    store_get_stats(st, &s);
    assert_true(full > 0);
    assert_int_equal(s.dropped_full, full);
    assert_int_equal(s.queued, ok);
    assert_int_equal(s.queue_capacity, 4);
    assert_true(s.queue_depth <= 4 + 2);
    release_write_lock(lock);
    WAIT_FOR(st, s, s.stored == (uint64_t)ok, 20000);
    store_close(st);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM readings"), ok);
}

/* Ids are checked before queueing: an invalid or unterminated id is refused
 * with STORE_EINVAL and neither queued nor counted as dropped. */
static void test_put_invalid_id(void **state)
{
    fixture *f = *state;
    store *st = open_store(f, 16, 0, 0);
    telemetry_reading r = reading_seq("ok-1", 1000, 1, 1);
    assert_int_equal(store_put_reading(st, &r), STORE_OK);
    telemetry_reading bad = reading_seq("bad id", 1000, 1, 2); /* space: not an id char */
    assert_int_equal(store_put_reading(st, &bad), STORE_EINVAL);
    memset(bad.device_id, 'x', sizeof bad.device_id); /* no NUL within the array */
    assert_int_equal(store_put_reading(st, &bad), STORE_EINVAL);
    telemetry_status s = {.online = 1, .received_ms = 10};
    assert_int_equal(store_put_status(st, &s), STORE_EINVAL); /* empty id */
    assert_int_equal(store_put_lost(st, "a/b", 1, 1, 2, "gave_up", 10), STORE_EINVAL);
    store_stats ss;
    store_get_stats(st, &ss);
    assert_int_equal(ss.queued, 1);
    assert_int_equal(ss.dropped_full, 0);
    store_close(st);
}

static void test_write_error_recovery(void **state)
{
    fixture *f = *state;
    if (pg_url)
        skip(); /* SQLite-only: SQLITE_BUSY from a held lock; PostgreSQL: test_pg_connection_loss */
    store *st = open_store(f, 1000, 0, 0);
    telemetry_status on = {.online = 1, .received_ms = 10};
    snprintf(on.device_id, sizeof on.device_id, "d");
    assert_int_equal(store_put_status(st, &on), STORE_OK);
    wait_idle(st);

    sqlite3 *lock = hold_write_lock(f->path);
    for (int i = 0; i < 10; i++) {
        telemetry_reading r = reading_seq("d", 1000 + i, 1, i);
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    store_stats s;
    WAIT_FOR(st, s, s.writable == 0, 10000);
    assert_true(s.write_errors >= 1);
    assert_int_equal(s.stored, 0);
    /* Reads keep working while writes fail, without waiting for the
     * writer to bring the rows up to date: it would not before its next
     * retry (it waited the whole STORE_FLUSH_WAIT_MS before). */
    store_device d;
    int64_t t0 = now_ms();
    assert_int_equal(store_get_device(st, "d", &d), STORE_OK);
    store_device *all = NULL;
    size_t nall = 0;
    assert_int_equal(store_list_devices(st, &all, &nall), STORE_OK);
    free(all);
    int64_t waited = now_ms() - t0;
    if (waited >= 1000) /* the flush wait is 2 s */
        fail_msg("reads of the device rows waited %" PRId64 " ms on an unwritable store", waited);
    /* New records keep queueing behind the failed batch. */
    for (int i = 10; i < 20; i++) {
        telemetry_reading r = reading_seq("d", 1000 + i, 1, i);
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    store_get_stats(st, &s);
    assert_int_equal(s.writable, 0);
    assert_true(s.queue_depth >= 10);
    release_write_lock(lock);
    WAIT_FOR(st, s, s.writable == 1 && s.stored == 20, 20000);
    assert_int_equal(s.queue_depth, 0);
    assert_int_equal(query_total(st, "d", 0, 100000), 20);
    store_close(st);
}

static void test_retention(void **state)
{
    fixture *f = *state;
    const int64_t hour = 3600000, now = now_ms();
    store *st = open_store(f, 0, 0, 0);
    /* 12,000 old rows (more than one prune chunk) on two devices, 10 new. */
    for (int i = 0; i < 12000; i++) {
        telemetry_reading r = reading_seq(i % 2 ? "a" : "b", now - 2 * hour + i, 1, i);
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    for (int i = 0; i < 10; i++) {
        telemetry_reading r = reading_seq("a", now + i, 2, i);
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    store_close(st);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM readings"), 12010);

    st = open_store(f, 0, 0, hour);
    store_stats s;
    WAIT_FOR(st, s, s.pruned == 12000, 20000);
    assert_int_equal(query_total(st, "a", 0, INT64_MAX), 10);
    assert_int_equal(query_total(st, "b", 0, INT64_MAX), 0);
    /* Devices and their last reading survive pruning. */
    store_device d;
    assert_int_equal(store_get_device(st, "b", &d), STORE_OK);
    assert_int_equal(d.has_last, 1);

    /* Rows that age past the limit while running are pruned too. */
    telemetry_reading old = reading_seq("a", now - 3 * hour, 3, 1);
    assert_int_equal(store_put_reading(st, &old), STORE_OK);
    WAIT_FOR(st, s, s.pruned == 12001, 20000);
    assert_int_equal(s.stored, 1);
    store_close(st);
}

static void test_newer_version_refused(void **state)
{
    fixture *f = *state;
    if (pg_url) {
        store *st = open_store(f, 0, 0, 0);
        store_close(st);
        assert_int_equal(pg_cluster_exec(f->path, "UPDATE vigil_schema SET version = 999"), 0);
        store_options o = {.path = f->path};
        char err[256] = "";
        st = (store *)1;
        assert_int_equal(store_open(&o, &st, err, sizeof err), STORE_EIO);
        assert_null(st);
        assert_non_null(strstr(err, "999"));
        assert_non_null(strstr(err, "newer"));
        assert_int_equal(db_int(f->path, "SELECT version FROM vigil_schema"), 999);
        return; /* "not a database file" is SQLite's */
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    store_options o = {.path = f->path};
    store *st = (store *)1;
    char err[256] = "";
    assert_int_equal(store_open(&o, &st, err, sizeof err), STORE_EIO);
    assert_null(st);
    assert_non_null(strstr(err, "999"));
    assert_non_null(strstr(err, "newer"));
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 999);

    /* Not a database at all. */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("this is not an SQLite file, just some text that is long enough........"
          "..............................................................", fp);
    fclose(fp);
    assert_int_equal(store_open(&o, &st, err, sizeof err), STORE_EIO);
    assert_true(strlen(err) > 0);
}


/* ---- SQLite only: schemas 5 and 6 (issue 13) --------------------------- */

/* The schema at version 4, exactly as store_sqlite.c's migrations 1..4
 * created it (copied: a database made by the previous release). */
static const char *const sqlite_v4_schema[] = {
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
};

/* The devices row an old-version writer created before a reading. */
static void sqlite_old_device(sqlite3 *db, const char *id)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO devices(id, first_seen, last_seen) VALUES(?1, 0, 0) "
                                        "ON CONFLICT(id) DO NOTHING",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
}

/* Writes r into a version-4 database the way the version-4 writer did. */
static void sqlite_v4_insert(sqlite3 *db, const telemetry_reading *r)
{
    sqlite3_stmt *s;
    sqlite_old_device(db, r->device_id);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO readings(device, t, received, ts, uptime, boot, seq, "
                                        "object_temp, ambient_temp, heart_rate, spo2, battery, rssi, flags, "
                                        "sensor_type, fw) SELECT key, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                                        "?11, ?12, ?13, ?14, ?15, ?16 FROM devices WHERE id = ?1",
                                        -1, &s, NULL),
                     SQLITE_OK);
    uint32_t p = r->present;
    uint32_t flags = (p & 0xFFFFu) | (r->hr_valid ? 1u << 16 : 0) | (r->spo2_valid ? 1u << 17 : 0) |
                     (r->temp_valid ? 1u << 18 : 0);
    sqlite3_bind_text(s, 1, r->device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (p & TELEMETRY_HAS_TS) ? r->ts_ms : r->received_ms);
    sqlite3_bind_int64(s, 3, r->received_ms);
#define V4_I(i, bit, v) ((p & (bit)) ? sqlite3_bind_int64(s, i, v) : sqlite3_bind_null(s, i))
#define V4_D(i, bit, v) ((p & (bit)) ? sqlite3_bind_double(s, i, v) : sqlite3_bind_null(s, i))
    V4_I(4, TELEMETRY_HAS_TS, r->ts_ms);
    V4_I(5, TELEMETRY_HAS_UPTIME, r->uptime_ms);
    sqlite3_bind_int64(s, 6, (p & TELEMETRY_HAS_BOOT) ? r->boot : 0);
    V4_I(7, TELEMETRY_HAS_SEQ, r->seq);
    V4_D(8, TELEMETRY_HAS_OBJECT_TEMP, r->object_temp);
    V4_D(9, TELEMETRY_HAS_AMBIENT_TEMP, r->ambient_temp);
    V4_D(10, TELEMETRY_HAS_HEART_RATE, r->heart_rate);
    V4_D(11, TELEMETRY_HAS_SPO2, r->spo2);
    V4_D(12, TELEMETRY_HAS_BATTERY, r->battery);
    V4_I(13, TELEMETRY_HAS_RSSI, r->rssi);
#undef V4_I
#undef V4_D
    sqlite3_bind_int64(s, 14, flags);
    (p & TELEMETRY_HAS_SENSOR_TYPE) ? sqlite3_bind_text(s, 15, r->sensor_type, -1, SQLITE_STATIC)
                                    : sqlite3_bind_null(s, 15);
    (p & TELEMETRY_HAS_FW) ? sqlite3_bind_text(s, 16, r->fw, -1, SQLITE_STATIC)
                           : sqlite3_bind_null(s, 16);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
}

/* What the API shows of a reading: the fields its present bits name. */
static void assert_same_reading(const telemetry_reading *want, const telemetry_reading *got)
{
    uint32_t p = want->present;
    assert_int_equal(got->present, p);
    assert_string_equal(got->device_id, want->device_id);
    assert_int_equal(got->received_ms, want->received_ms);
#define SAME_I(bit, f)                                                         \
    if (p & (bit))                                                             \
        assert_int_equal(got->f, want->f)
#define SAME_D(bit, f)                                                         \
    if (p & (bit))                                                             \
        assert_memory_equal(&got->f, &want->f, sizeof(double)) /* bit for bit */
    SAME_I(TELEMETRY_HAS_TS, ts_ms);
    SAME_I(TELEMETRY_HAS_UPTIME, uptime_ms);
    SAME_I(TELEMETRY_HAS_BOOT, boot);
    SAME_I(TELEMETRY_HAS_SEQ, seq);
    SAME_D(TELEMETRY_HAS_OBJECT_TEMP, object_temp);
    SAME_D(TELEMETRY_HAS_AMBIENT_TEMP, ambient_temp);
    SAME_D(TELEMETRY_HAS_HEART_RATE, heart_rate);
    SAME_D(TELEMETRY_HAS_SPO2, spo2);
    SAME_D(TELEMETRY_HAS_BATTERY, battery);
    SAME_I(TELEMETRY_HAS_RSSI, rssi);
    SAME_I(TELEMETRY_HAS_HR_VALID, hr_valid);
    SAME_I(TELEMETRY_HAS_SPO2_VALID, spo2_valid);
    SAME_I(TELEMETRY_HAS_TEMP_VALID, temp_valid);
#undef SAME_I
#undef SAME_D
    if (p & TELEMETRY_HAS_SENSOR_TYPE)
        assert_string_equal(got->sensor_type, want->sensor_type);
    if (p & TELEMETRY_HAS_FW)
        assert_string_equal(got->fw, want->fw);
}

/* A mix of readings that exercises every column: values that scale exactly
 * and values that do not, absent fields (with junk in the struct, which the
 * old writer stored NULL anyway), readings without seq or boot. */
#define MIX_N 400

/* After a migration of MIX_N readings: two resends are duplicates, a
 * reading without seq and a fresh one are stored; closes st. */
static void sqlite_check_resends(store *st, const char *path, const telemetry_reading *again,
                                 const telemetry_reading *again_b, const telemetry_reading *seqless,
                                 const telemetry_reading *fresh)
{
    const telemetry_reading *all[] = {again, again_b, seqless, fresh};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(store_put_reading(st, all[i]), STORE_OK);
    wait_idle(st);
    store_stats ss;
    store_get_stats(st, &ss);
    assert_int_equal(ss.duplicates, 2);
    assert_int_equal(ss.stored, 2);
    store_close(st);
    assert_int_equal(db_int(path, "SELECT count(*) FROM readings"), MIX_N + 2);
    assert_int_equal(db_int(path, "SELECT count(*) FROM readings WHERE seq IS NULL"), MIX_N / 5 + 1);
}

static telemetry_reading sqlite_mix(int i)
{
    telemetry_reading r = reading_seq(i % 3 ? "mig-a" : "mig-b", 1795794000000 + i * 1000, 5, i);
    if (i % 7 == 0) {
        r.present |= TELEMETRY_HAS_TS;
        r.ts_ms = 1795794000000 + i * 1000 - 250; /* t = ts, received later */
    }
    if (i % 5 == 0) {
        r.present &= ~(uint32_t)(TELEMETRY_HAS_SEQ | TELEMETRY_HAS_BOOT); /* seq-less */
        r.received_ms = 1795794000000 + (i / 10) * 10000; /* several at the same t */
    }
    if (i % 11 == 0)
        r.present &= ~(uint32_t)TELEMETRY_HAS_BOOT; /* seq without boot: boot 0 */
    r.object_temp = i % 2 ? 36.6 : 36.123456789 + i;      /* exact in centi-degrees, or not */
    r.ambient_temp = i % 4 ? -0.5 - i / 100.0 : -0.0;     /* negative, and -0 */
    r.heart_rate = i % 3 ? 60 + i % 40 : 72.25;
    r.spo2 = 97.5 + (i % 3) / 10.0;                       /* 97.6 is not exactly 976 / 10 */
    r.present |= TELEMETRY_HAS_UPTIME | TELEMETRY_HAS_RSSI;
    r.uptime_ms = 1000 + i;
    r.rssi = -40 - i % 50;
    if (i % 2) {
        r.present |= TELEMETRY_HAS_BATTERY | TELEMETRY_HAS_FW | TELEMETRY_HAS_HR_VALID;
        r.battery = i % 4 == 1 ? 87.5 : 1e-3 * i;
        r.hr_valid = 1;
        snprintf(r.fw, sizeof r.fw, "0.%d.0", i % 3);
    } else {
        r.battery = 12.5; /* absent: not stored */
    }
    if (i % 6 == 0)
        r.present &= ~(uint32_t)(TELEMETRY_HAS_SENSOR_TYPE | TELEMETRY_HAS_HEART_RATE);
    if (i % 9 == 0) {
        r.present |= TELEMETRY_HAS_SPO2_VALID | TELEMETRY_HAS_TEMP_VALID;
        r.temp_valid = 1;
    }
    return r;
}

/* Checks the store holds exactly mix(0 .. MIX_N - 1), per device in time
 * order (ties: arrival order). from_v4: as a version-4 database returned
 * them — its REAL columns turned -0.0 into 0. */
static void sqlite_check_mix_of(store *st, telemetry_reading (*mix)(int), int from_v4)
{
    const char *ids[] = {"mig-a", "mig-b"};
    for (int d = 0; d < 2; d++) {
        store_series s;
        assert_int_equal(store_query_readings(st, ids[d], 0, INT64_MAX, 100000, &s), STORE_OK);
        assert_false(s.downsampled);
        size_t j = 0;
        telemetry_reading want[MIX_N];
        int64_t want_t[MIX_N];
        size_t n = 0;
        for (int i = 0; i < MIX_N; i++) {
            telemetry_reading r = mix(i);
            if (strcmp(r.device_id, ids[d]))
                continue;
            if (from_v4 && r.ambient_temp == 0)
                r.ambient_temp = 0.0;
            int64_t t = (r.present & TELEMETRY_HAS_TS) ? r.ts_ms : r.received_ms;
            size_t at = n++; /* insertion sort by t, stable */
            while (at > 0 && want_t[at - 1] > t) {
                want[at] = want[at - 1];
                want_t[at] = want_t[at - 1];
                at--;
            }
            want[at] = r;
            want_t[at] = t;
        }
        assert_int_equal(s.total, n);
        for (j = 0; j < n; j++) {
            assert_int_equal(s.raw_t[j], want_t[j]);
            assert_same_reading(&want[j], &s.raw[j]);
        }
        store_series_free(&s);
    }
}

static void sqlite_check_mix(store *st, int from_v4) { sqlite_check_mix_of(st, sqlite_mix, from_v4); }

static void test_sqlite_migrate_from_v4(void **state)
{
    if (pg_url)
        skip(); /* SQLite-only: the SQLite schema and file */
    fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    for (size_t i = 0; i < sizeof sqlite_v4_schema / sizeof *sqlite_v4_schema; i++)
        assert_int_equal(sqlite3_exec(db, sqlite_v4_schema[i], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 4; BEGIN", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < MIX_N; i++) {
        telemetry_reading r = sqlite_mix(i);
        sqlite_v4_insert(db, &r);
    }
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    store *st = open_store(f, 0, 0, 0);
    store_close(st);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 6); /* through 5 to 6 */
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM readings"), MIX_N);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM readings WHERE seq IS NULL"), MIX_N / 5);
    /* The old layout is gone; the new table has no rowid (schema 6: the
     * table is stream_readings, readings a view of it). */
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                     "('readings_device_t', 'readings_device_boot_seq', 'readings_v5')"),
                     0);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM pragma_table_list WHERE name = "
                                     "'stream_readings' AND wr = 1"),
                     1);

    st = open_store(f, 0, 0, 0);
    sqlite_check_mix(st, 1);

    /* Still idempotent on (device, boot, seq) after the migration; a reading
     * without seq is still always stored. */
    telemetry_reading again = sqlite_mix(1), again_b = sqlite_mix(3), seqless = sqlite_mix(5);
    telemetry_reading fresh = sqlite_mix(1);
    fresh.seq = MIX_N + 1;
    sqlite_check_resends(st, f->path, &again, &again_b, &seqless, &fresh);
}

/* Schema 5's readings, as migration 5 left them (on top of
 * sqlite_v4_schema: a database made by the previous release). */
static const char sqlite_v5_step[] =
    "DROP TABLE readings;"
    "CREATE TABLE reading_meta ("
    "  id INTEGER PRIMARY KEY,"
    "  sensor_type TEXT, fw TEXT"
    ");"
    "CREATE INDEX reading_meta_texts ON reading_meta(sensor_type, fw);"
    "CREATE TABLE readings ("
    "  device INTEGER NOT NULL REFERENCES devices(key),"
    "  boot INTEGER NOT NULL,"
    "  k INTEGER NOT NULL,"
    "  t INTEGER NOT NULL,"
    "  flags INTEGER NOT NULL,"
    "  rdelta INTEGER NOT NULL,"
    "  uptime INTEGER,"
    "  object_temp, ambient_temp,"
    "  heart_rate, spo2,"
    "  meta INTEGER REFERENCES reading_meta(id),"
    "  battery,"
    "  rssi INTEGER,"
    "  seq INTEGER AS (CASE WHEN k >= 0 THEN k END) VIRTUAL,"
    "  received INTEGER AS (t + rdelta) VIRTUAL,"
    "  PRIMARY KEY (device, boot, k)"
    ") WITHOUT ROWID;"
    "CREATE TABLE reading_spans ("
    "  device INTEGER NOT NULL,"
    "  boot INTEGER NOT NULL,"
    "  blk INTEGER NOT NULL,"
    "  t_lo INTEGER NOT NULL,"
    "  t_hi INTEGER NOT NULL,"
    "  PRIMARY KEY (device, boot, blk)"
    ") WITHOUT ROWID;";

/* Binds a vital the way the version-5 writer did: value * scale as an
 * INTEGER when that divides back to exactly v, else v; NULL when absent. */
static void sqlite_v5_bind_vital(sqlite3_stmt *s, int i, int present, double v, double scale)
{
    if (!present) {
        sqlite3_bind_null(s, i);
        return;
    }
    if (fabs(v) < 1e12 && !(v == 0 && signbit(v))) {
        double k = round(v * scale);
        if ((double)(int64_t)k / scale == v) {
            sqlite3_bind_int64(s, i, (int64_t)k);
            return;
        }
    }
    sqlite3_bind_double(s, i, v);
}

/* Writes r into a version-5 database the way the version-5 writer did
 * (reading_spans is filled once at the end, by the caller). */
static void sqlite_v5_insert(sqlite3 *db, const telemetry_reading *r)
{
    sqlite3_stmt *s;
    sqlite_old_device(db, r->device_id);
    uint32_t p = r->present;
    int has_st = (p & TELEMETRY_HAS_SENSOR_TYPE) != 0, has_fw = (p & TELEMETRY_HAS_FW) != 0;
    if (has_st || has_fw) {
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO reading_meta(sensor_type, fw) SELECT ?1, ?2 "
                                            "WHERE NOT EXISTS (SELECT 1 FROM reading_meta "
                                            "WHERE sensor_type IS ?1 AND fw IS ?2)",
                                            -1, &s, NULL),
                         SQLITE_OK);
        has_st ? sqlite3_bind_text(s, 1, r->sensor_type, -1, SQLITE_STATIC) : sqlite3_bind_null(s, 1);
        has_fw ? sqlite3_bind_text(s, 2, r->fw, -1, SQLITE_STATIC) : sqlite3_bind_null(s, 2);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);
    }
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "INSERT INTO readings(device, boot, k, t, flags, rdelta, uptime, object_temp, "
                           "ambient_temp, heart_rate, spo2, meta, battery, rssi) "
                           "SELECT d.key, ?2, coalesce(?3, (SELECT coalesce(min(x.k), 0) - 1 FROM readings "
                           "AS x WHERE x.device = d.key AND x.boot = ?2 AND x.k < 0)), ?4, ?5, ?6, ?7, "
                           "?8, ?9, ?10, ?11, (SELECT m.id FROM reading_meta AS m WHERE ?15 AND "
                           "m.sensor_type IS ?16 AND m.fw IS ?17), ?12, ?13 FROM devices AS d WHERE d.id = ?1",
                           -1, &s, NULL),
        SQLITE_OK);
    uint32_t flags = (p & 0xFFFFu) | (r->hr_valid ? 1u << 16 : 0) | (r->spo2_valid ? 1u << 17 : 0) |
                     (r->temp_valid ? 1u << 18 : 0);
    int64_t t = (p & TELEMETRY_HAS_TS) ? r->ts_ms : r->received_ms;
    sqlite3_bind_text(s, 1, r->device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (p & TELEMETRY_HAS_BOOT) ? r->boot : 0);
    (p & TELEMETRY_HAS_SEQ) ? sqlite3_bind_int64(s, 3, r->seq) : sqlite3_bind_null(s, 3);
    sqlite3_bind_int64(s, 4, t);
    sqlite3_bind_int64(s, 5, flags);
    sqlite3_bind_int64(s, 6, r->received_ms - t);
    (p & TELEMETRY_HAS_UPTIME) ? sqlite3_bind_int64(s, 7, r->uptime_ms) : sqlite3_bind_null(s, 7);
    sqlite_v5_bind_vital(s, 8, p & TELEMETRY_HAS_OBJECT_TEMP, r->object_temp, 100);
    sqlite_v5_bind_vital(s, 9, p & TELEMETRY_HAS_AMBIENT_TEMP, r->ambient_temp, 100);
    sqlite_v5_bind_vital(s, 10, p & TELEMETRY_HAS_HEART_RATE, r->heart_rate, 10);
    sqlite_v5_bind_vital(s, 11, p & TELEMETRY_HAS_SPO2, r->spo2, 10);
    sqlite_v5_bind_vital(s, 12, p & TELEMETRY_HAS_BATTERY, r->battery, 10);
    (p & TELEMETRY_HAS_RSSI) ? sqlite3_bind_int64(s, 13, r->rssi) : sqlite3_bind_null(s, 13);
    sqlite3_bind_int(s, 15, has_st || has_fw);
    has_st ? sqlite3_bind_text(s, 16, r->sensor_type, -1, SQLITE_STATIC) : sqlite3_bind_null(s, 16);
    has_fw ? sqlite3_bind_text(s, 17, r->fw, -1, SQLITE_STATIC) : sqlite3_bind_null(s, 17);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_finalize(s);
}

/* sqlite_mix with more for schema 6 to get right: several boots per
 * device, readings with no vitals and no texts (some with validity bits
 * only), every flag a column does not hold. */
static telemetry_reading sqlite_mix6(int i)
{
    telemetry_reading r = sqlite_mix(i);
    if ((r.present & TELEMETRY_HAS_BOOT) && i % 4 == 3)
        r.boot = 7 + i % 8; /* several boots per device */
    if (i % 17 == 0)
        r.present &= ~(uint32_t)(TELEMETRY_HAS_OBJECT_TEMP | TELEMETRY_HAS_AMBIENT_TEMP |
                                 TELEMETRY_HAS_HEART_RATE | TELEMETRY_HAS_SPO2 |
                                 TELEMETRY_HAS_SENSOR_TYPE | TELEMETRY_HAS_FW | TELEMETRY_HAS_BATTERY |
                                 TELEMETRY_HAS_RSSI | TELEMETRY_HAS_UPTIME);
    if (i % 13 == 0) {
        r.present |= TELEMETRY_HAS_SPO2_VALID;
        r.spo2_valid = 1;
    }
    return r;
}

/* Islands as store_load_completeness reports them, sorted. */
typedef struct mix_island {
    char id[16];
    int64_t boot, lo, hi;
} mix_island;
typedef struct mix_islands {
    size_t n;
    mix_island v[MIX_N];
} mix_islands;

static void mix_islands_add(void *ctx, const char *id, int64_t boot, int64_t lo, int64_t hi)
{
    mix_islands *x = ctx;
    assert_true(x->n < MIX_N);
    mix_island *e = &x->v[x->n++];
    snprintf(e->id, sizeof e->id, "%s", id);
    e->boot = boot;
    e->lo = lo;
    e->hi = hi;
}

static int mix_island_cmp(const void *a, const void *b)
{
    const mix_island *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    if (x->boot != y->boot)
        return x->boot < y->boot ? -1 : 1;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Checks the islands (runs of consecutive seqs) of boot of each mix device
 * against mix(0 .. MIX_N - 1). */
static void sqlite_check_islands(store *st, telemetry_reading (*mix)(int), int64_t boot)
{
    mix_islands *got = calloc(2, sizeof *got), *want = got + 1;
    assert_non_null(got);
    const char *ids[] = {"mig-a", "mig-b"};
    for (int d = 0; d < 2; d++) {
        int64_t lo = -1, prev = -2;
        for (int i = 0; i < MIX_N; i++) { /* seq i: ascending */
            telemetry_reading r = mix(i);
            int64_t b = (r.present & TELEMETRY_HAS_BOOT) ? r.boot : 0;
            if (strcmp(r.device_id, ids[d]) || !(r.present & TELEMETRY_HAS_SEQ) || b != boot)
                continue;
            if (r.seq != prev + 1) {
                if (lo >= 0)
                    mix_islands_add(want, ids[d], boot, lo, prev);
                lo = r.seq;
            }
            prev = r.seq;
        }
        if (lo >= 0)
            mix_islands_add(want, ids[d], boot, lo, prev);
    }
    store_completeness_cb cb = {.island = mix_islands_add, .ctx = got};
    assert_int_equal(store_load_completeness(st, &cb), STORE_OK);
    qsort(got->v, got->n, sizeof *got->v, mix_island_cmp);
    assert_true(want->n > 2);
    assert_int_equal(got->n, want->n);
    for (size_t i = 0; i < want->n; i++) {
        assert_string_equal(got->v[i].id, want->v[i].id);
        assert_int_equal(got->v[i].boot, want->v[i].boot);
        assert_int_equal(got->v[i].lo, want->v[i].lo);
        assert_int_equal(got->v[i].hi, want->v[i].hi);
    }
    free(got);
}

static void test_sqlite_migrate_from_v5(void **state)
{
    if (pg_url)
        skip(); /* SQLite-only: the SQLite schema and file */
    fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    for (size_t i = 0; i < sizeof sqlite_v4_schema / sizeof *sqlite_v4_schema; i++)
        assert_int_equal(sqlite3_exec(db, sqlite_v4_schema[i], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sqlite_v5_step, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 5; BEGIN", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < MIX_N; i++) {
        telemetry_reading r = sqlite_mix6(i);
        sqlite_v5_insert(db, &r);
    }
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO reading_spans SELECT device, boot, k >> 8, min(t), max(t) "
                                  "FROM readings GROUP BY device, boot, k >> 8; "
                                  "UPDATE devices SET boot = 5; COMMIT",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    int64_t boots = db_int(f->path, "SELECT count(DISTINCT device || '/' || boot) FROM readings");
    assert_true(boots >= 4);
    /* A digest of each row's flags, ts and texts, to compare with what the
     * readings view rebuilds after the migration. */
    int64_t digest = db_int(f->path,
                            "SELECT sum(r.flags * ((r.k & 1023) + 1)) + "
                            "sum(CASE WHEN r.flags & 32 THEN r.t % 1000003 ELSE 7 END) + "
                            "sum(coalesce(length(m.sensor_type), 0) * 3 + coalesce(length(m.fw), 0)) "
                            "FROM readings AS r LEFT JOIN reading_meta AS m ON m.id = r.meta");

    store *st = open_store(f, 0, 0, 0);
    store_close(st);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 6);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM stream_readings"), MIX_N);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM reading_streams"), boots);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM readings WHERE seq IS NULL"), MIX_N / 5);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                     "('reading_meta_v6', 'reading_spans_v6', 'reading_meta_texts')"),
                     0);
    assert_int_equal(db_int(f->path, "SELECT sum(flags * ((k & 1023) + 1)) + "
                                     "sum(coalesce(ts % 1000003, 7)) + "
                                     "sum(coalesce(length(sensor_type), 0) * 3 + coalesce(length(fw), 0)) "
                                     "FROM readings"),
                     digest);
    /* Both kinds of meta: none, and flags without texts. */
    assert_true(db_int(f->path, "SELECT count(*) FROM readings WHERE meta IS NULL") > 0);
    assert_true(db_int(f->path, "SELECT count(*) FROM reading_meta WHERE sensor_type IS NULL AND "
                                "fw IS NULL") > 0);

    st = open_store(f, 0, 0, 0);
    sqlite_check_mix_of(st, sqlite_mix6, 0); /* -0.0 stayed REAL in schema 5 */
    sqlite_check_islands(st, sqlite_mix6, 5); /* the completeness replay */

    /* Still idempotent on (device, boot, seq), in each boot; a reading
     * without seq is still always stored. */
    telemetry_reading again = sqlite_mix6(1), again_b = sqlite_mix6(3), seqless = sqlite_mix6(5);
    telemetry_reading fresh = sqlite_mix6(3);
    fresh.boot = 8; /* seq 3 of another boot */
    sqlite_check_resends(st, f->path, &again, &again_b, &seqless, &fresh);
}

/* The same readings written by this version read back the same. */
static void test_sqlite_compact_values_roundtrip(void **state)
{
    if (pg_url)
        skip(); /* SQLite-only: the SQLite schema and file */
    fixture *f = *state;
    store *st = open_store(f, 0, 0, 0);
    for (int i = 0; i < MIX_N; i++) {
        telemetry_reading r = sqlite_mix(i);
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    store_close(st);
    /* Exact values went in as scaled integers, the others as REAL. */
    assert_true(db_int(f->path, "SELECT count(*) FROM readings WHERE typeof(object_temp) = 'integer'") > 0);
    assert_true(db_int(f->path, "SELECT count(*) FROM readings WHERE typeof(object_temp) = 'real'") > 0);
    st = open_store(f, 0, 0, 0);
    sqlite_check_mix(st, 0);
    store_close(st);
}

/* ---- the devices row's latest reading (issue 13) ------------------------
 * The SQLite writer copies a device's latest reading into its devices row
 * at most every STORE_DEVICE_ROW_FLUSH_MS (5 s; the first time 5 s after
 * open), not with every batch; reads of the rows must not tell. */

static double elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) * 1e3 + (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

/* Each record in a batch of its own (wait_idle between), all well inside
 * the 5 s: a reading with fw 1.0, the device's status with fw 2.0, a
 * reading without fw. Every batch writing the row gives fw 2.0 (the status
 * over the first reading; the second keeps it) and the second reading as
 * the latest; so must the deferred rows, after a read asks for them. */
static void test_devices_row_latest_after_read(void **state)
{
    fixture *f = *state;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store *st = open_store(f, 0, 0, 0);
    telemetry_reading r1 = reading_seq("cad", 1000, 3, 1);
    r1.present |= TELEMETRY_HAS_FW;
    snprintf(r1.fw, sizeof r1.fw, "1.0");
    assert_int_equal(store_put_reading(st, &r1), STORE_OK);
    wait_idle(st);
    telemetry_status on = {.online = 1, .present = TELEMETRY_STATUS_HAS_FW, .received_ms = 2000};
    snprintf(on.device_id, sizeof on.device_id, "cad");
    snprintf(on.fw, sizeof on.fw, "2.0");
    assert_int_equal(store_put_status(st, &on), STORE_OK);
    wait_idle(st);
    telemetry_reading r2 = reading_seq("cad", 3000, 3, 2);
    r2.heart_rate = 81;
    assert_int_equal(store_put_reading(st, &r2), STORE_OK);
    telemetry_reading other = reading_seq("cad-2", 3100, 1, 7);
    assert_int_equal(store_put_reading(st, &other), STORE_OK);
    wait_idle(st);
    double ms = elapsed_ms(&t0);
    /* In the file, the row is behind (the deferral is on): it has the
     * first reading, which the status wrote before itself, not the second. */
    if (!pg_url && ms < 4000) {
        assert_int_equal(db_int(f->path, "SELECT last_seq FROM devices WHERE id = 'cad'"), 1);
        assert_int_equal(db_int(f->path, "SELECT last_seq IS NULL FROM devices WHERE id = 'cad-2'"), 1);
    }

    store_device d;
    assert_int_equal(store_get_device(st, "cad", &d), STORE_OK);
    assert_int_equal(d.has_last, 1);
    assert_int_equal(d.last.seq, 2);
    assert_int_equal(d.last.received_ms, 3000);
    assert_true(d.last.heart_rate == 81);
    assert_string_equal(d.last.fw, "");
    assert_string_equal(d.fw, "2.0");
    assert_int_equal(d.boot, 3);
    assert_int_equal(d.last_seen_ms, 3000);
    assert_int_equal(d.online, 1);
    /* The list (every device at once) too. */
    store_device *v;
    size_t n;
    assert_int_equal(store_list_devices(st, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[1].id, "cad-2");
    assert_int_equal(v[1].has_last, 1);
    assert_int_equal(v[1].last.seq, 7);
    assert_int_equal(v[0].last.seq, 2);
    free(v);
    store_close(st);
    /* And the file, after close, holds the same. */
    assert_int_equal(db_int(f->path, "SELECT last_seq FROM devices WHERE id = 'cad'"), 2);
    assert_int_equal(db_int(f->path, "SELECT last_seq FROM devices WHERE id = 'cad-2'"), 7);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    assert_int_equal(fclose(in), 0);
    assert_int_equal(fclose(out), 0);
}

/* What a kill -9 leaves: the database and its WAL as they are on disk
 * while the store is open and idle (no transaction in flight), copied to
 * g->path (f's path + ".crash"); unlink_crash_image removes them. */
static void crash_image(const fixture *f, fixture *g)
{
    *g = *f;
    snprintf(g->path, sizeof g->path, "%.200s.crash", f->path);
    char a[300], b[300];
    snprintf(a, sizeof a, "%s-wal", f->path);
    snprintf(b, sizeof b, "%s-wal", g->path);
    copy_file(f->path, g->path);
    copy_file(a, b);
}

static void unlink_crash_image(const char *path)
{
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

/* A kill -9 before the rows were written: the next open takes each
 * device's latest reading from its stored readings. */
static void test_sqlite_devices_row_reconciled_after_crash(void **state)
{
    if (pg_url)
        skip(); /* SQLite-only: the SQLite files */
    fixture *f = *state;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store *st = open_store(f, 0, 0, 0);
    telemetry_reading first = reading_seq("crash-a", 500, 4, 0);
    assert_int_equal(store_put_reading(st, &first), STORE_OK);
    wait_idle(st);
    for (int i = 1; i <= 5; i++) { /* a later batch */
        telemetry_reading r = reading_seq("crash-a", 1000 + i, 4, i);
        r.heart_rate = 70 + i;
        r.present |= TELEMETRY_HAS_TS;
        r.ts_ms = 1795794000000 + i;
        assert_int_equal(store_put_reading(st, &r), STORE_OK);
    }
    telemetry_reading nb = reading("crash-b", 2000); /* no seq: k < 0 */
    telemetry_reading nb2 = reading("crash-b", 2500);
    nb2.spo2 = 91;
    assert_int_equal(store_put_reading(st, &nb), STORE_OK);
    assert_int_equal(store_put_reading(st, &nb2), STORE_OK);
    wait_idle(st);
    fixture g;
    crash_image(f, &g);
    double ms = elapsed_ms(&t0);
    store_close(st);
    if (ms < 4000) /* the image's rows are behind: what the open must mend */
        assert_int_equal(db_int(g.path, "SELECT count(*) FROM devices WHERE last_received IS NULL"), 2);

    st = open_store(&g, 0, 0, 0);
    store_device d;
    assert_int_equal(store_get_device(st, "crash-a", &d), STORE_OK);
    assert_int_equal(d.has_last, 1);
    assert_int_equal(d.last.seq, 5);
    assert_int_equal(d.last.received_ms, 1005);
    assert_int_equal(d.last.ts_ms, 1795794000005);
    assert_int_equal(d.last.boot, 4);
    assert_true(d.last.heart_rate == 75);
    assert_true(d.last.object_temp == 36.6);
    assert_string_equal(d.last.sensor_type, "MAX30614");
    assert_int_equal(d.last.present, first.present | TELEMETRY_HAS_TS);
    assert_int_equal(d.last_seen_ms, 1005);
    assert_int_equal(store_get_device(st, "crash-b", &d), STORE_OK);
    assert_int_equal(d.has_last, 1);
    assert_int_equal(d.last.received_ms, 2500);
    assert_true(d.last.spo2 == 91);
    assert_int_equal(d.last.present, nb.present);
    store_close(st);
    unlink_crash_image(g.path);
}

/* Bytes on disk per reading (every table and index, after a checkpoint):
 * deterministic for a given SQLite, so a generous bound is a fair test.
 * VIGIL_STORE_SIZE_DEVICES scales it up for docs/BENCHMARKS.md (10,000 x 40
 * there); the figures are printed either way. */
static void test_sqlite_bytes_per_reading(void **state)
{
    if (pg_url)
        skip(); /* SQLite-only: the SQLite schema and file */
    fixture *f = *state;
    const char *env = getenv("VIGIL_STORE_SIZE_DEVICES");
    const long ndev = env ? atol(env) : 2500, per = 40;
    const long n = ndev * per;
    /* VIGIL_STORE_SIZE_RATE: readings per second (paced, like a live fleet:
     * ndev devices at rate / ndev Hz); unset: as fast as the queue takes them. */
    const char *rate_env = getenv("VIGIL_STORE_SIZE_RATE");
    const long rate = rate_env ? atol(rate_env) : 0;
    store *st = open_store(f, 1 << 16, 0, 0);
    struct timespec c0, c1, w0, w1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    clock_gettime(CLOCK_MONOTONIC, &w0);
    const int64_t t0 = 1795794000000;
    for (long m = 0; m < n; m++) { /* the bench's schedule: message m to device m mod N */
        long dev = m % ndev, seq = m / ndev;
        if (rate > 0 && m % 100 == 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double ahead_ms = (double)m * 1e3 / (double)rate -
                              ((double)(now.tv_sec - w0.tv_sec) * 1e3 + (double)(now.tv_nsec - w0.tv_nsec) / 1e6);
            if (ahead_ms >= 1)
                sleep_ms((int)ahead_ms);
        }
        char id[32];
        snprintf(id, sizeof id, "B%06ld", dev);
        telemetry_reading r = reading_seq(id, t0 + seq * 1000 + dev % 1000, 41234, seq);
        r.present |= TELEMETRY_HAS_UPTIME;
        r.uptime_ms = 5000 + seq * 1000;
        r.heart_rate = 60 + (int)(seq % 40);
        store_err rc;
        int tries = 0;
        while ((rc = store_put_reading(st, &r)) == STORE_EFULL && tries++ < 10000)
            sleep_ms(1);
        assert_int_equal(rc, STORE_OK);
    }
    store_stats s;
    WAIT_FOR(st, s, s.stored == (uint64_t)n, 600000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    fixture g;
    crash_image(f, &g); /* for the reconcile's cost below */
    store_close(st); /* the last connection checkpoints and removes the WAL */
    int64_t bytes = db_int(f->path, "SELECT page_count * page_size FROM pragma_page_count, "
                                    "pragma_page_size");
    double per_reading = (double)bytes / (double)n;
    double cpu_us = ((double)(c1.tv_sec - c0.tv_sec) * 1e6 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e3) / (double)n;
    double wall_us = ((double)(w1.tv_sec - w0.tv_sec) * 1e6 + (double)(w1.tv_nsec - w0.tv_nsec) / 1e3) / (double)n;
    printf("store size: %ld readings, %ld devices: %.1f bytes/reading; %.2f us CPU, %.2f us wall "
           "per reading (put + write)\n",
           n, ndev, per_reading, cpu_us, wall_us);
    assert_true(per_reading < 64);
    /* Opening after a kill -9 (rows up to 5 s behind, reconciled) and
     * after a clean close (nothing to mend, the same seeks). The image's
     * WAL is checkpointed first, so that both opens differ by the rows
     * mended only. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(g.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    printf("kill -9 image: %" PRId64 " of %ld devices rows behind\n",
           db_int(g.path, "SELECT count(*) FROM devices WHERE last_seq IS NOT 39"), ndev);
    const fixture *which[] = {&g, f};
    for (int i = 0; i < 2; i++) {
        clock_gettime(CLOCK_MONOTONIC, &w0);
        st = open_store(which[i], 0, 0, 0);
        double open_ms = elapsed_ms(&w0);
        store_close(st);
        printf("store open with the reconcile, %ld devices, %s: %.1f ms\n", ndev,
               i == 0 ? "kill -9 image" : "closed cleanly", open_ms);
    }
    unlink_crash_image(g.path);
}

/* The writer checkpoints its WAL at its own threshold (store_sqlite.c,
 * STORE_WAL_CHECKPOINT_PAGES = 4,000 pages), not SQLite's 1,000, and still
 * checkpoints: SQLite reuses the -wal file from its start after a
 * checkpoint without shrinking it, so the file's size is the most frames
 * the WAL ever held. 60 rounds of one committed reading per device write
 * well over 4,000 frames in commits of a few hundred at most. */
static void test_sqlite_wal_checkpoint_threshold(void **state)
{
    if (pg_url)
        skip(); /* SQLite-only: the SQLite WAL file */
    fixture *f = *state;
    store *st = open_store(f, 4096, 0, 0);
    char wal[sizeof f->path + 8];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    const long ndev = 1000, rounds = 60, frame = 4096 + 24; /* page + frame header */
    long most = 0;
    for (long seq = 0; seq < rounds; seq++) {
        for (long dev = 0; dev < ndev; dev++) {
            char id[32];
            snprintf(id, sizeof id, "W%04ld", dev);
            telemetry_reading r = reading_seq(id, 1795794000000 + seq * 1000, 7, seq);
            assert_int_equal(store_put_reading(st, &r), STORE_OK);
        }
        assert_int_equal(store_sync(st, 10000), STORE_OK);
        struct stat sb;
        assert_int_equal(stat(wal, &sb), 0);
        long frames = ((long)sb.st_size - 32) / frame;
        most = frames > most ? frames : most;
    }
    store_close(st);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM readings"), ndev * rounds);
    printf("WAL: at most %ld frames\n", most);
    assert_true(most > 1500); /* not checkpointed at SQLite's 1,000 */
    assert_true(most <= 5000); /* checkpointed at 4,000 (plus the commit that crossed it) */
}

int main(void)
{
    log_threshold = LOG_LEVEL_ERROR;
    pg_url = pg_cluster_url();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_close_reopen_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_upsert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_get_notfound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_inclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downsample_vs_bruteforce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_invalid_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_migrate_from_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_migrate_from_v5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_compact_values_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_bytes_per_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_wal_checkpoint_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices_row_latest_after_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_devices_row_reconciled_after_crash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
