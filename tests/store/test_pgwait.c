/* Unit tests for server/pgwait.c without a database: libpq connects to a
 * fake server on a Unix socket in a fresh directory, which does the
 * startup handshake (AuthenticationOk, ReadyForQuery) and then answers,
 * stays silent, reads slowly or closes, as each test needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgwait.h"
#include "vclock.h"

#define FAKE_PORT "5432"
#define IO_TIMEOUT_S 5 /* any read of the fake server gives up after this */

typedef struct fake {
    char dir[64];
    char path[96]; /* fits sun_path (108) */
    int lfd;      /* listening socket */
    int sfd;      /* the accepted connection, server side */
    PGconn *c;    /* the client */
} fake;

/* ---- the fake server's wire (protocol 3.0, server side) ---- */

static int fake__read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return -1; /* EOF, error or SO_RCVTIMEO */
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int fake__write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One backend message: type, int32 length (itself included), body. */
static size_t fake__msg(char *out, char type, const void *body, size_t n)
{
    out[0] = type;
    uint32_t len = htonl((uint32_t)(n + 4));
    memcpy(out + 1, &len, 4);
    memcpy(out + 5, body, n);
    return n + 5;
}

static size_t fake__param(char *out, const char *name, const char *val)
{
    char body[128];
    size_t a = strlen(name) + 1, b = strlen(val) + 1;
    memcpy(body, name, a);
    memcpy(body + a, val, b);
    return fake__msg(out, 'S', body, a + b);
}

/* Reads one frontend message whose length follows a one-byte type (or,
 * for the startup packet, has no type) and discards its body. */
static int fake__skip(int fd, int typed, char *type)
{
    char hdr[5];
    if (fake__read_all(fd, hdr, typed ? 5 : 4) != 0)
        return -1;
    if (type)
        *type = typed ? hdr[0] : 0;
    uint32_t len;
    memcpy(&len, hdr + (typed ? 1 : 0), 4);
    len = ntohl(len);
    if (len < 4 || len > (64u << 20))
        return -1;
    char buf[4096];
    for (size_t left = len - 4; left > 0;) {
        size_t k = left < sizeof buf ? left : sizeof buf;
        if (fake__read_all(fd, buf, k) != 0)
            return -1;
        left -= k;
    }
    return 0;
}

/* CommandComplete then ReadyForQuery: the whole answer to a simple query. */
static int fake__answer(int fd)
{
    char out[64];
    size_t n = fake__msg(out, 'C', "SELECT 0", 9);
    n += fake__msg(out + n, 'Z', "I", 1);
    return fake__write_all(fd, out, n);
}

/* Accepts one client and does the startup handshake; the socket is left in
 * f->sfd (-1 on failure). Runs beside PQconnectdb, which blocks. */
static void *fake__accept(void *arg)
{
    fake *f = arg;
    struct pollfd p = {.fd = f->lfd, .events = POLLIN};
    if (poll(&p, 1, IO_TIMEOUT_S * 1000) != 1)
        return NULL;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char out[512];
    size_t n = 0;
    uint32_t auth_ok = 0, key[2] = {htonl(4242), htonl(1)};
    n += fake__msg(out + n, 'R', &auth_ok, 4);
    n += fake__param(out + n, "server_version", "15.0");
    n += fake__param(out + n, "client_encoding", "UTF8");
    n += fake__param(out + n, "standard_conforming_strings", "on");
    n += fake__param(out + n, "integer_datetimes", "on");
    n += fake__msg(out + n, 'K', key, 8);
    n += fake__msg(out + n, 'Z', "I", 1);
    if (fake__skip(fd, 0, NULL) != 0 || fake__write_all(fd, out, n) != 0) {
        close(fd);
        return NULL;
    }
    f->sfd = fd;
    return NULL;
}

/* Reads one query message and answers it: the slow reader of
 * test_pending_output. */
static void *fake__drain_and_answer(void *arg)
{
    fake *f = arg;
    char type = 0;
    if (fake__skip(f->sfd, 1, &type) == 0 && type == 'Q')
        (void)fake__answer(f->sfd);
    return NULL;
}

