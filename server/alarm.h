/* alarm — the clinical and technical alarm engine of vigild. Pure logic:
 * no I/O, no threads, no clock reads (every time is an argument), so it can
 * be unit-tested and fuzzed (tests/unit/test_alarm.c, fuzz_alarm_settings.c).
 * NOT a certified medical device: a ranking and notification aid
 * (docs/ALARMS.md, which documents every default below).
 *
 * Inputs: each accepted reading (values, validity flags, device time), each
 * status change, each range completeness gave up as lost, a periodic tick,
 * and operator actions (acknowledge, audio pause). Output: alarm events
 * appended to a caller-provided, bounded alarm_events list — the engine
 * decides, the caller acts (stores, publishes, fans out), as with
 * completeness_actions.
 *
 * Conditions (one open alarm per device and condition at a time):
 *   physiological  spo2_low, spo2_desat, hr_high, hr_low, temp_high,
 *                  temp_low (skin bands, advisory), news2 (partial: SpO2 and
 *                  pulse only — respiration, blood pressure, consciousness,
 *                  O2 and core temperature are not measured)
 *   technical      offline, stale, no_signal, battery_low, data_lost
 * Each has a limit, an onset delay and a clear hysteresis + clear delay.
 * Physiological conditions are timed on the readings' own time ("ts", or
 * seq x announced interval without a synced clock); an invalid or null value
 * never starts, extends or clears one (pending onset / clear timers restart)
 * and raises no_signal instead. offline, stale, data_lost, escalation and
 * audio pause run on the wall clock passed in.
 *
 * States: active (condition present), latched (condition gone, not yet
 * acknowledged: always for high priority, per condition for medium/low),
 * acked (condition present, acknowledged), cleared (done; the alarm leaves
 * the engine). An episode raised and cleared while every reading was
 * replayed history (arrived more than ALARM_REPLAY_LAG_MS after its device
 * time) is retrospective: recorded, never latched, never escalated.
 *
 * Ownership: the engine owns its device table (an idtable of pointers,
 * bounded by max_devices: past it a new device answers ALARM_EFULL), its
 * timer heap (one entry per device at most, room reserved as devices are
 * created) and its alarms; every struct handed out is a copy owned by the
 * caller. Per device it keeps ~100 B while no condition is active; a
 * condition's timers and open alarm are allocated while it is active, and
 * settings only when they differ from the defaults.
 * Threads: none inside. One owner thread (vigild: the ingest thread). */
#ifndef VIGIL_ALARM_H
#define VIGIL_ALARM_H

#include <stddef.h>
#include <stdint.h>

typedef struct telemetry_reading telemetry_reading;
typedef struct alarm_engine alarm_engine;

#define ALARM_ID_MAX 64   /* device id length, as telemetry's */
#define ALARM_USER_MAX 64 /* acked_by: a user name, truncated to this */
#define ALARM_REPLAY_LAG_MS 10000
#define ALARM_PAUSE_DEFAULT_S 120
#define ALARM_PAUSE_MAX_S 600
#define ALARM_DEFAULT_INTERVAL_MS 1000 /* when a device announced none */
#define ALARM_JSON_MAX 1024            /* one ALARM object always fits */
#define ALARM_SETTINGS_JSON_MAX 4096   /* one settings object always fits */

typedef enum alarm_err {
    ALARM_OK = 0,
    ALARM_EINVAL = -1,    /* bad argument / body refused (message says why) */
    ALARM_EFULL = -2,     /* device table at max_devices */
    ALARM_ENOMEM = -3,
    ALARM_ENOTFOUND = -4, /* no open alarm with that id */
} alarm_err;

typedef enum alarm_condition {
    ALARM_SPO2_LOW = 0,
    ALARM_SPO2_DESAT,
    ALARM_HR_HIGH,
    ALARM_HR_LOW,
    ALARM_TEMP_HIGH,
    ALARM_TEMP_LOW,
    ALARM_NEWS2,
    ALARM_OFFLINE,
    ALARM_STALE,
    ALARM_NO_SIGNAL,
    ALARM_BATTERY_LOW,
    ALARM_DATA_LOST,
    ALARM_COND_COUNT
} alarm_condition;

typedef enum alarm_priority { ALARM_PRIO_LOW = 0, ALARM_PRIO_MEDIUM, ALARM_PRIO_HIGH } alarm_priority;
typedef enum alarm_state { ALARM_ACTIVE = 0, ALARM_LATCHED, ALARM_ACKED, ALARM_CLEARED } alarm_state;
typedef enum alarm_event_kind {
    ALARM_EV_RAISED = 0,
    ALARM_EV_ESCALATED,
    ALARM_EV_ACKNOWLEDGED,
    ALARM_EV_AUDIO_PAUSED,
    ALARM_EV_CLEARED,
    ALARM_EV_UPDATED, /* state, priority, retrospective or pause end changed */
} alarm_event_kind;

