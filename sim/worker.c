/* worker — one process driving up to --per-worker simulated devices.
 *
 * One epoll loop, no threads and no mosquitto_loop_start (whose select()
 * breaks past fd 1024). Each device owns a libmosquitto client; its socket
 * is registered for EPOLLIN always and EPOLLOUT only while
 * mosquitto_want_write() says so. The loop wakes at least every 5 ms to run
 * the device sessions (sampling), once a second calls mosquitto_loop_misc
 * (keepalive), paces connects with a token bucket (the broker's listen
 * backlog is 100) and retries failed connects with jittered exponential
 * backoff.
 *
 * A device's socket is closed inside libmosquitto (on error, or after our
 * shutdown()), which also removes it from epoll; the sim_worker__on_disconnect callback
 * therefore only marks it unregistered. Events carry the device pointer,
 * never the fd, so a reused fd number cannot be misattributed.
 *
 * Ownership: the worker allocates every device at start (the device core
 * itself never allocates) and frees them at exit. Threading: none. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "flash.h"
#include "outbox.h"
#include "platform.h"
#include "session.h"
#include "sim.h"

extern volatile sig_atomic_t sim_stop_requested;

enum dev_state { DS_OFF, DS_CONNECTING, DS_CONNECTED, DS_HELD };

#define NONDATA_MIDS 8
#define SIM_BOOTS_KEPT 16 /* ended boots remembered for the summary */

typedef struct sim_dev {
    struct sim_worker *w;
    long num; /* device number, as in the id */
    char id[65];
    struct mosquitto *mosq;
    bool created;
    bool registered;
    bool want_w;
    enum dev_state state;
    uint64_t next_conn_ms;
    uint64_t conn_start_ms;
    uint32_t backoff_ms;
    bool ever_connected;
    uint64_t boot_at_ms;
    bool booted;
    bool reboot_pending;
    uint64_t reboot_at_ms;
    /* platform */
    platform plat;
    uint32_t kv_interval, kv_boot;
    bool has_interval, has_boot;
    session s;
    outbox ob;
    /* The device's flash outbox region (flash.h): kept across simulated
     * reboots like real flash, and across sim restarts with --flash-dir. */
    sim_flash fl;
    bool fl_open;
    uint8_t page[OUTBOX_PAGE_BYTES(OUTBOX_PAGE_RECORDS)];
    /* A count-based outage (scenarios offline / reboot_offline): readings
     * taken since it began, how many it lasts, after how many to reboot. */
    uint32_t outage_done; /* bit per scenario index: already run */
    uint64_t off_taken, off_n, off_k;
    bool off_rebooted;
    /* Ended boots and the last seq each took (the test oracle). */
    uint32_t ended_boot[SIM_BOOTS_KEPT];
    uint32_t ended_seq[SIM_BOOTS_KEPT];
    unsigned nended;
    sim_patient pat;
    sim_sensor *sensor;
    /* counters */
    uint64_t sent, acked, outstanding, reconnects, conn_fail, lost_reboot, identifies;
    int nondata[NONDATA_MIDS];
    int nnondata;
} sim_dev;

typedef struct sim_worker {
    const sim_opts *o;
    int ep;
    uint64_t t0;
    uint64_t now;
    sim_dev *devs;
    long n;
    int out_fd;
    double tokens;
    uint64_t tokens_at;
    double all_connected_s;
    unsigned conn_err_logged;
} sim_worker;

static uint64_t sim_worker__mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the host platform ---- */

static uint64_t sim_worker__p_mono(void *ctx)
{
    sim_dev *d = ctx;
    return d->w->now - d->boot_at_ms;
}

static bool sim_worker__p_wall(void *ctx, uint64_t *ms)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return true;
}

static platform_status sim_worker__p_publish(void *ctx, const char *topic, const void *payload, size_t len,
                                 int qos, bool retain)
{
    sim_dev *d = ctx;
    if (d->state != DS_CONNECTED)
        return PLATFORM_ENOTCONN;
    bool data = topic == d->s.t_data;
    if (data)
        qos = d->w->o->qos;
    int mid = 0;
    int rc = mosquitto_publish(d->mosq, &mid, topic, (int)len, payload, qos, retain);
    if (rc == MOSQ_ERR_NO_CONN)
        return PLATFORM_ENOTCONN;
    if (rc != MOSQ_ERR_SUCCESS)
        return PLATFORM_EIO;
    if (data)
        d->sent++;
    if (qos > 0) {
        d->outstanding++;
        if (!data && d->nnondata < NONDATA_MIDS)
            d->nondata[d->nnondata++] = mid;
    } else if (data) {
        d->acked++; /* QoS 0 has no PUBACK: count it as handed over */
    }
    return PLATFORM_OK;
}

