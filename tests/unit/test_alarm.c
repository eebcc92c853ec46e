/* Unit tests for server/alarm.c: the pure alarm engine (onset delays and
 * clear hysteresis at their exact boundaries, latching, acknowledge, audio
 * pause, escalation, invalid values, flapping, replayed history, restore)
 * and the settings body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarm.h"
#include "telemetry.h"

#define T0 INT64_C(1800000000000) /* a synced device clock, epoch ms */

static telemetry_reading rd(int64_t ts, double spo2, double hr)
{
    telemetry_reading r;
    memset(&r, 0, sizeof r);
    strcpy(r.device_id, "D1");
    r.present = TELEMETRY_HAS_TS | TELEMETRY_HAS_SPO2_VALID | TELEMETRY_HAS_HR_VALID;
    r.ts_ms = ts;
    if (!isnan(spo2)) {
        r.present |= TELEMETRY_HAS_SPO2;
        r.spo2 = spo2;
        r.spo2_valid = 1;
    }
    if (!isnan(hr)) {
        r.present |= TELEMETRY_HAS_HEART_RATE;
        r.heart_rate = hr;
        r.hr_valid = 1;
    }
    r.received_ms = ts;
    return r;
}

/* Feeds a reading live (arrival = device time) and returns its events. */
static alarm_events ev;
static size_t feed(alarm_engine *e, telemetry_reading r)
{
    alarm_events_clear(&ev);
    assert_int_equal(alarm_on_reading(e, &ev, &r, r.received_ms), ALARM_OK);
    return ev.n;
}
static size_t tick(alarm_engine *e, int64_t now)
{
    alarm_events_clear(&ev);
    alarm_tick(e, &ev, now);
    return ev.n;
}
/* The event for condition c in the last list, or NULL. */
static const alarm_event *evof(alarm_condition c)
{
    for (size_t i = 0; i < ev.n; i++)
        if (ev.ev[i].alarm.condition == c)
            return &ev.ev[i];
    return NULL;
}
static int open_state(alarm_engine *e, alarm_condition c, alarm_rec *out)
{
    alarm_rec list[ALARM_COND_COUNT];
    size_t n = alarm_list(e, "D1", list, ALARM_COND_COUNT);
    for (size_t i = 0; i < n; i++)
        if (list[i].condition == c) {
            if (out)
                *out = list[i];
            return (int)list[i].state;
        }
    return -1;
}

static void test_spo2_low_onset_and_hysteresis_boundaries(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    feed(e, rd(T0, 90, 70)); /* 90 is not below 90 */
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), -1);
    feed(e, rd(T0 + 1000, 89, 70)); /* breach starts */
    feed(e, rd(T0 + 10999, 89, 70));
    assert_null(evof(ALARM_SPO2_LOW));
    feed(e, rd(T0 + 11000, 89, 70)); /* exactly 10 s */
    const alarm_event *x = evof(ALARM_SPO2_LOW);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_RAISED);
    assert_int_equal(x->alarm.priority, ALARM_PRIO_MEDIUM);
    assert_int_equal(x->alarm.state, ALARM_ACTIVE);
    assert_true(x->alarm.started_at == T0 + 1000);
    assert_true(x->alarm.value == 89 && x->alarm.limit == 90);
    /* 91 is inside the hysteresis band: never clears */
    for (int i = 1; i <= 20; i++)
        feed(e, rd(T0 + 11000 + i * 1000, 91, 70));
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), ALARM_ACTIVE);
    /* 92 = limit + hysteresis: clears after the 5 s clear delay, not before */
    int64_t t = T0 + 40000;
    feed(e, rd(t, 92, 70));
    feed(e, rd(t + 4999, 92, 70));
    assert_null(evof(ALARM_SPO2_LOW));
    feed(e, rd(t + 5000, 92, 70));
    x = evof(ALARM_SPO2_LOW);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_CLEARED); /* medium: non-latching */
    assert_true(x->alarm.cleared_at == t + 5000);
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), -1);
    alarm_engine_free(e);
}

static void test_desat_latches_escalates_and_ack(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    feed(e, rd(T0, 84, 70));
    feed(e, rd(T0 + 4999, 84, 70));
    assert_null(evof(ALARM_SPO2_DESAT));
    feed(e, rd(T0 + 5000, 84.9, 70));
    const alarm_event *x = evof(ALARM_SPO2_DESAT);
    assert_non_null(x);
    assert_int_equal(x->alarm.priority, ALARM_PRIO_HIGH);
    uint64_t id = x->alarm.alarm_id;
    /* escalation: 60 s after the raise (wall), then every 60 s */
    int64_t raised = T0 + 5000;
    tick(e, raised + 59999);
    assert_null(evof(ALARM_SPO2_DESAT));
    tick(e, raised + 60000);
    x = evof(ALARM_SPO2_DESAT);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_ESCALATED);
    assert_int_equal(x->alarm.escalation, 1);
    assert_null(evof(ALARM_SPO2_DESAT) == x ? NULL : x);
    tick(e, raised + 60250);
    assert_null(evof(ALARM_SPO2_DESAT)); /* once per interval */
    tick(e, raised + 120000);
    assert_int_equal(evof(ALARM_SPO2_DESAT)->alarm.escalation, 2);
    /* the condition ends: high priority latches */
    int64_t t = raised + 121000;
    feed(e, rd(t, 95, 70));
    feed(e, rd(t + 5000, 95, 70));
    x = evof(ALARM_SPO2_DESAT);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_UPDATED);
    assert_int_equal(x->alarm.state, ALARM_LATCHED);
    assert_true(x->alarm.cleared_at == t + 5000);
    assert_int_equal(open_state(e, ALARM_SPO2_DESAT, NULL), ALARM_LATCHED);
    /* latched still escalates: nobody has responded */
    tick(e, raised + 180000);
    assert_int_equal(evof(ALARM_SPO2_DESAT)->kind, ALARM_EV_ESCALATED);
    /* acknowledge: who and when, then it is done */
    alarm_events_clear(&ev);
    assert_int_equal(alarm_ack(e, &ev, id, "nurse1", raised + 181000), ALARM_OK);
    assert_int_equal(ev.n, 2);
    assert_int_equal(ev.ev[0].kind, ALARM_EV_ACKNOWLEDGED);
    assert_string_equal(ev.ev[0].alarm.acked_by, "nurse1");
    assert_true(ev.ev[0].alarm.acked_at == raised + 181000);
    assert_string_equal(ev.ev[0].user, "nurse1");
    assert_int_equal(ev.ev[1].kind, ALARM_EV_CLEARED);
    assert_int_equal(open_state(e, ALARM_SPO2_DESAT, NULL), -1);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_ack(e, &ev, id, "nurse1", raised + 182000), ALARM_ENOTFOUND);
    alarm_engine_free(e);
}

