/* ingest — vigild's MQTT side: one thread that owns the libmosquitto client,
 * drives it from its own poll() loop (not mosquitto_loop_start, whose
 * select() breaks past 1024 fds), validates every message (telemetry_*),
 * enriches it once, and hands it to the store and to the hub. It also
 * carries out the completeness tracker's decisions (tracker.h): it feeds
 * the tracker, and after the tracker's lock is dropped publishes the resend
 * commands, persists lost ranges, counts and logs.
 *
 * Threads: ingest_create() and ingest_start() from main; the ingest thread
 * runs everything that touches the client. ingest_publish() (and the
 * publisher port) may be called from any thread — it queues the publish and
 * wakes the loop through an eventfd. ingest_stop() and ingest_free() from
 * the thread that started it.
 *
 * Publish queue: a ring of PUBQ_CAP requests. When full, ingest_publish
 * answers PUBLISH_EFULL and queues nothing (the REST API answers 503, retry
 * later); when the broker is away, PUBLISH_ENOTCONN.
 *
 * Delivery: subscriptions are QoS 1 on a persistent session (clean start
 * off, session expiry from the config), so readings published while vigild
 * is away are queued by the broker and delivered on reconnect. A reading's
 * PUBACK leaves as its PUBLISH is read (libmosquitto's default) — unless
 * reads are being held (readhold.h): --ingest-hold-us N > 0, or by default
 * ("auto") while readings arrive at 3,000/s or more. Then after a pass that
 * read something the loop waits N µs (auto: 1 ms) before polling the broker
 * socket again, so that readings are read in bursts (fewer wake-ups, up to
 * N µs added latency), and each PUBACK leaves after its reading was handed
 * to the store and the hub, with the rest of its burst's (at most 8 held),
 * in one corked write.
 *
 * Admission: readings and statuses from a device id vigild does not know
 * yet are refused (device_cap / new_device_rate) when --max-devices are
 * known or new ids come faster than --new-devices-per-s (burst
 * --new-devices-burst). Acks: one with a "cmd_id" is accepted only if that
 * command was published to that device in the last 10 minutes and not yet
 * answered (unknown_command otherwise); resend acks are the tracker's.
 *
 * Ownership: cfg, st, hub, m and trk are borrowed and must outlive the
 * ingest. */
#ifndef VIGIL_INGEST_H
#define VIGIL_INGEST_H

#include <stddef.h>

#include "ports.h"

typedef struct ingest ingest;
typedef struct vigil_config vigil_config;
typedef struct vigil_metrics vigil_metrics;
typedef struct store store;
typedef struct hub hub;
typedef struct tracker tracker;

/* Sets everything up (client, queue, eventfd) without starting the thread.
 * trk may be NULL (no completeness tracking); else it is fed from the
 * ingest thread: every reading the store accepts or refuses, resend acks,
 * and a tick every 250 ms. Returns 0, or -1 (logged). */
int ingest_create(const vigil_config *cfg, store *st, hub *h, vigil_metrics *m, tracker *trk,
                  ingest **out);
/* Startup, before ingest_start: a device the store already holds. Known
 * devices are always accepted; new ids only within --max-devices and
 * --new-devices-per-s (admit.h). Returns 0, or -1 (bad id, ENOMEM). */
int ingest_know_device(ingest *in, const char *id);
/* Spawns the ingest thread. Returns 0, or -1 (logged). */
int ingest_start(ingest *in);
/* Disconnects cleanly and joins the thread if started. The publisher,
 * alarm and cluster ports stay safe to call from other threads until
 * ingest_free (they answer "not connected" or queue into rings nobody
 * drains), so main may stop the web thread after the ingest. NULL is
 * allowed. */
void ingest_stop(ingest *in);
/* Frees everything; after ingest_stop and after every thread that holds a
 * port (web, cluster) has stopped. NULL is allowed. */
void ingest_free(ingest *in);

/* Alarms (alarm.h): the engine lives on the ingest thread and sees every
 * admitted reading and status in order, the tracker's lost ranges and the
 * 250 ms tick; its events go to the store (store_put_alarm), the hub
 * (HUB_ALARM) and the broker (alarms/esp32/{id}, retained, QoS 1: that
 * device's open alarms). Startup, before ingest_start: an open alarm from
 * the store, kept with its id (not raised again). 0, or -1. */
typedef struct alarm_rec alarm_rec;
int ingest_restore_alarm(ingest *in, const alarm_rec *a);
/* Startup, before ingest_start: a device's stored alarm settings. 0, or -1. */
typedef struct alarm_settings alarm_settings;
int ingest_set_alarm_settings(ingest *in, const char *id, const alarm_settings *s);
/* The alarm-operations port (ports.h); any thread. */
vigil_alarm_port ingest_alarm_port(ingest *in);

/* Several instances (cluster.h). Startup, before ingest_start: a cluster
 * decides which devices are ours — none until it says so. Every reading
 * still goes live; only an owned device's are stored, tracked and
 * evaluated; the owners' retained alarm lists (alarms/esp32/+) feed the hub
 * for the others, and alarm operations on them are forwarded to their owner
 * (vigil/cluster/alarm-ops). */
void ingest_set_clustered(ingest *in);
/* The port the cluster reports bucket changes to (cluster thread): it only
 * records them and wakes the loop, which applies them — load from the
 * store on a gain, forget on a loss. */
typedef struct cluster_port cluster_port;
cluster_port ingest_cluster_port(ingest *in);

/* The publisher port on this ingest (ports.h); any thread. */
vigil_publisher ingest_publisher(ingest *in);

/* The functions behind the port. */
publish_err ingest_publish(ingest *in, const char *topic, const char *payload, size_t len,
                           int qos, int retain);
int ingest_connected(ingest *in);

#endif
