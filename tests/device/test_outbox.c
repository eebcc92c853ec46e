/* Tests for device/reading_rec, device/flash_ring and device/outbox: the
 * record codec, recovery after a power cut at every program/erase step of a
 * small sequence and at random steps of a long one, ring wrap over many
 * laps, replay order and resend lookup across boots. Pure: RAM flash model,
 * no files, no threads (these also run on the bare-metal targets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flash_mem.h"
#include "outbox.h"
#include "reading_rec.h"

static reading_rec mk(uint32_t boot, uint32_t seq, bool sent)
{
    reading_rec r = {.kind = READING_REC_READING, .sent = sent, .boot = boot, .seq = seq,
                     .uptime_ms = 1000u * seq, .ts_ms = 1795794000000ULL + seq,
                     .obj_cc = (int16_t)(3600 + seq % 100), .amb_cc = 2300,
                     .hr = (uint16_t)(60 + seq % 50), .spo2 = 97, .battery = 80, .rssi = -50};
    return r;
}

static bool same(const reading_rec *a, const reading_rec *b)
{
    return a->boot == b->boot && a->seq == b->seq && a->uptime_ms == b->uptime_ms &&
           a->ts_ms == b->ts_ms && a->obj_cc == b->obj_cc && a->amb_cc == b->amb_cc &&
           a->hr == b->hr && a->spo2 == b->spo2 && a->battery == b->battery && a->rssi == b->rssi;
}

/* ---- codec ---- */

