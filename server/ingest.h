/* ingest — vigild's MQTT side: one thread that owns the libmosquitto client,
 * drives it from its own poll() loop (not mosquitto_loop_start, whose
 * select() breaks past 1024 fds), validates every message (telemetry_*),
 * enriches it once, and hands it to the store and to the hub.
 *
 * Threads: ingest_start() spawns the thread; ingest_publish() may be called
 * from any thread — it queues the publish (bounded) and wakes the loop
 * through an eventfd, so only the ingest thread ever touches the client.
 * ingest_stop() from the thread that started it.
 *
 * Delivery: subscriptions are QoS 1 on a persistent session (clean start
 * off, session expiry from the config), so readings published while vigild
 * is away are queued by the broker and delivered on reconnect. */
#ifndef VIGIL_INGEST_H
#define VIGIL_INGEST_H

#include <stddef.h>

#include "config.h"
#include "hub.h"
#include "metrics.h"
#include "ports.h"
#include "store.h"
#include "tracker.h"

typedef struct ingest ingest;

typedef enum ingest_err {
    INGEST_OK = 0,
    INGEST_ENOTCONN = -1, /* not connected to the broker: nothing was queued */
    INGEST_EFULL = -2,    /* publish queue full */
    INGEST_EINVAL = -3,
    INGEST_ENOMEM = -4,
} ingest_err;

/* Borrowed pointers: cfg, st, hub and m must outlive the ingest. */
/* trk (may be NULL) is the completeness tracker, fed and driven from the
 * ingest thread: every reading the store accepts or refuses, resend acks,
 * and a tick every 250 ms that publishes resend commands (tracker.h). */
int ingest_create(const vigil_config *cfg, store *st, hub *h, vigil_metrics *m, tracker *trk,
                  ingest **out);
/* Spawns the ingest thread. */
int ingest_start(ingest *in);
/* Disconnects cleanly, joins the thread (if started), frees everything.
 * NULL is allowed. */
void ingest_stop(ingest *in);
/* publish/connected on this ingest as a port; any thread. */
vigil_publisher ingest_publisher(ingest *in);

ingest_err ingest_publish(ingest *in, const char *topic, const char *payload, size_t len,
                          int qos, int retain);
int ingest_connected(ingest *in);

#endif
