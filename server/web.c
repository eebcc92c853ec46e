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

#include <sodium.h>

#include "alarm.h"
#include "cluster.h"
#include "auth.h"
#include "command.h"
#include "idtable.h"
#include "config.h"
#include "fanout.h"
#include "httparg.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "query.h"
#include "store.h"
#include "topics.h"
#include "tracker.h"
#include "vthread.h"

_Static_assert(HUB_PRE >= LWS_PRE, "HUB_PRE must leave room for lws' frame header");

#define TAG "web"
#define BODY_MAX 4096                 /* largest request body */
#define WS_RX_MAX (1024 * 1024)       /* largest message from a WebSocket client */
/* Bytes per HTTP writable callback. 64 KB sends a 200 KB history answer in
 * 4 callbacks instead of 13, on the thread that also does the fan-out: ~25 %
 * less web-thread CPU while history queries run (docs/BENCHMARKS.md
 * "Issue 13 — history load, second pass"). */
/* A request waiting for the query worker: longer than the PostgreSQL
 * store's own bound on a silent server (its statement_timeout + 5 s, 35 s
 * by default), so a read the store gives up on is answered with its error
 * rather than cut by lws's 5 s timeout_secs. Then the answer's body has
 * WEB_ANSWER_WRITE_S to leave. */
#define WEB_QUERY_WAIT_S 60
#define WEB_ANSWER_WRITE_S 30
#define HTTP_CHUNK (64 * 1024)
#define MAX_POINTS_DEFAULT 1000
#define MAX_POINTS_LIMIT 10000
#define AUTH_REFRESH_US (5 * LWS_US_PER_SEC)  /* sessions and tokens re-read from the store */
#define AUTH_USED_PERSIST_MS 60000            /* last_used written at most this often per entry */
#define AUTH_TABLE_MAX 65536                  /* sessions + tokens (+ recent tombstones) */
#define AUTH_THROTTLE_MAX 8192                /* usernames + addresses with recent failures */
#define AUDIT_LIMIT_DEFAULT 200
#define AUDIT_LIMIT_MAX 1000
#define WEB_TX_PACKET (2 * FANOUT_BATCH_BYTES)   /* most bytes per send(): a whole batch or snapshot chunk */
#define WS_END_GRACE_S 2                      /* a WebSocket whose credentials ended: killed if its Close is not out by then */