const char *alarm_condition_name(alarm_condition c); /* "spo2_low", ... */
int alarm_condition_from_name(const char *s, alarm_condition *out); /* 0 or -1 */
const char *alarm_priority_name(alarm_priority p);
const char *alarm_state_name(alarm_state s);
const char *alarm_event_name(alarm_event_kind k);
int alarm_state_from_name(const char *s, alarm_state *out);
int alarm_priority_from_name(const char *s, alarm_priority *out);
int alarm_is_physiological(alarm_condition c);

/* One alarm, as the API shows it. Times are epoch ms, 0 = none. */
typedef struct alarm_rec {
    uint64_t alarm_id;
    char device_id[ALARM_ID_MAX + 1];
    alarm_condition condition;
    alarm_priority priority;
    alarm_state state;
    int has_value;
    double value, limit; /* the value that raised it / the limit it crossed */
    int64_t started_at, cleared_at, acked_at, silenced_until;
    char acked_by[ALARM_USER_MAX + 1];
    uint32_t escalation; /* escalations so far */
    int retrospective;
    int news2_score;     /* condition news2 only */
} alarm_rec;

/* ALARM JSON (docs/PROTOCOL.md) into buf; news2 alarms carry
 * "news2":{"score","partial":true,"measured":[...]}. Returns the length, or
 * 0 if buf is too small (ALARM_JSON_MAX always fits). */
size_t alarm_json(const alarm_rec *a, char *buf, size_t cap);

/* ---- settings ---- */

typedef struct alarm_cond_settings {
    int enabled;
    int latching;      /* medium/low only: high priority always latches */
    double limit;      /* medium (or the only) tier */
    double limit_high; /* hr_high, hr_low, news2: the high-priority tier */
    double hysteresis;
    int64_t onset_ms, onset_high_ms, clear_ms;
} alarm_cond_settings;

typedef struct alarm_settings {
    alarm_cond_settings cond[ALARM_COND_COUNT];
    int64_t escalation_ms; /* high priority not acknowledged: escalate every */
} alarm_settings;

void alarm_settings_default(alarm_settings *s);
/* A settings body (PUT /api/devices/{id}/alarm-settings): any subset of
 * {"escalation_s":N,"conditions":{"spo2_low":{"enabled","latching","limit",
 * "limit_high","hysteresis","onset_s","onset_high_s","clear_s"},...}} applied
 * over *base. Every value is range-checked and unknown members are refused;
 * nothing is clamped. On ALARM_EINVAL err names the field
 * ("conditions.spo2_low.limit: 40 outside 80..98") and *out is untouched. */
alarm_err alarm_settings_parse(const char *body, size_t len, const alarm_settings *base,
                               alarm_settings *out, char *err, size_t errlen);
/* The full settings object (the same shape); 0 if buf is too small. */
size_t alarm_settings_json(const alarm_settings *s, char *buf, size_t cap);

/* ---- events ---- */

#define ALARM_EVENTS_MAX 64 /* more than one reading, status or ack can make */

typedef struct alarm_event {
    alarm_event_kind kind;
    int64_t at;                      /* wall ms */
    char user[ALARM_USER_MAX + 1];   /* ack / pause: who; "" otherwise */
    alarm_rec alarm;                 /* the alarm after the change */
} alarm_event;

/* Bounded: a reading, status, lost range, ack or pause never makes more
 * than ALARM_EVENTS_MAX events, so an empty list never fills. A tick stops
 * changing anything once the list is full (truncated = 1): the rest happen
 * at the next tick, so no change is ever made without its event. */
typedef struct alarm_news2 {
    int score;          /* aggregate of the measured parameters */
    int spo2, pulse;    /* sub-scores; -1 when not known */
} alarm_news2;

typedef struct alarm_events {
    alarm_event ev[ALARM_EVENTS_MAX];
    size_t n;
    int truncated;
    /* alarm_on_reading: the partial NEWS2 of that very reading, when it was
     * scored (valid SpO2 and pulse, not out of order); has_news2 0
     * otherwise. The caller shows it with the reading (docs/PROTOCOL.md,
     * READING "news2"). Every other call leaves it alone. */
    int has_news2;
    alarm_news2 news2;
} alarm_events;

void alarm_events_clear(alarm_events *out);

/* ---- the engine (owner thread) ---- */

alarm_engine *alarm_engine_new(size_t max_devices); /* NULL if 0, >= 2^32 - 1 or no memory */
void alarm_engine_free(alarm_engine *e);            /* NULL-safe */

/* An accepted reading; now_ms = r->received_ms when set. A reading older
 * than one already evaluated for that device and boot (out of order) is
 * not evaluated again. */
alarm_err alarm_on_reading(alarm_engine *e, alarm_events *out, const telemetry_reading *r,
                           int64_t now_ms);
/* A status: online or offline (last will); interval_ms 0 = not announced. */
alarm_err alarm_on_status(alarm_engine *e, alarm_events *out, const char *id, int online,
                          int64_t interval_ms, int64_t now_ms);
/* Completeness gave up `seqs` readings of that device as lost. */
alarm_err alarm_on_lost(alarm_engine *e, alarm_events *out, const char *id, int64_t seqs,
                        int64_t now_ms);
