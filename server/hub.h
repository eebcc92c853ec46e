/* hub — the live side of vigild: the in-memory device table and the fan-out
 * of every accepted message to WebSocket clients.
 *
 * Threads. The ingest thread builds each message once (hub_msg_new + the
 * serialized JSON) and hands it over with hub_post(): a bounded queue,
 * protected by a mutex, with one wake-up of the web thread per empty →
 * non-empty transition. Everything else here — the device table, the
 * clients, their queues — belongs to the web (lws service) thread alone and
 * is only touched from lws callbacks or before the web thread starts.
 *
 * Back-pressure. When the inbox is full, hub_post() drops the message for
 * the live path (counted as vigil_hub_dropped_total; the store still has it).
 * Each client has its own bounded queue of references to shared messages;
 * a client whose queue is full is disconnected (counted as
 * vigil_ws_dropped_clients_total) — it never delays another client and never
 * grows memory. It reconnects and resyncs from the snapshot.
 *
 * Ownership. hub_msg is reference-counted: the inbox, each client queue and
 * the device table (latest reading) each hold a reference. */
#ifndef VIGIL_HUB_H
#define VIGIL_HUB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "sbuf.h"
#include "store.h"
#include "telemetry.h"
#include "tracker.h"

struct lws;

typedef enum hub_kind { HUB_SENSOR_DATA = 0, HUB_DEVICE_STATUS, HUB_COMMAND_RESULT } hub_kind;

typedef struct hub_msg {
    _Atomic uint32_t refs;
    uint8_t kind;                /* hub_kind */
    char device_id[TELEMETRY_ID_MAX + 1];
    uint64_t ingest_ns;          /* CLOCK_MONOTONIC when the MQTT message arrived */
    int64_t received_ms;         /* wall clock, epoch ms */
    telemetry_status status;     /* HUB_DEVICE_STATUS only */
    size_t data_off, data_len;   /* the "data" object inside text */
    size_t len;                  /* bytes of text */
    unsigned char *text;         /* = buf + HUB_PRE: the whole JSON message */
    unsigned char buf[];         /* HUB_PRE bytes of headroom for lws_write, then text, NUL */
} hub_msg;

#define HUB_PRE 16 /* >= LWS_PRE; checked in hub.c */

typedef struct hub hub;

/* Creates the hub. ws_queue: messages per client; inbox: messages between
 * threads. Returns NULL on allocation failure. */
hub *hub_create(vigil_metrics *m, size_t ws_queue, size_t inbox);
void hub_destroy(hub *h);

/* The completeness tracker shown in DEVICE objects ("completeness"); set
 * before the web thread starts, must outlive it. NULL: shown as null. */
void hub_set_tracker(hub *h, tracker *t);
tracker *hub_tracker(hub *h);

/* Fills the device table from the store (startup, before the web thread). */
int hub_load_devices(hub *h, store *st);

/* How the web thread is woken (lws_cancel_service). Set before posting. */
void hub_set_waker(hub *h, void (*wake)(void *), void *arg);

/* Builds a message: {"type":"<type>","data":<data>}; refs = 1. Any thread. */
hub_msg *hub_msg_new(hub_kind kind, const char *device_id, const char *data, size_t data_len);
void hub_msg_unref(hub_msg *m);

/* Hands a message to the web thread (takes the reference). Any thread.
 * Returns 0, or -1 if the inbox was full (message released, counted). */
int hub_post(hub *h, hub_msg *m);

/* ---- web thread only ---- */

/* Moves everything posted into the device table and client queues. */
void hub_drain(hub *h);

/* Per-connection state of a WebSocket client; lives in lws' per-session
 * storage, zeroed by lws. */
typedef struct hub_client hub_client;
size_t hub_client_size(void);

int hub_client_open(hub *h, hub_client *c, struct lws *wsi);   /* queues the snapshot */
void hub_client_close(hub *h, hub_client *c);
/* A text message from the client (subscribe). */
void hub_client_receive(hub *h, hub_client *c, const char *in, size_t len);
/* Writes what is queued while the socket accepts it. Returns -1 to close. */
int hub_client_writable(hub *h, hub_client *c);

/* REST views of the device table: DEVICE objects (docs/PROTOCOL.md). */
void hub_devices_json(hub *h, sbuf *out);                 /* {"devices":[...]} */
int hub_device_json(hub *h, const char *id, sbuf *out);   /* 0, or -1 if unknown */
int hub_device_known(hub *h, const char *id);
size_t hub_device_count(hub *h);

#endif
