/* readhold — when the ingest thread lets readings gather before reading
 * again (pure: no I/O, no clock, no threads; ingest.c feeds it the time).
 *
 * Each wake-up of the ingest thread costs far more than the reading it
 * reads at light load (poll, libmosquitto's reads, a PUBACK segment, a kick
 * of the web thread). Holding the next read for a moment lets several
 * readings arrive first and be read, handled and acknowledged in one pass.
 * The hold adds up to its length to a reading's latency, so by default it is
 * used only while the broker delivers fast enough that a 1 ms hold gathers
 * several readings (READHOLD_AUTO_ON_PER_S); below that, as at a quiet ward,
 * every reading is read at once, as before.
 *
 * --ingest-hold-us: READHOLD_AUTO (default), 0 (never), or N µs (after every
 * pass that read something, whatever the rate).
 *
 * Ownership: the caller's struct, no pointers. Thread: the one that owns it
 * (vigil-ingest). */
#ifndef VIGIL_READHOLD_H
#define VIGIL_READHOLD_H

#include <stdint.h>

#define READHOLD_AUTO (-1)
#define READHOLD_AUTO_US 1000            /* the hold when auto engages */
#define READHOLD_AUTO_ON_PER_S 3000      /* engage at or above this rate ... */
#define READHOLD_AUTO_OFF_PER_S 1500     /* ... and release below this one (no flapping) */
#define READHOLD_WINDOW_MS 200           /* the rate is counted over windows this long */

typedef struct readhold {
    int cfg_us;          /* READHOLD_AUTO, 0 or N */
    int engaged;         /* auto: the rate is high */
    int64_t window_ms;   /* start of the counting window (0: none yet) */
    uint64_t counted;    /* readings read in it */
} readhold;

/* cfg_us: --ingest-hold-us; negative (CONFIG_AUTO) means READHOLD_AUTO. */
void readhold_init(readhold *h, int cfg_us);

/* One read pass ended at now_ms having read `packets` packets (0 for a
 * wake-up that read nothing); `backlog` when it stopped at its cap with more
 * waiting (then there is no hold: read on at once). Returns the hold before
 * the next read, in µs (0: none). */
int readhold_after_pass(readhold *h, int64_t now_ms, unsigned packets, int backlog);

/* Whether holds may happen at all (libmosquitto's PUBACKs are then queued and
 * sent together after the pass): constant for a fixed N or 0, follows the
 * rate for auto. */
int readhold_batching(const readhold *h);

#endif
