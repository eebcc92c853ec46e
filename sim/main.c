/* vigil-sim — a fleet of simulated Vigil wearables over MQTT.
 *
 * main() parses the command line, raises RLIMIT_NOFILE, forks one worker
 * per --per-worker devices (each worker dies with its parent:
 * PR_SET_PDEATHSIG, so kill -9 of vigil-sim drops every connection and the
 * broker fires every last will), forwards SIGINT/SIGTERM to the workers,
 * aggregates their progress lines into one stderr line every few seconds,
 * and writes the final summary (stdout, and JSON with --summary-json).
 *
 * Ownership: the parent owns the pipes and child pids. Threading: none. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "sim.h"

volatile sig_atomic_t sim_stop_requested;

static void sim_main__on_signal(int sig)
{
    (void)sig;
    sim_stop_requested = 1;
}

static void sim_main__usage(FILE *f)
{
    fprintf(f,
        "usage: vigil-sim --broker mqtt://HOST:PORT --devices N --rate HZ [options]\n"
        "  --broker URL        mqtt://127.0.0.1:1883 (default), or mqtts://HOST[:8883]\n"
        "  --tls-ca FILE       CA certificate that verifies the broker (mqtts://;\n"
        "                      default: the system's CAs)\n"
        "  --tls-cert-dir DIR  per-device client certificates DIR/ID.crt + DIR/ID.key\n"
        "                      (scripts/provision-device.sh issue ID writes them)\n"
        "  --tls-cert FILE     one client certificate for every device, with\n"
        "  --tls-key FILE      its key (only where the broker does not bind client\n"
        "                      ids to certificates: devices would displace each other)\n"
        "  --devices N         number of simulated wearables (default 1)\n"
        "  --rate HZ           readings per second per device (default 1)\n"
        "  --duration S        run time in seconds (default 60); always bounded\n"
        "  --prefix P          device id prefix (default ESP32_)\n"
        "  --first-id N        number of the first device (default 1)\n"
        "  --seed N            PRNG seed for the patient models (default 1)\n"
        "  --fidelity F        vitals (model values encoded directly, default) or\n"
        "                      sensor (register models + real drivers + PPG)\n"
        "  --scenario S        NAME[@LO-HI][:START-DUR], repeatable. NAME is one of\n"
        "                      the scenarios below; LO-HI device numbers; START,DUR s;\n"
        "                      or offline=N (off the network for N readings from START,\n"
        "                      sampling into the outbox) or reboot_offline=N,K (the\n"
        "                      same, rebooting after K of them)\n"
        "  --qos 0|1           QoS of readings (default 1)\n"
        "  --keepalive S       MQTT keepalive, >= 5 (default 30)\n"
        "  --summary-json FILE write the final summary as JSON\n"
        "  --clean-exit        on SIGINT/SIGTERM/end just disconnect cleanly (status\n"
        "                      stays as is); default: publish retained offline first\n"
        "  --per-worker N      devices per worker process (default 2000)\n"
        "  --connect-rate N    connects per second per worker (default 500)\n"
        "  --outbox N          flash outbox capacity in readings per device (default\n"
        "                      32385: the firmware's 1 MiB partition, 9 h at 1 Hz)\n"
        "  --flash-dir DIR     keep each device's outbox flash in DIR/ID.flash (created\n"
        "                      erased, reused by the next run: a restart is a reboot);\n"
        "                      default: in memory, lost when vigil-sim exits\n"
        "  --power-cut-at N[@DEV]  cut the power at the Nth flash erase/program of each\n"
        "                      device (or of device number DEV): the step is left\n"
        "                      partial, the device reboots and recovers from its flash\n"
        "  --power-cut-random P  cut the power at any erase/program with probability P\n"
        "  --replay-rate N     backlog replays per second per device after a reconnect\n"
        "                      (default 50, the firmware's)\n"
        "  --verbose           log device-core messages\n"
        "  --help\n");
    fputs(sim_scenario_help(), f);
}

static int sim_main__parse_broker(const char *url, sim_opts *o)
{
    const char *p = url;
    o->tls = false;
    if (!strncmp(p, "mqtt://", 7)) {
        p += 7;
    } else if (!strncmp(p, "mqtts://", 8)) {
        p += 8;
        o->tls = true;
    } else if (strstr(p, "://")) {
        return -1;
    }
    const char *colon = strrchr(p, ':');
    size_t hl = colon ? (size_t)(colon - p) : strlen(p);
    if (hl == 0 || hl >= sizeof o->host)
        return -1;
    memcpy(o->host, p, hl);
    o->host[hl] = '\0';
    o->port = o->tls ? 8883 : 1883;
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if ((*e && strcmp(e, "/")) || port < 1 || port > 65535)
            return -1;
        o->port = (int)port;
    }
    return 0;
}

/* Copies a file or folder name; -1 when empty or too long. */
static int sim_main__path(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, s, n + 1);
    return 0;
}

