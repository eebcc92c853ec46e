/* PostgreSQL-only tests of the store (server/store_pg*.c), against the
 * private cluster tests/support/pg_cluster.py starts (VIGIL_TEST_PG_URL; the
 * server can be stopped and started again with VIGIL_TEST_PG_CTL). Each
 * test gets a fresh database. What both engines share is in test_store.c;
 * here: partitions made ahead of need, retention by dropping partitions
 * (and the prune lock), connection loss and recovery with nothing lost or
 * doubled, a backend that never answers (stopped) given up at the
 * deadline, records refused alone, many new devices in one batch,
 * concurrent openers, secrets kept out of
 * errors and logs, and a throughput figure for a 2048-reading batch. Some
 * tests call the engine directly (store_pg_backend) to control prune's
 * clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "pg_cluster.h"
#include "store.h"
#include "store_backend.h"
#include "store_pg.h"

#define DAY_MS 86400000LL

typedef struct fixture {
    char url[256];
    char dbname[64];
    pg_testdb db;
    int stopped[2]; /* backends a test stopped (SIGSTOP): continued in teardown */
} fixture;

static const char *pg_url, *pg_ctl;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One value of a query as text into buf ("" for NULL). */
static void sql_text(const char *url, const char *sql, char *buf, size_t n)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        print_error("%s: %s", sql, PQresultErrorMessage(r));
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    snprintf(buf, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
}

static int64_t sql_int(const char *url, const char *sql)
{
    int ok;
    int64_t v = pg_cluster_int(url, sql, &ok);
    assert_true(ok);
    return v;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || pg_cluster_create_db(&f->db, "vp") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->url, sizeof f->url, "%s", f->db.url);
    snprintf(f->dbname, sizeof f->dbname, "%s", f->db.name);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof f->stopped / sizeof f->stopped[0]; i++)
        if (f->stopped[i] > 0)
            (void)kill(f->stopped[i], SIGCONT); /* else DROP DATABASE waits on it */
    int rc = pg_cluster_drop_db(&f->db);
    free(f);
    return rc;
}

static void server_ctl(const char *what)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s", pg_ctl, what);
    assert_int_equal(system(cmd), 0);
}

static store *open_store(const char *url, int64_t retention)
{
    store_options o = {.path = url, .retention_ms = retention};
    store *st = NULL;
    char err[256];
    store_err rc = store_open(&o, &st, err, sizeof err);
    if (rc != STORE_OK)
        print_error("store_open: %s\n", err);
    assert_int_equal(rc, STORE_OK);
    return st;
}

static void *open_engine(const char *url, size_t batch_max)
{
    store_options o = {.path = url};
    void *impl = NULL;
    char err[256];
    store_err rc = store_pg_backend.open(&o, batch_max, &impl, err, sizeof err);
    if (rc != STORE_OK)
        print_error("open: %s\n", err);
    assert_int_equal(rc, STORE_OK);
    return impl;
}

static store_rec reading_rec(const char *id, int64_t ts, int64_t boot, int64_t seq)
{
    store_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = STORE_REC_READING;
    telemetry_reading *r = &rec.u.r;
    snprintf(r->device_id, sizeof r->device_id, "%s", id);
    r->present = TELEMETRY_HAS_HEART_RATE | TELEMETRY_HAS_SPO2 | TELEMETRY_HAS_TS |
                 TELEMETRY_HAS_BOOT | TELEMETRY_HAS_SEQ;
    r->heart_rate = 70 + seq % 20;
    r->spo2 = 97;
    r->ts_ms = ts;
    r->received_ms = ts + 5;
    r->boot = boot;
    r->seq = seq;
    return rec;
}

static void write_ok(void *impl, const store_rec *b, size_t n, uint64_t stored, uint64_t dup)
{
    store_batch_result res;
    char err[256] = "";
    store_wr w = store_pg_backend.write_batch(impl, b, n, &res, err, sizeof err);
    if (w != STORE_WR_OK)
        print_error("write_batch: %s\n", err);
    assert_int_equal(w, STORE_WR_OK);
    assert_int_equal(res.stored, stored);
    assert_int_equal(res.duplicates, dup);
}