static void test_ack_active_stops_escalation_then_clears(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    for (int i = 0; i <= 5; i++)
        feed(e, rd(T0 + i * 1000, 80, 70));
    alarm_rec a = {0};
    assert_int_equal(open_state(e, ALARM_SPO2_DESAT, &a), ALARM_ACTIVE);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_ack(e, &ev, a.alarm_id, "dr", T0 + 10000), ALARM_OK);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].alarm.state, ALARM_ACKED);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_ack(e, &ev, a.alarm_id, "dr", T0 + 10001), ALARM_OK);
    assert_int_equal(ev.n, 0); /* twice is once */
    tick(e, T0 + 5000 + 600000);
    assert_null(evof(ALARM_SPO2_DESAT)); /* acked: never escalates */
    /* acked + condition gone = cleared, not latched */
    feed(e, rd(T0 + 700000, 97, 70));
    feed(e, rd(T0 + 705000, 97, 70));
    assert_int_equal(evof(ALARM_SPO2_DESAT)->kind, ALARM_EV_CLEARED);
    alarm_engine_free(e);
}

static void test_audio_pause_expiry(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    for (int i = 0; i <= 10; i++)
        feed(e, rd(T0 + i * 1000, 88, 70));
    alarm_rec a = {0};
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, &a), ALARM_ACTIVE);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_silence(e, &ev, a.alarm_id, 601, "n", T0), ALARM_EINVAL);
    assert_int_equal(alarm_silence(e, &ev, a.alarm_id, -1, "n", T0), ALARM_EINVAL);
    assert_int_equal(alarm_silence(e, &ev, 12345, 60, "n", T0), ALARM_ENOTFOUND);
    int64_t now = T0 + 20000;
    assert_int_equal(alarm_silence(e, &ev, a.alarm_id, 0, "n", now), ALARM_OK); /* default 120 s */
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].kind, ALARM_EV_AUDIO_PAUSED);
    assert_true(ev.ev[0].alarm.silenced_until == now + 120000);
    tick(e, now + 119999);
    assert_null(evof(ALARM_SPO2_LOW));
    tick(e, now + 120000);
    const alarm_event *x = evof(ALARM_SPO2_LOW);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_UPDATED);
    assert_true(x->alarm.silenced_until == 0); /* sounds again */
    assert_int_equal(x->alarm.state, ALARM_ACTIVE);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_silence(e, &ev, a.alarm_id, 600, NULL, now), ALARM_OK); /* the maximum */
    /* the REST body */
    int64_t s;
    assert_int_equal(alarm_silence_parse(NULL, 0, &s), ALARM_OK);
    assert_true(s == 120);
    assert_int_equal(alarm_silence_parse("{\"seconds\":600}", 15, &s), ALARM_OK);
    assert_true(s == 600);
    assert_int_equal(alarm_silence_parse("{}", 2, &s), ALARM_OK);
    assert_true(s == 120);
    assert_int_equal(alarm_silence_parse("{\"seconds\":601}", 15, &s), ALARM_EINVAL);
    assert_int_equal(alarm_silence_parse("{\"seconds\":0}", 13, &s), ALARM_EINVAL);
    assert_int_equal(alarm_silence_parse("{\"seconds\":1.5}", 15, &s), ALARM_EINVAL);
    assert_int_equal(alarm_silence_parse("[1]", 3, &s), ALARM_EINVAL);
    alarm_engine_free(e);
}

static void test_hr_tiers_and_boundaries(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    for (int i = 0; i <= 20; i++)
        feed(e, rd(T0 + i * 1000, 97, 120)); /* 120 is not above 120 */
    assert_int_equal(open_state(e, ALARM_HR_HIGH, NULL), -1);
    int64_t t = T0 + 30000;
    for (int i = 0; i < 10; i++)
        feed(e, rd(t + i * 1000, 97, 121));
    assert_int_equal(open_state(e, ALARM_HR_HIGH, NULL), -1);
    feed(e, rd(t + 10000, 97, 121));
    alarm_rec a = {0};
    assert_int_equal(open_state(e, ALARM_HR_HIGH, &a), ALARM_ACTIVE);
    assert_int_equal(a.priority, ALARM_PRIO_MEDIUM);
    /* > 140 for 5 s: the same alarm becomes high priority */
    t += 11000;
    for (int i = 0; i < 5; i++)
        feed(e, rd(t + i * 1000, 97, 141));
    assert_int_equal(open_state(e, ALARM_HR_HIGH, &a), ALARM_ACTIVE);
    assert_int_equal(a.priority, ALARM_PRIO_MEDIUM);
    feed(e, rd(t + 5000, 97, 141));
    const alarm_event *x = evof(ALARM_HR_HIGH);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_UPDATED);
    assert_int_equal(x->alarm.priority, ALARM_PRIO_HIGH);
    assert_true(x->alarm.limit == 140);
    /* back to normal: 116 is not <= 120 - 5 */
    t += 6000;
    for (int i = 0; i < 10; i++)
        feed(e, rd(t + i * 1000, 97, 116));
    assert_int_equal(open_state(e, ALARM_HR_HIGH, NULL), ALARM_ACTIVE);
    t += 10000;
    feed(e, rd(t, 97, 115));
    feed(e, rd(t + 5000, 97, 115));
    assert_int_equal(open_state(e, ALARM_HR_HIGH, NULL), ALARM_LATCHED); /* was high */

    /* hr_low: 50 not below, 49 for 10 s medium, 39 for 5 s high */
    alarm_engine *f = alarm_engine_new(8);
    for (int i = 0; i <= 15; i++)
        feed(f, rd(T0 + i * 1000, 97, 50));
    assert_int_equal(open_state(f, ALARM_HR_LOW, NULL), -1);
    for (int i = 0; i <= 10; i++)
        feed(f, rd(T0 + 20000 + i * 1000, 97, 49));
    assert_int_equal(open_state(f, ALARM_HR_LOW, &a), ALARM_ACTIVE);
    assert_int_equal(a.priority, ALARM_PRIO_MEDIUM);
    alarm_engine_free(f);
    f = alarm_engine_new(8);
    for (int i = 0; i <= 4; i++)
        feed(f, rd(T0 + i * 1000, 97, 39));
    assert_int_equal(open_state(f, ALARM_HR_LOW, NULL), -1);
    feed(f, rd(T0 + 5000, 97, 39)); /* high tier first: 5 s */
    assert_int_equal(open_state(f, ALARM_HR_LOW, &a), ALARM_ACTIVE);
    assert_int_equal(a.priority, ALARM_PRIO_HIGH);
    alarm_engine_free(f);
    alarm_engine_free(e);
}

