/* session — see session.h. */
#include "session.h"

#include "json_scan.h"
#include "topics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SESSION_LWT_PAYLOAD "{\"status\":\"offline\"}"
#define SESSION_ID_MAX 64  /* cmd_id / cfg_id echoed back, raw JSON text */
#define SESSION_CMD_MAX 32

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
    s->replay_per_s = cfg->replay_per_s ? cfg->replay_per_s : SESSION_REPLAY_PER_S;
    s->flush_ms = cfg->flush_ms ? cfg->flush_ms : SESSION_FLUSH_MS;
    s->tokens = s->replay_per_s;

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
    /* Above the newest boot in flash too (NVS may have been erased): the
     * outbox's lookup relies on (boot, seq) growing along the log. */
    if (ob->have_last && ob->last_boot > boot)
        boot = ob->last_boot;
    if (ob->have_last && !ob->last_clean) {
        /* The lost page held at most page_cap readings after the last one
         * in flash (it is programmed when full; a cut during that program
         * tears it). How many is unknowable, so the bound is announced:
         * vigild asks for the seqs it lacks up to it, we answer missing and
         * they are marked lost. At most a page of them may never have been
         * taken — completeness errs towards a loss, never towards silence. */
        uint64_t top = (uint64_t)ob->last_seq + ob->ring.page_cap;
        s->prev_unclean = true;
        s->prev_boot = ob->last_boot;
        s->prev_last_seq = top > UINT32_MAX ? UINT32_MAX : (uint32_t)top;
        session__log(s, PLATFORM_LOG_WARN,
                     "%s: boot %lu stopped without flushing after seq %lu: up to %lu later "
                     "seqs are lost",
                     s->id, (unsigned long)ob->last_boot, (unsigned long)ob->last_seq,
                     (unsigned long)ob->ring.page_cap);
    }
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
    char buf[224];
    int n = snprintf(buf, sizeof buf,
                     "{\"status\":\"online\",\"fw\":\"%s\",\"interval_ms\":%lu,\"boot\":%lu", s->fw,
                     (unsigned long)s->interval_ms, (unsigned long)s->boot);
    if (s->prev_unclean)
        n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"prev_boot\":%lu,\"prev_last_seq\":%lu",
                      (unsigned long)s->prev_boot, (unsigned long)s->prev_last_seq);
    n += snprintf(buf + n, sizeof buf - (size_t)n, "}");
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

static void session__flush(session *s)
{
    if (outbox_flush(s->ob) != OUTBOX_OK) {
        s->st.flush_fail++;
        session__log(s, PLATFORM_LOG_ERROR, "%s: outbox flash write failed", s->id);
    }
}

void session_on_disconnect(session *s)
{
    s->connected = false;
    session__flush(s); /* what is offline from now on must survive a power cut */
}

void session_power_off(session *s)
{
    if (outbox_end_boot(s->ob, s->boot, (uint32_t)s->seq) != OUTBOX_OK) {
        s->st.flush_fail++;
        session__log(s, PLATFORM_LOG_ERROR, "%s: outbox flash write failed", s->id);
    }
}

/* The wire JSON of a stored record into s->scratch. */
static bool session__encode(session *s, const reading_rec *rec, size_t *len)
{
    tenc_reading r;
    reading_rec_to_tenc(rec, &r);
    if (tenc_encode(&r, s->id, s->fw, s->scratch, sizeof s->scratch, len) != TENC_OK) {
        session__log(s, PLATFORM_LOG_ERROR, "%s: cannot encode reading %lu", s->id,
                     (unsigned long)rec->seq);
        return false;
    }
    return true;
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
    reading_rec rec;
    reading_rec_from_tenc(&r, &rec);
    size_t len = 0;
    if (s->connected && session__encode(s, &rec, &len)) {
        /* Live goes first even when a backlog is waiting: a nurse needs the
         * current SpO2 before the last minute's. */
        if (s->p->publish(s->p->ctx, s->t_data, s->scratch, len, 1, false) == PLATFORM_OK) {
            rec.sent = true;
            s->st.live++;
        } else {
            s->st.publish_fail++;
        }
    }
    if (!rec.sent)
        s->st.queued++;
    if (outbox_buffered(s->ob) == 0)
        s->page_since_ms = now;
    if (outbox_push(s->ob, &rec) != OUTBOX_OK) {
        s->st.flush_fail++;
        session__log(s, PLATFORM_LOG_ERROR, "%s: outbox flash write failed", s->id);
    }
}

