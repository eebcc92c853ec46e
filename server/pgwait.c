/* pgwait — see pgwait.h. */
#include "pgwait.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>

#include <libpq-fe.h>

#include "vclock.h"

pgwait_result pgwait_ready(PGconn *c, int64_t deadline_ms)
{
    /* Bounded by the deadline: every pass that does not return checks it
     * before it sleeps, and poll sleeps at most the time left. */
    for (;;) {
        int pending = PQflush(c); /* 1: output left, the socket is full */
        if (pending < 0)
            return PGWAIT_CONN;
        if (!PQisBusy(c)) /* already buffered: no read needed */
            return PGWAIT_OK;
        /* Read even while output is pending: a server blocked on sending us
         * results would otherwise never read the rest. A failed read (the
         * server closed) leaves the connection bad, so not busy: PQgetResult
         * then returns its error at once, the server's message included. */
        (void)PQconsumeInput(c);
        if (!PQisBusy(c))
            return PGWAIT_OK;
        int64_t left = deadline_ms - vclock_mono_ms();
        if (left <= 0)
            return PGWAIT_TIMEOUT;
        struct pollfd fd = {.fd = PQsocket(c), .events = POLLIN | (pending ? POLLOUT : 0)};
        if (fd.fd < 0)
            return PGWAIT_CONN;
        if (poll(&fd, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR)
            return PGWAIT_POLL;
    }
}
