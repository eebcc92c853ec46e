/* Unit tests for server/fanout.c (and the hub's inbox in front of it),
 * through a fake connection port that records frames and can simulate a
 * choked or failing socket: snapshot then live messages, subscriptions and
 * their filter, batch frames, the write budget, resyncing or dropping a
 * client whose queue is full (the stall rule, on a fake clock), re-snapshot
 * after a half-sent snapshot, error replies, write failures; hub_post's
 * bound and its one wake in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout.h"
#include "hub.h"
#include "live.h"
#include "metrics.h"
#include "sbuf.h"
#include "vclock.h"

#define T0 1764576000000LL

/* ---- the fake connection ---- */

typedef struct frame {
    fanout_frame kind;
    char *data;
    size_t len;
    const unsigned char *buf; /* where fanout had it: equal across clients when shared */
} frame;

typedef struct conn {
    frame *frames;
    size_t nframes;
    int want_write;     /* want_write asked since the last pump */
    int killed;
    int fail;           /* write fails */
    int choke_after;    /* choked() once this many writes were made in a callback (0: never) */
    int writes;         /* in the current callback */
    size_t msg_seen;    /* frames already returned by messages() */
} conn;

static int fake_write(void *cp, unsigned char *buf, size_t len, fanout_frame kind)
{
    conn *c = cp;
    if (c->fail)
        return -1;
    /* As lws does: the frame header goes into the headroom. */
    memset(buf - FANOUT_PRE, 0xAA, FANOUT_PRE);
    c->frames = realloc(c->frames, (c->nframes + 1) * sizeof *c->frames);
    assert_non_null(c->frames);
    frame *f = &c->frames[c->nframes++];
    f->kind = kind;
    f->len = len;
    f->buf = buf;
    f->data = malloc(len + 1);
    assert_non_null(f->data);
    memcpy(f->data, buf, len);
    f->data[len] = 0;
    c->writes++;
    return 0;
}

static int fake_choked(void *cp)
{
    conn *c = cp;
    return c->choke_after && c->writes >= c->choke_after;
}

static void fake_want_write(void *cp) { ((conn *)cp)->want_write = 1; }
static void fake_kill(void *cp) { ((conn *)cp)->killed = 1; }
static int fake_fd(void *cp) { (void)cp; return 42; }

static const fanout_conn_ops ops = {fake_write, fake_choked, fake_want_write, fake_kill, fake_fd};

static void conn_free(conn *c)
{
    for (size_t i = 0; i < c->nframes; i++)
        free(c->frames[i].data);
    free(c->frames);
    memset(c, 0, sizeof *c);
}

/* The complete text messages received since the last call, parsed; the
 * fragments of a message must come as FIRST, CONTINUE..., FINAL. */
static size_t messages(conn *c, cJSON **out, size_t max)
{
    size_t n = 0;
    sbuf acc;
    sbuf_init(&acc, 0);
    int in_frag = 0;
    for (; c->msg_seen < c->nframes; c->msg_seen++) {
        const frame *f = &c->frames[c->msg_seen];
        if (f->kind == FANOUT_TEXT || f->kind == FANOUT_FIRST)
            assert_false(in_frag);
        else
            assert_true(in_frag);
        sbuf_add(&acc, f->data, f->len);
        in_frag = f->kind == FANOUT_FIRST || f->kind == FANOUT_CONTINUE;
        if (in_frag)
            continue;
        assert_true(n < max);
        out[n] = cJSON_ParseWithLength(sbuf_data(&acc), acc.len);
        assert_non_null(out[n]);
        n++;
        sbuf_reset(&acc);
    }
    assert_false(in_frag);
    sbuf_free(&acc);
    return n;
}

static void free_all(cJSON **j, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(j[i]);
}

static const char *type_of(const cJSON *j)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static const char *device_of(const cJSON *j)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"),
                                                      "device_id");
    return cJSON_IsString(d) ? d->valuestring : "";
}

static int snapshot_size(const cJSON *j)
{
    assert_string_equal(type_of(j), "snapshot");
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "devices"));
}

/* A reading whose data pads to about pad bytes. */
static hub_msg *reading(const char *id, int seq, size_t pad)
{
    char data[4096];
    assert_true(pad < 4000);
    int n = snprintf(data, sizeof data, "{\"device_id\":\"%s\",\"seq\":%d,\"pad\":\"%*s\"}", id, seq,
                     (int)pad, "");
    hub_msg *m = hub_msg_new(HUB_SENSOR_DATA, id, data, (size_t)n);
    assert_non_null(m);
    m->received_ms = T0 + seq;
    return m;
}

typedef struct fixture {
    vigil_metrics m;
    live *l;
    fanout *f;
    /* The clients a test opens with fx_open, closed by fx_free. */
    conn c[4];
    fanout_client *cl[4];
    size_t ncl;
} fixture;

/* The fanout's clock (and the one fanout_receive is given): fake time,
 * moved by the tests only. */
static int64_t fake_now_ms;
static int64_t fake_clock(void) { return fake_now_ms; }

/* Its socket is full from here on and FANOUT_STALL_MS of fake time passed:
 * a client that stopped reading. */
static void stall(conn *c)
{
    c->choke_after = 1;
    c->writes = 1;
    fake_now_ms += FANOUT_STALL_MS;
}

