/* relay — the minimal MQTT→WebSocket relay: the physical-limit subject.
 *
 * One thread, one epoll loop: a libmosquitto subscriber (QoS 1) and a
 * hand-written WebSocket server. Each MQTT payload becomes one text frame to
 * every open client, unchanged: no parsing, no validation, no storage. Frames
 * are appended to a per-client buffer and flushed once per loop pass, so a
 * burst costs one send() per client, not one per message. A client more than
 * RELAY_MAX_BACKLOG bytes behind is dropped (as vigild does). Runs until
 * SIGTERM/SIGINT or --duration seconds. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <mosquitto.h>

#include "wsutil.h"

#define RELAY_MAX_CLIENTS 4096
#define RELAY_MAX_BACKLOG (16u << 20)

typedef struct rclient {
    int fd;
    int open;                  /* handshake done */
    int dirty;                 /* on the flush list */
    int want_out;              /* EPOLLOUT registered */
    char in[4096];
    size_t inlen;
    unsigned char *out;
    size_t olen, ooff, ocap;
} rclient;

static volatile sig_atomic_t relay_stop;
static void on_sig(int s) { (void)s; relay_stop = 1; }

static rclient *clients[RELAY_MAX_CLIENTS];
static int nclients;
static rclient *dirty[RELAY_MAX_CLIENTS];
static int ndirty;
static int ep;
static unsigned long long relayed, dropped_clients;

static void client_close(rclient *c)
{
    for (int i = 0; i < nclients; i++)
        if (clients[i] == c) {
            clients[i] = clients[--nclients];
            break;
        }
    for (int i = 0; i < ndirty; i++)
        if (dirty[i] == c) {
            dirty[i] = dirty[--ndirty];
            break;
        }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

static int out_append(rclient *c, const void *p, size_t n)
{
    if (c->olen + n > c->ocap) {
        if (c->ooff) { /* compact first */
            memmove(c->out, c->out + c->ooff, c->olen - c->ooff);
            c->olen -= c->ooff;
            c->ooff = 0;
        }
        if (c->olen + n > c->ocap) {
            size_t cap = c->ocap ? c->ocap : 65536;
            while (cap < c->olen + n)
                cap *= 2;
            unsigned char *o = realloc(c->out, cap);
            if (!o)
                return -1;
            c->out = o;
            c->ocap = cap;
        }
    }
    memcpy(c->out + c->olen, p, n);
    c->olen += n;
    if (!c->dirty) {
        c->dirty = 1;
        dirty[ndirty++] = c;
    }
    return 0;
}

/* Returns -1 when the client must be closed. */
static int client_flush(rclient *c)
{
    while (c->ooff < c->olen) {
        ssize_t w = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        c->ooff += (size_t)w;
    }
    if (c->ooff == c->olen)
        c->ooff = c->olen = 0;
    int want = c->olen != 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return c->olen - c->ooff > RELAY_MAX_BACKLOG ? -1 : 0;
}

static void client_read(rclient *c)
{
    if (c->open) { /* we ignore what clients say; only notice EOF */
        char buf[4096];
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN))
            client_close(c);
        return;
    }
    ssize_t r = recv(c->fd, c->in + c->inlen, sizeof c->in - 1 - c->inlen, MSG_DONTWAIT);
    if (r <= 0) {
        if (r == 0 || errno != EAGAIN)
            client_close(c);
        return;
    }
    c->inlen += (size_t)r;
    c->in[c->inlen] = 0;
    if (!strstr(c->in, "\r\n\r\n")) {
        if (c->inlen >= sizeof c->in - 1)
            client_close(c);
        return;
    }
    const char *k = strcasestr(c->in, "\r\nSec-WebSocket-Key:");
    if (!k) {
        client_close(c);
        return;
    }
    k += 20;
    while (*k == ' ')
        k++;
    size_t kl = strcspn(k, "\r\n ");
    char acc[40];
    ws_accept_key(k, kl, acc);
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
    c->open = 1;
    out_append(c, resp, (size_t)n);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m; (void)ud;
    unsigned char h[10];
    size_t hl = ws_server_header(h, (size_t)msg->payloadlen);
    for (int i = 0; i < nclients; i++) {
        rclient *c = clients[i];
        if (!c->open)
            continue;
        out_append(c, h, hl);
        out_append(c, msg->payload, (size_t)msg->payloadlen);
    }
    relayed++;
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    const char *topic = ud;
    if (rc == 0)
        mosquitto_subscribe(m, NULL, topic, 1);
}

