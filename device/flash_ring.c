/* flash_ring — see flash_ring.h. */
#include "flash_ring.h"

#include "reading_rec.h"

#include <string.h>

#define FLASH_RING_MAGIC 0x31524756u /* "VGR1" */

static void flash_ring__put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t flash_ring__get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static flash_ring_status flash_ring__check(const uint8_t s[FLASH_RING_SLOT])
{
    bool blank = true;
    for (int i = 0; i < FLASH_RING_SLOT && blank; i++)
        blank = s[i] == 0xFF;
    if (blank)
        return FLASH_RING_EBLANK;
    return flash_ring__get(s + 30, 2) == reading_rec_crc16(s, 30) ? FLASH_RING_OK
                                                                 : FLASH_RING_ECRC;
}

static uint32_t flash_ring__off(const flash_ring *r, uint32_t sec, uint32_t slot)
{
    return sec * r->f->sector_size + FLASH_RING_SLOT * slot;
}

/* Reads and checks the header of sector sec; *seqno, *cursor on success. */
static bool flash_ring__header(const flash_ring *r, uint32_t sec, uint32_t *seqno, uint64_t *cursor)
{
    uint8_t h[FLASH_RING_SLOT];
    if (r->f->read(r->f->ctx, flash_ring__off(r, sec, 0), h, sizeof h) != PLATFORM_OK)
        return false;
    if (flash_ring__check(h) != FLASH_RING_OK || flash_ring__get(h, 4) != FLASH_RING_MAGIC ||
        flash_ring__get(h + 16, 2) != r->rps || flash_ring__get(h + 4, 4) == 0)
        return false;
    *seqno = (uint32_t)flash_ring__get(h + 4, 4);
    *cursor = flash_ring__get(h + 8, 8);
    return true;
}

/* Erases sector sec and programs its header: it becomes the head. */
static flash_ring_status flash_ring__start_sector(flash_ring *r, uint32_t sec, uint32_t seqno)
{
    const platform_flash *f = r->f;
    if (f->erase(f->ctx, flash_ring__off(r, sec, 0), f->sector_size) != PLATFORM_OK)
        return FLASH_RING_EIO;
    uint8_t h[FLASH_RING_SLOT];
    memset(h, 0, sizeof h);
    flash_ring__put(h, FLASH_RING_MAGIC, 4);
    flash_ring__put(h + 4, seqno, 4);
    flash_ring__put(h + 8, r->cursor, 8);
    flash_ring__put(h + 16, r->rps, 2);
    flash_ring__put(h + 30, reading_rec_crc16(h, 30), 2);
    if (f->program(f->ctx, flash_ring__off(r, sec, 0), h, sizeof h) != PLATFORM_OK)
        return FLASH_RING_EIO;
    r->head_sec = sec;
    r->head_seqno = seqno;
    r->head_slot = 0;
    r->hdr_cursor = r->cursor;
    return FLASH_RING_OK;
}

flash_ring_status flash_ring_open(flash_ring *r, const platform_flash *f, uint8_t *page,
                                  uint32_t page_records, flash_ring_evict_fn evict, void *ctx)
{
    if (!r || !f || !f->read || !f->program || !f->erase || !page || page_records == 0)
        return FLASH_RING_EINVAL;
    if (f->sector_size < 2 * FLASH_RING_SLOT || f->sector_size % FLASH_RING_SLOT ||
        f->sector_size / FLASH_RING_SLOT - 1 > 0xFFFF || f->size % f->sector_size ||
        f->size / f->sector_size < 2 || f->prog_size == 0 || FLASH_RING_SLOT % f->prog_size)
        return FLASH_RING_EINVAL;
    memset(r, 0, sizeof *r);
    r->f = f;
    r->nsec = f->size / f->sector_size;
    r->rps = f->sector_size / FLASH_RING_SLOT - 1;
    r->page = page;
    r->page_cap = page_records;
    r->evict = evict;
    r->evict_ctx = ctx;

    uint32_t best = 0, best_sec = 0;
    uint64_t best_cur = 0;
    for (uint32_t s = 0; s < r->nsec; s++) {
        uint32_t q;
        uint64_t c;
        if (flash_ring__header(r, s, &q, &c) && q > best) {
            best = q;
            best_sec = s;
            best_cur = c;
        }
    }
    if (best == 0) { /* blank or foreign: format lazily, one sector */
        r->tail_seqno = 1;
        return flash_ring__start_sector(r, 0, 1);
    }
    r->head_sec = best_sec;
    r->head_seqno = best;
    r->hdr_cursor = r->cursor = best_cur;
    r->tail_seqno = best;
    /* Walk back over consecutive sequence numbers: anything else (an
     * erased sector, a torn header, an older lap) ends the ring. */
    for (uint32_t k = 1; k < r->nsec && best > k; k++) {
        uint32_t q;
        uint64_t c;
        uint32_t s = (best_sec + r->nsec - k) % r->nsec;
        if (!flash_ring__header(r, s, &q, &c) || q != best - k)
            break;
        r->tail_seqno = q;
    }
    /* Write position: after the last non-blank slot of the head sector. */
    uint32_t last = 0;
    for (uint32_t i = 0; i < r->rps; i++) {
        uint8_t s[FLASH_RING_SLOT];
        if (f->read(f->ctx, flash_ring__off(r, best_sec, i + 1), s, sizeof s) != PLATFORM_OK)
            return FLASH_RING_EIO;
        flash_ring_status st = flash_ring__check(s);
        if (st != FLASH_RING_EBLANK)
            last = i + 1;
        if (st == FLASH_RING_ECRC)
            r->torn++;
    }
    r->head_slot = last;
    return FLASH_RING_OK;
}