/* Answers after 100 ms: an answer that comes during the wait. */
static void *fake__answer_later(void *arg)
{
    fake *f = arg;
    usleep(100 * 1000);
    (void)fake__answer(f->sfd);
    return NULL;
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    fake *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->sfd = -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/pgwait-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/.s.PGSQL." FAKE_PORT, f->dir);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f->lfd, 1) != 0)
        return -1;
    pthread_t t;
    if (pthread_create(&t, NULL, fake__accept, f) != 0)
        return -1;
    char conninfo[256];
    snprintf(conninfo, sizeof conninfo,
             "host=%s port=" FAKE_PORT " dbname=fake user=fake sslmode=disable "
             "gssencmode=disable connect_timeout=5",
             f->dir);
    f->c = PQconnectdb(conninfo);
    pthread_join(t, NULL);
    *state = f;
    if (PQstatus(f->c) != CONNECTION_OK || f->sfd < 0) {
        fprintf(stderr, "fake connect: %s\n", PQerrorMessage(f->c));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fake *f = *state;
    if (!f)
        return 0;
    PQfinish(f->c);
    if (f->sfd >= 0)
        close(f->sfd);
    if (f->lfd >= 0)
        close(f->lfd);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static PGconn *conn_of(void **state) { return ((fake *)*state)->c; }
static int server_of(void **state) { return ((fake *)*state)->sfd; }

/* Takes the one result of a simple query, then the NULL that ends it. */
static void assert_done(PGconn *c, ExecStatusType want)
{
    PGresult *r = PQgetResult(c);
    assert_non_null(r);
    assert_int_equal(PQresultStatus(r), want);
    PQclear(r);
    assert_int_equal(pgwait_ready(c, vclock_mono_ms() + 1000), PGWAIT_OK);
    assert_null(PQgetResult(c));
}

/* ---- tests ---- */

/* An answer already sent: OK at once, even with the deadline past. */
static void test_answer_buffered(void **state)
{
    PGconn *c = conn_of(state);
    assert_int_equal(PQsendQuery(c, "SELECT 0"), 1);
    assert_int_equal(fake__answer(server_of(state)), 0);
    usleep(20 * 1000);
    int64_t t0 = vclock_mono_ms();
    assert_int_equal(pgwait_ready(c, t0 - 1), PGWAIT_OK);
    assert_true(vclock_mono_ms() - t0 < 50);
    assert_done(c, PGRES_COMMAND_OK);
}

/* A silent server: TIMEOUT no earlier than the deadline and not much
 * later; the connection is left usable, so a late answer is still read. */
static void test_silent_server_times_out(void **state)
{
    PGconn *c = conn_of(state);
    assert_int_equal(PQsendQuery(c, "SELECT 0"), 1);
    int64_t t0 = vclock_mono_ms();
    assert_int_equal(pgwait_ready(c, t0 + 150), PGWAIT_TIMEOUT);
    int64_t took = vclock_mono_ms() - t0;
    assert_true(took >= 150);
    assert_true(took < 1500);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_true(PQisBusy(c));
    assert_int_equal(fake__answer(server_of(state)), 0);
    assert_int_equal(pgwait_ready(c, vclock_mono_ms() + 2000), PGWAIT_OK);
    assert_done(c, PGRES_COMMAND_OK);
}

/* An answer that comes during the wait ends it then, not at the deadline. */
static void test_answer_during_wait(void **state)
{
    PGconn *c = conn_of(state);
    assert_int_equal(PQsendQuery(c, "SELECT 0"), 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake__answer_later, *state), 0);
    int64_t t0 = vclock_mono_ms();
    pgwait_result rc = pgwait_ready(c, t0 + 5000);
    int64_t took = vclock_mono_ms() - t0;
    pthread_join(t, NULL);
    assert_int_equal(rc, PGWAIT_OK);
    assert_true(took >= 90);
    assert_true(took < 3000);
    assert_done(c, PGRES_COMMAND_OK);
}

/* The server closes: OK without waiting for the deadline, and PQgetResult
 * gives the error, the connection bad. */
static void test_server_closed(void **state)
{
    fake *f = *state;
    PGconn *c = f->c;
    assert_int_equal(PQsendQuery(c, "SELECT 0"), 1);
    close(f->sfd);
    f->sfd = -1;
    int64_t t0 = vclock_mono_ms();
    assert_int_equal(pgwait_ready(c, t0 + 5000), PGWAIT_OK);
    assert_true(vclock_mono_ms() - t0 < 3000);
    PGresult *r = PQgetResult(c);
    assert_non_null(r);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
}

/* A non-blocking connection with more output than the socket takes: the
 * wait does not block in the flush (TIMEOUT while the server reads
 * nothing), and sends the rest while the server reads (then OK). */
static void test_pending_output(void **state)
{
    PGconn *c = conn_of(state);
    assert_int_equal(PQsetnonblocking(c, 1), 0);
    size_t n = 8u << 20;
    char *sql = malloc(n + 1);
    assert_non_null(sql);
    memset(sql, ' ', n);
    memcpy(sql, "SELECT 0", 8);
    sql[n] = '\0';
    assert_int_equal(PQsendQuery(c, sql), 1);
    free(sql);
    assert_int_equal(PQflush(c), 1); /* the socket is full: output is left */
    int64_t t0 = vclock_mono_ms();
    assert_int_equal(pgwait_ready(c, t0 + 150), PGWAIT_TIMEOUT);
    assert_true(vclock_mono_ms() - t0 < 1500);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake__drain_and_answer, *state), 0);
    pgwait_result rc = pgwait_ready(c, vclock_mono_ms() + 10000);
    pthread_join(t, NULL);
    assert_int_equal(rc, PGWAIT_OK);
    assert_int_equal(PQflush(c), 0); /* all of it was sent */
    assert_done(c, PGRES_COMMAND_OK);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answer_buffered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_during_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_output, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
