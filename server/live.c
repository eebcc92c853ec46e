/* live — see live.h. */
#include "live.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "idtable.h"
#include "sbuf.h"
#include "store.h"
#include "vthread.h"

#define LIVE_INITIAL 1024 /* devices before the table first grows */

struct live {
    idtable dev;                     /* live_device * entries, keyed by id */
    vigil_annotator ann;
    const thread_owner *owner;
};

#define LIVE_ASSERT_OWNER(l) \
    do { if ((l)->owner) THREAD_ASSERT_OWNER((l)->owner); } while (0)

static const void *live__key(const void *entry) { return (*(live_device *const *)entry)->id; }

static const idtable_type live__type = {
    .entry_size = sizeof(live_device *),
    .key_of = live__key,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};

live *live_create(const thread_owner *owner)
{
    live *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->owner = owner;
    if (idtable_init(&l->dev, &live__type, LIVE_INITIAL, 0) != IDTABLE_OK) {
        free(l);
        return NULL;
    }
    return l;
}

void live_destroy(live *l)
{
    if (!l)
        return;
    LIVE_ASSERT_OWNER(l);
    size_t it = 0;
    live_device **e;
    while ((e = idtable_next(&l->dev, &it))) {
        hub_msg_unref((*e)->last);
        hub_msg_unref((*e)->scored);
        for (int i = 0; i < LIVE_ALARMS_MAX; i++)
            hub_msg_unref((*e)->alarms[i]);
        free(*e);
    }
    idtable_free(&l->dev);
    free(l);
}

void live_set_annotator(live *l, vigil_annotator a) { l->ann = a; }

static live_device *live__find(const live *l, const char *id)
{
    live_device **e = idtable_find(&l->dev, id);
    return e ? *e : NULL;
}

static live_device *live__get(live *l, const char *id, int64_t now_ms)
{
    live_device *d = live__find(l, id);
    if (d)
        return d;
    d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    snprintf(d->id, sizeof d->id, "%s", id);
    d->first_seen_ms = now_ms;
    d->online = -1;
    d->boot = -1;
    if (idtable_put(&l->dev, &d, NULL) != IDTABLE_OK) {
        free(d);
        return NULL;
    }
    return d;
}

const live_device *live_find(const live *l, const char *id)
{
    LIVE_ASSERT_OWNER(l);
    return live__find(l, id);
}

size_t live_count(const live *l)
{
    LIVE_ASSERT_OWNER(l);
    return idtable_count(&l->dev);
}

int live_load_device(live *l, const struct store_device *s)
{
    LIVE_ASSERT_OWNER(l);
    live_device *d = live__get(l, s->id, s->first_seen_ms);
    if (!d)
        return -1;
    d->last_seen_ms = s->last_seen_ms;
    d->online = s->online;
    d->status_ms = s->status_ms;
    snprintf(d->fw, sizeof d->fw, "%s", s->fw);
    d->interval_ms = s->interval_ms;
    d->boot = s->boot;
    if (s->has_last) {
        char json[2048];
        size_t len = telemetry_reading_json(&s->last, json, sizeof json);
        if (len) {
            hub_msg *m = hub_msg_new(HUB_SENSOR_DATA, s->id, json, len);
            if (!m)
                return -1;
            hub_msg_unref(d->last);
            d->last = m;
        }
    }
    return 0;
}

/* The device's copy of one alarm follows the message. */
static int live__apply_alarm(live_device *d, hub_msg *m)
{
    int slot = -1, empty = -1;
    for (int i = 0; i < LIVE_ALARMS_MAX; i++) {
        if (d->alarms[i] && d->alarms[i]->alarm_id == m->alarm_id)
            slot = i;
        else if (!d->alarms[i] && empty < 0)
            empty = i;
    }
    if (!m->alarm_open) {
        if (slot >= 0) {
            hub_msg_unref(d->alarms[slot]);
            d->alarms[slot] = NULL;
        }
        return 0;
    }
    if (slot < 0)
        slot = empty;
    if (slot < 0)
        return -1; /* more than one per condition: cannot happen (alarm.h) */
    hub_msg_unref(d->alarms[slot]);
    d->alarms[slot] = hub_msg_ref(m);
    return 0;
}

