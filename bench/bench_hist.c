/* bench_hist — see bench_hist.h. */
#include "bench_hist.h"

#include <math.h>

int bench_hist_bucket(uint64_t us)
{
    if (us < 32)
        return (int)us;
    int msb = 63 - __builtin_clzll(us);
    int shift = msb - 5;
    int idx = (shift + 1) * 32 + (int)((us >> shift) - 32);
    return idx < BENCH_HIST_BUCKETS ? idx : BENCH_HIST_BUCKETS - 1;
}

double bench_hist_value(int idx)
{
    if (idx < 32)
        return idx;
    int shift = idx / 32 - 1;
    double lo = (double)((uint64_t)(idx % 32 + 32) << shift);
    return lo + (double)(1ull << shift) / 2;
}

double bench_hist_pct(const bench_hist *h, double p)
{
    uint64_t tot = 0;
    for (int i = 0; i < BENCH_HIST_BUCKETS; i++)
        tot += h->b[i];
    if (!tot)
        return -1;
    uint64_t want = (uint64_t)ceil(p * (double)tot);
    if (want < 1)
        want = 1;
    uint64_t acc = 0;
    for (int i = 0; i < BENCH_HIST_BUCKETS; i++) {
        acc += h->b[i];
        if (acc >= want)
            return bench_hist_value(i);
    }
    return bench_hist_value(BENCH_HIST_BUCKETS - 1);
}

void bench_hist_add(bench_hist *into, const bench_hist *from)
{
    for (int i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
}
