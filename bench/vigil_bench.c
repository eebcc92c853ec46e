/* vigil-bench — drives a fleet of MQTT publishers and a set of receivers in
 * one process, and measures what the receivers get.
 *
 *   vigil-bench run   ...   one measurement (publishers + receivers), JSON out
 *   vigil-bench relay ...   the minimal MQTT→WebSocket relay (relay.c)
 *
 * Threads: the publisher thread owns every publisher client (one epoll loop,
 * as vigil-sim does: no mosquitto_loop_start, whose select() breaks past fd
 * 1024); the receiver thread owns every receiver connection; the main thread
 * only paces the steps and samples /proc. They share one table, send_ns[device
 * × seq], written by the publisher just before mosquitto_publish() and read by
 * the receivers: latency is measured against the real send time, kept here,
 * not against a timestamp the subject under test could alter.
 *
 * Message identity is (device, seq): device from the numeric part of the id,
 * seq from the payload. Each receiver has a bitmap of what it has seen, which
 * gives lost and duplicated deliveries per receiver. Every loop is bounded by
 * the step schedule and a drain timeout. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <mosquitto.h>

#include "wsutil.h"

#define MAX_STEPS 32
#define HB 2048                     /* latency histogram buckets */
#define MAX_WATCH 8

#define RLX __ATOMIC_RELAXED
#define LD(x) __atomic_load_n(&(x), RLX)
#define ST(x, v) __atomic_store_n(&(x), (v), RLX)
#define INC(x) __atomic_store_n(&(x), __atomic_load_n(&(x), RLX) + 1, RLX) /* single writer */

enum rkind { R_MQTT, R_WS, R_MQTTWS };

typedef struct opts {
    int broker_port;
    long devices;
    double rates[MAX_STEPS];
    int nrates;
    double step_s, warmup_s, drain_s;
    int qos, sub_qos;
    enum rkind rkind;
    int recv_port;
    const char *path;
    long clients;
    const char *subscribe_msg;
    const char *id_prefix;
    const char *json;
    const char *label;
    double connect_rate;
    int stop_on_fail;
    long per_worker;
    struct { char name[32]; int pid; } watch[MAX_WATCH];
    int nwatch;
} opts;

static opts O = {
    .broker_port = 1883, .devices = 100, .step_s = 10, .warmup_s = 3, .drain_s = 5,
    .qos = 1, .sub_qos = 1, .rkind = R_WS, .path = "/ws", .clients = 1,
    .id_prefix = "B", .connect_rate = 2000, .per_worker = 2500,
};

/* ---- shared state ---- */
static uint64_t *send_ns;           /* [device * maxseq + seq], 0: not sent */
static long maxseq;
static int cur_step;                /* atomic: step index receivers attribute to */
static int recv_stop;               /* atomic */

/* Publishers run in worker processes: libmosquitto holds three descriptors
 * per client (socket + an internal socketpair), so 10,000 devices do not fit
 * one process' open-files limit. The send-time table and these counters are
 * in MAP_SHARED memory, created before fork(); each worker writes only its
 * own slot. */
#define MAX_WORKERS 64
typedef struct wstat {
    uint64_t sent, skipped, connected, disconnects, errors;
    uint64_t pad[3];                /* own cache line */
} wstat;
typedef struct shared {
    double rate;                    /* per-device Hz; 0 stops publishing */
    uint64_t epoch;                 /* bumped by main to re-base the schedule */
    int stop, go;
    wstat w[MAX_WORKERS];
} shared;
static shared *S;
static wstat *W;                    /* this worker's slot */
static long dev_lo, dev_hi;         /* this worker's devices */
static int nworkers;
static pid_t wpid[MAX_WORKERS];

static uint64_t wsum(size_t off)
{
    uint64_t t = 0;
    for (int i = 0; i < nworkers; i++)
        t += __atomic_load_n((uint64_t *)((char *)&S->w[i] + off), RLX);
    return t;
}
#define pub_sent wsum(offsetof(wstat, sent))
#define pub_skipped wsum(offsetof(wstat, skipped))
#define pub_connected wsum(offsetof(wstat, connected))
#define pub_disconnects wsum(offsetof(wstat, disconnects))
#define pub_errors wsum(offsetof(wstat, errors))

/* ---- latency histogram: 32 sub-buckets per power of two, ~3% resolution ---- */
static int hbucket(uint64_t us)
{
    if (us < 32)
        return (int)us;
    int msb = 63 - __builtin_clzll(us);
    int shift = msb - 5;
    int idx = (shift + 1) * 32 + (int)((us >> shift) - 32);
    return idx < HB ? idx : HB - 1;
}

static double hvalue(int idx) /* bucket midpoint, µs */
{
    if (idx < 32)
        return idx;
    int shift = idx / 32 - 1;
    double lo = (double)((uint64_t)(idx % 32 + 32) << shift);
    return lo + (double)(1ull << shift) / 2;
}

static double hpct(const uint64_t *h, double p)
{
    uint64_t tot = 0;
    for (int i = 0; i < HB; i++)
        tot += h[i];
    if (!tot)
        return -1;
    uint64_t want = (uint64_t)ceil(p * (double)tot);
    if (want < 1)
        want = 1;
    uint64_t acc = 0;
    for (int i = 0; i < HB; i++) {
        acc += h[i];
        if (acc >= want)
            return hvalue(i);
    }
    return hvalue(HB - 1);
}