int live_apply(live *l, hub_msg *m)
{
    LIVE_ASSERT_OWNER(l);
    live_device *d = live__get(l, m->device_id, m->received_ms);
    if (!d)
        return -1;
    if (m->kind == HUB_ALARM)
        return live__apply_alarm(d, m);
    if (m->received_ms > d->last_seen_ms)
        d->last_seen_ms = m->received_ms;
    if (m->kind == HUB_SENSOR_DATA) {
        hub_msg_unref(d->last);
        d->last = hub_msg_ref(m);
        if (m->news2_len) {
            hub_msg_unref(d->scored);
            d->scored = hub_msg_ref(m);
        }
    } else if (m->kind == HUB_DEVICE_STATUS) {
        const telemetry_status *s = &m->status;
        if (d->online != s->online)
            d->status_ms = m->received_ms;
        d->online = s->online;
        if (s->present & TELEMETRY_STATUS_HAS_FW)
            snprintf(d->fw, sizeof d->fw, "%s", s->fw);
        if (s->present & TELEMETRY_STATUS_HAS_INTERVAL)
            d->interval_ms = s->interval_ms;
        if (s->present & TELEMETRY_STATUS_HAS_BOOT)
            d->boot = s->boot;
    }
    return 0;
}

/* ---- DEVICE JSON ---- */

static void live__iso_or_null(sbuf *o, int64_t ms)
{
    if (ms <= 0) {
        sbuf_adds(o, "null");
        return;
    }
    char iso[32];
    size_t n = telemetry_format_iso(ms, iso, sizeof iso);
    sbuf_adds(o, "\"");
    sbuf_add(o, iso, n);
    sbuf_adds(o, "\"");
}

/* Highest priority first, then oldest: how a central station lists them. */
static int live__alarm_cmp(const void *a, const void *b)
{
    const hub_msg *x = *(const hub_msg *const *)a, *y = *(const hub_msg *const *)b;
    if (x->alarm_priority != y->alarm_priority)
        return x->alarm_priority > y->alarm_priority ? -1 : 1;
    if (x->alarm_started != y->alarm_started)
        return x->alarm_started < y->alarm_started ? -1 : 1;
    return x->alarm_id < y->alarm_id ? -1 : x->alarm_id > y->alarm_id;
}

static size_t live__sorted_alarms(const live_device *d, const hub_msg **out)
{
    size_t n = 0;
    for (int i = 0; i < LIVE_ALARMS_MAX; i++)
        if (d->alarms[i])
            out[n++] = d->alarms[i];
    qsort(out, n, sizeof *out, live__alarm_cmp);
    return n;
}

static void live__device_json(const live *l, const live_device *d, sbuf *o)
{
    sbuf_adds(o, "{\"device_id\":");
    sbuf_add_json_str(o, d->id);
    sbuf_addf(o, ",\"status\":\"%s\",\"first_seen\":",
              d->online == 1 ? "online" : d->online == 0 ? "offline" : "unknown");
    live__iso_or_null(o, d->first_seen_ms);
    sbuf_adds(o, ",\"last_seen\":");
    live__iso_or_null(o, d->last_seen_ms);
    sbuf_adds(o, ",\"status_at\":");
    live__iso_or_null(o, d->status_ms);
    sbuf_adds(o, ",\"fw\":");
    if (d->fw[0])
        sbuf_add_json_str(o, d->fw);
    else
        sbuf_adds(o, "null");
    if (d->interval_ms > 0)
        sbuf_addf(o, ",\"interval_ms\":%" PRId64, d->interval_ms);
    else
        sbuf_adds(o, ",\"interval_ms\":null");
    if (d->boot >= 0)
        sbuf_addf(o, ",\"boot\":%" PRId64, d->boot);
    else
        sbuf_adds(o, ",\"boot\":null");
    sbuf_adds(o, ",\"last\":");
    if (d->last)
        sbuf_add(o, d->last->text + d->last->data_off, d->last->data_len);
    else
        sbuf_adds(o, "null");
    sbuf_adds(o, ",\"completeness\":");
    if (l->ann.annotate)
        l->ann.annotate(l->ann.ctx, d->id, o);
    else
        sbuf_adds(o, "null");
    sbuf_adds(o, ",\"alarms\":[");
    const hub_msg *al[LIVE_ALARMS_MAX];
    size_t na = live__sorted_alarms(d, al);
    for (size_t i = 0; i < na; i++) {
        if (i)
            sbuf_adds(o, ",");
        sbuf_add(o, al[i]->text + al[i]->data_off, al[i]->data_len);
    }
    sbuf_adds(o, "]");
    /* Last, after the members clients already know (PROTOCOL.md: added, never moved). */
    if (d->scored) {
        sbuf_adds(o, ",");
        sbuf_add(o, d->scored->text + d->scored->news2_off, d->scored->news2_len);
    } else {
        sbuf_adds(o, ",\"news2\":null");
    }
    sbuf_adds(o, "}");
}

