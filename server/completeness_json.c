/* completeness_json — see completeness_json.h. */
#include "completeness_json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ivset.h"

#define SEQ_MAX ((int64_t)1 << 53) /* protocol bound for seq and boot */

static double completeness_json__ratio(uint64_t received, uint64_t expected)
{
    return expected ? (double)received / (double)expected : 1.0;
}

void completeness_summary_json(const completeness *c, const char *id, sbuf *o)
{
    completeness_counts x;
    if (!c || completeness_counts_get(c, id, &x) != 0) {
        sbuf_adds(o, "null");
        return;
    }
    sbuf_addf(o,
              "{\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ",\"refilled\":%" PRIu64
              ",\"lost\":%" PRIu64 ",\"pending\":%" PRIu64 ",\"ratio\":%.6f}",
              x.expected, x.received, x.refilled, x.lost, x.pending,
              completeness_json__ratio(x.received, x.expected));
}

static int completeness_json__cmp_boot(const void *a, const void *b)
{
    int64_t x = (*(const completeness_boot_view *const *)a)->boot;
    int64_t y = (*(const completeness_boot_view *const *)b)->boot;
    return x < y ? -1 : x > y;
}

int completeness_device_json(const completeness *c, const char *id, int64_t boot, int64_t from,
                             int64_t to, size_t max_gaps, sbuf *o)
{
    /* The view holds 64 boots: heap, not the web thread's stack. */
    completeness_device_view *d = malloc(sizeof *d);
    if (!d)
        return -1;
    int rc = completeness_device_view_get(c, id, d) == 0
                 ? completeness_view_json(d, boot, from, to, max_gaps, o)
                 : -1;
    free(d);
    return rc;
}

int completeness_view_json(const completeness_device_view *d, int64_t boot, int64_t from, int64_t to,
                           size_t max_gaps, sbuf *o)
{
    const completeness_boot_view *list[COMPLETENESS_VIEW_BOOTS];
    size_t n = 0;
    for (size_t k = 0; k < d->nboots; k++)
        if (boot < 0 || d->boots[k].boot == boot)
            list[n++] = &d->boots[k];
    qsort(list, n, sizeof *list, completeness_json__cmp_boot);
    uint64_t expected = 0, received = 0, refilled = 0, lost = 0;
    int whole = boot < 0 && from <= 0 && to >= SEQ_MAX;
    if (whole) {
        expected = d->retired.expected;
        received = d->retired.received;
        refilled = d->retired.refilled;
        lost = d->retired.lost;
    }
    for (size_t k = 0; k < n; k++) {
        const completeness_boot_view *b = list[k];
        int64_t lo = b->base > from ? b->base : from, hi = b->hi < to ? b->hi : to;
        if (hi >= lo) {
            expected += (uint64_t)(hi - lo + 1);
            received += ivset_count(b->recv, lo, hi);
            lost += ivset_count(b->lost, lo, hi);
        }
        refilled += b->refilled;
    }
    sbuf_adds(o, "{\"device_id\":");
    sbuf_add_json_str(o, d->id);
    if (boot >= 0)
        sbuf_addf(o, ",\"boot\":%" PRId64, boot);
    else
        sbuf_adds(o, ",\"boot\":null");
    uint64_t pending = expected > received + lost ? expected - received - lost : 0;
    sbuf_addf(o,
              ",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"expected\":%" PRIu64
              ",\"received\":%" PRIu64 ",\"refilled\":%" PRIu64 ",\"lost\":%" PRIu64
              ",\"pending\":%" PRIu64 ",\"ratio\":%.6f,\"current_boot\":",
              from, to, expected, received, refilled, lost, pending,
              completeness_json__ratio(received, expected));
    if (d->current >= 0)
        sbuf_addf(o, "%" PRId64, d->current);
    else
        sbuf_adds(o, "null");
    sbuf_adds(o, ",\"boots\":[");
    for (size_t k = 0; k < n; k++)
        sbuf_addf(o, "%s{\"boot\":%" PRId64 ",\"first_seq\":%" PRId64 ",\"last_seq\":%" PRId64 "}",
                  k ? "," : "", list[k]->boot, list[k]->base, list[k]->hi);
    sbuf_adds(o, "],\"gaps\":[");
    size_t ng = 0;
    int truncated = 0;
    for (size_t k = 0; k < n && !truncated; k++) {
        const completeness_boot_view *b = list[k];
        int64_t x = b->base > from ? b->base : from, end = b->hi < to ? b->hi : to;
        size_t guard = (size_t)b->recv->n + b->lost->n + 2;
        while (x <= end && guard--) {
            const ivset_iv *r = ivset_find(b->recv, x);
            if (r) {
                x = r->hi + 1;
                continue;
            }
            int64_t glo, ghi;
            const char *state;
            const ivset_iv *l = ivset_find(b->lost, x);
            if (l) {
                glo = x;
                ghi = l->hi < end ? l->hi : end;
                state = "lost";
            } else if (completeness_boot_next_pending(b, x, end, &glo, &ghi)) {
                state = "pending";
            } else {
                break;
            }
            if (ng == max_gaps) {
                truncated = 1;
                break;
            }
            sbuf_addf(o, "%s{\"boot\":%" PRId64 ",\"from_seq\":%" PRId64 ",\"to_seq\":%" PRId64
                         ",\"state\":\"%s\"}",
                      ng ? "," : "", b->boot, glo, ghi, state);
            ng++;
            x = ghi + 1;
        }
    }
    sbuf_addf(o, "],\"gaps_truncated\":%s,\"untracked\":%" PRIu64 "}", truncated ? "true" : "false",
              d->untracked);
    return 0;
}