static platform_status sim_worker__p_subscribe(void *ctx, const char *topic, int qos)
{
    sim_dev *d = ctx;
    return mosquitto_subscribe(d->mosq, NULL, topic, qos) == MOSQ_ERR_SUCCESS ? PLATFORM_OK
                                                                             : PLATFORM_EIO;
}

static platform_status sim_worker__p_kv_get(void *ctx, const char *key, uint32_t *v)
{
    sim_dev *d = ctx;
    if (!strcmp(key, PLATFORM_KEY_INTERVAL) && d->has_interval) {
        *v = d->kv_interval;
        return PLATFORM_OK;
    }
    if (!strcmp(key, PLATFORM_KEY_BOOT) && d->has_boot) {
        *v = d->kv_boot;
        return PLATFORM_OK;
    }
    return PLATFORM_ENOTFOUND;
}

static platform_status sim_worker__p_kv_set(void *ctx, const char *key, uint32_t v)
{
    sim_dev *d = ctx;
    if (!strcmp(key, PLATFORM_KEY_INTERVAL)) {
        d->kv_interval = v;
        d->has_interval = true;
    } else if (!strcmp(key, PLATFORM_KEY_BOOT)) {
        d->kv_boot = v;
        d->has_boot = true;
    } else {
        return PLATFORM_EINVAL;
    }
    return PLATFORM_OK;
}

static void sim_worker__p_log(void *ctx, platform_log_level lvl, const char *msg)
{
    sim_dev *d = ctx;
    if (d->w->o->verbose || lvl <= PLATFORM_LOG_ERROR)
        fprintf(stderr, "vigil-sim: %s\n", msg);
}

static void sim_worker__p_reboot(void *ctx)
{
    sim_dev *d = ctx;
    /* Acted on from the loop, not the callback, after the ack is out. */
    d->reboot_pending = true;
    d->reboot_at_ms = d->w->now + 300;
}

static void sim_worker__p_identify(void *ctx)
{
    ((sim_dev *)ctx)->identifies++;
}

static bool sim_worker__dev_sample(void *ctx, tenc_reading *r)
{
    sim_dev *d = ctx;
    sim_worker *w = d->w;
    double run_t = (double)(w->now - w->t0) / 1000.0;
    double up_t = (double)(w->now - d->boot_at_ms) / 1000.0;
    unsigned act = sim_scenarios_active(w->o, d->num, run_t);
    if (d->sensor)
        return sim_sensor_read(d->sensor, &d->pat, act, up_t, r);
    sim_patient_step(&d->pat, up_t, act);
    sim_patient_reading(&d->pat, act, r);
    return true;
}

/* ---- epoll bookkeeping ---- */

static void sim_worker__dev_sync(sim_dev *d)
{
    sim_worker *w = d->w;
    int fd = d->created ? mosquitto_socket(d->mosq) : -1;
    if (fd < 0) {
        d->registered = false;
        return;
    }
    bool want = mosquitto_want_write(d->mosq);
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = d};
    if (!d->registered) {
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0 &&
            (errno != EEXIST || epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev) < 0))
            return;
        d->registered = true;
        d->want_w = want;
    } else if (want != d->want_w) {
        if (epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev) == 0)
            d->want_w = want;
    }
}

/* Breaks the TCP connection without DISCONNECT, like a Wi-Fi drop: the
 * broker then publishes the last will. libmosquitto notices on the next
 * read and runs sim_worker__on_disconnect. */