static int live__cmp(const void *a, const void *b)
{
    return strcmp((*(live_device *const *)a)->id, (*(live_device *const *)b)->id);
}

void live_devices_array(live *l, int (*want)(void *ctx, const char *id), void *ctx, sbuf *o)
{
    LIVE_ASSERT_OWNER(l);
    size_t cnt = idtable_count(&l->dev);
    live_device **list = malloc((cnt ? cnt : 1) * sizeof *list);
    if (!list) {
        o->failed = 1;
        return;
    }
    size_t n = 0, it = 0;
    live_device **e;
    while ((e = idtable_next(&l->dev, &it)))
        if (!want || want(ctx, (*e)->id))
            list[n++] = *e;
    qsort(list, n, sizeof *list, live__cmp);
    sbuf_adds(o, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_adds(o, ",");
        live__device_json(l, list[i], o);
    }
    sbuf_adds(o, "]");
    free(list);
}

void live_devices_json(live *l, sbuf *out)
{
    sbuf_adds(out, "{\"devices\":");
    live_devices_array(l, NULL, NULL, out);
    sbuf_adds(out, "}");
}

int live_device_json(live *l, const char *id, sbuf *out)
{
    LIVE_ASSERT_OWNER(l);
    live_device *d = live__find(l, id);
    if (!d)
        return -1;
    live__device_json(l, d, out);
    return 0;
}

void live_alarms_json(live *l, sbuf *o)
{
    LIVE_ASSERT_OWNER(l);
    size_t cap = 64, n = 0, it = 0;
    const hub_msg **all = malloc(cap * sizeof *all);
    live_device **e;
    while (all && (e = idtable_next(&l->dev, &it))) {
        for (int i = 0; i < LIVE_ALARMS_MAX; i++) {
            if (!(*e)->alarms[i])
                continue;
            if (n == cap) {
                const hub_msg **g = realloc(all, 2 * cap * sizeof *all);
                if (!g) {
                    free(all);
                    all = NULL;
                    break;
                }
                all = g;
                cap *= 2;
            }
            all[n++] = (*e)->alarms[i];
        }
    }
    if (!all) {
        o->failed = 1;
        return;
    }
    qsort(all, n, sizeof *all, live__alarm_cmp);
    sbuf_adds(o, "{\"alarms\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_adds(o, ",");
        sbuf_add(o, all[i]->text + all[i]->data_off, all[i]->data_len);
    }
    sbuf_adds(o, "]}");
    free(all);
}

int live_alarm_device(live *l, uint64_t alarm_id, char *id)
{
    LIVE_ASSERT_OWNER(l);
    size_t it = 0;
    live_device **e;
    while ((e = idtable_next(&l->dev, &it)))
        for (int i = 0; i < LIVE_ALARMS_MAX; i++)
            if ((*e)->alarms[i] && (*e)->alarms[i]->alarm_id == alarm_id) {
                snprintf(id, TELEMETRY_ID_MAX + 1, "%s", (*e)->id);
                return 0;
            }
    return -1;
}