static void test_skin_temperature_advisory(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    telemetry_reading r = rd(T0, 97, 70);
    r.present |= TELEMETRY_HAS_OBJECT_TEMP | TELEMETRY_HAS_TEMP_VALID;
    r.temp_valid = 1;
    r.object_temp = 37.5; /* not above */
    for (int i = 0; i <= 40; i++) {
        r.ts_ms = r.received_ms = T0 + i * 1000;
        feed(e, r);
    }
    assert_int_equal(open_state(e, ALARM_TEMP_HIGH, NULL), -1);
    r.object_temp = 37.6;
    int64_t t = T0 + 50000;
    for (int i = 0; i <= 30; i++) {
        r.ts_ms = r.received_ms = t + i * 1000;
        feed(e, r);
        if (i == 29)
            assert_int_equal(open_state(e, ALARM_TEMP_HIGH, NULL), -1);
    }
    alarm_rec a = {0};
    assert_int_equal(open_state(e, ALARM_TEMP_HIGH, &a), ALARM_ACTIVE);
    assert_int_equal(a.priority, ALARM_PRIO_LOW);
    assert_int_equal(alarm_is_physiological(a.condition), 1);
    /* skin 32.0 is not below 32.0; 31.9 is */
    alarm_engine *f = alarm_engine_new(8);
    r.object_temp = 32.0;
    for (int i = 0; i <= 40; i++) {
        r.ts_ms = r.received_ms = T0 + i * 1000;
        feed(f, r);
    }
    assert_int_equal(open_state(f, ALARM_TEMP_LOW, NULL), -1);
    r.object_temp = 31.9;
    for (int i = 0; i <= 30; i++) {
        r.ts_ms = r.received_ms = T0 + 50000 + i * 1000;
        feed(f, r);
    }
    assert_int_equal(open_state(f, ALARM_TEMP_LOW, NULL), ALARM_ACTIVE);
    alarm_engine_free(f);
    alarm_engine_free(e);
}

static void test_news2_partial(void **state)
{
    (void)state;
    assert_int_equal(alarm_news2_spo2(91), 3);
    assert_int_equal(alarm_news2_spo2(92), 2);
    assert_int_equal(alarm_news2_spo2(95), 1);
    assert_int_equal(alarm_news2_spo2(96), 0);
    assert_int_equal(alarm_news2_pulse(40), 3);
    assert_int_equal(alarm_news2_pulse(41), 1);
    assert_int_equal(alarm_news2_pulse(51), 0);
    assert_int_equal(alarm_news2_pulse(91), 1);
    assert_int_equal(alarm_news2_pulse(111), 2);
    assert_int_equal(alarm_news2_pulse(131), 3);
    alarm_engine *e = alarm_engine_new(8);
    /* 2 + 2 = 4: below 5, no 3 */
    for (int i = 0; i <= 20; i++)
        feed(e, rd(T0 + i * 1000, 93, 112));
    assert_int_equal(open_state(e, ALARM_NEWS2, NULL), -1);
    alarm_news2 n;
    assert_int_equal(alarm_news2_of(e, "D1", &n), 0);
    assert_int_equal(n.score, 4);
    /* SpO2 91 alone scores 3: high after its onset delay */
    int64_t t = T0 + 30000;
    for (int i = 0; i <= 10; i++)
        feed(e, rd(t + i * 1000, 91, 70));
    alarm_rec a = {0};
    assert_int_equal(open_state(e, ALARM_NEWS2, &a), ALARM_ACTIVE);
    assert_int_equal(a.priority, ALARM_PRIO_HIGH);
    assert_int_equal(a.news2_score, 3);
    char buf[ALARM_JSON_MAX];
    assert_true(alarm_json(&a, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "\"news2\":{\"score\":3,\"partial\":true,\"measured\":[\"spo2\",\"pulse\"]"));
    assert_non_null(strstr(buf, "\"condition\":\"news2\""));
    alarm_engine_free(e);
}

static void test_invalid_values_never_raise_extend_or_clear(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    /* finger off: validity false, values present but meaningless */
    telemetry_reading r = rd(T0, 60, 0 + 25);
    r.spo2_valid = 0;
    r.hr_valid = 0;
    size_t raised_spo2 = 0;
    for (int i = 0; i <= 30; i++) {
        r.ts_ms = r.received_ms = T0 + i * 1000;
        feed(e, r);
        for (size_t k = 0; k < ev.n; k++)
            if (ev.ev[k].alarm.condition <= ALARM_NEWS2)
                raised_spo2++;
        if (i == 9)
            assert_int_equal(open_state(e, ALARM_NO_SIGNAL, NULL), -1);
        if (i == 10)
            assert_int_equal(open_state(e, ALARM_NO_SIGNAL, NULL), ALARM_ACTIVE);
    }
    assert_int_equal(raised_spo2, 0);
    assert_int_equal(open_state(e, ALARM_NO_SIGNAL, NULL), ALARM_ACTIVE);
    alarm_engine_free(e);

    /* an invalid reading restarts the onset: low 0..5 s, invalid at 6 s, low
     * from 7 s raises at 17 s, not 10 s */
    e = alarm_engine_new(8);
    for (int i = 0; i <= 5; i++)
        feed(e, rd(T0 + i * 1000, 88, 70));
    feed(e, rd(T0 + 6000, NAN, NAN)); /* null spo2 and pulse */
    for (int i = 7; i <= 16; i++)
        feed(e, rd(T0 + i * 1000, 88, 70));
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), -1);
    feed(e, rd(T0 + 17000, 88, 70));
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), ALARM_ACTIVE);
    /* null values never clear it, however long */
    for (int i = 18; i <= 60; i++)
        feed(e, rd(T0 + i * 1000, NAN, NAN));
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), ALARM_ACTIVE);
    /* and they raised no_signal (the device had sent vitals before) */
    assert_int_equal(open_state(e, ALARM_NO_SIGNAL, NULL), ALARM_ACTIVE);
    /* a good reading interrupted by an invalid one restarts the clear delay */
    feed(e, rd(T0 + 61000, 97, 70));
    feed(e, rd(T0 + 64000, NAN, NAN));
    feed(e, rd(T0 + 66000, 97, 70));
    feed(e, rd(T0 + 70000, 97, 70));
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), ALARM_ACTIVE);
    feed(e, rd(T0 + 71000, 97, 70));
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), -1);
    alarm_engine_free(e);
}

