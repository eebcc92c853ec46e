/* session — see session.h. */
#include "session.h"

#include "topics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_LWT_PAYLOAD "{\"status\":\"offline\"}"
#define SESSION_ID_MAX 64  /* cmd_id / cfg_id echoed back, raw JSON text */
#define SESSION_CMD_MAX 32

/* ---- a bounded JSON scanner -------------------------------------------
 * Validates a whole document (RFC 8259 grammar, nesting ≤ JS_DEPTH) and
 * records the top-level members of an object as raw spans. Strings stay
 * escaped: we only compare them with plain ASCII literals and echo them
 * back verbatim inside quotes, which is valid JSON by construction. */

enum { JS_STR, JS_NUM, JS_TRUE, JS_FALSE, JS_NULL, JS_OBJ, JS_ARR };
#define JS_DEPTH 8
#define JS_FIELDS 24

typedef struct js_span {
    const char *p;
    size_t n;
    int type;
} js_span;

typedef struct js_field {
    js_span key;
    js_span val;
} js_field;

typedef struct js_scan {
    const char *s;
    size_t n;
    size_t i;
} js_scan;

static void js__ws(js_scan *j)
{
    while (j->i < j->n &&
           (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r'))
        j->i++;
}

static bool js__hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool js__string(js_scan *j, js_span *out)
{
    if (j->i >= j->n || j->s[j->i] != '"')
        return false;
    size_t start = ++j->i;
    while (j->i < j->n) {
        unsigned char c = (unsigned char)j->s[j->i];
        if (c == '"') {
            out->p = j->s + start;
            out->n = j->i - start;
            out->type = JS_STR;
            j->i++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++j->i >= j->n)
                return false;
            char e = j->s[j->i];
            if (e == 'u') {
                if (j->i + 4 >= j->n)
                    return false;
                for (int k = 1; k <= 4; k++)
                    if (!js__hex(j->s[j->i + k]))
                        return false;
                j->i += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return false;
            }
        }
        j->i++;
    }
    return false;
}

static bool js__digits(js_scan *j)
{
    size_t st = j->i;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
        j->i++;
    return j->i > st;
}

static bool js__number(js_scan *j, js_span *out)
{
    size_t st = j->i;
    if (j->i < j->n && j->s[j->i] == '-')
        j->i++;
    if (j->i < j->n && j->s[j->i] == '0')
        j->i++;
    else if (!js__digits(j))
        return false;
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        if (!js__digits(j))
            return false;
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
            j->i++;
        if (!js__digits(j))
            return false;
    }
    out->p = j->s + st;
    out->n = j->i - st;
    out->type = JS_NUM;
    return true;
}

static bool js__lit(js_scan *j, const char *w, int type, js_span *out)
{
    size_t n = strlen(w);
    if (j->n - j->i < n || memcmp(j->s + j->i, w, n) != 0)
        return false;
    out->p = j->s + j->i;
    out->n = n;
    out->type = type;
    j->i += n;
    return true;
}

/* Parses one value. At depth 0 with fields != NULL, an object's members
 * are recorded; more than JS_FIELDS members is refused (hostile input). */
static bool js__value(js_scan *j, int depth, js_span *out, js_field *fields, size_t *nfields)
{
    if (depth > JS_DEPTH)
        return false;
    js__ws(j);
    if (j->i >= j->n)
        return false;
    char c = j->s[j->i];
    size_t st = j->i;
    if (c == '"')
        return js__string(j, out);
    if (c == 't')
        return js__lit(j, "true", JS_TRUE, out);
    if (c == 'f')
        return js__lit(j, "false", JS_FALSE, out);
    if (c == 'n')
        return js__lit(j, "null", JS_NULL, out);
    if (c == '-' || (c >= '0' && c <= '9'))
        return js__number(j, out);
    if (c != '{' && c != '[')
        return false;
    bool obj = c == '{';
    char close = obj ? '}' : ']';
    j->i++;
    js__ws(j);
    if (j->i < j->n && j->s[j->i] == close) {
        j->i++;
    } else {
        for (;;) {
            js_span key = {0}, val = {0};
            js__ws(j);
            if (obj) {
                if (!js__string(j, &key))
                    return false;
                js__ws(j);
                if (j->i >= j->n || j->s[j->i] != ':')
                    return false;
                j->i++;
            }
            if (!js__value(j, depth + 1, &val, NULL, NULL))
                return false;
            if (obj && fields && depth == 0) {
                if (*nfields >= JS_FIELDS)
                    return false;
                fields[*nfields].key = key;
                fields[*nfields].val = val;
                (*nfields)++;
            }
            js__ws(j);
            if (j->i >= j->n)
                return false;
            if (j->s[j->i] == ',') {
                j->i++;
                continue;
            }
            if (j->s[j->i] != close)
                return false;
            j->i++;
            break;
        }
    }
    out->p = j->s + st;
    out->n = j->i - st;
    out->type = obj ? JS_OBJ : JS_ARR;
    return true;
}

