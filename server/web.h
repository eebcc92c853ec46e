/* web — vigild's HTTP side on libwebsockets: REST API, /healthz, /metrics,
 * the dashboard's static files and the /ws WebSocket (handed to the hub).
 *
 * Threads: web_start() creates the lws context and runs its service loop on
 * a thread of its own; every lws callback, and so every hub_* call but
 * hub_post, runs there. web_stop() (from the starting thread) ends the loop,
 * closes every connection and joins. Borrowed pointers must outlive it. */
#ifndef VIGIL_WEB_H
#define VIGIL_WEB_H

#include "config.h"
#include "hub.h"
#include "ingest.h"
#include "metrics.h"
#include "store.h"

typedef struct web web;

int web_start(const vigil_config *cfg, hub *h, store *st, ingest *in, vigil_metrics *m, web **out);
/* The ingest starts after the web (it needs the hub's waker); web handlers
 * answer 503 for publishes until it is set. */
void web_set_ingest(web *w, ingest *in);
void web_stop(web *w);

#endif
