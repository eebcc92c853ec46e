/* pgwait — one bounded wait for a libpq connection's answer, shared by the
 * PostgreSQL store (writer, readers, admin) and the cluster session.
 *
 * After a PQsend* the caller must not call PQgetResult until it will not
 * block, or a backend that is alive for TCP but silent (SIGSTOPped, hung
 * storage) holds the thread forever. pgwait_ready sends what libpq still
 * holds (PQflush), reads what the server sent (PQconsumeInput) and polls
 * PQsocket for the time left until PQisBusy says a result can be taken or
 * the deadline passes. Policy stays with the caller: how long to wait, what
 * to log, and what to do with a connection that timed out (both callers
 * drop it like a lost one).
 *
 * Ownership: the PGconn stays the caller's; pgwait_ready never finishes,
 * resets or logs it. Threads: whichever thread owns the connection; nothing
 * is shared. */
#ifndef VIGIL_PGWAIT_H
#define VIGIL_PGWAIT_H

#include <stdint.h>

typedef struct pg_conn PGconn; /* libpq-fe.h's own typedef */

typedef enum {
    /* PQgetResult will not block: a result, NULL (the command is done), or
     * — when the server closed the connection — an error result with its
     * message, the connection then CONNECTION_BAD. */
    PGWAIT_OK = 0,
    /* The deadline passed with no complete answer; the connection is left
     * as it was (a query may still be running on it). */
    PGWAIT_TIMEOUT,
    /* libpq cannot send on this connection or has no socket for it:
     * PQerrorMessage says why. */
    PGWAIT_CONN,
    /* poll() itself failed (not EINTR): errno says why. */
    PGWAIT_POLL
} pgwait_result;

/* Waits until PQgetResult(c) will not block, or until deadline_ms on
 * vclock_mono_ms()'s clock (monotonic, ms). A deadline already past still
 * takes what is already buffered or readable without waiting. Works on
 * blocking and non-blocking connections (the socket itself is always
 * non-blocking in libpq). c must not be NULL. */
pgwait_result pgwait_ready(PGconn *c, int64_t deadline_ms);

#endif