static void day_name(int64_t t_ms, char out[32])
{
    time_t s = (time_t)(t_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 32, "readings_p%Y%m%d", &tm);
}

/* Whether relation name exists in f's database. */
static int rel_exists(const fixture *f, const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT (to_regclass('%s') IS NOT NULL)::int", name);
    return (int)sql_int(f->url, sql);
}

/* ---- tests ------------------------------------------------------------ */

static void test_pg_partitions_ahead(void **state)
{
    fixture *f = *state;
    int64_t now = now_ms();
    store *st = open_store(f->url, 0);
    char name[32];
    for (int d = 0; d <= 2; d++) {
        day_name(now + d * DAY_MS, name);
        assert_true(rel_exists(f, name));
    }
    day_name(now + 3 * DAY_MS, name);
    assert_false(rel_exists(f, name));
    /* Today's reading goes to today's partition; one from 1970 to the
     * default partition, without failing the batch. */
    store_rec a = reading_rec("d", now, 1, 1), b = reading_rec("d", 1000, 1, 2);
    assert_int_equal(store_put_reading(st, &a.u.r), STORE_OK);
    assert_int_equal(store_put_reading(st, &b.u.r), STORE_OK);
    assert_int_equal(store_sync(st, 10000), STORE_OK);
    store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.stored, 2);
    store_close(st);
    char where[64];
    sql_text(f->url, "SELECT tableoid::regclass::text FROM readings WHERE seq = 1", where, sizeof where);
    day_name(now, name);
    assert_string_equal(where, name);
    sql_text(f->url, "SELECT tableoid::regclass::text FROM readings WHERE seq = 2", where, sizeof where);
    assert_string_equal(where, "readings_default");
}

static void test_pg_retention_drops_partitions(void **state)
{
    fixture *f = *state;
    const int64_t now = now_ms(), old = now - 5 * DAY_MS;
    void *impl = open_engine(f->url, 256);
    char err[256] = "";
    /* prune on a new day makes that day's partitions: here 5 days ago. */
    assert_int_equal(store_pg_backend.prune(impl, 0, old, 5000, err, sizeof err), 0);
    char old_part[32];
    day_name(old, old_part);
    assert_true(rel_exists(f, old_part));

    store_rec b[110];
    for (int i = 0; i < 100; i++)
        b[i] = reading_rec("old", old + i, 1, i);
    for (int i = 0; i < 10; i++)
        b[100 + i] = reading_rec("new", now + i, 1, i);
    write_ok(impl, b, 110, 110, 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", old_part);
    assert_int_equal(sql_int(f->url, sql), 100);

    /* Another vigild pruning holds the lock: this one does nothing. */
    PGconn *other = PQconnectdb(f->url);
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    PGresult *r = PQexec(other, "BEGIN; SELECT pg_advisory_xact_lock(1986619186)"); /* STORE_PG_LOCK_PRUNE */
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    assert_int_equal(store_pg_backend.prune(impl, now - DAY_MS, now, 5000, err, sizeof err), 0);
    assert_true(rel_exists(f, old_part));
    r = PQexec(other, "COMMIT");
    PQclear(r);
    PQfinish(other);

    /* The whole old day goes as one partition, its keys with it. */
    assert_int_equal(store_pg_backend.prune(impl, now - DAY_MS, now, 5000, err, sizeof err), 100);
    assert_false(rel_exists(f, old_part));
    assert_int_equal(sql_int(f->url, "SELECT count(*) FROM readings"), 10);
    assert_int_equal(sql_int(f->url, "SELECT count(*) FROM reading_seqs"), 10);
    store_device d;
    assert_int_equal(store_pg_backend.get_device(impl, "old", &d), STORE_OK);
    assert_int_equal(d.has_last, 1); /* the last reading is a copy: it stays */

    /* A pruned reading sent again is new again (as in SQLite); with no
     * partition for its day any more, the default partition takes it. */
    write_ok(impl, b, 1, 1, 0);
    assert_int_equal(sql_int(f->url, "SELECT count(*) FROM readings_default"), 1);
    /* ... and rows below the cutoff outside a droppable partition go row by row. */
    assert_int_equal(store_pg_backend.prune(impl, now - DAY_MS, now, 5000, err, sizeof err), 1);
    assert_int_equal(sql_int(f->url, "SELECT count(*) FROM readings"), 10);
    store_pg_backend.close(impl);
}

static void test_pg_connection_loss(void **state)
{
    fixture *f = *state;
    int64_t now = now_ms();
    store *st = open_store(f->url, 0);
    for (int i = 0; i < 100; i++) {
        store_rec rec = reading_rec("d", now + i, 1, i);
        assert_int_equal(store_put_reading(st, &rec.u.r), STORE_OK);
    }
    assert_int_equal(store_sync(st, 10000), STORE_OK);

    server_ctl("stop");
    for (int i = 100; i < 200; i++) {
        store_rec rec = reading_rec("d", now + i, 1, i);
        assert_int_equal(store_put_reading(st, &rec.u.r), STORE_OK);
    }
    store_stats s;
    for (int waited = 0;; waited += 10) {
        store_get_stats(st, &s);
        if (s.writable == 0)
            break;
        assert_true(waited < 20000);
        sleep_ms(10);
    }
    assert_true(s.write_errors >= 1);
    store_device d;
    assert_int_equal(store_get_device(st, "d", &d), STORE_EIO); /* reads fail, do not hang */

    server_ctl("start");
    for (int waited = 0;; waited += 10) {
        store_get_stats(st, &s);
        if (s.writable == 1 && s.stored == 200)
            break;
        if (waited >= 30000)
            fail_msg("not recovered: writable %d stored %llu", s.writable, (unsigned long long)s.stored);
        sleep_ms(10);
    }
    assert_int_equal(s.duplicates, 0);
    assert_int_equal(store_get_device(st, "d", &d), STORE_OK); /* the read connection is back */
    assert_int_equal(d.last.seq, 199);
    store_series q;
    assert_int_equal(store_query_readings(st, "d", now, now + 1000, 1000, &q), STORE_OK);
    assert_int_equal(q.total, 200);
    for (size_t i = 0; i < q.total; i++)
        assert_int_equal(q.raw[i].seq, (int64_t)i); /* each once, in order */
    store_series_free(&q);
    store_close(st);
}

/* The backend of one of the engine's connections (application_name). */
static int backend_pid(const fixture *f, const char *app)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT pid FROM pg_stat_activity WHERE datname = '%s' AND application_name = '%s'",
             f->dbname, app);
    return (int)sql_int(f->url, sql);
}

