/* outbox — store-and-forward of readings in a power-fail-safe flash ring.
 *
 * Every reading the session makes is appended here as a 32-byte record
 * (reading_rec.h) to a flash_ring: one published live is flagged sent and
 * kept only to serve a later `resend`; one made offline is pending and
 * replayed, oldest first, after reconnect. The ring survives reboots and
 * power cuts, so a resend for an earlier boot is served as well as one for
 * the current boot.
 *
 * Pending state without rewriting flash: a cursor (a ring position) below
 * which nothing is pending. It is persisted in every sector header and, when
 * it moved, as a CURSOR record in the page about to be programmed, so after
 * a reboot at most a page's worth of replays is repeated (vigild ignores
 * the duplicate). Readings flagged sent are skipped by the replay.
 *
 * When the ring is full the oldest sector is erased: its pending readings
 * are counted in `dropped`, its sent ones in `evicted`. Records still in
 * the page buffer at a power cut are absent after it; the next boot learns
 * from the newest record whether the previous boot ended cleanly (an END
 * record, written by outbox_end_boot) and otherwise reports the boot and
 * last stored seq (outbox_last), so readings after it are answered as
 * `missing` to any resend.
 *
 * Capacity: (sectors - 1) * (sector_size / 32 - 1) readings; a 1 MiB
 * region of 4 KiB sectors holds 32,385 readings, 9.0 h at 1 Hz.
 *
 * Ownership: the caller provides the flash seam and the page buffer
 * (OUTBOX_PAGE_BYTES(n)), both outliving the outbox; nothing is allocated.
 * Threading: none; one owner (the session). */
#ifndef VIGIL_OUTBOX_H
#define VIGIL_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flash_ring.h"
#include "reading_rec.h"

/* Readings per page buffer by default: 8 × 32 B = one 256-byte NOR page. */
#define OUTBOX_PAGE_RECORDS 8
#define OUTBOX_PAGE_BYTES(n) ((size_t)(n) * FLASH_RING_SLOT)

typedef enum outbox_status {
    OUTBOX_OK = 0,
    OUTBOX_EINVAL = -1, /* NULL argument, bad geometry, page smaller than 2 records */
    OUTBOX_EEMPTY = -2, /* nothing pending */
    OUTBOX_EIO = -3,    /* the flash failed; what the page held is lost (counted) */
} outbox_status;

typedef struct outbox {
    flash_ring ring;
    uint64_t cursor;       /* no pending reading below this position */
    uint64_t cursor_saved; /* last cursor persisted */
    uint64_t dropped;      /* pending readings erased before they were sent */
    uint64_t evicted;      /* sent readings erased (resend history shrinks) */
    /* Found at init: the newest reading in flash, and whether its boot
     * ended with an END record. */
    bool have_last;
    bool last_clean;
    uint32_t last_boot;
    uint32_t last_seq;
} outbox;

/* Recovers (or formats) the ring on f. page: page_records * 32 bytes,
 * page_records >= 2 (flushed when full). */
outbox_status outbox_init(outbox *ob, const platform_flash *f, uint8_t *page, uint32_t page_records);

/* Appends a reading (rec->sent: published live). Programs the page when
 * full. */
outbox_status outbox_push(outbox *ob, const reading_rec *rec);

/* Programs the page buffer now (disconnect, age, before a reboot). */
outbox_status outbox_flush(outbox *ob);

/* A clean stop of boot `boot` after seq `last_seq`: END record + flush. */
outbox_status outbox_end_boot(outbox *ob, uint32_t boot, uint32_t last_seq);

/* The oldest pending reading into *out and its position into *pos, or
 * OUTBOX_EEMPTY. Reads at most a bounded number of slots per call. */
outbox_status outbox_peek_pending(outbox *ob, reading_rec *out, uint64_t *pos);

/* Marks the reading at pos (from outbox_peek_pending) as sent. */
outbox_status outbox_mark_sent(outbox *ob, uint64_t pos);

/* Slots at or past the cursor (an upper bound of the pending readings). */
size_t outbox_pending(const outbox *ob);
/* Slots held (flash + page buffer). */
size_t outbox_count(const outbox *ob);
/* Readings appended but not yet programmed (lost at a power cut). */
size_t outbox_buffered(const outbox *ob);
/* Readings the ring holds when full. */
uint64_t outbox_capacity(const outbox *ob);

/* Calls fn for each stored reading of boot `boot` with from <= seq <= to,
 * in order. Stores the number found in *found and the number of seqs in the
 * range that are not stored in *missing (either may be NULL). fn may be
 * NULL (count only); it returns false to stop early (the rest counts as
 * found but unvisited records are not reported as missing). */
typedef bool (*outbox_visit_fn)(void *ctx, const reading_rec *rec);
outbox_status outbox_lookup(outbox *ob, uint32_t boot, uint64_t from, uint64_t to,
                            outbox_visit_fn fn, void *ctx, uint64_t *found, uint64_t *missing);

#endif
