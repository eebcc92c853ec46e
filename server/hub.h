/* hub — the live side of vigild: messages handed over from the ingest
 * thread, applied to the live model (live.h) and fanned out to WebSocket
 * clients (fanout.h). The hub owns one of each and the inbox between them.
 *
 * Threads. The ingest thread builds each message once (hub_msg_new + the
 * serialized JSON) and hands it over with hub_post() (or hub_post_quiet()
 * then one hub_kick() per burst): a bounded queue (a ring under a vmutex)
 * with at most one wake-up of the web thread in flight.
 * Everything else — the live model, the clients, their queues — belongs to
 * the web (lws service) thread alone: it binds the hub's owner when its loop
 * starts (hub_thread_bind) and every "web thread only" entry point below
 * asserts it (debug builds). Before that (set-up by main) and after it is
 * released (tear-down) any thread may call them.
 *
 * Back-pressure. When the inbox is full, hub_post() drops the message for
 * the live path (counted as vigil_hub_dropped_total; the store still has it).
 * A client whose own queue is full is resynced (its queue dropped, a resync
 * message and a snapshot sent) or, if it is not reading, disconnected
 * (fanout.h).
 *
 * Ownership. hub_msg is reference-counted: the inbox, each client queue and
 * the live model (latest reading) each hold a reference. */
#ifndef VIGIL_HUB_H
#define VIGIL_HUB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ports.h"
#include "telemetry.h"

typedef struct sbuf sbuf;
typedef struct vigil_metrics vigil_metrics;
typedef struct fanout_conn_ops fanout_conn_ops;
struct store_device;

/* HUB_ALARM: {"type":"alarm","data":ALARM}, sent to every client whatever
 * its device filter (alarms are never filtered away); the live model keeps
 * the device's open alarms from them. */
typedef enum hub_kind { HUB_SENSOR_DATA = 0, HUB_DEVICE_STATUS, HUB_COMMAND_RESULT, HUB_ALARM } hub_kind;

typedef struct hub_msg {
    _Atomic uint32_t refs;
    uint8_t kind;                /* hub_kind */
    char device_id[TELEMETRY_ID_MAX + 1];
    uint64_t ingest_ns;          /* CLOCK_MONOTONIC when the MQTT message arrived */
    int64_t received_ms;         /* wall clock, epoch ms */
    telemetry_status status;     /* HUB_DEVICE_STATUS only */
    uint64_t alarm_id;           /* HUB_ALARM only: which alarm */
    uint8_t alarm_open;          /* HUB_ALARM only: 0 once it is cleared */
    uint8_t alarm_priority;      /* HUB_ALARM only: alarm_priority, for sorting */
    int64_t alarm_started;       /* HUB_ALARM only: started_at, for sorting */
    size_t data_off, data_len;   /* the "data" object inside text */
    size_t news2_off, news2_len; /* HUB_SENSOR_DATA: its "news2":{..} member inside text; len 0: none */
    uint32_t nbatch;             /* > 1: text is a JSON array of that many messages, one
                                  * frame shared by every full-stream batch client (fanout) */
    size_t len;                  /* bytes of text */
    unsigned char *text;         /* = buf + HUB_PRE: the whole JSON message */
    unsigned char buf[];         /* HUB_PRE bytes of headroom for lws_write, then text, NUL */
} hub_msg;

#define HUB_PRE 16 /* >= LWS_PRE; checked in web.c */

typedef struct hub hub;

/* Creates the hub. ws_queue: messages per client; inbox: messages between
 * threads. Returns NULL on allocation failure. */
hub *hub_create(vigil_metrics *m, size_t ws_queue, size_t inbox);
void hub_destroy(hub *h);

/* The "completeness" field of DEVICE objects; set before the web thread
 * starts, ctx must outlive it. Unset: shown as null. */
void hub_set_annotator(hub *h, vigil_annotator a);

/* Adds a device as the store knows it (startup, before the web thread).
 * 0, or -1 on allocation failure. */
int hub_load_device(hub *h, const struct store_device *d);

/* How the web thread is woken (lws_cancel_service). Set before posting. */
void hub_set_waker(hub *h, void (*wake)(void *), void *arg);
/* The WebSocket transport (web.c's lws port); set before the web thread
 * starts, ops must outlive the hub's clients. */
