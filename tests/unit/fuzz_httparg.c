/* libFuzzer target for REST query integers (server/httparg.c).
 *
 * Input: 16 bytes of bounds (lo, hi as int64, little-endian) then the
 * argument text (NUL ends it). Invariants: httparg_int64 agrees with an
 * independent 128-bit reference parser of the strict grammar (sign, 1..19
 * digits, within [lo, hi]); a refused argument leaves *out alone; the
 * checked subtraction / addition agree with 128-bit arithmetic. Runs under
 * UBSan: any overflow inside traps. */
#include <stdint.h>
#include <string.h>

#include "httparg.h"
#include "fuzz_check.h"


static int ref_parse(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (lo > hi)
        return -1;
    int neg = *s == '-';
    const char *p = s + neg;
    size_t n = strlen(p);
    if (n == 0 || n > 19)
        return -1;
    __int128 v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (neg)
        v = -v;
    if (v < INT64_MIN || v > INT64_MAX || v < lo || v > hi)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 16)
        return 0;
    int64_t lo, hi;
    memcpy(&lo, data, 8);
    memcpy(&hi, data + 8, 8);
    char s[64];
    size_t n = size - 16 < sizeof s - 1 ? size - 16 : sizeof s - 1;
    memcpy(s, data + 16, n);
    s[n] = 0;
    /* Also the bounds the routes use: epoch ms / seqs. */
    const int64_t bounds[][2] = {{lo, hi}, {INT64_MIN, INT64_MAX}, {0, (int64_t)1 << 53}, {1, 10000}};
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
        int64_t got = 12345, want = 12345;
        int rg = httparg_int64(s, bounds[b][0], bounds[b][1], &got);
        int rw = ref_parse(s, bounds[b][0], bounds[b][1], &want);
        CHECK(rg == rw);
        CHECK(got == want);
        if (rg == 0)
            CHECK(got >= bounds[b][0] && got <= bounds[b][1]);
    }
    int64_t r = 7;
    __int128 d = (__int128)lo - hi, a = (__int128)lo + hi;
    int rs = httparg_sub(lo, hi, &r);
    CHECK(rs == ((d < INT64_MIN || d > INT64_MAX) ? -1 : 0));
    CHECK(rs != 0 ? r == 7 : r == (int64_t)d);
    r = 7;
    int ra = httparg_add(lo, hi, &r);
    CHECK(ra == ((a < INT64_MIN || a > INT64_MAX) ? -1 : 0));
    CHECK(ra != 0 ? r == 7 : r == (int64_t)a);
    return 0;
}
