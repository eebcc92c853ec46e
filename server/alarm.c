/* alarm — see alarm.h. Pure: no I/O, no clock, no threads. */
#include "alarm.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idtable.h"
#include "jsonin.h"
#include "jsonw.h"
#include "telemetry.h"

/* ---- the condition table: names, priorities, defaults, accepted ranges ---- */

enum { DIR_BOOL = 0, DIR_BELOW = -1, DIR_ABOVE = 1 };
enum { /* which settings members a condition has */
    F_LIMIT = 1, F_HIGH = 2, F_HYST = 4, F_ONSET = 8, F_CLEAR = 16, F_LATCH = 32,
};

typedef struct alarm__spec {
    const char *name;
    int physiological;
    alarm_priority prio; /* of the only / medium tier */
    int dir;
    unsigned fields;
    int may_disable;     /* 0: a safety alarm that stays on */
    alarm_cond_settings def;
    double lim_lo, lim_hi, limh_lo, limh_hi, hy_hi;
    int64_t onset_max_s, clear_lo_s, clear_max_s;
} alarm__spec;

#define S(x) ((int64_t)(x) * 1000)
static const alarm__spec alarm__specs[ALARM_COND_COUNT] = {
    [ALARM_SPO2_LOW] = {"spo2_low", 1, ALARM_PRIO_MEDIUM, DIR_BELOW,
                        F_LIMIT | F_HYST | F_ONSET | F_CLEAR | F_LATCH, 1,
                        {1, 0, 90, 0, 2, S(10), 0, S(5)}, 80, 98, 0, 0, 5, 120, 0, 300},
    [ALARM_SPO2_DESAT] = {"spo2_desat", 1, ALARM_PRIO_HIGH, DIR_BELOW,
                          F_LIMIT | F_HYST | F_ONSET | F_CLEAR, 0,
                          {1, 1, 85, 0, 2, S(5), 0, S(5)}, 70, 90, 0, 0, 5, 60, 0, 300},
    [ALARM_HR_HIGH] = {"hr_high", 1, ALARM_PRIO_MEDIUM, DIR_ABOVE,
                       F_LIMIT | F_HIGH | F_HYST | F_ONSET | F_CLEAR | F_LATCH, 1,
                       {1, 0, 120, 140, 5, S(10), S(5), S(5)}, 80, 200, 90, 250, 20, 120, 0, 300},
    [ALARM_HR_LOW] = {"hr_low", 1, ALARM_PRIO_MEDIUM, DIR_BELOW,
                      F_LIMIT | F_HIGH | F_HYST | F_ONSET | F_CLEAR | F_LATCH, 1,
                      {1, 0, 50, 40, 5, S(10), S(5), S(5)}, 30, 80, 25, 70, 20, 120, 0, 300},
    [ALARM_TEMP_HIGH] = {"temp_high", 1, ALARM_PRIO_LOW, DIR_ABOVE,
                         F_LIMIT | F_HYST | F_ONSET | F_CLEAR | F_LATCH, 1,
                         {1, 0, 37.5, 0, 0.3, S(30), 0, S(30)}, 34, 42, 0, 0, 2, 600, 0, 600},
    [ALARM_TEMP_LOW] = {"temp_low", 1, ALARM_PRIO_LOW, DIR_BELOW,
                        F_LIMIT | F_HYST | F_ONSET | F_CLEAR | F_LATCH, 1,
                        {1, 0, 32.0, 0, 0.3, S(30), 0, S(30)}, 25, 35, 0, 0, 2, 600, 0, 600},
    [ALARM_NEWS2] = {"news2", 1, ALARM_PRIO_MEDIUM, DIR_ABOVE,
                     F_LIMIT | F_HIGH | F_HYST | F_ONSET | F_CLEAR | F_LATCH, 1,
                     {1, 0, 5, 7, 0, S(10), S(10), S(10)}, 1, 7, 1, 7, 3, 300, 0, 600},
    [ALARM_OFFLINE] = {"offline", 0, ALARM_PRIO_MEDIUM, DIR_BOOL, F_ONSET | F_CLEAR | F_LATCH, 0,
                       {1, 0, 0, 0, 0, 0, 0, 0}, 0, 0, 0, 0, 0, 300, 0, 300},
    [ALARM_STALE] = {"stale", 0, ALARM_PRIO_MEDIUM, DIR_BOOL, F_LIMIT | F_LATCH, 1,
                     {1, 0, 3, 0, 0, 0, 0, 0}, 2, 20, 0, 0, 0, 0, 0, 0},
    [ALARM_NO_SIGNAL] = {"no_signal", 0, ALARM_PRIO_MEDIUM, DIR_BOOL,
                         F_ONSET | F_CLEAR | F_LATCH, 1,
                         {1, 0, 0, 0, 0, S(10), 0, S(5)}, 0, 0, 0, 0, 0, 120, 0, 120},
    [ALARM_BATTERY_LOW] = {"battery_low", 0, ALARM_PRIO_LOW, DIR_BELOW,
                           F_LIMIT | F_HYST | F_ONSET | F_CLEAR | F_LATCH, 1,
                           {1, 0, 15, 0, 5, S(10), 0, S(10)}, 5, 50, 0, 0, 20, 600, 0, 600},
    [ALARM_DATA_LOST] = {"data_lost", 0, ALARM_PRIO_LOW, DIR_BOOL, F_CLEAR | F_LATCH, 1,
                         {1, 0, 0, 0, 0, 0, 0, S(60)}, 0, 0, 0, 0, 0, 0, 10, 3600},
};
#define ESCALATION_DEFAULT_MS S(60)
#define ESCALATION_MIN_S 10
#define ESCALATION_MAX_S 600

static const char *const alarm__state_names[] = {"active", "latched", "acked", "cleared"};
static const char *const alarm__prio_names[] = {"low", "medium", "high"};
static const char *const alarm__event_names[] = {"raised", "escalated", "acknowledged",
                                                 "audio_paused", "cleared", "updated"};

const char *alarm_condition_name(alarm_condition c)
{
    return (unsigned)c < ALARM_COND_COUNT ? alarm__specs[c].name : "?";
}
int alarm_condition_from_name(const char *s, alarm_condition *out)
{
    for (int c = 0; s && c < ALARM_COND_COUNT; c++)
        if (!strcmp(s, alarm__specs[c].name)) {
            *out = (alarm_condition)c;
            return 0;
        }
    return -1;
}
const char *alarm_priority_name(alarm_priority p) { return (unsigned)p <= ALARM_PRIO_HIGH ? alarm__prio_names[p] : "?"; }
const char *alarm_state_name(alarm_state s) { return (unsigned)s <= ALARM_CLEARED ? alarm__state_names[s] : "?"; }
const char *alarm_event_name(alarm_event_kind k) { return (unsigned)k <= ALARM_EV_UPDATED ? alarm__event_names[k] : "?"; }
int alarm_state_from_name(const char *s, alarm_state *out)
{
    for (int i = 0; s && i <= ALARM_CLEARED; i++)
        if (!strcmp(s, alarm__state_names[i])) {
            *out = (alarm_state)i;
            return 0;
        }
    return -1;
}
int alarm_priority_from_name(const char *s, alarm_priority *out)
{
    for (int i = 0; s && i <= ALARM_PRIO_HIGH; i++)
        if (!strcmp(s, alarm__prio_names[i])) {
            *out = (alarm_priority)i;
            return 0;
        }
    return -1;
}
int alarm_is_physiological(alarm_condition c)
{
    return (unsigned)c < ALARM_COND_COUNT && alarm__specs[c].physiological;
}

/* ---- NEWS2 (RCP 2017), the parameters Vigil measures ---- */

int alarm_news2_spo2(double v)
{
    if (v <= 91) return 3;
    if (v <= 93) return 2;
    if (v <= 95) return 1;
    return 0;
}
int alarm_news2_pulse(double v)
{
    if (v <= 40) return 3;
    if (v <= 50) return 1;
    if (v <= 90) return 0;
    if (v <= 110) return 1;
    if (v <= 130) return 2;
    return 3;
}

size_t alarm_news2_json(const alarm_news2 *n, char *buf, size_t cap)
{
    jsonw w;
    jsonw_init(&w, buf, cap);
    JSONW_LIT(&w, "\"news2\":{");
    jsonw_int(&w, "score", n->score);
    JSONW_LIT(&w, ",\"partial\":true,\"measured\":[\"spo2\",\"pulse\"],\"not_measured\":"
                  "[\"respiration_rate\",\"blood_pressure\",\"consciousness\","
                  "\"supplemental_o2\",\"temperature\"]");
    if (n->spo2 >= 0 && n->pulse >= 0) {
        jsonw_int(&w, "spo2", n->spo2); /* jsonw_key adds the commas */
        jsonw_int(&w, "pulse", n->pulse);
    }
    JSONW_LIT(&w, "}");
    return jsonw_finish(&w);
}