struct web {
    const vigil_config *cfg;
    hub *hub;
    store *st;
    tracker *trk;                     /* may be NULL: completeness off */
    vigil_publisher pub;
    vigil_alarm_port alarms;          /* acks / silences -> the ingest thread */
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
    /* Access control. Web thread only (asserted against owner, bound by the
     * web thread while it runs; main fills the table before it starts). */
    thread_owner owner;
    auth_table at;
    auth_throttle th;
    lws_sorted_usec_list_t refresh_sul;
    lws_sorted_usec_list_t flush_sul; /* --ws-flush-ms: the held drain (hub_drain_paced) */
    uint64_t flush_due_ns;            /* when it is due; 0: none held */
    uint64_t refresh_serial;          /* refresh job in flight, 0 if none */
    int refresh_failing;              /* logged once per failing period */
    /* Open WebSockets (a list through their pss, at most --max-ws-clients):
     * checked against the table after every change to it (web__ws_sweep),
     * so a WebSocket does not outlive the credentials it was opened with. */
    struct pss *ws_head;
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
typedef enum route { R_NONE = 0, R_COMMANDS, R_CONFIG, R_LOGIN, R_USER_ADD, R_USER_UPDATE, R_TOKEN_ADD,
                     R_ALARM_SILENCE, R_ALARM_SETTINGS } route;

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
    unsigned status;                  /* status of the last response sent */
    const char *x_name;               /* extra header of the query's answer, or NULL */
    char x_value[200];
    /* Who sent the current request (web__authenticate). */
    char addr[48];                    /* peer address */
    int authed, by_cookie;
    auth_role role;
    char user[AUTH_USER_MAX + 1];     /* user, or token name */
    char key[AUTH_KEY_HEX + 1];       /* the session's / token's table key */
    char target[AUTH_USER_MAX + 1];   /* route target (user name, token id) */
    int pw_change;                    /* PUT /api/users/{name} sets a password */
    /* WebSocket: the credentials it was opened with (web__ws_register) */
    char ws_key[AUTH_KEY_HEX + 1];    /* auth table key */
    auth_role ws_role;                /* the role then: a change closes it */
    int ws_linked;                    /* in w->ws_head */
    int ws_ended;                     /* credentials gone: closes at its next callback */
    struct lws *ws_wsi;
    struct pss *ws_prev, *ws_next;
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
    p->x_name = NULL;
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
    p->status = status;
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

/* Reads query argument `name` ("from=") as an int64 in [lo, hi]
 * (httparg.h: a whole decimal integer, nothing else). Returns 1 if present
 * and valid, 0 if absent, -1 if malformed or out of range. */
static int web__arg_int(struct lws *wsi, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    char buf[64];
    const char *v = lws_get_urlarg_by_name(wsi, name, buf, sizeof buf);
    if (!v)
        return 0;
    return httparg_int64(v, lo, hi, out) == 0 ? 1 : -1;
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
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, WEB_QUERY_WAIT_S);
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

static void web__refresh_done(web *w, query_done *d);
static void web__auth_answer(web *w, pss *p, query_done *d, struct lws *wsi);

/* Takes the worker's finished answers. query_cancel on close guarantees each
 * conn is a live wsi; the serial check guards against a reused session. */
static void web__query_answers(web *w)
{
    query_done d;
    for (size_t n = 0; w->q && n < 256 && query_take(w->q, &d); n++) {
        if (d.kind == QUERY_AUTH_REFRESH) {
            web__refresh_done(w, &d);
            continue;
        }
        pss *p = lws_wsi_user(d.conn);
        if (!p || p->q_serial != d.serial) {
            sbuf_free(&d.body);
            continue;
        }
        p->q_serial = 0;
        web__auth_answer(w, p, &d, d.conn);
        sbuf_free(&p->resp);
        p->resp = d.body;
        p->q_status = d.status;
        p->q_ready = 1;
        lws_set_timeout(d.conn, PENDING_TIMEOUT_USER_OK, WEB_ANSWER_WRITE_S);
        lws_callback_on_writable(d.conn);
    }
}

static int web__route_readings(struct lws *wsi, pss *p, web *w)
{
    /* Epoch milliseconds within what a JSON number holds exactly; the
     * default window is the hour before `to` (checked: no overflow). */
    const int64_t t_max = (int64_t)1 << 53;
    int64_t to = vclock_wall_ms(), from = to - 3600 * 1000, maxp = MAX_POINTS_DEFAULT;
    int rf = web__arg_int(wsi, "from=", -t_max, t_max, &from),
        rt = web__arg_int(wsi, "to=", -t_max, t_max, &to),
        rm = web__arg_int(wsi, "max_points=", INT64_MIN, INT64_MAX, &maxp);
    if (rf < 0 || rt < 0)
        return web__respond_error(wsi, p, 400, "from and to must be epoch milliseconds");
    if (rf == 0 && rt == 1 && httparg_sub(to, 3600 * 1000, &from) != 0)
        return web__respond_error(wsi, p, 400, "from and to must be epoch milliseconds");
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
    int rf = web__arg_int(wsi, "from=", 0, seq_max, &from),
        rt = web__arg_int(wsi, "to=", 0, seq_max, &to),
        rb = web__arg_int(wsi, "boot=", INT64_MIN, INT64_MAX, &boot);
    if (rf < 0 || rt < 0)
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

/* ---- access control (docs/SECURITY.md; the logic is auth.c) ---- */

static auth_method web__auth_method(method m)
{
    return m == M_GET ? AUTH_GET : m == M_POST ? AUTH_POST : m == M_PUT ? AUTH_PUT
                                 : m == M_DELETE ? AUTH_DELETE : AUTH_OTHER;
}

static void web__deny_count(web *w, metrics_denied why)
{
    atomic_fetch_add_explicit(&w->m->auth_denied[why], 1, memory_order_relaxed);
}

/* One audit row for the current request (queued; a full store queue drops
 * it, counted as any refused record). */
static void web__audit(web *w, const pss *p, const char *user, const char *action, const char *target,
                       const char *outcome, const char *detail)
{
    store_auth_write a = {.op = STORE_AUTH_AUDIT};
    a.v.a.t_ms = vclock_wall_ms();
    snprintf(a.v.a.user, sizeof a.v.a.user, "%s", user ? user : p->user);
    snprintf(a.v.a.address, sizeof a.v.a.address, "%s", p->addr);
    snprintf(a.v.a.action, sizeof a.v.a.action, "%s", action);
    snprintf(a.v.a.target, sizeof a.v.a.target, "%s", target ? target : "");
    snprintf(a.v.a.outcome, sizeof a.v.a.outcome, "%s", outcome);
    snprintf(a.v.a.detail, sizeof a.v.a.detail, "%s", detail ? detail : "");
    (void)store_put_auth(w->st, &a);
}

static const char *web__outcome(unsigned status)
{
    return status < 300 ? "ok" : status == 403 ? "forbidden" : "fail";
}

/* Queues a session/token row change (last_used, delete). */
static void web__auth_put(web *w, store_auth_op op, const auth_entry *e, int64_t now)
{
    store_auth_write x = {.op = op};
    if (e->kind == AUTH_TOKEN) {
        snprintf(x.v.t.id, sizeof x.v.t.id, "%s", e->id);
        x.v.t.last_used_ms = now;
    } else {
        snprintf(x.v.s.key, sizeof x.v.s.key, "%.*s", AUTH_KEY_HEX, e->key);
        x.v.s.last_used_ms = now;
    }
    (void)store_put_auth(w->st, &x);
}

/* A session found expired: its row goes too. */
static void web__auth_expired(web *w, const char *key, int64_t now)
{
    auth_entry gone = {.kind = AUTH_SESSION};
    snprintf(gone.key, sizeof gone.key, "%s", key);
    web__auth_put(w, STORE_AUTH_SESSION_DEL, &gone, now);
}

/* e was used now: its idle clock restarts; last_used reaches the store at
 * most every AUTH_USED_PERSIST_MS. */
static void web__auth_used(web *w, auth_entry *e, int64_t now)
{
    e->last_used_ms = now;
    if (now - e->persisted_used_ms >= AUTH_USED_PERSIST_MS) {
        e->persisted_used_ms = now;
        web__auth_put(w, e->kind == AUTH_TOKEN ? STORE_AUTH_TOKEN_USED : STORE_AUTH_SESSION_USED, e, now);
    }
}

/* ---- open WebSockets and the credentials they were opened with ---- */

/* p's WebSocket is open (web__authenticate filled p->key, p->role). */
static void web__ws_register(web *w, pss *p, struct lws *wsi)
{
    memcpy(p->ws_key, p->key, sizeof p->ws_key);
    p->ws_role = p->role;
    p->ws_wsi = wsi;
    p->ws_prev = NULL;
    p->ws_next = w->ws_head;
    if (w->ws_head)
        w->ws_head->ws_prev = p;
    w->ws_head = p;
    p->ws_linked = 1;
    auth_table_stream_open(&w->at, p->ws_key);
}

static void web__ws_unregister(web *w, pss *p)
{
    if (!p->ws_linked)
        return;
    if (p->ws_prev)
        p->ws_prev->ws_next = p->ws_next;
    else
        w->ws_head = p->ws_next;
    if (p->ws_next)
        p->ws_next->ws_prev = p->ws_prev;
    p->ws_prev = p->ws_next = NULL;
    p->ws_linked = 0;
    auth_table_stream_close(&w->at, p->ws_key, vclock_wall_ms());
}

/* Marks p's WebSocket to close. It closes from its own next callback, with
 * a Close frame saying why (web__ws_close_ended) — never freed from here,
 * which may be another connection's callback; one that cannot be written
 * to is killed after WS_END_GRACE_S. */
static void web__ws_end(pss *p)
{
    p->ws_ended = 1;
    lws_callback_on_writable(p->ws_wsi);
    lws_set_timeout(p->ws_wsi, PENDING_TIMEOUT_USER_OK, WS_END_GRACE_S);
}

static int web__ws_close_ended(struct lws *wsi)
{
    static const char why[] = "credentials ended";
    lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why, sizeof why - 1);
    return -1;
}

/* Checks every open WebSocket against the table and ends those whose entry
 * is gone (logout, revoked, user deleted, password changed), expired, or
 * has another role now. Called after each change to the table and from the
 * 5 s timer (expiries; touch: an open WebSocket is use of its credentials
 * — auth_table_stream_open — and its last_used keeps reaching the store).
 * One lookup per open WebSocket (at most --max-ws-clients), never per
 * request. */
static void web__ws_sweep(web *w, int touch)
{
    THREAD_ASSERT_OWNER(&w->owner);
    int64_t now = vclock_wall_ms();
    size_t ended = 0;
    for (pss *p = w->ws_head; p; p = p->ws_next) {
        if (p->ws_ended)
            continue;
        if (touch)
            (void)auth_table_touch(&w->at, p->ws_key, now);
        int expired = 0;
        auth_entry *e = auth_table_grants(&w->at, p->ws_key, p->ws_role, now, &expired);
        if (expired)
            web__auth_expired(w, p->ws_key, now);
        if (!e) {
            web__ws_end(p);
            ended++;
        } else if (touch) {
            web__auth_used(w, e, now);
        }
    }
    if (ended)
        LOG_I(TAG, "closing %zu WebSocket(s): their session or token ended or changed role", ended);
}

/* Finds who sent the request: a Bearer token, else the session cookie.
 * Fills p->authed, by_cookie, role, user, key; csrf (if not NULL) gets the
 * session's CSRF value. A Bearer header that does not check out is not
 * rescued by a cookie. */
static int web__authenticate(struct lws *wsi, pss *p, web *w, char csrf[AUTH_SECRET_B64 + 1])
{
    THREAD_ASSERT_OWNER(&w->owner);
    char buf[512], key[AUTH_KEY_HEX + 1];
    const char *v;
    size_t n;
    int by_cookie = 0;
    p->authed = p->by_cookie = 0;
    p->role = AUTH_ROLE_NONE;
    if (csrf)
        csrf[0] = 0;
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (len > 0) {
        if (len >= (int)sizeof buf || lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ||
            auth_bearer_parse(buf, strlen(buf), &v, &n) != 1 || !auth_secret_valid(v, n, 1))
            return 0;
    } else {
        static char cookie[4096]; /* web thread only; too long a header is no credential */
        len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE);
        if (len <= 0 || len >= (int)sizeof cookie ||
            lws_hdr_copy(wsi, cookie, sizeof cookie, WSI_TOKEN_HTTP_COOKIE) < 0 ||
            auth_cookie_find(cookie, strlen(cookie), AUTH_SESSION_COOKIE, &v, &n) != 1 ||
            !auth_secret_valid(v, n, 0))
            return 0;
        by_cookie = 1;
    }
    auth_key_of(v, n, key);
    int64_t now = vclock_wall_ms();
    int expired = 0;
    auth_entry *e = auth_table_find(&w->at, key, now, &expired);
    if (expired) {
        web__auth_expired(w, key, now);
        web__ws_sweep(w, 0); /* a WebSocket on it ends now too */
    }
    if (!e || (e->kind == AUTH_SESSION) != by_cookie)
        return 0;
    web__auth_used(w, e, now);
    p->authed = 1;
    p->by_cookie = by_cookie;
    p->role = e->role;
    snprintf(p->user, sizeof p->user, "%s", e->user);
    memcpy(p->key, key, sizeof key);
    if (csrf)
        memcpy(csrf, e->csrf, AUTH_SECRET_B64 + 1);
    return 1;
}

