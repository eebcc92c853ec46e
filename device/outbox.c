/* outbox — see outbox.h. */
#include "outbox.h"

#include <string.h>

#define OUTBOX_PEEK_SCAN 512 /* slots read per peek at most: bounds a tick */

static bool outbox__read(const outbox *ob, uint64_t pos, reading_rec *out)
{
    uint8_t s[FLASH_RING_SLOT];
    return flash_ring_read(&ob->ring, pos, s) == FLASH_RING_OK &&
           reading_rec_unpack(s, out) == READING_REC_OK;
}

/* The ring is about to erase [from, to): count what is lost with it. */
static void outbox__evict(void *ctx, uint64_t from, uint64_t to)
{
    outbox *ob = ctx;
    for (uint64_t p = from; p < to; p++) {
        reading_rec r;
        if (!outbox__read(ob, p, &r) || r.kind != READING_REC_READING)
            continue;
        if (p >= ob->cursor && !r.sent)
            ob->dropped++;
        else
            ob->evicted++;
    }
    if (ob->cursor < to)
        ob->cursor = to;
    ob->ring.cursor = ob->cursor;
}

/* The newest reading or END record, looking back at most two sectors. */
static void outbox__find_last(outbox *ob)
{
    uint64_t tail = flash_ring_tail(&ob->ring), p = flash_ring_end(&ob->ring);
    uint64_t lim = 2 * (uint64_t)ob->ring.rps;
    for (uint64_t k = 0; k < lim && p > tail; k++) {
        reading_rec r;
        p--;
        if (!outbox__read(ob, p, &r) || r.kind == READING_REC_CURSOR)
            continue;
        ob->have_last = true;
        ob->last_clean = r.kind == READING_REC_END;
        ob->last_boot = r.boot;
        ob->last_seq = r.seq;
        return;
    }
}

outbox_status outbox_init(outbox *ob, const platform_flash *f, uint8_t *page, uint32_t page_records)
{
    if (!ob || !f || !page || page_records < 2)
        return OUTBOX_EINVAL;
    memset(ob, 0, sizeof *ob);
    flash_ring_status rc = flash_ring_open(&ob->ring, f, page, page_records, outbox__evict, ob);
    if (rc == FLASH_RING_EINVAL)
        return OUTBOX_EINVAL;
    if (rc != FLASH_RING_OK)
        return OUTBOX_EIO;
    /* The cursor: the header's, or a later CURSOR record of the head sector. */
    uint64_t cur = ob->ring.hdr_cursor;
    for (uint64_t p = flash_ring_head_start(&ob->ring); p < flash_ring_end(&ob->ring); p++) {
        reading_rec r;
        if (outbox__read(ob, p, &r) && r.kind == READING_REC_CURSOR && r.cursor > cur)
            cur = r.cursor;
    }
    uint64_t tail = flash_ring_tail(&ob->ring), end = flash_ring_end(&ob->ring);
    ob->cursor = cur < tail ? tail : cur > end ? end : cur;
    ob->cursor_saved = ob->cursor;
    ob->ring.cursor = ob->cursor;
    outbox__find_last(ob);
    return OUTBOX_OK;
}

static outbox_status outbox__append(outbox *ob, const reading_rec *rec, bool skip)
{
    uint8_t s[FLASH_RING_SLOT];
    reading_rec_pack(rec, s);
    uint64_t pos = flash_ring_end(&ob->ring);
    /* A slot the replay would skip anyway moves a cursor that is at it. */
    if (skip && ob->cursor == pos)
        ob->cursor = pos + 1;
    ob->ring.cursor = ob->cursor;
    if (rec->kind == READING_REC_CURSOR)
        ob->cursor_saved = rec->cursor;
    return flash_ring_append(&ob->ring, s) == FLASH_RING_OK ? OUTBOX_OK : OUTBOX_EIO;
}

static outbox_status outbox__save_cursor(outbox *ob)
{
    if (ob->cursor == ob->cursor_saved)
        return OUTBOX_OK;
    /* Its own position is skipped too, so record the cursor past it when
     * the cursor is at the end. */
    uint64_t pos = flash_ring_end(&ob->ring);
    reading_rec c = {.kind = READING_REC_CURSOR, .cursor = ob->cursor == pos ? pos + 1 : ob->cursor};
    return outbox__append(ob, &c, true);
}

outbox_status outbox_push(outbox *ob, const reading_rec *rec)
{
    if (!ob || !rec || rec->kind != READING_REC_READING)
        return OUTBOX_EINVAL;
    /* When this reading fills the page, the replay's progress goes in it. */
    if (ob->ring.page_n + 2 == ob->ring.page_cap && outbox__save_cursor(ob) != OUTBOX_OK)
        return OUTBOX_EIO;
    return outbox__append(ob, rec, rec->sent);
}