/* Time-based conditions: offline/stale onset, data_lost expiry,
 * escalation, audio-pause expiry. Visits only the devices with such work
 * due (a timer heap, one entry per device, kept by every other call), so
 * it costs O(due devices x log devices), not O(devices). Devices are
 * visited earliest-due first (so alarms raised by one tick take their ids
 * in that order), each at most once: work due at once again (one
 * escalation per tick) waits for the next tick. A tick at a time before
 * one already passed in to the engine (the wall clock stepped back)
 * evaluates every device instead. */
void alarm_tick(alarm_engine *e, alarm_events *out, int64_t now_ms);

/* What the engine holds (tests, benchmarks). */
typedef struct alarm_stats {
    size_t devices;           /* in the device table */
    size_t timed;             /* in the timer heap: devices with time-based work */
    size_t last_tick_visited; /* devices the last alarm_tick evaluated */
} alarm_stats;
void alarm_engine_stats(const alarm_engine *e, alarm_stats *out);

/* Operator actions. user may be NULL/"" (no identity). silence: seconds in
 * 1..ALARM_PAUSE_MAX_S (0 = ALARM_PAUSE_DEFAULT_S). */
alarm_err alarm_ack(alarm_engine *e, alarm_events *out, uint64_t alarm_id, const char *user,
                    int64_t now_ms);
alarm_err alarm_silence(alarm_engine *e, alarm_events *out, uint64_t alarm_id, int64_t seconds,
                        const char *user, int64_t now_ms);

/* A silence body {"seconds":N}: N an integer in 1..ALARM_PAUSE_MAX_S;
 * "seconds" absent (or an empty body): ALARM_PAUSE_DEFAULT_S. */
alarm_err alarm_silence_parse(const char *body, size_t len, int64_t *seconds);

/* Per-device settings (a device unknown so far is created). */
alarm_err alarm_set_settings(alarm_engine *e, const char *id, const alarm_settings *s);
void alarm_get_settings(const alarm_engine *e, const char *id, alarm_settings *out);

/* Start-up: an alarm that was open when vigild stopped, with its id. It is
 * not raised again; its condition counts as present (active/acked) or gone
 * (latched) until readings say otherwise. Ids issued later are larger. */
alarm_err alarm_restore(alarm_engine *e, const alarm_rec *a, int64_t now_ms);

/* Several instances (cluster.h): drops every device pred picks (1 = this
 * id) — its open alarms, timers and settings — because another instance
 * evaluates it now; no events (the alarms stay open, in the new owner's
 * engine). Returns how many devices. */
typedef int (*alarm_pick)(void *ctx, const char *id);
size_t alarm_forget_if(alarm_engine *e, alarm_pick pred, void *ctx);
/* Several engines raising alarms at once (one per vigild, each owning the
 * devices of some buckets): ids are epoch ms x 1000 + a part in 0..999;
 * with stripes, a device's ids take that part from its stripe's window
 * [s x W, s x W + W), s = stripe_of(device id) % ALARM_ID_STRIPES, so two
 * engines never issue the same id as long as no stripe has two owners. Set
 * before any alarm is raised or restored. */
#define ALARM_ID_STRIPES 64
#define ALARM_ID_STRIPE_WIDTH 15 /* 64 x 15 <= 1000: still ms x 1000 + part */
typedef unsigned (*alarm_stripe_fn)(const char *device_id);
void alarm_engine_stripe_ids(alarm_engine *e, alarm_stripe_fn stripe_of);

/* Open alarms of one device (id) or of all (id NULL), up to cap; returns
 * how many there are (may exceed cap). */
size_t alarm_list(const alarm_engine *e, const char *id, alarm_rec *out, size_t cap);
/* One open alarm by id: 0 and *out, or -1. */
int alarm_find(const alarm_engine *e, uint64_t alarm_id, alarm_rec *out);

/* The latest partial NEWS2 of a device: -1 if none computed yet. */
int alarm_news2_of(const alarm_engine *e, const char *id, alarm_news2 *out);
/* The NEWS2 sub-scores (RCP 2017, SpO2 scale 1). */
int alarm_news2_spo2(double spo2);
int alarm_news2_pulse(double pulse);
/* "news2":{"score":N,"partial":true,"measured":["spo2","pulse"],
 * "not_measured":[...]} member text (without a leading comma) into buf,
 * followed by "spo2":a,"pulse":b when those sub-scores are known (>= 0);
 * 0 if too small. */
size_t alarm_news2_json(const alarm_news2 *n, char *buf, size_t cap);
/* Appends that member as the last member of the JSON object text obj (len
 * bytes ending in '}', e.g. a READING) within cap bytes, NUL included.
 * Returns the new length and sets *member_off to where "news2" starts; 0
 * when it does not fit or obj is not an object (obj then unchanged). */
size_t alarm_news2_append(const alarm_news2 *n, char *obj, size_t len, size_t cap,
                          size_t *member_off);

#endif