/* True when buf[0..n) is exactly one JSON object; its members go to fields. */
static bool js_parse_object(const char *buf, size_t n, js_field *fields, size_t *nfields)
{
    js_scan j = {.s = buf, .n = n, .i = 0};
    js_span top;
    *nfields = 0;
    js__ws(&j);
    if (j.i >= j.n || buf[j.i] != '{')
        return false;
    if (!js__value(&j, 0, &top, fields, nfields))
        return false;
    js__ws(&j);
    return j.i == j.n;
}

static bool js_span_is(const js_span *sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp->n == n && memcmp(sp->p, lit, n) == 0;
}

/* 0: absent; 1: found once (in *out); -1: given twice (refused: which one
 * would the sender have meant?). */
static int js_get(const js_field *f, size_t n, const char *key, js_span *out)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (js_span_is(&f[i].key, key)) {
            if (found)
                return -1;
            *out = f[i].val;
            found = 1;
        }
    }
    return found;
}

/* An integral JSON number within [lo, hi] (≤ 2^53, exact in a double). */
static bool js_uint(const js_span *sp, double lo, double hi, uint64_t *out)
{
    if (sp->type != JS_NUM || sp->n >= 40)
        return false;
    char tmp[40];
    memcpy(tmp, sp->p, sp->n);
    tmp[sp->n] = '\0';
    double v = strtod(tmp, NULL);
    if (!isfinite(v) || v < lo || v > hi || v != floor(v))
        return false;
    *out = (uint64_t)v;
    return true;
}

/* ---- session ------------------------------------------------------------ */

static void session__log(const session *s, platform_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void session__log(const session *s, platform_log_level lvl, const char *fmt, ...)
{
    if (!s->p->log)
        return;
    char line[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->p->log(s->p->ctx, lvl, line);
}

static bool session__interval_ok(uint64_t v)
{
    return v >= SESSION_INTERVAL_MIN_MS && v <= SESSION_INTERVAL_MAX_MS;
}

session_status session_init(session *s, const platform *p, outbox *ob, const session_config *cfg)
{
    if (!s || !p || !ob || !cfg || !cfg->sample || !p->mono_ms || !p->wall_ms || !p->publish ||
        !p->subscribe || !p->kv_get_u32 || !p->kv_set_u32)
        return SESSION_EINVAL;
    if (!tenc_valid_device_id(cfg->device_id) || (cfg->fw && strlen(cfg->fw) > 32))
        return SESSION_EINVAL;
    memset(s, 0, sizeof *s);
    s->p = p;
    s->ob = ob;
    s->sample = cfg->sample;
    s->sample_ctx = cfg->sample_ctx;
    snprintf(s->id, sizeof s->id, "%s", cfg->device_id);
    snprintf(s->fw, sizeof s->fw, "%s", cfg->fw ? cfg->fw : "");
    if (topics_build(TOPICS_DATA, s->id, s->t_data, sizeof s->t_data, NULL) != TOPICS_OK ||
        topics_build(TOPICS_STATUS, s->id, s->t_status, sizeof s->t_status, NULL) != TOPICS_OK ||
        topics_build(TOPICS_ACK, s->id, s->t_ack, sizeof s->t_ack, NULL) != TOPICS_OK ||
        topics_build(TOPICS_CONFIG, s->id, s->t_config, sizeof s->t_config, NULL) != TOPICS_OK ||
        topics_build(TOPICS_CONTROL, s->id, s->t_control, sizeof s->t_control, NULL) != TOPICS_OK)
        return SESSION_EINVAL;
    s->drain_per_tick = cfg->drain_per_tick ? cfg->drain_per_tick : 10;

    uint32_t iv = cfg->default_interval_ms ? cfg->default_interval_ms : SESSION_DEFAULT_INTERVAL_MS;
    if (!session__interval_ok(iv))
        iv = SESSION_DEFAULT_INTERVAL_MS;
    uint32_t stored;
    if (p->kv_get_u32(p->ctx, PLATFORM_KEY_INTERVAL, &stored) == PLATFORM_OK &&
        session__interval_ok(stored))
        iv = stored;
    s->interval_ms = iv;

    /* A fresh boot id at every start: vigild stores readings once per
     * (boot, seq), so reusing one would make it drop the new readings. */
    uint32_t boot = 0;
    if (p->kv_get_u32(p->ctx, PLATFORM_KEY_BOOT, &boot) != PLATFORM_OK)
        boot = 0;
    s->boot = boot + 1;
    if (p->kv_set_u32(p->ctx, PLATFORM_KEY_BOOT, s->boot) != PLATFORM_OK)
        session__log(s, PLATFORM_LOG_WARN, "%s: cannot persist boot id %lu", s->id,
                     (unsigned long)s->boot);
    return SESSION_OK;
}

const char *session_lwt_topic(const session *s)
{
    return s->t_status;
}

const char *session_lwt_payload(void)
{
    return SESSION_LWT_PAYLOAD;
}

uint64_t session_next_due(const session *s)
{
    return s->next_due_ms;
}

static void session__publish_status(session *s)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf,
                     "{\"status\":\"online\",\"fw\":\"%s\",\"interval_ms\":%lu,\"boot\":%lu}", s->fw,
                     (unsigned long)s->interval_ms, (unsigned long)s->boot);
    if (s->p->publish(s->p->ctx, s->t_status, buf, (size_t)n, 1, true) != PLATFORM_OK)
        session__log(s, PLATFORM_LOG_WARN, "%s: online status not sent", s->id);
}

