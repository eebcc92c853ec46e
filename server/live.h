/* live — the live model of vigild: the in-memory table of devices as the
 * live stream shows them (status, first/last seen, firmware, interval, boot,
 * latest reading) and the DEVICE JSON built from it (docs/PROTOCOL.md).
 * Pure logic: no lws, no threads, no clock — messages carry their times.
 *
 * Threads: one owner. In vigild that is the web thread (the hub applies
 * what ingest posted, web answers REST from it); main fills it from the
 * store before that thread starts. When an owner is given at create, every
 * entry point asserts it (debug builds).
 *
 * Ownership: the model owns its devices; each device holds one reference to
 * its latest reading (hub_msg). The annotator's ctx is borrowed and must
 * outlive the model. */
#ifndef VIGIL_LIVE_H
#define VIGIL_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "ports.h"
#include "telemetry.h"

typedef struct sbuf sbuf;
typedef struct hub_msg hub_msg;
typedef struct thread_owner thread_owner;
struct store_device;

#define LIVE_ALARMS_MAX 12 /* one open alarm per condition (alarm.h) */

typedef struct live_device {
    char id[TELEMETRY_ID_MAX + 1];
    int64_t first_seen_ms, last_seen_ms, status_ms;
    int online;                      /* 1, 0, or -1 unknown */
    char fw[TELEMETRY_FW_MAX + 1];
    int64_t interval_ms;             /* 0 unknown */
    int64_t boot;                    /* -1 unknown */
    hub_msg *last;                   /* latest reading (a reference), or NULL */
    hub_msg *alarms[LIVE_ALARMS_MAX]; /* open alarms (HUB_ALARM references), or NULL */
    hub_msg *scored;                 /* latest reading carrying a "news2" member (a reference), or NULL */
} live_device;

typedef struct live live;

/* owner: the thread that may call in (NULL: not checked). NULL on ENOMEM. */
live *live_create(const thread_owner *owner);
void live_destroy(live *l); /* NULL-safe */

/* The "completeness" field of DEVICE objects; unset (annotate NULL): null.
 * Set before the owner thread starts. */
void live_set_annotator(live *l, vigil_annotator a);

/* Adds or refreshes a device as the store knows it (startup). 0, or -1 on
 * allocation failure. */
int live_load_device(live *l, const struct store_device *d);

/* Applies a message: creates the device on first sight (first_seen = the
 * message's received_ms), moves last_seen forward, and for a reading makes
 * it "last" (receive order: the table mirrors what the live stream showed);
 * for a status sets online (status_ms when it changes) and fw/interval/boot
 * when present; a reading whose news2_len is set also becomes the source
 * of the device's "news2" (the alarm engine scores only in-order readings
 * with valid SpO2 and pulse, so that is the engine's current score).
 * Command results only touch last_seen; alarms only the device's open
 * alarms. 0, or -1 on ENOMEM. */
int live_apply(live *l, hub_msg *m);

const live_device *live_find(const live *l, const char *id); /* NULL if unknown */
size_t live_count(const live *l);

/* DEVICE's "news2" is the member of the device's scored reading, or null
 * when none has been seen since start (the score is not stored). */
/* {"devices":[DEVICE...]}, sorted by id. */
void live_devices_json(live *l, sbuf *out);
/* One DEVICE object. 0, or -1 if unknown (nothing appended). */
int live_device_json(live *l, const char *id, sbuf *out);
/* [DEVICE...] sorted by id, only those for which want(ctx, id) is nonzero
 * (want NULL: all). On allocation failure out is marked failed. */
void live_devices_array(live *l, int (*want)(void *ctx, const char *id), void *ctx, sbuf *out);
/* {"alarms":[ALARM...]}: open alarms of every device, highest priority
 * first, then oldest. A HUB_ALARM message replaces the alarm with its id
 * (or adds it); one with alarm_open 0 removes it. */
void live_alarms_json(live *l, sbuf *out);
/* The device holding open alarm alarm_id: 0 and id copied, or -1. */
int live_alarm_device(live *l, uint64_t alarm_id, char *id);

#endif