static int web__csrf_ok(struct lws *wsi, const char *csrf)
{
    char got[AUTH_SECRET_B64 + 2];
    int n = lws_hdr_custom_copy(wsi, got, sizeof got, "x-csrf-token:", 13);
    return n > 0 && auth_csrf_equal(csrf, got, (size_t)n);
}

/* The gate in front of every protected route: 1 to go on, 0 when it has
 * answered (401, 403) — *rc then holds what the callback returns. */
static int web__gate(struct lws *wsi, pss *p, web *w, auth_role need, int *rc)
{
    char csrf[AUTH_SECRET_B64 + 1];
    if (!web__authenticate(wsi, p, w, csrf)) {
        web__deny_count(w, METRICS_DENIED_UNAUTH);
        *rc = web__respond_error(wsi, p, 401, "authentication required");
        return 0;
    }
    if (p->role < need) {
        web__deny_count(w, METRICS_DENIED_FORBIDDEN);
        *rc = web__respond_error(wsi, p, 403, "forbidden");
        return 0;
    }
    if (p->by_cookie && (p->meth == M_POST || p->meth == M_PUT || p->meth == M_DELETE) &&
        !web__csrf_ok(wsi, csrf)) {
        web__deny_count(w, METRICS_DENIED_CSRF);
        *rc = web__respond_error(wsi, p, 403, "missing or invalid CSRF token");
        return 0;
    }
    return 1;
}

static int web__is_loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strcmp(addr, "::1") || !strncmp(addr, "::ffff:127.", 11);
}

/* Reads a request body for route r (answered at HTTP_BODY_COMPLETION). */
static int web__expect_body(struct lws *wsi, pss *p, route r)
{
    char cl[24];
    long long clen = -1;
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        clen = atoll(cl);
    if (clen > BODY_MAX)
        return web__respond_error(wsi, p, 413, "body larger than 4096 bytes");
    if (clen <= 0)
        return web__respond_error(wsi, p, 400, "a JSON body is required");
    p->pending = r;
    sbuf_init(&p->body, 0);
    return 0;
}

static void web__iso(sbuf *o, const char *name, int64_t ms)
{
    char iso[32];
    telemetry_format_iso(ms, iso, sizeof iso);
    sbuf_addf(o, ",\"%s\":\"%s\"", name, iso);
}

static void web__session_cookie(struct lws *wsi, pss *p, const char *id, int clear)
{
    snprintf(p->x_value, sizeof p->x_value, "%s=%s; HttpOnly; SameSite=Strict; Path=/%s%s",
             AUTH_SESSION_COOKIE, clear ? "" : id, clear ? "; Max-Age=0" : "", lws_is_ssl(wsi) ? "; Secure" : "");
    p->x_name = "set-cookie:";
}

/* POST /api/session, body in: throttle, then the verify job. */
static int web__login_submit(struct lws *wsi, pss *p, web *w)
{
    auth_fields f;
    char err[128];
    const char *body = sbuf_data(&p->body) ? sbuf_data(&p->body) : "";
    if (auth_parse_fields(body, p->body.len, &f, err, sizeof err) != AUTH_OK ||
        !(f.has & AUTH_F_USERNAME) || !(f.has & AUTH_F_PASSWORD)) {
        /* A malformed name or password cannot match: same answer as a wrong one. */
        auth_fields_wipe(&f);
        atomic_fetch_add_explicit(&w->m->auth_logins[METRICS_LOGIN_FAIL], 1, memory_order_relaxed);
        return web__respond_error(wsi, p, 401, "invalid username or password");
    }
    snprintf(p->target, sizeof p->target, "%s", f.username);
    int64_t wait = auth_throttle_wait(&w->th, f.username, p->addr, vclock_mono_ms());
    if (wait > 0) {
        auth_fields_wipe(&f);
        atomic_fetch_add_explicit(&w->m->auth_logins[METRICS_LOGIN_THROTTLED], 1, memory_order_relaxed);
        web__audit(w, p, p->target, "login", p->target, "throttled", NULL);
        char ra[24];
        snprintf(ra, sizeof ra, "%lld", (long long)((wait + 999) / 1000));
        sbuf_reset(&p->resp);
        sbuf_adds(&p->resp, "{\"error\":\"too many failed logins, retry later\"}");
        return web__respond(wsi, p, 429, "application/json", "retry-after:", ra);
    }
    query_job job = {.kind = QUERY_LOGIN};
    snprintf(job.user, sizeof job.user, "%s", f.username);
    memcpy(job.password, f.password, f.password_len + 1);
    job.password_len = f.password_len;
    auth_fields_wipe(&f);
    int rc = web__query_submit(wsi, p, w, &job);
    sodium_memzero(job.password, sizeof job.password);
    return rc;
}

/* The verify job's answer: a session, or a failure that feeds the throttle. */
static void web__login_done(web *w, pss *p, query_done *d, struct lws *wsi)
{
    THREAD_ASSERT_OWNER(&w->owner);
    sbuf_reset(&d->body);
    if (d->status != 200) {
        web__audit(w, p, p->target, "login", p->target, "fail", "server error");
        sbuf_adds(&d->body, "{\"error\":\"login failed, retry\"}");
        d->status = 503;
        return;
    }
    if (!d->auth_ok) {
        auth_throttle_fail(&w->th, p->target, p->addr, vclock_mono_ms());
        atomic_fetch_add_explicit(&w->m->auth_logins[METRICS_LOGIN_FAIL], 1, memory_order_relaxed);
        web__audit(w, p, p->target, "login", p->target, "fail", NULL);
        LOG_I(TAG, "failed login for '%s' from %s", p->target, p->addr);
        sbuf_adds(&d->body, "{\"error\":\"invalid username or password\"}");
        d->status = 401;
        return;
    }
    char id[AUTH_TOKEN_LEN + 1];
    int64_t now = vclock_wall_ms();
    auth_entry e = {.kind = AUTH_SESSION, .role = (auth_role)d->role, .created_ms = now,
                    .last_used_ms = now, .persisted_used_ms = now};
    e.expires_ms = now + w->at.max_ms;
    auth_secret_new(0, id, sizeof id);
    auth_secret_new(0, e.csrf, sizeof e.csrf);
    auth_key_of(id, strlen(id), e.key);
    snprintf(e.user, sizeof e.user, "%s", p->target);
    if (auth_table_add(&w->at, &e, now) != AUTH_OK) {
        LOG_W(TAG, "session table full (%d): login of '%s' refused", AUTH_TABLE_MAX, p->target);
        sbuf_adds(&d->body, "{\"error\":\"too many sessions, retry later\"}");
        d->status = 503;
        return;
    }
    store_auth_write sw = {.op = STORE_AUTH_SESSION_ADD};
    store_session *s = &sw.v.s;
    memcpy(s->key, e.key, sizeof s->key);
    snprintf(s->user, sizeof s->user, "%s", e.user);
    snprintf(s->csrf, sizeof s->csrf, "%s", e.csrf);
    s->created_ms = s->last_used_ms = now;
    s->expires_ms = e.expires_ms;
    (void)store_put_auth(w->st, &sw); /* a full queue: the session lives until restart */
    auth_throttle_ok(&w->th, p->target);
    atomic_fetch_add_explicit(&w->m->auth_logins[METRICS_LOGIN_OK], 1, memory_order_relaxed);
    web__audit(w, p, p->target, "login", p->target, "ok", NULL);
    sbuf_adds(&d->body, "{\"user\":");
    sbuf_add_json_str(&d->body, e.user);
    sbuf_addf(&d->body, ",\"role\":\"%s\",\"csrf\":\"%s\"}", auth_role_name(e.role), e.csrf);
    web__session_cookie(wsi, p, id, 0);
    sodium_memzero(id, sizeof id);
    sodium_memzero(&e, sizeof e);
}