int vigil_relay_main(int argc, char **argv)
{
    int bport = 1883, lport = 0, duration = 900;
    const char *topic = "sensors/esp32/+/data";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker-port") && i + 1 < argc) bport = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--listen-port") && i + 1 < argc) lport = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--topic") && i + 1 < argc) topic = argv[++i];
        else if (!strcmp(argv[i], "--duration") && i + 1 < argc) duration = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: vigil-bench relay --broker-port P --listen-port P "
                            "[--topic T] [--duration S]\n");
            return 2;
        }
    }
    if (lport <= 0) {
        fprintf(stderr, "relay: --listen-port required\n");
        return 2;
    }
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    signal(SIGPIPE, SIG_IGN);
    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(NULL, true, (void *)topic);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_message_callback_set(mosq, on_message);
    if (mosquitto_connect(mosq, "127.0.0.1", bport, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "relay: cannot connect to the broker on port %d\n", bport);
        return 1;
    }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) {
        perror("relay: bind/listen");
        return 1;
    }
    ep = epoll_create1(0);
    int mfd = mosquitto_socket(mosq);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, mfd, &ev);
    int mwant = 0;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    fprintf(stderr, "relay: listening on 127.0.0.1:%d\n", lport);
    uint64_t end = bench_now_ns() + (uint64_t)duration * 1000000000u, misc = 0;
    struct epoll_event evs[256];
    while (!relay_stop && bench_now_ns() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == NULL) {
                /* libmosquitto reads one QoS 1 packet per call: keep reading
                 * while bytes are buffered, so a burst becomes one flush per
                 * client below instead of one send() per message. */
                int avail = 1;
                for (int k = 0; k < 1024 && avail > 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)); k++) {
                    if (mosquitto_loop_read(mosq, 1) != MOSQ_ERR_SUCCESS) {
                        fprintf(stderr, "relay: lost the broker\n");
                        relay_stop = 1;
                        break;
                    }
                    if (ioctl(mfd, FIONREAD, &avail) < 0)
                        avail = 0;
                }
                if (evs[i].events & EPOLLOUT)
                    mosquitto_loop_write(mosq, 1);
            } else if (p == &ls) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0)
                        break;
                    if (nclients >= RELAY_MAX_CLIENTS) {
                        close(fd);
                        continue;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    rclient *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    clients[nclients++] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
            } else {
                rclient *c = p;
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                    client_read(c);
                    continue; /* c may be gone; a pending flush runs below */
                }
                if (evs[i].events & EPOLLOUT && client_flush(c) < 0)
                    client_close(c);
            }
        }
        /* One send per client per pass: the batching that makes a relay cheap. */
        while (ndirty) {
            rclient *c = dirty[--ndirty];
            c->dirty = 0;
            if (client_flush(c) < 0) {
                dropped_clients++;
                client_close(c);
            }
        }
        int want = mosquitto_want_write(mosq);
        if (want != mwant) {
            struct epoll_event mev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = NULL};
            epoll_ctl(ep, EPOLL_CTL_MOD, mfd, &mev);
            mwant = want;
        }
        uint64_t now = bench_now_ns();
        if (now - misc > 1000000000u) {
            mosquitto_loop_misc(mosq);
            misc = now;
        }
    }
    fprintf(stderr, "relay: relayed %llu messages, dropped %llu clients\n", relayed, dropped_clients);
    while (nclients)
        client_close(clients[0]);
    close(ls);
    mosquitto_disconnect(mosq);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    return 0;
}
