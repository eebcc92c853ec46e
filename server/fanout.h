/* fanout — the WebSocket side of the live stream: per-client queues of
 * shared messages, the snapshot a client gets on connect and on every
 * subscribe, subscriptions (device filter, batch mode), error replies, and
 * the write loop with its fairness budget. The transport is behind a small
 * connection port (fanout_conn_ops) that web.c implements with lws and the
 * unit tests with a fake, so the back-pressure rules are testable.
 *
 * Back-pressure. Each client has its own bounded queue (a ring of hub_msg
 * references, ws_queue entries). When full it never delays another client
 * and never grows memory:
 *  - a client that is reading, only behind (a frame was written to it since
 *    its oldest queued entry came, or its socket still takes more: the web
 *    thread itself is behind): its queue is dropped, oldest first —
 *    all of it, as the snapshot that follows supersedes it — and it gets
 *    {"type":"resync","dropped":N} then a fresh snapshot; counted as
 *    vigil_ws_resyncs_total and vigil_ws_resync_dropped_total (messages);
 *  - a client that does not read is dropped: nothing was written to it
 *    since its oldest entry came, its connection is choked() and nothing
 *    was written to it for FANOUT_STALL_MS (by the clock given at create;
 *    there is no other rule). Its queue is released, conn kill() asked,
 *    vigil_ws_dropped_clients_total counted. It reconnects and resyncs from
 *    the snapshot. A stalled client is thus closed at the first overflow
 *    FANOUT_STALL_MS after its last write; until then it is resynced.
 *
 * Writes. Every buffer handed to write() has FANOUT_PRE (= HUB_PRE) bytes
 * before it that the transport may overwrite (lws writes its frame header
 * there, no copy). A snapshot goes out as one message in
 * FANOUT_SNAPSHOT_CHUNK fragments, one per writable callback, each rendered
 * only when the socket is writable (streamed from a cursor over the
 * fanout's sorted id index): a client that never reads holds at most one
 * chunk of snapshot text, whatever the fleet size; queued messages at most FANOUT_WRITE_BUDGET per
 * callback, asking choked() only before a second write (it is a syscall).
 *
 * Shared frames. Clients that take every device in batch mode (the
 * dashboard's wall, the benchmarks) would each copy the same messages into
 * the same array. Instead the messages pushed between two flushes are
 * joined once into one array (at most FANOUT_BATCH_BYTES, a hub_msg with
 * nbatch > 1) that each of them queues by reference and writes without a
 * copy; a lone message is queued as itself, as before. A shared array counts
 * as the messages it holds against ws_queue.
 *
 * Threads: one owner (the web thread); when an owner is given at create,
 * every entry point asserts it. Ownership: the fanout borrows the live model
 * (snapshots), the metrics and the ops; client state lives in memory the
 * caller provides (fanout_client_size() bytes, lws' per-session storage) and
 * is linked into the fanout from open to close. */
#ifndef VIGIL_FANOUT_H
#define VIGIL_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"       /* HUB_PRE */
#include "telemetry.h" /* TELEMETRY_ID_MAX */

typedef struct live live;
typedef struct vigil_metrics vigil_metrics;
typedef struct thread_owner thread_owner;

#define FANOUT_PRE HUB_PRE
#define FANOUT_SNAPSHOT_CHUNK (64 * 1024) /* bytes per writable callback for a snapshot */
#define FANOUT_WRITE_BUDGET 256           /* frames per writable callback: fairness */
#define FANOUT_BATCH_BYTES (64 * 1024)    /* largest batched frame (one message may exceed it alone) */
#define FANOUT_FILTER_MAX 10000           /* device ids a client may subscribe to */
#define FANOUT_SUBSCRIBE_BURST 5          /* subscribes per connection per window... */
#define FANOUT_SUBSCRIBE_WINDOW_MS 10000  /* ...beyond that: an error frame, ignored */
#define FANOUT_STALL_MS 2000             /* socket full and nothing written this long: not reading */

typedef enum fanout_frame {
    FANOUT_TEXT = 0,   /* a whole text message */
    FANOUT_FIRST,      /* first fragment of a text message */
    FANOUT_CONTINUE,   /* a middle fragment */
    FANOUT_FINAL,      /* the last fragment */
} fanout_frame;

/* The connection port. conn is what the caller passed to fanout_open. */
typedef struct fanout_conn_ops {
    /* Sends len bytes at buf (FANOUT_PRE writable bytes before it) as one
     * frame of the given kind. 0, or -1 if the connection failed. */
    int (*write)(void *conn, unsigned char *buf, size_t len, fanout_frame kind);
    int (*choked)(void *conn);      /* 1 if another write now would block */
    void (*want_write)(void *conn); /* call fanout_writable when writable */
    void (*kill)(void *conn);       /* close it soon (then fanout_close) */
    int (*fd)(void *conn);          /* for log lines */
} fanout_conn_ops;

typedef struct fanout fanout;
typedef struct fanout_client fanout_client;

/* NULL on ENOMEM, on ws_queue 0 or on no clock. ws_queue: messages per
 * client (>= 1). now_ms: a monotonic clock in ms for the stall rule
 * (back-pressure above), required — there is no rule without it. */
fanout *fanout_create(vigil_metrics *m, size_t ws_queue, live *lv, const fanout_conn_ops *ops,
                      int64_t (*now_ms)(void), const thread_owner *owner);
/* After every client was closed. NULL-safe. */
void fanout_destroy(fanout *f);

size_t fanout_client_size(void);
/* Opens a client in c (fanout_client_size() bytes) and queues its snapshot.
 * 0, or -1 on ENOMEM (c needs no close then). */
int fanout_open(fanout *f, fanout_client *c, void *conn);
void fanout_close(fanout *f, fanout_client *c); /* safe on a never-opened c */
/* A whole text message from the client: {"type":"subscribe","devices":
 * [ids]|null,"batch":bool}. Anything else: an error frame, counted as
 * vigil_ws_bad_messages_total. More than FANOUT_SUBSCRIBE_BURST subscribes
 * in FANOUT_SUBSCRIBE_WINDOW_MS: an error frame, the subscribe ignored,
 * counted as vigil_ws_subscribe_limited_total. now_ms: a monotonic clock. */
void fanout_receive(fanout *f, fanout_client *c, const char *in, size_t len, int64_t now_ms);

/* The client-message parser, pure (fuzzed). */
typedef enum fanout_parse_result {
    FANOUT_PARSE_OK = 0,
    FANOUT_PARSE_BAD,           /* not a subscribe at all */
    FANOUT_PARSE_BAD_SUBSCRIBE, /* a subscribe with a bad field */
} fanout_parse_result;

typedef struct fanout_subscribe {
    char (*ids)[TELEMETRY_ID_MAX + 1]; /* sorted, malloc'ed; NULL: all devices */
    size_t nids;
    int filtered;                      /* 0: all devices */
    int batch_set, batch;              /* "batch" given, and its value */
    const char *err;                   /* static text when not OK */
} fanout_subscribe;

/* Parses one client message into out (release with fanout_subscribe_free,
 * whatever the result). */
fanout_parse_result fanout_parse_subscribe(const char *in, size_t len, fanout_subscribe *out);
void fanout_subscribe_free(fanout_subscribe *s);
/* Writes what is queued while the connection accepts it. -1: close it. */
int fanout_writable(fanout *f, fanout_client *c);

/* Queues m (a reference each) on every client that wants its device. */
void fanout_push(fanout *f, hub_msg *m);
/* Asks for a writable callback on every client with something queued. */
void fanout_flush(fanout *f);

#endif