static void test_flapping_does_not_chatter(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    size_t events = 0;
    for (int i = 0; i < 120; i++) {
        feed(e, rd(T0 + i * 1000, i % 2 ? 89 : 91, 70));
        for (size_t k = 0; k < ev.n; k++)
            if (ev.ev[k].alarm.condition == ALARM_SPO2_LOW)
                events++;
    }
    assert_int_equal(events, 0); /* never 10 s below */
    /* once raised, flapping inside the band neither clears nor re-raises */
    for (int i = 120; i <= 131; i++)
        feed(e, rd(T0 + i * 1000, 88, 70));
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), ALARM_ACTIVE);
    events = 0;
    for (int i = 132; i < 300; i++) {
        feed(e, rd(T0 + i * 1000, i % 2 ? 89 : 92, 70));
        for (size_t k = 0; k < ev.n; k++)
            if (ev.ev[k].alarm.condition == ALARM_SPO2_LOW)
                events++;
    }
    assert_int_equal(events, 0); /* 92 never lasts the 5 s clear delay */
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), ALARM_ACTIVE);
    alarm_engine_free(e);
}

static void test_replayed_backlog_is_retrospective(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    int64_t lag = 120000; /* the backlog arrives two minutes late */
    int retro_raised = 0, cleared = 0, latched = 0;
    for (int i = 0; i < 40; i++) {
        telemetry_reading r = rd(T0 + i * 1000, i >= 5 && i < 20 ? 80 : 97, 70);
        r.received_ms = T0 + lag + i * 10; /* arriving fast, in order */
        alarm_events_clear(&ev);
        assert_int_equal(alarm_on_reading(e, &ev, &r, r.received_ms), ALARM_OK);
        const alarm_event *x = evof(ALARM_SPO2_DESAT);
        if (x && x->kind == ALARM_EV_RAISED && x->alarm.retrospective)
            retro_raised++;
        if (x && x->kind == ALARM_EV_CLEARED) {
            cleared++;
            assert_int_equal(x->alarm.retrospective, 1);
        }
        if (x && x->alarm.state == ALARM_LATCHED)
            latched++;
    }
    assert_int_equal(retro_raised, 1);
    assert_int_equal(cleared, 1); /* not latched: nothing to respond to */
    assert_int_equal(latched, 0);
    assert_int_equal(open_state(e, ALARM_SPO2_DESAT, NULL), -1);
    alarm_engine_free(e);

    /* an episode that began in the backlog and is still on when live data
     * arrives becomes a live alarm (and only then escalates) */
    e = alarm_engine_new(8);
    for (int i = 0; i < 10; i++) {
        telemetry_reading r = rd(T0 + i * 1000, 80, 70);
        r.received_ms = T0 + lag + i;
        alarm_events_clear(&ev);
        alarm_on_reading(e, &ev, &r, r.received_ms);
    }
    alarm_rec a = {0};
    assert_int_equal(open_state(e, ALARM_SPO2_DESAT, &a), ALARM_ACTIVE);
    assert_int_equal(a.retrospective, 1);
    tick(e, T0 + lag + 100000);
    assert_null(evof(ALARM_SPO2_DESAT)); /* no escalation while retrospective */
    feed(e, rd(T0 + lag + 101000, 80, 70)); /* live */
    const alarm_event *x = evof(ALARM_SPO2_DESAT);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_UPDATED);
    assert_int_equal(x->alarm.retrospective, 0);
    assert_int_equal(x->alarm.alarm_id, a.alarm_id);
    tick(e, T0 + lag + 101000 + 60000);
    assert_int_equal(evof(ALARM_SPO2_DESAT)->kind, ALARM_EV_ESCALATED);
    alarm_engine_free(e);
}

static void test_seq_time_without_clock(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_on_status(e, &ev, "D1", 1, 2000, 5000), ALARM_OK);
    int64_t arrive = 5000;
    for (int s = 0; s <= 5; s++) { /* 2 s per seq: 10 s of device time at seq 5 */
        telemetry_reading r = rd(0, 88, 70);
        r.present &= ~(uint32_t)TELEMETRY_HAS_TS;
        r.present |= TELEMETRY_HAS_SEQ | TELEMETRY_HAS_BOOT;
        r.seq = s;
        r.boot = 1;
        r.received_ms = arrive + s * 2000;
        feed(e, r);
        if (s == 4)
            assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), -1);
    }
    alarm_rec a = {0};
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, &a), ALARM_ACTIVE);
    assert_true(a.started_at == arrive); /* device time placed on the wall clock */
    /* a duplicate (resent seq) is not evaluated again */
    telemetry_reading r = rd(0, 97, 70);
    r.present &= ~(uint32_t)TELEMETRY_HAS_TS;
    r.present |= TELEMETRY_HAS_SEQ | TELEMETRY_HAS_BOOT;
    r.seq = 3;
    r.boot = 1;
    r.received_ms = arrive + 20000;
    assert_int_equal(feed(e, r), 0);
    alarm_engine_free(e);
}