/* One writable callback. */
static int writable(fixture *x, fanout_client *cl, conn *c)
{
    c->want_write = 0;
    c->writes = 0;
    return fanout_writable(x->f, cl);
}

/* Writable callbacks while the client asks for them (bounded). */
static void pump(fixture *x, fanout_client *cl, conn *c)
{
    for (int i = 0; i < 10000 && c->want_write; i++)
        assert_int_equal(writable(x, cl, c), 0);
    assert_false(c->want_write);
}

/* Pumps cl: exactly one message comes, of type (and device, unless NULL). */
static void expect_one(fixture *x, fanout_client *cl, conn *c, const char *type, const char *device)
{
    pump(x, cl, c);
    cJSON *j[1];
    assert_int_equal(messages(c, j, 1), 1);
    assert_string_equal(type_of(j[0]), type);
    if (device)
        assert_string_equal(device_of(j[0]), device);
    cJSON_Delete(j[0]);
}

/* Applies and pushes without a flush: one message of a drain pass. */
static void post_nf(fixture *x, hub_msg *m)
{
    assert_int_equal(live_apply(x->l, m), 0);
    fanout_push(x->f, m);
    hub_msg_unref(m);
}

/* Applies to the model and fans out, as hub_drain does. */
static void post(fixture *x, hub_msg *m)
{
    post_nf(x, m);
    fanout_flush(x->f);
}

static fixture *fx_new(size_t ws_queue)
{
    fixture *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->l = live_create(NULL);
    assert_non_null(x->l);
    assert_null(fanout_create(&x->m, ws_queue, x->l, &ops, NULL, NULL)); /* no clock: refused */
    fake_now_ms = 1000;
    x->f = fanout_create(&x->m, ws_queue, x->l, &ops, fake_clock, NULL);
    assert_non_null(x->f);
    return x;
}

static fanout_client *client_new(fixture *x, conn *c)
{
    fanout_client *cl = calloc(1, fanout_client_size());
    assert_non_null(cl);
    assert_int_equal(fanout_open(x->f, cl, c), 0);
    return cl;
}

static void client_free(fixture *x, fanout_client *cl, conn *c)
{
    fanout_close(x->f, cl);
    free(cl);
    conn_free(c);
}

/* Closes the clients fx_open opened, then the fanout and the model. */
static void fx_free(fixture *x)
{
    for (size_t i = 0; i < x->ncl; i++)
        client_free(x, x->cl[i], &x->c[i]);
    fanout_destroy(x->f);
    live_destroy(x->l);
    free(x);
}

/* A client of the fixture's (fx_free closes it), opened now: its snapshot
 * is of the model as the test made it; *c is its fake connection. */
static fanout_client *fx_open(fixture *x, conn **c)
{
    assert_true(x->ncl < sizeof x->cl / sizeof *x->cl);
    *c = &x->c[x->ncl];
    x->cl[x->ncl] = client_new(x, *c);
    return x->cl[x->ncl++];
}

/* The same, once it has taken its snapshot (read and discarded). */
static fanout_client *fx_ready(fixture *x, conn **c)
{
    fanout_client *cl = fx_open(x, c);
    pump(x, cl, *c);
    cJSON *j[1];
    free_all(j, messages(*c, j, 1));
    return cl;
}

static void receive(fixture *x, fanout_client *cl, const char *s)
{
    fanout_receive(x->f, cl, s, strlen(s), fake_now_ms);
}

/* ---- tests ---- */

static void test_snapshot_then_live(void **state)
{
    (void)state;
    fixture *x = fx_new(64);
    hub_msg *m = reading("b", 1, 0);
    live_apply(x->l, m);
    hub_msg_unref(m);
    m = reading("a", 2, 0);
    live_apply(x->l, m);
    hub_msg_unref(m);
    conn c = {0};
    fanout_client *cl = client_new(x, &c);
    assert_true(c.want_write);
    assert_int_equal(x->m.ws_clients, 1);
    assert_int_equal(x->m.ws_connections, 1);
    post(x, reading("a", 3, 0)); /* queued behind the snapshot */
    pump(x, cl, &c);
    cJSON *j[8];
    size_t n = messages(&c, j, 8);
    assert_int_equal(n, 2);
    assert_int_equal(snapshot_size(j[0]), 2);
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j[0], "devices");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(devs, 0), "device_id")->valuestring, "a");
    assert_string_equal(type_of(j[1]), "sensor_data");
    assert_string_equal(device_of(j[1]), "a");
    free_all(j, n);
    assert_int_equal(x->m.ws_frames, 2);
    client_free(x, cl, &c);
    assert_int_equal(x->m.ws_clients, 0);
    fx_free(x);
}