uint64_t flash_ring_tail(const flash_ring *r)
{
    return (uint64_t)r->tail_seqno * r->rps;
}

uint64_t flash_ring_flash_end(const flash_ring *r)
{
    return (uint64_t)r->head_seqno * r->rps + r->head_slot;
}

uint64_t flash_ring_end(const flash_ring *r)
{
    return flash_ring_flash_end(r) + r->page_n;
}

uint64_t flash_ring_head_start(const flash_ring *r)
{
    return (uint64_t)r->head_seqno * r->rps;
}

uint64_t flash_ring_capacity(const flash_ring *r)
{
    return (uint64_t)(r->nsec - 1) * r->rps;
}

/* The head is full: erase the next sector (evicting the tail first when
 * the ring has wrapped onto it) and make it the head. */
static flash_ring_status flash_ring__advance(flash_ring *r)
{
    uint32_t next = (r->head_sec + 1) % r->nsec;
    if (r->head_seqno - r->tail_seqno + 1 >= r->nsec) {
        uint64_t from = flash_ring_tail(r);
        if (r->evict)
            r->evict(r->evict_ctx, from, from + r->rps);
        r->tail_seqno++;
    }
    return flash_ring__start_sector(r, next, r->head_seqno + 1);
}

flash_ring_status flash_ring_flush(flash_ring *r)
{
    if (!r)
        return FLASH_RING_EINVAL;
    flash_ring_status rc = FLASH_RING_OK;
    uint32_t i = 0;
    while (i < r->page_n) {
        if (r->head_slot >= r->rps && (rc = flash_ring__advance(r)) != FLASH_RING_OK)
            break;
        uint32_t n = r->page_n - i;
        if (n > r->rps - r->head_slot)
            n = r->rps - r->head_slot;
        platform_status ps =
            r->f->program(r->f->ctx, flash_ring__off(r, r->head_sec, r->head_slot + 1),
                          r->page + (size_t)FLASH_RING_SLOT * i, (size_t)FLASH_RING_SLOT * n);
        r->head_slot += n; /* even on failure: those slots are never programmed again */
        i += n;
        if (ps != PLATFORM_OK) {
            rc = FLASH_RING_EIO;
            break;
        }
    }
    if (rc != FLASH_RING_OK) {
        /* What did not reach flash is gone (absent), like after a power cut;
         * positions stay monotonic so the owner's counting still holds. */
        r->io_errors += r->page_n - i;
        if (r->head_slot > r->rps)
            r->head_slot = r->rps;
    }
    r->page_n = 0;
    return rc;
}

flash_ring_status flash_ring_append(flash_ring *r, const uint8_t slot[FLASH_RING_SLOT])
{
    if (!r || !slot)
        return FLASH_RING_EINVAL;
    memcpy(r->page + (size_t)FLASH_RING_SLOT * r->page_n, slot, FLASH_RING_SLOT);
    r->page_n++;
    return r->page_n == r->page_cap ? flash_ring_flush(r) : FLASH_RING_OK;
}

flash_ring_status flash_ring_read(const flash_ring *r, uint64_t pos, uint8_t out[FLASH_RING_SLOT])
{
    if (!r || !out)
        return FLASH_RING_EINVAL;
    if (pos < flash_ring_tail(r) || pos >= flash_ring_end(r))
        return FLASH_RING_EGONE;
    uint64_t fe = flash_ring_flash_end(r);
    if (pos >= fe) {
        memcpy(out, r->page + (size_t)FLASH_RING_SLOT * (pos - fe), FLASH_RING_SLOT);
        return FLASH_RING_OK;
    }
    uint32_t seqno = (uint32_t)(pos / r->rps), slot = (uint32_t)(pos % r->rps);
    uint32_t sec = (r->head_sec + r->nsec - (r->head_seqno - seqno) % r->nsec) % r->nsec;
    if (r->f->read(r->f->ctx, flash_ring__off(r, sec, slot + 1), out, FLASH_RING_SLOT) !=
        PLATFORM_OK)
        return FLASH_RING_EIO;
    return flash_ring__check(out);
}