size_t alarm_news2_append(const alarm_news2 *n, char *obj, size_t len, size_t cap,
                          size_t *member_off)
{
    if (!obj || len < 2 || len >= cap || obj[len - 1] != '}')
        return 0;
    /* "{}" takes the member without a comma; anything else after one. */
    size_t at = len - 1, comma = len > 2;
    if (at + comma >= cap)
        return 0;
    size_t k = alarm_news2_json(n, obj + at + comma, cap - at - comma);
    if (!k || at + comma + k + 2 > cap) {
        obj[len - 1] = '}';
        obj[len] = '\0';
        return 0;
    }
    if (comma)
        obj[at] = ',';
    obj[at + comma + k] = '}';
    obj[at + comma + k + 1] = '\0';
    if (member_off)
        *member_off = at + comma;
    return at + comma + k + 1;
}

/* ---- the engine ---- */

typedef struct alarm__det { /* one tier of one condition */
    int64_t pend, okp, since;
    uint8_t has_pend, has_okp, on;
} alarm__det;

typedef struct alarm__open {
    alarm_rec r;
    int64_t esc_base; /* wall ms the escalation clock started */
} alarm__open;

/* One condition of one device that is not idle: a tier on or pending, or an
 * open alarm. An idle condition (both tiers off, nothing pending, no alarm)
 * has no node: a device with no active condition keeps none, which is most
 * of a fleet most of the time (issue 13: ~1 KB per device when all twelve
 * conditions were inline). */
typedef struct alarm__cond {
    struct alarm__cond *next; /* the device's nodes, in condition order */
    alarm__open *open;        /* NULL: none */
    alarm__det det[2];        /* [0] the only / medium tier, [1] the high tier */
    uint8_t c;                /* alarm_condition */
} alarm__cond;

#define ALARM__NOPOS UINT32_MAX /* hpos: not in the timer heap */

typedef struct alarm__dev {
    alarm_settings *cfg;  /* NULL: the defaults */
    alarm__cond *conds;   /* owned; only conditions that are not idle */
    int64_t interval_ms;
    int64_t last_wall;    /* wall ms of the latest reading (stale) */
    int64_t boot, last_t;
    int64_t min_off;      /* seq mode: least (arrival - device time) this boot */
    int64_t lost_at, lost_total;
    alarm_news2 news2;
    uint32_t hpos;        /* index in the engine's timer heap, or ALARM__NOPOS */
    uint16_t mask;        /* bit c set: conds has a node for condition c */
    /* Flags as bits (were ints): the values are 0/1, tmode 1..3. */
    unsigned online : 1, have_reading : 1, have_t : 1, tmode : 2, have_off : 1;
    unsigned ppg_seen : 1; /* the device has sent SpO2 or pulse values */
    unsigned lost_on : 1, has_news2 : 1;
    char id[];            /* NUL-terminated, <= ALARM_ID_MAX: only its length is kept */
} alarm__dev;

/* The timer index: a binary min-heap with one entry per device that has
 * time-based work (offline/stale onset or clear, data_lost expiry,
 * escalation, audio-pause end), keyed on when it is due. The key is never
 * later than the device's real due time; it may be earlier (lazy: a reading
 * that moves stale later does not touch the heap), and a tick re-checks
 * every device it pops. Bounded: at most one entry per device, and the
 * array is grown when a device is created, so a push never fails. */
typedef struct alarm__due {
    int64_t due;
    alarm__dev *d;
} alarm__due;

#define ALARM__ASAP INT64_MIN /* due at the next tick, whatever its time */
#define ALARM__NEVER INT64_MAX

struct alarm_engine {
    idtable dev; /* alarm__dev * entries */
    size_t max_devices;
    alarm_settings defaults;
    uint64_t last_id;
    alarm_stripe_fn stripe_of;             /* NULL: one id sequence */
    uint64_t stripe_last[ALARM_ID_STRIPES]; /* with stripes: the last id of each */
    alarm__due *heap;                       /* nheap entries, cap capheap */
    size_t nheap, capheap;
    int64_t latest;     /* the latest time any call passed in: a tick before it walks every device */
    size_t last_visited; /* devices the last tick evaluated */
};

static const void *alarm__key(const void *entry) { return (*(alarm__dev *const *)entry)->id; }
static const idtable_type alarm__type = {
    .entry_size = sizeof(alarm__dev *),
    .key_of = alarm__key,
    .hash = idtable_hash_str,
    .equal = idtable_equal_str,
};

void alarm_settings_default(alarm_settings *s)
{
    memset(s, 0, sizeof *s);
    for (int c = 0; c < ALARM_COND_COUNT; c++)
        s->cond[c] = alarm__specs[c].def;
    s->escalation_ms = ESCALATION_DEFAULT_MS;
}

void alarm_events_clear(alarm_events *out)
{
    out->n = 0;
    out->truncated = 0;
}

alarm_engine *alarm_engine_new(size_t max_devices)
{
    /* Heap positions are uint32_t. */
    if (max_devices == 0 || max_devices >= ALARM__NOPOS)
        return NULL;
    alarm_engine *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    if (idtable_init(&e->dev, &alarm__type, max_devices < 1024 ? max_devices : 1024, max_devices) != IDTABLE_OK) {
        free(e);
        return NULL;
    }
    e->max_devices = max_devices;
    e->latest = INT64_MIN;
    alarm_settings_default(&e->defaults);
    return e;
}

static void alarm__dev_free(alarm__dev *d);

void alarm_engine_free(alarm_engine *e)
{
    if (!e)
        return;
    size_t it = 0;
    alarm__dev **pd;
    while ((pd = idtable_next(&e->dev, &it)))
        alarm__dev_free(*pd);
    idtable_free(&e->dev);
    free(e->heap);
    free(e);
}

void alarm_engine_stats(const alarm_engine *e, alarm_stats *out)
{
    out->devices = idtable_count(&e->dev);
    out->timed = e->nheap;
    out->last_tick_visited = e->last_visited;
}

/* ---- the timer heap ---- */

static void alarm__heap_set(alarm_engine *e, size_t i, alarm__due x)
{
    e->heap[i] = x;
    x.d->hpos = (uint32_t)i;
}

static void alarm__heap_up(alarm_engine *e, size_t i)
{
    alarm__due x = e->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (e->heap[p].due <= x.due)
            break;
        alarm__heap_set(e, i, e->heap[p]);
        i = p;
    }
    alarm__heap_set(e, i, x);
}

static void alarm__heap_down(alarm_engine *e, size_t i)
{
    alarm__due x = e->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        int64_t best = x.due;
        if (l < e->nheap && e->heap[l].due < best)
            best = e->heap[m = l].due;
        if (l + 1 < e->nheap && e->heap[l + 1].due < best)
            m = l + 1;
        if (m == i)
            break;
        alarm__heap_set(e, i, e->heap[m]);
        i = m;
    }
    alarm__heap_set(e, i, x);
}

/* Room is reserved when a device is created (alarm__get). */
static void alarm__heap_push(alarm_engine *e, alarm__dev *d, int64_t due)
{
    e->heap[e->nheap] = (alarm__due){due, d};
    alarm__heap_up(e, e->nheap++);
}

static void alarm__heap_remove(alarm_engine *e, alarm__dev *d)
{
    size_t i = d->hpos;
    if (i == ALARM__NOPOS)
        return;
    d->hpos = ALARM__NOPOS;
    if (i == --e->nheap)
        return;
    alarm__due x = e->heap[e->nheap];
    alarm__heap_set(e, i, x);
    alarm__heap_down(e, i);
    alarm__heap_up(e, x.d->hpos);
}

/* Grows the heap so that every device, one more included, has room. */
static alarm_err alarm__heap_reserve(alarm_engine *e, size_t n)
{
    if (n <= e->capheap)
        return ALARM_OK;
    size_t cap = e->capheap ? e->capheap * 2 : 64;
    if (cap > e->max_devices)
        cap = e->max_devices;
    if (cap < n)
        cap = n;
    alarm__due *h = realloc(e->heap, cap * sizeof *h);
    if (!h)
        return ALARM_ENOMEM;
    e->heap = h;
    e->capheap = cap;
    return ALARM_OK;
}

/* ---- per-condition nodes ---- */

