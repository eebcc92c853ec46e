/* completeness_json — the JSON views of the completeness model: the
 * summary in every DEVICE object and the body of
 * GET /api/devices/{id}/completeness. Pure: reads the model through its
 * read-only device view (completeness.h), appends to a caller's sbuf.
 * Threads: whoever may read the model (the tracker calls these under its
 * lock). */
#ifndef VIGIL_COMPLETENESS_JSON_H
#define VIGIL_COMPLETENESS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "completeness.h"
#include "sbuf.h"

/* {"expected":..,"received":..,"lost":..,"ratio":..} for DEVICE objects
 * (ratio = received / expected, 1 when nothing is expected); "null" for an
 * untracked device. */
void completeness_summary_json(const completeness *c, const char *id, sbuf *out);

/* The body of GET /api/devices/{id}/completeness, restricted to boot
 * `boot` (-1: all tracked boots) and to seqs in [from, to]. Returns 0, or
 * -1 if the device is not tracked. At most max_gaps gaps are listed
 * ("gaps_truncated":true beyond). */
int completeness_device_json(const completeness *c, const char *id, int64_t boot, int64_t from,
                             int64_t to, size_t max_gaps, sbuf *out);
/* The same body from a device view (completeness_device_view_get, or a
 * copy of one that outlives the model's lock: tracker_device_json). */
int completeness_view_json(const completeness_device_view *d, int64_t boot, int64_t from, int64_t to,
                           size_t max_gaps, sbuf *out);

#endif
