/* bench_opts — the command line of `vigil-bench run`: the options struct,
 * its defaults, the parser and the usage text.
 *
 * bench/orchestrate.py builds these command lines, so flag names and
 * meanings are an interface: add flags, do not rename them.
 *
 * Ownership: main owns the one bench_opts; every other part gets it by
 * const pointer. String fields point into argv. Threading: filled before
 * any thread or worker process exists, read-only afterwards. */
#ifndef VIGIL_BENCH_OPTS_H
#define VIGIL_BENCH_OPTS_H

#define BENCH_MAX_STEPS 32
#define BENCH_MAX_WATCH 8
#define BENCH_MAX_RECV_THREADS 16
#define BENCH_MAX_DESAT 64 /* --desat-devices */

typedef enum bench_rkind { BENCH_R_MQTT, BENCH_R_WS, BENCH_R_MQTTWS } bench_rkind;

typedef enum bench_opts_status {
    BENCH_OPTS_OK = 0,
    BENCH_OPTS_EINVAL = -1, /* unknown flag, missing value, or a required option missing */
} bench_opts_status;

typedef struct bench_watch {
    char name[32];
    int pid;
} bench_watch;

typedef struct bench_opts {
    int broker_port;
    long devices;
    double rates[BENCH_MAX_STEPS];
    int nrates;
    double step_s, warmup_s, drain_s;
    int qos, sub_qos;
    bench_rkind rkind;
    int recv_port;
    const char *path;
    char token[128];    /* --token-file: sent as "Authorization: Bearer" on WebSocket upgrades; "" none */
    long clients;
    int recv_threads;     /* --recv-threads: receiver threads the clients are spread over (1..BENCH_MAX_RECV_THREADS) */
    const char *subscribe_msg;
    const char *id_prefix;
    const char *json;
    const char *label;
    double connect_rate;
    int stop_on_fail;
    long per_worker;
    int send_ts;          /* --ts: payloads carry "ts" (epoch ms), as a device with a synced clock */
    long desat_devices;   /* --desat-devices: this many devices go desaturated (SpO2 80 %), implies --ts */
    double desat_every_ms; /* --desat-every-ms: one more of them every M ms after publishing starts */
    double desat_after_ms; /* --desat-after-ms: ... and after this much more (a start-up transient) */
    bench_watch watch[BENCH_MAX_WATCH];
    int nwatch;
} bench_opts;

/* Fills *o with the defaults, then applies argv[1..argc) (argv[0] is the
 * subcommand). Requires --rates and --recv-port, devices, clients, step > 0. */
bench_opts_status bench_opts_parse(bench_opts *o, int argc, char **argv);
/* The usage text, on stderr. */
void bench_opts_usage(void);
/* "mqtt", "ws" or "mqttws", as in --recv and the JSON's "receiver". */
const char *bench_opts_rkind_name(bench_rkind k);

#endif
