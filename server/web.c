/* web — see web.h. One lws protocol serves both HTTP and the WebSocket, so a
 * browser's plain `new WebSocket(url)` (no subprotocol) lands here too. */
#include "web.h"
#include "vclock.h"

#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "command.h"
#include "idtable.h"
#include "config.h"
#include "fanout.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "query.h"
#include "store.h"
#include "topics.h"
#include "tracker.h"

_Static_assert(HUB_PRE >= LWS_PRE, "HUB_PRE must leave room for lws' frame header");

#define TAG "web"
#define BODY_MAX 4096                 /* largest request body */
#define WS_RX_MAX (1024 * 1024)       /* largest message from a WebSocket client */
#define HTTP_CHUNK (16 * 1024)        /* bytes per HTTP writable callback */
#define MAX_POINTS_DEFAULT 1000
#define MAX_POINTS_LIMIT 10000

struct web {
    const vigil_config *cfg;
    hub *hub;
    store *st;
    tracker *trk;                     /* may be NULL: completeness off */
    vigil_publisher pub;
    vigil_metrics *m;
    query *q;                         /* history reads off this thread */
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    pthread_t thread;
    _Atomic int stop;
    uint64_t id_counter;              /* command ids; web thread only */
    int https;                        /* the listener speaks TLS only: cookies get Secure */
    char *web_root_real;              /* realpath of cfg->web_root, NULL if none */
    idtable peers;                    /* web__peer: open connections per address; web thread */
    idtable conns;                    /* web__conn: the address each counted wsi is counted on */
};

/* One peer address and how many connections it holds open. */
typedef struct web__peer {
    char addr[64];
    unsigned n;
} web__peer;

static const void *web__peer_key(const void *e) { return ((const web__peer *)e)->addr; }
static const idtable_type web__peer_type = {sizeof(web__peer), web__peer_key, idtable_hash_str,
                                            idtable_equal_str};
/* A counted connection (lws gives no per-session storage before the first
 * request, so the wsi itself is the key). */
typedef struct web__conn {
    int64_t wsi;
    char addr[64];
} web__conn;

static const void *web__conn_key(const void *e) { return &((const web__conn *)e)->wsi; }
static const idtable_type web__conn_type = {sizeof(web__conn), web__conn_key, idtable_hash_i64,
                                            idtable_equal_i64};
#define WEB_PEERS_MAX 65536 /* addresses tracked at once; past it new ones are refused */

typedef enum method { M_OTHER = 0, M_GET, M_POST, M_PUT, M_DELETE } method;
typedef enum route { R_NONE = 0, R_COMMANDS, R_CONFIG } route;

/* Per-connection storage (lws zeroes it). For HTTP the fields describe the
 * current transaction; for a WebSocket, `client` is the hub's state. */
typedef struct pss {
    int is_ws;
    /* HTTP */
    method meth;
    route pending;                    /* a route waiting for its body */
    char dev[TELEMETRY_ID_MAX + 1];
    sbuf body;
    int body_too_large;
    sbuf resp;                        /* headroom LWS_PRE */
    size_t resp_off;
    int resp_active;
    uint64_t q_serial;                /* query awaiting its answer, 0 if none */
    unsigned q_status;
    int q_ready;                      /* resp holds the query's answer: send it */
    /* WebSocket */
    sbuf rx;
    alignas(max_align_t) unsigned char client[];
} pss;

static web *web__of(struct lws *wsi) { return lws_context_user(lws_get_context(wsi)); }

static void web__http_reset(pss *p)
{
    sbuf_free(&p->body);
    sbuf_free(&p->resp);
    p->resp_off = 0;
    p->resp_active = 0;
    p->pending = R_NONE;
    p->body_too_large = 0;
}

/* ---- responses ---- */

/* The dashboard is a Vite build: one module script and stylesheet from
 * 'self'; the UI sets inline style attributes (hence 'unsafe-inline' for
 * styles only); the live stream is ws:/wss: on this host. */
#define WEB_CSP "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; " \
                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"

