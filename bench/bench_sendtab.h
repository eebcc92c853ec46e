/* bench_sendtab — the send-time table: when each message (device, seq) was
 * handed to mosquitto_publish, in bench_now_ns() nanoseconds, 0 for "not
 * sent". Latency is measured against this, kept inside the bench, not
 * against a timestamp the subject under test could alter.
 *
 * Ownership: main creates it once (MAP_SHARED, before the publisher workers
 * fork, so they all write the same pages) and it lives until exit.
 * Threading: each slot has one writer, the worker owning the device; the
 * receiver thread reads any slot. Access with BENCH_LD / BENCH_ST. */
#ifndef VIGIL_BENCH_SENDTAB_H
#define VIGIL_BENCH_SENDTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_sendtab {
    uint64_t *ns;  /* [device * maxseq + seq] */
    long devices;
    long maxseq;   /* seq values per device: the run's schedule plus 5% */
} bench_sendtab;

typedef enum bench_sendtab_status {
    BENCH_SENDTAB_OK = 0,
    BENCH_SENDTAB_ENOMEM = -1,
} bench_sendtab_status;

bench_sendtab_status bench_sendtab_create(bench_sendtab *t, long devices, long maxseq);

/* The slot of (dev, seq), which the caller has checked are in range. Also
 * the bit index of the receivers' "seen" bitmaps. */
static inline size_t bench_sendtab_index(const bench_sendtab *t, long dev, long seq)
{
    return (size_t)dev * (size_t)t->maxseq + (size_t)seq;
}

/* Number of slots (= bits of a "seen" bitmap). */
static inline size_t bench_sendtab_slots(const bench_sendtab *t)
{
    return (size_t)t->devices * (size_t)t->maxseq;
}

#endif