/* ---- receivers ---- */
typedef struct rconn {
    enum rkind kind;
    int idx;
    int fd;
    int state;                      /* 0 connecting, 1 handshake sent, 2 open, 3 ready, 4 closed */
    struct mosquitto *mosq;         /* R_MQTT */
    int mwant;
    unsigned char *rb;              /* receive buffer */
    size_t rlen, rcap;
    unsigned char *msg;             /* fragmented WS message being assembled */
    size_t mlen, mcap;
    unsigned char *mq;              /* MQTT byte stream (R_MQTTWS) */
    size_t mqlen, mqcap;
    uint8_t *seen;                  /* bitmap [device * maxseq + seq] */
    uint64_t uniq, dups, unknown, frames, bytes;
} rconn;

static rconn *R;
static long nready, nclosed;        /* receiver thread writes */
static uint64_t rstep_count[MAX_STEPS + 1];
static uint64_t rhist[MAX_STEPS + 1][HB];
static int rep;

static void grow(unsigned char **b, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 65536;
    while (c < need)
        c *= 2;
    unsigned char *n = realloc(*b, c);
    if (!n) {
        fprintf(stderr, "vigil-bench: out of memory\n");
        exit(1);
    }
    *b = n;
    *cap = c;
}

static void account(rconn *c, long dev, long seq, uint64_t now)
{
    if (dev < 0 || dev >= O.devices || seq < 0 || seq >= maxseq) {
        c->unknown++;
        return;
    }
    size_t k = (size_t)dev * (size_t)maxseq + (size_t)seq;
    uint64_t t = LD(send_ns[k]);
    if (!t) {
        c->unknown++;
        return;
    }
    if (c->seen[k >> 3] & (1u << (k & 7))) {
        c->dups++;
    } else {
        c->seen[k >> 3] |= (uint8_t)(1u << (k & 7));
        c->uniq++;
    }
    int s = LD(cur_step);
    INC(rstep_count[s]);
    uint64_t us = now > t ? (now - t) / 1000 : 0;
    INC(rhist[s][hbucket(us)]);
}

static long parse_num(const char **pp, const char *end)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == ':' || *p == '"'))
        p++;
    while (p < end && (*p < '0' || *p > '9') && *p != '"' && *p != ',' && *p != '}')
        p++; /* the id's prefix letters */
    if (p >= end || *p < '0' || *p > '9') {
        *pp = p;
        return -1;
    }
    long v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    *pp = p;
    return v;
}

/* Finds (device_id, seq) pairs in JSON text — one object or an array of
 * them, compact or with spaces — without a full parse: the receivers must
 * stay cheaper than the subjects they measure. A "type" key starts a new
 * message. Snapshots are not deliveries and are skipped. */
static void scan_json(rconn *c, const char *p, size_t n, long dev_known, uint64_t now)
{
    if (n >= 18 && !memcmp(p, "{\"type\":\"snapshot\"", 18))
        return;
    const char *end = p + n;
    long dev = dev_known, seq = -1;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            break;
        q++;
        const char *ke = memchr(q, '"', (size_t)(end - q));
        if (!ke)
            break;
        size_t kl = (size_t)(ke - q);
        p = ke + 1;
        if (p >= end || (*p != ':' && *p != ' '))
            continue; /* a string value, not a key */
        if (kl == 3 && !memcmp(q, "seq", 3))
            seq = parse_num(&p, end);
        else if (kl == 9 && !memcmp(q, "device_id", 9) && dev_known < 0) {
            dev = parse_num(&p, end);
            if (p < end && *p == '"')
                p++; /* the value's closing quote: keep quote parity */
        }
        else if (kl == 4 && !memcmp(q, "type", 4)) {
            dev = dev_known;
            seq = -1;
        }
        if (dev >= 0 && seq >= 0) {
            account(c, dev, seq, now);
            dev = dev_known;
            seq = -1;
        }
    }
}

static long dev_from_topic(const char *t)
{
    /* sensors/esp32/{id}/data: the id's digits */
    const char *s = strchr(t, '/');
    s = s ? strchr(s + 1, '/') : NULL;
    if (!s)
        return -1;
    const char *e = strchr(s + 1, '/');
    if (!e)
        e = s + strlen(s);
    const char *p = s + 1;
    return parse_num(&p, e);
}

static void rsend(rconn *c, const void *b, size_t n)
{
    /* Tiny control frames only: a short blocking-ish retry is fine. */
    const char *p = b;
    for (int tries = 0; n && tries < 1000; tries++) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) {
                usleep(100);
                continue;
            }
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void ws_send(rconn *c, int op, const void *p, size_t n)
{
    unsigned char buf[1024];
    if (n + 14 > sizeof buf)
        return;
    rsend(c, buf, ws_client_frame(buf, op, p, n));
}

static size_t mqtt_remlen(unsigned char *o, size_t v)
{
    size_t i = 0;
    do {
        unsigned char b = v % 128;
        v /= 128;
        o[i++] = (unsigned char)(b | (v ? 0x80 : 0));
    } while (v);
    return i;
}