/* Headers every HTTP response carries (API and static files). */
static int web__security_headers(struct lws *wsi, const web *w, unsigned char **p, unsigned char *end)
{
    static const char *const hdr[][2] = {
        {"content-security-policy:", WEB_CSP},
        {"x-frame-options:", "DENY"},
        {"x-content-type-options:", "nosniff"},
        {"referrer-policy:", "no-referrer"},
    };
    for (size_t i = 0; i < sizeof hdr / sizeof *hdr; i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)hdr[i][0],
                                        (const unsigned char *)hdr[i][1], (int)strlen(hdr[i][1]), p, end))
            return -1;
    static const char hsts[] = "max-age=31536000";
    if (w->https && lws_add_http_header_by_name(wsi, (const unsigned char *)"strict-transport-security:",
                                                (const unsigned char *)hsts, (int)sizeof hsts - 1, p, end))
        return -1;
    return 0;
}

static int web__send_headers(struct lws *wsi, unsigned status, const char *ctype, size_t len,
                        const char *extra_name, const char *extra_value)
{
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end))
        return -1;
    if (web__security_headers(wsi, web__of(wsi), &p, end))
        return -1;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (extra_name && lws_add_http_header_by_name(wsi, (const unsigned char *)extra_name,
                                                  (const unsigned char *)extra_value,
                                                  (int)strlen(extra_value), &p, end))
        return -1;
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

/* Sends p->resp as the body; the rest goes out from HTTP_WRITEABLE. */
static int web__respond(struct lws *wsi, pss *p, unsigned status, const char *ctype,
                   const char *extra_name, const char *extra_value)
{
    web *w = web__of(wsi);
    atomic_fetch_add_explicit(&w->m->http_requests, 1, memory_order_relaxed);
    if (!sbuf_ok(&p->resp)) {
        sbuf_reset(&p->resp);
        sbuf_adds(&p->resp, "{\"error\":\"out of memory\"}");
        status = 500;
        ctype = "application/json";
    }
    if (web__send_headers(wsi, status, ctype, p->resp.len, extra_name, extra_value))
        return -1;
    p->resp_active = 1;
    p->resp_off = 0;
    lws_callback_on_writable(wsi);
    return 0;
}

static int web__respond_json(struct lws *wsi, pss *p, unsigned status)
{
    return web__respond(wsi, p, status, "application/json", NULL, NULL);
}

static int web__respond_error(struct lws *wsi, pss *p, unsigned status, const char *msg)
{
    sbuf_free(&p->resp);
    sbuf_init(&p->resp, LWS_PRE);
    sbuf_adds(&p->resp, "{\"error\":");
    sbuf_add_json_str(&p->resp, msg);
    sbuf_adds(&p->resp, "}");
    return web__respond_json(wsi, p, status);
}

static int web__respond_405(struct lws *wsi, pss *p, const char *allow)
{
    sbuf_free(&p->resp);
    sbuf_init(&p->resp, LWS_PRE);
    sbuf_addf(&p->resp, "{\"error\":\"method not allowed; use %s\"}", allow);
    return web__respond(wsi, p, 405, "application/json", "allow:", allow);
}

static int web__write_more(struct lws *wsi, pss *p)
{
    if (!p->resp_active)
        return 0;
    size_t left = p->resp.len - p->resp_off;
    size_t n = left > HTTP_CHUNK ? HTTP_CHUNK : left;
    int final = n == left;
    /* The bytes before the chunk are headroom or already sent. */
    unsigned char *data = (unsigned char *)sbuf_data(&p->resp);
    if (!data) { /* empty body */
        static unsigned char empty[LWS_PRE + 1];
        data = empty + LWS_PRE;
    }
    if (lws_write(wsi, data + p->resp_off, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1;
    p->resp_off += n;
    if (!final) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    web__http_reset(p);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- request parsing ---- */

static method web__get_method(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
        return M_GET;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
        return M_POST;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI))
        return M_PUT;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI))
        return M_DELETE;
    return M_OTHER;
}

/* Reads query argument `name` ("from=") as an int64. Returns 1 if present
 * and valid, 0 if absent, -1 if malformed. */
static int web__arg_int(struct lws *wsi, const char *name, int64_t *out)
{
    char buf[64];
    const char *v = lws_get_urlarg_by_name(wsi, name, buf, sizeof buf);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    *out = x;
    return 1;
}

