/* json_escape — see json_escape.h. */
#include "json_escape.h"

#include <string.h>

void json_escape(const char *s, json_escape_sink put, void *ctx)
{
    if (s == NULL)
        return;
    static const char hex[] = "0123456789abcdef";
    /* Runs of plain bytes go out in one piece: the hot path is an id or a
     * version string with nothing to escape. */
    const char *run = s;
    for (;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (s > run)
            put(ctx, run, (size_t)(s - run));
        if (c == '\0')
            return;
        char esc[6];
        size_t n;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        put(ctx, esc, n);
        run = s + 1;
    }
}
