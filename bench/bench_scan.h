/* bench_scan — finds the (device, seq) of every reading in the JSON text a
 * receiver gets, without a full parse: the receivers must stay cheaper than
 * the subjects they measure. Pure: no I/O, no clock, no threads, no
 * allocation (unit-tested in tests/unit/test_bench_scan.c).
 *
 * Accepted shapes: one object or an array of them, compact or spaced — the
 * relay's raw payload, vigild's {"type":...,"data":{...}} and its batched
 * arrays, the baselines' enriched objects. A "type" key starts a new
 * message; a reading is a "device_id" (its value's digits: "B000042" is 42)
 * and a "seq" (a number) seen after it, in either order. Text that begins
 * {"type":"snapshot" is not a delivery and is skipped whole.
 *
 * It looks only for the three keys (memmem over the text, one pass per
 * key) instead of walking every quoted string: on vigild's ~440 B messages
 * there are ~60 quotes per message, and a call per quote cost most of a
 * core at 100 clients (docs/BENCHMARKS.md, "what bounds 100 clients"). A
 * key is the quoted name followed by ':' or a space; a string value cannot
 * match (its inner quotes would be escaped).
 *
 * Ownership: nothing kept; emit is called synchronously, in text order, on
 * the caller's thread. */
#ifndef VIGIL_BENCH_SCAN_H
#define VIGIL_BENCH_SCAN_H

#include <stddef.h>

/* Called for each reading found. */
typedef void (*bench_scan_emit)(void *ctx, long dev, long seq);

/* Scans n bytes at p. dev_known >= 0: the device is known already (an MQTT
 * topic) and "device_id" keys are ignored. Returns the readings found. */
size_t bench_scan_json(const char *p, size_t n, long dev_known, bench_scan_emit emit, void *ctx);

/* The first number in [*pp, end) after any ' ', ':', '"' and an id's
 * prefix letters; -1 if a '"', ',' or '}' (or the end) comes first. *pp is
 * left after what was read. */
long bench_scan_num(const char **pp, const char *end);

#endif