/* ---- routes ---- */

/* Hands a validated read to the query worker; the answer comes back through
 * web__query_answers. A full queue answers 503 at once. */
static int web__query_submit(struct lws *wsi, pss *p, web *w, query_job *job)
{
    job->conn = wsi;
    snprintf(job->dev, sizeof job->dev, "%s", p->dev);
    if (query_submit(w->q, job, &p->q_serial) != QUERY_OK) {
        p->q_serial = 0;
        atomic_fetch_add_explicit(&w->m->http_busy, 1, memory_order_relaxed);
        return web__respond_error(wsi, p, 503, "busy, retry");
    }
    return 0; /* answered from HTTP_WRITEABLE once the worker is done */
}

/* The connection is closing or starting another transaction: drop its answer. */
static void web__query_forget(web *w, pss *p)
{
    if (w && w->q && p->q_serial)
        query_cancel(w->q, p->q_serial);
    p->q_serial = 0;
    p->q_ready = 0;
}

/* Takes the worker's finished answers. query_cancel on close guarantees each
 * conn is a live wsi; the serial check guards against a reused session. */
static void web__query_answers(web *w)
{
    query_done d;
    for (size_t n = 0; w->q && n < 256 && query_take(w->q, &d); n++) {
        pss *p = lws_wsi_user(d.conn);
        if (!p || p->q_serial != d.serial) {
            sbuf_free(&d.body);
            continue;
        }
        p->q_serial = 0;
        sbuf_free(&p->resp);
        p->resp = d.body;
        p->q_status = d.status;
        p->q_ready = 1;
        lws_callback_on_writable(d.conn);
    }
}

static int web__route_readings(struct lws *wsi, pss *p, web *w)
{
    int64_t to = vclock_wall_ms(), from = to - 3600 * 1000, maxp = MAX_POINTS_DEFAULT;
    int rf = web__arg_int(wsi, "from=", &from), rt = web__arg_int(wsi, "to=", &to),
        rm = web__arg_int(wsi, "max_points=", &maxp);
    if (rf < 0 || rt < 0)
        return web__respond_error(wsi, p, 400, "from and to must be epoch milliseconds");
    if (rf == 0 && rt == 1)
        from = to - 3600 * 1000;
    if (rm < 0 || maxp < 1 || maxp > MAX_POINTS_LIMIT)
        return web__respond_error(wsi, p, 400, "max_points must be an integer in 1..10000");
    if (from > to)
        return web__respond_error(wsi, p, 400, "from must not be after to");
    query_job job = {.kind = QUERY_READINGS, .from = from, .to = to, .max_points = maxp};
    return web__query_submit(wsi, p, w, &job);
}

static int web__route_completeness(struct lws *wsi, pss *p, web *w)
{
    const int64_t seq_max = (int64_t)1 << 53;
    int64_t from = 0, to = seq_max, boot = -1;
    int rf = web__arg_int(wsi, "from=", &from), rt = web__arg_int(wsi, "to=", &to),
        rb = web__arg_int(wsi, "boot=", &boot);
    if (rf < 0 || rt < 0 || from < 0 || to < 0 || from > seq_max || to > seq_max)
        return web__respond_error(wsi, p, 400, "from and to must be seq numbers in 0..2^53");
    if (rb < 0 || (rb == 1 && (boot < 0 || boot > seq_max)))
        return web__respond_error(wsi, p, 400, "boot must be an integer in 0..2^53");
    if (from > to)
        return web__respond_error(wsi, p, 400, "from must not be after to");
    if (!w->trk)
        return web__respond_error(wsi, p, 503, "completeness tracking is off");
    if (!hub_device_known(w->hub, p->dev)) /* the hub is web-thread only */
        return web__respond_error(wsi, p, 404, "unknown device");
    query_job job = {.kind = QUERY_COMPLETENESS, .from = from, .to = to, .boot = boot};
    return web__query_submit(wsi, p, w, &job);
}

