/* tracker — the completeness model (completeness.h, pure) as vigild shares
 * it: one model behind one lock, fed by the ingest thread and read by the
 * web thread.
 *
 * The boundary: every call takes the lock, feeds or reads the model,
 * copies its decisions out into the caller's completeness_actions and
 * drops the lock. Acting on them — publishing resend commands, writing lost
 * ranges to the store, metrics, logs — is the caller's, after the call:
 * nothing slow ever runs under this lock, which the web thread takes once
 * per DEVICE object it renders. A locked snapshot rather than hub messages
 * because the API needs the gap lists, not just counters, and because the
 * data must be exactly what the ingest thread decides on.
 *
 * Threads. Feeding (on_reading, on_boot_end, on_ack, tick, request_failed): the ingest
 * thread. Views and the annotator: any thread (the web thread). The lock is
 * a leaf: no other lock is taken under it (but for tracker_load, which
 * reads the store under it at start-up, before any other thread exists).
 *
 * Lifetime: created and loaded by main() before the ingest and web threads
 * start, destroyed after both have stopped. A NULL tracker is allowed in
 * the views ("null" / -1). */
#ifndef VIGIL_TRACKER_H
#define VIGIL_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "completeness.h"
#include "ports.h"

typedef struct tracker tracker;
typedef struct store store;
typedef struct sbuf sbuf;

/* cfg may be NULL (defaults). */
tracker *tracker_create(const completeness_config *cfg);
void tracker_destroy(tracker *t); /* NULL-safe */

/* Rebuilds the model from the store (startup, before other threads). */
int tracker_load(tracker *t, store *st, int64_t now_ms);

/* Several instances (cluster.h), ingest thread: the devices pick() chooses
 * change hands. tracker_load_if forgets them and rebuilds them from the
 * store — read outside the lock, applied under it — so that the normal gap
 * check then asks for what the previous owner never stored. 0, or -1 (the
 * store read failed: nothing changed). tracker_forget_if drops them (their
 * new owner tracks them); returns how many. */
int tracker_load_if(tracker *t, store *st, completeness_pick pick, void *ctx, int64_t now_ms);
size_t tracker_forget_if(tracker *t, completeness_pick pick, void *ctx);

/* ---- feeding: ingest thread; out is cleared, then filled ---- */

/* A reading with a seq; stored = the store accepted it (else it is
 * tracked as a pending gap, completeness_on_unstored). Returns what it was
 * (always COMPLETENESS_NEW for an unstored one that was tracked). */
completeness_result tracker_on_reading(tracker *t, const char *id, int64_t boot, int64_t seq,
                                       int stored, int64_t now_ms, completeness_actions *out);
/* The device said boot `boot` took seqs up to last_seq (its next boot's
 * prev_boot / prev_last_seq): completeness_on_boot_end. */
int tracker_on_boot_end(tracker *t, const char *id, int64_t boot, int64_t last_seq, int64_t now_ms,
                        completeness_actions *out);
/* A resend ack (completeness_on_ack). */
int tracker_on_ack(tracker *t, const char *id, uint64_t req_id, int ok, int permanent,
                   uint64_t sent, uint64_t missing, int64_t now_ms, completeness_actions *out);
/* Timeouts, deadlines and new requests (completeness_tick). */
size_t tracker_tick(tracker *t, int64_t now_ms, int can_request, size_t max_requests,
                    completeness_actions *out);
/* A request from out->requests that could not be published: undone,
 * asked again later (completeness_request_failed). */
int tracker_request_failed(tracker *t, const char *id, uint64_t req_id, int64_t now_ms);

/* Debug builds: asserts the calling thread does not hold t's lock — for
 * the places that act on decisions (NULL-safe; a no-op with NDEBUG). */
void tracker_assert_not_held(tracker *t);

/* ---- views: any thread; each takes the lock ---- */

void tracker_summary_json(tracker *t, const char *id, sbuf *out);
/* The body of GET /api/devices/{id}/completeness (completeness_json.h):
 * the device's view is copied under the lock and formatted after it (the
 * caller is the low-priority query worker; ingest takes this lock per
 * reading). */
int tracker_device_json(tracker *t, const char *id, int64_t boot, int64_t from, int64_t to,
                        size_t max_gaps, sbuf *out);
/* The summary as the DEVICE object's extra facts (ports.h); t may be NULL. */
vigil_annotator tracker_annotator(tracker *t);

#endif