static void test_technical_conditions(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    feed(e, rd(T0, 97, 70));
    /* stale: no reading for 3 x the announced interval (wall clock) */
    assert_int_equal(tick(e, T0 + 2999), 0);
    tick(e, T0 + 3000);
    const alarm_event *x = evof(ALARM_STALE);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_RAISED);
    feed(e, rd(T0 + 4000, 97, 70));
    assert_int_equal(evof(ALARM_STALE)->kind, ALARM_EV_CLEARED);
    /* offline from the last will; stale does not pile on top */
    alarm_events_clear(&ev);
    assert_int_equal(alarm_on_status(e, &ev, "D1", 0, 0, T0 + 5000), ALARM_OK);
    x = evof(ALARM_OFFLINE);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_RAISED);
    assert_int_equal(x->alarm.priority, ALARM_PRIO_MEDIUM);
    tick(e, T0 + 60000);
    assert_null(evof(ALARM_STALE));
    alarm_events_clear(&ev);
    alarm_on_status(e, &ev, "D1", 1, 0, T0 + 61000);
    assert_int_equal(evof(ALARM_OFFLINE)->kind, ALARM_EV_CLEARED);
    /* battery below 15 % for 10 s; clears at 20 % */
    telemetry_reading r = rd(T0 + 62000, 97, 70);
    r.present |= TELEMETRY_HAS_BATTERY;
    r.battery = 15;
    for (int i = 0; i <= 12; i++) {
        r.ts_ms = r.received_ms = T0 + 62000 + i * 1000;
        feed(e, r);
    }
    assert_int_equal(open_state(e, ALARM_BATTERY_LOW, NULL), -1);
    r.battery = 14;
    for (int i = 13; i <= 23; i++) {
        r.ts_ms = r.received_ms = T0 + 62000 + i * 1000;
        feed(e, r);
    }
    assert_int_equal(open_state(e, ALARM_BATTERY_LOW, NULL), ALARM_ACTIVE);
    /* data lost: raised, stays for its clear time after the latest loss */
    alarm_events_clear(&ev);
    assert_int_equal(alarm_on_lost(e, &ev, "D1", 7, T0 + 100000), ALARM_OK);
    x = evof(ALARM_DATA_LOST);
    assert_non_null(x);
    assert_true(x->alarm.value == 7);
    assert_int_equal(x->alarm.priority, ALARM_PRIO_LOW);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_on_lost(e, &ev, "D1", 3, T0 + 130000), ALARM_OK);
    assert_int_equal(ev.n, 0);
    alarm_rec a = {0};
    open_state(e, ALARM_DATA_LOST, &a);
    assert_true(a.value == 10);
    assert_int_equal(tick(e, T0 + 130000 + 59999) > 0 && evof(ALARM_DATA_LOST), 0);
    tick(e, T0 + 190000);
    assert_int_equal(evof(ALARM_DATA_LOST)->kind, ALARM_EV_CLEARED);
    alarm_engine_free(e);
}

static void test_restore_keeps_id_and_does_not_reraise(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    alarm_rec a = {0};
    memset(&a, 0, sizeof a);
    a.alarm_id = UINT64_C(1800000000000000) + 42;
    strcpy(a.device_id, "D1");
    a.condition = ALARM_SPO2_DESAT;
    a.priority = ALARM_PRIO_HIGH;
    a.state = ALARM_ACTIVE;
    a.started_at = T0;
    assert_int_equal(alarm_restore(e, &a, T0 + 1000), ALARM_OK);
    assert_int_equal(alarm_restore(e, &a, T0 + 1000), ALARM_EINVAL); /* one per condition */
    /* readings still low: the same alarm, no new raise */
    for (int i = 0; i < 10; i++)
        assert_null((feed(e, rd(T0 + 2000 + i * 1000, 80, 70)), evof(ALARM_SPO2_DESAT)));
    assert_int_equal(alarm_find(e, a.alarm_id, NULL), 0);
    /* a latched restore stays latched until acknowledged */
    alarm_rec b = a;
    b.alarm_id = a.alarm_id + 1;
    b.condition = ALARM_HR_HIGH;
    b.state = ALARM_LATCHED;
    assert_int_equal(alarm_restore(e, &b, T0 + 1000), ALARM_OK);
    for (int i = 0; i < 10; i++)
        feed(e, rd(T0 + 20000 + i * 1000, 80, 70));
    assert_int_equal(open_state(e, ALARM_HR_HIGH, NULL), ALARM_LATCHED);
    /* new ids are larger than restored ones, even with a small clock */
    alarm_events_clear(&ev);
    alarm_on_lost(e, &ev, "D1", 1, 1);
    assert_true(evof(ALARM_DATA_LOST)->alarm.alarm_id > b.alarm_id);
    b.state = ALARM_CLEARED;
    assert_int_equal(alarm_restore(e, &b, 0), ALARM_EINVAL);
    alarm_engine_free(e);
}

static void test_device_table_bound(void **state)
{
    (void)state;
    assert_null(alarm_engine_new(0));
    alarm_engine *e = alarm_engine_new(2);
    telemetry_reading r = rd(T0, 97, 70);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_on_reading(e, &ev, &r, T0), ALARM_OK);
    strcpy(r.device_id, "D2");
    assert_int_equal(alarm_on_reading(e, &ev, &r, T0), ALARM_OK);
    strcpy(r.device_id, "D3");
    assert_int_equal(alarm_on_reading(e, &ev, &r, T0), ALARM_EFULL);
    assert_int_equal(alarm_on_status(e, &ev, "D3", 0, 0, T0), ALARM_EFULL);
    assert_int_equal(alarm_on_status(e, &ev, "D1", 0, 0, T0), ALARM_OK); /* known: fine */
    alarm_engine_free(e);
    alarm_engine_free(NULL);
}

