/* bench_scan — see bench_scan.h. */
#include "bench_scan.h"

#include <string.h>

long bench_scan_num(const char **pp, const char *end)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == ':' || *p == '"'))
        p++;
    while (p < end && (*p < '0' || *p > '9') && *p != '"' && *p != ',' && *p != '}')
        p++; /* the id's prefix letters */
    if (p >= end || *p < '0' || *p > '9') {
        *pp = p;
        return -1;
    }
    long v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    *pp = p;
    return v;
}

/* The next place in [p, end) where key (quotes included) is used as a key,
 * or NULL. It hunts key[r], a byte of the key rare in these texts ('y' of
 * "type", 'v' of "device_id", 'q' of "seq"), with memchr over long spans,
 * and checks the rest around each hit. */
static const char *bench_scan__next(const char *p, const char *end, const char *key, size_t klen, size_t r)
{
    for (const char *s = p + r; s < end;) {
        const char *c = memchr(s, key[r], (size_t)(end - s));
        if (!c)
            return NULL;
        const char *q = c - r;
        if ((size_t)(end - q) > klen && !memcmp(q, key, klen) && (q[klen] == ':' || q[klen] == ' '))
            return q;
        s = c + 1;
    }
    return NULL;
}

#define BENCH_SCAN__TYPE "\"type\"", sizeof "\"type\"" - 1, 2
#define BENCH_SCAN__DEV "\"device_id\"", sizeof "\"device_id\"" - 1, 3
#define BENCH_SCAN__SEQ "\"seq\"", sizeof "\"seq\"" - 1, 3

size_t bench_scan_json(const char *p, size_t n, long dev_known, bench_scan_emit emit, void *ctx)
{
    static const char snap[] = "{\"type\":\"snapshot\"";
    if (n >= sizeof snap - 1 && !memcmp(p, snap, sizeof snap - 1))
        return 0;
    const char *end = p + n;
    /* The next use of each key; each list is walked once, in text order. */
    const char *nt = bench_scan__next(p, end, BENCH_SCAN__TYPE);
    const char *nd = dev_known < 0 ? bench_scan__next(p, end, BENCH_SCAN__DEV) : NULL;
    const char *ns = bench_scan__next(p, end, BENCH_SCAN__SEQ);
    long dev = dev_known, seq = -1;
    size_t found = 0;
    while (nt || nd || ns) {
        const char *m = nt;
        if (nd && (!m || nd < m))
            m = nd;
        if (ns && (!m || ns < m))
            m = ns;
        const char *q;
        if (m == nt) {
            dev = dev_known;
            seq = -1;
            q = nt + sizeof "\"type\"" - 1;
            nt = bench_scan__next(q, end, BENCH_SCAN__TYPE);
        } else if (m == ns) {
            q = ns + sizeof "\"seq\"" - 1;
            seq = bench_scan_num(&q, end);
            ns = bench_scan__next(q, end, BENCH_SCAN__SEQ);
        } else {
            q = nd + sizeof "\"device_id\"" - 1;
            dev = bench_scan_num(&q, end);
            nd = bench_scan__next(q, end, BENCH_SCAN__DEV);
        }
        if (dev >= 0 && seq >= 0) {
            emit(ctx, dev, seq);
            found++;
            dev = dev_known;
            seq = -1;
        }
    }
    return found;
}