static void session__drain(session *s, uint64_t now)
{
    /* Token bucket: replay_per_s per second, burst one second's worth. */
    s->tokens += (double)(now - s->tokens_at_ms) * s->replay_per_s / 1000.0;
    if (s->tokens > s->replay_per_s)
        s->tokens = s->replay_per_s;
    s->tokens_at_ms = now;
    for (uint32_t i = 0; i < s->drain_per_tick && s->connected && s->tokens >= 1; i++) {
        reading_rec rec;
        uint64_t pos;
        if (outbox_peek_pending(s->ob, &rec, &pos) != OUTBOX_OK)
            return;
        size_t len;
        if (session__encode(s, &rec, &len) &&
            s->p->publish(s->p->ctx, s->t_data, s->scratch, len, 1, false) != PLATFORM_OK) {
            s->st.publish_fail++;
            return; /* try again next tick */
        }
        outbox_mark_sent(s->ob, pos);
        s->st.replayed++;
        s->tokens -= 1;
    }
}

void session_tick(session *s)
{
    uint64_t now = s->p->mono_ms(s->p->ctx);
    if (!s->started) {
        s->started = true;
        s->next_due_ms = now;
        s->tokens_at_ms = now;
    }
    if (now >= s->next_due_ms) {
        session__take_reading(s, now);
        /* Keep the cadence, but never burst to catch up after a stall. */
        s->next_due_ms += s->interval_ms;
        if (s->next_due_ms <= now)
            s->next_due_ms = now + s->interval_ms;
    }
    if (outbox_buffered(s->ob) > 0 && now - s->page_since_ms >= s->flush_ms)
        session__flush(s);
    if (s->connected)
        session__drain(s, now);
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
    json_scan_field f[JSON_SCAN_FIELDS];
    size_t nf;
    if (json_scan_object(buf, len, f, JSON_SCAN_FIELDS, &nf) != JSON_SCAN_OK) {
        s->st.malformed++;
        session__log(s, PLATFORM_LOG_WARN, "%s: malformed config ignored", s->id);
        return;
    }
    char idpart[SESSION_ID_MAX + 16] = "";
    json_scan_span id = {0}, iv = {0};
    json_scan_status has_id = json_scan_get(f, nf, "cfg_id", &id);
    const char *err = NULL;
    if (has_id == JSON_SCAN_OK && id.type == JSON_SCAN_STR && id.n <= SESSION_ID_MAX)
        snprintf(idpart, sizeof idpart, "\"cfg_id\":\"%.*s\",", (int)id.n, id.p);
    else if (has_id != JSON_SCAN_EABSENT)
        err = "invalid cfg_id";
    json_scan_status has_iv = json_scan_get(f, nf, "interval_ms", &iv);
    uint64_t v = s->interval_ms;
    if (!err && has_iv != JSON_SCAN_EABSENT &&
        (has_iv != JSON_SCAN_OK ||
         json_scan_uint(&iv, SESSION_INTERVAL_MIN_MS, SESSION_INTERVAL_MAX_MS, &v) != JSON_SCAN_OK))
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

static bool session__resend_one(void *ctx, const reading_rec *rec)
{
    session_resend *rs = ctx;
    session *s = rs->s;
    size_t len;
    if (!session__encode(s, rec, &len))
        return true; /* logged; counts as found, not sent */
    /* A pending one goes out again on replay: flash is not rewritten to
     * mark it, and vigild ignores the duplicate. */
    if (s->p->publish(s->p->ctx, s->t_data, s->scratch, len, 1, false) != PLATFORM_OK) {
        rs->failed = true;
        return false;
    }
    rs->sent++;
    s->st.resent++;
    return true;
}

static void session__on_command(session *s, const char *buf, size_t len)
{
    json_scan_field f[JSON_SCAN_FIELDS];
    size_t nf;
    if (json_scan_object(buf, len, f, JSON_SCAN_FIELDS, &nf) != JSON_SCAN_OK) {
        /* No cmd_id can be trusted from it, so there is nobody to answer. */
        s->st.malformed++;
        session__log(s, PLATFORM_LOG_WARN, "%s: malformed command ignored", s->id);
        return;
    }
    s->st.commands++;
    char head[SESSION_ID_MAX + SESSION_CMD_MAX + 32] = "";
    size_t hl = 0;
    const char *err = NULL;
    json_scan_span id = {0}, cmd = {0};
    json_scan_status has_id = json_scan_get(f, nf, "cmd_id", &id);
    if (has_id == JSON_SCAN_OK && id.type == JSON_SCAN_STR && id.n <= SESSION_ID_MAX)
        hl += (size_t)snprintf(head, sizeof head, "\"cmd_id\":\"%.*s\",", (int)id.n, id.p);
    else if (has_id != JSON_SCAN_EABSENT)
        err = "invalid cmd_id";
    json_scan_status has_cmd = json_scan_get(f, nf, "cmd", &cmd);
    if (has_cmd == JSON_SCAN_OK && cmd.type == JSON_SCAN_STR && cmd.n <= SESSION_CMD_MAX)
        snprintf(head + hl, sizeof head - hl, "\"cmd\":\"%.*s\",", (int)cmd.n, cmd.p);
    else if (!err)
        err = has_cmd == JSON_SCAN_EABSENT ? "missing cmd" : "invalid cmd";

    char out[384];
    int n = 0;
    bool status_changed = false;
    bool reboot = false;
    if (err) {
        /* reported below */
    } else if (json_scan_span_is(&cmd, "ping")) {
        n = snprintf(out, sizeof out, "{%s\"ok\":true}", head);
    } else if (json_scan_span_is(&cmd, "identify")) {
        if (s->p->identify) {
            s->p->identify(s->p->ctx);
            n = snprintf(out, sizeof out, "{%s\"ok\":true}", head);
        } else {
            err = "not supported";
        }
    } else if (json_scan_span_is(&cmd, "reboot")) {
        if (s->p->reboot) {
            n = snprintf(out, sizeof out, "{%s\"ok\":true}", head);
            reboot = true;
        } else {
            err = "not supported";
        }
    } else if (json_scan_span_is(&cmd, "set_interval")) {
        json_scan_span iv = {0};
        uint64_t v;
        if (json_scan_get(f, nf, "interval_ms", &iv) != JSON_SCAN_OK ||
            json_scan_uint(&iv, SESSION_INTERVAL_MIN_MS, SESSION_INTERVAL_MAX_MS, &v) !=
                JSON_SCAN_OK) {
            err = "invalid interval_ms";
        } else {
            bool persisted = session__set_interval(s, (uint32_t)v);
            n = snprintf(out, sizeof out, "{%s\"ok\":true,\"interval_ms\":%lu%s}", head,
                         (unsigned long)s->interval_ms, persisted ? "" : ",\"persisted\":false");
            status_changed = true;
        }
    } else if (json_scan_span_is(&cmd, "resend")) {
        json_scan_span b = {0}, fr = {0}, to = {0};
        uint64_t vb, vf, vt;
        const double max53 = 9007199254740992.0;
        if (json_scan_get(f, nf, "boot", &b) != JSON_SCAN_OK ||
            json_scan_uint(&b, 0, 4294967295.0, &vb) != JSON_SCAN_OK ||
            json_scan_get(f, nf, "from", &fr) != JSON_SCAN_OK ||
            json_scan_uint(&fr, 0, max53, &vf) != JSON_SCAN_OK ||
            json_scan_get(f, nf, "to", &to) != JSON_SCAN_OK ||
            json_scan_uint(&to, 0, max53, &vt) != JSON_SCAN_OK || vt < vf) {
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
        session_power_off(s);
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