static void mqttws_send_connect(rconn *c)
{
    char id[64];
    int il = snprintf(id, sizeof id, "bench-ws-%d-%d", (int)getpid(), c->idx);
    unsigned char p[128];
    size_t o = 0;
    unsigned char vh[10] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0}; /* clean session, no keepalive */
    p[o++] = 0x10;
    o += mqtt_remlen(p + o, 10 + 2 + (size_t)il);
    memcpy(p + o, vh, 10);
    o += 10;
    p[o++] = 0;
    p[o++] = (unsigned char)il;
    memcpy(p + o, id, (size_t)il);
    o += (size_t)il;
    ws_send(c, 2, p, o);
}

static void mqttws_send_subscribe(rconn *c)
{
    const char *t = "sensors/esp32/+/data";
    size_t tl = strlen(t);
    unsigned char p[128];
    size_t o = 0;
    p[o++] = 0x82;
    o += mqtt_remlen(p + o, 2 + 2 + tl + 1);
    p[o++] = 0;
    p[o++] = 1;
    p[o++] = 0;
    p[o++] = (unsigned char)tl;
    memcpy(p + o, t, tl);
    o += tl;
    p[o++] = (unsigned char)O.sub_qos;
    ws_send(c, 2, p, o);
}

static void mqttws_feed(rconn *c, const unsigned char *d, size_t n, uint64_t now)
{
    grow(&c->mq, &c->mqcap, c->mqlen + n);
    memcpy(c->mq + c->mqlen, d, n);
    c->mqlen += n;
    size_t off = 0;
    for (;;) {
        size_t avail = c->mqlen - off;
        if (avail < 2)
            break;
        const unsigned char *p = c->mq + off;
        size_t rl = 0, mul = 1, i = 1;
        int ok = 0;
        for (; i < avail && i < 5; i++) {
            rl += (p[i] & 127) * mul;
            mul *= 128;
            if (!(p[i] & 128)) {
                ok = 1;
                i++;
                break;
            }
        }
        if (!ok || avail < i + rl)
            break;
        const unsigned char *v = p + i;
        int type = p[0] >> 4;
        if (type == 2) { /* CONNACK */
            mqttws_send_subscribe(c);
        } else if (type == 9) { /* SUBACK */
            if (c->state < 3) {
                c->state = 3;
                nready++;
            }
        } else if (type == 3 && rl >= 2) { /* PUBLISH */
            int q = (p[0] >> 1) & 3;
            size_t tl = (size_t)v[0] << 8 | v[1];
            size_t po = 2 + tl + (q ? 2 : 0);
            if (po <= rl) {
                char topic[256];
                size_t cl = tl < sizeof topic - 1 ? tl : sizeof topic - 1;
                memcpy(topic, v + 2, cl);
                topic[cl] = 0;
                scan_json(c, (const char *)v + po, rl - po, dev_from_topic(topic), now);
                if (q == 1) {
                    unsigned char ack[4] = {0x40, 2, v[2 + tl], v[3 + tl]};
                    ws_send(c, 2, ack, 4);
                }
            }
        }
        off += i + rl;
    }
    memmove(c->mq, c->mq + off, c->mqlen - off);
    c->mqlen -= off;
}

static void ws_on_message(rconn *c, int op, const unsigned char *p, size_t n, uint64_t now)
{
    c->frames++;
    if (c->kind == R_MQTTWS) {
        if (op == 2 || op == 0)
            mqttws_feed(c, p, n, now);
        return;
    }
    scan_json(c, (const char *)p, n, -1, now);
}

static void rclose(rconn *c)
{
    if (c->state == 4)
        return;
    epoll_ctl(rep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = 4;
    nclosed++;
}

static void ws_parse(rconn *c, uint64_t now)
{
    size_t off = 0;
    if (c->state == 1) {
        unsigned char *e = memmem(c->rb, c->rlen, "\r\n\r\n", 4);
        if (!e)
            return;
        if (c->rlen < 12 || memcmp(c->rb + 9, "101", 3)) {
            fprintf(stderr, "vigil-bench: receiver %d: handshake refused: %.60s\n", c->idx, c->rb);
            rclose(c);
            return;
        }
        off = (size_t)(e + 4 - c->rb);
        c->state = 2;
        if (c->kind == R_MQTTWS) {
            mqttws_send_connect(c);
        } else {
            if (O.subscribe_msg)
                ws_send(c, 1, O.subscribe_msg, strlen(O.subscribe_msg));
            c->state = 3;
            nready++;
        }
    }
    for (;;) {
        size_t avail = c->rlen - off;
        if (avail < 2)
            break;
        unsigned char *p = c->rb + off;
        int fin = p[0] >> 7, op = p[0] & 15;
        size_t len = p[1] & 127, h = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (size_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
        }
        if (p[1] & 0x80)
            h += 4; /* servers do not mask; tolerate it anyway by skipping the key */
        if (avail < h + len)
            break;
        const unsigned char *d = p + h;
        if (op == 9) {
            ws_send(c, 10, d, len);
        } else if (op == 8) {
            rclose(c);
            return;
        } else if (op == 1 || op == 2 || op == 0) {
            if (fin && c->mlen == 0) {
                ws_on_message(c, op, d, len, now);
            } else {
                grow(&c->msg, &c->mcap, c->mlen + len);
                memcpy(c->msg + c->mlen, d, len);
                c->mlen += len;
                if (fin) {
                    ws_on_message(c, op, c->msg, c->mlen, now);
                    c->mlen = 0;
                }
            }
        }
        off += h + len;
    }
    if (off) {
        memmove(c->rb, c->rb + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void on_mqtt_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    rconn *c = ud;
    c->frames++;
    scan_json(c, msg->payload, (size_t)msg->payloadlen, dev_from_topic(msg->topic), bench_now_ns());
}

static void on_mqtt_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *q)
{
    (void)m; (void)mid; (void)n; (void)q;
    rconn *c = ud;
    if (c->state < 3) {
        c->state = 3;
        nready++;
    }
}

static void on_mqtt_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)ud;
    if (rc == 0)
        mosquitto_subscribe(m, NULL, "sensors/esp32/+/data", O.sub_qos);
}

