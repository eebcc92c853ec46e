/* bench_recv — see bench_recv.h. */
#include "bench_recv.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <mosquitto.h>

#include "bench_atomic.h"
#include "bench_hist.h"
#include "bench_scan.h"
#include "wsutil.h"

typedef struct bench_recv__conn bench_recv__conn;
typedef struct bench_recv__worker bench_recv__worker;
struct bench_recv__conn {
    bench_rkind kind;
    int idx;
    int fd;
    int state;                      /* 0 connecting, 1 handshake sent, 2 open, 3 ready, 4 closed */
    struct mosquitto *mosq;         /* BENCH_R_MQTT */
    int mwant;
    unsigned char *rb;              /* receive buffer */
    size_t rlen, rcap;
    unsigned char *msg;             /* fragmented WS message being assembled */
    size_t mlen, mcap;
    unsigned char *mq;              /* MQTT byte stream (BENCH_R_MQTTWS) */
    size_t mqlen, mqcap;
    uint8_t *seen;                  /* bitmap, one bit per bench_sendtab slot */
    uint64_t uniq, dups, unknown, frames, bytes;
    bench_recv *r;
    bench_recv__worker *w;          /* the thread that owns it */
};

/* One receiver thread: connections i with i mod nworkers == its index, on
 * its own epoll loop, with its own counters (one writer each: no shared
 * cache line per delivery); main sums them. */
struct bench_recv__worker {
    bench_recv *r;
    int idx;
    int ep;
    pthread_t thread;
    bool running;
    /* This thread writes; main reads (relaxed) while it runs. */
    long nready, nclosed;
    uint64_t step_count[BENCH_MAX_STEPS + 1];
    bench_hist hist[BENCH_MAX_STEPS + 1];
};

struct bench_recv {
    const bench_opts *o;
    const bench_sendtab *tab;
    bench_recv__conn *conns;        /* [o->clients] */
    bench_recv__worker *workers;    /* [o->recv_threads] */
    int nworkers;
    int stop;                       /* atomic; main sets it */
    int cur_step;                   /* atomic; main sets it, receivers attribute to it */
    bench_hist hist[BENCH_MAX_STEPS + 1]; /* the workers' summed, by bench_recv_stop */
};

static void bench_recv__close(bench_recv__conn *c);

/* Makes room for need bytes in one of c's buffers. Out of memory closes the
 * connection (its losses then show in the results) and returns false. */
static bool bench_recv__grow(bench_recv__conn *c, unsigned char **b, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 65536;
    while (n < need)
        n *= 2;
    unsigned char *nb = realloc(*b, n);
    if (!nb) {
        fprintf(stderr, "vigil-bench: receiver %d: out of memory, closing it\n", c->idx);
        bench_recv__close(c);
        return false;
    }
    *b = nb;
    *cap = n;
    return true;
}

static void bench_recv__account(bench_recv__conn *c, long dev, long seq, uint64_t now)
{
    const bench_sendtab *tab = c->r->tab;
    if (dev < 0 || dev >= tab->devices || seq < 0 || seq >= tab->maxseq) {
        c->unknown++;
        return;
    }
    size_t k = bench_sendtab_index(tab, dev, seq);
    uint64_t t = BENCH_LD(tab->ns[k]);
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
    int s = BENCH_LD(c->r->cur_step);
    BENCH_INC(c->w->step_count[s]);
    uint64_t us = now > t ? (now - t) / 1000 : 0;
    BENCH_INC(c->w->hist[s].b[bench_hist_bucket(us)]);
}

/* bench_scan's emit: a reading found in what c received at now. */
typedef struct bench_recv__found {
    bench_recv__conn *c;
    uint64_t now;
} bench_recv__found;

static void bench_recv__on_reading(void *ctx, long dev, long seq)
{
    const bench_recv__found *f = ctx;
    bench_recv__account(f->c, dev, seq, f->now);
}

static void bench_recv__scan_json(bench_recv__conn *c, const char *p, size_t n, long dev_known, uint64_t now)
{
    bench_recv__found f = {c, now};
    bench_scan_json(p, n, dev_known, bench_recv__on_reading, &f);
}

static long bench_recv__dev_from_topic(const char *t)
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
    return bench_scan_num(&p, e);
}

static void bench_recv__send(bench_recv__conn *c, const void *b, size_t n)
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

static void bench_recv__ws_send(bench_recv__conn *c, int op, const void *p, size_t n)
{
    unsigned char buf[1024];
    if (n + 14 > sizeof buf)
        return;
    bench_recv__send(c, buf, ws_client_frame(buf, op, p, n));
}

static size_t bench_recv__mqtt_remlen(unsigned char *o, size_t v)
{
    size_t i = 0;
    do {
        unsigned char b = v % 128;
        v /= 128;
        o[i++] = (unsigned char)(b | (v ? 0x80 : 0));
    } while (v);
    return i;
}