static int web__route_publish(struct lws *wsi, pss *p, web *w)
{
    char err[160], id[48], topic[128];
    sbuf payload;
    sbuf_init(&payload, 0);
    int is_cfg = p->pending == R_CONFIG;
    snprintf(id, sizeof id, "%s-%" PRId64 "-%" PRIu64, is_cfg ? "cfg" : "c", vclock_wall_ms(), ++w->id_counter);
    const char *body = sbuf_data(&p->body) ? sbuf_data(&p->body) : "";
    int rc = is_cfg ? command_build_config(body, p->body.len, id, &payload, err, sizeof err)
                    : command_build(body, p->body.len, id, &payload, err, sizeof err);
    if (rc != 0) {
        sbuf_free(&payload);
        return web__respond_error(wsi, p, 400, err);
    }
    if (topics_build(is_cfg ? TOPICS_CONFIG : TOPICS_CONTROL, p->dev, topic, sizeof topic, NULL) !=
        TOPICS_OK) {
        sbuf_free(&payload);
        return web__respond_error(wsi, p, 400, "invalid device id");
    }
    /* Config is retained, so a device that is offline now gets it when it
     * connects; commands are not: they mean "now". */
    publish_err e = w->pub.publish(w->pub.ctx, topic, sbuf_data(&payload), payload.len, 1, is_cfg);
    if (e != PUBLISH_OK) {
        sbuf_free(&payload);
        return web__respond_error(wsi, p, 503, e == PUBLISH_ENOTCONN ? "broker not connected"
                                          : e == PUBLISH_EFULL  ? "publish queue full, retry"
                                                               : "publish failed");
    }
    atomic_fetch_add_explicit(is_cfg ? &w->m->configs_sent : &w->m->commands_sent, 1,
                              memory_order_relaxed);
    sbuf_free(&p->resp);
    sbuf_init(&p->resp, LWS_PRE);
    sbuf_addf(&p->resp, "{\"%s\":\"%s\",\"device_id\":", is_cfg ? "cfg_id" : "cmd_id", id);
    sbuf_add_json_str(&p->resp, p->dev);
    sbuf_addf(&p->resp, ",\"%s\":", is_cfg ? "config" : "command");
    sbuf_add(&p->resp, sbuf_data(&payload), payload.len);
    sbuf_adds(&p->resp, "}");
    sbuf_free(&payload);
    return web__respond_json(wsi, p, 202);
}

/* 1 if path ("/a/b.js") may name a static file: no dot-names anywhere
 * (dotfiles, ".", ".."), no empty segments, no backslashes. */
static int web__static_path_ok(const char *path)
{
    if (path[0] != '/' || strchr(path, '\\') || strlen(path) > 512)
        return 0;
    for (const char *seg = path; seg; seg = strchr(seg + 1, '/')) {
        if (seg[1] == '.' || seg[1] == '/')
            return 0;
    }
    return 1;
}

/* Resolves web-root-relative rel into full. 1 if it is a regular file
 * reached without any symlink (its realpath is exactly root + rel), 0 if not. */
static int web__static_file(const web *w, const char *rel, char *full, size_t cap)
{
    if ((size_t)snprintf(full, cap, "%s%s", w->web_root_real, rel) >= cap)
        return 0;
    char *real = realpath(full, NULL);
    int ok = real && !strcmp(real, full);
    free(real);
    struct stat st;
    return ok && lstat(full, &st) == 0 && S_ISREG(st.st_mode);
}

/* Extra headers for lws_serve_http_file, formatted by lws itself. */
static int web__static_headers(struct lws *wsi, const web *w, unsigned char *buf, size_t cap, int *len)
{
    unsigned char *p = buf, *end = buf + cap - 1;
    if (web__security_headers(wsi, w, &p, end))
        return -1;
    *len = (int)(p - buf);
    return 0;
}

