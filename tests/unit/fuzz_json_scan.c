/* libFuzzer target for device/json_scan.c.
 *
 * The input is the whole document. Beyond "no crash, no out-of-bounds read"
 * (ASan), it checks the scanner's contract: the status is one the header
 * lists, a second scan gives the same answer (no hidden state), the member
 * count stays within capacity, and every span of an accepted document lies
 * inside the buffer, in document order, with text matching its type. It
 * also checks properties that must follow from the grammar: an accepted
 * document cut before its closing brace is refused, extra whitespace is
 * harmless, and a member that is an object is itself acceptable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "fuzz_check.h"


static bool fuzz__inside(const char *buf, size_t n, const json_scan_span *sp)
{
    return sp->p >= buf && sp->n <= n && (size_t)(sp->p - buf) <= n - sp->n;
}

static void fuzz__check_span(const char *buf, size_t n, const json_scan_span *sp)
{
    CHECK(fuzz__inside(buf, n, sp));
    const char *p = sp->p;
    switch (sp->type) {
    case JSON_SCAN_STR:
        /* the content between two quotes, no raw control byte in it */
        CHECK(p > buf && p[-1] == '"' && (size_t)(p - buf) + sp->n < n && p[sp->n] == '"');
        for (size_t i = 0; i < sp->n; i++)
            CHECK((unsigned char)p[i] >= 0x20);
        break;
    case JSON_SCAN_NUM:
        CHECK(sp->n > 0 && (p[0] == '-' || (p[0] >= '0' && p[0] <= '9')));
        CHECK(p[sp->n - 1] >= '0' && p[sp->n - 1] <= '9');
        break;
    case JSON_SCAN_TRUE:
        CHECK(sp->n == 4 && memcmp(p, "true", 4) == 0);
        break;
    case JSON_SCAN_FALSE:
        CHECK(sp->n == 5 && memcmp(p, "false", 5) == 0);
        break;
    case JSON_SCAN_NULL:
        CHECK(sp->n == 4 && memcmp(p, "null", 4) == 0);
        break;
    case JSON_SCAN_OBJ:
        CHECK(sp->n >= 2 && p[0] == '{' && p[sp->n - 1] == '}');
        break;
    case JSON_SCAN_ARR:
        CHECK(sp->n >= 2 && p[0] == '[' && p[sp->n - 1] == ']');
        break;
    default:
        CHECK(0);
    }
}

static bool fuzz__known(json_scan_status rc)
{
    return rc == JSON_SCAN_OK || rc == JSON_SCAN_ENOTOBJECT || rc == JSON_SCAN_ESYNTAX ||
           rc == JSON_SCAN_EDEPTH || rc == JSON_SCAN_EFIELDS || rc == JSON_SCAN_ETRAILING;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* A heap copy of exactly size bytes, so ASan sees any read past the end. */
    char *buf = malloc(size ? size : 1);
    CHECK(buf != NULL);
    memcpy(buf, data, size);

    json_scan_field f[JSON_SCAN_FIELDS], g[JSON_SCAN_FIELDS];
    size_t nf = 12345, ng = 12345;
    json_scan_status rc = json_scan_object(buf, size, f, JSON_SCAN_FIELDS, &nf);
    CHECK(fuzz__known(rc));
    CHECK(nf <= JSON_SCAN_FIELDS);
    CHECK(rc == JSON_SCAN_OK || nf == 0);

    /* deterministic: the same bytes give the same status and spans */
    CHECK(json_scan_object(buf, size, g, JSON_SCAN_FIELDS, &ng) == rc);
    CHECK(ng == nf);
    for (size_t i = 0; i < nf; i++) {
        CHECK(f[i].key.p == g[i].key.p && f[i].key.n == g[i].key.n);
        CHECK(f[i].val.p == g[i].val.p && f[i].val.n == g[i].val.n);
        CHECK(f[i].val.type == g[i].val.type);
    }

    /* a smaller capacity changes only whether the member count fits */
    size_t cap = nf / 2;
    size_t nh;
    json_scan_status rh = json_scan_object(buf, size, g, cap, &nh);
    if (rc == JSON_SCAN_OK)
        CHECK(nf <= cap ? rh == JSON_SCAN_OK : rh == JSON_SCAN_EFIELDS);

    if (rc == JSON_SCAN_OK) {
        const char *prev = buf;
        for (size_t i = 0; i < nf; i++) {
            CHECK(f[i].key.type == JSON_SCAN_STR);
            fuzz__check_span(buf, size, &f[i].key);
            fuzz__check_span(buf, size, &f[i].val);
            /* in document order, the key before its value, no overlap */
            CHECK(f[i].key.p >= prev);
            CHECK(f[i].val.p >= f[i].key.p + f[i].key.n + 1);
            prev = f[i].val.p + f[i].val.n;

            json_scan_span v;
            json_scan_status gr = json_scan_get(f, nf, "x", &v);
            CHECK(gr == JSON_SCAN_OK || gr == JSON_SCAN_EABSENT || gr == JSON_SCAN_EDUPLICATE);
            uint64_t u = 0;
            if (json_scan_uint(&f[i].val, 0, 9007199254740992.0, &u) == JSON_SCAN_OK)
                CHECK(f[i].val.type == JSON_SCAN_NUM && u <= 9007199254740992ull);

            /* a member object, scanned on its own, sits one level higher */
            if (f[i].val.type == JSON_SCAN_OBJ) {
                size_t ni;
                json_scan_status ri =
                    json_scan_object(f[i].val.p, f[i].val.n, g, JSON_SCAN_FIELDS, &ni);
                CHECK(ri == JSON_SCAN_OK || ri == JSON_SCAN_EFIELDS);
            }
        }

        /* cut just before the last closing brace: no longer a document */
        size_t last = size;
        while (last > 0 && buf[last - 1] != '}')
            last--;
        CHECK(last > 0);
        size_t nc;
        CHECK(json_scan_object(buf, last - 1, g, JSON_SCAN_FIELDS, &nc) != JSON_SCAN_OK);

        /* surrounding whitespace changes nothing */
        char *wide = malloc(size + 2);
        CHECK(wide != NULL);
        wide[0] = '\n';
        memcpy(wide + 1, buf, size);
        wide[size + 1] = ' ';
        size_t nw;
        CHECK(json_scan_object(wide, size + 2, g, JSON_SCAN_FIELDS, &nw) == JSON_SCAN_OK);
        CHECK(nw == nf);
        for (size_t i = 0; i < nf; i++)
            CHECK(g[i].val.p == wide + 1 + (f[i].val.p - buf) && g[i].val.n == f[i].val.n);
        free(wide);
    }
    free(buf);
    return 0;
}