static void test_subscribe_filter(void **state)
{
    (void)state;
    fixture *x = fx_new(64);
    post(x, reading("a", 1, 0));
    post(x, reading("b", 2, 0));
    post(x, reading("c", 3, 0));
    conn *c;
    fanout_client *cl = fx_open(x, &c);
    pump(x, cl, c);
    cJSON *j[16];
    size_t n = messages(c, j, 16);
    assert_int_equal(n, 1);
    assert_int_equal(snapshot_size(j[0]), 3);
    free_all(j, n);

    receive(x, cl, "{\"type\":\"subscribe\",\"devices\":[\"c\",\"b\"]}");
    assert_true(c->want_write);
    for (int i = 0; i < 3; i++) {
        post(x, reading("a", 10 + i, 0));
        post(x, reading("b", 20 + i, 0));
    }
    pump(x, cl, c);
    n = messages(c, j, 16);
    assert_int_equal(n, 4);
    /* The re-snapshot holds only b and c, and is sent before anything new. */
    assert_int_equal(snapshot_size(j[0]), 2);
    for (size_t i = 1; i < n; i++)
        assert_string_equal(device_of(j[i]), "b");
    free_all(j, n);
    /* null: every device again. */
    receive(x, cl, "{\"type\":\"subscribe\",\"devices\":null}");
    post(x, reading("a", 30, 0));
    pump(x, cl, c);
    n = messages(c, j, 16);
    assert_int_equal(n, 2);
    assert_int_equal(snapshot_size(j[0]), 3);
    assert_string_equal(device_of(j[1]), "a");
    free_all(j, n);
    assert_int_equal(x->m.ws_bad_messages, 0);
    fx_free(x);
}

static void test_batch_frames(void **state)
{
    (void)state;
    fixture *x = fx_new(1024);
    conn *c;
    fanout_client *cl = fx_open(x, &c);
    receive(x, cl, "{\"type\":\"subscribe\",\"batch\":true}");
    pump(x, cl, c);
    cJSON *j[64];
    size_t n = messages(c, j, 64);
    assert_int_equal(n, 1);
    free_all(j, n);
    size_t before = c->nframes;
    for (int i = 0; i < 600; i++)
        post(x, reading("d", i, 300));
    pump(x, cl, c);
    size_t frames = c->nframes - before;
    assert_true(frames >= 3 && frames < 20); /* ~200 KB in 64 KiB arrays */
    for (size_t i = before; i < c->nframes; i++)
        assert_true(c->frames[i].len <= FANOUT_BATCH_BYTES);
    n = messages(c, j, 64);
    assert_int_equal(n, frames);
    int want = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(cJSON_IsArray(j[i]));
        const cJSON *it;
        cJSON_ArrayForEach(it, j[i])
        {
            assert_string_equal(type_of(it), "sensor_data");
            const cJSON *seq = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "data"), "seq");
            assert_int_equal(seq->valueint, want++); /* in order, none lost */
        }
    }
    assert_int_equal(want, 600);
    free_all(j, n);
    /* A single queued message goes out on its own, not as an array. */
    post(x, reading("d", 600, 0));
    expect_one(x, cl, c, "sensor_data", NULL);
    fx_free(x);
}

/* A pass of messages (pushed, then one flush, as hub_drain does) reaches
 * every full-stream batch client as the same array frames — one buffer
 * shared by all, not a copy each — while filtered and unbatched clients
 * get theirs as before; a shared array counts all its messages against
 * the queue bound. */
static void test_shared_batch_frames(void **state)
{
    (void)state;
    fixture *x = fx_new(1024);
    conn *ca, *cb, *cf, *cu;
    fanout_client *a = fx_open(x, &ca), *b = fx_open(x, &cb), *fl = fx_open(x, &cf),
                  *u = fx_open(x, &cu);
    receive(x, a, "{\"type\":\"subscribe\",\"batch\":true}");
    receive(x, b, "{\"type\":\"subscribe\",\"batch\":true}");
    receive(x, fl, "{\"type\":\"subscribe\",\"batch\":true,\"devices\":[\"e\"]}");
    conn *cs[] = {ca, cb, cf, cu};
    fanout_client *cls[] = {a, b, fl, u};
    cJSON *j[1200];
    for (int k = 0; k < 4; k++) {
        pump(x, cls[k], cs[k]);
        free_all(j, messages(cs[k], j, 4)); /* the snapshots */
    }
    size_t base[4];
    for (int k = 0; k < 4; k++)
        base[k] = cs[k]->nframes;
    hub_msg *ms[600];
    for (int i = 0; i < 600; i++) {
        ms[i] = reading(i % 2 ? "d" : "e", i, 300);
        assert_int_equal(live_apply(x->l, ms[i]), 0);
        fanout_push(x->f, ms[i]);
    }
    fanout_flush(x->f);
    for (int i = 0; i < 600; i++)
        hub_msg_unref(ms[i]);
    for (int k = 0; k < 4; k++)
        pump(x, cls[k], cs[k]);
    /* a and b: the same frames, byte for byte, from the same buffers. */
    size_t na = ca->nframes - base[0];
    assert_int_equal(cb->nframes - base[1], na);
    assert_true(na >= 3 && na < 20);
    for (size_t i = 0; i < na; i++) {
        const frame *fa = &ca->frames[base[0] + i], *fb = &cb->frames[base[1] + i];
        assert_int_equal(fa->len, fb->len);
        assert_memory_equal(fa->data, fb->data, fa->len);
        assert_ptr_equal(fa->buf, fb->buf);
        assert_true(fa->len <= FANOUT_BATCH_BYTES);
    }
    size_t n = messages(ca, j, 64);
    int want = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(cJSON_IsArray(j[i]));
        const cJSON *it;
        cJSON_ArrayForEach(it, j[i])
        {
            const cJSON *seq = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "data"), "seq");
            assert_int_equal(seq->valueint, want++); /* in order, none lost */
        }
    }
    assert_int_equal(want, 600);
    free_all(j, n);
    /* The filtered client: only "e", in its own arrays. */
    n = messages(cf, j, 64);
    want = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, j[i])
        {
            assert_string_equal(device_of(it), "e");
            want++;
        }
    }
    assert_int_equal(want, 300);
    free_all(j, n);
    /* The unbatched client: 600 frames, one message each. */
    n = messages(cu, j, 1200);
    assert_int_equal(n, 600);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(type_of(j[i]), "sensor_data");
    free_all(j, n);
    /* A lone message after that goes out on its own, to a and b alike. */
    post(x, reading("d", 600, 0));
    expect_one(x, a, ca, "sensor_data", NULL);
    pump(x, b, cb);
    free_all(j, messages(cb, j, 64));
    assert_int_equal(x->m.ws_dropped_clients, 0);
    fx_free(x);
}