static int web__serve_static(struct lws *wsi, pss *p, web *w, const char *path)
{
    if (!w->cfg->web_root)
        return web__respond_error(wsi, p, 404, "not found");
    if (!web__static_path_ok(path))
        return web__respond_error(wsi, p, 400, "bad path");
    if (!w->web_root_real)
        return web__respond_error(wsi, p, 404, "dashboard not built");
    char full[1024];
    if (!web__static_file(w, !strcmp(path, "/") ? "/index.html" : path, full, sizeof full)) {
        /* Client-side routes fall back to the app; missing assets are 404. */
        if (strchr(strrchr(path, '/'), '.'))
            return web__respond_error(wsi, p, 404, "not found");
        if (!web__static_file(w, "/index.html", full, sizeof full))
            return web__respond_error(wsi, p, 404, "dashboard not built");
    }
    unsigned char hdrs[1024];
    int hlen;
    if (web__static_headers(wsi, w, hdrs, sizeof hdrs, &hlen))
        return -1;
    const char *mime = lws_get_mimetype(full, NULL);
    atomic_fetch_add_explicit(&w->m->http_requests, 1, memory_order_relaxed);
    int n = lws_serve_http_file(wsi, full, mime ? mime : "application/octet-stream", (const char *)hdrs, hlen);
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
        return -1;
    return 0;
}

/* Splits /api/devices/{id}[/rest]. Returns 0 and fills id/rest, or -1. */
static int web__split_device_path(const char *s, char *id, const char **rest)
{
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (!telemetry_id_valid(s, n))
        return -1;
    memcpy(id, s, n);
    id[n] = 0;
    *rest = slash ? slash : "";
    return 0;
}

static int web__handle_http(struct lws *wsi, pss *p, const char *path)
{
    web *w = web__of(wsi);
    web__query_forget(w, p);
    web__http_reset(p);
    sbuf_init(&p->resp, LWS_PRE);
    p->meth = web__get_method(wsi);

    if (!strcmp(path, "/healthz")) {
        if (p->meth != M_GET)
            return web__respond_405(wsi, p, "GET");
        store_stats ss;
        store_get_stats(w->st, &ss);
        int broker = w->pub.connected(w->pub.ctx), ok = broker && ss.writable;
        sbuf_addf(&p->resp, "{\"ok\":%s,\"broker_connected\":%s,\"store_writable\":%s,"
                            "\"store_queue_depth\":%zu,\"devices\":%zu,\"plain_http_exposed\":%s}",
                  ok ? "true" : "false", broker ? "true" : "false", ss.writable ? "true" : "false",
                  ss.queue_depth, hub_device_count(w->hub), w->cfg->plain_http_exposed ? "true" : "false");
        return web__respond_json(wsi, p, ok ? 200 : 503);
    }
    if (!strcmp(path, "/metrics")) {
        if (p->meth != M_GET)
            return web__respond_405(wsi, p, "GET");
        store_stats ss;
        store_get_stats(w->st, &ss);
        metrics_render(w->m, &ss, &p->resp);
        return web__respond(wsi, p, 200, "text/plain; version=0.0.4", NULL, NULL);
    }
    if (!strcmp(path, "/api/devices") || !strcmp(path, "/api/devices/")) {
        if (p->meth != M_GET)
            return web__respond_405(wsi, p, "GET");
        hub_devices_json(w->hub, &p->resp);
        return web__respond_json(wsi, p, 200);
    }
    if (!strncmp(path, "/api/devices/", 13)) {
        const char *rest;
        if (web__split_device_path(path + 13, p->dev, &rest) != 0)
            return web__respond_error(wsi, p, 400, "invalid device id (1-64 of A-Z a-z 0-9 _ . -)");
        if (!*rest) {
            if (p->meth != M_GET)
                return web__respond_405(wsi, p, "GET");
            if (hub_device_json(w->hub, p->dev, &p->resp) != 0)
                return web__respond_error(wsi, p, 404, "unknown device");
            return web__respond_json(wsi, p, 200);
        }
        if (!strcmp(rest, "/completeness")) {
            if (p->meth != M_GET)
                return web__respond_405(wsi, p, "GET");
            return web__route_completeness(wsi, p, w);
        }
        if (!strcmp(rest, "/readings")) {
            if (p->meth != M_GET)
                return web__respond_405(wsi, p, "GET");
            return web__route_readings(wsi, p, w);
        }
        int is_cmd = !strcmp(rest, "/commands"), is_cfg = !strcmp(rest, "/config");
        if (is_cmd || is_cfg) {
            if (is_cmd && p->meth != M_POST)
                return web__respond_405(wsi, p, "POST");
            if (is_cfg && p->meth != M_PUT)
                return web__respond_405(wsi, p, "PUT");
            if (is_cmd && !hub_device_known(w->hub, p->dev))
                return web__respond_error(wsi, p, 404, "unknown device");
            char cl[24];
            long long clen = -1;
            if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
                clen = atoll(cl);
            if (clen > BODY_MAX)
                return web__respond_error(wsi, p, 413, "body larger than 4096 bytes");
            if (clen <= 0)
                return web__respond_error(wsi, p, 400, "a JSON body is required");
            p->pending = is_cmd ? R_COMMANDS : R_CONFIG;
            sbuf_init(&p->body, 0);
            return 0; /* answered at HTTP_BODY_COMPLETION */
        }
        return web__respond_error(wsi, p, 404, "unknown route");
    }
    if (!strncmp(path, "/api", 4) && (path[4] == '/' || !path[4]))
        return web__respond_error(wsi, p, 404, "unknown route");
    if (p->meth != M_GET)
        return web__respond_405(wsi, p, "GET");
    return web__serve_static(wsi, p, w, path);
}

