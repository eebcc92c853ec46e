/* outbox — store-and-forward ring of encoded readings.
 *
 * Every reading the session makes goes through here. A reading published
 * live is stored as already sent: it is kept only so a later `resend`
 * command (vigild saw a gap) can be served. A reading made while offline is
 * stored as pending and replayed, oldest first, after reconnect. When the
 * ring is full the oldest record is overwritten; if that record was still
 * pending the reading is lost and counted in `dropped`.
 *
 * Records keep their encoded payload byte for byte, so a replay carries the
 * original seq, boot, timestamp and ts.
 *
 * Ownership: the caller provides the record array at init (static storage
 * on the ESP32, one block per device in vigil-sim) and keeps it alive; the
 * outbox never allocates. Threading: none; one owner (the session). */
#ifndef VIGIL_OUTBOX_H
#define VIGIL_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry_enc.h"

#define OUTBOX_PAYLOAD_MAX TENC_MAX_LEN

typedef enum outbox_status {
    OUTBOX_OK = 0,
    OUTBOX_EINVAL = -1,  /* NULL argument, zero capacity, payload too long */
    OUTBOX_EEMPTY = -2,  /* nothing pending */
} outbox_status;

typedef struct outbox_rec {
    uint32_t boot;
    uint64_t seq;
    uint64_t ts_ms;   /* 0 when the reading had no synced wall clock */
    uint16_t len;
    bool pending;     /* not yet published */
    char payload[OUTBOX_PAYLOAD_MAX];
} outbox_rec;

typedef struct outbox {
    outbox_rec *recs;
    size_t cap;
    size_t head;      /* index of the oldest record */
    size_t count;
    size_t pending;   /* records with pending == true */
    size_t scan;      /* age (0 = oldest) below which no record is pending */
    uint64_t dropped; /* pending readings overwritten before they were sent */
    uint64_t evicted; /* sent readings overwritten (resend history shrinks) */
} outbox;

/* Uses storage[0..cap-1]. */
outbox_status outbox_init(outbox *ob, outbox_rec *storage, size_t cap);

/* Appends a record (pending = not yet published). Overwrites the oldest
 * when full. */
outbox_status outbox_push(outbox *ob, uint32_t boot, uint64_t seq, uint64_t ts_ms,
                          const char *payload, size_t len, bool pending);

/* The oldest pending record, or NULL. The pointer stays valid until the
 * next push. */
const outbox_rec *outbox_peek_pending(outbox *ob);

/* Marks the record returned by outbox_peek_pending as sent. */
outbox_status outbox_mark_sent(outbox *ob, const outbox_rec *rec);

size_t outbox_pending(const outbox *ob);
size_t outbox_count(const outbox *ob);

/* Calls fn for each stored record of boot `boot` with from <= seq <= to, in
 * order. Stores the number found in *found and the number of seqs in the
 * range that are not stored in *missing (either may be NULL). fn may be
 * NULL (count only). fn returns false to stop early (the rest counts as
 * found but unvisited records are not reported as missing). */
typedef bool (*outbox_visit_fn)(void *ctx, const outbox_rec *rec);
outbox_status outbox_lookup(const outbox *ob, uint32_t boot, uint64_t from, uint64_t to,
                            outbox_visit_fn fn, void *ctx, uint64_t *found, uint64_t *missing);

#endif
