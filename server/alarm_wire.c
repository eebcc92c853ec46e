/* alarm_wire — see alarm_wire.h. */
#include "alarm_wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonin.h"
#include "jsonw.h"
#include "device_id.h"

#define ALARM_WIRE_PAYLOAD_MAX 65536

/* ---- times ---- */

/* Proleptic Gregorian date to days since 1970-01-01 (H. Hinnant's
 * days_from_civil): the inverse of what telemetry_format_iso uses. */
static int64_t alarm_wire__days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int alarm_wire__digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int alarm_wire_parse_iso(const char *s, int64_t *ms)
{
    /* YYYY-MM-DDTHH:MM:SS.mmmZ, exactly */
    int y, mo, d, hh, mi, ss, mss;
    if (!s || strlen(s) != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != '.' || s[23] != 'Z' || alarm_wire__digits(s, 4, &y) ||
        alarm_wire__digits(s + 5, 2, &mo) || alarm_wire__digits(s + 8, 2, &d) ||
        alarm_wire__digits(s + 11, 2, &hh) || alarm_wire__digits(s + 14, 2, &mi) ||
        alarm_wire__digits(s + 17, 2, &ss) || alarm_wire__digits(s + 20, 3, &mss))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mi > 59 || ss > 59)
        return -1;
    int64_t days = alarm_wire__days(y, mo, d);
    *ms = ((days * 86400 + hh * 3600 + mi * 60 + ss) * 1000) + mss;
    return 0;
}

/* ---- the retained list ---- */

static int alarm_wire__time(const cJSON *o, const char *k, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) {
        *out = 0;
        return 0;
    }
    return cJSON_IsString(v) ? alarm_wire_parse_iso(v->valuestring, out) : -1;
}

static int alarm_wire__num(const cJSON *o, const char *k, double *out, int *has)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) {
        *out = 0;
        if (has)
            *has = 0;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return -1;
    *out = v->valuedouble;
    if (has)
        *has = 1;
    return 0;
}

static const char *alarm_wire__str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A whole number in 0..2^53 (exact in JSON). */
static int alarm_wire__u53(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > 9007199254740992.0 || floor(v->valuedouble) != v->valuedouble)
        return -1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

alarm_err alarm_wire_parse_alarm(const cJSON *o, alarm_rec *out)
{
    alarm_rec a;
    memset(&a, 0, sizeof a);
    const char *dev = alarm_wire__str(o, "device_id"), *cond = alarm_wire__str(o, "condition"),
               *prio = alarm_wire__str(o, "priority"), *state = alarm_wire__str(o, "state");
    uint64_t id, esc = 0;
    if (!cJSON_IsObject(o) || !dev || !device_id_valid(dev, strlen(dev)) || strlen(dev) > ALARM_ID_MAX ||
        !cond || alarm_condition_from_name(cond, &a.condition) != 0 || !prio ||
        alarm_priority_from_name(prio, &a.priority) != 0 || !state ||
        alarm_state_from_name(state, &a.state) != 0 ||
        alarm_wire__u53(cJSON_GetObjectItemCaseSensitive(o, "alarm_id"), &id) != 0 || id == 0)
        return ALARM_EINVAL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "escalation");
    if (e && (alarm_wire__u53(e, &esc) != 0 || esc > UINT32_MAX))
        return ALARM_EINVAL;
    a.alarm_id = id;
    a.escalation = (uint32_t)esc;
    snprintf(a.device_id, sizeof a.device_id, "%s", dev);
    if (alarm_wire__num(o, "value", &a.value, &a.has_value) != 0 ||
        alarm_wire__num(o, "limit", &a.limit, NULL) != 0 ||
        alarm_wire__time(o, "started_at", &a.started_at) != 0 ||
        alarm_wire__time(o, "cleared_at", &a.cleared_at) != 0 ||
        alarm_wire__time(o, "acked_at", &a.acked_at) != 0 ||
        alarm_wire__time(o, "silenced_until", &a.silenced_until) != 0)
        return ALARM_EINVAL;
    const char *by = alarm_wire__str(o, "acked_by");
    if (by && a.acked_at > 0)
        snprintf(a.acked_by, sizeof a.acked_by, "%s", by);
    a.retrospective = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "retrospective"));
    if (a.condition == ALARM_NEWS2) {
        const cJSON *n2 = cJSON_GetObjectItemCaseSensitive(o, "news2");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(n2, "score");
        uint64_t score = 0;
        if (sc && (alarm_wire__u53(sc, &score) != 0 || score > 20))
            return ALARM_EINVAL;
        a.news2_score = (int)score;
    }
    *out = a;
    return ALARM_OK;
}