platform_status session_publish_offline(session *s)
{
    return s->p->publish(s->p->ctx, s->t_status, SESSION_LWT_PAYLOAD,
                         sizeof SESSION_LWT_PAYLOAD - 1, 1, true);
}

void session_on_connect(session *s)
{
    s->connected = true;
    s->st.connects++;
    session__publish_status(s);
    if (s->p->subscribe(s->p->ctx, s->t_config, 1) != PLATFORM_OK ||
        s->p->subscribe(s->p->ctx, s->t_control, 1) != PLATFORM_OK)
        session__log(s, PLATFORM_LOG_WARN, "%s: subscribe failed", s->id);
}

void session_on_disconnect(session *s)
{
    s->connected = false;
}

static void session__take_reading(session *s, uint64_t now)
{
    tenc_reading r = {.battery = -1, .rssi = 1};
    if (!s->sample(s->sample_ctx, &r))
        return;
    r.seq = ++s->seq;
    r.boot = s->boot;
    r.uptime_ms = now;
    r.ts_synced = s->p->wall_ms(s->p->ctx, &r.ts_ms);
    if (!r.ts_synced)
        r.ts_ms = 0;
    s->st.readings++;
    size_t len = 0;
    if (tenc_encode(&r, s->id, s->fw, s->scratch, sizeof s->scratch, &len) != TENC_OK) {
        session__log(s, PLATFORM_LOG_ERROR, "%s: cannot encode reading %llu", s->id,
                     (unsigned long long)r.seq);
        return;
    }
    bool sent = false;
    if (s->connected) {
        /* Live goes first even when a backlog is waiting: a nurse needs the
         * current SpO2 before the last minute's. */
        if (s->p->publish(s->p->ctx, s->t_data, s->scratch, len, 1, false) == PLATFORM_OK) {
            sent = true;
            s->st.live++;
        } else {
            s->st.publish_fail++;
        }
    }
    if (!sent)
        s->st.queued++;
    outbox_push(s->ob, r.boot, r.seq, r.ts_ms, s->scratch, len, !sent);
}

static void session__drain(session *s)
{
    for (uint32_t i = 0; i < s->drain_per_tick && s->connected; i++) {
        const outbox_rec *rec = outbox_peek_pending(s->ob);
        if (!rec)
            return;
        if (s->p->publish(s->p->ctx, s->t_data, rec->payload, rec->len, 1, false) != PLATFORM_OK) {
            s->st.publish_fail++;
            return; /* try again next tick */
        }
        outbox_mark_sent(s->ob, rec);
        s->st.replayed++;
    }
}

