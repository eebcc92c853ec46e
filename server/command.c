#include "command.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonin.h"
#include "telemetry.h"

static int command__fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

/* An integral JSON number within [lo, hi]. */
static int command__get_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        snprintf(err, errlen, "missing \"%s\"", key);
        return -1;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi) {
        snprintf(err, errlen, "\"%s\" must be an integer in %" PRId64 "..%" PRId64, key, lo, hi);
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

static int command__only_keys(const cJSON *o, const char *const *allowed, char *err, size_t errlen)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(it->string, *a))
                ok = 1;
        if (!ok) {
            snprintf(err, errlen, "unknown field \"%.64s\"", it->string);
            return -1;
        }
    }
    return 0;
}

static cJSON *command__parse_object(const char *body, size_t len, char *err, size_t errlen)
{
    if (len == 0 || len > 4096) {
        command__fail(err, errlen, "body must be a JSON object of at most 4096 bytes");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = jsonin_parse(body, len, &end);
    if (!j) {
        command__fail(err, errlen, "body is not valid JSON");
        return NULL;
    }
    while (end && end < body + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (!cJSON_IsObject(j) || (end && end < body + len)) {
        cJSON_Delete(j);
        command__fail(err, errlen, "body must be a single JSON object");
        return NULL;
    }
    return j;
}

int command_build(const char *body, size_t len, const char *cmd_id, sbuf *payload, char *err,
                  size_t errlen)
{
    cJSON *j = command__parse_object(body, len, err, errlen);
    if (!j)
        return -1;
    int rc = -1;
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(j, "cmd");
    if (!cJSON_IsString(cmd)) {
        command__fail(err, errlen, "missing \"cmd\" (ping, identify, reboot, set_interval, resend)");
        goto out;
    }
    const char *c = cmd->valuestring;
    sbuf_adds(payload, "{\"cmd_id\":");
    sbuf_add_json_str(payload, cmd_id);
    sbuf_addf(payload, ",\"cmd\":\"%s\"", !strcmp(c, "ping") ? "ping" : !strcmp(c, "identify") ? "identify"
                                          : !strcmp(c, "reboot") ? "reboot" : !strcmp(c, "set_interval") ? "set_interval"
                                          : !strcmp(c, "resend") ? "resend" : "");
    if (!strcmp(c, "ping") || !strcmp(c, "identify") || !strcmp(c, "reboot")) {
        static const char *const keys[] = {"cmd", NULL};
        if (command__only_keys(j, keys, err, errlen))
            goto out;
    } else if (!strcmp(c, "set_interval")) {
        static const char *const keys[] = {"cmd", "interval_ms", NULL};
        int64_t iv;
        if (command__only_keys(j, keys, err, errlen) ||
            command__get_int(j, "interval_ms", COMMAND_INTERVAL_MIN, COMMAND_INTERVAL_MAX, &iv, err, errlen))
            goto out;
        sbuf_addf(payload, ",\"interval_ms\":%" PRId64, iv);
    } else if (!strcmp(c, "resend")) {
        static const char *const keys[] = {"cmd", "boot", "from", "to", NULL};
        int64_t boot, from, to;
        const int64_t max = (int64_t)1 << 53;
        if (command__only_keys(j, keys, err, errlen) || command__get_int(j, "boot", 0, max, &boot, err, errlen) ||
            command__get_int(j, "from", 0, max, &from, err, errlen) ||
            command__get_int(j, "to", 0, max, &to, err, errlen))
            goto out;
        if (to < from) {
            command__fail(err, errlen, "\"to\" must not be below \"from\"");
            goto out;
        }
        sbuf_addf(payload, ",\"boot\":%" PRId64 ",\"from\":%" PRId64 ",\"to\":%" PRId64, boot, from, to);
    } else {
        command__fail(err, errlen, "unknown \"cmd\" (ping, identify, reboot, set_interval, resend)");
        goto out;
    }
    sbuf_adds(payload, "}");
    rc = sbuf_ok(payload) ? 0 : command__fail(err, errlen, "out of memory");
out:
    cJSON_Delete(j);
    return rc;
}

int command_build_config(const char *body, size_t len, const char *cfg_id, sbuf *payload,
                         char *err, size_t errlen)
{
    cJSON *j = command__parse_object(body, len, err, errlen);
    if (!j)
        return -1;
    int rc = -1;
    static const char *const keys[] = {"interval_ms", NULL};
    int64_t iv;
    if (command__only_keys(j, keys, err, errlen) ||
        command__get_int(j, "interval_ms", COMMAND_INTERVAL_MIN, COMMAND_INTERVAL_MAX, &iv, err, errlen))
        goto out;
    sbuf_adds(payload, "{\"cfg_id\":");
    sbuf_add_json_str(payload, cfg_id);
    sbuf_addf(payload, ",\"interval_ms\":%" PRId64 "}", iv);
    rc = sbuf_ok(payload) ? 0 : command__fail(err, errlen, "out of memory");
out:
    cJSON_Delete(j);
    return rc;
}

static int command__printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || n >= max)
            return 0;
    return 1;
}