/* /api/session: log in (POST), who am I (GET), log out (DELETE). */
static int web__route_session(struct lws *wsi, pss *p, web *w)
{
    if (p->meth == M_POST)
        return web__expect_body(wsi, p, R_LOGIN);
    if (p->meth != M_GET && p->meth != M_DELETE)
        return web__respond_405(wsi, p, "GET, POST, DELETE");
    int rc;
    if (!web__gate(wsi, p, w, AUTH_ROLE_VIEWER, &rc))
        return rc;
    int64_t now = vclock_wall_ms();
    auth_entry *e = auth_table_find(&w->at, p->key, now, NULL);
    if (!e)
        return web__respond_error(wsi, p, 401, "authentication required");
    if (p->meth == M_GET) {
        sbuf_adds(&p->resp, "{\"user\":");
        sbuf_add_json_str(&p->resp, e->user);
        sbuf_addf(&p->resp, ",\"role\":\"%s\",\"csrf\":\"%s\"", auth_role_name(e->role), e->csrf);
        if (e->kind == AUTH_SESSION) {
            int64_t idle = e->last_used_ms + w->at.idle_ms;
            web__iso(&p->resp, "idle_expires_at", idle < e->expires_ms ? idle : e->expires_ms);
            web__iso(&p->resp, "expires_at", e->expires_ms);
        } else {
            sbuf_adds(&p->resp, ",\"idle_expires_at\":null,\"expires_at\":null");
        }
        sbuf_adds(&p->resp, "}");
        return web__respond_json(wsi, p, 200);
    }
    if (e->kind != AUTH_SESSION)
        return web__respond_error(wsi, p, 400, "a token is not a session: delete it with DELETE /api/tokens/{id}");
    auth_entry copy = *e;
    (void)auth_table_kill(&w->at, p->key, now);
    web__auth_put(w, STORE_AUTH_SESSION_DEL, &copy, now);
    web__ws_sweep(w, 0);
    web__audit(w, p, NULL, "logout", p->user, "ok", NULL);
    web__session_cookie(wsi, p, "", 1);
    sbuf_reset(&p->resp);
    return web__respond(wsi, p, 204, "application/json", p->x_name, p->x_value);
}

/* POST /api/tokens, body in: made here (BLAKE2b is cheap), shown once. */
static int web__token_add(struct lws *wsi, pss *p, web *w, const auth_fields *f)
{
    char secret[AUTH_TOKEN_LEN + 1];
    int64_t now = vclock_wall_ms();
    auth_entry e = {.kind = AUTH_TOKEN, .role = f->role, .created_ms = now, .persisted_used_ms = now};
    auth_secret_new(1, secret, sizeof secret);
    auth_key_of(secret, strlen(secret), e.key);
    auth_token_id_new(e.id);
    snprintf(e.user, sizeof e.user, "%s", f->name);
    if (auth_table_add(&w->at, &e, now) != AUTH_OK) {
        sodium_memzero(secret, sizeof secret);
        web__audit(w, p, NULL, "token_add", f->name, "fail", "table full");
        return web__respond_error(wsi, p, 503, "too many tokens and sessions");
    }
    store_auth_write tw = {.op = STORE_AUTH_TOKEN_ADD};
    snprintf(tw.v.t.id, sizeof tw.v.t.id, "%s", e.id);
    memcpy(tw.v.t.key, e.key, sizeof tw.v.t.key);
    snprintf(tw.v.t.name, sizeof tw.v.t.name, "%s", e.user);
    snprintf(tw.v.t.role, sizeof tw.v.t.role, "%s", auth_role_name(e.role));
    tw.v.t.created_ms = now;
    if (store_put_auth(w->st, &tw) != STORE_OK) {
        (void)auth_table_kill(&w->at, e.key, now);
        sodium_memzero(secret, sizeof secret);
        web__audit(w, p, NULL, "token_add", f->name, "fail", "store busy");
        return web__respond_error(wsi, p, 503, "store busy, retry");
    }
    web__audit(w, p, NULL, "token_add", e.id, "ok", e.user);
    sbuf_addf(&p->resp, "{\"id\":\"%s\",\"name\":", e.id);
    sbuf_add_json_str(&p->resp, e.user);
    sbuf_addf(&p->resp, ",\"role\":\"%s\",\"token\":\"%s\"}", auth_role_name(e.role), secret);
    sodium_memzero(secret, sizeof secret);
    return web__respond_json(wsi, p, 201);
}

/* The body of an admin route is in. */
static int web__admin_body(struct lws *wsi, pss *p, web *w)
{
    auth_fields f;
    char err[128];
    const char *body = sbuf_data(&p->body) ? sbuf_data(&p->body) : "";
    if (auth_parse_fields(body, p->body.len, &f, err, sizeof err) != AUTH_OK)
        return web__respond_error(wsi, p, 400, err);
    int rc;
    if (p->pending == R_TOKEN_ADD) {
        if ((f.has & (AUTH_F_NAME | AUTH_F_ROLE)) != (AUTH_F_NAME | AUTH_F_ROLE))
            rc = web__respond_error(wsi, p, 400, "name and role are required");
        else
            rc = web__token_add(wsi, p, w, &f);
        auth_fields_wipe(&f);
        return rc;
    }
    query_job job = {.kind = p->pending == R_USER_ADD ? QUERY_USER_ADD : QUERY_USER_UPDATE};
    if (p->pending == R_USER_ADD) {
        unsigned need = AUTH_F_USERNAME | AUTH_F_ROLE | AUTH_F_PASSWORD;
        if ((f.has & need) != need) {
            auth_fields_wipe(&f);
            return web__respond_error(wsi, p, 400, "username, role and password are required");
        }
        snprintf(p->target, sizeof p->target, "%s", f.username);
    } else if (!(f.has & (AUTH_F_ROLE | AUTH_F_PASSWORD))) {
        auth_fields_wipe(&f);
        return web__respond_error(wsi, p, 400, "role or password is required");
    }
    snprintf(job.user, sizeof job.user, "%s", p->target);
    job.role = (f.has & AUTH_F_ROLE) ? (int)f.role : 0;
    if (f.has & AUTH_F_PASSWORD) {
        memcpy(job.password, f.password, f.password_len + 1);
        job.password_len = f.password_len;
    }
    /* A new password ends the user's sessions but the one asking (which is
     * only among them if it is the user's own). Tokens are not sessions. */
    p->pw_change = p->pending == R_USER_UPDATE && (f.has & AUTH_F_PASSWORD);
    if (p->by_cookie)
        memcpy(job.keep, p->key, sizeof p->key);
    auth_fields_wipe(&f);
    rc = web__query_submit(wsi, p, w, &job);
    sodium_memzero(job.password, sizeof job.password);
    return rc;
}