static alarm__cond *alarm__cd(const alarm__dev *d, alarm_condition c)
{
    if (!(d->mask & (1u << c)))
        return NULL;
    alarm__cond *n = d->conds;
    while (n && n->c != c)
        n = n->next;
    return n;
}

/* The node of condition c, created idle if there is none; NULL: no memory. */
static alarm__cond *alarm__cd_get(alarm__dev *d, alarm_condition c)
{
    alarm__cond *n = alarm__cd(d, c);
    if (n)
        return n;
    alarm__cond **at = &d->conds;
    while (*at && (*at)->c < c)
        at = &(*at)->next;
    n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->c = (uint8_t)c;
    n->next = *at;
    *at = n;
    d->mask |= (uint16_t)(1u << c);
    return n;
}

static int alarm__det_idle(const alarm__det *t)
{
    return !t->on && !t->has_pend && !t->has_okp;
}

/* Frees condition c's node once it is idle again. */
static void alarm__cd_trim(alarm__dev *d, alarm_condition c)
{
    if (!(d->mask & (1u << c)))
        return;
    alarm__cond **at = &d->conds;
    while (*at && (*at)->c != c)
        at = &(*at)->next;
    alarm__cond *n = *at;
    if (!n || n->open || !alarm__det_idle(&n->det[0]) || !alarm__det_idle(&n->det[1]))
        return;
    *at = n->next;
    d->mask &= (uint16_t)~(1u << c);
    free(n);
}

static alarm__open *alarm__cur(const alarm__dev *d, alarm_condition c)
{
    const alarm__cond *n = alarm__cd(d, c);
    return n ? n->open : NULL;
}

/* ---- devices ---- */

static alarm__dev *alarm__find(const alarm_engine *e, const char *id)
{
    alarm__dev *const *pd = idtable_find(&e->dev, id);
    return pd ? *pd : NULL;
}

static alarm_err alarm__get(alarm_engine *e, const char *id, alarm__dev **out)
{
    if (!id || !*id || strlen(id) > ALARM_ID_MAX)
        return ALARM_EINVAL;
    alarm__dev *d = alarm__find(e, id);
    if (!d) {
        if (idtable_count(&e->dev) >= e->max_devices)
            return ALARM_EFULL;
        if (alarm__heap_reserve(e, idtable_count(&e->dev) + 1) != ALARM_OK)
            return ALARM_ENOMEM;
        size_t len = strlen(id);
        d = calloc(1, sizeof *d + len + 1);
        if (!d)
            return ALARM_ENOMEM;
        memcpy(d->id, id, len + 1);
        d->interval_ms = ALARM_DEFAULT_INTERVAL_MS;
        d->online = 1;
        d->hpos = ALARM__NOPOS;
        idtable_err ie = idtable_put(&e->dev, &d, NULL);
        if (ie != IDTABLE_OK) {
            free(d);
            return ie == IDTABLE_EFULL ? ALARM_EFULL : ALARM_ENOMEM;
        }
    }
    *out = d;
    return ALARM_OK;
}

static const alarm_settings *alarm__cfg(const alarm_engine *e, const alarm__dev *d)
{
    return d->cfg ? d->cfg : &e->defaults;
}

/* One tier's timers: returns with d->on updated. */
static void alarm__feed(alarm__det *d, int breach, int clearok, int64_t t, int64_t onset, int64_t clear)
{
    if (!d->on) {
        d->has_okp = 0;
        if (!breach) {
            d->has_pend = 0;
            return;
        }
        if (!d->has_pend) {
            d->has_pend = 1;
            d->pend = t;
        }
        if (t - d->pend >= onset) {
            d->on = 1;
            d->since = d->pend;
            d->has_pend = 0;
        }
    } else {
        d->has_pend = 0;
        if (!clearok) {
            d->has_okp = 0;
            return;
        }
        if (!d->has_okp) {
            d->has_okp = 1;
            d->okp = t;
        }
        if (t - d->okp >= clear) {
            d->on = 0;
            d->has_okp = 0;
        }
    }
}

/* An invalid or missing value: no evidence either way, so no pending onset
 * or clear may run across it; an alarm that is on stays on. */
static void alarm__invalidate(alarm__det *d)
{
    d->has_pend = 0;
    d->has_okp = 0;
}

static int alarm__room(alarm_events *out)
{
    if (out->n < ALARM_EVENTS_MAX)
        return 1;
    out->truncated = 1;
    return 0;
}

static void alarm__emit(alarm_events *out, alarm_event_kind k, const alarm__open *o, const char *user,
                        int64_t now)
{
    if (!alarm__room(out))
        return; /* callers check room first; this is the backstop */
    alarm_event *ev = &out->ev[out->n++];
    ev->kind = k;
    ev->at = now;
    ev->user[0] = 0;
    if (user)
        snprintf(ev->user, sizeof ev->user, "%s", user);
    ev->alarm = o->r;
}

static int alarm__latches(const alarm_settings *s, alarm_condition c, alarm_priority p)
{
    return p == ALARM_PRIO_HIGH || s->cond[c].latching;
}

/* The first id of stripe s after last, not before ms t: ids of stripe s
 * are those with id % 1000 in [s * W, s * W + W). */
static uint64_t alarm__next_striped(uint64_t last, uint64_t t, unsigned s)
{
    const uint64_t w = ALARM_ID_STRIPE_WIDTH, lo = (uint64_t)s * w;
    uint64_t id = t * 1000u + lo;
    if (id > last)
        return id;
    uint64_t n = last + 1, r = n % 1000u;
    if (r >= lo && r < lo + w)
        return n;
    return (n / 1000u + (r >= lo ? 1u : 0u)) * 1000u + lo;
}

static uint64_t alarm__next_id(alarm_engine *e, const char *device_id, int64_t now)
{
    if (e->stripe_of) {
        /* Several engines (one per vigild) each own the devices of some
         * stripes at a time: ids of different stripes never meet. */
        unsigned s = e->stripe_of(device_id) % ALARM_ID_STRIPES;
        uint64_t id = alarm__next_striped(e->stripe_last[s], now > 0 ? (uint64_t)now : 0, s);
        e->stripe_last[s] = id;
        if (id > e->last_id)
            e->last_id = id;
        return id;
    }
    /* ms x 1000 keeps ids growing across restarts without asking the store,
     * and below 2^53 (exact in JSON) until the year 2255. */
    uint64_t t = now > 0 ? (uint64_t)now * 1000u : 0;
    e->last_id = t > e->last_id ? t : e->last_id + 1;
    return e->last_id;
}

typedef struct alarm__obs { /* what the evaluation says about one condition */
    int on;
    alarm_priority prio;
    int has_value;
    double value, limit;
    int64_t at;          /* wall estimate of the change (start or end) */
} alarm__obs;

/* The condition's alarm follows obs. At most one event. Frees the
 * condition's node if it ends idle, so callers hold no node pointer across
 * it. */
static void alarm__apply(alarm_engine *e, alarm_events *out, alarm__dev *d, alarm_condition c,
                         const alarm__obs *ob, int replay, int64_t now)
{
    alarm__cond *n = alarm__cd(d, c);
    alarm__open *o = n ? n->open : NULL;
    if (!alarm__room(out))
        goto out;
    if (ob->on) {
        if (!o) {
            if (!n && !(n = alarm__cd_get(d, c)))
                return; /* tried again at the next evaluation */
            o = calloc(1, sizeof *o);
            if (!o)
                goto out; /* tried again at the next evaluation */
            o->r.alarm_id = alarm__next_id(e, d->id, now);
            memcpy(o->r.device_id, d->id, strlen(d->id) + 1);
            o->r.condition = c;
            o->r.priority = ob->prio;
            o->r.state = ALARM_ACTIVE;
            o->r.has_value = ob->has_value;
            o->r.value = ob->value;
            o->r.limit = ob->limit;
            o->r.started_at = ob->at;
            o->r.retrospective = replay;
            o->r.news2_score = c == ALARM_NEWS2 && d->has_news2 ? d->news2.score : 0;
            o->esc_base = now;
            n->open = o;
            alarm__emit(out, ALARM_EV_RAISED, o, NULL, now);
            return;
        }
        int changed = 0;
        if (o->r.state == ALARM_LATCHED) { /* the condition is back */
            o->r.state = ALARM_ACTIVE;
            o->r.cleared_at = 0;
            changed = 1;
        }
        if (ob->prio > o->r.priority) {
            o->r.priority = ob->prio;
            o->r.has_value = ob->has_value;
            o->r.value = ob->value;
            o->r.limit = ob->limit;
            if (c == ALARM_NEWS2 && d->has_news2)
                o->r.news2_score = d->news2.score;
            if (o->r.state == ALARM_ACKED) /* a worse condition needs a new acknowledgement */
                o->r.state = ALARM_ACTIVE;
            o->esc_base = now;
            changed = 1;
        }
        if (o->r.retrospective && !replay) { /* the episode reached live data */
            o->r.retrospective = 0;
            o->esc_base = now;
            changed = 1;
        }
        if (changed)
            alarm__emit(out, ALARM_EV_UPDATED, o, NULL, now);
        return;
    }
    if (!o || o->r.state == ALARM_LATCHED)
        goto out;
    o->r.cleared_at = ob->at;
    if (o->r.state == ALARM_ACTIVE && !o->r.retrospective &&
        alarm__latches(alarm__cfg(e, d), c, o->r.priority)) {
        o->r.state = ALARM_LATCHED;
        alarm__emit(out, ALARM_EV_UPDATED, o, NULL, now);
        return;
    }
    o->r.state = ALARM_CLEARED;
    alarm__emit(out, ALARM_EV_CLEARED, o, NULL, now);
    free(o);
    n->open = NULL;
out:
    alarm__cd_trim(d, c);
}

