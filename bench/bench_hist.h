/* bench_hist — the latency histogram: 32 sub-buckets per power of two of
 * microseconds, so exact below 32 µs and within ~3% above, over the whole
 * uint64_t range in fixed memory (no allocation, O(1) to record).
 *
 * Pure: no I/O, no clock, no threads. Ownership: the caller owns every
 * histogram. Threading: none of its own; the receiver thread records into
 * its histograms with relaxed atomic increments (bench_atomic.h) and the
 * main thread reads them after that thread has stopped. */
#ifndef VIGIL_BENCH_HIST_H
#define VIGIL_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_BUCKETS 2048

typedef struct bench_hist {
    uint64_t b[BENCH_HIST_BUCKETS];
} bench_hist;

/* The bucket a latency of us microseconds falls in. */
int bench_hist_bucket(uint64_t us);
/* The midpoint of bucket idx, in µs (what a percentile reports). */
double bench_hist_value(int idx);
/* The p-quantile (0 < p ≤ 1) in µs, or -1 when the histogram is empty. */
double bench_hist_pct(const bench_hist *h, double p);
/* into += from, bucket by bucket. */
void bench_hist_add(bench_hist *into, const bench_hist *from);

#endif
