/* outbox — see outbox.h. */
#include "outbox.h"

#include <string.h>

static outbox_rec *outbox__at(const outbox *ob, size_t age)
{
    return &ob->recs[(ob->head + age) % ob->cap];
}

outbox_status outbox_init(outbox *ob, outbox_rec *storage, size_t cap)
{
    if (!ob || !storage || cap == 0)
        return OUTBOX_EINVAL;
    memset(ob, 0, sizeof *ob);
    ob->recs = storage;
    ob->cap = cap;
    return OUTBOX_OK;
}

outbox_status outbox_push(outbox *ob, uint32_t boot, uint64_t seq, uint64_t ts_ms,
                          const char *payload, size_t len, bool pending)
{
    if (!ob || !payload || len > OUTBOX_PAYLOAD_MAX)
        return OUTBOX_EINVAL;
    if (ob->count == ob->cap) {
        /* Drop the oldest: fresh vitals matter more than old ones. */
        outbox_rec *old = outbox__at(ob, 0);
        if (old->pending) {
            ob->dropped++;
            ob->pending--;
        } else {
            ob->evicted++;
        }
        ob->head = (ob->head + 1) % ob->cap;
        ob->count--;
        if (ob->scan > 0)
            ob->scan--;
    }
    outbox_rec *r = outbox__at(ob, ob->count);
    r->boot = boot;
    r->seq = seq;
    r->ts_ms = ts_ms;
    r->len = (uint16_t)len;
    r->pending = pending;
    memcpy(r->payload, payload, len);
    if (pending)
        ob->pending++;
    else if (ob->pending == 0)
        ob->scan = ob->count + 1; /* nothing pending up to and including it */
    ob->count++;
    return OUTBOX_OK;
}

const outbox_rec *outbox_peek_pending(outbox *ob)
{
    if (!ob || ob->pending == 0)
        return NULL;
    /* scan only moves forward, so draining a long backlog stays O(n). */
    while (ob->scan < ob->count) {
        outbox_rec *r = outbox__at(ob, ob->scan);
        if (r->pending)
            return r;
        ob->scan++;
    }
    return NULL; /* unreachable while pending > 0 */
}

outbox_status outbox_mark_sent(outbox *ob, const outbox_rec *rec)
{
    if (!ob || !rec || !rec->pending)
        return OUTBOX_EINVAL;
    if (rec < ob->recs || rec >= ob->recs + ob->cap)
        return OUTBOX_EINVAL;
    ((outbox_rec *)rec)->pending = false;
    ob->pending--;
    return OUTBOX_OK;
}

size_t outbox_pending(const outbox *ob)
{
    return ob ? ob->pending : 0;
}

size_t outbox_count(const outbox *ob)
{
    return ob ? ob->count : 0;
}

outbox_status outbox_lookup(const outbox *ob, uint32_t boot, uint64_t from, uint64_t to,
                            outbox_visit_fn fn, void *ctx, uint64_t *found, uint64_t *missing)
{
    if (!ob || from > to)
        return OUTBOX_EINVAL;
    uint64_t n = 0;
    bool go = true;
    for (size_t i = 0; i < ob->count; i++) {
        const outbox_rec *r = outbox__at(ob, i);
        if (r->boot != boot || r->seq < from || r->seq > to)
            continue;
        n++;
        if (go && fn)
            go = fn(ctx, r);
    }
    if (found)
        *found = n;
    if (missing) {
        /* to - from + 1 overflows only for the full 64-bit range. */
        uint64_t span = to - from;
        *missing = span == UINT64_MAX ? UINT64_MAX - n : span + 1 - n;
    }
    return OUTBOX_OK;
}