static void test_tick_truncates_without_losing_changes(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(200);
    for (int i = 0; i < 100; i++) {
        alarm_events_clear(&ev);
        char id[16];
        snprintf(id, sizeof id, "D%d", i);
        assert_int_equal(alarm_on_status(e, &ev, id, 1, 1000, T0), ALARM_OK);
    }
    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        tick(e, T0 + 5000 + k * 250);
        total += ev.n;
    }
    /* no reading yet: not stale (nothing to be stale about) */
    assert_int_equal(total, 0);
    for (int i = 0; i < 100; i++) {
        alarm_events_clear(&ev);
        char id[16];
        snprintf(id, sizeof id, "D%d", i);
        alarm_on_status(e, &ev, id, 0, 0, T0 + 6000);
    }
    /* offline raised at once for each (status path, never truncated) */
    alarm_rec list[128];
    assert_int_equal(alarm_list(e, NULL, list, 128), 100);
    for (int i = 0; i < 100; i++) {
        alarm_events_clear(&ev);
        char id[16];
        snprintf(id, sizeof id, "D%d", i);
        alarm_on_status(e, &ev, id, 1, 0, T0 + 7000);
    }
    assert_int_equal(alarm_list(e, NULL, list, 128), 0);
    /* 100 devices go stale at once: a full list stops the tick, the rest follow */
    for (int i = 0; i < 100; i++) {
        telemetry_reading r = rd(T0 + 8000, 97, 70);
        snprintf(r.device_id, sizeof r.device_id, "D%d", i);
        alarm_events_clear(&ev);
        alarm_on_reading(e, &ev, &r, T0 + 8000);
    }
    tick(e, T0 + 20000);
    assert_int_equal(ev.n, ALARM_EVENTS_MAX);
    assert_int_equal(ev.truncated, 1);
    tick(e, T0 + 20250);
    assert_int_equal(ev.n, 100 - ALARM_EVENTS_MAX);
    assert_int_equal(ev.truncated, 0);
    assert_int_equal(alarm_list(e, NULL, list, 128), 100);
    alarm_engine_free(e);
}

static int pick_odd(void *ctx, const char *id)
{
    (void)ctx;
    return atoi(id + 1) % 2;
}

/* ---- the timer index (alarm_tick visits only devices with work due) ---- */

static telemetry_reading rd_of(const char *id, int64_t t)
{
    telemetry_reading r = rd(t, 97, 70);
    snprintf(r.device_id, sizeof r.device_id, "%s", id);
    return r;
}

static alarm_stats stats_of(const alarm_engine *e)
{
    alarm_stats st;
    alarm_engine_stats(e, &st);
    return st;
}

/* One device of 10,000 stops sending: its stale alarm comes at the first
 * tick at or past 3 x its interval after its last reading, and quiet ticks
 * visit (almost) nobody. */
static void test_index_stale_among_quiet_devices(void **state)
{
    (void)state;
    enum { N = 10000, SILENT = 4321 };
    alarm_engine *e = alarm_engine_new(N);
    char id[16];
    size_t visited_total = 0, ticks = 0, raised = 0;
    int64_t raised_at = 0;
    for (int s = 0; s <= 10; s++) {
        int64_t t = T0 + s * 1000;
        for (int i = 0; i < N; i++) {
            if (i == SILENT && s > 0)
                continue; /* only its first reading, at T0 */
            snprintf(id, sizeof id, "Q%d", i);
            feed(e, rd_of(id, t));
            assert_int_equal(ev.n, 0);
        }
        for (int q = 0; q < 4; q++) {
            tick(e, t + q * 250);
            ticks++;
            visited_total += stats_of(e).last_tick_visited;
            for (size_t k = 0; k < ev.n; k++) {
                assert_string_equal(ev.ev[k].alarm.device_id, "Q4321");
                assert_int_equal(ev.ev[k].alarm.condition, ALARM_STALE);
                assert_int_equal(ev.ev[k].kind, ALARM_EV_RAISED);
                raised++;
                raised_at = ev.ev[k].at;
            }
            if (t + q * 250 == T0 + 3250) /* right after the raise: nothing due */
                assert_int_equal(stats_of(e).last_tick_visited, 0);
        }
    }
    assert_int_equal(raised, 1);
    assert_true(raised_at == T0 + 3000);
    alarm_rec a = {0};
    assert_int_equal(alarm_list(e, "Q4321", &a, 1), 1);
    assert_true(a.started_at == T0 + 3000);
    assert_int_equal(alarm_list(e, NULL, NULL, 0), 1);
    /* a walk of every device at every tick would be ticks x N; with the
     * lazy heap each device is re-checked about once per stale period */
    assert_true(visited_total < ticks * N / 4);
    assert_int_equal(stats_of(e).devices, N);
    /* the silent device has nothing more to time; every other one has */
    assert_int_equal(stats_of(e).timed, N - 1);
    alarm_engine_free(e);
}

/* A device whose due time moves: later (a reading pushes stale back),
 * earlier (settings, audio pause before escalation), and away (offline). */