/* Whether a value breaches / is clear of one tier (lo: the only / medium
 * tier, hi: the high one, when the condition has it). */
static void alarm__judge(const alarm__dev *d, alarm_condition c, const alarm_cond_settings *cs, double v,
                         int br[2], int ok[2])
{
    const alarm__spec *sp = &alarm__specs[c];
    double l = cs->limit, h = cs->limit_high, y = cs->hysteresis;
    br[1] = ok[1] = 0;
    if (sp->dir == DIR_BELOW) {
        br[0] = v < l, ok[0] = v >= l + y;
        if (sp->fields & F_HIGH)
            br[1] = v < h, ok[1] = v >= h + y;
    } else if (c == ALARM_NEWS2) { /* v is the aggregate; "at least" */
        int three = d->news2.spo2 == 3 || d->news2.pulse == 3;
        br[0] = v >= l, ok[0] = v < l - y;
        br[1] = v >= h || three, ok[1] = v < h - y && !three;
    } else {
        br[0] = v > l, ok[0] = v <= l - y;
        if (sp->fields & F_HIGH)
            br[1] = v > h, ok[1] = v <= h - y;
    }
}

/* Feeds one value into a condition's tiers and applies the result. */
static void alarm__eval_value(alarm_engine *e, alarm_events *out, alarm__dev *d, alarm_condition c,
                              int valid, double v, int64_t t, int64_t off, int replay, int64_t now)
{
    const alarm__spec *sp = &alarm__specs[c];
    const alarm_cond_settings *cs = &alarm__cfg(e, d)->cond[c];
    alarm__cond *n = alarm__cd(d, c);
    int br[2] = {0, 0}, ok[2] = {0, 0};
    if (cs->enabled && valid)
        alarm__judge(d, c, cs, v, br, ok);
    if (!n) {
        /* Idle: it stays idle (and has no alarm to apply to) unless a
         * valid value breaches an enabled tier — the common case, kept
         * cheap and allocation-free. */
        if (!br[0] && !br[1])
            return;
        if (!(n = alarm__cd_get(d, c)))
            return; /* no memory: tried again at the next reading */
    }
    alarm__det *lo = &n->det[0], *hi = &n->det[1];
    if (!cs->enabled) {
        memset(n->det, 0, sizeof n->det);
    } else if (!valid) {
        alarm__invalidate(lo);
        alarm__invalidate(hi);
        alarm__cd_trim(d, c);
        return; /* never starts, extends or clears */
    } else {
        alarm__feed(lo, br[0], ok[0], t, cs->onset_ms, cs->clear_ms);
        if (sp->fields & F_HIGH)
            alarm__feed(hi, br[1], ok[1], t, cs->onset_high_ms, cs->clear_ms);
    }
    alarm__obs ob = {0};
    ob.on = lo->on || hi->on;
    ob.prio = hi->on ? ALARM_PRIO_HIGH : sp->prio;
    ob.has_value = valid;
    ob.value = v;
    ob.limit = hi->on ? cs->limit_high : cs->limit;
    ob.at = (ob.on ? (hi->on ? hi->since : lo->since) : t) + off;
    alarm__apply(e, out, d, c, &ob, replay, now);
}

/* A wall-clock (or device-time) boolean condition. */
static void alarm__eval_bool(alarm_engine *e, alarm_events *out, alarm__dev *d, alarm_condition c,
                             int breach, int64_t t, int64_t off, int replay, int64_t now)
{
    const alarm_cond_settings *cs = &alarm__cfg(e, d)->cond[c];
    alarm__cond *n = alarm__cd(d, c);
    if (!n) { /* idle: as in alarm__eval_value */
        if (!breach || !cs->enabled || !(n = alarm__cd_get(d, c)))
            return;
    }
    alarm__det *det = &n->det[0];
    if (!cs->enabled) {
        memset(det, 0, sizeof *det);
        breach = 0;
    } else {
        alarm__feed(det, breach, !breach, t, cs->onset_ms, cs->clear_ms);
    }
    alarm__obs ob = {.on = det->on, .prio = alarm__specs[c].prio, .at = (det->on ? det->since : t) + off};
    alarm__apply(e, out, d, c, &ob, replay, now);
}

/* Device-time conditions forget their timers when the timeline restarts. */
static void alarm__reset_timeline(alarm__dev *d)
{
    for (alarm__cond *n = d->conds, *next; n; n = next) {
        next = n->next;
        alarm_condition c = (alarm_condition)n->c;
        if (alarm__specs[c].physiological || c == ALARM_NO_SIGNAL || c == ALARM_BATTERY_LOW) {
            alarm__invalidate(&n->det[0]);
            alarm__invalidate(&n->det[1]);
            alarm__cd_trim(d, c);
        }
    }
    d->have_t = 0;
    d->have_off = 0;
}

static int64_t alarm__stale_after(const alarm_engine *e, const alarm__dev *d)
{
    return (int64_t)alarm__cfg(e, d)->cond[ALARM_STALE].limit * d->interval_ms;
}

static void alarm__eval_presence(alarm_engine *e, alarm_events *out, alarm__dev *d, int64_t now)
{
    alarm__eval_bool(e, out, d, ALARM_OFFLINE, !d->online, now, 0, 0, now);
    int stale = d->online && d->have_reading && now - d->last_wall >= alarm__stale_after(e, d);
    alarm__eval_bool(e, out, d, ALARM_STALE, stale, now, 0, 0, now);
}

/* ---- when a device next has time-based work ---- */

static int64_t alarm__min(int64_t a, int64_t b) { return a < b ? a : b; }

/* The earliest wall time at or after now at which alarm__eval_bool(c) at a
 * tick would change anything, if nothing else happens to the device: the
 * condition breaches from breach_at on (ALARM__NEVER: not while its inputs
 * stay as they are). ALARM__ASAP when the state is not the one the last
 * evaluation left (inputs changed since, or an alarm could not be applied
 * for want of room or memory); early is always safe, a tick re-checks. */
static int64_t alarm__bool_due(const alarm_engine *e, const alarm__dev *d, alarm_condition c,
                               int64_t breach_at, int64_t now)
{
    const alarm__cond *n = alarm__cd(d, c);
    const alarm_cond_settings *cs = &alarm__cfg(e, d)->cond[c];
    int breach = now >= breach_at;
    if (!n) /* idle, no alarm */
        return !cs->enabled ? ALARM__NEVER : breach ? ALARM__ASAP : breach_at;
    const alarm__det *t = &n->det[0];
    const alarm__open *o = n->open;
    if (!cs->enabled) /* the first tick zeroes the tiers and clears the alarm */
        return !alarm__det_idle(t) || (o && o->r.state != ALARM_LATCHED) ? ALARM__ASAP : ALARM__NEVER;
    if (!t->on) {
        if (o && o->r.state != ALARM_LATCHED)
            return ALARM__ASAP; /* to be cleared or latched */
        if (t->has_pend)
            return breach ? t->pend + cs->onset_ms : ALARM__ASAP;
        return breach ? ALARM__ASAP : breach_at;
    }
    if (!o || o->r.state == ALARM_LATCHED || o->r.priority < alarm__specs[c].prio || o->r.retrospective)
        return ALARM__ASAP; /* to be raised or updated */
    if (t->has_okp)
        return breach ? ALARM__ASAP : alarm__min(t->okp + cs->clear_ms, breach_at);
    return breach ? ALARM__NEVER : ALARM__ASAP;
}