static void rconn_start(rconn *c)
{
    if (c->kind == R_MQTT) {
        char id[64];
        snprintf(id, sizeof id, "bench-sub-%d-%d", (int)getpid(), c->idx);
        c->mosq = mosquitto_new(id, true, c);
        mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_connect_callback_set(c->mosq, on_mqtt_connect);
        mosquitto_subscribe_callback_set(c->mosq, on_mqtt_subscribe);
        mosquitto_message_callback_set(c->mosq, on_mqtt_message);
        if (mosquitto_connect(c->mosq, "127.0.0.1", O.recv_port, 60) != MOSQ_ERR_SUCCESS) {
            c->state = 4;
            nclosed++;
            return;
        }
        c->fd = mosquitto_socket(c->mosq);
        c->state = 2;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        c->mwant = 1;
        epoll_ctl(rep, EPOLL_CTL_ADD, c->fd, &ev);
        return;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rcv = 1 << 20;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.recv_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->state = 4;
        nclosed++;
        return;
    }
    c->state = 0;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(rep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void ws_handshake(rconn *c)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     O.path, O.recv_port,
                     c->kind == R_MQTTWS ? "Sec-WebSocket-Protocol: mqtt\r\n" : "");
    rsend(c, req, (size_t)n);
    c->state = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(rep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void *recv_thread(void *arg)
{
    (void)arg;
    struct epoll_event evs[512];
    uint64_t misc = 0;
    long started = 0;
    while (!LD(recv_stop)) {
        /* Open connections in bursts so the server's listen backlog holds. */
        for (int k = 0; k < 200 && started < O.clients; k++)
            rconn_start(&R[started++]);
        int n = epoll_wait(rep, evs, 512, 20);
        uint64_t now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            rconn *c = evs[i].data.ptr;
            if (c->state == 4)
                continue;
            if (c->kind == R_MQTT) {
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    if (mosquitto_loop_read(c->mosq, 1) != MOSQ_ERR_SUCCESS) {
                        c->state = 4;
                        nclosed++;
                        continue;
                    }
                if (evs[i].events & EPOLLOUT)
                    mosquitto_loop_write(c->mosq, 1);
                int want = mosquitto_want_write(c->mosq);
                if (want != c->mwant) {
                    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
                    epoll_ctl(rep, EPOLL_CTL_MOD, c->fd, &ev);
                    c->mwant = want;
                }
                continue;
            }
            if (c->state == 0) {
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    rclose(c);
                    continue;
                }
                if (evs[i].events & EPOLLOUT)
                    ws_handshake(c);
                continue;
            }
            /* Drain what is there, bounded per event for fairness. */
            for (int r = 0; r < 4; r++) {
                grow(&c->rb, &c->rcap, c->rlen + 262144);
                ssize_t got = recv(c->fd, c->rb + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                    rclose(c);
                    break;
                }
                if (got < 0)
                    break;
                c->rlen += (size_t)got;
                c->bytes += (uint64_t)got;
                ws_parse(c, now);
                if (c->state == 4 || (size_t)got < 65536)
                    break;
            }
        }
        if (now - misc > 1000000000u) {
            misc = now;
            for (long i = 0; i < started; i++)
                if (R[i].kind == R_MQTT && R[i].state != 4)
                    mosquitto_loop_misc(R[i].mosq);
        }
    }
    return NULL;
}

/* ---- publishers ---- */
typedef struct pdev {
    struct mosquitto *mosq;
    long num;
    int state;                       /* 0 new, 1 connecting, 2 connected, 3 dead */
    int want;
    char topic[96];
} pdev;

static pdev *P;
static int pep;

static void p_on_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    pdev *d = ud;
    if (rc == 0 && d->state == 1) {
        d->state = 2;
        INC(W->connected);
    }
}

static void p_on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    (void)m; (void)rc;
    pdev *d = ud;
    if (d->state == 2) {
        ST(W->connected, LD(W->connected) - 1);
        INC(W->disconnects);
    }
    d->state = 3; /* not reconnected: a bench run is short; the loss shows */
}