static void test_shared_batch_counts_against_queue(void **state)
{
    (void)state;
    fixture *x = fx_new(100);
    conn *ca, *cb;
    fanout_client *a = fx_open(x, &ca), *b = fx_open(x, &cb);
    receive(x, a, "{\"type\":\"subscribe\",\"batch\":true}");
    receive(x, b, "{\"type\":\"subscribe\",\"batch\":true}");
    pump(x, a, ca);
    pump(x, b, cb);
    stall(ca); /* a stops reading */
    /* 100 messages fit one client's queue of 100 ... */
    for (int i = 0; i < 100; i++)
        post_nf(x, reading("d", i, 0));
    fanout_flush(x->f);
    pump(x, b, cb); /* b reads, a does not */
    assert_false(ca->killed);
    /* ... one more does not: a is dropped, b is not. */
    post(x, reading("d", 100, 0));
    assert_true(ca->killed);
    assert_false(cb->killed);
    assert_int_equal(x->m.ws_dropped_clients, 1);
    pump(x, b, cb);
    fx_free(x);
}

static void test_write_budget_and_choke(void **state)
{
    (void)state;
    fixture *x = fx_new(1024);
    conn *c;
    fanout_client *cl = fx_open(x, &c);
    pump(x, cl, c);
    size_t base = c->nframes;
    for (int i = 0; i < FANOUT_WRITE_BUDGET + 44; i++)
        post(x, reading("d", i, 0));
    assert_true(c->want_write);
    assert_int_equal(writable(x, cl, c), 0);
    assert_int_equal(c->nframes - base, FANOUT_WRITE_BUDGET);
    assert_true(c->want_write); /* the rest on the next callback */
    assert_int_equal(writable(x, cl, c), 0);
    assert_int_equal(c->nframes - base, FANOUT_WRITE_BUDGET + 44);
    assert_false(c->want_write);
    /* A choked socket: the first write goes (we were told it is writable),
     * then the loop stops and asks again. */
    c->choke_after = 1;
    base = c->nframes;
    for (int i = 0; i < 3; i++)
        post(x, reading("d", 1000 + i, 0));
    assert_int_equal(writable(x, cl, c), 0);
    assert_int_equal(c->nframes - base, 1);
    assert_true(c->want_write);
    pump(x, cl, c);
    assert_int_equal(c->nframes - base, 3);
    fx_free(x);
}

static void test_full_queue_drops_only_that_client(void **state)
{
    (void)state;
    fixture *x = fx_new(4);
    conn *ca, *cb;
    fanout_client *a = fx_open(x, &ca), *b = fx_open(x, &cb);
    pump(x, a, ca);
    pump(x, b, cb);
    stall(ca); /* a stops reading */
    size_t abase = ca->nframes, bbase = cb->nframes;
    for (int i = 0; i < 6; i++) {
        post(x, reading("d", i, 0));
        pump(x, b, cb); /* b reads, a does not */
    }
    assert_true(ca->killed);
    assert_false(cb->killed);
    assert_int_equal(x->m.ws_dropped_clients, 1);
    assert_int_equal(writable(x, a, ca), -1); /* closing: nothing more */
    assert_int_equal(ca->nframes, abase);
    assert_int_equal(cb->nframes - bbase, 6);
    cJSON *j[16];
    size_t n = messages(cb, j, 16);
    assert_int_equal(n, 7);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j[i], "data"), "seq")->valueint, (int)i - 1);
    free_all(j, n);
    fanout_close(x->f, a); /* lws closes it */
    post(x, reading("d", 6, 0));
    pump(x, b, cb);
    assert_int_equal(cb->nframes - bbase, 7);
    assert_int_equal(x->m.ws_dropped_clients, 1);
    assert_int_equal(x->m.ws_clients, 1);
    fx_free(x);
}

static int seq_of(const cJSON *j)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), "seq")->valueint;
}

/* A client that reads, only too slowly (a burst), is not closed when its
 * queue fills: its queued messages are dropped, it is told how many
 * ({"type":"resync","dropped":N}) and gets a fresh snapshot, then the live
 * stream again. Stalled after that (nothing written before the queue fills
 * again), it is closed as before. A client that keeps up sees none of it. */
