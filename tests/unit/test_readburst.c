/* Unit tests for server/readburst.c: when the ingest thread's read burst asks
 * the kernel (FIONREAD) before reading on. PUBLISH sizes match the bytes MQTT
 * puts on the wire; a burst of N packets asks twice, not N times; whatever is
 * miscounted (other packets, properties, a packet begun in an earlier pass)
 * only makes it ask sooner or read once more; and over a real loopback TCP
 * socket, driven like ingest.c drives libmosquitto, one pass reads every
 * packet the kernel holds and leaves nothing readable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "readburst.h"

/* MQTT's variable byte integer; returns its length. */
static size_t enc_varint(uint8_t *o, size_t v)
{
    size_t n = 0;
    do {
        uint8_t b = (uint8_t)(v % 128);
        v /= 128;
        o[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

/* A PUBLISH as a broker sends it (v5: with props_len bytes of properties,
 * 0x26 user-property-like filler, which no reader here looks inside);
 * returns its length. */
static size_t enc_publish(uint8_t *o, int v5, const char *topic, int qos, size_t props_len,
                          size_t payload_len)
{
    size_t tl = strlen(topic);
    size_t rem = 2 + tl + (qos ? 2 : 0) + payload_len;
    uint8_t pl[4];
    size_t pll = 0;
    if (v5) {
        pll = enc_varint(pl, props_len);
        rem += pll + props_len;
    }
    size_t n = 0;
    o[n++] = (uint8_t)(0x30 | (qos << 1));
    n += enc_varint(o + n, rem);
    o[n++] = (uint8_t)(tl >> 8);
    o[n++] = (uint8_t)tl;
    memcpy(o + n, topic, tl);
    n += tl;
    if (qos) {
        o[n++] = 0x12;
        o[n++] = 0x34;
    }
    if (v5) {
        memcpy(o + n, pl, pll);
        n += pll;
        memset(o + n, 0x26, props_len);
        n += props_len;
    }
    memset(o + n, 'x', payload_len);
    return n + payload_len;
}

static uint8_t g_buf[1 << 20];

static void test_publish_size_matches_wire(void **state)
{
    (void)state;
    const char *topic = "sensors/esp32/esp32-000123/data";
    /* Around each boundary of the remaining length's varint (1, 2, 3 bytes). */
    const size_t pays[] = {0, 1, 80, 90, 91, 92, 93, 94, 95, 96, 200, 16000, 16350, 16360, 16400, 100000};
    for (int v5 = 0; v5 <= 1; v5++)
        for (int qos = 0; qos <= 2; qos++)
            for (size_t i = 0; i < sizeof pays / sizeof pays[0]; i++)
                for (size_t props = 0; props <= (v5 ? 130u : 0u); props += 65) {
                    size_t want = enc_publish(g_buf, v5, topic, qos, props, pays[i]);
                    assert_int_equal(readburst_publish_size(v5 ? 5 : 311, strlen(topic), qos, props,
                                                            pays[i]),
                                     want);
                }
    /* Past MQTT's largest packet: not told. */
    assert_int_equal(readburst_publish_size(311, 10, 1, 0, 268435455u), 0);
}

/* The kernel's side of a pass: `held` bytes in packets of the given sizes;
 * each call reads one packet (or `extra` non-PUBLISH bytes first). */
typedef struct sim {
    const size_t *sizes;
    size_t n, next;
    long long held;
    unsigned fionreads, calls;
} sim;

/* One burst, as ingest.c runs it; returns the packets read. */
static size_t sim_pass(readburst *b, sim *k, unsigned cap)
{
    size_t read0 = k->next;
    readburst_begin(b);
    for (unsigned i = 0; i < cap; i++) {
        k->calls++;
        if (k->next < k->n && k->held >= (long long)k->sizes[k->next]) {
            k->held -= (long long)k->sizes[k->next];
            readburst_publish(b, k->sizes[k->next++]);
        }
        if (readburst_ask(b)) {
            k->fionreads++;
            if (k->held <= 0)
                break;
            readburst_avail(b, k->held);
        }
    }
    return k->next - read0;
}

static void test_burst_asks_twice_not_per_packet(void **state)
{
    (void)state;
    size_t sizes[100];
    long long total = 0;
    for (size_t i = 0; i < 100; i++)
        total += (long long)(sizes[i] = 150 + i % 7);
    sim k = {sizes, 100, 0, total, 0, 0};
    readburst b;
    readburst_init(&b, 1);
    assert_int_equal(sim_pass(&b, &k, 512), 100);
    assert_int_equal(k.held, 0);
    /* Once after the first packet, once to hear "nothing": 2, not 100. */
    assert_int_equal(k.fionreads, 2);
    assert_int_equal(k.calls, 100);
}

/* libmosquitto 2.0 may hand over many PUBLISHes in one call (as many as
 * it has QoS 1/2 messages in flight): the burst counts PUBLISHes, the
 * readings the read hold and the burst's cap go by, and a new burst starts
 * from zero. */
static void test_publishes_counted_per_burst(void **state)
{
    (void)state;
    readburst b;
    readburst_init(&b, 1);
    readburst_begin(&b);
    for (int i = 0; i < 300; i++) /* one call, 300 packets */
        readburst_publish(&b, 150);
    assert_int_equal(b.publishes, 300);
    readburst_avail(&b, 150 * 300);
    assert_int_equal(readburst_ask(&b), 1); /* all counted down: ask */
    assert_int_equal(b.publishes, 300);     /* asking does not reset it */
    readburst_begin(&b);
    assert_int_equal(b.publishes, 0);
    readburst_publish(&b, 0);
    assert_int_equal(b.publishes, 1); /* an unknown size still counts */
}

static void test_tls_asks_after_every_call(void **state)
{
    (void)state;
    size_t sizes[10] = {150, 150, 150, 150, 150, 150, 150, 150, 150, 150};
    sim k = {sizes, 10, 0, 1500, 0, 0};
    readburst b;
    readburst_init(&b, 0);
    assert_int_equal(sim_pass(&b, &k, 512), 10);
    assert_int_equal(k.fionreads, 10);
}

static void test_no_publish_or_unknown_size_asks(void **state)
{
    (void)state;
    readburst b;
    readburst_init(&b, 1);
    readburst_begin(&b);
    readburst_publish(&b, 100);
    assert_true(readburst_ask(&b)); /* nothing known yet */
    readburst_avail(&b, 1000);
    assert_true(readburst_ask(&b)); /* a call with no PUBLISH (a PINGRESP, part of one) */
    readburst_avail(&b, 1000);
    readburst_publish(&b, 100);
    assert_false(readburst_ask(&b)); /* 900 left */
    readburst_publish(&b, 0);
    assert_true(readburst_ask(&b)); /* a PUBLISH with properties */
    readburst_avail(&b, 300);
    readburst_publish(&b, 100);
    readburst_publish(&b, 100);
    assert_false(readburst_ask(&b)); /* two in one call: 100 left */
    readburst_publish(&b, 150);
    assert_true(readburst_ask(&b)); /* counted past the answer (a packet begun earlier) */
    /* A new burst forgets what the last one counted. */
    readburst_begin(&b);
    readburst_publish(&b, 10);
    assert_true(readburst_ask(&b));
}

/* --- over a real socket, read the way libmosquitto 2.0 reads ------------- */

typedef struct mini {
    int fd;
    int v5;
    uint8_t hdr[5];
    size_t hdr_n;       /* command + varint bytes read so far */
    size_t rem, got;    /* remaining length once known; body bytes read */
    int rem_known;
    uint8_t body[1 << 16];
    size_t publishes;
} mini;

/* One mosquitto_loop_read: command byte, then the remaining length a byte at
 * a time, then the body; stops at EAGAIN (keeping what it has, as
 * libmosquitto's in_packet does). A whole PUBLISH is handed to readburst
 * with the size told from its fields, like ingest__on_message does. */
static void mini_call(mini *m, readburst *b)
{
    for (;;) {
        ssize_t r;
        if (!m->rem_known) {
            r = read(m->fd, m->hdr + m->hdr_n, 1);
            if (r != 1)
                return;
            m->hdr_n++;
            if (m->hdr_n >= 2 && !(m->hdr[m->hdr_n - 1] & 0x80)) {
                size_t v = 0, mul = 1;
                for (size_t i = 1; i < m->hdr_n; i++, mul *= 128)
                    v += (size_t)(m->hdr[i] & 0x7f) * mul;
                m->rem = v;
                m->rem_known = 1;
                m->got = 0;
            }
            continue;
        }
        if (m->got < m->rem) {
            r = read(m->fd, m->body + m->got, m->rem - m->got);
            if (r <= 0)
                return;
            m->got += (size_t)r;
            if (m->got < m->rem)
                return;
        }
        if ((m->hdr[0] & 0xf0) == 0x30) {
            int qos = (m->hdr[0] >> 1) & 3;
            size_t tl = (size_t)m->body[0] << 8 | m->body[1];
            size_t off = 2 + tl + (qos ? 2 : 0), props = 0;
            if (m->v5) {
                size_t mul = 1, i = off;
                do
                    props += (size_t)(m->body[i] & 0x7f) * mul, mul *= 128;
                while (m->body[i++] & 0x80);
                off = i + props;
            }
            m->publishes++;
            /* ingest.c does not measure properties: their size is not told. */
            readburst_publish(b, props ? 0 : readburst_publish_size(m->v5 ? 5 : 311, tl, qos, 0, m->rem - off));
        }
        m->hdr_n = 0;
        m->rem_known = 0;
        return; /* one packet per call */
    }
}

/* ingest.c's read burst over mini; returns FIONREADs asked. */
static unsigned mini_pass(mini *m, readburst *b)
{
    unsigned asks = 0;
    readburst_begin(b);
    for (int i = 0; i < 4096; i++) {
        mini_call(m, b);
        if (readburst_ask(b)) {
            int more = 0;
            asks++;
            assert_int_equal(ioctl(m->fd, FIONREAD, &more), 0);
            if (more <= 0)
                break;
            readburst_avail(b, more);
        }
    }
    return asks;
}

static void tcp_pair(int fds[2])
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    int rcv = 1 << 18; /* the whole test burst fits in the receiver's kernel (inherited by accept) */
    assert_int_equal(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    fds[1] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fds[1], (struct sockaddr *)&a, sizeof a), 0);
    fds[0] = accept(l, NULL, NULL);
    assert_true(fds[0] >= 0);
    close(l);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Waits (bounded) until the receiver's kernel holds `want` bytes. */
static void await_held(int fd, int want)
{
    int more = 0;
    for (int i = 0; i < 2000 && (ioctl(fd, FIONREAD, &more) != 0 || more < want); i++)
        usleep(1000);
    assert_int_equal(more, want);
}

static void test_socket_one_pass_reads_all(void **state)
{
    (void)state;
    for (int v5 = 0; v5 <= 1; v5++) {
        int fds[2];
        tcp_pair(fds);
        static mini m;
        memset(&m, 0, sizeof m);
        m.fd = fds[0];
        m.v5 = v5;
        readburst b;
        readburst_init(&b, 1);
        /* 300 PUBLISHes of mixed sizes (varints of 1 and 2 bytes, QoS 0 and
         * 1, some with properties), a PINGRESP and a SUBACK among them. */
        size_t n = 0, pubs = 0;
        for (int i = 0; i < 300; i++) {
            n += enc_publish(g_buf + n, v5, "sensors/esp32/esp32-000042/data", i % 3 ? 1 : 0,
                             v5 && i % 10 == 0 ? 12 : 0, 60 + (size_t)(i * 37) % 100);
            pubs++;
            if (i == 100) {
                g_buf[n++] = 0xd0; /* PINGRESP */
                g_buf[n++] = 0;
            }
            if (i == 200) {
                memcpy(g_buf + n, "\x90\x03\x00\x01\x01", 5); /* SUBACK */
                n += 5;
            }
        }
        send_all(fds[1], g_buf, n);
        await_held(fds[0], (int)n);
        unsigned asks = mini_pass(&m, &b);
        assert_int_equal(m.publishes, pubs);
        await_held(fds[0], 0);
        /* Per packet it would be 302. Here: after the first packet, after
         * the PINGRESP and the SUBACK (not counted), to hear "nothing" at the
         * end, and after each of the other 29 PUBLISHes with properties
         * (the first packet is one of them). */
        assert_int_equal(asks, v5 ? 33 : 4);

        /* A packet cut in two: the pass reads its first half and ends with
         * nothing readable; the next pass (the poll's wake-up) finishes it. */
        size_t one = enc_publish(g_buf, v5, "sensors/esp32/a/data", 1, 0, 150);
        send_all(fds[1], g_buf, 70);
        await_held(fds[0], 70);
        size_t before = m.publishes;
        mini_pass(&m, &b);
        assert_int_equal(m.publishes, before);
        await_held(fds[0], 0);
        size_t more = enc_publish(g_buf + one, v5, "sensors/esp32/b/data", 1, 0, 90);
        send_all(fds[1], g_buf + 70, one - 70 + more);
        await_held(fds[0], (int)(one - 70 + more));
        mini_pass(&m, &b);
        assert_int_equal(m.publishes, before + 2);
        await_held(fds[0], 0);
        close(fds[0]);
        close(fds[1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_size_matches_wire),
        cmocka_unit_test(test_burst_asks_twice_not_per_packet),
        cmocka_unit_test(test_publishes_counted_per_burst),
        cmocka_unit_test(test_tls_asks_after_every_call),
        cmocka_unit_test(test_no_publish_or_unknown_size_asks),
        cmocka_unit_test(test_socket_one_pass_reads_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