static void bench_recv__mqttws_connect(bench_recv__conn *c)
{
    char id[64];
    int il = snprintf(id, sizeof id, "bench-ws-%d-%d", (int)getpid(), c->idx);
    unsigned char p[128];
    size_t o = 0;
    unsigned char vh[10] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0}; /* clean session, no keepalive */
    p[o++] = 0x10;
    o += bench_recv__mqtt_remlen(p + o, 10 + 2 + (size_t)il);
    memcpy(p + o, vh, 10);
    o += 10;
    p[o++] = 0;
    p[o++] = (unsigned char)il;
    memcpy(p + o, id, (size_t)il);
    o += (size_t)il;
    bench_recv__ws_send(c, 2, p, o);
}

static void bench_recv__mqttws_subscribe(bench_recv__conn *c)
{
    const char *t = "sensors/esp32/+/data";
    size_t tl = strlen(t);
    unsigned char p[128];
    size_t o = 0;
    p[o++] = 0x82;
    o += bench_recv__mqtt_remlen(p + o, 2 + 2 + tl + 1);
    p[o++] = 0;
    p[o++] = 1;
    p[o++] = 0;
    p[o++] = (unsigned char)tl;
    memcpy(p + o, t, tl);
    o += tl;
    p[o++] = (unsigned char)c->r->o->sub_qos;
    bench_recv__ws_send(c, 2, p, o);
}

static void bench_recv__mqttws_feed(bench_recv__conn *c, const unsigned char *d, size_t n, uint64_t now)
{
    if (!bench_recv__grow(c, &c->mq, &c->mqcap, c->mqlen + n))
        return;
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
            bench_recv__mqttws_subscribe(c);
        } else if (type == 9) { /* SUBACK */
            if (c->state < 3) {
                c->state = 3;
                BENCH_INC(c->w->nready);
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
                bench_recv__scan_json(c, (const char *)v + po, rl - po, bench_recv__dev_from_topic(topic), now);
                if (q == 1) {
                    unsigned char ack[4] = {0x40, 2, v[2 + tl], v[3 + tl]};
                    bench_recv__ws_send(c, 2, ack, 4);
                }
            }
        }
        off += i + rl;
    }
    memmove(c->mq, c->mq + off, c->mqlen - off);
    c->mqlen -= off;
}

static void bench_recv__ws_on_message(bench_recv__conn *c, int op, const unsigned char *p, size_t n, uint64_t now)
{
    c->frames++;
    if (c->kind == BENCH_R_MQTTWS) {
        if (op == 2 || op == 0)
            bench_recv__mqttws_feed(c, p, n, now);
        return;
    }
    bench_recv__scan_json(c, (const char *)p, n, -1, now);
}

static void bench_recv__close(bench_recv__conn *c)
{
    if (c->state == 4)
        return;
    epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = 4;
    BENCH_INC(c->w->nclosed);
}