/* Answers of the access-control jobs, on the web thread, before they go out. */
static void web__auth_answer(web *w, pss *p, query_done *d, struct lws *wsi)
{
    int64_t now = vclock_wall_ms();
    switch (d->kind) {
    case QUERY_LOGIN: web__login_done(w, p, d, wsi); break;
    case QUERY_USER_ADD:
        web__audit(w, p, NULL, "user_add", p->target, web__outcome(d->status), auth_role_name((auth_role)d->role));
        break;
    case QUERY_USER_UPDATE:
        if (d->status == 200) {
            auth_table_set_user_role(&w->at, p->target, (auth_role)d->role);
            if (p->pw_change) /* the worker deleted the rows */
                (void)auth_table_kill_user_except(&w->at, p->target, p->by_cookie ? p->key : NULL, now);
            web__ws_sweep(w, 0);
        }
        web__audit(w, p, NULL, "user_update", p->target, web__outcome(d->status), auth_role_name((auth_role)d->role));
        break;
    case QUERY_USER_DEL:
        if (d->status == 204) {
            (void)auth_table_kill_user(&w->at, p->target, now); /* the store deletes the rows */
            web__ws_sweep(w, 0);
        }
        web__audit(w, p, NULL, "user_del", p->target, web__outcome(d->status), NULL);
        break;
    default: break;
    }
}

/* The 5-second refresh: sessions and tokens as the store has them (CLI
 * changes, other writers). Web thread (an lws timer). */
static void web__refresh_cb(lws_sorted_usec_list_t *sul)
{
    web *w = lws_container_of(sul, web, refresh_sul);
    THREAD_ASSERT_OWNER(&w->owner);
    web__ws_sweep(w, 1); /* expiries; open WebSockets count as use */
    if (!w->refresh_serial) {
        query_job job = {.kind = QUERY_AUTH_REFRESH, .conn = NULL};
        if (query_submit(w->q, &job, &w->refresh_serial) != QUERY_OK)
            w->refresh_serial = 0; /* busy: next period */
    }
    lws_sul_schedule(w->ctx, 0, &w->refresh_sul, web__refresh_cb, AUTH_REFRESH_US);
}

static void web__refresh_done(web *w, query_done *d)
{
    THREAD_ASSERT_OWNER(&w->owner);
    w->refresh_serial = 0;
    if (d->status != 200) {
        if (!w->refresh_failing)
            LOG_W(TAG, "cannot re-read sessions and tokens from the store; keeping the ones known");
        w->refresh_failing = 1;
    } else {
        w->refresh_failing = 0;
        size_t lost = auth_table_merge(&w->at, d->snap, d->nsnap, vclock_wall_ms());
        if (lost)
            LOG_W(TAG, "%zu sessions/tokens do not fit the table (%d): not usable", lost, AUTH_TABLE_MAX);
        web__ws_sweep(w, 0); /* CLI changes: deleted users and tokens, new passwords and roles */
    }
    if (d->snap)
        sodium_memzero(d->snap, d->nsnap * sizeof *d->snap);
    free(d->snap);
    sbuf_free(&d->body);
}

/* The admin routes: /api/users[/{name}], /api/tokens[/{id}], /api/audit.
 * The gate has let an admin through. */
static int web__route_admin(struct lws *wsi, pss *p, web *w, const char *path)
{
    int users = !strncmp(path, "/api/users", 10), tokens = !strncmp(path, "/api/tokens", 11);
    const char *rest = users ? path + 10 : tokens ? path + 11 : path + 10;
    if (!users && !tokens) { /* /api/audit */
        if (*rest)
            return web__respond_error(wsi, p, 404, "unknown route");
        if (p->meth != M_GET)
            return web__respond_405(wsi, p, "GET");
        int64_t to = vclock_wall_ms(), from = 0, limit = AUDIT_LIMIT_DEFAULT;
        if (web__arg_int(wsi, "from=", INT64_MIN, INT64_MAX, &from) < 0 ||
            web__arg_int(wsi, "to=", INT64_MIN, INT64_MAX, &to) < 0 || from > to)
            return web__respond_error(wsi, p, 400, "from and to must be epoch milliseconds, from <= to");
        if (web__arg_int(wsi, "limit=", INT64_MIN, INT64_MAX, &limit) < 0 || limit < 1 || limit > AUDIT_LIMIT_MAX)
            return web__respond_error(wsi, p, 400, "limit must be an integer in 1..1000");
        query_job job = {.kind = QUERY_AUDIT, .from = from, .to = to, .limit = limit};
        char u[AUTH_USER_MAX + 2];
        const char *uv = lws_get_urlarg_by_name(wsi, "user=", u, sizeof u);
        if (uv && !auth_username_valid(uv, strlen(uv)))
            return web__respond_error(wsi, p, 400, "invalid user");
        snprintf(job.user, sizeof job.user, "%s", uv ? uv : "");
        return web__query_submit(wsi, p, w, &job);
    }
    if (!*rest || !strcmp(rest, "/")) {
        if (p->meth == M_GET) {
            query_job job = {.kind = users ? QUERY_USERS : QUERY_TOKENS};
            return web__query_submit(wsi, p, w, &job);
        }
        if (p->meth == M_POST)
            return web__expect_body(wsi, p, users ? R_USER_ADD : R_TOKEN_ADD);
        return web__respond_405(wsi, p, "GET, POST");
    }
    const char *name = rest + 1;
    if (*rest != '/' || !auth_username_valid(name, strlen(name)))
        return web__respond_error(wsi, p, 404, users ? "unknown user" : "unknown token");
    snprintf(p->target, sizeof p->target, "%s", name);
    if (users && p->meth == M_PUT)
        return web__expect_body(wsi, p, R_USER_UPDATE);
    if (p->meth != M_DELETE)
        return web__respond_405(wsi, p, users ? "PUT, DELETE" : "DELETE");
    if (users) {
        query_job job = {.kind = QUERY_USER_DEL};
        snprintf(job.user, sizeof job.user, "%s", name);
        return web__query_submit(wsi, p, w, &job);
    }
    int64_t now = vclock_wall_ms();
    auth_entry *e = auth_table_find_token_id(&w->at, name);
    if (!e) {
        web__audit(w, p, NULL, "token_del", name, "fail", "unknown token");
        return web__respond_error(wsi, p, 404, "unknown token");
    }
    auth_entry copy = *e;
    (void)auth_table_kill(&w->at, copy.key, now);
    web__auth_put(w, STORE_AUTH_TOKEN_DEL, &copy, now);
    web__ws_sweep(w, 0);
    web__audit(w, p, NULL, "token_del", name, "ok", copy.user);
    sbuf_reset(&p->resp);
    return web__respond_json(wsi, p, 204);
}

