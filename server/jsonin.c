/* jsonin — see jsonin.h. */
#include "jsonin.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

/* How many of the 8 bytes of w (in memory order) come before the first one
 * that needs a look: below 0x20 (NUL, control), above 0x7F (UTF-8), '"' or
 * '\\' (string state); 8 if none. The others are fine in and out of strings
 * and change nothing, so the byte loop below skips straight to that byte
 * (most of a reading is such bytes, issue 13). The classic "has a byte less
 * than n" / "has a zero byte" tests: they may flag a byte above a flagged
 * one, never the lowest flagged one wrongly. Little-endian only: elsewhere
 * the answer is 0 and the byte loop does it all. */
static size_t jsonin__plain_run(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t w;
    memcpy(&w, p, sizeof w);
    uint64_t q = w ^ (ones * (uint64_t)'"'), bs = w ^ (ones * (uint64_t)'\\');
    uint64_t hits = (w | ((w - ones * 0x20u) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & high;
    return hits ? (size_t)__builtin_ctzll(hits) / 8 : 8;
#else
    (void)p;
    return 0;
#endif
}

static int jsonin__hex4(const unsigned char *p)
{
    for (int k = 0; k < 4; k++)
        if (!((p[k] >= '0' && p[k] <= '9') || ((p[k] | 0x20) >= 'a' && (p[k] | 0x20) <= 'f')))
            return 0;
    return 1;
}

int jsonin_text_ok(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    int in_string = 0;
    size_t i = 0;
    while (i < len) {
        size_t run;
        while (len - i >= 8 && (run = jsonin__plain_run(p + i)) > 0) {
            i += run;
            if (run < 8)
                break;
        }
        if (i == len)
            break;
        unsigned char c = p[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            /* cJSON takes raw control bytes inside strings, and any byte
             * <= 0x20 as whitespace; JSON allows neither. */
            if (c < 0x20 && (in_string || (c != '\t' && c != '\n' && c != '\r')))
                return 0;
            if (c == '"') {
                in_string = !in_string;
            } else if (c == '\\' && in_string) {
                if (i + 1 >= len)
                    return 0;
                /* cJSON decodes a \u whose four digits are not all hex
                 * as U+0000 (parse_hex4 answers 0) and takes the rest: so
                 * "\u00zz" would be a NUL too. */
                if (p[i + 1] == 'u' && (len - i < 6 || !jsonin__hex4(p + i + 2) ||
                                        memcmp(p + i + 2, "0000", 4) == 0))
                    return 0;
                i++; /* the escaped character cannot end the string */
                if (p[i] == 0)
                    return 0;
            }
            i++;
            continue;
        }
        /* Strict UTF-8: no overlongs, no surrogates, nothing past U+10FFFF. */
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            unsigned char cc = p[i + k];
            if ((cc & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

cJSON *jsonin_parse(const char *text, size_t len, const char **end)
{
    if (end != NULL)
        *end = NULL;
    if (text == NULL || len == 0 || !jsonin_text_ok(text, len))
        return NULL;
    return cJSON_ParseWithLengthOpts(text, len, end, 0);
}