static int sim_main__num(const char *s, double lo, double hi, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || *e || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* --power-cut-at N[@DEV]: step N (>= 1) of each device, or of number DEV. */
static int sim_main__cut_at(const char *s, sim_opts *o)
{
    char buf[64];
    if (sim_main__path(s, buf, sizeof buf))
        return -1;
    char *at = strchr(buf, '@');
    double n, dev = -1;
    if (at)
        *at = '\0';
    if (sim_main__num(buf, 1, 1e15, &n) || n != floor(n) ||
        (at && (sim_main__num(at + 1, 0, 1e9, &dev) || dev != floor(dev))))
        return -1;
    o->cut_at = (uint64_t)n;
    o->cut_dev = (long)dev;
    return 0;
}

typedef struct child {
    pid_t pid;
    int fd;
    char buf[8192];
    size_t len;
    sim_totals last;
    bool final;
    long first, count;
} child;

typedef struct dev_summary {
    char id[65];
    uint64_t sent, last_seq, acked, dropped, reconnects, pending, readings, resent, power_cuts;
    unsigned long boot;
    char ended[16 * 24]; /* ended boots: BOOT:LASTSEQ,... or - */
} dev_summary;

static dev_summary *g_devs;
static long g_ndevs;

static void sim_main__parse_totals(const char *line, sim_totals *t)
{
    sscanf(line + 2,
           "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
           " %" SCNu64 " %" SCNu64 " %lf",
           &t->sent, &t->acked, &t->readings, &t->dropped, &t->pending, &t->reconnects,
           &t->connected, &t->conn_fail, &t->cmds, &t->first_connect_all_s);
}

static void sim_main__handle_line(child *c, const char *line)
{
    if (line[0] == 'P' || line[0] == 'F') {
        sim_main__parse_totals(line, &c->last);
        c->final = c->final || line[0] == 'F';
    } else if (line[0] == 'D' && g_ndevs >= 0) {
        dev_summary d = {0};
        if (sscanf(line + 2,
                   "%64s %" SCNu64 " %" SCNu64 " %lu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %383s",
                   d.id, &d.sent, &d.last_seq, &d.boot, &d.acked, &d.dropped, &d.reconnects,
                   &d.pending, &d.readings, &d.resent, &d.power_cuts, d.ended) == 12)
            g_devs[g_ndevs++] = d;
    }
}

static void sim_main__read_child(child *c)
{
    ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(c->fd);
            c->fd = -1;
        }
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *start = c->buf, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = '\0';
        sim_main__handle_line(c, start);
        start = nl + 1;
    }
    c->len = (size_t)(c->buf + c->len - start);
    memmove(c->buf, start, c->len);
}

static void sim_main__sum_totals(const child *cs, int n, sim_totals *t)
{
    memset(t, 0, sizeof *t);
    t->first_connect_all_s = 0;
    for (int i = 0; i < n; i++) {
        const sim_totals *c = &cs[i].last;
        t->sent += c->sent;
        t->acked += c->acked;
        t->readings += c->readings;
        t->dropped += c->dropped;
        t->pending += c->pending;
        t->reconnects += c->reconnects;
        t->connected += c->connected;
        t->conn_fail += c->conn_fail;
        t->cmds += c->cmds;
        if (c->first_connect_all_s < 0 || t->first_connect_all_s < 0)
            t->first_connect_all_s = -1;
        else if (c->first_connect_all_s > t->first_connect_all_s)
            t->first_connect_all_s = c->first_connect_all_s;
    }
}