/* A backend alive for TCP that never answers (SIGSTOP: as a hung storage
 * would leave it): the writer's batch fails (retry) at the deadline,
 * statement_timeout + 5 s, instead of never; the next batch goes through on
 * a new connection with nothing doubled; a read fails likewise and the next
 * read works. statement_timeout = 1 s here: a 6 s deadline. */
static void test_pg_hung_backend(void **state)
{
    fixture *f = *state;
    char url[320];
    snprintf(url, sizeof url, "%s?options=-c%%20statement_timeout%%3D1000", f->url);
    void *impl = open_engine(url, 16);
    int64_t now = now_ms();
    store_rec b[2] = {reading_rec("h", now, 1, 1), reading_rec("h", now + 1, 1, 2)};
    write_ok(impl, b, 1, 1, 0);

    f->stopped[0] = backend_pid(f, "vigild-writer");
    assert_true(f->stopped[0] > 0);
    assert_int_equal(kill(f->stopped[0], SIGSTOP), 0);
    store_batch_result res;
    char err[256] = "";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_pg_backend.write_batch(impl, b, 2, &res, err, sizeof err), STORE_WR_RETRY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t took = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (!strstr(err, "no answer from the server in 6000 ms"))
        fail_msg("unexpected error: %s", err);
    assert_true(took >= 5500 && took < 15000);
    write_ok(impl, b, 2, 1, 1); /* a new connection; reading 1 was stored before */

    f->stopped[1] = backend_pid(f, "vigild-reader");
    assert_true(f->stopped[1] > 0);
    assert_int_equal(kill(f->stopped[1], SIGSTOP), 0);
    store_device d;
    int saved = log_threshold;
    log_threshold = -1; /* the read's failure is expected */
    assert_int_equal(store_pg_backend.get_device(impl, "h", &d), STORE_EIO);
    log_threshold = saved;
    assert_int_equal(store_pg_backend.get_device(impl, "h", &d), STORE_OK);
    assert_int_equal(d.last.seq, 2);
    for (int i = 0; i < 2; i++) {
        (void)kill(f->stopped[i], SIGCONT);
        f->stopped[i] = 0;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM readings");
    assert_int_equal(sql_int(f->url, sql), 2);
    store_pg_backend.close(impl);
}

/* A record the database refuses (a second user of the same name) is
 * dropped alone; the rest of its batch is stored. */
static void test_pg_rejected_record(void **state)
{
    fixture *f = *state;
    void *impl = open_engine(f->url, 16);
    store_rec b[4];
    memset(b, 0, sizeof b);
    b[0] = reading_rec("d", now_ms(), 1, 1);
    for (int i = 1; i <= 2; i++) {
        b[i].kind = STORE_REC_AUTH;
        b[i].u.a.op = STORE_AUTH_USER_ADD;
        snprintf(b[i].u.a.v.u.name, sizeof b[i].u.a.v.u.name, "ann");
        snprintf(b[i].u.a.v.u.role, sizeof b[i].u.a.v.u.role, i == 1 ? "viewer" : "admin");
        snprintf(b[i].u.a.v.u.pwhash, sizeof b[i].u.a.v.u.pwhash, "$argon2id$x");
    }
    b[3] = reading_rec("d", now_ms(), 1, 2);
    store_batch_result res;
    char err[256];
    int saved = log_threshold;
    log_threshold = -1; /* the refusal's warning is expected */
    assert_int_equal(store_pg_backend.write_batch(impl, b, 4, &res, err, sizeof err), STORE_WR_OK);
    log_threshold = saved;
    assert_int_equal(res.stored, 2);
    assert_int_equal(res.rejected, 1);
    assert_int_equal(res.duplicates, 0);
    store_user u;
    assert_int_equal(store_pg_backend.get_user(impl, "ann", &u), STORE_OK);
    assert_string_equal(u.role, "viewer");
    store_device d;
    assert_int_equal(store_pg_backend.get_device(impl, "d", &d), STORE_OK);
    assert_int_equal(d.last.seq, 2);
    /* The admin path reports the same conflict as STORE_EEXIST. */
    assert_int_equal(store_pg_backend.admin_user_add(impl, &b[2].u.a.v.u), STORE_EEXIST);
    assert_int_equal(store_pg_backend.admin_user_del(impl, "ann"), STORE_OK);
    assert_int_equal(store_pg_backend.admin_user_del(impl, "ann"), STORE_ENOTFOUND);
    store_pg_backend.close(impl);
}

typedef struct opener {
    const char *url;
    store_err rc;
} opener;

static void *open_thread(void *arg)
{
    opener *o = arg;
    store_options opt = {.path = o->url};
    void *impl = NULL;
    char err[256];
    o->rc = store_pg_backend.open(&opt, 64, &impl, err, sizeof err);
    if (o->rc != STORE_OK)
        print_error("concurrent open: %s\n", err);
    store_pg_backend.close(impl);
    return NULL;
}

static void test_pg_concurrent_open(void **state)
{
    fixture *f = *state;
    pthread_t t[4];
    opener o[4];
    for (int i = 0; i < 4; i++) {
        o[i] = (opener){.url = f->url, .rc = STORE_EIO};
        assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(o[i].rc, STORE_OK);
    }
    assert_int_equal(sql_int(f->url, "SELECT count(*) FROM vigil_schema"), 1);
    assert_int_equal(sql_int(f->url, "SELECT version FROM vigil_schema"), 1);
}

/* Reads back what fd 2 received while fn ran. */
static void capture_stderr(void (*fn)(void *), void *arg, char *buf, size_t n)
{
    char path[] = "/tmp/vigil-pg-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t got = pread(fd, buf, n - 1, 0);
    buf[got > 0 ? got : 0] = '\0';
    close(fd);
    unlink(path);
}

typedef struct secret_case {
    const char *url;
    store_err rc;
    char err[512];
} secret_case;

static void secret_open(void *arg)
{
    secret_case *c = arg;
    store_options o = {.path = c->url};
    store *st = NULL;
    c->rc = store_open(&o, &st, c->err, sizeof c->err);
    store_close(st);
}

/* main masks --db passwords in its own argv (what ps shows): the URL keeps
 * its shape, the password and its length are gone, the tail is zeroed. */
static void test_pg_hide_password(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
        int hidden;
    } cases[] = {
        {"postgresql://vigil:s3cret-pw@db.example:5432/vigil", "postgresql://vigil:***@db.example:5432/vigil", 1},
        {"--db=postgres://u:p%40ss%3Aw@h/db?sslmode=require", "--db=postgres://u:***@h/db?sslmode=require", 1},
        {"postgresql://u@h/db?sslmode=require&password=hunter22&connect_timeout=5",
         "postgresql://u@h/db?sslmode=require&password=***&connect_timeout=5", 1},
        {"postgresql://u:abcdef@h/db?password=ghijkl", "postgresql://u:***@h/db?password=***", 1},
        {"postgresql://u:pw@h/db", "postgresql://u:**@h/db", 1}, /* too short to shift */
        {"postgresql://u@h/db?passfile=/etc/vigil/pgpass", "postgresql://u@h/db?passfile=/etc/vigil/pgpass", 0},
        {"postgresql://u:@h/db", "postgresql://u:@h/db", 0},
        {"postgresql://h/db#password=x", "postgresql://h/db#password=x", 0},
        {"/var/lib/vigil/vigil.db", "/var/lib/vigil/vigil.db", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[160];
        size_t n = strlen(cases[i].in);
        memset(buf, 'Z', sizeof buf);
        memcpy(buf, cases[i].in, n + 1);
        assert_int_equal(store_pg_hide_password(buf), cases[i].hidden);
        assert_string_equal(buf, cases[i].out);
        for (size_t j = strlen(buf); j <= n; j++)
            assert_int_equal(buf[j], 0); /* the freed tail, up to the old NUL */
        assert_int_equal(buf[n + 1], 'Z'); /* nothing written past the string */
    }
    assert_int_equal(store_pg_hide_password(NULL), 0);
}

static void test_pg_secrets(void **state)
{
    fixture *f = *state;
    /* The cluster's password, from the URL: vigil:<password>@. */
    const char *at = strchr(f->url, '@'), *colon = strstr(f->url, "vigil:");
    assert_non_null(at);
    assert_non_null(colon);
    char pw[128];
    snprintf(pw, sizeof pw, "%.*s", (int)(at - colon - 6), colon + 6);
    assert_true(strlen(pw) >= 8);
    int saved = log_threshold;
    log_threshold = LOG_LEVEL_DEBUG;

    /* Right password: logs name the server, never the password. */
    char log[8192];
    secret_case ok = {.url = f->url};
    capture_stderr(secret_open, &ok, log, sizeof log);
    assert_int_equal(ok.rc, STORE_OK);
    assert_non_null(strstr(log, "127.0.0.1"));
    assert_null(strstr(log, pw));

    /* Wrong password: the error says so, without either password. */
    char bad_url[300];
    const char *wrong = "Wr0ngSecretXYZ";
    snprintf(bad_url, sizeof bad_url, "postgresql://vigil:%s%s", wrong, at);
    secret_case bad = {.url = bad_url};
    capture_stderr(secret_open, &bad, log, sizeof log);
    log_threshold = saved;
    assert_int_equal(bad.rc, STORE_EIO);
    assert_non_null(strstr(bad.err, "password authentication failed"));
    assert_non_null(strstr(bad.err, "127.0.0.1"));
    assert_null(strstr(bad.err, wrong));
    assert_null(strstr(bad.err, pw));
    assert_null(strstr(log, wrong));
    assert_null(strstr(log, pw));

    /* The name main and the CLI log for the database. */
    char name[192];
    store_pg_log_name(f->url, name, sizeof name);
    assert_null(strstr(name, pw));
    assert_non_null(strstr(name, "127.0.0.1"));
    assert_non_null(strstr(name, f->dbname));
    store_pg_log_name("/var/lib/vigil/vigil.db", name, sizeof name);
    assert_string_equal(name, "/var/lib/vigil/vigil.db");

    /* A password file instead of a password in the URL (libpq's passfile). */
    char pf[] = "/tmp/vigil-pgpass-XXXXXX";
    int fd = mkstemp(pf);
    assert_true(fd >= 0);
    char line[256];
    int len = snprintf(line, sizeof line, "*:*:*:vigil:%s\n", pw);
    assert_int_equal(write(fd, line, (size_t)len), len);
    close(fd);
    char pf_url[400];
    const char *slash = strrchr(f->url, '/');
    char port[16];
    snprintf(port, sizeof port, "%.*s", (int)(slash - strrchr(at, ':') - 1), strrchr(at, ':') + 1);
    snprintf(pf_url, sizeof pf_url, "postgresql://vigil@127.0.0.1:%s/%s?passfile=%s", port, f->dbname, pf);
    secret_case viafile = {.url = pf_url};
    secret_open(&viafile);
    unlink(pf);
    if (viafile.rc != STORE_OK)
        print_error("passfile: %s\n", viafile.err);
    assert_int_equal(viafile.rc, STORE_OK);
}

/* More new devices in one batch than PIPE_CHUNK, and runs broken by
 * statuses: results are read back along the way, every device gets its
 * row and its last reading. */
static void test_pg_many_new_devices(void **state)
{
    fixture *f = *state;
    const size_t n = 900;
    void *impl = open_engine(f->url, n);
    store_rec *b = calloc(n, sizeof *b);
    assert_non_null(b);
    int64_t t0 = now_ms();
    size_t readings = 0;
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%zu", i);
        if (i % 7 == 6) {
            b[i].kind = STORE_REC_STATUS;
            snprintf(b[i].u.s.device_id, sizeof b[i].u.s.device_id, "%s", id);
            b[i].u.s.online = 1;
            b[i].u.s.received_ms = t0;
        } else {
            b[i] = reading_rec(id, t0 + (int64_t)i, 1, 1);
            readings++;
        }
    }
    write_ok(impl, b, n, readings, 0);
    write_ok(impl, b, n, 0, readings); /* all again: all duplicates */
    store_device *v = NULL;
    size_t nd = 0;
    assert_int_equal(store_pg_backend.list_devices(impl, &v, &nd), STORE_OK);
    assert_int_equal(nd, n);
    size_t with_last = 0, online = 0;
    for (size_t i = 0; i < nd; i++) {
        with_last += v[i].has_last;
        online += v[i].online == 1;
    }
    assert_int_equal(with_last, readings);
    assert_int_equal(online, n - readings);
    free(v);
    free(b);
    store_pg_backend.close(impl);
}