static void p_setwant(pdev *d)
{
    int want = mosquitto_want_write(d->mosq);
    if (want != d->want && d->state != 3) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = d};
        epoll_ctl(pep, EPOLL_CTL_MOD, mosquitto_socket(d->mosq), &ev);
        d->want = want;
    }
}

static void *pub_thread(void *arg)
{
    (void)arg;
    struct epoll_event evs[512];
    long nconn = dev_lo;
    uint64_t t0 = bench_now_ns(), misc = t0;
    /* Message m goes to device m % N with seq m / N: one global schedule,
     * O(1) per message whatever the fleet size, and every device publishes
     * at the same per-device rate, phases spread evenly. */
    uint64_t m = 0, m_base = 0, t_base = 0, epoch = 0;
    double rate = 0;
    char payload[512];
    int boot = (int)(time(NULL) % 100000);
    while (!LD(S->stop)) {
        if (getppid() == 1)
            break; /* the parent is gone */
        uint64_t now = bench_now_ns();
        /* connects, paced */
        long allowed = (long)((double)(now - t0) / 1e9 * O.connect_rate) + 50;
        while (nconn < dev_hi && nconn - dev_lo < allowed) {
            pdev *d = &P[nconn++];
            d->state = 1;
            if (mosquitto_connect(d->mosq, "127.0.0.1", O.broker_port, 120) != MOSQ_ERR_SUCCESS) {
                d->state = 3;
                INC(W->errors);
                continue;
            }
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = d};
            d->want = 1;
            epoll_ctl(pep, EPOLL_CTL_ADD, mosquitto_socket(d->mosq), &ev);
        }
        uint64_t e = __atomic_load_n(&S->epoch, __ATOMIC_ACQUIRE);
        if (e != epoch) {
            epoch = e;
            rate = S->rate;
            m_base = m;
            t_base = now;
        }
        if (rate > 0) {
            double per_ns = (double)O.devices * rate / 1e9;
            /* Catch up at most 1 s of schedule; beyond that we are the bottleneck. */
            uint64_t due_upto = m_base + (uint64_t)((double)(now - t_base) * per_ns);
            if (due_upto > m + (uint64_t)(per_ns * 1e9) + 1) {
                uint64_t skip = due_upto - m - (uint64_t)(per_ns * 1e9);
                ST(W->skipped, LD(W->skipped) + skip);
                m += skip;
            }
            while (m < due_upto) {
                long dev = (long)(m % (uint64_t)O.devices);
                long seq = (long)(m / (uint64_t)O.devices);
                m++;
                if (seq >= maxseq) {
                    rate = 0;
                    break;
                }
                if (dev < dev_lo || dev >= dev_hi)
                    continue; /* another worker's device */
                pdev *d = &P[dev];
                if (d->state != 2) {
                    INC(W->skipped);
                    continue;
                }
                int hr = 60 + (int)(seq % 40);
                int n = snprintf(payload, sizeof payload,
                                 "{\"sensor_type\":\"MAX30614\",\"device_id\":\"%s%06ld\","
                                 "\"object_temp\":36.6,\"ambient_temp\":24.1,\"heart_rate\":%d,"
                                 "\"spo2\":98,\"timestamp\":%" PRIu64 ",\"seq\":%ld,\"boot\":%d}",
                                 O.id_prefix, d->num, hr, (now - t0) / 1000000u, seq, boot);
                ST(send_ns[(size_t)dev * (size_t)maxseq + (size_t)seq], bench_now_ns());
                int rc = mosquitto_publish(d->mosq, NULL, d->topic, n, payload, O.qos, false);
                if (rc != MOSQ_ERR_SUCCESS) {
                    ST(send_ns[(size_t)dev * (size_t)maxseq + (size_t)seq], 0);
                    INC(W->errors);
                    continue;
                }
                INC(W->sent);
                p_setwant(d);
            }
        }
        int timeout = 1;
        int n = epoll_wait(pep, evs, 512, timeout);
        for (int i = 0; i < n; i++) {
            pdev *d = evs[i].data.ptr;
            if (d->state == 3)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                if (mosquitto_loop_read(d->mosq, 1) != MOSQ_ERR_SUCCESS) {
                    p_on_disconnect(d->mosq, d, 1);
                    continue;
                }
            if (evs[i].events & EPOLLOUT)
                mosquitto_loop_write(d->mosq, 1);
            if (d->state != 3)
                p_setwant(d);
        }
        if (now - misc > 1000000000u) {
            misc = now;
            for (long i = dev_lo; i < nconn; i++)
                if (P[i].state == 2)
                    mosquitto_loop_misc(P[i].mosq);
        }
    }
    return NULL;
}

/* ---- /proc sampling ---- */
static double proc_cpu_s(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_kb(int pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = atol(line + kl + 1);
            break;
        }
    fclose(f);
    return v;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static void set_rate(double hz)
{
    S->rate = hz;
    __atomic_fetch_add(&S->epoch, 1, __ATOMIC_RELEASE);
}

static volatile sig_atomic_t interrupted;
static void on_sig(int s) { (void)s; interrupted = 1; }

static void usage(void)
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
            "  --clients N         receiver connections (default 1)\n"
            "  --subscribe MSG     text frame sent after the WebSocket opens\n"
            "  --sub-qos 0|1       subscription QoS of mqtt / mqttws receivers (default 1)\n"
            "  --watch NAME:PID    sample this process' CPU and memory (repeatable)\n"
            "  --per-worker N      publishers per worker process (default 2500)\n"
            "  --stop-on-fail      ramp: stop after the first step not sustained\n"
            "  --json FILE         write the results here (default stdout)\n"
            "  --label TEXT        label copied into the JSON\n");
}