static void test_lagging_client_resyncs(void **state)
{
    (void)state;
    fixture *x = fx_new(8);
    conn *ca, *cb;
    fanout_client *a = fx_open(x, &ca), *b = fx_open(x, &cb);
    pump(x, a, ca);
    pump(x, b, cb);
    cJSON *j[32];
    free_all(j, messages(ca, j, 32)); /* the first snapshots */
    free_all(j, messages(cb, j, 32));
    for (int i = 0; i < 4; i++) {
        post(x, reading("d", i, 0));
        pump(x, b, cb);
    }
    /* a takes one frame (then its socket is full): it is reading. */
    ca->choke_after = 1;
    assert_int_equal(writable(x, a, ca), 0);
    assert_int_equal(ca->nframes, 2);
    /* 1..3 queued; 4..8 fill the queue of 8; 9 overflows it. */
    for (int i = 4; i < 12; i++) {
        post(x, reading("d", i, 0));
        pump(x, b, cb);
    }
    assert_false(ca->killed);
    assert_int_equal(x->m.ws_dropped_clients, 0);
    assert_int_equal(x->m.ws_resyncs, 1);
    assert_int_equal(x->m.ws_resync_dropped, 8);
    ca->choke_after = 0;
    pump(x, a, ca);
    size_t n = messages(ca, j, 32);
    /* seq 0, the resync, a snapshot with the latest reading (11), then what
     * came after the resync (9, 10, 11) as before. */
    assert_int_equal(n, 6);
    assert_int_equal(seq_of(j[0]), 0);
    assert_string_equal(type_of(j[1]), "resync");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j[1], "dropped")->valueint, 8);
    assert_int_equal(snapshot_size(j[2]), 1);
    const cJSON *dev = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j[2], "devices"), 0);
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(dev, "last");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(last, "seq")->valueint, 11);
    for (size_t i = 3; i < n; i++)
        assert_int_equal(seq_of(j[i]), (int)i + 6);
    free_all(j, n);
    /* b kept up: every reading, in order, and no resync. */
    n = messages(cb, j, 32);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seq_of(j[i]), (int)i);
    free_all(j, n);
    /* a stops reading (FANOUT_STALL_MS choked): 8 fill its queue with
     * nothing written, 9 closes it. */
    stall(ca);
    for (int i = 12; i < 21; i++) {
        post(x, reading("d", i, 0));
        pump(x, b, cb);
    }
    assert_true(ca->killed);
    assert_int_equal(x->m.ws_dropped_clients, 1);
    assert_int_equal(x->m.ws_resyncs, 1);
    assert_false(cb->killed);
    fx_free(x);
}

/* The stall rule (the only one): a full queue on a connection that is not
 * choked is the web thread behind — resynced, however often; choked with
 * nothing written for less than FANOUT_STALL_MS of the fanout's clock —
 * still resynced; from FANOUT_STALL_MS on — closed. */
static void test_stall_rule(void **state)
{
    (void)state;
    fixture *x = fx_new(4);
    conn *c;
    fanout_client *cl = fx_ready(x, &c);
    for (int i = 0; i < 5; i++)
        post(x, reading("d", i, 0));
    assert_false(c->killed);
    assert_int_equal(x->m.ws_resyncs, 1);
    assert_int_equal(x->m.ws_resync_dropped, 4);
    for (int i = 5; i < 15; i++) /* two more overflows, nothing written */
        post(x, reading("d", i, 0));
    assert_false(c->killed);
    assert_int_equal(x->m.ws_resyncs, 3);
    pump(x, cl, c); /* written: the resync, the snapshot, the rest */
    c->choke_after = 1;
    c->writes = 1; /* its socket is full from here on */
    fake_now_ms += FANOUT_STALL_MS - 1;
    for (int i = 15; i < 20; i++)
        post(x, reading("d", i, 0));
    assert_false(c->killed); /* not long enough */
    assert_int_equal(x->m.ws_resyncs, 4);
    fake_now_ms += 1; /* FANOUT_STALL_MS since the last write */
    for (int i = 20; i < 24; i++)
        post(x, reading("d", i, 0));
    assert_true(c->killed);
    assert_int_equal(x->m.ws_dropped_clients, 1);
    assert_int_equal(x->m.ws_resyncs, 4);
    fx_free(x);
}

static void test_subscribe_during_half_sent_snapshot(void **state)
{
    (void)state;
    fixture *x = fx_new(64);
    for (int i = 0; i < 600; i++) {
        char id[16];
        snprintf(id, sizeof id, "dev%03d", i);
        hub_msg *m = reading(id, i, 400);
        live_apply(x->l, m);
        hub_msg_unref(m);
    }
    conn *c;
    fanout_client *cl = fx_open(x, &c);
    assert_int_equal(writable(x, cl, c), 0);
    assert_int_equal(c->nframes, 1);
    assert_int_equal(c->frames[0].kind, FANOUT_FIRST);
    assert_int_equal(c->frames[0].len, FANOUT_SNAPSHOT_CHUNK);
    receive(x, cl, "{\"type\":\"subscribe\",\"devices\":[\"dev007\"]}");
    pump(x, cl, c);
    assert_true(c->nframes >= 4);
    assert_int_equal(c->frames[c->nframes - 2].kind, FANOUT_FINAL);
    assert_int_equal(c->frames[c->nframes - 1].kind, FANOUT_TEXT);
    cJSON *j[4];
    size_t n = messages(c, j, 4);
    assert_int_equal(n, 2);
    assert_int_equal(snapshot_size(j[0]), 600); /* finished as it began */
    assert_int_equal(snapshot_size(j[1]), 1);   /* then the new subscription */
    free_all(j, n);
    fx_free(x);
}