/* The earliest time a tick could change anything on this device (see
 * alarm__tick_dev), assuming the times passed in do not go backwards
 * (alarm_tick walks every device when one does). */
static int64_t alarm__next_due(const alarm_engine *e, const alarm__dev *d, int64_t now)
{
    int64_t stale_at = d->online && d->have_reading ? d->last_wall + alarm__stale_after(e, d) : ALARM__NEVER;
    int64_t due = alarm__bool_due(e, d, ALARM_OFFLINE, d->online ? ALARM__NEVER : ALARM__ASAP, now);
    due = alarm__min(due, alarm__bool_due(e, d, ALARM_STALE, stale_at, now));
    if (d->lost_on)
        due = alarm__min(due, d->lost_at + alarm__cfg(e, d)->cond[ALARM_DATA_LOST].clear_ms);
    int64_t esc = alarm__cfg(e, d)->escalation_ms;
    for (const alarm__cond *n = d->conds; n; n = n->next) {
        const alarm__open *o = n->open;
        if (!o)
            continue;
        if (o->r.priority == ALARM_PRIO_HIGH && !o->r.retrospective &&
            (o->r.state == ALARM_ACTIVE || o->r.state == ALARM_LATCHED))
            due = alarm__min(due, o->esc_base + (int64_t)(o->r.escalation + 1) * esc);
        if (o->r.silenced_until)
            due = alarm__min(due, o->r.silenced_until);
    }
    return due;
}

/* After anything that changed d at time now: indexes d if its work is due
 * sooner than its heap entry says. Lazy the other way: a later due time
 * leaves the entry early, and the tick that pops it re-checks. */
static void alarm__schedule(alarm_engine *e, alarm__dev *d, int64_t due)
{
    if (due == ALARM__NEVER)
        return;
    if (d->hpos == ALARM__NOPOS) {
        alarm__heap_push(e, d, due);
    } else if (due < e->heap[d->hpos].due) {
        e->heap[d->hpos].due = due;
        alarm__heap_up(e, d->hpos);
    }
}

static void alarm__touch(alarm_engine *e, alarm__dev *d, int64_t now)
{
    if (now > e->latest)
        e->latest = now;
    alarm__schedule(e, d, alarm__next_due(e, d, now));
}

alarm_err alarm_on_reading(alarm_engine *e, alarm_events *out, const telemetry_reading *r, int64_t now)
{
    if (!e || !out || !r)
        return ALARM_EINVAL;
    out->has_news2 = 0;
    alarm__dev *d;
    alarm_err err = alarm__get(e, r->device_id, &d);
    if (err != ALARM_OK)
        return err;
    /* Any reading says the device is up and fresh. */
    d->online = 1;
    d->have_reading = 1;
    d->last_wall = now;
    alarm__eval_presence(e, out, d, now);

    /* The reading's own time. */
    int mode;
    int64_t t;
    if (r->present & TELEMETRY_HAS_TS) {
        mode = 1;
        t = r->ts_ms;
    } else if (r->present & TELEMETRY_HAS_SEQ) {
        mode = 2;
        t = r->seq * d->interval_ms;
    } else {
        mode = 3;
        t = now;
    }
    int64_t boot = (r->present & TELEMETRY_HAS_BOOT) ? r->boot : 0;
    if (d->have_t && (mode != (int)d->tmode || boot != d->boot))
        alarm__reset_timeline(d);
    if (d->have_t && t <= d->last_t) {
        alarm__touch(e, d, now);
        return ALARM_OK; /* out of order or a duplicate: already evaluated past it */
    }
    d->have_t = 1;
    d->tmode = (unsigned)mode & 3u;
    d->boot = boot;
    d->last_t = t;
    int64_t off = 0, lag = 0;
    if (mode == 2) {
        int64_t o = now - t;
        if (!d->have_off || o < d->min_off) {
            d->min_off = o;
            d->have_off = 1;
        }
        off = d->min_off;
        lag = o - d->min_off;
    } else if (mode == 1) {
        lag = now - t;
    }
    int replay = lag > ALARM_REPLAY_LAG_MS;

    uint32_t p = r->present;
    int spo2_ok = (p & TELEMETRY_HAS_SPO2) && (!(p & TELEMETRY_HAS_SPO2_VALID) || r->spo2_valid);
    int hr_ok = (p & TELEMETRY_HAS_HEART_RATE) && (!(p & TELEMETRY_HAS_HR_VALID) || r->hr_valid);
    int temp_ok = (p & TELEMETRY_HAS_OBJECT_TEMP) && (!(p & TELEMETRY_HAS_TEMP_VALID) || r->temp_valid);
    if (p & (TELEMETRY_HAS_SPO2 | TELEMETRY_HAS_HEART_RATE))
        d->ppg_seen = 1;

    alarm__eval_value(e, out, d, ALARM_SPO2_LOW, spo2_ok, r->spo2, t, off, replay, now);
    alarm__eval_value(e, out, d, ALARM_SPO2_DESAT, spo2_ok, r->spo2, t, off, replay, now);
    alarm__eval_value(e, out, d, ALARM_HR_HIGH, hr_ok, r->heart_rate, t, off, replay, now);
    alarm__eval_value(e, out, d, ALARM_HR_LOW, hr_ok, r->heart_rate, t, off, replay, now);
    alarm__eval_value(e, out, d, ALARM_TEMP_HIGH, temp_ok, r->object_temp, t, off, replay, now);
    alarm__eval_value(e, out, d, ALARM_TEMP_LOW, temp_ok, r->object_temp, t, off, replay, now);
    /* Partial NEWS2 only from a complete pair: a score of one parameter
     * would clear an alarm the missing one drives. */
    int both = spo2_ok && hr_ok;
    if (both) {
        d->news2.spo2 = alarm_news2_spo2(r->spo2);
        d->news2.pulse = alarm_news2_pulse(r->heart_rate);
        d->news2.score = d->news2.spo2 + d->news2.pulse;
        d->has_news2 = 1;
        out->has_news2 = 1;
        out->news2 = d->news2;
    }
    alarm__eval_value(e, out, d, ALARM_NEWS2, both, both ? d->news2.score : 0, t, off, replay, now);

    int bad_flag = ((p & TELEMETRY_HAS_SPO2_VALID) && !r->spo2_valid) ||
                   ((p & TELEMETRY_HAS_HR_VALID) && !r->hr_valid) ||
                   ((p & TELEMETRY_HAS_TEMP_VALID) && !r->temp_valid);
    int null_vitals = d->ppg_seen && !(p & (TELEMETRY_HAS_SPO2 | TELEMETRY_HAS_HEART_RATE));
    alarm__eval_bool(e, out, d, ALARM_NO_SIGNAL, bad_flag || null_vitals, t, off, replay, now);
    if (p & TELEMETRY_HAS_BATTERY)
        alarm__eval_value(e, out, d, ALARM_BATTERY_LOW, 1, r->battery, t, off, replay, now);
    alarm__touch(e, d, now);
    return ALARM_OK;
}

alarm_err alarm_on_status(alarm_engine *e, alarm_events *out, const char *id, int online,
                          int64_t interval_ms, int64_t now)
{
    if (!e || !out)
        return ALARM_EINVAL;
    alarm__dev *d;
    alarm_err err = alarm__get(e, id, &d);
    if (err != ALARM_OK)
        return err;
    if (interval_ms > 0 && interval_ms != d->interval_ms) {
        d->interval_ms = interval_ms;
        alarm__reset_timeline(d); /* seq x interval changes meaning */
    }
    d->online = online ? 1 : 0;
    if (online)
        d->last_wall = now; /* staleness counts from the announcement */
    alarm__eval_presence(e, out, d, now);
    alarm__touch(e, d, now);
    return ALARM_OK;
}

alarm_err alarm_on_lost(alarm_engine *e, alarm_events *out, const char *id, int64_t seqs, int64_t now)
{
    if (!e || !out || seqs <= 0)
        return ALARM_EINVAL;
    alarm__dev *d;
    alarm_err err = alarm__get(e, id, &d);
    if (err != ALARM_OK)
        return err;
    if (!alarm__cfg(e, d)->cond[ALARM_DATA_LOST].enabled)
        return ALARM_OK;
    d->lost_on = 1;
    d->lost_at = now;
    d->lost_total = seqs > INT64_MAX - d->lost_total ? INT64_MAX : d->lost_total + seqs;
    alarm__obs ob = {.on = 1, .prio = ALARM_PRIO_LOW, .has_value = 1, .value = (double)d->lost_total, .at = now};
    alarm__apply(e, out, d, ALARM_DATA_LOST, &ob, 0, now);
    alarm__open *o = alarm__cur(d, ALARM_DATA_LOST);
    if (o && o->r.value != ob.value)
        o->r.value = ob.value; /* the count grows quietly */
    alarm__touch(e, d, now);
    return ALARM_OK;
}