/* Not an assertion of speed: prints readings/s for batches of 2048 (the
 * figure quoted in store_pg_write.c's header). */
static void test_pg_throughput(void **state)
{
    fixture *f = *state;
    const size_t n = 2048;
    const int batches = 10;
    void *impl = open_engine(f->url, n);
    store_rec *b = calloc(n, sizeof *b);
    assert_non_null(b);
    int64_t t0 = now_ms();
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int k = 0; k < batches; k++) {
        for (size_t i = 0; i < n; i++) {
            char id[16];
            snprintf(id, sizeof id, "dev-%zu", i % 50);
            b[i] = reading_rec(id, t0 + (int64_t)(k * n + i), 1, (int64_t)(k * n + i));
        }
        write_ok(impl, b, n, n, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &z);
    double secs = (double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9;
    print_message("pg throughput: %d batches of %zu readings in %.2f s: %.0f readings/s\n", batches, n, secs,
                  (double)batches * (double)n / secs);
    assert_int_equal(sql_int(f->url, "SELECT count(*) FROM readings"), (int64_t)batches * (int64_t)n);
    free(b);
    store_pg_backend.close(impl);
}

int main(void)
{
    log_threshold = LOG_LEVEL_ERROR;
    pg_url = pg_cluster_url();
    pg_ctl = getenv("VIGIL_TEST_PG_CTL");
    if (!pg_url || !*pg_url || !pg_ctl || !*pg_ctl) {
        fprintf(stderr, "run through tests/support/pg_cluster.py run -- (VIGIL_TEST_PG_URL unset)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pg_partitions_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_retention_drops_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_rejected_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_concurrent_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_secrets, setup, teardown),
        cmocka_unit_test(test_pg_hide_password),
        cmocka_unit_test_setup_teardown(test_pg_many_new_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_throughput, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_connection_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_hung_backend, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