static void test_bad_messages(void **state)
{
    (void)state;
    fixture *x = fx_new(64);
    post(x, reading("a", 1, 0));
    post(x, reading("b", 2, 0));
    conn *c;
    fanout_client *cl = fx_open(x, &c);
    receive(x, cl, "{\"type\":\"subscribe\",\"devices\":[\"b\"]}");
    pump(x, cl, c);
    cJSON *j[16];
    size_t n = messages(c, j, 16);
    free_all(j, n);
    static const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"type\":\"hello\"}",
        "{\"type\":\"subscribe\",\"batch\":1}",
        "{\"type\":\"subscribe\",\"devices\":\"b\"}",
        "{\"type\":\"subscribe\",\"devices\":[\"bad id!\"]}",
        "{\"type\":\"subscribe\",\"devices\":[7]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        receive(x, cl, bad[i]);
    pump(x, cl, c);
    n = messages(c, j, 16);
    assert_int_equal(n, sizeof bad / sizeof *bad);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(type_of(j[i]), "error");
        assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j[i], "error")));
    }
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j[2], "error")->valuestring, "unknown message type");
    free_all(j, n);
    assert_int_equal(x->m.ws_bad_messages, sizeof bad / sizeof *bad);
    /* The subscription in force is unchanged. */
    post(x, reading("a", 3, 0));
    post(x, reading("b", 4, 0));
    expect_one(x, cl, c, "sensor_data", "b");
    fx_free(x);
}

static void test_write_failure_closes(void **state)
{
    (void)state;
    fixture *x = fx_new(64);
    conn c = {0};
    fanout_client *cl = client_new(x, &c);
    c.fail = 1;
    assert_int_equal(writable(x, cl, &c), -1); /* the snapshot */
    client_free(x, cl, &c);

    conn d = {0};
    cl = client_new(x, &d);
    pump(x, cl, &d);
    d.fail = 1;
    post(x, reading("a", 1, 0));
    assert_int_equal(writable(x, cl, &d), -1); /* a live message */
    client_free(x, cl, &d);
    assert_int_equal(x->m.ws_dropped_clients, 0);
    fx_free(x);
}

/* ---- streamed snapshots, the subscribe rate ---- */

static void fill_fleet(fixture *x, int n)
{
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "dev%05d", (i * 7919) % n); /* not in sorted order */
        hub_msg *m = reading(id, i, 300);
        assert_int_equal(live_apply(x->l, m), 0);
        hub_msg_unref(m);
    }
}

static void test_snapshot_streamed_identical(void **state)
{
    (void)state;
    fixture *x = fx_new(64);
    fill_fleet(x, 5000);
    sbuf want;
    sbuf_init(&want, 0);
    sbuf_adds(&want, "{\"type\":\"snapshot\",\"devices\":");
    live_devices_array(x->l, NULL, NULL, &want);
    sbuf_adds(&want, "}");
    conn *c;
    fanout_client *cl = fx_open(x, &c);
    pump(x, cl, c);
    sbuf got;
    sbuf_init(&got, 0);
    for (size_t i = 0; i < c->nframes; i++) {
        assert_true(c->frames[i].len <= FANOUT_SNAPSHOT_CHUNK);
        assert_int_equal(c->frames[i].kind, i == 0 ? FANOUT_FIRST
                                           : i + 1 == c->nframes ? FANOUT_FINAL : FANOUT_CONTINUE);
        sbuf_add(&got, c->frames[i].data, c->frames[i].len);
    }
    assert_true(c->nframes > 10);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(sbuf_data(&got), sbuf_data(&want), want.len);
    /* A filtered one is the same as the model's filtered array. */
    receive(x, cl, "{\"type\":\"subscribe\",\"devices\":[\"dev00042\",\"dev04999\",\"nope\"]}");
    size_t base = c->nframes;
    pump(x, cl, c);
    assert_int_equal(c->nframes, base + 1);
    assert_int_equal(c->frames[base].kind, FANOUT_TEXT);
    sbuf one;
    sbuf_init(&one, 0);
    sbuf_adds(&one, "{\"type\":\"snapshot\",\"devices\":[");
    live_device_json(x->l, "dev00042", &one);
    sbuf_adds(&one, ",");
    live_device_json(x->l, "dev04999", &one);
    sbuf_adds(&one, "]}");
    assert_string_equal(c->frames[base].data, sbuf_data(&one));
    sbuf_free(&one);
    sbuf_free(&got);
    sbuf_free(&want);
    fx_free(x);
}

/* 40 clients that never read (one writable callback each, then the socket
 * is full) hold about one chunk each, not a fleet snapshot each. */