void session_tick(session *s)
{
    uint64_t now = s->p->mono_ms(s->p->ctx);
    if (!s->started) {
        s->started = true;
        s->next_due_ms = now;
    }
    if (now >= s->next_due_ms) {
        session__take_reading(s, now);
        /* Keep the cadence, but never burst to catch up after a stall. */
        s->next_due_ms += s->interval_ms;
        if (s->next_due_ms <= now)
            s->next_due_ms = now + s->interval_ms;
    }
    if (s->connected)
        session__drain(s);
}

/* ---- config and commands ---------------------------------------------- */

static void session__ack(session *s, const char *json, int n)
{
    if (n <= 0)
        return;
    if (s->p->publish(s->p->ctx, s->t_ack, json, (size_t)n, 1, false) != PLATFORM_OK)
        session__log(s, PLATFORM_LOG_WARN, "%s: ack not sent", s->id);
}

static bool session__set_interval(session *s, uint32_t iv)
{
    bool persisted = true;
    if (iv != s->interval_ms)
        persisted = s->p->kv_set_u32(s->p->ctx, PLATFORM_KEY_INTERVAL, iv) == PLATFORM_OK;
    s->interval_ms = iv;
    uint64_t now = s->p->mono_ms(s->p->ctx);
    if (s->started && s->next_due_ms > now + iv)
        s->next_due_ms = now + iv;
    if (!persisted)
        session__log(s, PLATFORM_LOG_WARN, "%s: interval %lu applied but not persisted", s->id,
                     (unsigned long)iv);
    return persisted;
}

static void session__on_config(session *s, const char *buf, size_t len)
{
    js_field f[JS_FIELDS];
    size_t nf;
    if (!js_parse_object(buf, len, f, &nf)) {
        s->st.malformed++;
        session__log(s, PLATFORM_LOG_WARN, "%s: malformed config ignored", s->id);
        return;
    }
    char idpart[SESSION_ID_MAX + 16] = "";
    js_span id = {0}, iv = {0};
    int has_id = js_get(f, nf, "cfg_id", &id);
    const char *err = NULL;
    if (has_id == 1 && id.type == JS_STR && id.n <= SESSION_ID_MAX)
        snprintf(idpart, sizeof idpart, "\"cfg_id\":\"%.*s\",", (int)id.n, id.p);
    else if (has_id != 0)
        err = "invalid cfg_id";
    int has_iv = js_get(f, nf, "interval_ms", &iv);
    uint64_t v = s->interval_ms;
    if (!err && has_iv != 0 &&
        (has_iv < 0 || !js_uint(&iv, SESSION_INTERVAL_MIN_MS, SESSION_INTERVAL_MAX_MS, &v)))
        err = "invalid interval_ms";
    char out[256];
    int n;
    if (err) {
        n = snprintf(out, sizeof out, "{%s\"ok\":false,\"error\":\"%s\"}", idpart, err);
        session__ack(s, out, n);
        return;
    }
    bool persisted = session__set_interval(s, (uint32_t)v);
    s->st.configs++;
    n = snprintf(out, sizeof out, "{%s\"ok\":true,\"interval_ms\":%lu%s}", idpart,
                 (unsigned long)s->interval_ms, persisted ? "" : ",\"persisted\":false");
    session__ack(s, out, n);
    session__publish_status(s);
}

typedef struct session_resend {
    session *s;
    uint64_t sent;
    bool failed;
} session_resend;

static bool session__resend_one(void *ctx, const outbox_rec *rec)
{
    session_resend *rs = ctx;
    session *s = rs->s;
    if (s->p->publish(s->p->ctx, s->t_data, rec->payload, rec->len, 1, false) != PLATFORM_OK) {
        rs->failed = true;
        return false;
    }
    if (rec->pending) /* it was waiting for replay: it just went out */
        outbox_mark_sent(s->ob, rec);
    rs->sent++;
    s->st.resent++;
    return true;
}

