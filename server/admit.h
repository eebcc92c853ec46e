/* admit — which device ids vigild accepts messages from: every id it
 * already knows, and new ids only while the table has room (max_devices)
 * and the rate of new ids allows (a token bucket: rate_per_s, burst). A
 * flood of invented ids (each costs ~2 KB across store, tracker and live
 * model) is refused at the door; known devices are never affected. Ids are
 * never forgotten while vigild runs (a device pruned by retention still
 * counts until the next start, which loads what the store holds).
 *
 * Pure: no I/O, no clock (the caller passes the time), no threads.
 * Threads: one owner (vigild's ingest thread; main loads it before that
 * thread starts). Ownership: ids are copied. */
#ifndef VIGIL_ADMIT_H
#define VIGIL_ADMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct admit admit;

typedef enum admit_result {
    ADMIT_KNOWN = 0, /* seen before: always accepted */
    ADMIT_NEW,       /* first sight, admitted (now known) */
    ADMIT_FULL,      /* first sight, the table holds max_devices */
    ADMIT_RATE,      /* first sight, new ids arrive faster than allowed */
    ADMIT_ENOMEM,    /* first sight, no memory to remember it */
} admit_result;

/* max_devices >= 1, rate_per_s > 0, burst >= 1. NULL on bad values or
 * ENOMEM. The bucket starts full. */
admit *admit_new(size_t max_devices, double rate_per_s, double burst);
void admit_free(admit *a); /* NULL-safe */

/* Startup: an id the store already holds (no token taken; past
 * max_devices it is still added: known devices are never refused).
 * Returns 0, or -1 (invalid id, ENOMEM). */
int admit_add_known(admit *a, const char *id);

/* A message from id at now_ms (monotonic): see admit_result. */
admit_result admit_check(admit *a, const char *id, int64_t now_ms);

size_t admit_count(const admit *a);

#endif