/* Before the WebSocket handshake: credentials and Origin, or an HTTP
 * refusal (never accepted and then closed). Returns what
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE returns: 0 go on, 1 refused here. */
static int web__ws_confirm(struct lws *wsi, web *w)
{
    /* The HTTP wsi has no per-session data yet here: a scratch one (web
     * thread only) carries who asked. */
    static pss scratch;
    pss *p = &scratch;
    memset(p, 0, sizeof *p);
    unsigned status = 0;
    const char *msg = NULL;
    char origin[256], host[256], want[300];
    lws_get_peer_simple(wsi, p->addr, sizeof p->addr);
    int has_origin = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0;
    if (!web__authenticate(wsi, p, w, NULL)) {
        web__deny_count(w, METRICS_DENIED_UNAUTH);
        status = 401, msg = "authentication required";
    } else if (p->role < AUTH_ROLE_VIEWER) {
        web__deny_count(w, METRICS_DENIED_FORBIDDEN);
        status = 403, msg = "forbidden";
    } else if (has_origin ? (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0 ||
                             lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0 ||
                             (snprintf(want, sizeof want, "http://%s", host),
                              strcmp(origin, want) != 0 &&
                                  (snprintf(want, sizeof want, "https://%s", host), strcmp(origin, want) != 0)))
                          : p->by_cookie) {
        web__deny_count(w, METRICS_DENIED_ORIGIN);
        status = 403, msg = "origin not allowed";
    }
    if (!status)
        return 0;
    /* Written whole by hand: at this point lws would answer "HTTP/1.0",
     * which WebSocket clients refuse to parse. */
    unsigned char buf[LWS_PRE + 512];
    char body[64];
    int bn = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    int n = snprintf((char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
                     "HTTP/1.1 %u %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n%s",
                     status, status == 401 ? "Unauthorized" : "Forbidden", bn, body);
    atomic_fetch_add_explicit(&w->m->http_requests, 1, memory_order_relaxed);
    if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL) != n)
        return -1;
    return 1;
}

/* Splits /api/devices/{id}[/rest]. Returns 0 and fills id/rest, or -1. */
/* ---- alarms (alarm.h; the engine is the ingest thread's) ---- */

static int web__split_device_path(const char *s, char *id, const char **rest);

#define ALARM_HISTORY_LIMIT 1000

/* An ack or audio pause, handed to the ingest thread; answered 202 once
 * queued (the change itself arrives as a WebSocket "alarm" message). */
static int web__alarm_submit(struct lws *wsi, pss *p, web *w, vigil_alarm_op_kind kind, int64_t seconds)
{
    const char *action = kind == VIGIL_ALARM_ACK ? "alarm_ack" : "alarm_silence";
    char detail[24] = "";
    if (kind == VIGIL_ALARM_SILENCE)
        snprintf(detail, sizeof detail, "%" PRId64 " s", seconds);
    uint64_t id = strtoull(p->target, NULL, 10);
    char dev[TELEMETRY_ID_MAX + 1];
    if (hub_alarm_device(w->hub, id, dev) != 0) {
        web__audit(w, p, NULL, action, p->target, "fail", "no open alarm");
        return web__respond_error(wsi, p, 404, "no open alarm with that id");
    }
    vigil_alarm_op op = {.kind = kind, .alarm_id = id, .seconds = seconds};
    snprintf(op.user, sizeof op.user, "%s", p->user);
    snprintf(op.device_id, sizeof op.device_id, "%s", dev); /* its owner applies it (cluster.h) */
    if (!w->alarms.submit || w->alarms.submit(w->alarms.ctx, &op) != 0) {
        web__audit(w, p, NULL, action, p->target, "fail", "queue full");
        return web__respond_error(wsi, p, 503, "busy, retry");
    }
    web__audit(w, p, NULL, action, p->target, "ok", detail[0] ? detail : dev);
    sbuf_addf(&p->resp, "{\"alarm_id\":%" PRIu64 ",\"device_id\":", id);
    sbuf_add_json_str(&p->resp, dev);
    sbuf_addf(&p->resp, ",\"accepted\":\"%s\"", kind == VIGIL_ALARM_ACK ? "ack" : "silence");
    if (kind == VIGIL_ALARM_SILENCE)
        sbuf_addf(&p->resp, ",\"seconds\":%" PRId64, seconds);
    sbuf_adds(&p->resp, "}");
    return web__respond_json(wsi, p, 202);
}

/* POST /api/alarms/{id}/silence body: {"seconds":N}, 1..600 (absent: 120). */
static int web__alarm_silence_body(struct lws *wsi, pss *p, web *w)
{
    int64_t seconds;
    if (alarm_silence_parse(sbuf_data(&p->body), p->body.len, &seconds) != ALARM_OK)
        return web__respond_error(wsi, p, 400, "seconds must be an integer in 1..600");
    return web__alarm_submit(wsi, p, w, VIGIL_ALARM_SILENCE, seconds);
}

/* PUT /api/devices/{id}/alarm-settings: the whole settings object (members
 * left out take their defaults); validated here (pure), persisted through
 * the store queue, applied by the ingest thread. */
static int web__alarm_settings_body(struct lws *wsi, pss *p, web *w)
{
    char err[160];
    alarm_settings def;
    alarm_settings_default(&def);
    alarm_settings *s = malloc(sizeof *s);
    if (!s)
        return web__respond_error(wsi, p, 503, "out of memory");
    if (alarm_settings_parse(sbuf_data(&p->body), p->body.len, &def, s, err, sizeof err) != ALARM_OK) {
        free(s);
        web__audit(w, p, NULL, "alarm_settings", p->dev, "fail", err);
        return web__respond_error(wsi, p, 400, err);
    }
    char json[ALARM_SETTINGS_JSON_MAX];
    size_t n = alarm_settings_json(s, json, sizeof json); /* before s is the ingest's */
    vigil_alarm_op op = {.kind = VIGIL_ALARM_SETTINGS, .settings = s};
    snprintf(op.user, sizeof op.user, "%s", p->user);
    snprintf(op.device_id, sizeof op.device_id, "%s", p->dev);
    if (store_put_alarm_settings(w->st, p->dev, s, p->user, vclock_wall_ms()) != STORE_OK ||
        !w->alarms.submit || w->alarms.submit(w->alarms.ctx, &op) != 0) {
        free(s);
        web__audit(w, p, NULL, "alarm_settings", p->dev, "fail", "busy");
        return web__respond_error(wsi, p, 503, "busy, retry");
    }
    web__audit(w, p, NULL, "alarm_settings", p->dev, "ok", NULL);
    sbuf_add(&p->resp, json, n);
    return web__respond_json(wsi, p, 200);
}

