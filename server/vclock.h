/* vclock — the two clocks vigild uses, in one place.
 * Monotonic time measures intervals (latency, backoff, timeouts); wall-clock
 * time stamps what a person or a device reads (received_at). Any thread. */
#ifndef VIGIL_VCLOCK_H
#define VIGIL_VCLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t vclock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int64_t vclock_mono_ms(void) { return (int64_t)(vclock_mono_ns() / 1000000u); }

static inline int64_t vclock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