static uint64_t sim_main__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int sim_main__write_json(const sim_opts *o, const sim_totals *t, double elapsed)
{
    FILE *f = fopen(o->summary_json, "w");
    if (!f) {
        perror("vigil-sim: --summary-json");
        return -1;
    }
    fprintf(f,
            "{\"devices\":%ld,\"rate_hz\":%g,\"duration_s\":%g,\"elapsed_s\":%.3f,\"qos\":%d,"
            "\"fidelity\":\"%s\",\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"readings\":%" PRIu64
            ",\"dropped\":%" PRIu64 ",\"pending\":%" PRIu64 ",\"reconnects\":%" PRIu64
            ",\"connect_failures\":%" PRIu64 ",\"commands\":%" PRIu64 ",\"all_connected_s\":%.3f,"
            "\"per_device\":{",
            o->devices, o->rate_hz, o->duration_s, elapsed, o->qos,
            o->fidelity == SIM_FID_SENSOR ? "sensor" : "vitals", t->sent, t->acked, t->readings,
            t->dropped, t->pending, t->reconnects, t->conn_fail, t->cmds, t->first_connect_all_s);
    for (long i = 0; i < g_ndevs; i++) {
        const dev_summary *d = &g_devs[i];
        fprintf(f,
                "%s\"%s\":{\"sent\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"boot\":%lu,\"acked\":%" PRIu64
                ",\"dropped\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"pending\":%" PRIu64
                ",\"readings\":%" PRIu64 ",\"resent\":%" PRIu64 ",\"power_cuts\":%" PRIu64
                ",\"ended_boots\":[",
                i ? "," : "", d->id, d->sent, d->last_seq, d->boot, d->acked, d->dropped,
                d->reconnects, d->pending, d->readings, d->resent, d->power_cuts);
        /* BOOT:LASTSEQ,... as [[boot, last_seq], ...]: each earlier boot of
         * the run and the last seq it took. */
        const char *p = d->ended;
        for (int k = 0; *p && *p != '-' && k < 16; k++) {
            unsigned long b, q;
            int used = 0;
            if (sscanf(p, "%lu:%lu%n", &b, &q, &used) != 2)
                break;
            fprintf(f, "%s[%lu,%lu]", k ? "," : "", b, q);
            p += used;
            if (*p == ',')
                p++;
        }
        fprintf(f, "]}");
    }
    fprintf(f, "}}\n");
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    sim_opts o = {.port = 1883, .devices = 1, .rate_hz = 1, .duration_s = 60, .seed = 1,
                  .qos = 1, .first_id = 1, .keepalive_s = 30, .per_worker = 2000,
                  .connect_rate = 500, .outbox_cap = 32385, .cut_dev = -1};
    snprintf(o.host, sizeof o.host, "127.0.0.1");
    snprintf(o.prefix, sizeof o.prefix, "ESP32_");
    enum { O_BROKER = 256, O_DEVICES, O_RATE, O_DURATION, O_PREFIX, O_SEED, O_FID, O_SCEN, O_QOS,
           O_SUMMARY, O_FIRST, O_KEEPALIVE, O_CLEAN, O_PERW, O_CRATE, O_OUTBOX, O_VERBOSE, O_HELP,
           O_TLS_CA, O_TLS_DIR, O_TLS_CERT, O_TLS_KEY, O_FLASH_DIR, O_CUT_AT, O_CUT_P, O_REPLAY };
    static const struct option lo[] = {
        {"broker", required_argument, 0, O_BROKER}, {"devices", required_argument, 0, O_DEVICES},
        {"rate", required_argument, 0, O_RATE}, {"duration", required_argument, 0, O_DURATION},
        {"prefix", required_argument, 0, O_PREFIX}, {"seed", required_argument, 0, O_SEED},
        {"fidelity", required_argument, 0, O_FID}, {"scenario", required_argument, 0, O_SCEN},
        {"qos", required_argument, 0, O_QOS}, {"summary-json", required_argument, 0, O_SUMMARY},
        {"first-id", required_argument, 0, O_FIRST}, {"keepalive", required_argument, 0, O_KEEPALIVE},
        {"clean-exit", no_argument, 0, O_CLEAN}, {"per-worker", required_argument, 0, O_PERW},
        {"connect-rate", required_argument, 0, O_CRATE}, {"outbox", required_argument, 0, O_OUTBOX},
        {"verbose", no_argument, 0, O_VERBOSE}, {"help", no_argument, 0, O_HELP},
        {"tls-ca", required_argument, 0, O_TLS_CA}, {"tls-cert-dir", required_argument, 0, O_TLS_DIR},
        {"tls-cert", required_argument, 0, O_TLS_CERT}, {"tls-key", required_argument, 0, O_TLS_KEY},
        {"flash-dir", required_argument, 0, O_FLASH_DIR},
        {"power-cut-at", required_argument, 0, O_CUT_AT},
        {"power-cut-random", required_argument, 0, O_CUT_P},
        {"replay-rate", required_argument, 0, O_REPLAY},
        {0, 0, 0, 0},
    };
    int c;
    double v;
    char err[160];
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case O_BROKER: if (sim_main__parse_broker(optarg, &o)) bad = "--broker"; break;
        case O_DEVICES: if (sim_main__num(optarg, 1, 100000, &v)) bad = "--devices"; else o.devices = (long)v; break;
        case O_RATE: if (sim_main__num(optarg, 1.0 / 3600, 100, &v)) bad = "--rate"; else o.rate_hz = v; break;
        case O_DURATION: if (sim_main__num(optarg, 0.1, 7 * 86400, &v)) bad = "--duration"; else o.duration_s = v; break;
        case O_PREFIX:
            if (strlen(optarg) >= sizeof o.prefix) bad = "--prefix";
            else snprintf(o.prefix, sizeof o.prefix, "%s", optarg);
            break;
        case O_SEED: if (sim_main__num(optarg, 0, 1e18, &v)) bad = "--seed"; else o.seed = (uint64_t)v; break;
        case O_FID:
            if (!strcmp(optarg, "vitals")) o.fidelity = SIM_FID_VITALS;
            else if (!strcmp(optarg, "sensor")) o.fidelity = SIM_FID_SENSOR;
            else bad = "--fidelity";
            break;
        case O_SCEN:
            if (o.nscen >= SIM_MAX_SCENARIOS) bad = "--scenario (too many)";
            else if (sim_scenario_parse(optarg, &o.scen[o.nscen], err, sizeof err)) {
                fprintf(stderr, "vigil-sim: %s\n", err);
                return 2;
            } else o.nscen++;
            break;
        case O_QOS: if (sim_main__num(optarg, 0, 1, &v) || v != floor(v)) bad = "--qos"; else o.qos = (int)v; break;
        case O_SUMMARY:
            if (strlen(optarg) >= sizeof o.summary_json) bad = "--summary-json";
            else snprintf(o.summary_json, sizeof o.summary_json, "%s", optarg);
            break;
        case O_FIRST: if (sim_main__num(optarg, 0, 1e9, &v)) bad = "--first-id"; else o.first_id = (long)v; break;
        case O_KEEPALIVE:
            if (sim_main__num(optarg, 1, 3600, &v)) bad = "--keepalive";
            else if (v < 5) {
                /* libmosquitto refuses keepalives below 5 s (MOSQ_ERR_INVAL). */
                fprintf(stderr, "vigil-sim: --keepalive %g raised to 5 s (libmosquitto minimum)\n", v);
                o.keepalive_s = 5;
            } else o.keepalive_s = (int)v;
            break;
        case O_CLEAN: o.clean_exit = true; break;
        case O_PERW: if (sim_main__num(optarg, 1, 5000, &v)) bad = "--per-worker"; else o.per_worker = (long)v; break;
        case O_CRATE: if (sim_main__num(optarg, 1, 100000, &v)) bad = "--connect-rate"; else o.connect_rate = v; break;
        case O_OUTBOX: if (sim_main__num(optarg, 1, 1000000, &v)) bad = "--outbox"; else o.outbox_cap = (long)v; break;
        case O_VERBOSE: o.verbose = true; break;
        case O_TLS_CA: if (sim_main__path(optarg, o.tls_ca, sizeof o.tls_ca)) bad = "--tls-ca"; break;
        case O_TLS_DIR:
            if (sim_main__path(optarg, o.tls_cert_dir, sizeof o.tls_cert_dir)) bad = "--tls-cert-dir";
            break;
        case O_TLS_CERT: if (sim_main__path(optarg, o.tls_cert, sizeof o.tls_cert)) bad = "--tls-cert"; break;
        case O_TLS_KEY: if (sim_main__path(optarg, o.tls_key, sizeof o.tls_key)) bad = "--tls-key"; break;
        case O_FLASH_DIR:
            if (sim_main__path(optarg, o.flash_dir, sizeof o.flash_dir)) bad = "--flash-dir";
            break;
        case O_CUT_AT:
            if (sim_main__cut_at(optarg, &o)) bad = "--power-cut-at";
            break;
        case O_CUT_P: if (sim_main__num(optarg, 0, 1, &v)) bad = "--power-cut-random"; else o.cut_p = v; break;
        case O_REPLAY: if (sim_main__num(optarg, 1, 10000, &v)) bad = "--replay-rate"; else o.replay_per_s = (uint32_t)v; break;
        case O_HELP: sim_main__usage(stdout); return 0;
        default: sim_main__usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "vigil-sim: invalid %s '%s'\n", bad, optarg);
            return 2;
        }
    }
    if (optind < argc) {
        sim_main__usage(stderr);
        return 2;
    }
    if (!o.tls && (o.tls_ca[0] || o.tls_cert_dir[0] || o.tls_cert[0] || o.tls_key[0])) {
        fprintf(stderr, "vigil-sim: --tls-* options need an mqtts:// --broker\n");
        return 2;
    }
    if (!o.tls_cert[0] != !o.tls_key[0] || (o.tls_cert[0] && o.tls_cert_dir[0])) {
        fprintf(stderr, "vigil-sim: --tls-cert and --tls-key go together, instead of --tls-cert-dir\n");
        return 2;
    }
    if (o.fidelity == SIM_FID_SENSOR && !sim_sensor_available()) {
        fprintf(stderr, "vigil-sim: --fidelity sensor is not available in this build\n");
        return 2;
    }
    /* Zero-padded ids (ESP32_001 … ESP32_10000) that sort naturally. */
    long last = o.first_id + o.devices - 1;
    o.id_width = 3;
    for (long x = last; x >= 1000; x /= 10)
        o.id_width++;
    if (strlen(o.prefix) + (size_t)o.id_width > 64) {
        fprintf(stderr, "vigil-sim: device ids would exceed 64 characters\n");
        return 2;
    }

    /* ~3 fds per client: take every descriptor we are allowed. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa = {.sa_handler = sim_main__on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    mosquitto_lib_init();

    int nw = (int)((o.devices + o.per_worker - 1) / o.per_worker);
    child *cs = calloc((size_t)nw, sizeof *cs);
    g_devs = calloc((size_t)o.devices, sizeof *g_devs);
    if (!cs || !g_devs) {
        fprintf(stderr, "vigil-sim: out of memory\n");
        return 1;
    }
    pid_t parent = getpid();
    uint64_t t0 = sim_main__now_ms();
    fprintf(stderr, "vigil-sim: %ld devices at %g Hz for %g s, %d worker(s), broker %s:%d\n",
            o.devices, o.rate_hz, o.duration_s, nw, o.host, o.port);
    for (int i = 0; i < nw; i++) {
        int p[2];
        if (pipe(p) < 0) {
            perror("vigil-sim: pipe");
            sim_stop_requested = 1;
            nw = i;
            break;
        }
        cs[i].first = (long)i * o.per_worker;
        cs[i].count = o.devices - cs[i].first < o.per_worker ? o.devices - cs[i].first : o.per_worker;
        cs[i].last.first_connect_all_s = -1;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("vigil-sim: fork");
            close(p[0]);
            close(p[1]);
            sim_stop_requested = 1;
            nw = i;
            break;
        }
        if (pid == 0) {
            /* Die with the parent: a kill -9 of vigil-sim must drop every
             * device's connection so the broker fires the last wills. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            close(p[0]);
            for (int k = 0; k < i; k++)
                if (cs[k].fd >= 0)
                    close(cs[k].fd);
            int rc = sim_worker_run(&o, cs[i].first, cs[i].count, p[1], i);
            close(p[1]);
            mosquitto_lib_cleanup();
            _exit(rc);
        }
        close(p[1]);
        cs[i].pid = pid;
        cs[i].fd = p[0];
    }

    /* Aggregate until every worker has closed its pipe; bounded by the
     * duration plus a grace period, after which workers are killed. */
    uint64_t hard_end = t0 + (uint64_t)(o.duration_s * 1000) + 30000;
    uint64_t next_progress = t0 + 2000;
    bool forwarded = false;
    struct pollfd *pf = calloc((size_t)(nw ? nw : 1), sizeof *pf);
    for (;;) {
        if (sim_stop_requested && !forwarded) {
            for (int i = 0; i < nw; i++)
                kill(cs[i].pid, SIGTERM);
            forwarded = true;
        }
        int open_fds = 0;
        for (int i = 0; i < nw; i++) {
            pf[i].fd = cs[i].fd;
            pf[i].events = POLLIN;
            open_fds += cs[i].fd >= 0;
        }
        if (!open_fds)
            break;
        int n = poll(pf, (nfds_t)nw, 250);
        for (int i = 0; n > 0 && i < nw; i++)
            if (cs[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                sim_main__read_child(&cs[i]);
        uint64_t now = sim_main__now_ms();
        if (now >= next_progress) {
            sim_totals t;
            sim_main__sum_totals(cs, nw, &t);
            fprintf(stderr,
                    "vigil-sim: t=%.0fs connected=%" PRIu64 "/%ld sent=%" PRIu64 " acked=%" PRIu64
                    " pending=%" PRIu64 " dropped=%" PRIu64 " reconnects=%" PRIu64
                    " connect_failures=%" PRIu64 "\n",
                    (double)(now - t0) / 1000.0, t.connected, o.devices, t.sent, t.acked,
                    t.pending, t.dropped, t.reconnects, t.conn_fail);
            next_progress += 2000;
        }
        if (now >= hard_end) {
            fprintf(stderr, "vigil-sim: workers did not finish in time, killing them\n");
            for (int i = 0; i < nw; i++)
                kill(cs[i].pid, SIGKILL);
            break;
        }
    }
    int status = 0;
    for (int i = 0; i < nw; i++) {
        int ws;
        if (waitpid(cs[i].pid, &ws, 0) == cs[i].pid && (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0))
            status = 1;
        if (!cs[i].final)
            status = 1;
    }
    double elapsed = (double)(sim_main__now_ms() - t0) / 1000.0;
    sim_totals t;
    sim_main__sum_totals(cs, nw, &t);
    printf("vigil-sim: done in %.1f s: devices=%ld sent=%" PRIu64 " acked=%" PRIu64
           " readings=%" PRIu64 " dropped=%" PRIu64 " pending=%" PRIu64 " reconnects=%" PRIu64
           " connect_failures=%" PRIu64 " all_connected_s=%.3f\n",
           elapsed, o.devices, t.sent, t.acked, t.readings, t.dropped, t.pending, t.reconnects,
           t.conn_fail, t.first_connect_all_s);
    if (o.summary_json[0] && sim_main__write_json(&o, &t, elapsed) != 0)
        status = 1;
    free(pf);
    free(cs);
    free(g_devs);
    mosquitto_lib_cleanup();
    return status;
}
