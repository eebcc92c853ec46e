/* session — the device's state machine on top of the platform seam.
 *
 * What it does (docs/PROTOCOL.md):
 *  - at init: loads the interval from persistent storage, increments and
 *    persists the boot id (so (boot, seq) is unique across restarts);
 *  - gives the platform its last will (retained {"status":"offline"} on
 *    sensors/esp32/{id}/status) to set before connecting;
 *  - on connect: publishes the retained online status and subscribes to its
 *    config and control topics;
 *  - on each tick: takes a reading when due (seq + 1), stores it in the
 *    flash outbox (as a 32-byte record; the JSON is made from that record
 *    whenever it is sent, so live and replayed bytes are the same),
 *    publishing it first when connected; then replays pending readings,
 *    oldest first, after the fresh one (fresh vitals never wait behind a
 *    backlog), at most `drain_per_tick` per tick and `replay_per_s` per
 *    second (a token bucket, burst one second's worth), so a ward of devices
 *    coming back at once cannot flood the broker or vigild;
 *  - flushes the outbox's page buffer when it is `flush_ms` old, on
 *    disconnect and before a reboot (with an END record: a clean stop);
 *  - at init takes a boot id above both the persisted one and the newest
 *    in flash, and when the previous boot stopped without its END record
 *    (power cut: its unflushed page is lost) says so in the online status
 *    (prev_boot, prev_last_seq) and answers resends for the lost seqs with
 *    `missing`;
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
#define SESSION_REPLAY_PER_S 50u /* backlog drain bound per device */
#define SESSION_FLUSH_MS 10000u  /* oldest unflushed reading at most this old */

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
    uint32_t replay_per_s;          /* backlog replays per second; 0 = SESSION_REPLAY_PER_S */
    uint32_t flush_ms;              /* page buffer age that forces a flush; 0 = SESSION_FLUSH_MS */
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
    uint64_t flush_fail;   /* outbox flash writes that failed */
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
    uint32_t replay_per_s;
    uint32_t flush_ms;
    double tokens;          /* replay token bucket */
    uint64_t tokens_at_ms;
    uint64_t page_since_ms; /* when the oldest unflushed reading was taken */
    bool prev_unclean;      /* the previous boot lost its page buffer */
    uint32_t prev_boot;
    uint32_t prev_last_seq;
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

/* A clean stop (power off, reboot): writes the END record and flushes the
 * outbox, so the next boot knows nothing was left in RAM. */
void session_power_off(session *s);

/* Publishes the retained offline status (graceful shutdown, where the
 * broker would not fire the last will). */
platform_status session_publish_offline(session *s);

#endif
