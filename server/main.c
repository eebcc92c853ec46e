/* vigild — Vigil's backend daemon. main wires the modules through narrow
 * ports (docs/ARCHITECTURE.md, "Wiring") and owns the start and stop order.
 *
 * Threads (docs/ARCHITECTURE.md has the picture):
 *   main    parses the config, starts the others, waits for SIGINT/SIGTERM,
 *           then stops them in dependency order;
 *   ingest  the MQTT client: validation, enrichment, completeness decisions
 *           carried out (ingest.c, tracker.c);
 *   web     libwebsockets: REST, static files, the hub's live model and
 *           WebSocket fan-out (web.c, hub.c, live.c, fanout.c);
 *   query   REST reads: history, completeness (query.c);
 *   store   the SQLite writer (store_sqlite_writer.c);
 *   cluster several instances on one PostgreSQL only: bucket ownership
 *           (cluster.c), started before the ingest thread (which waits,
 *           bounded, for our share), frozen first and stopped last.
 * Start: store → hub (filled from the store) → tracker (rebuilt from the
 * store) → ingest created (no thread) → web (sets the hub's waker, starts
 * the query worker) → ingest thread. Nothing is posted before the waker.
 * Shutdown: stop intake first (MQTT disconnect: the broker keeps our session
 * and queues what arrives), then close clients, then flush the store. */
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <sodium.h>

#include "admin_cli.h"
#include "config.h"
#include "alarm.h"
#include "cluster.h"
#include "hub.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_pg.h"
#include "vclock.h"
#include "tracker.h"
#include "web.h"

#define TAG "main"
#define HUB_INBOX 65536
#define MAIN_CLUSTER_WAIT_MS 5000

/* Fills the live model from the store's devices (startup, before the web
 * thread). */
static int main__load_hub(hub *h, const store_device *devs, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = hub_load_device(h, &devs[i]);
    if (rc == 0)
        LOG_I(TAG, "loaded %zu devices from the store", hub_device_count(h));
    return rc;
}

typedef struct main__settings_ctx {
    ingest *in;
    int failed;
} main__settings_ctx;

static void main__settings_one(void *ctx, const char *id, const alarm_settings *s)
{
    main__settings_ctx *c = ctx;
    if (ingest_set_alarm_settings(c->in, id, s) != 0)
        c->failed = 1;
}

/* Alarms open when vigild stopped (kill -9 included): back into the
 * engine with their ids, and into the live model (startup, before the
 * ingest and web threads). Not raised again. Several instances (engine 0):
 * the live model only — each device's owner restores its engine state
 * when it takes the device's bucket (ingest.h). */
static int main__restore_alarms(store *st, ingest *in, hub *h, int engine)
{
    alarm_rec *v = NULL;
    size_t n = 0;
    if (store_load_open_alarms(st, &v, &n) != STORE_OK) {
        LOG_E(TAG, "cannot load the open alarms from the store");
        return -1;
    }
    size_t restored = 0;
    for (size_t i = 0; i < n; i++) {
        if (engine && ingest_restore_alarm(in, &v[i]) != 0) {
            LOG_W(TAG, "alarm %" PRIu64 " of %s not restored", v[i].alarm_id, v[i].device_id);
            continue;
        }
        hub_msg *m = hub_msg_alarm(&v[i], v[i].started_at);
        if (!m || hub_load_alarm(h, m) != 0) {
            free(v);
            LOG_E(TAG, "out of memory restoring the alarms");
            return -1;
        }
        restored++;
    }
    free(v);
    if (n)
        LOG_I(TAG, "restored %zu open alarms from the store", restored);
    main__settings_ctx sc = {.in = in};
    if (engine && (store_load_alarm_settings(st, main__settings_one, &sc) != STORE_OK || sc.failed)) {
        LOG_E(TAG, "cannot load the alarm settings from the store");
        return -1;
    }
    return 0;
}

/* A password in a --db URL is visible to every local user in `ps` and
 * /proc/PID/cmdline. The rest of main reads a private copy of argv; the
 * process's own argv keeps the URL with the password masked. The copy
 * lives as long as the process (static: reachable, not a leak). */
static char **main__private_argv(int argc, char **argv)
{
    static char **copy;
    copy = calloc((size_t)argc + 1, sizeof *copy);
    if (!copy)
        return NULL;
    for (int i = 0; i < argc; i++) {
        copy[i] = argv[i];
        if (!strstr(argv[i], "postgres"))
            continue;
        if (!(copy[i] = strdup(argv[i])))
            return NULL;
        store_pg_hide_password(argv[i]);
    }
    return copy;
}