outbox_status outbox_flush(outbox *ob)
{
    if (!ob)
        return OUTBOX_EINVAL;
    if (ob->ring.page_n == 0 && ob->cursor == ob->cursor_saved)
        return OUTBOX_OK;
    if (outbox__save_cursor(ob) != OUTBOX_OK)
        return OUTBOX_EIO;
    return flash_ring_flush(&ob->ring) == FLASH_RING_OK ? OUTBOX_OK : OUTBOX_EIO;
}

outbox_status outbox_end_boot(outbox *ob, uint32_t boot, uint32_t last_seq)
{
    if (!ob)
        return OUTBOX_EINVAL;
    reading_rec e = {.kind = READING_REC_END, .boot = boot, .seq = last_seq};
    if (outbox__append(ob, &e, true) != OUTBOX_OK)
        return OUTBOX_EIO;
    return outbox_flush(ob);
}

outbox_status outbox_peek_pending(outbox *ob, reading_rec *out, uint64_t *pos)
{
    if (!ob || !out || !pos)
        return OUTBOX_EINVAL;
    uint64_t tail = flash_ring_tail(&ob->ring), end = flash_ring_end(&ob->ring);
    if (ob->cursor < tail)
        ob->cursor = tail;
    for (int i = 0; i < OUTBOX_PEEK_SCAN && ob->cursor < end; i++) {
        if (outbox__read(ob, ob->cursor, out) && out->kind == READING_REC_READING && !out->sent) {
            *pos = ob->cursor;
            return OUTBOX_OK;
        }
        ob->cursor++; /* sent, not a reading, or torn (absent) */
    }
    return OUTBOX_EEMPTY;
}

outbox_status outbox_mark_sent(outbox *ob, uint64_t pos)
{
    if (!ob || pos != ob->cursor || pos >= flash_ring_end(&ob->ring))
        return OUTBOX_EINVAL;
    ob->cursor = pos + 1;
    return OUTBOX_OK;
}

size_t outbox_pending(const outbox *ob)
{
    return ob ? (size_t)(flash_ring_end(&ob->ring) - ob->cursor) : 0;
}

size_t outbox_count(const outbox *ob)
{
    return ob ? (size_t)(flash_ring_end(&ob->ring) - flash_ring_tail(&ob->ring)) : 0;
}

size_t outbox_buffered(const outbox *ob)
{
    return ob ? ob->ring.page_n : 0;
}

uint64_t outbox_capacity(const outbox *ob)
{
    return ob ? flash_ring_capacity(&ob->ring) : 0;
}

/* (boot, seq) order, the order of the log. */
static int outbox__cmp(uint32_t b1, uint64_t s1, uint32_t b2, uint64_t s2)
{
    return b1 != b2 ? (b1 < b2 ? -1 : 1) : s1 != s2 ? (s1 < s2 ? -1 : 1) : 0;
}

/* The first reading of the sector starting at pos, if any. */
static bool outbox__first_reading(const outbox *ob, uint64_t pos, uint64_t end, reading_rec *r)
{
    for (uint64_t p = pos; p < pos + ob->ring.rps && p < end; p++)
        if (outbox__read(ob, p, r) && r->kind == READING_REC_READING)
            return true;
    return false;
}

outbox_status outbox_lookup(outbox *ob, uint32_t boot, uint64_t from, uint64_t to,
                            outbox_visit_fn fn, void *ctx, uint64_t *found, uint64_t *missing)
{
    if (!ob || from > to)
        return OUTBOX_EINVAL;
    uint64_t n = 0;
    bool go = true;
    uint64_t rps = ob->ring.rps, end = flash_ring_end(&ob->ring);
    /* Readings are appended in (boot, seq) order (the session never reuses a
     * boot), so a sector whose successor starts at or before (boot, from)
     * holds nothing of the range: one read skips it. */
    for (uint64_t sec = flash_ring_tail(&ob->ring); sec < end; sec += rps) {
        reading_rec r;
        if (sec + rps < end && outbox__first_reading(ob, sec + rps, end, &r) &&
            outbox__cmp(r.boot, r.seq, boot, from) <= 0)
            continue;
        bool past = false;
        for (uint64_t p = sec; p < sec + rps && p < end; p++) {
            if (!outbox__read(ob, p, &r) || r.kind != READING_REC_READING)
                continue;
            if (outbox__cmp(r.boot, r.seq, boot, to) > 0) {
                past = true;
                break;
            }
            if (r.boot != boot || r.seq < from)
                continue;
            n++;
            if (go && fn)
                go = fn(ctx, &r);
        }
        if (past)
            break;
    }
    if (found)
        *found = n;
    if (missing) {
        /* to - from + 1 overflows only for the full 64-bit range. */
        uint64_t span = to - from;
        *missing = span == UINT64_MAX ? UINT64_MAX - n : span + 1 - n;
    }
    return OUTBOX_OK;
}
