/* device_id — the one rule for a device id, shared by vigild (topic and
 * payload checks) and the device core (configuration checks): 1..64 bytes
 * of [A-Za-z0-9_.-], except "." and ".." (path segments a REST URL cannot
 * name). The id is a topic level, so it can never hold '/',
 * '+', '#' or anything a dashboard would have to escape. docs/PROTOCOL.md
 * states the same rule.
 *
 * Ownership: strings are borrowed for the call. Threads: reentrant.
 * Portable C, no allocation. */
#ifndef VIGIL_DEVICE_ID_H
#define VIGIL_DEVICE_ID_H

#include <stddef.h>

#define DEVICE_ID_MAX 64 /* bytes, without the NUL */

/* 1 if s[0..len) is a valid device id, else 0 (also for NULL). */
int device_id_valid(const char *s, size_t len);

/* The same for a NUL-terminated s; reads at most DEVICE_ID_MAX + 1 bytes,
 * so an unterminated buffer is rejected rather than overrun. */
int device_id_valid_str(const char *s);

#endif