/* What a tick does to one device. 0 once the event list is full (the rest
 * of the device's work stays due). */
static int alarm__tick_dev(alarm_engine *e, alarm_events *out, alarm__dev *d, int64_t now)
{
    alarm__eval_presence(e, out, d, now);
    if (d->lost_on && now - d->lost_at >= alarm__cfg(e, d)->cond[ALARM_DATA_LOST].clear_ms &&
        alarm__room(out)) {
        d->lost_on = 0;
        d->lost_total = 0;
        alarm__obs ob = {.on = 0, .prio = ALARM_PRIO_LOW, .at = now};
        alarm__apply(e, out, d, ALARM_DATA_LOST, &ob, 0, now);
    }
    int64_t esc = alarm__cfg(e, d)->escalation_ms;
    for (alarm__cond *n = d->conds; n; n = n->next) {
        alarm__open *o = n->open;
        if (!o)
            continue;
        if (o->r.priority == ALARM_PRIO_HIGH && !o->r.retrospective &&
            (o->r.state == ALARM_ACTIVE || o->r.state == ALARM_LATCHED) &&
            now - o->esc_base >= (int64_t)(o->r.escalation + 1) * esc) {
            if (!alarm__room(out))
                return 0;
            o->r.escalation++;
            alarm__emit(out, ALARM_EV_ESCALATED, o, NULL, now);
        }
        if (o->r.silenced_until && now >= o->r.silenced_until) {
            if (!alarm__room(out))
                return 0;
            o->r.silenced_until = 0; /* sounds again */
            alarm__emit(out, ALARM_EV_UPDATED, o, NULL, now);
        }
    }
    return 1;
}

/* A tick at a time before one already passed in (the wall clock stepped
 * back): the heap's due times assume time does not go backwards, so every
 * device is evaluated, as before the index existed. */
static void alarm__tick_all(alarm_engine *e, alarm_events *out, int64_t now)
{
    size_t it = 0;
    alarm__dev **pd;
    while ((pd = idtable_next(&e->dev, &it))) {
        alarm__dev *d = *pd;
        if (!alarm__room(out))
            return;
        e->last_visited++;
        int more = alarm__tick_dev(e, out, d, now);
        alarm__schedule(e, d, alarm__next_due(e, d, now));
        if (!more)
            return;
    }
}

void alarm_tick(alarm_engine *e, alarm_events *out, int64_t now)
{
    if (!e || !out)
        return;
    e->last_visited = 0;
    if (now < e->latest) {
        alarm__tick_all(e, out, now);
        return;
    }
    e->latest = now;
    /* Every due entry is popped first, into the array's tail (as heapsort
     * does), so a device whose next work is due at once again (one
     * escalation per tick, as before) is not visited twice in one tick.
     * The tail is then visited earliest first; each visited device is
     * pushed back into the slot just read, or one before it. */
    size_t end = e->nheap;
    while (e->nheap && e->heap[0].due <= now) {
        alarm__due top = e->heap[0];
        top.d->hpos = ALARM__NOPOS;
        if (--e->nheap) {
            alarm__heap_set(e, 0, e->heap[e->nheap]);
            alarm__heap_down(e, 0);
        }
        e->heap[e->nheap] = top;
    }
    for (size_t i = e->nheap, j = end; i + 1 < j; i++, j--) { /* earliest first */
        alarm__due x = e->heap[i];
        e->heap[i] = e->heap[j - 1];
        e->heap[j - 1] = x;
    }
    size_t j = e->nheap;
    for (; j < end; j++) {
        alarm__dev *d = e->heap[j].d;
        if (!alarm__room(out))
            break;
        e->last_visited++;
        int more = alarm__tick_dev(e, out, d, now);
        alarm__schedule(e, d, alarm__next_due(e, d, now));
        if (!more) {
            j++;
            break;
        }
    }
    for (; j < end; j++) { /* the event list filled: still due at the next tick */
        alarm__due x = e->heap[j];
        alarm__heap_push(e, x.d, x.due);
    }
}

static alarm__open *alarm__by_id(const alarm_engine *e, uint64_t id, alarm__dev **dev)
{
    size_t it = 0;
    alarm__dev **pd;
    while ((pd = idtable_next(&e->dev, &it)))
        for (alarm__cond *n = (*pd)->conds; n; n = n->next)
            if (n->open && n->open->r.alarm_id == id) {
                if (dev)
                    *dev = *pd;
                return n->open;
            }
    return NULL;
}

alarm_err alarm_ack(alarm_engine *e, alarm_events *out, uint64_t id, const char *user, int64_t now)
{
    if (!e || !out)
        return ALARM_EINVAL;
    alarm__dev *d = NULL;
    alarm__open *o = alarm__by_id(e, id, &d);
    if (!o)
        return ALARM_ENOTFOUND;
    if (o->r.state == ALARM_ACKED)
        return ALARM_OK; /* already: nothing changes */
    snprintf(o->r.acked_by, sizeof o->r.acked_by, "%s", user ? user : "");
    o->r.acked_at = now;
    if (o->r.state == ALARM_LATCHED) { /* its condition is gone: done */
        alarm_condition c = o->r.condition;
        o->r.state = ALARM_CLEARED;
        alarm__emit(out, ALARM_EV_ACKNOWLEDGED, o, user, now);
        alarm__emit(out, ALARM_EV_CLEARED, o, user, now);
        alarm__cd(d, c)->open = NULL;
        free(o);
        alarm__cd_trim(d, c);
        alarm__touch(e, d, now);
        return ALARM_OK;
    }
    o->r.state = ALARM_ACKED;
    alarm__emit(out, ALARM_EV_ACKNOWLEDGED, o, user, now);
    alarm__touch(e, d, now);
    return ALARM_OK;
}

alarm_err alarm_silence(alarm_engine *e, alarm_events *out, uint64_t id, int64_t seconds,
                        const char *user, int64_t now)
{
    if (!e || !out || seconds < 0 || seconds > ALARM_PAUSE_MAX_S)
        return ALARM_EINVAL;
    alarm__dev *d = NULL;
    alarm__open *o = alarm__by_id(e, id, &d);
    if (!o)
        return ALARM_ENOTFOUND;
    o->r.silenced_until = now + (seconds ? seconds : ALARM_PAUSE_DEFAULT_S) * 1000;
    alarm__emit(out, ALARM_EV_AUDIO_PAUSED, o, user, now);
    alarm__touch(e, d, now);
    return ALARM_OK;
}

alarm_err alarm_set_settings(alarm_engine *e, const char *id, const alarm_settings *s)
{
    if (!e || !s)
        return ALARM_EINVAL;
    alarm__dev *d;
    alarm_err err = alarm__get(e, id, &d);
    if (err != ALARM_OK)
        return err;
    if (!d->cfg && !(d->cfg = malloc(sizeof *d->cfg)))
        return ALARM_ENOMEM;
    *d->cfg = *s;
    /* Limits, delays or enabled flags may have changed: the next tick
     * looks at the device again. */
    alarm__schedule(e, d, ALARM__ASAP);
    return ALARM_OK;
}

void alarm_get_settings(const alarm_engine *e, const char *id, alarm_settings *out)
{
    const alarm__dev *d = id ? alarm__find(e, id) : NULL;
    *out = d && d->cfg ? *d->cfg : e->defaults;
}