static void test_index_due_time_moves(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(8);
    feed(e, rd(T0, 97, 70));
    feed(e, rd(T0 + 2500, 97, 70)); /* stale moves from T0+3000 to T0+5500 */
    assert_int_equal(tick(e, T0 + 3000), 0);
    assert_int_equal(tick(e, T0 + 5499), 0);
    tick(e, T0 + 5500);
    assert_non_null(evof(ALARM_STALE));
    assert_int_equal(evof(ALARM_STALE)->kind, ALARM_EV_RAISED);
    feed(e, rd(T0 + 6000, 97, 70));
    assert_int_equal(evof(ALARM_STALE)->kind, ALARM_EV_CLEARED);
    /* earlier: a stale limit of 2 intervals instead of 3 */
    alarm_settings s;
    alarm_get_settings(e, "D1", &s);
    s.cond[ALARM_STALE].limit = 2;
    assert_int_equal(alarm_set_settings(e, "D1", &s), ALARM_OK);
    assert_int_equal(tick(e, T0 + 7999), 0);
    tick(e, T0 + 8000);
    assert_non_null(evof(ALARM_STALE));
    /* earlier: an offline onset delay runs on the tick */
    s.cond[ALARM_OFFLINE].onset_ms = 5000;
    assert_int_equal(alarm_set_settings(e, "D1", &s), ALARM_OK);
    alarm_events_clear(&ev);
    assert_int_equal(alarm_on_status(e, &ev, "D1", 0, 0, T0 + 9000), ALARM_OK);
    assert_null(evof(ALARM_OFFLINE));
    assert_non_null(evof(ALARM_STALE)); /* offline: not stale any more */
    assert_int_equal(tick(e, T0 + 13999), 0);
    tick(e, T0 + 14000);
    const alarm_event *x = evof(ALARM_OFFLINE);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_RAISED);
    assert_true(x->alarm.started_at == T0 + 9000);
    /* away: offline with its alarm raised, nothing is timed */
    assert_int_equal(stats_of(e).timed, 0);
    assert_int_equal(tick(e, T0 + 60000), 0);
    assert_int_equal(stats_of(e).last_tick_visited, 0);
    alarm_events_clear(&ev);
    alarm_on_status(e, &ev, "D1", 1, 0, T0 + 61000);
    assert_int_equal(evof(ALARM_OFFLINE)->kind, ALARM_EV_CLEARED);

    /* earlier: an audio pause of 10 s ends before the first escalation */
    alarm_engine *f = alarm_engine_new(8);
    alarm_events_clear(&ev); /* 20 s interval: stale only after 60 s without a reading */
    assert_int_equal(alarm_on_status(f, &ev, "D1", 1, 20000, T0), ALARM_OK);
    for (int i = 0; i <= 5; i++)
        feed(f, rd(T0 + i * 1000, 84, 70));
    alarm_rec a = {0};
    assert_int_equal(open_state(f, ALARM_SPO2_DESAT, &a), ALARM_ACTIVE);
    int64_t raised = T0 + 5000;
    for (int i = 6; i <= 30; i++)
        feed(f, rd(T0 + i * 1000, 84, 70));
    alarm_events_clear(&ev);
    assert_int_equal(alarm_silence(f, &ev, a.alarm_id, 10, "n", T0 + 30000), ALARM_OK);
    assert_int_equal(tick(f, T0 + 39999), 0);
    tick(f, T0 + 40000);
    x = evof(ALARM_SPO2_DESAT);
    assert_non_null(x);
    assert_int_equal(x->kind, ALARM_EV_UPDATED);
    assert_true(x->alarm.silenced_until == 0);
    /* and escalation still comes on time, twice if two are due (one a tick) */
    for (int i = 31; i <= 124; i++)
        feed(f, rd(T0 + i * 1000, 84, 70));
    tick(f, raised + 120000 + 1);
    x = evof(ALARM_SPO2_DESAT);
    assert_non_null(x);
    assert_int_equal(x->alarm.escalation, 1);
    tick(f, raised + 120000 + 1); /* the same time again: the second one */
    assert_int_equal(evof(ALARM_SPO2_DESAT)->alarm.escalation, 2);
    assert_int_equal(tick(f, raised + 120000 + 2), 0);
    alarm_engine_free(f);
    alarm_engine_free(e);
}

/* Forgotten devices leave the index; a tick before a time already seen
 * (the wall clock stepped back) evaluates every device. */
static void test_index_forget_and_clock_step(void **state)
{
    (void)state;
    alarm_engine *e = alarm_engine_new(64);
    char id[16];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "F%d", i);
        feed(e, rd_of(id, T0));
    }
    assert_int_equal(stats_of(e).timed, 40);
    assert_int_equal(alarm_forget_if(e, pick_odd, NULL), 20);
    assert_int_equal(stats_of(e).timed, 20);
    assert_int_equal(stats_of(e).devices, 20);
    tick(e, T0 + 3000);
    assert_int_equal(ev.n, 20);
    for (size_t k = 0; k < ev.n; k++) {
        int n = atoi(ev.ev[k].alarm.device_id + 1);
        assert_int_equal(n % 2, 0);
        assert_int_equal(ev.ev[k].alarm.condition, ALARM_STALE);
    }
    assert_int_equal(tick(e, T0 + 3250), 0);
    assert_int_equal(stats_of(e).last_tick_visited, 0);
    tick(e, T0 + 1000); /* back in time: every device */
    assert_int_equal(stats_of(e).last_tick_visited, 20);
    alarm_engine_free(e);
}

static void test_alarm_json(void **state)
{
    (void)state;
    alarm_rec a = {0};
    memset(&a, 0, sizeof a);
    a.alarm_id = 7;
    strcpy(a.device_id, "D\"1");
    a.condition = ALARM_SPO2_LOW;
    a.priority = ALARM_PRIO_MEDIUM;
    a.state = ALARM_ACKED;
    a.has_value = 1;
    a.value = 88;
    a.limit = 90;
    a.started_at = T0;
    a.acked_at = T0 + 1000;
    strcpy(a.acked_by, "nurse");
    char buf[ALARM_JSON_MAX];
    size_t n = alarm_json(&a, buf, sizeof buf);
    assert_true(n > 0);
    assert_string_equal(buf,
        "{\"alarm_id\":7,\"device_id\":\"D\\\"1\",\"condition\":\"spo2_low\",\"kind\":\"physiological\","
        "\"priority\":\"medium\",\"state\":\"acked\",\"value\":88,\"limit\":90,"
        "\"started_at\":\"2027-01-15T08:00:00.000Z\",\"cleared_at\":null,\"acked_by\":\"nurse\","
        "\"acked_at\":\"2027-01-15T08:00:01.000Z\",\"silenced_until\":null,\"escalation\":0,"
        "\"retrospective\":false}");
    assert_int_equal(alarm_json(&a, buf, 40), 0);
    a.condition = ALARM_OFFLINE;
    a.has_value = 0;
    a.acked_at = 0;
    alarm_json(&a, buf, sizeof buf);
    assert_non_null(strstr(buf, "\"kind\":\"technical\""));
    assert_non_null(strstr(buf, "\"value\":null,\"limit\":null"));
    assert_non_null(strstr(buf, "\"acked_by\":null"));
    alarm_condition c;
    assert_int_equal(alarm_condition_from_name("data_lost", &c), 0);
    assert_int_equal(c, ALARM_DATA_LOST);
    assert_int_equal(alarm_condition_from_name("nope", &c), -1);
}