/* /api/alarms[...] and /api/devices/{id}/alarm-settings. */
static int web__route_alarms(struct lws *wsi, pss *p, web *w, const char *path)
{
    if (!strncmp(path, "/api/devices/", 13)) { /* .../alarm-settings */
        const char *r;
        if (web__split_device_path(path + 13, p->dev, &r) != 0)
            return web__respond_error(wsi, p, 400, "invalid device id (1-64 of A-Z a-z 0-9 _ . -)");
        if (p->meth != M_GET && p->meth != M_PUT)
            return web__respond_405(wsi, p, "GET, PUT");
        if (!hub_device_known(w->hub, p->dev))
            return web__respond_error(wsi, p, 404, "unknown device");
        if (p->meth == M_GET) {
            query_job job = {.kind = QUERY_ALARM_SETTINGS};
            return web__query_submit(wsi, p, w, &job);
        }
        if (p->role < AUTH_ROLE_CLINICIAN) {
            web__deny_count(w, METRICS_DENIED_FORBIDDEN);
            web__audit(w, p, NULL, "alarm_settings", p->dev, "forbidden", NULL);
            return web__respond_error(wsi, p, 403, "forbidden: alarm limits need a clinician");
        }
        return web__expect_body(wsi, p, R_ALARM_SETTINGS); /* answered at HTTP_BODY_COMPLETION */
    }
    const char *rest = path + 11;
    if (!*rest || !strcmp(rest, "/")) {
        if (p->meth != M_GET)
            return web__respond_405(wsi, p, "GET");
        char dev[TELEMETRY_ID_MAX + 1];
        const char *d = lws_get_urlarg_by_name(wsi, "device=", dev, sizeof dev);
        if (!d) { /* every open alarm: the live model, no I/O */
            hub_alarms_json(w->hub, &p->resp);
            return web__respond_json(wsi, p, 200);
        }
        if (!telemetry_id_valid(d, strlen(d)))
            return web__respond_error(wsi, p, 400, "invalid device id (1-64 of A-Z a-z 0-9 _ . -)");
        const int64_t t_max = (int64_t)1 << 53;
        int64_t to = vclock_wall_ms(), from = to - 24 * 3600 * 1000;
        if (web__arg_int(wsi, "from=", -t_max, t_max, &from) < 0 ||
            web__arg_int(wsi, "to=", -t_max, t_max, &to) < 0 || from > to)
            return web__respond_error(wsi, p, 400, "from and to must be epoch milliseconds, from <= to");
        snprintf(p->dev, sizeof p->dev, "%s", d);
        query_job job = {.kind = QUERY_ALARMS, .from = from, .to = to, .limit = ALARM_HISTORY_LIMIT};
        return web__query_submit(wsi, p, w, &job);
    }
    /* /{alarm_id}/ack | /{alarm_id}/silence */
    const char *id = rest + 1, *slash = strchr(id, '/');
    size_t n = slash ? (size_t)(slash - id) : 0;
    int digits = n > 0 && n <= 19;
    for (size_t i = 0; digits && i < n; i++)
        digits = id[i] >= '0' && id[i] <= '9';
    int ack = slash && !strcmp(slash, "/ack"), silence = slash && !strcmp(slash, "/silence");
    if (*rest != '/' || !digits || (!ack && !silence))
        return web__respond_error(wsi, p, 404, "unknown route");
    if (p->meth != M_POST)
        return web__respond_405(wsi, p, "POST");
    memcpy(p->target, id, n);
    p->target[n] = 0;
    if (p->role < AUTH_ROLE_CLINICIAN) {
        web__deny_count(w, METRICS_DENIED_FORBIDDEN);
        web__audit(w, p, NULL, ack ? "alarm_ack" : "alarm_silence", p->target, "forbidden", NULL);
        return web__respond_error(wsi, p, 403, "forbidden: acknowledging and silencing alarms needs a clinician");
    }
    if (ack)
        return web__alarm_submit(wsi, p, w, VIGIL_ALARM_ACK, 0);
    char cl[24];
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 || atoll(cl) <= 0)
        return web__alarm_submit(wsi, p, w, VIGIL_ALARM_SILENCE, ALARM_PAUSE_DEFAULT_S);
    return web__expect_body(wsi, p, R_ALARM_SILENCE); /* answered at HTTP_BODY_COMPLETION */
}

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
    p->authed = 0;
    p->user[0] = p->target[0] = 0;
    p->pw_change = 0;
    lws_get_peer_simple(wsi, p->addr, sizeof p->addr);

    if (!strcmp(path, "/healthz")) {
        if (p->meth != M_GET)
            return web__respond_405(wsi, p, "GET");
        store_stats ss;
        store_get_stats(w->st, &ss);
        int broker = w->pub.connected(w->pub.ctx), ok = broker && ss.writable;
        sbuf_addf(&p->resp, "{\"ok\":%s,\"broker_connected\":%s,\"store_writable\":%s,"
                            "\"store_queue_depth\":%zu,\"devices\":%zu,\"plain_http_exposed\":%s",
                  ok ? "true" : "false", broker ? "true" : "false", ss.writable ? "true" : "false",
                  ss.queue_depth, hub_device_count(w->hub), w->cfg->plain_http_exposed ? "true" : "false");
        if (atomic_load(&w->m->cluster_enabled)) /* several instances (cluster.h) */
            sbuf_addf(&p->resp, ",\"cluster\":{\"connected\":%s,\"members\":%" PRIu64 ",\"owned_buckets\":%" PRIu64
                                ",\"buckets\":%d,\"takeovers\":%" PRIu64 ",\"fences\":%" PRIu64 "}",
                      atomic_load(&w->m->cluster_connected) ? "true" : "false", atomic_load(&w->m->cluster_members),
                      atomic_load(&w->m->cluster_owned), CLUSTER_BUCKETS, atomic_load(&w->m->cluster_takeovers),
                      atomic_load(&w->m->cluster_fences));
        sbuf_adds(&p->resp, "}");
        return web__respond_json(wsi, p, ok ? 200 : 503);
    }
    if (!strcmp(path, "/metrics")) {
        if (p->meth != M_GET)
            return web__respond_405(wsi, p, "GET");
        int rc;
        if (!web__is_loopback(p->addr) && !web__gate(wsi, p, w, AUTH_ROLE_VIEWER, &rc))
            return rc;
        store_stats ss;
        store_get_stats(w->st, &ss);
        metrics_render(w->m, &ss, &p->resp);
        return web__respond(wsi, p, 200, "text/plain; version=0.0.4", NULL, NULL);
    }
    if (!strcmp(path, "/api/session"))
        return web__route_session(wsi, p, w);
    auth_role need = auth_route_role(web__auth_method(p->meth), path);
    int grc;
    if (need != AUTH_ROLE_NONE && !web__gate(wsi, p, w, need, &grc))
        return grc;
    if (need == AUTH_ROLE_ADMIN)
        return web__route_admin(wsi, p, w, path);
    if ((!strncmp(path, "/api/alarms", 11) && (path[11] == '/' || !path[11])) ||
        (!strncmp(path, "/api/devices/", 13) && strchr(path + 13, '/') &&
         !strcmp(strchr(path + 13, '/'), "/alarm-settings")))
        return web__route_alarms(wsi, p, w, path);
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
            /* Config too: a retained config for an id no device ever used
             * would sit on the broker for good, one per invented id. */
            if (!hub_device_known(w->hub, p->dev))
                return web__respond_error(wsi, p, 404, "unknown device");
            return web__expect_body(wsi, p, is_cmd ? R_COMMANDS : R_CONFIG); /* answered at HTTP_BODY_COMPLETION */
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

/* A request body is in: the route it belongs to answers. */
static int web__body_done(struct lws *wsi, pss *p, web *w)
{
    if (p->pending == R_LOGIN)
        return web__login_submit(wsi, p, w);
    if (p->pending == R_ALARM_SILENCE)
        return web__alarm_silence_body(wsi, p, w);
    if (p->pending == R_ALARM_SETTINGS)
        return web__alarm_settings_body(wsi, p, w);
    if (p->pending != R_COMMANDS && p->pending != R_CONFIG)
        return web__admin_body(wsi, p, w);
    char cmd[32] = "";
    if (p->pending == R_COMMANDS) {
        /* The command decides the role: ping/identify clinician, the rest technician. */
        auth_command_name(sbuf_data(&p->body), p->body.len, cmd, sizeof cmd);
        if (p->role < auth_command_role(cmd)) {
            web__deny_count(w, METRICS_DENIED_FORBIDDEN);
            web__audit(w, p, NULL, "command", p->dev, "forbidden", cmd);
            return web__respond_error(wsi, p, 403, "forbidden");
        }
    }
    int is_cfg = p->pending == R_CONFIG;
    int rc = web__route_publish(wsi, p, w);
    web__audit(w, p, NULL, is_cfg ? "config" : "command", p->dev, web__outcome(p->status), cmd);
    return rc;
}