static int parse_opts(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && (i++, 1))
        if (OPT("--broker-port")) O.broker_port = atoi(v);
        else if (OPT("--devices")) O.devices = atol(v);
        else if (OPT("--rates")) {
            char *dup = strdup(v), *save = NULL;
            O.nrates = 0;
            for (char *t = strtok_r(dup, ",", &save); t && O.nrates < MAX_STEPS - 1;
                 t = strtok_r(NULL, ",", &save))
                O.rates[O.nrates++] = atof(t);
            free(dup);
        }
        else if (OPT("--step")) O.step_s = atof(v);
        else if (OPT("--warmup")) O.warmup_s = atof(v);
        else if (OPT("--drain")) O.drain_s = atof(v);
        else if (OPT("--qos")) O.qos = atoi(v);
        else if (OPT("--sub-qos")) O.sub_qos = atoi(v);
        else if (OPT("--recv")) O.rkind = !strcmp(v, "mqtt") ? R_MQTT : !strcmp(v, "mqttws") ? R_MQTTWS : R_WS;
        else if (OPT("--recv-port")) O.recv_port = atoi(v);
        else if (OPT("--path")) O.path = v;
        else if (OPT("--clients")) O.clients = atol(v);
        else if (OPT("--subscribe")) O.subscribe_msg = v;
        else if (OPT("--id-prefix")) O.id_prefix = v;
        else if (OPT("--json")) O.json = v;
        else if (OPT("--label")) O.label = v;
        else if (OPT("--connect-rate")) O.connect_rate = atof(v);
        else if (OPT("--per-worker")) O.per_worker = atol(v);
        else if (OPT("--watch")) {
            const char *c = strchr(v, ':');
            if (!c || O.nwatch >= MAX_WATCH)
                return -1;
            snprintf(O.watch[O.nwatch].name, sizeof O.watch[0].name, "%.*s", (int)(c - v), v);
            O.watch[O.nwatch++].pid = atoi(c + 1);
        }
        else if (!strcmp(a, "--stop-on-fail")) O.stop_on_fail = 1;
        else return -1;
#undef OPT
    }
    if (!O.nrates || O.devices < 1 || O.clients < 1 || O.recv_port <= 0 || O.step_s <= 0)
        return -1;
    return 0;
}

typedef struct snap {
    double t, cpu[MAX_WATCH], self_cpu;
    uint64_t sent;
} snap;

static void take(snap *s, uint64_t t0)
{
    s->t = (double)(bench_now_ns() - t0) / 1e9;
    for (int i = 0; i < O.nwatch; i++)
        s->cpu[i] = proc_cpu_s(O.watch[i].pid);
    s->self_cpu = proc_cpu_s(getpid()); /* receivers + control */
    for (int i = 0; i < nworkers; i++)
        s->self_cpu += proc_cpu_s(wpid[i]); /* publishers */
    s->sent = pub_sent;
}