static void session__on_command(session *s, const char *buf, size_t len)
{
    js_field f[JS_FIELDS];
    size_t nf;
    if (!js_parse_object(buf, len, f, &nf)) {
        /* No cmd_id can be trusted from it, so there is nobody to answer. */
        s->st.malformed++;
        session__log(s, PLATFORM_LOG_WARN, "%s: malformed command ignored", s->id);
        return;
    }
    s->st.commands++;
    char head[SESSION_ID_MAX + SESSION_CMD_MAX + 32] = "";
    size_t hl = 0;
    const char *err = NULL;
    js_span id = {0}, cmd = {0};
    int has_id = js_get(f, nf, "cmd_id", &id);
    if (has_id == 1 && id.type == JS_STR && id.n <= SESSION_ID_MAX)
        hl += (size_t)snprintf(head, sizeof head, "\"cmd_id\":\"%.*s\",", (int)id.n, id.p);
    else if (has_id != 0)
        err = "invalid cmd_id";
    int has_cmd = js_get(f, nf, "cmd", &cmd);
    if (has_cmd == 1 && cmd.type == JS_STR && cmd.n <= SESSION_CMD_MAX)
        snprintf(head + hl, sizeof head - hl, "\"cmd\":\"%.*s\",", (int)cmd.n, cmd.p);
    else if (!err)
        err = has_cmd == 0 ? "missing cmd" : "invalid cmd";

    char out[384];
    int n = 0;
    bool status_changed = false;
    bool reboot = false;
    if (err) {
        /* reported below */
    } else if (js_span_is(&cmd, "ping")) {
        n = snprintf(out, sizeof out, "{%s\"ok\":true}", head);
    } else if (js_span_is(&cmd, "identify")) {
        if (s->p->identify) {
            s->p->identify(s->p->ctx);
            n = snprintf(out, sizeof out, "{%s\"ok\":true}", head);
        } else {
            err = "not supported";
        }
    } else if (js_span_is(&cmd, "reboot")) {
        if (s->p->reboot) {
            n = snprintf(out, sizeof out, "{%s\"ok\":true}", head);
            reboot = true;
        } else {
            err = "not supported";
        }
    } else if (js_span_is(&cmd, "set_interval")) {
        js_span iv = {0};
        uint64_t v;
        if (js_get(f, nf, "interval_ms", &iv) != 1 ||
            !js_uint(&iv, SESSION_INTERVAL_MIN_MS, SESSION_INTERVAL_MAX_MS, &v)) {
            err = "invalid interval_ms";
        } else {
            bool persisted = session__set_interval(s, (uint32_t)v);
            n = snprintf(out, sizeof out, "{%s\"ok\":true,\"interval_ms\":%lu%s}", head,
                         (unsigned long)s->interval_ms, persisted ? "" : ",\"persisted\":false");
            status_changed = true;
        }
    } else if (js_span_is(&cmd, "resend")) {
        js_span b = {0}, fr = {0}, to = {0};
        uint64_t vb, vf, vt;
        const double max53 = 9007199254740992.0;
        if (js_get(f, nf, "boot", &b) != 1 || !js_uint(&b, 0, 4294967295.0, &vb) ||
            js_get(f, nf, "from", &fr) != 1 || !js_uint(&fr, 0, max53, &vf) ||
            js_get(f, nf, "to", &to) != 1 || !js_uint(&to, 0, max53, &vt) || vt < vf) {
            err = "invalid range";
        } else {
            session_resend rs = {.s = s};
            uint64_t found = 0, missing = 0;
            outbox_lookup(s->ob, (uint32_t)vb, vf, vt, session__resend_one, &rs, &found, &missing);
            if (rs.failed)
                n = snprintf(out, sizeof out,
                             "{%s\"ok\":false,\"error\":\"publish failed\",\"sent\":%llu,"
                             "\"missing\":%llu}",
                             head, (unsigned long long)rs.sent, (unsigned long long)missing);
            else
                n = snprintf(out, sizeof out, "{%s\"ok\":true,\"sent\":%llu,\"missing\":%llu}",
                             head, (unsigned long long)rs.sent, (unsigned long long)missing);
        }
    } else {
        err = "unknown command";
    }
    if (err)
        n = snprintf(out, sizeof out, "{%s\"ok\":false,\"error\":\"%s\"}", head, err);
    session__ack(s, out, n);
    if (status_changed)
        session__publish_status(s);
    if (reboot) {
        s->reboot_requested = true;
        s->p->reboot(s->p->ctx);
    }
}

void session_on_message(session *s, const char *topic, const void *payload, size_t len)
{
    if (!s || !topic || (!payload && len))
        return;
    if (len > SESSION_MAX_IN) {
        s->st.malformed++;
        session__log(s, PLATFORM_LOG_WARN, "%s: oversize message (%lu B) ignored", s->id,
                     (unsigned long)len);
        return;
    }
    if (strcmp(topic, s->t_config) == 0)
        session__on_config(s, payload ? payload : "", len);
    else if (strcmp(topic, s->t_control) == 0)
        session__on_command(s, payload ? payload : "", len);
}