/* ---- per-address connection limit (slowloris) ---- */

/* A new network connection: counted against its address; over
 * --max-conns-per-ip it is closed at once (-1), before it holds a header
 * buffer. */
static int web__peer_admit(struct lws *wsi)
{
    web *w = web__of(wsi);
    web__conn c = {.wsi = (int64_t)(intptr_t)wsi};
    lws_get_peer_simple(wsi, c.addr, sizeof c.addr);
    web__peer key = {.n = 0}, *e = idtable_find(&w->peers, c.addr);
    memcpy(key.addr, c.addr, sizeof key.addr);
    if (!e && idtable_put(&w->peers, &key, (void **)&e) != IDTABLE_OK)
        return -1;
    if (e->n >= (unsigned)w->cfg->max_conns_per_ip) {
        atomic_fetch_add_explicit(&w->m->http_conn_refused, 1, memory_order_relaxed);
        LOG_D(TAG, "closing a connection from %s: it already holds %u", c.addr, e->n);
        return -1; /* its WSI_DESTROY finds no entry in conns */
    }
    if (idtable_put(&w->conns, &c, NULL) != IDTABLE_OK)
        return -1;
    e->n++;
    return 0;
}

static void web__peer_release(struct lws *wsi)
{
    web *w = web__of(wsi);
    int64_t k = (int64_t)(intptr_t)wsi;
    web__conn c;
    if (!w || idtable_remove(&w->conns, &k, &c) != IDTABLE_OK)
        return; /* not a counted network connection (a listener, an h2 stream, refused) */
    web__peer *e = idtable_find(&w->peers, c.addr);
    if (e && --e->n == 0)
        idtable_remove(&w->peers, c.addr, NULL);
}

/* 1 if a WebSocket upgrade must be refused: --max-ws-clients are
 * connected. It is answered 503 here, before the upgrade. */
static int web__ws_over_cap(struct lws *wsi)
{
    web *w = web__of(wsi);
    if (atomic_load_explicit(&w->m->ws_clients, memory_order_relaxed) < (uint64_t)w->cfg->max_ws_clients)
        return 0;
    atomic_fetch_add_explicit(&w->m->ws_refused, 1, memory_order_relaxed);
    lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "too many WebSocket clients");
    return 1;
}

/* ---- the protocol callback ---- */