static void bench_recv__ws_parse(bench_recv__conn *c, uint64_t now)
{
    size_t off = 0;
    if (c->state == 1) {
        unsigned char *e = memmem(c->rb, c->rlen, "\r\n\r\n", 4);
        if (!e)
            return;
        if (c->rlen < 12 || memcmp(c->rb + 9, "101", 3)) {
            fprintf(stderr, "vigil-bench: receiver %d: handshake refused: %.60s\n", c->idx, c->rb);
            bench_recv__close(c);
            return;
        }
        off = (size_t)(e + 4 - c->rb);
        c->state = 2;
        if (c->kind == BENCH_R_MQTTWS) {
            bench_recv__mqttws_connect(c);
        } else {
            if (c->r->o->subscribe_msg)
                bench_recv__ws_send(c, 1, c->r->o->subscribe_msg, strlen(c->r->o->subscribe_msg));
            c->state = 3;
            BENCH_INC(c->w->nready);
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
            bench_recv__ws_send(c, 10, d, len);
        } else if (op == 8) {
            bench_recv__close(c);
            return;
        } else if (op == 1 || op == 2 || op == 0) {
            if (fin && c->mlen == 0) {
                bench_recv__ws_on_message(c, op, d, len, now);
                if (c->state == 4)
                    return; /* out of memory while handling it */
            } else {
                if (!bench_recv__grow(c, &c->msg, &c->mcap, c->mlen + len))
                    return;
                memcpy(c->msg + c->mlen, d, len);
                c->mlen += len;
                if (fin) {
                    bench_recv__ws_on_message(c, op, c->msg, c->mlen, now);
                    c->mlen = 0;
                    if (c->state == 4)
                        return;
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

static void bench_recv__on_mqtt_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    bench_recv__conn *c = ud;
    c->frames++;
    bench_recv__scan_json(c, msg->payload, (size_t)msg->payloadlen, bench_recv__dev_from_topic(msg->topic), bench_now_ns());
}

static void bench_recv__on_mqtt_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *q)
{
    (void)m; (void)mid; (void)n; (void)q;
    bench_recv__conn *c = ud;
    if (c->state < 3) {
        c->state = 3;
        BENCH_INC(c->w->nready);
    }
}

static void bench_recv__on_mqtt_connect(struct mosquitto *m, void *ud, int rc)
{
    bench_recv__conn *c = ud;
    if (rc == 0)
        mosquitto_subscribe(m, NULL, "sensors/esp32/+/data", c->r->o->sub_qos);
}

static void bench_recv__conn_start(bench_recv__conn *c)
{
    if (c->kind == BENCH_R_MQTT) {
        char id[64];
        snprintf(id, sizeof id, "bench-sub-%d-%d", (int)getpid(), c->idx);
        c->mosq = mosquitto_new(id, true, c);
        mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_connect_callback_set(c->mosq, bench_recv__on_mqtt_connect);
        mosquitto_subscribe_callback_set(c->mosq, bench_recv__on_mqtt_subscribe);
        mosquitto_message_callback_set(c->mosq, bench_recv__on_mqtt_message);
        if (mosquitto_connect(c->mosq, "127.0.0.1", c->r->o->recv_port, 60) != MOSQ_ERR_SUCCESS) {
            c->state = 4;
            BENCH_INC(c->w->nclosed);
            return;
        }
        c->fd = mosquitto_socket(c->mosq);
        c->state = 2;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        c->mwant = 1;
        epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &ev);
        return;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rcv = 1 << 20;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->r->o->recv_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->state = 4;
        BENCH_INC(c->w->nclosed);
        return;
    }
    c->state = 0;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void bench_recv__ws_handshake(bench_recv__conn *c)
{
    char req[768], auth[192] = "";
    if (c->r->o->token[0])
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", c->r->o->token);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s\r\n",
                     c->r->o->path, c->r->o->recv_port,
                     c->kind == BENCH_R_MQTTWS ? "Sec-WebSocket-Protocol: mqtt\r\n" : "", auth);
    bench_recv__send(c, req, (size_t)n);
    c->state = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void *bench_recv__thread(void *arg)
{
    bench_recv__worker *w = arg;
    bench_recv *r = w->r;
    char name[16];
    snprintf(name, sizeof name, "bench-recv-%d", w->idx);
    (void)pthread_setname_np(pthread_self(), name); /* for top -H and per-thread CPU */
    bench_recv__conn *R = r->conns;
    struct epoll_event evs[512];
    uint64_t misc = 0;
    long started = w->idx; /* the next connection of this worker */
    long step = r->nworkers;
    int burst = 200 / r->nworkers > 0 ? 200 / r->nworkers : 1;
    while (!BENCH_LD(r->stop)) {
        /* Open connections in bursts (200 per pass over all workers) so the
         * server's listen backlog holds. */
        for (int k = 0; k < burst && started < r->o->clients; k++, started += step)
            bench_recv__conn_start(&R[started]);
        int n = epoll_wait(w->ep, evs, 512, 20);
        uint64_t now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            bench_recv__conn *c = evs[i].data.ptr;
            if (c->state == 4)
                continue;
            if (c->kind == BENCH_R_MQTT) {
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    if (mosquitto_loop_read(c->mosq, 1) != MOSQ_ERR_SUCCESS) {
                        c->state = 4;
                        BENCH_INC(c->w->nclosed);
                        continue;
                    }
                if (evs[i].events & EPOLLOUT)
                    mosquitto_loop_write(c->mosq, 1);
                int want = mosquitto_want_write(c->mosq);
                if (want != c->mwant) {
                    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
                    epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
                    c->mwant = want;
                }
                continue;
            }
            if (c->state == 0) {
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    bench_recv__close(c);
                    continue;
                }
                if (evs[i].events & EPOLLOUT)
                    bench_recv__ws_handshake(c);
                continue;
            }
            /* Drain what is there, bounded per event for fairness. */
            for (int k = 0; k < 4; k++) {
                if (!bench_recv__grow(c, &c->rb, &c->rcap, c->rlen + 262144))
                    break;
                ssize_t got = recv(c->fd, c->rb + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                    bench_recv__close(c);
                    break;
                }
                if (got < 0)
                    break;
                c->rlen += (size_t)got;
                c->bytes += (uint64_t)got;
                bench_recv__ws_parse(c, now);
                if (c->state == 4 || (size_t)got < 65536)
                    break;
            }
        }
        if (now - misc > 1000000000u) {
            misc = now;
            for (long i = w->idx; i < started && i < r->o->clients; i += step)
                if (R[i].kind == BENCH_R_MQTT && R[i].state != 4)
                    mosquitto_loop_misc(R[i].mosq);
        }
    }
    return NULL;
}

bench_recv_status bench_recv_create(const bench_opts *o, const bench_sendtab *tab, bench_recv **out)
{
    *out = NULL;
    bench_recv *r = calloc(1, sizeof *r);
    if (!r)
        return BENCH_RECV_ENOMEM;
    r->o = o;
    r->tab = tab;
    r->nworkers = o->recv_threads > 0 ? o->recv_threads : 1;
    if (r->nworkers > o->clients)
        r->nworkers = (int)o->clients; /* a thread without connections would only spin */
    r->conns = calloc((size_t)o->clients, sizeof *r->conns);
    r->workers = calloc((size_t)r->nworkers, sizeof *r->workers);
    if (!r->conns || !r->workers) {
        free(r->conns);
        free(r->workers);
        free(r);
        return BENCH_RECV_ENOMEM;
    }
    for (int i = 0; i < r->nworkers; i++)
        r->workers[i] = (bench_recv__worker){.r = r, .idx = i, .ep = -1};
    size_t bm = (bench_sendtab_slots(tab) + 7) / 8;
    for (long i = 0; i < o->clients; i++) {
        bench_recv__conn *c = &r->conns[i];
        c->kind = o->rkind;
        c->idx = (int)i;
        c->r = r;
        c->w = &r->workers[i % r->nworkers];
        c->seen = calloc(bm, 1);
        if (!c->seen)
            return BENCH_RECV_ENOMEM; /* main exits at once: nothing to unwind */
    }
    *out = r;
    return BENCH_RECV_OK;
}

bench_recv_status bench_recv_start(bench_recv *r)
{
    for (int i = 0; i < r->nworkers; i++) {
        bench_recv__worker *w = &r->workers[i];
        w->ep = epoll_create1(0);
        if (w->ep < 0)
            return BENCH_RECV_ESYS; /* main stops the started ones (bench_recv_stop) and exits */
        if (pthread_create(&w->thread, NULL, bench_recv__thread, w) != 0)
            return BENCH_RECV_ESYS;
        w->running = true;
    }
    return BENCH_RECV_OK;
}

void bench_recv_set_step(bench_recv *r, int step)
{
    BENCH_ST(r->cur_step, step);
}

long bench_recv_ready(const bench_recv *r)
{
    long n = 0;
    for (int i = 0; i < r->nworkers; i++)
        n += BENCH_LD(r->workers[i].nready);
    return n;
}

long bench_recv_closed(const bench_recv *r)
{
    long n = 0;
    for (int i = 0; i < r->nworkers; i++)
        n += BENCH_LD(r->workers[i].nclosed);
    return n;
}

uint64_t bench_recv_uniq(const bench_recv *r)
{
    uint64_t u = 0;
    for (long i = 0; i < r->o->clients; i++)
        u += BENCH_LD(r->conns[i].uniq);
    return u;
}

uint64_t bench_recv_step_count(const bench_recv *r, int step)
{
    uint64_t n = 0;
    for (int i = 0; i < r->nworkers; i++)
        n += BENCH_LD(r->workers[i].step_count[step]);
    return n;
}

const bench_hist *bench_recv_step_hist(const bench_recv *r, int step)
{
    return &r->hist[step];
}

int bench_recv_thread_cpu(const bench_recv *r, double *out, int max)
{
    int n = 0;
    for (int i = 0; i < r->nworkers && n < max; i++) {
        clockid_t id;
        struct timespec ts;
        const bench_recv__worker *w = &r->workers[i];
        if (!w->running || pthread_getcpuclockid(w->thread, &id) || clock_gettime(id, &ts))
            out[n++] = 0;
        else
            out[n++] = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    return n;
}

void bench_recv_stop(bench_recv *r)
{
    BENCH_ST(r->stop, 1);
    for (int i = 0; i < r->nworkers; i++) {
        bench_recv__worker *w = &r->workers[i];
        if (w->running)
            pthread_join(w->thread, NULL);
        w->running = false;
    }
    memset(r->hist, 0, sizeof r->hist);
    for (int i = 0; i < r->nworkers; i++)
        for (int s = 0; s <= BENCH_MAX_STEPS; s++)
            bench_hist_add(&r->hist[s], &r->workers[i].hist[s]);
}

void bench_recv_read(const bench_recv *r, bench_recv_stats *out)
{
    *out = (bench_recv_stats){0};
    for (long i = 0; i < r->o->clients; i++) {
        const bench_recv__conn *c = &r->conns[i];
        out->uniq += c->uniq;
        out->dups += c->dups;
        out->unknown += c->unknown;
        out->frames += c->frames;
        out->bytes += c->bytes;
    }
}