alarm_err alarm_wire_parse_list(const char *payload, size_t len, char *device_id, alarm_rec *out,
                                size_t *n)
{
    *n = 0;
    if (!payload || len == 0 || len > ALARM_WIRE_PAYLOAD_MAX)
        return ALARM_EINVAL;
    cJSON *j = jsonin_parse(payload, len, NULL);
    const char *dev = alarm_wire__str(j, "device_id");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "alarms");
    alarm_err rc = ALARM_EINVAL;
    if (!dev || strlen(dev) > ALARM_ID_MAX || !device_id_valid(dev, strlen(dev)) ||
        !cJSON_IsArray(list) || cJSON_GetArraySize(list) > ALARM_COND_COUNT)
        goto out;
    size_t k = 0;
    unsigned seen = 0; /* conditions: one open alarm each */
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        alarm_rec a;
        if (alarm_wire_parse_alarm(it, &a) != ALARM_OK || strcmp(a.device_id, dev) != 0 ||
            (seen & (1u << a.condition)))
            goto out;
        seen |= 1u << a.condition;
        out[k++] = a;
    }
    snprintf(device_id, ALARM_ID_MAX + 1, "%s", dev);
    *n = k;
    rc = ALARM_OK;
out:
    cJSON_Delete(j);
    return rc;
}

/* ---- forwarded operations ---- */

static const char *alarm_wire__op_name(vigil_alarm_op_kind k)
{
    return k == VIGIL_ALARM_ACK ? "ack" : k == VIGIL_ALARM_SILENCE ? "silence" : "settings";
}

size_t alarm_wire_build_op(const vigil_alarm_op *op, int64_t at, char *out, size_t cap)
{
    jsonw w;
    jsonw_init(&w, out, cap);
    JSONW_LIT(&w, "{");
    jsonw_key(&w, "op");
    jsonw_str(&w, alarm_wire__op_name(op->kind));
    jsonw_int(&w, "alarm_id", (int64_t)op->alarm_id);
    jsonw_key(&w, "device_id");
    jsonw_str(&w, op->device_id);
    jsonw_int(&w, "seconds", op->seconds);
    jsonw_key(&w, "user");
    jsonw_str(&w, op->user);
    jsonw_int(&w, "at", at);
    if (op->kind == VIGIL_ALARM_SETTINGS && op->settings) {
        char s[ALARM_SETTINGS_JSON_MAX];
        size_t n = alarm_settings_json(op->settings, s, sizeof s);
        if (!n)
            return 0;
        jsonw_key(&w, "settings");
        jsonw_raw(&w, s, n);
    }
    JSONW_LIT(&w, "}");
    size_t n = jsonw_finish(&w);
    return n < cap ? n : 0;
}

alarm_err alarm_wire_parse_op(const char *payload, size_t len, vigil_alarm_op *op)
{
    if (!payload || len == 0 || len > ALARM_WIRE_PAYLOAD_MAX)
        return ALARM_EINVAL;
    cJSON *j = jsonin_parse(payload, len, NULL);
    vigil_alarm_op o;
    memset(&o, 0, sizeof o);
    alarm_err rc = ALARM_EINVAL;
    const char *kind = alarm_wire__str(j, "op"), *dev = alarm_wire__str(j, "device_id"),
               *user = alarm_wire__str(j, "user");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(j, "seconds");
    uint64_t id = 0, secs = 0;
    if (!kind || !dev || strlen(dev) >= sizeof o.device_id || !user || strlen(user) >= sizeof o.user ||
        alarm_wire__u53(cJSON_GetObjectItemCaseSensitive(j, "alarm_id"), &id) != 0 ||
        (sec && alarm_wire__u53(sec, &secs) != 0) || secs > ALARM_PAUSE_MAX_S)
        goto out;
    o.kind = !strcmp(kind, "ack") ? VIGIL_ALARM_ACK
             : !strcmp(kind, "silence") ? VIGIL_ALARM_SILENCE
             : !strcmp(kind, "settings") ? VIGIL_ALARM_SETTINGS
                                         : (vigil_alarm_op_kind)0;
    if (!o.kind || (o.kind != VIGIL_ALARM_SETTINGS && id == 0) ||
        (o.kind == VIGIL_ALARM_SETTINGS && !device_id_valid(dev, strlen(dev))))
        goto out;
    o.alarm_id = id;
    o.seconds = (long long)secs;
    snprintf(o.device_id, sizeof o.device_id, "%s", dev);
    snprintf(o.user, sizeof o.user, "%s", user);
    if (o.kind == VIGIL_ALARM_SETTINGS) {
        char *body = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "settings"));
        alarm_settings def;
        alarm_settings_default(&def);
        o.settings = body ? malloc(sizeof *o.settings) : NULL;
        char err[160];
        if (!o.settings)
            rc = body ? ALARM_ENOMEM : ALARM_EINVAL;
        else if (alarm_settings_parse(body, strlen(body), &def, o.settings, err, sizeof err) != ALARM_OK) {
            free(o.settings);
            o.settings = NULL;
        }
        cJSON_free(body);
        if (!o.settings)
            goto out;
    }
    *op = o;
    rc = ALARM_OK;
out:
    cJSON_Delete(j);
    return rc;
}