alarm_err alarm_restore(alarm_engine *e, const alarm_rec *a, int64_t now)
{
    if (!e || !a || (unsigned)a->condition >= ALARM_COND_COUNT || a->state == ALARM_CLEARED ||
        (unsigned)a->state > ALARM_CLEARED || (unsigned)a->priority > ALARM_PRIO_HIGH)
        return ALARM_EINVAL;
    alarm__dev *d;
    alarm_err err = alarm__get(e, a->device_id, &d);
    if (err != ALARM_OK)
        return err;
    alarm_condition c = a->condition;
    if (alarm__cur(d, c))
        return ALARM_EINVAL; /* one open alarm per condition */
    alarm__cond *n = alarm__cd_get(d, c);
    alarm__open *o = n ? calloc(1, sizeof *o) : NULL;
    if (!o) {
        alarm__cd_trim(d, c);
        return ALARM_ENOMEM;
    }
    o->r = *a;
    o->r.device_id[ALARM_ID_MAX] = 0;
    o->r.acked_by[ALARM_USER_MAX] = 0;
    o->esc_base = now - (int64_t)a->escalation * alarm__cfg(e, d)->escalation_ms;
    n->open = o;
    if (a->alarm_id > e->last_id)
        e->last_id = a->alarm_id;
    if (e->stripe_of) {
        unsigned s = e->stripe_of(a->device_id) % ALARM_ID_STRIPES;
        if (a->alarm_id > e->stripe_last[s])
            e->stripe_last[s] = a->alarm_id;
    }
    if (a->state != ALARM_LATCHED) { /* its condition still counts as present */
        int tier = a->priority == ALARM_PRIO_HIGH && (alarm__specs[c].fields & F_HIGH) ? 1 : 0;
        n->det[0].on = 1;
        n->det[tier].on = 1;
        n->det[0].since = n->det[tier].since = a->started_at;
        if (c == ALARM_OFFLINE)
            d->online = 0;
        if (c == ALARM_STALE) {
            d->have_reading = 1;
            d->last_wall = 0; /* stale until a reading comes */
        }
        if (c == ALARM_DATA_LOST) {
            d->lost_on = 1;
            d->lost_at = now;
            d->lost_total = a->has_value ? (int64_t)a->value : 1;
        }
    }
    if (now > e->latest)
        e->latest = now;
    alarm__schedule(e, d, ALARM__ASAP); /* the next tick takes it from here */
    return ALARM_OK;
}

void alarm_engine_stripe_ids(alarm_engine *e, alarm_stripe_fn stripe_of)
{
    e->stripe_of = stripe_of;
}

static void alarm__dev_free(alarm__dev *d)
{
    for (alarm__cond *n = d->conds, *next; n; n = next) {
        next = n->next;
        free(n->open);
        free(n);
    }
    free(d->cfg);
    free(d);
}

size_t alarm_forget_if(alarm_engine *e, alarm_pick pred, void *ctx)
{
    /* Picked first, removed after: no remove while iterating (idtable.h). */
    size_t n = 0, cap = idtable_count(&e->dev);
    alarm__dev **pick = cap ? malloc(cap * sizeof *pick) : NULL;
    if (cap && !pick)
        return 0;
    size_t it = 0;
    alarm__dev **pd;
    while ((pd = idtable_next(&e->dev, &it)) && n < cap)
        if (pred(ctx, (*pd)->id))
            pick[n++] = *pd;
    for (size_t i = 0; i < n; i++) {
        idtable_remove(&e->dev, pick[i]->id, NULL);
        alarm__heap_remove(e, pick[i]);
        alarm__dev_free(pick[i]);
    }
    free(pick);
    return n;
}

size_t alarm_list(const alarm_engine *e, const char *id, alarm_rec *out, size_t cap)
{
    size_t n = 0;
    if (id) {
        const alarm__dev *d = alarm__find(e, id);
        for (const alarm__cond *c = d ? d->conds : NULL; c; c = c->next)
            if (c->open && n++ < cap)
                out[n - 1] = c->open->r;
        return n;
    }
    size_t it = 0;
    alarm__dev **pd;
    while ((pd = idtable_next(&e->dev, &it)))
        for (const alarm__cond *c = (*pd)->conds; c; c = c->next)
            if (c->open && n++ < cap)
                out[n - 1] = c->open->r;
    return n;
}

int alarm_find(const alarm_engine *e, uint64_t id, alarm_rec *out)
{
    const alarm__open *o = alarm__by_id(e, id, NULL);
    if (!o)
        return -1;
    if (out)
        *out = o->r;
    return 0;
}

int alarm_news2_of(const alarm_engine *e, const char *id, alarm_news2 *out)
{
    const alarm__dev *d = alarm__find(e, id);
    if (!d || !d->has_news2)
        return -1;
    *out = d->news2;
    return 0;
}
/* ---- JSON ---- */

static void alarm__time(jsonw *w, const char *k, int64_t ms)
{
    jsonw_key(w, k);
    if (ms <= 0) {
        JSONW_LIT(w, "null");
        return;
    }
    char iso[40];
    telemetry_format_iso(ms, iso, sizeof iso);
    jsonw_str(w, iso);
}

size_t alarm_json(const alarm_rec *a, char *buf, size_t cap)
{
    jsonw w;
    jsonw_init(&w, buf, cap);
    JSONW_LIT(&w, "{");
    jsonw_int(&w, "alarm_id", (int64_t)a->alarm_id);
    jsonw_key(&w, "device_id");
    jsonw_str(&w, a->device_id);
    jsonw_key(&w, "condition");
    jsonw_str(&w, alarm_condition_name(a->condition));
    jsonw_key(&w, "kind");
    jsonw_str(&w, alarm_is_physiological(a->condition) ? "physiological" : "technical");
    jsonw_key(&w, "priority");
    jsonw_str(&w, alarm_priority_name(a->priority));
    jsonw_key(&w, "state");
    jsonw_str(&w, alarm_state_name(a->state));
    const alarm__spec *sp = (unsigned)a->condition < ALARM_COND_COUNT ? &alarm__specs[a->condition] : NULL;
    if (a->has_value) {
        jsonw_double(&w, "value", a->value);
    } else {
        jsonw_key(&w, "value");
        JSONW_LIT(&w, "null");
    }
    if (sp && (sp->fields & F_LIMIT) && a->condition != ALARM_STALE) {
        jsonw_double(&w, "limit", a->limit);
    } else {
        jsonw_key(&w, "limit");
        JSONW_LIT(&w, "null");
    }
    alarm__time(&w, "started_at", a->started_at);
    alarm__time(&w, "cleared_at", a->cleared_at);
    jsonw_key(&w, "acked_by");
    if (a->acked_at > 0)
        jsonw_str(&w, a->acked_by);
    else
        JSONW_LIT(&w, "null");
    alarm__time(&w, "acked_at", a->acked_at);
    alarm__time(&w, "silenced_until", a->silenced_until);
    jsonw_int(&w, "escalation", a->escalation);
    jsonw_bool(&w, "retrospective", a->retrospective);
    if (a->condition == ALARM_NEWS2) {
        char n2[256];
        alarm_news2 n = {.score = a->news2_score, .spo2 = -1, .pulse = -1}; /* only the aggregate is kept */
        size_t k = alarm_news2_json(&n, n2, sizeof n2);
        JSONW_LIT(&w, ",");
        jsonw_raw(&w, n2, k);
    }
    JSONW_LIT(&w, "}");
    return jsonw_finish(&w);
}

/* The shortest of %.15g / %.17g that reads back as v: settings round-trip
 * exactly (jsonw_double's %.10g would not). */
static void alarm__dbl(jsonw *w, const char *k, double v)
{
    char t[40];
    snprintf(t, sizeof t, "%.15g", v);
    if (strtod(t, NULL) != v)
        snprintf(t, sizeof t, "%.17g", v);
    jsonw_key(w, k);
    jsonw_raw(w, t, strlen(t));
}

size_t alarm_settings_json(const alarm_settings *s, char *buf, size_t cap)
{
    jsonw w;
    jsonw_init(&w, buf, cap);
    JSONW_LIT(&w, "{");
    jsonw_double(&w, "escalation_s", (double)s->escalation_ms / 1000.0);
    JSONW_LIT(&w, ",\"conditions\":{");
    for (int c = 0; c < ALARM_COND_COUNT; c++) {
        const alarm__spec *sp = &alarm__specs[c];
        const alarm_cond_settings *cs = &s->cond[c];
        if (c)
            JSONW_LIT(&w, ",");
        jsonw_str(&w, sp->name);
        JSONW_LIT(&w, ":{");
        w.first = 1;
        jsonw_bool(&w, "enabled", cs->enabled);
        if (sp->fields & F_LATCH)
            jsonw_bool(&w, "latching", cs->latching);
        if (sp->fields & F_LIMIT)
            alarm__dbl(&w, "limit", cs->limit);
        if (sp->fields & F_HIGH)
            alarm__dbl(&w, "limit_high", cs->limit_high);
        if (sp->fields & F_HYST)
            alarm__dbl(&w, "hysteresis", cs->hysteresis);
        if (sp->fields & F_ONSET)
            jsonw_double(&w, "onset_s", (double)cs->onset_ms / 1000.0);
        if ((sp->fields & F_ONSET) && (sp->fields & F_HIGH))
            jsonw_double(&w, "onset_high_s", (double)cs->onset_high_ms / 1000.0);
        if (sp->fields & F_CLEAR)
            jsonw_double(&w, "clear_s", (double)cs->clear_ms / 1000.0);
        JSONW_LIT(&w, "}");
    }
    JSONW_LIT(&w, "}}");
    return jsonw_finish(&w);
}