static uint64_t total_uniq(void)
{
    uint64_t u = 0;
    for (long i = 0; i < O.clients; i++)
        u += LD(R[i].uniq);
    return u;
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  [bench] ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "relay"))
        return vigil_relay_main(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "run") || parse_opts(argc - 1, argv + 1)) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    double total = O.warmup_s * O.rates[0];
    for (int i = 0; i < O.nrates; i++)
        total += O.step_s * O.rates[i];
    maxseq = (long)(total * 1.05) + 16;
    size_t tab = (size_t)O.devices * (size_t)maxseq * sizeof *send_ns;
    send_ns = mmap(NULL, tab, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    R = calloc((size_t)O.clients, sizeof *R);
    size_t bm = ((size_t)O.devices * (size_t)maxseq + 7) / 8;
    if (send_ns == MAP_FAILED || S == MAP_FAILED || !R) {
        fprintf(stderr, "vigil-bench: out of memory\n");
        return 1;
    }
    for (long i = 0; i < O.clients; i++) {
        R[i].kind = O.rkind;
        R[i].idx = (int)i;
        R[i].seen = calloc(bm, 1);
        if (!R[i].seen) {
            fprintf(stderr, "vigil-bench: out of memory for bitmaps\n");
            return 1;
        }
    }
    /* Fork the publisher workers before any thread exists (fork() in a
     * threaded process may copy a held lock). They wait for S->go. */
    nworkers = (int)((O.devices + O.per_worker - 1) / O.per_worker);
    if (nworkers > MAX_WORKERS)
        nworkers = MAX_WORKERS;
    long per = (O.devices + nworkers - 1) / nworkers;
    for (int wi = 0; wi < nworkers; wi++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            signal(SIGINT, SIG_IGN); /* the parent stops us through S->stop */
            W = &S->w[wi];
            dev_lo = wi * per;
            dev_hi = dev_lo + per < O.devices ? dev_lo + per : O.devices;
            O.connect_rate /= nworkers;
            mosquitto_lib_init();
            P = calloc((size_t)O.devices, sizeof *P);
            for (long i = dev_lo; i < dev_hi; i++) {
                char id[64];
                P[i].num = i;
                snprintf(id, sizeof id, "bench-pub-%d-%ld", (int)getppid(), i);
                snprintf(P[i].topic, sizeof P[i].topic, "sensors/esp32/%s%06ld/data", O.id_prefix, i);
                P[i].mosq = mosquitto_new(id, true, &P[i]);
                mosquitto_int_option(P[i].mosq, MOSQ_OPT_TCP_NODELAY, 1);
                mosquitto_connect_callback_set(P[i].mosq, p_on_connect);
                mosquitto_disconnect_callback_set(P[i].mosq, p_on_disconnect);
            }
            pep = epoll_create1(0);
            while (!LD(S->go) && !LD(S->stop) && getppid() != 1)
                sleep_s(0.01);
            pub_thread(NULL);
            _exit(0); /* sockets close with the process */
        }
        wpid[wi] = pid;
    }
    mosquitto_lib_init();
    rep = epoll_create1(0);
    uint64_t t0 = bench_now_ns();

    /* 1. receivers connect and subscribe */
    pthread_t rt;
    pthread_create(&rt, NULL, recv_thread, NULL);
    double deadline = 30 + (double)O.clients / 200;
    while (LD(nready) + LD(nclosed) < O.clients && (double)(bench_now_ns() - t0) / 1e9 < deadline && !interrupted)
        sleep_s(0.05);
    long ready = LD(nready);
    progress("%ld/%ld receivers ready in %.1f s", ready, O.clients, (double)(bench_now_ns() - t0) / 1e9);
    sleep_s(0.5); /* let snapshots (vigild) pass before anything is published */

    /* 2. publishers connect */
    uint64_t tc = bench_now_ns();
    ST(S->go, 1);
    deadline = 20 + (double)O.devices / O.connect_rate * 2;
    while ((long)pub_connected + (long)pub_errors < O.devices &&
           (double)(bench_now_ns() - tc) / 1e9 < deadline && !interrupted)
        sleep_s(0.05);
    double connect_s = (double)(bench_now_ns() - tc) / 1e9;
    long connected = (long)pub_connected;
    progress("%ld/%ld publishers connected in %.1f s (%d worker processes)", connected, O.devices, connect_s,
             nworkers);

    /* 3. warm-up, then the steps */
    snap s[MAX_STEPS + 2];
    int nsteps = 0;
    int fail_step = -1;
    take(&s[0], t0);
    set_rate(O.rates[0]);
    ST(cur_step, 0);
    sleep_s(O.warmup_s);
    for (int i = 0; i < O.nrates && !interrupted; i++) {
        take(&s[i + 1], t0);
        set_rate(O.rates[i]);
        ST(cur_step, i + 1);
        sleep_s(O.step_s);
        nsteps = i + 1;
        double offered = (double)(pub_sent - s[i + 1].sent) / O.step_s;
        double per_client = (double)LD(rstep_count[i + 1]) / O.step_s / (double)(ready ? ready : 1);
        progress("step %d: %.0f Hz x %ld dev: offered %.0f msg/s, delivered %.0f msg/s per client",
                 i + 1, O.rates[i], O.devices, offered, per_client);
        if (O.stop_on_fail && per_client < 0.95 * offered) {
            fail_step = i + 1;
            break;
        }
    }
    take(&s[nsteps + 1], t0);
    set_rate(0);
    ST(cur_step, MAX_STEPS); /* drain: late deliveries counted apart */

    /* 4. drain: until every live receiver has everything, no progress, or timeout */
    uint64_t td = bench_now_ns(), last_u = total_uniq(), last_change = td;
    for (;;) {
        sleep_s(0.1);
        uint64_t now = bench_now_ns(), u = total_uniq();
        long live = ready - LD(nclosed);
        if (live < 0)
            live = 0;
        if (u >= pub_sent * (uint64_t)live)
            break;
        if (u != last_u) {
            last_u = u;
            last_change = now;
        }
        if ((double)(now - td) / 1e9 > O.drain_s || (double)(now - last_change) / 1e9 > 2.0 || interrupted)
            break;
    }
    double drain_s = (double)(bench_now_ns() - td) / 1e9;
    ST(S->stop, 1);
    for (int i = 0; i < nworkers; i++)
        waitpid(wpid[i], NULL, 0);
    ST(recv_stop, 1);
    pthread_join(rt, NULL);

    /* 5. results */
    FILE *out = O.json ? fopen(O.json, "w") : stdout;
    if (!out) {
        perror(O.json);
        return 1;
    }
    uint64_t sent = pub_sent, uniq = 0, dups = 0, unknown = 0, frames = 0, bytes = 0;
    for (long i = 0; i < O.clients; i++) {
        uniq += R[i].uniq;
        dups += R[i].dups;
        unknown += R[i].unknown;
        frames += R[i].frames;
        bytes += R[i].bytes;
    }
    uint64_t expected = sent * (uint64_t)(ready ? ready : 0);
    uint64_t lost = expected > uniq ? expected - uniq : 0;
    static uint64_t all[HB];
    uint64_t measured = 0;
    for (int st = 1; st <= nsteps; st++) {
        measured += rstep_count[st];
        for (int b = 0; b < HB; b++)
            all[b] += rhist[st][b];
    }
    double meas_t = s[nsteps + 1].t - s[1].t;
    fprintf(out, "{\n  \"label\": \"%s\",\n", O.label ? O.label : "");
    fprintf(out, "  \"devices\": %ld, \"clients\": %ld, \"receiver\": \"%s\", \"qos\": %d, \"sub_qos\": %d,\n",
            O.devices, O.clients, O.rkind == R_MQTT ? "mqtt" : O.rkind == R_WS ? "ws" : "mqttws", O.qos, O.sub_qos);
    fprintf(out, "  \"receivers_ready\": %ld, \"receivers_closed\": %ld,\n", ready, nclosed);
    fprintf(out, "  \"publishers_connected\": %ld, \"connect_s\": %.2f, \"publisher_disconnects\": %" PRIu64
            ", \"publish_errors\": %" PRIu64 ", \"publish_skipped\": %" PRIu64 ",\n",
            connected, connect_s, pub_disconnects, pub_errors, pub_skipped);
    fprintf(out, "  \"sent\": %" PRIu64 ", \"expected_deliveries\": %" PRIu64 ", \"unique_deliveries\": %" PRIu64
            ", \"lost\": %" PRIu64 ", \"duplicates\": %" PRIu64 ", \"unknown\": %" PRIu64 ",\n",
            sent, expected, uniq, lost, dups, unknown);
    fprintf(out, "  \"frames\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"drain_s\": %.2f, \"fail_step\": %d,\n",
            frames, bytes, drain_s, fail_step);
    fprintf(out, "  \"measured_s\": %.3f, \"offered_msgs_per_s\": %.1f, \"delivered_msgs_per_s_per_client\": %.1f,"
            " \"delivered_msgs_per_s_total\": %.1f,\n",
            meas_t, (double)(s[nsteps + 1].sent - s[1].sent) / meas_t,
            (double)measured / meas_t / (double)(ready ? ready : 1), (double)measured / meas_t);
    fprintf(out, "  \"latency_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f},\n",
            hpct(all, 0.5) / 1000, hpct(all, 0.99) / 1000, hpct(all, 0.999) / 1000, hpct(all, 1.0) / 1000);
    fprintf(out, "  \"bench_cpu_s\": %.2f,\n", s[nsteps + 1].self_cpu - s[1].self_cpu);
    fprintf(out, "  \"watch\": {");
    for (int i = 0; i < O.nwatch; i++) {
        double cpu = s[nsteps + 1].cpu[i] - s[1].cpu[i];
        fprintf(out, "%s\"%s\": {\"pid\": %d, \"cpu_s\": %.3f, \"cpu_us_per_msg\": %.3f, \"cpu_util\": %.3f,"
                " \"vmhwm_kb\": %ld, \"vmrss_kb\": %ld}",
                i ? ", " : "", O.watch[i].name, O.watch[i].pid, cpu,
                s[nsteps + 1].sent > s[1].sent ? cpu * 1e6 / (double)(s[nsteps + 1].sent - s[1].sent) : -1,
                cpu / meas_t, proc_kb(O.watch[i].pid, "VmHWM"), proc_kb(O.watch[i].pid, "VmRSS"));
    }
    fprintf(out, "},\n  \"steps\": [");
    for (int st = 1; st <= nsteps; st++) {
        double dt = s[st + 1].t - s[st].t;
        fprintf(out, "%s\n    {\"rate_hz\": %g, \"offered_msgs_per_s\": %.1f, \"delivered_msgs_per_s_per_client\": %.1f, "
                "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f",
                st > 1 ? "," : "", O.rates[st - 1], (double)(s[st + 1].sent - s[st].sent) / dt,
                (double)rstep_count[st] / dt / (double)(ready ? ready : 1),
                hpct(rhist[st], 0.5) / 1000, hpct(rhist[st], 0.99) / 1000, hpct(rhist[st], 0.999) / 1000,
                hpct(rhist[st], 1.0) / 1000);
        for (int i = 0; i < O.nwatch; i++) {
            double cpu = s[st + 1].cpu[i] - s[st].cpu[i];
            uint64_t ns = s[st + 1].sent - s[st].sent;
            fprintf(out, ", \"%s_cpu_us_per_msg\": %.3f, \"%s_cpu_util\": %.3f", O.watch[i].name,
                    ns ? cpu * 1e6 / (double)ns : -1, O.watch[i].name, cpu / dt);
        }
        fprintf(out, "}");
    }
    fprintf(out, "\n  ]\n}\n");
    if (out != stdout)
        fclose(out);
    progress("sent %" PRIu64 ", lost %" PRIu64 ", dup %" PRIu64 ", p99 %.1f ms, %.0f msg/s per client",
             sent, lost, dups, hpct(all, 0.99) / 1000, (double)measured / meas_t / (double)(ready ? ready : 1));
    /* Disconnecting 10,000 clients one by one is slow and pointless at exit:
     * the kernel closes the sockets. */
    return 0;
}