static void test_settings_validation(void **state)
{
    (void)state;
    alarm_settings d, s;
    alarm_settings_default(&d);
    char err[160];
    char buf[ALARM_SETTINGS_JSON_MAX];
    size_t n = alarm_settings_json(&d, buf, sizeof buf);
    assert_true(n > 0);
    /* the full object round-trips */
    alarm_err pr = alarm_settings_parse(buf, n, &d, &s, err, sizeof err);
    if (pr != ALARM_OK)
        fprintf(stderr, "%s\n%s\n", err, buf);
    assert_int_equal(pr, ALARM_OK);
    assert_memory_equal(&s, &d, sizeof s);
    /* a partial update changes only what it names */
    const char *ok = "{\"conditions\":{\"spo2_low\":{\"limit\":88,\"onset_s\":15}},\"escalation_s\":30}";
    assert_int_equal(alarm_settings_parse(ok, strlen(ok), &d, &s, err, sizeof err), ALARM_OK);
    assert_true(s.cond[ALARM_SPO2_LOW].limit == 88);
    assert_true(s.cond[ALARM_SPO2_LOW].onset_ms == 15000);
    assert_true(s.escalation_ms == 30000);
    assert_true(s.cond[ALARM_SPO2_DESAT].limit == 85);
    /* boundaries are inclusive */
    const char *edge = "{\"conditions\":{\"spo2_low\":{\"limit\":98},\"spo2_desat\":{\"limit\":70}}}";
    assert_int_equal(alarm_settings_parse(edge, strlen(edge), &d, &s, err, sizeof err), ALARM_OK);
    struct { const char *body, *msg; } bad[] = {
        {"{\"conditions\":{\"spo2_low\":{\"limit\":79.9}}}", "conditions.spo2_low.limit: 79.9 outside 80..98"},
        {"{\"conditions\":{\"spo2_low\":{\"limit\":99}}}", "conditions.spo2_low.limit: 99 outside 80..98"},
        {"{\"conditions\":{\"spo2_low\":{\"limit\":\"90\"}}}", "conditions.spo2_low.limit: must be a number"},
        {"{\"conditions\":{\"hr_high\":{\"onset_s\":121}}}", "conditions.hr_high.onset_s: 121 outside 0..120"},
        {"{\"conditions\":{\"hr_high\":{\"limit_high\":110}}}", "conditions.hr_high.limit_high: 110 must be at least hr_high.limit 120"},
        {"{\"conditions\":{\"spo2_desat\":{\"limit\":90}}}", "conditions.spo2_desat.limit: 90 must be below spo2_low.limit 90"},
        {"{\"conditions\":{\"spo2_desat\":{\"enabled\":false}}}", "conditions.spo2_desat.enabled: a safety alarm cannot be disabled"},
        {"{\"conditions\":{\"spo2_desat\":{\"latching\":false}}}", "conditions.spo2_desat.latching: unknown member"},
        {"{\"conditions\":{\"offline\":{\"limit\":3}}}", "conditions.offline.limit: unknown member"},
        {"{\"conditions\":{\"spo2_lo\":{}}}", "conditions.spo2_lo: unknown condition"},
        {"{\"conditions\":{\"spo2_low\":3}}", "conditions.spo2_low: must be an object"},
        {"{\"escalation_s\":5}", "escalation_s: 5 outside 10..600"},
        {"{\"escalation\":60}", "escalation: unknown member"},
        {"{\"conditions\":[]}", "conditions: must be an object"},
        {"[1]", "body must be a single JSON object"},
        {"{} x", "body must be a single JSON object"},
        {"{", "body is not valid JSON"},
        {"{\"conditions\":{\"battery_low\":{\"hysteresis\":-1}}}", "conditions.battery_low.hysteresis: -1 outside 0..20"},
        {"{\"conditions\":{\"data_lost\":{\"clear_s\":5}}}", "conditions.data_lost.clear_s: 5 outside 10..3600"},
        {"{\"conditions\":{\"no_signal\":{\"enabled\":1}}}", "conditions.no_signal.enabled: must be true or false"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        alarm_settings out = d;
        out.escalation_ms = 1; /* untouched on refusal */
        assert_int_equal(alarm_settings_parse(bad[i].body, strlen(bad[i].body), &d, &out, err, sizeof err),
                         ALARM_EINVAL);
        assert_string_equal(err, bad[i].msg);
        assert_true(out.escalation_ms == 1);
    }
    assert_int_equal(alarm_settings_parse("", 0, &d, &s, err, sizeof err), ALARM_EINVAL);
    /* a device's settings take effect */
    alarm_engine *e = alarm_engine_new(4);
    const char *body = "{\"conditions\":{\"spo2_low\":{\"limit\":95,\"onset_s\":0}}}";
    assert_int_equal(alarm_settings_parse(body, strlen(body), &d, &s, err, sizeof err), ALARM_OK);
    assert_int_equal(alarm_set_settings(e, "D1", &s), ALARM_OK);
    alarm_settings got;
    alarm_get_settings(e, "D1", &got);
    assert_true(got.cond[ALARM_SPO2_LOW].limit == 95);
    alarm_get_settings(e, "other", &got);
    assert_true(got.cond[ALARM_SPO2_LOW].limit == 90);
    feed(e, rd(T0, 94, 70));
    assert_int_equal(open_state(e, ALARM_SPO2_LOW, NULL), ALARM_ACTIVE); /* onset 0: at once */
    alarm_engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spo2_low_onset_and_hysteresis_boundaries),
        cmocka_unit_test(test_desat_latches_escalates_and_ack),
        cmocka_unit_test(test_ack_active_stops_escalation_then_clears),
        cmocka_unit_test(test_audio_pause_expiry),
        cmocka_unit_test(test_hr_tiers_and_boundaries),
        cmocka_unit_test(test_skin_temperature_advisory),
        cmocka_unit_test(test_news2_partial),
        cmocka_unit_test(test_invalid_values_never_raise_extend_or_clear),
        cmocka_unit_test(test_flapping_does_not_chatter),
        cmocka_unit_test(test_replayed_backlog_is_retrospective),
        cmocka_unit_test(test_seq_time_without_clock),
        cmocka_unit_test(test_technical_conditions),
        cmocka_unit_test(test_restore_keeps_id_and_does_not_reraise),
        cmocka_unit_test(test_device_table_bound),
        cmocka_unit_test(test_tick_truncates_without_losing_changes),
        cmocka_unit_test(test_index_stale_among_quiet_devices),
        cmocka_unit_test(test_index_due_time_moves),
        cmocka_unit_test(test_index_forget_and_clock_step),
        cmocka_unit_test(test_alarm_json),
        cmocka_unit_test(test_settings_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