static int web__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    pss *p = user;
    web *w;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        w = lws_context_user(lws_get_context(wsi));
        if (w) {
            hub_drain(w->hub);
            web__query_answers(w);
        }
        return 0;

    case LWS_CALLBACK_HTTP: {
        char path[600];
        snprintf(path, sizeof path, "%s", in ? (const char *)in : "/");
        return web__handle_http(wsi, p, path);
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (p->pending) {
            if (p->body.len + len > BODY_MAX)
                p->body_too_large = 1;
            else
                sbuf_add(&p->body, in, len);
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!p->pending)
            return 0;
        if (p->body_too_large)
            return web__respond_error(wsi, p, 413, "body larger than 4096 bytes");
        return web__route_publish(wsi, p, web__of(wsi));
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (p->q_ready) {
            p->q_ready = 0;
            return web__respond_json(wsi, p, p->q_status);
        }
        return web__write_more(wsi, p);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return web__peer_admit(wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_WSI_DESTROY: /* the last word on a wsi: its answer must not find it */
        if (reason == LWS_CALLBACK_WSI_DESTROY)
            web__peer_release(wsi);
        if (p && !p->is_ws) {
            web__query_forget(web__of(wsi), p);
            web__http_reset(p);
        }
        return 0;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws") != 0)
            return 1; /* WebSockets only on /ws */
        return web__ws_over_cap(wsi);
    }
    case LWS_CALLBACK_ESTABLISHED:
        w = web__of(wsi);
        web__http_reset(p);
        p->is_ws = 1;
        sbuf_init(&p->rx, 0);
        return hub_client_open(w->hub, (hub_client *)p->client, wsi) ? -1 : 0;
    case LWS_CALLBACK_RECEIVE:
        w = web__of(wsi);
        if (p->rx.len + len > WS_RX_MAX) {
            LOG_W(TAG, "WebSocket client message over %d bytes: closing", WS_RX_MAX);
            return -1;
        }
        sbuf_add(&p->rx, in, len);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            hub_client_receive(w->hub, (hub_client *)p->client, sbuf_data(&p->rx) ? sbuf_data(&p->rx) : "",
                               p->rx.len, vclock_mono_ms());
            sbuf_reset(&p->rx);
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return hub_client_writable(web__of(wsi)->hub, (hub_client *)p->client) ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
        if (p->is_ws) {
            hub_client_close(web__of(wsi)->hub, (hub_client *)p->client);
            sbuf_free(&p->rx);
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void web__lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        n--;
    if (level & LLL_ERR)
        LOG_E("lws", "%.*s", (int)n, line);
    else
        LOG_D("lws", "%.*s", (int)n, line);
}

static void *web__main(void *arg)
{
    web *w = arg;
    hub_thread_bind(w->hub);
    while (!atomic_load(&w->stop))
        if (lws_service(w->ctx, 0) < 0)
            break;
    hub_thread_release(w->hub);
    return NULL;
}

/* ---- the hub's connection port, on lws ---- */

static int web__conn_write(void *conn, unsigned char *buf, size_t len, fanout_frame kind)
{
    int flags = kind == FANOUT_TEXT    ? LWS_WRITE_TEXT
                : kind == FANOUT_FIRST ? LWS_WRITE_TEXT | LWS_WRITE_NO_FIN
                : kind == FANOUT_FINAL ? LWS_WRITE_CONTINUATION
                                       : LWS_WRITE_CONTINUATION | LWS_WRITE_NO_FIN;
    return lws_write(conn, buf, len, (enum lws_write_protocol)flags) < 0 ? -1 : 0;
}

static int web__conn_choked(void *conn) { return lws_send_pipe_choked(conn); }
static void web__conn_want_write(void *conn) { lws_callback_on_writable(conn); }
static void web__conn_kill(void *conn) { lws_set_timeout(conn, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC); }
static int web__conn_fd(void *conn) { return (int)lws_get_socket_fd(conn); }

static const fanout_conn_ops web__conn_ops = {
    .write = web__conn_write,
    .choked = web__conn_choked,
    .want_write = web__conn_want_write,
    .kill = web__conn_kill,
    .fd = web__conn_fd,
};

static void web__wake_lws(void *arg) { lws_cancel_service(arg); }

/* HTTPS on our own listener: the vhost then speaks TLS only (plain HTTP to
 * it fails the handshake); HTTP/1.1 only, the one protocol the routes and
 * the WebSocket upgrade are written for. */
static void web__tls_options(web *w, struct lws_context_creation_info *info)
{
    if (!w->cfg->http_tls_cert)
        return;
    w->https = 1;
    info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info->ssl_cert_filepath = w->cfg->http_tls_cert;
    info->ssl_private_key_filepath = w->cfg->http_tls_key;
    info->alpn = "http/1.1";
}

/* Static files are checked against the real web root (symlinks resolved
 * once, at start). */
static int web__resolve_root(web *w)
{
    if (!w->cfg->web_root)
        return 0;
    w->web_root_real = realpath(w->cfg->web_root, NULL);
    if (!w->web_root_real && errno != ENOENT) {
        LOG_E(TAG, "--web-root %s: %s", w->cfg->web_root, strerror(errno));
        return -1;
    }
    if (!w->web_root_real) /* as before: the dashboard is answered "not built" */
        LOG_W(TAG, "--web-root %s does not exist (yet): the dashboard is not served", w->cfg->web_root);
    return 0;
}

int web_start(const vigil_config *cfg, const web_deps *deps, web **out)
{
    web *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    hub *h = deps->hub;
    w->cfg = cfg;
    w->hub = h;
    w->st = deps->st;
    w->trk = deps->trk;
    w->pub = deps->pub;
    w->m = deps->m;
    w->protocols[0] = (struct lws_protocols){
        .name = "vigil",
        .callback = web__callback,
        .per_session_data_size = sizeof(pss) + hub_client_size(),
        .rx_buffer_size = 0,
    };
    lws_set_log_level(LLL_ERR | LLL_WARN, web__lws_log_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->listen_port;
    info.iface = cfg->listen_host;
    info.protocols = w->protocols;
    info.user = w;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (!strchr(cfg->listen_host, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* Slowloris: a connection must finish its headers (and a TLS or
     * WebSocket handshake) within timeout_secs and may hold a header buffer
     * idle only timeout_secs_ah_idle; the pool is large enough that
     * --max-conns-per-ip half-open connections from a few addresses cannot
     * empty it. */
    info.max_http_header_pool = 512;
    info.timeout_secs = 5;
    info.timeout_secs_ah_idle = 5;
    web__tls_options(w, &info);
    if (web__resolve_root(w) != 0 || idtable_init(&w->peers, &web__peer_type, 64, WEB_PEERS_MAX) != IDTABLE_OK ||
        idtable_init(&w->conns, &web__conn_type, 64, 0) != IDTABLE_OK) {
        idtable_free(&w->peers);
        idtable_free(&w->conns);
        free(w->web_root_real);
        free(w);
        return -1;
    }
    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        LOG_E(TAG, "cannot listen on %s (address in use, not local, or bad TLS certificate/key?)",
              cfg->listen);
        idtable_free(&w->peers);
        idtable_free(&w->conns);
        free(w->web_root_real);
        free(w);
        return -1;
    }
    hub_set_conn_ops(h, &web__conn_ops);
    query_config qc = {.st = deps->st, .trk = deps->trk, .headroom = LWS_PRE, .wake = web__wake_lws,
                       .wake_ctx = w->ctx};
    if (query_start(&qc, &w->q) != QUERY_OK) {
        lws_context_destroy(w->ctx);
        idtable_free(&w->peers);
        idtable_free(&w->conns);
        free(w->web_root_real);
        free(w);
        return -1;
    }
    hub_set_waker(h, web__wake_lws, w->ctx);
    if (pthread_create(&w->thread, NULL, web__main, w) != 0) {
        LOG_E(TAG, "cannot start the web thread");
        query_stop(w->q);
        lws_context_destroy(w->ctx);
        idtable_free(&w->peers);
        idtable_free(&w->conns);
        free(w->web_root_real);
        free(w);
        return -1;
    }
    LOG_I(TAG, "listening on %s://%s:%d (WebSocket /ws)", w->https ? "https" : "http", cfg->listen_host,
          cfg->listen_port);
    if (cfg->plain_http_exposed)
        LOG_W(TAG, "plain HTTP on non-loopback address %s (--allow-plain-http): vitals and "
                   "credentials cross the network unencrypted; /healthz reports plain_http_exposed",
              cfg->listen_host);
    *out = w;
    return 0;
}

void web_stop(web *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    lws_cancel_service(w->ctx);
    pthread_join(w->thread, NULL);
    hub_set_waker(w->hub, NULL, NULL);
    query_stop(w->q); /* joins the worker, which wakes ctx: before it goes */
    w->q = NULL;
    lws_context_destroy(w->ctx);
    idtable_free(&w->peers);
    idtable_free(&w->conns);
    free(w->web_root_real);
    free(w);
}