/* ---- settings bodies ---- */

static alarm_err alarm__fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static alarm_err alarm__fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ALARM_EINVAL;
}

/* A number member within [lo, hi]; seconds are stored as ms. */
static alarm_err alarm__num(const cJSON *it, const char *path, double lo, double hi, double *out,
                            char *err, size_t errlen)
{
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return alarm__fail(err, errlen, "%s: must be a number", path);
    double v = it->valuedouble;
    if (v < lo || v > hi)
        return alarm__fail(err, errlen, "%s: %g outside %g..%g", path, v, lo, hi);
    *out = v;
    return ALARM_OK;
}

static alarm_err alarm__secs(const cJSON *it, const char *path, double lo, double hi, int64_t *out,
                             char *err, size_t errlen)
{
    double v = 0; /* set by the number check below; 0 keeps -O3 quiet */
    alarm_err r = alarm__num(it, path, lo, hi, &v, err, errlen);
    if (r == ALARM_OK)
        *out = llround(v * 1000.0);
    return r;
}

static alarm_err alarm__cond_body(const cJSON *o, alarm_condition c, alarm_cond_settings *cs,
                                  char *err, size_t errlen)
{
    const alarm__spec *sp = &alarm__specs[c];
    char path[96];
    if (!cJSON_IsObject(o))
        return alarm__fail(err, errlen, "conditions.%s: must be an object", sp->name);
    for (const cJSON *it = o->child; it; it = it->next) {
        const char *k = it->string ? it->string : "";
        snprintf(path, sizeof path, "conditions.%s.%.40s", sp->name, k);
        alarm_err r = ALARM_OK;
        if (!strcmp(k, "enabled") || ((sp->fields & F_LATCH) && !strcmp(k, "latching"))) {
            if (!cJSON_IsBool(it))
                return alarm__fail(err, errlen, "%s: must be true or false", path);
            if (k[0] == 'e') {
                if (!cJSON_IsTrue(it) && !sp->may_disable)
                    return alarm__fail(err, errlen, "%s: a safety alarm cannot be disabled", path);
                cs->enabled = cJSON_IsTrue(it);
            } else {
                cs->latching = cJSON_IsTrue(it);
            }
        } else if ((sp->fields & F_LIMIT) && !strcmp(k, "limit")) {
            r = alarm__num(it, path, sp->lim_lo, sp->lim_hi, &cs->limit, err, errlen);
        } else if ((sp->fields & F_HIGH) && !strcmp(k, "limit_high")) {
            r = alarm__num(it, path, sp->limh_lo, sp->limh_hi, &cs->limit_high, err, errlen);
        } else if ((sp->fields & F_HYST) && !strcmp(k, "hysteresis")) {
            r = alarm__num(it, path, 0, sp->hy_hi, &cs->hysteresis, err, errlen);
        } else if ((sp->fields & F_ONSET) && !strcmp(k, "onset_s")) {
            r = alarm__secs(it, path, 0, (double)sp->onset_max_s, &cs->onset_ms, err, errlen);
        } else if ((sp->fields & F_ONSET) && (sp->fields & F_HIGH) && !strcmp(k, "onset_high_s")) {
            r = alarm__secs(it, path, 0, (double)sp->onset_max_s, &cs->onset_high_ms, err, errlen);
        } else if ((sp->fields & F_CLEAR) && !strcmp(k, "clear_s")) {
            r = alarm__secs(it, path, (double)sp->clear_lo_s, (double)sp->clear_max_s, &cs->clear_ms,
                            err, errlen);
        } else {
            return alarm__fail(err, errlen, "%s: unknown member", path);
        }
        if (r != ALARM_OK)
            return r;
    }
    return ALARM_OK;
}

/* Limits that only make sense together. */
static alarm_err alarm__coherent(const alarm_settings *s, char *err, size_t errlen)
{
    const alarm_cond_settings *q = s->cond;
    if (q[ALARM_SPO2_DESAT].limit >= q[ALARM_SPO2_LOW].limit)
        return alarm__fail(err, errlen, "conditions.spo2_desat.limit: %g must be below spo2_low.limit %g",
                           q[ALARM_SPO2_DESAT].limit, q[ALARM_SPO2_LOW].limit);
    if (q[ALARM_HR_HIGH].limit_high < q[ALARM_HR_HIGH].limit)
        return alarm__fail(err, errlen, "conditions.hr_high.limit_high: %g must be at least hr_high.limit %g",
                           q[ALARM_HR_HIGH].limit_high, q[ALARM_HR_HIGH].limit);
    if (q[ALARM_HR_LOW].limit_high > q[ALARM_HR_LOW].limit)
        return alarm__fail(err, errlen, "conditions.hr_low.limit_high: %g must be at most hr_low.limit %g",
                           q[ALARM_HR_LOW].limit_high, q[ALARM_HR_LOW].limit);
    if (q[ALARM_HR_LOW].limit >= q[ALARM_HR_HIGH].limit)
        return alarm__fail(err, errlen, "conditions.hr_low.limit: %g must be below hr_high.limit %g",
                           q[ALARM_HR_LOW].limit, q[ALARM_HR_HIGH].limit);
    if (q[ALARM_TEMP_LOW].limit >= q[ALARM_TEMP_HIGH].limit)
        return alarm__fail(err, errlen, "conditions.temp_low.limit: %g must be below temp_high.limit %g",
                           q[ALARM_TEMP_LOW].limit, q[ALARM_TEMP_HIGH].limit);
    if (q[ALARM_NEWS2].limit_high < q[ALARM_NEWS2].limit)
        return alarm__fail(err, errlen, "conditions.news2.limit_high: %g must be at least news2.limit %g",
                           q[ALARM_NEWS2].limit_high, q[ALARM_NEWS2].limit);
    return ALARM_OK;
}

alarm_err alarm_settings_parse(const char *body, size_t len, const alarm_settings *base,
                               alarm_settings *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!body || !base || !out || len == 0 || len > 8192)
        return alarm__fail(err, errlen, "body must be a JSON object of at most 8192 bytes");
    const char *end = NULL;
    cJSON *j = jsonin_parse(body, len, &end);
    if (!j)
        return alarm__fail(err, errlen, "body is not valid JSON");
    while (end && end < body + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    alarm_err r = ALARM_OK;
    alarm_settings s = *base;
    if (!cJSON_IsObject(j) || (end && end < body + len)) {
        r = alarm__fail(err, errlen, "body must be a single JSON object");
        goto out;
    }
    for (const cJSON *it = j->child; it && r == ALARM_OK; it = it->next) {
        const char *k = it->string ? it->string : "";
        if (!strcmp(k, "escalation_s")) {
            r = alarm__secs(it, "escalation_s", ESCALATION_MIN_S, ESCALATION_MAX_S, &s.escalation_ms, err, errlen);
        } else if (!strcmp(k, "conditions")) {
            if (!cJSON_IsObject(it)) {
                r = alarm__fail(err, errlen, "conditions: must be an object");
                break;
            }
            for (const cJSON *c = it->child; c && r == ALARM_OK; c = c->next) {
                alarm_condition cond;
                if (alarm_condition_from_name(c->string, &cond) != 0) {
                    r = alarm__fail(err, errlen, "conditions.%.40s: unknown condition", c->string ? c->string : "");
                    break;
                }
                r = alarm__cond_body(c, cond, &s.cond[cond], err, errlen);
            }
        } else {
            r = alarm__fail(err, errlen, "%.40s: unknown member", k);
        }
    }
    if (r == ALARM_OK)
        r = alarm__coherent(&s, err, errlen);
    if (r == ALARM_OK)
        *out = s;
out:
    cJSON_Delete(j);
    return r;
}

alarm_err alarm_silence_parse(const char *body, size_t len, int64_t *seconds)
{
    *seconds = ALARM_PAUSE_DEFAULT_S;
    if (!body || len == 0)
        return ALARM_OK;
    cJSON *j = jsonin_parse(body, len, NULL);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "seconds");
    int ok = cJSON_IsObject(j) && (!v || (cJSON_IsNumber(v) && v->valuedouble >= 1 &&
                                           v->valuedouble <= ALARM_PAUSE_MAX_S &&
                                           v->valuedouble == floor(v->valuedouble)));
    if (ok && v)
        *seconds = (int64_t)v->valuedouble;
    cJSON_Delete(j);
    return ok ? ALARM_OK : ALARM_EINVAL;
}