static void sim_worker__dev_drop(sim_dev *d)
{
    int fd = mosquitto_socket(d->mosq);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static uint32_t sim_worker__jitter(sim_dev *d, uint32_t ms)
{
    return (uint32_t)((double)ms * sim_rng_range(&d->pat.rng, 0.5, 1.5));
}

static void sim_worker__dev_schedule_reconnect(sim_dev *d)
{
    d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : 250;
    if (d->backoff_ms > 8000)
        d->backoff_ms = 8000;
    d->next_conn_ms = d->w->now + sim_worker__jitter(d, d->backoff_ms);
}

/* ---- libmosquitto callbacks ---- */

static void sim_worker__on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    sim_dev *d = obj;
    if (rc != 0) {
        d->conn_fail++;
        d->state = DS_CONNECTING; /* the broker closes; sim_worker__on_disconnect reschedules */
        return;
    }
    if (d->ever_connected)
        d->reconnects++;
    d->ever_connected = true;
    d->backoff_ms = 0;
    d->state = DS_CONNECTED;
    /* outstanding/nondata are kept: libmosquitto resends what was in
     * flight when the link dropped, and those PUBACKs still come. */
    session_on_connect(&d->s);
}

static void sim_worker__on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    (void)rc;
    sim_dev *d = obj;
    d->registered = false; /* the socket is already closed */
    if (d->state == DS_CONNECTED)
        session_on_disconnect(&d->s);
    else if (d->state == DS_CONNECTING)
        d->conn_fail++;
    if (d->state != DS_HELD) {
        d->state = DS_OFF;
        sim_worker__dev_schedule_reconnect(d);
    }
}

static void sim_worker__on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    sim_dev *d = obj;
    if (d->outstanding)
        d->outstanding--;
    for (int i = 0; i < d->nnondata; i++) {
        if (d->nondata[i] == mid) {
            d->nondata[i] = d->nondata[--d->nnondata];
            return;
        }
    }
    if (d->w->o->qos > 0)
        d->acked++;
}

static void sim_worker__on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    (void)m;
    sim_dev *d = obj;
    session_on_message(&d->s, msg->topic, msg->payload, msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0);
}

/* Region size for a capacity of `readings`: whole 4 KiB sectors of 127
 * records, plus the one kept erased ahead of the head. */
static uint32_t sim_worker__flash_size(long readings)
{
    long sectors = (readings + 126) / 127 + 1;
    if (sectors < 2)
        sectors = 2;
    return (uint32_t)sectors * 4096u;
}

/* ---- device life cycle ---- */

/* The device's TLS identity: its own certificate from --tls-cert-dir
 * (ID.crt + ID.key, as scripts/provision-device.sh issues them) or the one
 * --tls-cert; the broker is always verified (peer + host name). */
static int sim_worker__dev_tls(sim_dev *d)
{
    const sim_opts *o = d->w->o;
    char crt[sizeof o->tls_cert_dir + 72], key[sizeof o->tls_cert_dir + 72];
    const char *c = NULL, *k = NULL;
    if (o->tls_cert_dir[0]) {
        snprintf(crt, sizeof crt, "%s/%s.crt", o->tls_cert_dir, d->id);
        snprintf(key, sizeof key, "%s/%s.key", o->tls_cert_dir, d->id);
        c = crt;
        k = key;
    } else if (o->tls_cert[0]) {
        c = o->tls_cert;
        k = o->tls_key;
    }
    int rc = mosquitto_tls_set(d->mosq, o->tls_ca[0] ? o->tls_ca : NULL,
                               o->tls_ca[0] ? NULL : "/etc/ssl/certs", c, k, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_opts_set(d->mosq, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "vigil-sim: TLS setup of %s (ca %s, cert %s): %s\n", d->id,
                o->tls_ca[0] ? o->tls_ca : "system", c ? c : "none", mosquitto_strerror(rc));
        return -1;
    }
    return 0;
}

