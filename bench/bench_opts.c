/* bench_opts — see bench_opts.h. */
#include "bench_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const bench_opts bench_opts__defaults = {
    .broker_port = 1883, .devices = 100, .step_s = 10, .warmup_s = 3, .drain_s = 5,
    .qos = 1, .sub_qos = 1, .rkind = BENCH_R_WS, .path = "/ws", .clients = 1,
    .recv_threads = 1,
    .id_prefix = "B", .connect_rate = 2000, .per_worker = 2500, .desat_every_ms = 2000,
};

const char *bench_opts_rkind_name(bench_rkind k)
{
    return k == BENCH_R_MQTT ? "mqtt" : k == BENCH_R_WS ? "ws" : "mqttws";
}

void bench_opts_usage(void)
{
    fprintf(stderr,
            "usage: vigil-bench run [options]    |    vigil-bench relay --broker-port P --listen-port P\n"
            "  --broker-port P     Mosquitto port for the publishers (127.0.0.1)\n"
            "  --devices N         publishing devices (one MQTT connection each)\n"
            "  --rates R1,R2,...   per-device Hz of each measured step (the first also for warm-up)\n"
            "  --step S            seconds per step (default 10)\n"
            "  --warmup S          seconds before the first step (default 3)\n"
            "  --drain S           max seconds to wait for stragglers at the end (default 5)\n"
            "  --qos 0|1           publish QoS (default 1)\n"
            "  --recv mqtt|ws|mqttws  receiver kind (default ws)\n"
            "  --recv-port P       port of the receivers' server\n"
            "  --path /ws          WebSocket path\n"
            "  --token-file FILE   API token sent as Authorization: Bearer by WebSocket receivers\n"
            "  --clients N         receiver connections (default 1)\n"
            "  --recv-threads N    threads the receivers are spread over, client i on thread i mod N\n"
            "                      (default 1; at most 16)\n"
            "  --subscribe MSG     text frame sent after the WebSocket opens\n"
            "  --sub-qos 0|1       subscription QoS of mqtt / mqttws receivers (default 1)\n"
            "  --watch NAME:PID    sample this process' CPU and memory (repeatable)\n"
            "  --per-worker N      publishers per worker process (default 2500)\n"
            "  --ts                payloads carry \"ts\" (epoch ms of the publish)\n"
            "  --desat-devices N   N devices (spread over the fleet) switch to SpO2 80 %% and stay\n"
            "                      there, one every --desat-every-ms (default 2000) after publishing\n"
            "                      starts; their low readings are listed in the JSON (implies --ts)\n"
            "  --desat-after-ms M  the first of them only M ms later (default 0)\n"
            "  --stop-on-fail      ramp: stop after the first step not sustained\n"
            "  --json FILE         write the results here (default stdout)\n"
            "  --label TEXT        label copied into the JSON\n");
}

bench_opts_status bench_opts_parse(bench_opts *o, int argc, char **argv)
{
    *o = bench_opts__defaults;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && (i++, 1))
        if (OPT("--broker-port")) o->broker_port = atoi(v);
        else if (OPT("--devices")) o->devices = atol(v);
        else if (OPT("--rates")) {
            char *dup = strdup(v), *save = NULL;
            o->nrates = 0;
            for (char *t = strtok_r(dup, ",", &save); t && o->nrates < BENCH_MAX_STEPS - 1;
                 t = strtok_r(NULL, ",", &save))
                o->rates[o->nrates++] = atof(t);
            free(dup);
        }
        else if (OPT("--step")) o->step_s = atof(v);
        else if (OPT("--warmup")) o->warmup_s = atof(v);
        else if (OPT("--drain")) o->drain_s = atof(v);
        else if (OPT("--qos")) o->qos = atoi(v);
        else if (OPT("--sub-qos")) o->sub_qos = atoi(v);
        else if (OPT("--recv"))
            o->rkind = !strcmp(v, "mqtt")     ? BENCH_R_MQTT
                       : !strcmp(v, "mqttws") ? BENCH_R_MQTTWS
                                              : BENCH_R_WS;
        else if (OPT("--recv-port")) o->recv_port = atoi(v);
        else if (OPT("--path")) o->path = v;
        else if (OPT("--token-file")) {
            /* A file, not argv: any local user can read a command line. */
            FILE *f = fopen(v, "r");
            if (!f || !fgets(o->token, sizeof o->token, f)) {
                fprintf(stderr, "vigil-bench: cannot read a token from %s\n", v);
                if (f)
                    fclose(f);
                return BENCH_OPTS_EINVAL;
            }
            fclose(f);
            o->token[strcspn(o->token, "\r\n")] = 0;
        }
        else if (OPT("--clients")) o->clients = atol(v);
        else if (OPT("--recv-threads")) o->recv_threads = atoi(v);
        else if (OPT("--subscribe")) o->subscribe_msg = v;
        else if (OPT("--id-prefix")) o->id_prefix = v;
        else if (OPT("--json")) o->json = v;
        else if (OPT("--label")) o->label = v;
        else if (OPT("--connect-rate")) o->connect_rate = atof(v);
        else if (OPT("--per-worker")) o->per_worker = atol(v);
        else if (OPT("--watch")) {
            const char *c = strchr(v, ':');
            if (!c || o->nwatch >= BENCH_MAX_WATCH)
                return BENCH_OPTS_EINVAL;
            snprintf(o->watch[o->nwatch].name, sizeof o->watch[0].name, "%.*s", (int)(c - v), v);
            o->watch[o->nwatch++].pid = atoi(c + 1);
        }
        else if (OPT("--desat-devices")) o->desat_devices = atol(v);
        else if (OPT("--desat-every-ms")) o->desat_every_ms = atof(v);
        else if (OPT("--desat-after-ms")) o->desat_after_ms = atof(v);
        else if (!strcmp(a, "--ts")) o->send_ts = 1;
        else if (!strcmp(a, "--stop-on-fail")) o->stop_on_fail = 1;
        else return BENCH_OPTS_EINVAL;
#undef OPT
    }
    if (!o->nrates || o->devices < 1 || o->clients < 1 || o->recv_port <= 0 || o->step_s <= 0 ||
        o->recv_threads < 1 || o->recv_threads > BENCH_MAX_RECV_THREADS ||
        o->desat_devices < 0 || o->desat_devices > o->devices ||
        o->desat_devices > BENCH_MAX_DESAT || o->desat_every_ms < 0 || o->desat_after_ms < 0)
        return BENCH_OPTS_EINVAL;
    if (o->desat_devices)
        o->send_ts = 1; /* the alarm engine times onset on "ts" */
    return BENCH_OPTS_OK;
}