static void test_snapshot_memory_bounded_for_idle_clients(void **state)
{
    (void)state;
    fixture *x = fx_new(64);
    fill_fleet(x, 5000);
    enum { N = 40 };
    conn c[N];
    fanout_client *cl[N];
    memset(c, 0, sizeof c);
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < N; i++) {
        cl[i] = client_new(x, &c[i]);
        assert_int_equal(writable(x, cl[i], &c[i]), 0);
        assert_int_equal(c[i].nframes, 1);
        free(c[i].frames[0].data); /* the transport's copy is not the fanout's */
        c[i].frames[0].data = NULL;
    }
    size_t grown = mallinfo2().uordblks - before;
    size_t fleet = 5000u * 300u; /* one full snapshot is larger than this */
    print_message("40 idle clients hold %zu bytes (one snapshot > %zu)\n", grown, fleet);
    assert_true(grown < (size_t)N * 2 * FANOUT_SNAPSHOT_CHUNK);
    assert_true(grown < fleet);
    for (int i = 0; i < N; i++)
        client_free(x, cl[i], &c[i]);
    fx_free(x);
}

static void test_subscribe_rate_limited_and_coalesced(void **state)
{
    (void)state;
    fixture *x = fx_new(64);
    fill_fleet(x, 50);
    conn *c;
    fanout_client *cl = fx_open(x, &c);
    pump(x, cl, c);
    cJSON *j[16];
    free_all(j, messages(c, j, 16));
    fake_now_ms = 1000;
    for (int i = 0; i < 8; i++) /* no writable in between: coalesced */
        receive(x, cl, "{\"type\":\"subscribe\",\"devices\":null}");
    pump(x, cl, c);
    size_t n = messages(c, j, 16);
    assert_int_equal(n, 4); /* one snapshot, three refusals */
    int snaps = 0, errs = 0;
    for (size_t i = 0; i < n; i++) {
        snaps += !strcmp(type_of(j[i]), "snapshot");
        errs += !strcmp(type_of(j[i]), "error");
    }
    assert_int_equal(snaps, 1);
    assert_int_equal(errs, 3);
    free_all(j, n);
    assert_int_equal(x->m.ws_subscribe_limited, 3);
    assert_int_equal(x->m.ws_bad_messages, 0);
    fake_now_ms = 1000 + FANOUT_SUBSCRIBE_WINDOW_MS; /* the window has passed */
    receive(x, cl, "{\"type\":\"subscribe\",\"devices\":[\"dev00001\"]}");
    pump(x, cl, c);
    n = messages(c, j, 16);
    assert_int_equal(n, 1);
    assert_int_equal(snapshot_size(j[0]), 1);
    free_all(j, n);
    fx_free(x);
}

static void test_parse_subscribe(void **state)
{
    (void)state;
    fanout_subscribe s;
    static const char ok[] = "{\"type\":\"subscribe\",\"devices\":[\"b\",\"a\"],\"batch\":true}";
    assert_int_equal(fanout_parse_subscribe(ok, sizeof ok - 1, &s), FANOUT_PARSE_OK);
    assert_int_equal(s.nids, 2);
    assert_string_equal(s.ids[0], "a");
    assert_true(s.filtered && s.batch_set && s.batch);
    fanout_subscribe_free(&s);
    static const char all[] = "{\"type\":\"subscribe\"}";
    assert_int_equal(fanout_parse_subscribe(all, sizeof all - 1, &s), FANOUT_PARSE_OK);
    assert_false(s.filtered || s.batch_set);
    fanout_subscribe_free(&s);
    assert_int_equal(fanout_parse_subscribe("{\"type\":1}", 10, &s), FANOUT_PARSE_BAD);
    assert_non_null(s.err);
    fanout_subscribe_free(&s);
    static const char bad[] = "{\"type\":\"subscribe\",\"devices\":[\"../x\"]}";
    assert_int_equal(fanout_parse_subscribe(bad, sizeof bad - 1, &s), FANOUT_PARSE_BAD_SUBSCRIBE);
    assert_null(s.ids);
    fanout_subscribe_free(&s);
}

/* ---- the hub in front: bounded inbox, one wake in flight ---- */

static void count_wake(void *arg) { (*(int *)arg)++; }

/* A hub (ws_queue, inbox bound) on the fake port, its wakes counted. */
static hub *hub_new(vigil_metrics *m, size_t ws_queue, size_t inbox, int *wakes)
{
    memset(m, 0, sizeof *m);
    hub *h = hub_create(m, ws_queue, inbox);
    assert_non_null(h);
    *wakes = 0;
    hub_set_waker(h, count_wake, wakes);
    hub_set_conn_ops(h, &ops);
    return h;
}