static int command__ack_fail(char *err, size_t errlen, telemetry_reason r, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return (int)r;
}

int command_parse_ack(const char *device_id, const char *payload, size_t len, size_t max_len,
                      int64_t received_ms, sbuf *data, char *cmd_id, char *err, size_t errlen)
{
    static const char *const strs[] = {"cmd_id", "cfg_id", "cmd", "error"};
    static const char *const nums[] = {"sent", "missing", "interval_ms", "boot", "from", "to",
                                       "uptime_ms"};
    enum { NSTR = 4, NNUM = 7 };
    if (cmd_id)
        cmd_id[0] = 0;
    if (len > max_len)
        return command__ack_fail(err, errlen, TELEMETRY_OVERSIZE, "ack larger than the payload cap");
    if (memchr(payload, 0, len))
        return command__ack_fail(err, errlen, TELEMETRY_MALFORMED_JSON, "ack contains a NUL byte");
    if (len == 0 || len > 4096)
        return command__ack_fail(err, errlen, TELEMETRY_MALFORMED_JSON,
                                 "body must be a JSON object of at most 4096 bytes");
    const char *end = NULL;
    cJSON *j = jsonin_parse(payload, len, &end);
    if (!j)
        return command__ack_fail(err, errlen, TELEMETRY_MALFORMED_JSON, "body is not valid JSON");
    while (end && end < payload + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (!cJSON_IsObject(j) || (end && end < payload + len)) {
        cJSON_Delete(j);
        return command__ack_fail(err, errlen, TELEMETRY_NOT_OBJECT, "body must be a single JSON object");
    }
    int rc = -1;
    const cJSON *it;
    int have_id = 0, have_ok = 0;
    unsigned seen = 0; /* bit per known field: a second one is a duplicate */
    sbuf_adds(data, "{");
    cJSON_ArrayForEach(it, j)
    {
        const char *k = it->string;
        unsigned bit = 0;
        int si = -1, ni = -1;
        for (int i = 0; i < NSTR && si < 0; i++)
            if (!strcmp(k, strs[i]))
                si = i, bit = 1u << i;
        for (int i = 0; i < NNUM && si < 0 && ni < 0; i++)
            if (!strcmp(k, nums[i]))
                ni = i, bit = 1u << (NSTR + i);
        if (si < 0 && ni < 0 && !strcmp(k, "ok"))
            bit = 1u << (NSTR + NNUM);
        if (!bit)
            continue; /* other fields: ignored, as for readings */
        if (seen & bit) {
            snprintf(err, errlen, "\"%s\" appears twice", k);
            rc = TELEMETRY_DUPLICATE_FIELD;
            goto out;
        }
        seen |= bit;
        if (si >= 0) {
            size_t cap = !strcmp(k, "error") ? 200 : COMMAND_ID_MAX;
            if (!cJSON_IsString(it) || !command__printable(it->valuestring, cap)) {
                snprintf(err, errlen, "\"%s\" must be a printable string of at most %zu chars", k, cap);
                rc = TELEMETRY_WRONG_TYPE;
                goto out;
            }
            if (si <= 1 && !it->valuestring[0]) {
                /* an empty id would read as "no cmd_id": never matched */
                snprintf(err, errlen, "\"%s\" must not be empty", k);
                rc = TELEMETRY_BAD_ACK;
                goto out;
            }
            have_id |= si <= 1;
            if (si == 0 && cmd_id)
                snprintf(cmd_id, COMMAND_ID_MAX + 1, "%s", it->valuestring);
            sbuf_addf(data, "\"%s\":", k);
            sbuf_add_json_str(data, it->valuestring);
            sbuf_adds(data, ",");
        } else if (ni < 0) { /* "ok" */
            if (!cJSON_IsBool(it)) {
                rc = command__ack_fail(err, errlen, TELEMETRY_WRONG_TYPE, "\"ok\" must be true or false");
                goto out;
            }
            have_ok = 1;
            sbuf_addf(data, "\"ok\":%s,", cJSON_IsTrue(it) ? "true" : "false");
        } else {
            double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
            if (!isfinite(d) || d != floor(d) || d < 0 || d > 9007199254740992.0) {
                snprintf(err, errlen, "\"%s\" must be a non-negative integer", k);
                rc = cJSON_IsNumber(it) ? TELEMETRY_OUT_OF_RANGE : TELEMETRY_WRONG_TYPE;
                goto out;
            }
            sbuf_addf(data, "\"%s\":%" PRId64 ",", k, (int64_t)d);
        }
    }
    if (!have_id || !have_ok) {
        rc = command__ack_fail(err, errlen, TELEMETRY_BAD_ACK,
                               "ack needs \"cmd_id\" or \"cfg_id\", and \"ok\"");
        goto out;
    }
    char iso[32];
    telemetry_format_iso(received_ms, iso, sizeof iso);
    sbuf_adds(data, "\"device_id\":");
    sbuf_add_json_str(data, device_id);
    sbuf_addf(data, ",\"received_at\":\"%s\"}", iso);
    rc = sbuf_ok(data) ? TELEMETRY_OK : command__ack_fail(err, errlen, TELEMETRY_OVERSIZE, "out of memory");
out:
    if (rc != TELEMETRY_OK && cmd_id)
        cmd_id[0] = 0;
    cJSON_Delete(j);
    return rc;
}

int command_build_resend(const char *prefix, uint64_t req_id, int64_t boot, int64_t from,
                         int64_t to, sbuf *payload)
{
    const int64_t max = (int64_t)1 << 53;
    if (!prefix || !command__printable(prefix, COMMAND_ID_MAX - 20) || strchr(prefix, '"') ||
        strchr(prefix, '\\') || boot < 0 || boot > max || from < 0 || to < from || to > max)
        return -1;
    sbuf_addf(payload,
              "{\"cmd_id\":\"%s%" PRIu64 "\",\"cmd\":\"resend\",\"boot\":%" PRId64
              ",\"from\":%" PRId64 ",\"to\":%" PRId64 "}",
              prefix, req_id, boot, from, to);
    return sbuf_ok(payload) ? 0 : -1;
}

/* A count field of a resend ack: absent or not a number reads as 0 (as the
 * device omits what it has nothing to say about); -1 outside 0..2^53. */
static int command__count(const cJSON *j, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
    if (!(d >= 0 && d <= 9007199254740992.0))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

command_ack_kind command_parse_resend_ack(const char *payload, size_t len, const char *prefix,
                                          command_resend_ack *out)
{
    cJSON *j = jsonin_parse(payload, len, NULL);
    if (!j)
        return COMMAND_ACK_OTHER;
    command_ack_kind kind = COMMAND_ACK_OTHER;
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(j, "cmd_id");
    size_t nl = strlen(prefix);
    if (cJSON_IsString(cid) && !strncmp(cid->valuestring, prefix, nl)) {
        kind = COMMAND_ACK_INVALID;
        char *end;
        errno = 0;
        unsigned long long rid = strtoull(cid->valuestring + nl, &end, 10);
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        uint64_t sent, missing;
        if (!errno && end != cid->valuestring + nl && !*end && cJSON_IsBool(ok) &&
            command__count(j, "sent", &sent) == 0 && command__count(j, "missing", &missing) == 0) {
            out->req_id = rid;
            out->ok = cJSON_IsTrue(ok);
            /* A device that cannot resend at all, or refuses our range,
             * will never refill it. */
            out->permanent = !out->ok && cJSON_IsString(err) &&
                             (!strcmp(err->valuestring, "unknown command") ||
                              !strcmp(err->valuestring, "invalid range") ||
                              !strcmp(err->valuestring, "not supported"));
            out->sent = sent;
            out->missing = missing;
            kind = COMMAND_ACK_RESEND;
        }
    }
    cJSON_Delete(j);
    return kind;
}
