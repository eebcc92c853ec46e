/* vigild — Vigil's backend daemon.
 *
 * Threads (docs/ARCHITECTURE.md has the picture):
 *   main    parses the config, starts the others, waits for SIGINT/SIGTERM,
 *           then stops them in dependency order;
 *   ingest  the MQTT client: validation, enrichment (ingest.c);
 *   web     libwebsockets: REST, static files, WebSocket fan-out (web.c, hub.c);
 *   store   the SQLite writer (store_sqlite.c).
 * Shutdown: stop intake first (MQTT disconnect: the broker keeps our session
 * and queues what arrives), then close clients, then flush the store. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#include "config.h"
#include "hub.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "vclock.h"
#include "tracker.h"
#include "web.h"

#define TAG "main"
#define HUB_INBOX 65536

int main(int argc, char **argv)
{
    vigil_config cfg;
    config_result cr = config_load(&cfg, argc, argv);
    if (cr != CONFIG_OK) {
        config_free(&cfg);
        return cr == CONFIG_EXIT_OK ? 0 : 2;
    }

    /* Signals are taken synchronously by sigwait() below; every thread
     * created from here on inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Messages are malloc'ed and freed at the ingest rate; without a trim
     * threshold glibc hands memory back (madvise) after every burst. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);

    int rc = 1;
    static vigil_metrics metrics;
    store *st = NULL;
    hub *h = NULL;
    web *w = NULL;
    ingest *in = NULL;
    tracker *trk = NULL;
    char err[256] = "";

    mosquitto_lib_init();
    LOG_I(TAG, "vigild %s starting: broker %s, listen %s, db %s", VIGIL_VERSION, cfg.broker,
          cfg.listen, cfg.db);

    store_options so = {
        .path = cfg.db,
        .queue_capacity = (size_t)cfg.store_queue,
        .retention_ms = cfg.retention_s * 1000,
    };
    if (store_open(&so, &st, err, sizeof err) != STORE_OK) {
        LOG_E(TAG, "cannot open the store %s: %s", cfg.db, err);
        goto out;
    }
    h = hub_create(&metrics, (size_t)cfg.ws_queue, HUB_INBOX);
    if (!h || hub_load_devices(h, st) != 0) {
        LOG_E(TAG, "cannot create the live hub");
        goto out;
    }
    /* Completeness: rebuilt from what the store holds, before any thread
     * that uses it runs (tracker.h). */
    trk = tracker_create(NULL);
    if (!trk || tracker_load(trk, st, vclock_mono_ms()) != 0) {
        LOG_E(TAG, "cannot start completeness tracking");
        goto out;
    }
    hub_set_tracker(h, trk);
    if (ingest_create(&cfg, st, h, &metrics, trk, &in) != 0)
        goto out;
    if (web_start(&cfg, h, st, in, &metrics, &w) != 0)
        goto out;
    if (ingest_start(in) != 0)
        goto out;

    int sig = 0;
    sigwait(&sigs, &sig);
    LOG_I(TAG, "%s received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    ingest_stop(in);
    web_stop(w);
    store_close(st); /* flushes everything queued */
    hub_destroy(h);
    tracker_destroy(trk); /* after both of its users have stopped */
    mosquitto_lib_cleanup();
    if (rc == 0)
        LOG_I(TAG, "stopped cleanly");
    config_free(&cfg);
    return rc;
}