void hub_set_conn_ops(hub *h, const fanout_conn_ops *ops);

/* The web thread marks itself the owner at the top of its loop and
 * releases before it returns. */
void hub_thread_bind(hub *h);
void hub_thread_release(hub *h);

/* Builds a message: {"type":"<type>","data":<data>}; refs = 1. Any thread. */
hub_msg *hub_msg_new(hub_kind kind, const char *device_id, const char *data, size_t data_len);
/* {"type":"alarm","data":ALARM} for alarm a (alarm.h), with the HUB_ALARM
 * fields set; received_ms = at. refs = 1; NULL on ENOMEM. Any thread. */
typedef struct alarm_rec alarm_rec;
hub_msg *hub_msg_alarm(const alarm_rec *a, int64_t at);
/* A message whose text is exactly text (error replies); refs = 1. */
hub_msg *hub_msg_text(const char *text, size_t len);
hub_msg *hub_msg_ref(hub_msg *m);
void hub_msg_unref(hub_msg *m); /* NULL-safe */

/* Hands a message to the web thread (takes the reference). Any thread but
 * with the inbox lock not held. Returns 0, or -1 if the inbox was full
 * (message released, counted). */
int hub_post(hub *h, hub_msg *m);
/* hub_post without the wake-up, for a thread posting a burst (ingest: one
 * socket read burst): it calls hub_kick() after the burst (or every few
 * messages of it), so the web thread wakes once per burst and drains it in
 * one pass — bigger shared frames, fewer sends — instead of once per message
 * whenever it had just emptied the inbox. Same return and drop rule. */
int hub_post_quiet(hub *h, hub_msg *m);
/* Wakes the web thread if the inbox holds anything (one wake in flight at
 * most). Any thread, inbox lock not held. */
void hub_kick(hub *h);

/* ---- web thread only ---- */

/* Moves what was posted (up to a batch per call) into the live model and
 * the client queues; wakes itself again if more is left. */
void hub_drain(hub *h);

/* --ws-flush-ms: hold what is posted within ms of the last drain so that it
 * goes out in one pass (fewer wake-ups and sends at light load, up to ms of
 * added latency). 0, the default, drains at every wake. Before the web
 * thread starts. */
void hub_set_flush_window(hub *h, uint32_t ms);
/* What the web thread calls when woken: hub_drain() now and 0, or — inside
 * the flush window, with no backlog — nothing, and the nanoseconds after
 * which the caller must call hub_drain() (posts do not wake it meanwhile). */
uint64_t hub_drain_paced(hub *h, uint64_t now_ns);

/* Per-connection state of a WebSocket client; lives in lws' per-session
 * storage (hub_client_size() bytes). conn is the transport's handle. */
typedef struct fanout_client hub_client;
size_t hub_client_size(void);

int hub_client_open(hub *h, hub_client *c, void *conn);   /* queues the snapshot */
void hub_client_close(hub *h, hub_client *c);
/* A text message from the client (subscribe); now_ms: monotonic clock. */
void hub_client_receive(hub *h, hub_client *c, const char *in, size_t len, int64_t now_ms);
/* Writes what is queued while the socket accepts it. Returns -1 to close. */
int hub_client_writable(hub *h, hub_client *c);

/* REST views of the live model: DEVICE objects (docs/PROTOCOL.md). */
void hub_devices_json(hub *h, sbuf *out);                 /* {"devices":[...]} */
int hub_device_json(hub *h, const char *id, sbuf *out);   /* 0, or -1 if unknown */
int hub_device_known(hub *h, const char *id);
/* {"alarms":[ALARM...]}: every open alarm, highest priority first, then
 * oldest first. */
void hub_alarms_json(hub *h, sbuf *out);
/* The device of an open alarm: 0 and id (TELEMETRY_ID_MAX + 1), or -1. */
int hub_alarm_device(hub *h, uint64_t alarm_id, char *id);
/* Startup (before the web thread): an open alarm restored from the store,
 * as a HUB_ALARM message (takes the reference). 0, or -1. */
int hub_load_alarm(hub *h, hub_msg *m);
size_t hub_device_count(hub *h);

#endif
