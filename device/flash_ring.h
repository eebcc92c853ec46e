/* flash_ring — a log-structured, append-only ring of 32-byte slots on a raw
 * NOR flash region (platform_flash), safe against a power cut at any
 * instant.
 *
 * Layout: the region is cut into sectors; slot 0 of each sector is a header
 * (magic, a sector sequence number that grows by one per sector opened, the
 * owner's cursor at that moment, CRC), slots 1.. hold records. Sectors are
 * used in physical order, round the region; the sector after the head is
 * erased (whole) only when the head is full, which is the only time data
 * is destroyed: the oldest sector, reported through the evict callback
 * first. Nothing is ever rewritten in place, so wear spreads evenly by
 * construction.
 *
 * A record slot is valid when bytes 30..31 are the CRC-16 of bytes 0..29
 * (reading_rec_crc16) and it is not all 0xFF. A torn program leaves slots
 * that fail the CRC: they read as absent and are never programmed again.
 *
 * Recovery (flash_ring_open) reads every sector header, takes the highest
 * sequence number as the head and walks back over consecutive numbers to
 * the tail, then reads only the head sector's slots to find the write
 * position (after the last non-blank slot). No other record is read.
 *
 * Appends go to a RAM page buffer that is programmed when full or on
 * flash_ring_flush; what it holds at a power cut is lost (the owner knows
 * how much: end - flash_end).
 *
 * Positions: every slot ever written has a position seqno * rps + slot, so
 * positions grow monotonically and [tail, end) is what the ring holds, the
 * last end - flash_end of them in the page buffer.
 *
 * Ownership: the caller owns the ring struct, the page buffer and the
 * flash seam, all outliving the ring. No allocation. Threading: one owner. */
#ifndef VIGIL_FLASH_RING_H
#define VIGIL_FLASH_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"

#define FLASH_RING_SLOT 32

typedef enum flash_ring_status {
    FLASH_RING_OK = 0,
    FLASH_RING_EINVAL = -1, /* bad geometry or argument */
    FLASH_RING_EIO = -2,    /* the flash seam failed */
    FLASH_RING_EGONE = -3,  /* position outside [tail, end) */
    FLASH_RING_EBLANK = -4, /* erased slot (never written) */
    FLASH_RING_ECRC = -5,   /* torn or corrupt slot: treat as absent */
} flash_ring_status;

/* Called before the sector holding positions [from, to) is erased. */
typedef void (*flash_ring_evict_fn)(void *ctx, uint64_t from, uint64_t to);

typedef struct flash_ring {
    const platform_flash *f;
    uint32_t nsec;       /* sectors in the region */
    uint32_t rps;        /* record slots per sector */
    uint32_t head_sec;   /* physical index of the head sector */
    uint32_t head_seqno; /* its sequence number */
    uint32_t tail_seqno;
    uint32_t head_slot;  /* next free record slot of the head sector (rps: full) */
    uint64_t hdr_cursor; /* cursor stored in the head sector's header */
    uint64_t cursor;     /* owner's cursor, stored in the next header */
    uint8_t *page;
    uint32_t page_cap;   /* records */
    uint32_t page_n;
    flash_ring_evict_fn evict;
    void *evict_ctx;
    uint64_t torn;       /* invalid slots seen in the head sector at open */
    uint64_t io_errors;
} flash_ring;

/* Recovers the ring from f (formats it when no valid sector is found).
 * page holds page_records * 32 bytes. Needs at least 2 sectors. */
flash_ring_status flash_ring_open(flash_ring *r, const platform_flash *f, uint8_t *page,
                                  uint32_t page_records, flash_ring_evict_fn evict, void *ctx);

/* Appends one slot (bytes 30..31 must already be its CRC). Programs the
 * page when it becomes full; the record is kept either way. */
flash_ring_status flash_ring_append(flash_ring *r, const uint8_t slot[FLASH_RING_SLOT]);

/* Programs the page buffer. On EIO the page's slots are skipped (counted
 * in io_errors), never programmed again. */
flash_ring_status flash_ring_flush(flash_ring *r);

/* Reads the slot at pos (from flash or the page buffer) and checks it. */
flash_ring_status flash_ring_read(const flash_ring *r, uint64_t pos, uint8_t out[FLASH_RING_SLOT]);

uint64_t flash_ring_tail(const flash_ring *r);
uint64_t flash_ring_end(const flash_ring *r);       /* one past the last appended */
uint64_t flash_ring_flash_end(const flash_ring *r); /* one past the last programmed */
/* First position of the head sector (what recovery scanned). */
uint64_t flash_ring_head_start(const flash_ring *r);
/* Records the ring holds when full, at least (nsec - 1) * rps. */
uint64_t flash_ring_capacity(const flash_ring *r);

#endif
