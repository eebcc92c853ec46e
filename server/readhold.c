/* readhold — see readhold.h. */
#include "readhold.h"

void readhold_init(readhold *h, int cfg_us)
{
    *h = (readhold){.cfg_us = cfg_us < 0 ? READHOLD_AUTO : cfg_us};
}

/* The rate is judged per whole window: a window's count × 1000 / its length
 * against the two thresholds. A pass reports its time, so a window is closed
 * by the first pass after it ended (at light load that may be long after: the
 * count then covers the whole quiet span, which only lowers the rate). */
static void readhold__count(readhold *h, int64_t now_ms, unsigned packets)
{
    if (h->window_ms == 0 || now_ms < h->window_ms) {
        h->window_ms = now_ms;
        h->counted = 0;
    }
    h->counted += packets;
    int64_t span = now_ms - h->window_ms;
    if (span < READHOLD_WINDOW_MS)
        return;
    uint64_t per_s = h->counted * 1000u / (uint64_t)span;
    if (!h->engaged && per_s >= READHOLD_AUTO_ON_PER_S)
        h->engaged = 1;
    else if (h->engaged && per_s < READHOLD_AUTO_OFF_PER_S)
        h->engaged = 0;
    h->window_ms = now_ms;
    h->counted = 0;
}

int readhold_after_pass(readhold *h, int64_t now_ms, unsigned packets, int backlog)
{
    if (h->cfg_us == READHOLD_AUTO)
        readhold__count(h, now_ms, packets);
    if (packets == 0 || backlog)
        return 0;
    if (h->cfg_us == READHOLD_AUTO)
        return h->engaged ? READHOLD_AUTO_US : 0;
    return h->cfg_us > 0 ? h->cfg_us : 0;
}

int readhold_batching(const readhold *h)
{
    return h->cfg_us == READHOLD_AUTO ? h->engaged : h->cfg_us > 0;
}
