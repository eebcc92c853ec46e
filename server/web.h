/* web — vigild's HTTP side on libwebsockets: REST API, /healthz, /metrics,
 * the dashboard's static files and the /ws WebSocket (handed to the hub,
 * through the connection port web implements with lws, fanout.h).
 *
 * Threads: web_start() creates the lws context and runs its service loop on
 * a thread of its own, which binds the hub's owner; every lws callback, and
 * so every hub_* call but hub_post, runs there. web_stop() (from the
 * starting thread) ends the loop, closes every connection and joins.
 *
 * Ownership: everything in web_deps is borrowed and must outlive the web;
 * pub.ctx is used for commands, config and /healthz's broker_connected; trk
 * may be NULL (completeness views answer 503). web sets the hub's waker and
 * connection port. */
#ifndef VIGIL_WEB_H
#define VIGIL_WEB_H

#include "ports.h"

typedef struct vigil_config vigil_config;
typedef struct vigil_metrics vigil_metrics;
typedef struct hub hub;
typedef struct store store;
typedef struct tracker tracker;

typedef struct web web;

typedef struct web_deps {
    hub *hub;
    store *st;
    tracker *trk;
    vigil_publisher pub;
    vigil_metrics *m;
    vigil_alarm_port alarms; /* acks and audio pauses (ingest's alarm engine) */
} web_deps;

int web_start(const vigil_config *cfg, const web_deps *deps, web **out);
void web_stop(web *w); /* NULL-safe */

#endif