static void test_codec_roundtrip_and_crc(void **state)
{
    (void)state;
    reading_rec r = mk(7, 123456, true), back;
    uint8_t b[READING_REC_SIZE];
    reading_rec_pack(&r, b);
    assert_int_equal(reading_rec_unpack(b, &back), READING_REC_OK);
    assert_true(same(&r, &back));
    assert_true(back.sent);
    /* Every single-bit flip is detected. */
    for (int i = 0; i < READING_REC_SIZE * 8; i++) {
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_not_equal(reading_rec_unpack(b, &back), READING_REC_OK);
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    memset(b, 0xFF, sizeof b);
    assert_int_equal(reading_rec_unpack(b, &back), READING_REC_EBLANK);
    reading_rec c = {.kind = READING_REC_CURSOR, .cursor = 0x123456789AULL};
    reading_rec_pack(&c, b);
    assert_int_equal(reading_rec_unpack(b, &back), READING_REC_OK);
    assert_int_equal(back.kind, READING_REC_CURSOR);
    assert_int_equal(back.cursor, 0x123456789AULL);
}

static void test_codec_json_matches_live_encoding(void **state)
{
    (void)state;
    tenc_reading t = {.object_temp = 36.67, .ambient_temp = 23.4, .heart_rate = 72.4,
                      .spo2 = 97.0, .hr_valid = true, .spo2_valid = true, .temp_valid = true,
                      .uptime_ms = 5000, .seq = 9, .boot = 3, .ts_synced = true,
                      .ts_ms = 1795794000123ULL, .battery = 88, .rssi = -61};
    char a[TENC_MAX_LEN], b[TENC_MAX_LEN];
    assert_int_equal(tenc_encode(&t, "ESP32_001", "1.0", a, sizeof a, NULL), TENC_OK);
    reading_rec r;
    reading_rec_from_tenc(&t, &r);
    tenc_reading back;
    reading_rec_to_tenc(&r, &back);
    assert_int_equal(tenc_encode(&back, "ESP32_001", "1.0", b, sizeof b, NULL), TENC_OK);
    assert_string_equal(a, b);
    /* What the encoder leaves out stays out. */
    t.hr_valid = false;
    t.spo2 = 20; /* out of range */
    t.ambient_temp = 500;
    t.battery = -1;
    t.rssi = 1;
    t.ts_synced = false;
    assert_int_equal(tenc_encode(&t, "ESP32_001", NULL, a, sizeof a, NULL), TENC_OK);
    reading_rec_from_tenc(&t, &r);
    reading_rec_to_tenc(&r, &back);
    assert_int_equal(tenc_encode(&back, "ESP32_001", NULL, b, sizeof b, NULL), TENC_OK);
    assert_string_equal(a, b);
}

/* ---- power cuts ---- */

#define SMALL_SEC 256u
#define SMALL_NSEC 3u
#define SMALL_N 40u

typedef struct seen {
    uint8_t count[4096];
    bool bad;
    uint32_t boot;
    reading_rec expect_boot;
} seen;

static bool collect(void *ctx, const reading_rec *r)
{
    seen *s = ctx;
    reading_rec want = mk(r->boot, r->seq, r->sent);
    if (!same(r, &want) || r->seq >= 4096)
        s->bad = true;
    else
        s->count[r->seq]++;
    return true;
}

/* Pushes boot-1 readings 1..n until the flash dies; returns the highest
 * seq known durable (its page programmed without error). */
static uint32_t run_until_cut(outbox *ob, uint32_t n, uint32_t *pushed)
{
    uint32_t durable = 0;
    *pushed = 0;
    for (uint32_t s = 1; s <= n; s++) {
        reading_rec r = mk(1, s, false);
        outbox_status rc = outbox_push(ob, &r);
        *pushed = s;
        if (rc != OUTBOX_OK)
            return durable;
        if (outbox_buffered(ob) == 0)
            durable = s;
    }
    if (outbox_flush(ob) == OUTBOX_OK)
        durable = n;
    return durable;
}

/* After recovery: no reading twice, every one intact, the durable ones
 * within the capacity all there; the ring keeps working. */
static void check_recovered(flash_mem *m, uint8_t *page, uint32_t durable, uint64_t min_cap)
{
    outbox ob;
    assert_int_equal(outbox_init(&ob, &m->f, page, 4), OUTBOX_OK);
    seen s;
    memset(&s, 0, sizeof s);
    uint64_t found = 0, missing = 0;
    assert_int_equal(outbox_lookup(&ob, 1, 1, SMALL_N, collect, &s, &found, &missing), OUTBOX_OK);
    assert_false(s.bad);
    assert_int_equal(found + missing, SMALL_N);
    for (uint32_t q = 1; q <= SMALL_N; q++) {
        assert_true(s.count[q] <= 1);
        if (q <= durable && q + min_cap > durable)
            assert_int_equal(s.count[q], 1);
    }
    if (durable > 0) {
        assert_true(ob.have_last);
        assert_false(ob.last_clean);
        assert_true(ob.last_seq >= durable);
    }
    /* Replay returns only readings, in order, each once. */
    uint32_t prev = 0;
    reading_rec r;
    uint64_t pos;
    for (int i = 0; i < 100 && outbox_peek_pending(&ob, &r, &pos) == OUTBOX_OK; i++) {
        assert_true(r.seq > prev);
        prev = r.seq;
        assert_int_equal(outbox_mark_sent(&ob, pos), OUTBOX_OK);
    }
    /* A new boot appends and survives a clean stop and another recovery. */
    for (uint32_t q = 1; q <= 10; q++) {
        reading_rec n = mk(2, q, true);
        assert_int_equal(outbox_push(&ob, &n), OUTBOX_OK);
    }
    assert_int_equal(outbox_end_boot(&ob, 2, 10), OUTBOX_OK);
    assert_int_equal(outbox_init(&ob, &m->f, page, 4), OUTBOX_OK);
    assert_true(ob.have_last && ob.last_clean);
    assert_int_equal(ob.last_boot, 2);
    memset(&s, 0, sizeof s);
    assert_int_equal(outbox_lookup(&ob, 2, 1, 10, collect, &s, &found, &missing), OUTBOX_OK);
    assert_int_equal(found, 10);
    assert_false(s.bad);
}

static void test_power_cut_at_every_step(void **state)
{
    (void)state;
    static uint8_t mem[SMALL_SEC * SMALL_NSEC];
    uint8_t page[OUTBOX_PAGE_BYTES(4)];
    flash_mem m;
    outbox ob;
    /* Dry run: how many steps the sequence takes. */
    flash_mem_init(&m, mem, sizeof mem, SMALL_SEC, 4);
    assert_int_equal(outbox_init(&ob, &m.f, page, 4), OUTBOX_OK);
    uint32_t pushed;
    assert_int_equal(run_until_cut(&ob, SMALL_N, &pushed), SMALL_N);
    uint64_t steps = m.steps;
    assert_true(steps > 10);
    uint64_t min_cap = (SMALL_NSEC - 2) * (SMALL_SEC / 32 - 1);
    static const uint32_t fracs[] = {0, 64, 128, 255};
    for (uint64_t cut = 1; cut <= steps; cut++) {
        for (size_t f = 0; f < sizeof fracs / sizeof fracs[0]; f++) {
            flash_mem_init(&m, mem, sizeof mem, SMALL_SEC, 4);
            assert_int_equal(outbox_init(&ob, &m.f, page, 4), OUTBOX_OK);
            m.cut_at = m.steps + cut;
            m.cut_frac = fracs[f];
            uint32_t durable = run_until_cut(&ob, SMALL_N, &pushed);
            flash_mem_power_on(&m);
            check_recovered(&m, page, durable, min_cap);
        }
    }
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A long run with drains and reboots; cut at a random step each lap. */
static void test_power_cut_random_long(void **state)
{
    (void)state;
    enum { SEC = 512, NSEC = 6, N = 1500 };
    static uint8_t mem[SEC * NSEC];
    uint8_t page[OUTBOX_PAGE_BYTES(8)];
    flash_mem m;
    uint64_t x = 88172645463325252ULL;
    for (int lap = 0; lap < 60; lap++) {
        flash_mem_init(&m, mem, sizeof mem, SEC, 16);
        outbox ob;
        assert_int_equal(outbox_init(&ob, &m.f, page, 8), OUTBOX_OK);
        m.cut_at = 1 + rng_next(&x) % 400;
        m.cut_frac = (uint32_t)(rng_next(&x) % 256);
        uint32_t s = 0;
        bool dead = false;
        while (s < N && !dead) {
            bool online = (s / 100) % 2 == 1;
            reading_rec r = mk(1, ++s, online);
            dead = outbox_push(&ob, &r) != OUTBOX_OK;
            reading_rec p;
            uint64_t pos;
            if (online && !dead && outbox_peek_pending(&ob, &p, &pos) == OUTBOX_OK)
                outbox_mark_sent(&ob, pos);
            if (s % 37 == 0 && !dead)
                dead = outbox_flush(&ob) != OUTBOX_OK;
        }
        flash_mem_power_on(&m);
        assert_int_equal(outbox_init(&ob, &m.f, page, 8), OUTBOX_OK);
        seen sn;
        memset(&sn, 0, sizeof sn);
        uint64_t found = 0, missing = 0;
        outbox_lookup(&ob, 1, 1, N, collect, &sn, &found, &missing);
        assert_false(sn.bad);
        assert_int_equal(found + missing, N);
        uint32_t lo = 0, hi = 0;
        for (uint32_t q = 1; q <= N; q++) {
            assert_true(sn.count[q] <= 1);
            if (sn.count[q]) {
                if (!lo)
                    lo = q;
                hi = q;
            }
        }
        /* What is held is one run: nothing in the middle went missing. */
        for (uint32_t q = lo; q <= hi; q++)
            assert_int_equal(sn.count[q], 1);
        assert_true(!lo || hi + 8 >= s - 1 || hi + 8 >= s); /* at most a page lost at the cut */
    }
}

static void test_wrap_many_laps(void **state)
{
    (void)state;
    enum { SEC = 256, NSEC = 4 };
    static uint8_t mem[SEC * NSEC];
    uint32_t erases[NSEC] = {0};
    uint8_t page[OUTBOX_PAGE_BYTES(4)];
    flash_mem m;
    flash_mem_init(&m, mem, sizeof mem, SEC, 4);
    m.sector_erases = erases;
    outbox ob;
    assert_int_equal(outbox_init(&ob, &m.f, page, 4), OUTBOX_OK);
    uint64_t cap = outbox_capacity(&ob);
    assert_int_equal(cap, 3 * 7);
    const uint32_t n = 20000;
    for (uint32_t s = 1; s <= n; s++) {
        reading_rec r = mk(1 + (s - 1) / 5000, s, true);
        assert_int_equal(outbox_push(&ob, &r), OUTBOX_OK);
        if (s % 3000 == 0) { /* reboot now and then */
            assert_int_equal(outbox_flush(&ob), OUTBOX_OK);
            assert_int_equal(outbox_init(&ob, &m.f, page, 4), OUTBOX_OK);
        }
    }
    assert_int_equal(outbox_flush(&ob), OUTBOX_OK);
    assert_int_equal(ob.dropped, 0); /* all were sent */
    assert_true(ob.evicted > 0); /* counted since the last init */
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < NSEC; i++) {
        lo = erases[i] < lo ? erases[i] : lo;
        hi = erases[i] > hi ? erases[i] : hi;
    }
    assert_true(lo > 900);
    assert_true(hi - lo <= 1); /* wear spreads evenly */
    uint32_t last_boot = 1 + (n - 1) / 5000;
    uint64_t found = 0, missing = 0;
    /* Held: a lap minus a page, a quarter of it cursor records. */
    outbox_lookup(&ob, last_boot, n - 12, n, NULL, NULL, &found, &missing);
    assert_int_equal(missing, 0);
    outbox_lookup(&ob, last_boot, n - 5 * cap, n - 2 * cap, NULL, NULL, &found, &missing);
    assert_int_equal(found, 0);
}

static void test_replay_and_resend_across_boots(void **state)
{
    (void)state;
    static uint8_t mem[4096 * 8];
    uint8_t page[OUTBOX_PAGE_BYTES(8)];
    flash_mem m;
    flash_mem_init(&m, mem, sizeof mem, 4096, 4);
    outbox ob;
    assert_int_equal(outbox_init(&ob, &m.f, page, 8), OUTBOX_OK);
    assert_false(ob.have_last);
    for (uint32_t s = 1; s <= 300; s++) {
        reading_rec r = mk(5, s, s <= 100); /* 100 live, then 200 offline */
        assert_int_equal(outbox_push(&ob, &r), OUTBOX_OK);
    }
    assert_in_range(outbox_pending(&ob), 200, 202); /* an upper bound: cursor records */
    /* Drain 150, then a clean reboot. */
    for (int i = 0; i < 150; i++) {
        reading_rec r;
        uint64_t pos;
        assert_int_equal(outbox_peek_pending(&ob, &r, &pos), OUTBOX_OK);
        assert_int_equal(r.seq, 101 + i);
        assert_int_equal(outbox_mark_sent(&ob, pos), OUTBOX_OK);
    }
    assert_int_equal(outbox_end_boot(&ob, 5, 300), OUTBOX_OK);
    assert_int_equal(outbox_init(&ob, &m.f, page, 8), OUTBOX_OK);
    assert_true(ob.have_last && ob.last_clean);
    assert_int_equal(ob.last_boot, 5);
    /* The cursor survived: the replay resumes at 251. */
    reading_rec r;
    uint64_t pos;
    assert_int_equal(outbox_peek_pending(&ob, &r, &pos), OUTBOX_OK);
    assert_int_equal(r.seq, 251);
    /* Boot 6 appends; a resend for boot 5 is still served. */
    for (uint32_t s = 1; s <= 20; s++) {
        reading_rec n = mk(6, s, true);
        outbox_push(&ob, &n);
    }
    seen sn;
    memset(&sn, 0, sizeof sn);
    uint64_t found, missing;
    assert_int_equal(outbox_lookup(&ob, 5, 290, 310, collect, &sn, &found, &missing), OUTBOX_OK);
    assert_int_equal(found, 11);
    assert_int_equal(missing, 10);
    assert_false(sn.bad);
    assert_int_equal(outbox_lookup(&ob, 6, 15, 20, NULL, NULL, &found, &missing), OUTBOX_OK);
    assert_int_equal(found, 6); /* 17..20 still in the page buffer */
    assert_int_equal(outbox_lookup(&ob, 5, 5, 4, NULL, NULL, &found, &missing), OUTBOX_EINVAL);
}

static void test_bad_geometry(void **state)
{
    (void)state;
    static uint8_t mem[4096];
    uint8_t page[OUTBOX_PAGE_BYTES(8)];
    flash_mem m;
    flash_mem_init(&m, mem, sizeof mem, 4096, 4); /* one sector: too small */
    outbox ob;
    assert_int_equal(outbox_init(&ob, &m.f, page, 8), OUTBOX_EINVAL);
    flash_mem_init(&m, mem, sizeof mem, 1024, 3); /* 3 does not divide 32 */
    assert_int_equal(outbox_init(&ob, &m.f, page, 8), OUTBOX_EINVAL);
    flash_mem_init(&m, mem, sizeof mem, 1024, 4);
    assert_int_equal(outbox_init(&ob, &m.f, page, 1), OUTBOX_EINVAL);
    assert_int_equal(outbox_init(NULL, &m.f, page, 8), OUTBOX_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip_and_crc),
        cmocka_unit_test(test_codec_json_matches_live_encoding),
        cmocka_unit_test(test_power_cut_at_every_step),
        cmocka_unit_test(test_power_cut_random_long),
        cmocka_unit_test(test_wrap_many_laps),
        cmocka_unit_test(test_replay_and_resend_across_boots),
        cmocka_unit_test(test_bad_geometry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
