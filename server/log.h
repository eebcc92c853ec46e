/* log — leveled logging to stderr, with a tag per module and rate limiting.
 *
 * Any thread may call every function here: each line is written with one
 * fprintf on an unbuffered stream, so lines from several threads do not mix.
 * The level is checked before formatting (LOG_* macros), so a disabled
 * debug line costs one comparison. */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdatomic.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern _Atomic int log_threshold; /* default LOG_LEVEL_INFO */

/* Parses "error", "warn", "info", "debug". Returns 0, or -1 if unknown. */
int log_parse_level(const char *name, int *out);
void log_write(int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT(lvl, tag, ...)                                                  \
    do {                                                                       \
        if ((lvl) <= atomic_load_explicit(&log_threshold, memory_order_relaxed)) \
            log_write((lvl), (tag), __VA_ARGS__);                              \
    } while (0)
#define LOG_E(tag, ...) LOG_AT(LOG_LEVEL_ERROR, tag, __VA_ARGS__)
#define LOG_W(tag, ...) LOG_AT(LOG_LEVEL_WARN, tag, __VA_ARGS__)
#define LOG_I(tag, ...) LOG_AT(LOG_LEVEL_INFO, tag, __VA_ARGS__)
#define LOG_D(tag, ...) LOG_AT(LOG_LEVEL_DEBUG, tag, __VA_ARGS__)

/* A token bucket for noisy lines (rejected messages, dropped clients).
 * Not thread-safe: keep one per thread or per owner. */
typedef struct log_ratelimit {
    int64_t window_start_ms;
    uint32_t burst;      /* lines allowed per window */
    uint32_t used;       /* lines written in this window */
    uint64_t suppressed; /* lines held back since the last written one */
} log_ratelimit;

#define LOG_RATELIMIT_INIT(burst_) {0, (burst_), 0, 0}

/* Returns 1 if a line may be written now; then *suppressed (if not NULL)
 * receives how many were held back before it, and the count restarts. */
int log_ratelimit_ok(log_ratelimit *rl, int64_t now_ms, uint64_t *suppressed);

#endif
