/* session — the device's state machine on top of the platform seam.
 *
 * What it does (docs/PROTOCOL.md):
 *  - at init: loads the interval from persistent storage, increments and
 *    persists the boot id (so (boot, seq) is unique across restarts);
 *  - gives the platform its last will (retained {"status":"offline"} on
 *    sensors/esp32/{id}/status) to set before connecting;
 *  - on connect: publishes the retained online status and subscribes to its
 *    config and control topics;
 *  - on each tick: takes a reading when due (seq + 1), publishes it live
 *    when connected or stores it as pending in the outbox, then replays at
 *    most `drain_per_tick` pending readings so fresh vitals are never held
 *    behind a backlog;
 *  - applies config and commands (set_interval, identify, reboot, ping,
 *    resend) from hostile input and answers each on sensors/esp32/{id}/ack.
 *
 * Incoming JSON is read with json_scan.h (no allocation, depth
 * limit, size limit) rather than cJSON so the core never mallocs after init.
 *
 * Ownership: the caller owns the session struct, the platform and the
 * outbox (which must outlive the session). Threading: one task calls every
 * function (on the ESP32 the MQTT event handler posts to that task). */
#ifndef VIGIL_SESSION_H
#define VIGIL_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox.h"
#include "platform.h"
#include "telemetry_enc.h"

#define SESSION_INTERVAL_MIN_MS 10u
#define SESSION_INTERVAL_MAX_MS 3600000u
#define SESSION_DEFAULT_INTERVAL_MS 1000u
#define SESSION_MAX_IN 2048 /* larger config/command payloads are ignored */
#define SESSION_TOPIC_MAX 96

typedef enum session_status {
    SESSION_OK = 0,
    SESSION_EINVAL = -1, /* bad argument (device id, NULL platform function) */
} session_status;

/* Fills the vitals of *r (object/ambient temp, heart rate, SpO2, the valid
 * flags, battery, rssi). The session sets seq, boot, timestamps. Returns
 * false when no reading could be made (it is then skipped, no seq used). */
typedef bool (*session_sample_fn)(void *ctx, tenc_reading *r);

typedef struct session_config {
    const char *device_id;          /* copied */
    const char *fw;                 /* copied, ≤ 32 chars */
    uint32_t default_interval_ms;   /* used when nothing valid is persisted; 0 = 1000 */
    uint32_t drain_per_tick;        /* backlog replays per tick; 0 = 10 */
    session_sample_fn sample;
    void *sample_ctx;
} session_config;

typedef struct session_stats {
    uint64_t readings;     /* readings taken (= last seq) */
    uint64_t live;         /* published at once */
    uint64_t queued;       /* stored as pending because offline */
    uint64_t replayed;     /* pending readings published later */
    uint64_t resent;       /* published again on a resend command */
    uint64_t publish_fail; /* platform refused a publish while connected */
    uint64_t malformed;    /* incoming payloads ignored as unreadable */
    uint64_t configs;      /* config messages applied */
    uint64_t commands;     /* commands answered */
    uint64_t connects;
} session_stats;

typedef struct session {
    const platform *p;
    outbox *ob;
    session_sample_fn sample;
    void *sample_ctx;
    char id[65];
    char fw[33];
    char t_data[SESSION_TOPIC_MAX];
    char t_status[SESSION_TOPIC_MAX];
    char t_ack[SESSION_TOPIC_MAX];
    char t_config[SESSION_TOPIC_MAX];
    char t_control[SESSION_TOPIC_MAX];
    uint32_t interval_ms;
    uint32_t boot;
    uint32_t drain_per_tick;
    uint64_t seq;
    uint64_t next_due_ms;
    bool started;
    bool connected;
    bool reboot_requested;
    session_stats st;
    char scratch[TENC_MAX_LEN];
} session;

/* Loads the persisted interval, bumps and persists the boot id. The
 * platform must provide mono_ms, wall_ms, publish, subscribe, kv_get_u32
 * and kv_set_u32. */
session_status session_init(session *s, const platform *p, outbox *ob, const session_config *cfg);

/* The last will the platform must set before connecting: retained, QoS 1. */
const char *session_lwt_topic(const session *s);
const char *session_lwt_payload(void);

/* Transport events. */
void session_on_connect(session *s);
void session_on_disconnect(session *s);
/* One incoming message; topic NUL-terminated, payload not. */
void session_on_message(session *s, const char *topic, const void *payload, size_t len);

/* Takes a reading when it is due and replays some backlog. Call often
 * (at least every few ms at high rates). */
void session_tick(session *s);
/* Milliseconds (mono_ms clock) at which the next reading is due. */
uint64_t session_next_due(const session *s);

/* Publishes the retained offline status (graceful shutdown, where the
 * broker would not fire the last will). */
platform_status session_publish_offline(session *s);

#endif