static int sim_worker__dev_mosq_new(sim_dev *d)
{
    d->mosq = mosquitto_new(d->id, true, d);
    if (!d->mosq)
        return -1;
    mosquitto_int_option(d->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(d->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(d->mosq, 100);
    mosquitto_connect_callback_set(d->mosq, sim_worker__on_connect);
    mosquitto_disconnect_callback_set(d->mosq, sim_worker__on_disconnect);
    mosquitto_publish_callback_set(d->mosq, sim_worker__on_publish);
    mosquitto_message_callback_set(d->mosq, sim_worker__on_message);
    return d->w->o->tls ? sim_worker__dev_tls(d) : 0;
}

static int sim_worker__dev_boot(sim_dev *d)
{
    session_config cfg = {
        .device_id = d->id,
        .fw = VIGIL_VERSION,
        .default_interval_ms = (uint32_t)lround(1000.0 / d->w->o->rate_hz),
        .drain_per_tick = 20,
        .replay_per_s = d->w->o->replay_per_s,
        .sample = sim_worker__dev_sample,
        .sample_ctx = d,
    };
    if (cfg.default_interval_ms < SESSION_INTERVAL_MIN_MS)
        cfg.default_interval_ms = SESSION_INTERVAL_MIN_MS;
    if (outbox_init(&d->ob, &d->fl.pf, d->page, OUTBOX_PAGE_RECORDS) != OUTBOX_OK ||
        session_init(&d->s, &d->plat, &d->ob, &cfg) != SESSION_OK)
        return -1;
    d->boot_at_ms = d->w->now;
    d->booted = true;
    return 0;
}

static void sim_worker__dev_connect(sim_dev *d)
{
    sim_worker *w = d->w;
    int rc;
    if (!d->booted && sim_worker__dev_boot(d) != 0) {
        fprintf(stderr, "vigil-sim: cannot start device %s\n", d->id);
        d->state = DS_HELD;
        return;
    }
    d->conn_start_ms = w->now;
    d->state = DS_CONNECTING;
    if (!d->created) {
        rc = mosquitto_will_set(d->mosq, session_lwt_topic(&d->s), (int)strlen(session_lwt_payload()),
                                session_lwt_payload(), 1, true);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_connect_async(d->mosq, w->o->host, w->o->port, w->o->keepalive_s);
        if (rc == MOSQ_ERR_SUCCESS || mosquitto_socket(d->mosq) >= 0)
            d->created = true;
    } else {
        rc = mosquitto_reconnect_async(d->mosq);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        if (!w->conn_err_logged++) /* once per worker: the reason is the same for all */
            fprintf(stderr, "vigil-sim: connect %s: %s\n", d->id,
                    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        d->conn_fail++;
        d->state = DS_OFF;
        sim_worker__dev_schedule_reconnect(d);
        if (mosquitto_socket(d->mosq) < 0)
            d->registered = false;
        return;
    }
    d->registered = false; /* a new socket */
    sim_worker__dev_sync(d);
}

/* A reboot loses RAM: the session, the outbox's page buffer (flushed
 * first: a commanded reboot is a clean stop) and whatever libmosquitto
 * still had queued; the flash outbox survives and is replayed. The client is re-created (mosquitto_destroy closes the
 * socket without DISCONNECT, so the broker publishes the last will, as for
 * a real esp_restart). Called from the loop some time after the command so
 * the ack has been written, like the firmware's 0.5 s grace. */
static int sim_worker__dev_mosq_new(sim_dev *d);

static void sim_worker__dev_reboot(sim_dev *d, bool clean)
{
    if (clean && d->s.connected)
        session_on_disconnect(&d->s);
    if (clean)
        session_power_off(&d->s);
    d->lost_reboot += d->ob.dropped;
    unsigned k = d->nended % SIM_BOOTS_KEPT;
    d->ended_boot[k] = d->s.boot;
    d->ended_seq[k] = (uint32_t)d->s.seq;
    d->nended++;
    /* The power is back for the next boot (a cut left the flash dead). */
    sim_flash_power_on(&d->fl);
    mosquitto_destroy(d->mosq); /* closes the socket; epoll forgets it */
    d->mosq = NULL;
    d->registered = false;
    d->created = false;
    d->outstanding = 0;
    d->nnondata = 0;
    d->booted = false;
    d->reboot_pending = false;
    d->state = DS_HELD;
    d->next_conn_ms = d->w->now + 1500; /* boot time */
    if (sim_worker__dev_mosq_new(d) != 0)
        d->next_conn_ms = UINT64_MAX; /* out of memory: the device stays dead */
}

/* The device's outbox flash: DIR/ID.flash with --flash-dir, else memory;
 * sized like the firmware's partition for --outbox readings. */
static int sim_worker__dev_flash(sim_dev *d)
{
    const sim_opts *o = d->w->o;
    char path[sizeof o->flash_dir + 80];
    if (o->flash_dir[0])
        snprintf(path, sizeof path, "%s/%s.flash", o->flash_dir, d->id);
    if (sim_flash_open(&d->fl, o->flash_dir[0] ? path : NULL, sim_worker__flash_size(o->outbox_cap),
                       4096, 4, o->seed * 2654435761u + (uint64_t)d->num) != SIM_FLASH_OK)
        return -1;
    if (o->cut_dev < 0 || o->cut_dev == d->num)
        d->fl.cut_at = o->cut_at;
    d->fl.cut_p = o->cut_p;
    return 0;
}

/* Begins a count-based outage (offline, reboot_offline) whose window has
 * come, once per scenario and device. */
static void sim_worker__outage_start(sim_dev *d, double run_t)
{
    if (d->off_n)
        return;
    const sim_scenario *sc;
    int i = sim_scenario_outage_due(d->w->o, d->num, run_t, d->outage_done, &sc);
    if (i < 0)
        return;
    d->outage_done |= 1u << i;
    d->off_taken = 0;
    d->off_n = (uint64_t)sc->readings;
    d->off_k = sc->kind == SIM_SC_REBOOT_OFFLINE ? (uint64_t)sc->reboot_after : 0;
    d->off_rebooted = false;
}

/* Counts the readings taken in an outage: reboots after off_k of them
 * (reboot_offline; the device stays off the network), ends it after off_n. */
static void sim_worker__outage_count(sim_dev *d, uint64_t taken)
{
    if (!d->off_n || !taken)
        return;
    d->off_taken += taken;
    if (d->off_k && !d->off_rebooted && d->off_taken >= d->off_k) {
        d->off_rebooted = true;
        sim_worker__dev_reboot(d, true);
    }
    if (d->off_taken >= d->off_n)
        d->off_n = 0; /* back in range: the hold ends, the device reconnects */
}

static void sim_worker__totals(sim_worker *w, sim_totals *t)
{
    memset(t, 0, sizeof *t);
    for (long i = 0; i < w->n; i++) {
        sim_dev *d = &w->devs[i];
        t->sent += d->sent;
        t->acked += d->acked;
        t->readings += d->s.st.readings;
        t->dropped += d->ob.dropped + d->lost_reboot;
        t->pending += outbox_pending(&d->ob);
        t->reconnects += d->reconnects;
        t->connected += d->state == DS_CONNECTED;
        t->conn_fail += d->conn_fail;
        t->cmds += d->s.st.commands + d->s.st.configs;
    }
    t->first_connect_all_s = w->all_connected_s;
}

static void sim_worker__report(sim_worker *w, char tag)
{
    sim_totals t;
    sim_worker__totals(w, &t);
    char line[320];
    int n = snprintf(line, sizeof line,
                     "%c %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                     " %" PRIu64 " %" PRIu64 " %" PRIu64 " %.3f\n",
                     tag, t.sent, t.acked, t.readings, t.dropped, t.pending, t.reconnects,
                     t.connected, t.conn_fail, t.cmds, t.first_connect_all_s);
    if (write(w->out_fd, line, (size_t)n) < 0) {
        /* parent gone: nothing useful left to do with the report */
    }
}

static void sim_worker__io(sim_worker *w, int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(w->ep, evs, 512, timeout_ms);
    w->now = sim_worker__mono_now();
    for (int i = 0; i < n; i++) {
        sim_dev *d = evs[i].data.ptr;
        if (!d->registered)
            continue; /* closed earlier in this batch */
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            mosquitto_loop_read(d->mosq, 1);
        if (d->registered && (evs[i].events & EPOLLOUT))
            mosquitto_loop_write(d->mosq, 1);
        sim_worker__dev_sync(d);
    }
}

static void sim_worker__misc(sim_worker *w)
{
    for (long i = 0; i < w->n; i++) {
        sim_dev *d = &w->devs[i];
        if (!d->registered)
            continue;
        if (d->state == DS_CONNECTING && w->now - d->conn_start_ms > 10000)
            sim_worker__dev_drop(d); /* no CONNACK in 10 s: start over */
        mosquitto_loop_misc(d->mosq);
        sim_worker__dev_sync(d);
    }
}

/* Waits (bounded) until every connected device has no QoS 1 message in
 * flight, so the summary's "sent" is what the broker has. */
static void sim_worker__settle(sim_worker *w, uint64_t max_ms)
{
    uint64_t end = sim_worker__mono_now() + max_ms;
    while (w->now < end) {
        bool busy = false;
        for (long i = 0; i < w->n && !busy; i++)
            busy = w->devs[i].state == DS_CONNECTED && w->devs[i].outstanding > 0;
        if (!busy)
            return;
        sim_worker__io(w, 10);
    }
}

int sim_worker_run(const sim_opts *o, long first_index, long count, int out_fd, int worker_no)
{
    sim_worker w = {.o = o, .n = count, .out_fd = out_fd, .all_connected_s = -1};
    w.ep = epoll_create1(EPOLL_CLOEXEC);
    w.devs = calloc((size_t)count, sizeof *w.devs);
    if (w.ep < 0 || !w.devs) {
        fprintf(stderr, "vigil-sim: worker %d: out of resources\n", worker_no);
        return 1;
    }
    w.t0 = w.now = sim_worker__mono_now();
    w.tokens_at = w.now;
    uint64_t boot_base = (uint64_t)time(NULL); /* a fresh boot id space per run */
    int rc = 0;
    for (long i = 0; i < count; i++) {
        sim_dev *d = &w.devs[i];
        d->w = &w;
        d->num = o->first_id + first_index + i;
        snprintf(d->id, sizeof d->id, "%s%0*ld", o->prefix, o->id_width, d->num);
        d->fl_open = sim_worker__dev_flash(d) == 0;
        sim_patient_init(&d->pat, o->seed * 1000003u + (uint64_t)d->num);
        if (o->fidelity == SIM_FID_SENSOR)
            d->sensor = sim_sensor_new(o->seed * 7919u + (uint64_t)d->num);
        d->plat = (platform){.mono_ms = sim_worker__p_mono, .wall_ms = sim_worker__p_wall,
                             .publish = sim_worker__p_publish, .subscribe = sim_worker__p_subscribe,
                             .kv_get_u32 = sim_worker__p_kv_get, .kv_set_u32 = sim_worker__p_kv_set,
                             .log = sim_worker__p_log, .reboot = sim_worker__p_reboot,
                             .identify = sim_worker__p_identify, .ctx = d};
        d->kv_boot = (uint32_t)boot_base;
        d->has_boot = true;
        if (!d->fl_open || sim_worker__dev_mosq_new(d) != 0 ||
            (o->fidelity == SIM_FID_SENSOR && !d->sensor)) {
            fprintf(stderr, "vigil-sim: worker %d: cannot create device %s\n", worker_no, d->id);
            rc = 1;
            count = w.n = i + 1;
            break;
        }
        /* Power-on spread over the pacing window plus jitter. */
        d->next_conn_ms = w.t0 + (uint64_t)((double)i * 1000.0 / o->connect_rate) +
                          (uint64_t)sim_rng_range(&d->pat.rng, 0, 50);
        d->state = DS_OFF;
    }

    uint64_t end = w.t0 + (uint64_t)(o->duration_s * 1000.0);
    uint64_t next_misc = w.t0 + 1000, next_report = w.t0 + 1000;
    long scan = 0;
    while (rc == 0 && !sim_stop_requested && w.now < end) {
        sim_worker__io(&w, 5);
        double run_t = (double)(w.now - w.t0) / 1000.0;

        /* Connect pacing: a token bucket of connect_rate per second. */
        w.tokens += (double)(w.now - w.tokens_at) * o->connect_rate / 1000.0;
        if (w.tokens > o->connect_rate / 10 + 1)
            w.tokens = o->connect_rate / 10 + 1;
        w.tokens_at = w.now;

        bool all = true;
        for (long k = 0; k < w.n; k++) {
            sim_dev *d = &w.devs[(scan + k) % w.n];
            unsigned act = sim_scenarios_active(o, d->num, run_t);
            sim_worker__outage_start(d, run_t);
            bool hold = (act & (1u << SIM_SC_DISCONNECT)) || d->off_n;
            if (d->fl.cut)
                sim_worker__dev_reboot(d, false); /* lost power (in a callback) */
            if (d->reboot_pending && w.now >= d->reboot_at_ms)
                sim_worker__dev_reboot(d, true);
            /* Held off the network, a device still boots and samples. */
            if (hold && !d->booted && d->state == DS_HELD && w.now >= d->next_conn_ms &&
                sim_worker__dev_boot(d) != 0)
                d->next_conn_ms = UINT64_MAX; /* cannot start: stays dead */
            if (hold && (d->state == DS_CONNECTED || d->state == DS_CONNECTING)) {
                d->state = DS_HELD; /* sim_worker__on_disconnect will leave it held */
                sim_worker__dev_drop(d);
                if (d->s.connected)
                    session_on_disconnect(&d->s);
            } else if (!hold && d->state == DS_HELD && w.now >= d->next_conn_ms) {
                d->state = DS_OFF;
                d->next_conn_ms = w.now;
            }
            if (d->state == DS_OFF && w.now >= d->next_conn_ms && w.tokens >= 1) {
                w.tokens -= 1;
                sim_worker__dev_connect(d);
            }
            if (d->booted && (w.now - d->boot_at_ms >= session_next_due(&d->s) ||
                              (d->s.connected && outbox_pending(&d->ob)))) {
                uint64_t before = d->s.st.readings;
                session_tick(&d->s);
                sim_worker__outage_count(d, d->s.st.readings - before);
                if (d->fl.cut)
                    sim_worker__dev_reboot(d, false); /* lost power mid-write */
                else if (d->registered)
                    sim_worker__dev_sync(d);
            }
            all = all && d->ever_connected;
        }
        scan++;
        if (all && w.all_connected_s < 0)
            w.all_connected_s = (double)(w.now - w.t0) / 1000.0;
        if (w.now >= next_misc) {
            sim_worker__misc(&w);
            next_misc += 1000;
        }
        if (w.now >= next_report) {
            sim_worker__report(&w, 'P');
            next_report += 1000;
        }
    }

    /* Shutdown: let in-flight readings be acknowledged, say offline
     * (unless --clean-exit), disconnect cleanly (no last will). */
    sim_worker__settle(&w, 3000);
    if (!o->clean_exit) {
        for (long i = 0; i < w.n; i++)
            if (w.devs[i].state == DS_CONNECTED) {
                session_publish_offline(&w.devs[i].s);
                sim_worker__dev_sync(&w.devs[i]);
            }
        sim_worker__settle(&w, 2000);
    }
    for (long i = 0; i < w.n; i++) {
        sim_dev *d = &w.devs[i];
        if (d->state == DS_CONNECTED) {
            mosquitto_disconnect(d->mosq);
            sim_worker__dev_sync(d);
        }
    }
    uint64_t flush_end = sim_worker__mono_now() + 1000;
    for (;;) {
        bool busy = false;
        for (long i = 0; i < w.n && !busy; i++)
            busy = w.devs[i].registered && w.devs[i].want_w;
        if (!busy || w.now >= flush_end)
            break;
        sim_worker__io(&w, 10);
    }

    /* Final per-device lines, then the totals. */
    for (long i = 0; i < w.n; i++) {
        sim_dev *d = &w.devs[i];
        char line[256 + SIM_BOOTS_KEPT * 24];
        int n = snprintf(line, sizeof line,
                         "D %s %" PRIu64 " %" PRIu64 " %lu %" PRIu64 " %" PRIu64 " %" PRIu64
                         " %zu %" PRIu64 " %" PRIu64 " %" PRIu64 " ",
                         d->id, d->sent, d->s.seq, (unsigned long)d->s.boot, d->acked,
                         d->ob.dropped + d->lost_reboot, d->reconnects, outbox_pending(&d->ob),
                         d->s.st.readings, d->s.st.resent, d->fl.cuts);
        /* Ended boots, oldest first, as BOOT:LASTSEQ,... ("-": none). */
        unsigned first = d->nended > SIM_BOOTS_KEPT ? d->nended - SIM_BOOTS_KEPT : 0;
        for (unsigned b = first; b < d->nended; b++)
            n += snprintf(line + n, sizeof line - (size_t)n, "%s%lu:%lu", b > first ? "," : "",
                          (unsigned long)d->ended_boot[b % SIM_BOOTS_KEPT],
                          (unsigned long)d->ended_seq[b % SIM_BOOTS_KEPT]);
        n += snprintf(line + n, sizeof line - (size_t)n, "%s\n", d->nended ? "" : "-");
        if (write(out_fd, line, (size_t)n) < 0)
            break;
    }
    sim_worker__report(&w, 'F');
    for (long i = 0; i < w.n; i++) {
        /* The end of the run is a clean stop of every device (END record):
         * with --flash-dir, the next run is its next boot. */
        if (w.devs[i].booted)
            session_power_off(&w.devs[i].s);
        if (w.devs[i].mosq)
            mosquitto_destroy(w.devs[i].mosq);
        sim_sensor_free(w.devs[i].sensor);
        if (w.devs[i].fl_open)
            sim_flash_close(&w.devs[i].fl);
    }
    free(w.devs);
    close(w.ep);
    return rc;
}