static void test_hub_inbox(void **state)
{
    (void)state;
    vigil_metrics m;
    int wakes;
    hub *h = hub_new(&m, 64, 4, &wakes);
    conn c = {0};
    hub_client *cl = calloc(1, hub_client_size());
    assert_int_equal(hub_client_open(h, cl, &c), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(hub_post(h, reading("a", i, 0)), 0);
    assert_int_equal(wakes, 1); /* one per empty → non-empty */
    assert_int_equal(hub_post(h, reading("a", 4, 0)), -1);
    assert_int_equal(m.hub_dropped, 1);
    assert_int_equal(m.hub_queue_depth, 4);
    hub_drain(h);
    assert_int_equal(m.hub_queue_depth, 0);
    assert_int_equal(m.broadcast, 4);
    assert_int_equal(hub_device_count(h), 1);
    assert_true(hub_device_known(h, "a"));
    assert_int_equal(hub_post(h, reading("b", 5, 0)), 0);
    assert_int_equal(wakes, 2);
    c.want_write = 1;
    for (int i = 0; i < 100 && c.want_write; i++) {
        c.want_write = 0;
        assert_int_equal(hub_client_writable(h, cl), 0);
    }
    cJSON *j[8];
    size_t n = messages(&c, j, 8);
    assert_int_equal(n, 5); /* snapshot + 4; b is still in the inbox */
    free_all(j, n);
    hub_client_close(h, cl);
    free(cl);
    conn_free(&c);
    hub_destroy(h); /* releases what is still in the inbox */
}

/* hub_post_quiet never wakes; hub_kick wakes once for the burst, and not at
 * all when nothing is waiting or a wake is already in flight. */
static void test_hub_quiet_post_and_kick(void **state)
{
    (void)state;
    vigil_metrics m;
    int wakes;
    hub *h = hub_new(&m, 64, 4, &wakes);
    hub_kick(h);
    assert_int_equal(wakes, 0); /* empty inbox: nothing to wake for */
    for (int i = 0; i < 4; i++)
        assert_int_equal(hub_post_quiet(h, reading("a", i, 0)), 0);
    assert_int_equal(wakes, 0);
    assert_int_equal(hub_post_quiet(h, reading("a", 4, 0)), -1); /* full: same rule */
    assert_int_equal(m.hub_dropped, 1);
    hub_kick(h);
    assert_int_equal(wakes, 1);
    hub_kick(h);
    assert_int_equal(wakes, 1); /* one wake in flight */
    hub_drain(h);
    assert_int_equal(m.broadcast, 4);
    hub_kick(h);
    assert_int_equal(wakes, 1); /* drained: nothing to wake for */
    assert_int_equal(hub_post_quiet(h, reading("b", 5, 0)), 0);
    hub_kick(h);
    assert_int_equal(wakes, 2);
    hub_destroy(h);
}

/* --ws-flush-ms: within the window of the last drain nothing is drained and
 * posts do not wake; after it, or with a backlog, it drains at once; 0 keeps
 * today's drain at every wake. */
static void test_hub_paced_drain(void **state)
{
    (void)state;
    vigil_metrics m;
    int wakes;
    hub *h = hub_new(&m, 1024, 600, &wakes);
    assert_int_equal(hub_post(h, reading("a", 1, 0)), 0);
    assert_int_equal(hub_drain_paced(h, vclock_mono_ns()), 0); /* window 0: at once */
    assert_int_equal(m.broadcast, 1);

    hub_set_flush_window(h, 5);
    uint64_t t0 = vclock_mono_ns(); /* >= the drain's own timestamp */
    assert_int_equal(hub_post(h, reading("a", 2, 0)), 0);
    assert_int_equal(wakes, 2);
    uint64_t hold = hub_drain_paced(h, t0 + 1000000u);
    assert_true(hold > 0 && hold <= 4000000u);
    assert_int_equal(m.broadcast, 1); /* held */
    assert_int_equal(hub_post(h, reading("a", 3, 0)), 0);
    assert_int_equal(wakes, 2); /* no wake while held */
    assert_int_equal(hub_drain_paced(h, t0 + 10000000u), 0); /* window over */
    assert_int_equal(m.broadcast, 3);
    assert_int_equal(hub_post(h, reading("a", 4, 0)), 0);
    assert_int_equal(wakes, 3); /* drained: posts wake again */
    hub_drain(h);

    /* A backlog (more than a drain takes) is not held. */
    for (int i = 0; i < 300; i++)
        assert_int_equal(hub_post_quiet(h, reading("b", 10 + i, 0)), 0);
    hub_drain(h);
    assert_int_equal(m.broadcast, 4 + 256);
    assert_int_equal(hub_drain_paced(h, vclock_mono_ns()), 0);
    assert_int_equal(m.broadcast, 4 + 300);
    hub_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_then_live),
        cmocka_unit_test(test_subscribe_filter),
        cmocka_unit_test(test_batch_frames),
        cmocka_unit_test(test_shared_batch_frames),
        cmocka_unit_test(test_shared_batch_counts_against_queue),
        cmocka_unit_test(test_write_budget_and_choke),
        cmocka_unit_test(test_full_queue_drops_only_that_client),
        cmocka_unit_test(test_lagging_client_resyncs),
        cmocka_unit_test(test_stall_rule),
        cmocka_unit_test(test_subscribe_during_half_sent_snapshot),
        cmocka_unit_test(test_bad_messages),
        cmocka_unit_test(test_write_failure_closes),
        cmocka_unit_test(test_hub_inbox),
        cmocka_unit_test(test_hub_quiet_post_and_kick),
        cmocka_unit_test(test_hub_paced_drain),
        cmocka_unit_test(test_snapshot_streamed_identical),
        cmocka_unit_test(test_snapshot_memory_bounded_for_idle_clients),
        cmocka_unit_test(test_subscribe_rate_limited_and_coalesced),
        cmocka_unit_test(test_parse_subscribe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
