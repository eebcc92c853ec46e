/* httparg — REST query parameters as integers, checked: the one parser for
 * every integer a URL carries, and the checked arithmetic done on them
 * (a default window "the last hour before `to`" must not overflow when to
 * is INT64_MIN: signed overflow is undefined behaviour).
 *
 * Pure: no I/O, no allocation. Threads: reentrant. Ownership: strings are
 * borrowed for the call. */
#ifndef VIGIL_HTTPARG_H
#define VIGIL_HTTPARG_H

#include <stdint.h>

/* s must be a whole decimal integer: an optional '-', then 1..19 digits
 * (no spaces, no '+', nothing after) whose value is within [lo, hi]
 * (lo <= hi). On success *out is set and 0 returned; else -1 and *out is
 * left alone. s NULL is -1. */
int httparg_int64(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* *out = a - b if that fits an int64, returning 0; else -1 (*out alone). */
int httparg_sub(int64_t a, int64_t b, int64_t *out);

/* *out = a + b if that fits an int64, returning 0; else -1 (*out alone). */
int httparg_add(int64_t a, int64_t b, int64_t *out);

#endif