/* ---- the protocol callback ---- */

/* The end of a flush window (hub_drain_paced). Web thread. */
static void web__flush(web *w)
{
    w->flush_due_ns = 0;
    hub_drain(w->hub);
}

static void web__flush_cb(lws_sorted_usec_list_t *sul) { web__flush(lws_container_of(sul, web, flush_sul)); }

/* lws polls for whole milliseconds, rounded down, and then spins with a
 * zero timeout until a timer is ripe: a held drain due within the next
 * millisecond is done now instead, once, after the poll that woke early. */
static void web__flush_if_near(web *w)
{
    if (w->flush_due_ns && vclock_mono_ns() + 1000000u >= w->flush_due_ns) {
        lws_sul_cancel(&w->flush_sul);
        web__flush(w);
    }
}

static int web__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    pss *p = user;
    web *w;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        w = lws_context_user(lws_get_context(wsi));
        if (w) {
            uint64_t now = vclock_mono_ns(), hold_ns = hub_drain_paced(w->hub, now);
            if (hold_ns) {
                w->flush_due_ns = now + hold_ns;
                lws_sul_schedule(w->ctx, 0, &w->flush_sul, web__flush_cb,
                                 (lws_usec_t)(hold_ns / 1000u) + 1);
            }
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
        return web__body_done(wsi, p, web__of(wsi));
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (p->q_ready) {
            p->q_ready = 0;
            return web__respond(wsi, p, p->q_status, "application/json", p->x_name, p->x_value);
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
        if (p && p->is_ws)
            web__ws_unregister(web__of(wsi), p); /* normally done at CLOSED */
        if (p && !p->is_ws) {
            web__query_forget(web__of(wsi), p);
            web__http_reset(p);
        }
        return 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return web__ws_confirm(wsi, web__of(wsi));
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws") != 0)
            return 1; /* WebSockets only on /ws */
        return web__ws_over_cap(wsi);
    }
    case LWS_CALLBACK_ESTABLISHED:
        w = web__of(wsi);
        web__http_reset(p);
        /* Who opened it (checked at the upgrade; the headers are still here):
         * remembered so that it closes when those credentials end. */
        if (!web__authenticate(wsi, p, w, NULL))
            return -1;
        p->is_ws = 1;
        sbuf_init(&p->rx, 0);
        if (hub_client_open(w->hub, (hub_client *)p->client, wsi))
            return -1;
        web__ws_register(w, p, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (p->ws_ended)
            return web__ws_close_ended(wsi);
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
        if (p->ws_ended)
            return web__ws_close_ended(wsi);
        return hub_client_writable(web__of(wsi)->hub, (hub_client *)p->client) ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
        if (p->is_ws) {
            web__ws_unregister(web__of(wsi), p);
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

static void web__auth_free(web *w)
{
    auth_table_free(&w->at);
    auth_throttle_free(&w->th);
}

static void *web__main(void *arg)
{
    web *w = arg;
    vthread_name("vigil-web");
    hub_thread_bind(w->hub);
    thread_owner_bind(&w->owner);
    lws_sul_schedule(w->ctx, 0, &w->refresh_sul, web__refresh_cb, AUTH_REFRESH_US);
    while (!atomic_load(&w->stop)) {
        if (lws_service(w->ctx, 0) < 0)
            break;
        web__flush_if_near(w);
    }
    lws_sul_cancel(&w->refresh_sul);
    lws_sul_cancel(&w->flush_sul);
    thread_owner_release(&w->owner);
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

/* The auth table, filled from the store before the web thread starts. */
static int web__auth_init(web *w)
{
    auth_entry *v = NULL;
    size_t n = 0;
    int64_t now = vclock_wall_ms();
    if (auth_table_init(&w->at, AUTH_TABLE_MAX, w->cfg->session_idle_s * 1000, w->cfg->session_max_s * 1000) !=
            AUTH_OK ||
        auth_throttle_init(&w->th, AUTH_THROTTLE_MAX) != AUTH_OK) {
        LOG_E(TAG, "out of memory for the session table");
        web__auth_free(w);
        return -1;
    }
    if (query_auth_snapshot(w->st, now, &v, &n) != 0) {
        LOG_E(TAG, "cannot read sessions and tokens from the store");
        web__auth_free(w);
        return -1;
    }
    size_t lost = auth_table_merge(&w->at, v, n, now);
    if (v)
        sodium_memzero(v, n * sizeof *v);
    free(v);
    if (lost)
        LOG_W(TAG, "%zu sessions/tokens do not fit the table (%d): not usable", lost, AUTH_TABLE_MAX);
    LOG_I(TAG, "access control: %zu sessions and tokens loaded", auth_table_live_count(&w->at));
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
    w->alarms = deps->alarms;
    w->m = deps->m;
    if (web__auth_init(w) != 0) { /* logged; it frees what it made */
        free(w);
        return -1;
    }
    w->protocols[0] = (struct lws_protocols){
        .name = "vigil",
        .callback = web__callback,
        .per_session_data_size = sizeof(pss) + hub_client_size(),
        .rx_buffer_size = 0,
        /* Unset, lws caps every send() at its 4 KiB service buffer and
         * copies the rest of a frame into a buffer list drained 4 KiB per
         * POLLOUT round: a 64 KiB shared frame took 16 rounds per client, so
         * at 10,000 msgs/s x 100 clients the queues filled with the thread
         * mostly idle (issue 13). One send() per frame instead. */
        .tx_packet_size = WEB_TX_PACKET,
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
        idtable_init(&w->conns, &web__conn_type, 64, 0) != IDTABLE_OK)
        goto fail;
    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        LOG_E(TAG, "cannot listen on %s (address in use, not local, or bad TLS certificate/key?)",
              cfg->listen);
        goto fail;
    }
    hub_set_conn_ops(h, &web__conn_ops);
    hub_set_flush_window(h, (uint32_t)cfg->ws_flush_ms);
    query_config qc = {.st = deps->st, .trk = deps->trk, .headroom = LWS_PRE, .wake = web__wake_lws,
                       .wake_ctx = w->ctx};
    if (query_start(&qc, &w->q) != QUERY_OK)
        goto fail;
    hub_set_waker(h, web__wake_lws, w->ctx);
    if (pthread_create(&w->thread, NULL, web__main, w) != 0) {
        LOG_E(TAG, "cannot start the web thread");
        goto fail;
    }
    LOG_I(TAG, "listening on %s://%s:%d (WebSocket /ws)", w->https ? "https" : "http", cfg->listen_host,
          cfg->listen_port);
    if (cfg->plain_http_exposed)
        LOG_W(TAG, "plain HTTP on non-loopback address %s (--allow-plain-http): vitals and "
                   "credentials cross the network unencrypted; /healthz reports plain_http_exposed",
              cfg->listen_host);
    *out = w;
    return 0;
fail:
    /* Reverse order of set-up; each step is safe on what was never made. */
    if (w->q)
        query_stop(w->q);
    if (w->ctx)
        lws_context_destroy(w->ctx);
    idtable_free(&w->peers);
    idtable_free(&w->conns);
    free(w->web_root_real);
    web__auth_free(w);
    free(w);
    return -1;
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
    web__auth_free(w);
    free(w);
}
