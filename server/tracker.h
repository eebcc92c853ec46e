/* tracker — the completeness tracker as vigild shares it: one completeness
 * (pure logic, completeness.h) behind one mutex.
 *
 * Threads. The ingest thread owns it: it feeds every stored reading, every
 * resend ack and the periodic tick, each under the lock (a few hundred ns
 * per reading, uncontended but for API reads). The web thread only reads
 * it, under the same lock, to build DEVICE objects and the completeness
 * endpoint. A locked snapshot rather than hub messages because the API
 * needs the gap lists, not just counters, and because the data must be
 * exactly what the ingest thread decides on (no second copy to drift).
 * Lock order: tracker → store (store_put_lost is called under it); the web
 * thread holds no other lock while taking it.
 *
 * Lifetime: created and loaded by main() before the ingest and web threads
 * start, destroyed after both have stopped. */
#ifndef VIGIL_TRACKER_H
#define VIGIL_TRACKER_H

#include <pthread.h>

#include "completeness.h"
#include "ports.h"
#include "sbuf.h"
#include "store.h"

typedef struct tracker {
    pthread_mutex_t lock;
    completeness *c;
} tracker;

tracker *tracker_create(const completeness_config *cfg);
void tracker_destroy(tracker *t);

/* Rebuilds the tracker from the store (startup, before other threads). */
int tracker_load(tracker *t, store *st, int64_t now_ms);

/* Web thread views; each takes the lock. NULL tracker: "null" / -1. */
void tracker_summary_json(tracker *t, const char *id, sbuf *out);
/* The summary as a DEVICE annotation (ports.h); t may be NULL. */
vigil_annotator tracker_annotator(tracker *t);
int tracker_device_json(tracker *t, const char *id, int64_t boot, int64_t from, int64_t to,
                        size_t max_gaps, sbuf *out);

#endif