int main(int argc, char **argv)
{
    if (!(argv = main__private_argv(argc, argv))) {
        fprintf(stderr, "vigild: out of memory\n");
        return 1;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigild: libsodium failed to initialise\n");
        return 1;
    }
    /* `vigild user …` / `vigild token …`: administration, not the daemon. */
    if (admin_cli_wants(argc, argv))
        return admin_cli_run(argc, argv);
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
    cluster *cl = NULL;
    store_device *devs = NULL;
    size_t ndevs = 0;
    char err[256] = "";

    mosquitto_lib_init();
    char db[192]; /* a PostgreSQL URL may hold a password: logs get this name */
    store_pg_log_name(cfg.db, db, sizeof db);
    LOG_I(TAG, "vigild %s starting: broker %s, listen %s, db %s", VIGIL_VERSION, cfg.broker,
          cfg.listen, db);

    store_options so = {
        .path = cfg.db,
        .queue_capacity = (size_t)cfg.store_queue,
        .retention_ms = cfg.retention_s * 1000,
    };
    if (store_open(&so, &st, err, sizeof err) != STORE_OK) {
        LOG_E(TAG, "cannot open the store %s: %s", db, err);
        goto out;
    }
    h = hub_create(&metrics, (size_t)cfg.ws_queue, HUB_INBOX);
    if (!h) {
        LOG_E(TAG, "cannot create the live hub: out of memory");
        goto out;
    }
    if (store_list_devices(st, &devs, &ndevs) != STORE_OK || main__load_hub(h, devs, ndevs) != 0) {
        LOG_E(TAG, "cannot load the devices from the store %s", db);
        goto out;
    }
    /* Completeness: rebuilt from what the store holds, before any thread
     * that uses it runs (tracker.h). */
    /* Several instances share a PostgreSQL store (docs/ARCHITECTURE.md,
     * "Several instances"): each device's stream then belongs to one of
     * them, and its owner loads its state when it takes it over. */
    int clustered = !strcmp(store_engine(st), "postgresql");
    trk = tracker_create(NULL);
    if (!trk || (!clustered && tracker_load(trk, st, vclock_mono_ms()) != 0)) {
        LOG_E(TAG, "cannot start completeness tracking (rebuilding it from %s failed)", db);
        goto out;
    }
    hub_set_annotator(h, tracker_annotator(trk));
    if (ingest_create(&cfg, st, h, &metrics, trk, &in) != 0)
        goto out;
    /* The same devices are known to ingest's admission (--max-devices). */
    for (size_t i = 0; i < ndevs; i++)
        if (ingest_know_device(in, devs[i].id) != 0) {
            LOG_E(TAG, "out of memory loading the known devices");
            goto out;
        }
    free(devs);
    devs = NULL;
    if (main__restore_alarms(st, in, h, !clustered) != 0)
        goto out;
    if (clustered) {
        ingest_set_clustered(in);
        if (cluster_create(cfg.db, cfg.client_id, &metrics, ingest_cluster_port(in), &cl) != CLUSTER_OK) {
            LOG_E(TAG, "cannot set up the cluster: out of memory");
            goto out;
        }
    }
    web_deps deps = {.hub = h, .st = st, .trk = trk, .pub = ingest_publisher(in), .m = &metrics,
                     .alarms = ingest_alarm_port(in)};
    if (web_start(&cfg, &deps, &w) != 0)
        goto out;
    /* Several instances: our share of the buckets before the broker session,
     * so what the broker queued for us while we were away is stored by us,
     * not dropped as another's. Bounded: with the database unreachable the
     * live path starts anyway after MAIN_CLUSTER_WAIT_MS. The changes wait
     * in the ingest's port until its thread applies them. */
    if (cl) {
        if (cluster_start(cl) != CLUSTER_OK)
            goto out;
        struct timespec step = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
        for (int waited = 0; waited < MAIN_CLUSTER_WAIT_MS && !cluster_ready(cl); waited += 50)
            nanosleep(&step, NULL);
        if (!cluster_ready(cl))
            LOG_W(TAG, "cluster not ready after %d ms: starting without owning any device yet",
                  MAIN_CLUSTER_WAIT_MS);
    }
    /* After the web: the hub's waker is set before anything is posted. */
    if (ingest_start(in) != 0)
        goto out;

    int sig = 0;
    sigwait(&sigs, &sig);
    LOG_I(TAG, "%s received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    free(devs);
    cluster_freeze(cl); /* its port is the ingest's: no change reaches it from here on */
    ingest_stop(in);
    web_stop(w); /* its REST calls reach the ingest's ports until here */
    store_close(st); /* flushes everything queued */
    /* Last: our buckets are freed only once what we stored is committed,
     * so the next owner's gap check sees it. */
    cluster_stop(cl);
    ingest_free(in); /* no port user left */
    hub_destroy(h);
    tracker_destroy(trk); /* after both of its users have stopped */
    mosquitto_lib_cleanup();
    if (rc == 0)
        LOG_I(TAG, "stopped cleanly");
    config_free(&cfg);
    return rc;
}
