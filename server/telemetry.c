/* telemetry — see telemetry.h. The accepted ranges live in
 * protocol/vital_ranges.h and docs/PROTOCOL.md; keep the two in step.
 *
 * Where PROTOCOL.md is silent, this file decides:
 * - Order of checks: caller's topic id (bad_topic), size cap (oversize),
 *   text (jsonin_text_ok: UTF-8, no NUL, no "\u0000" nor a \u that is not
 *   four hex digits, no raw control bytes: malformed_json),
 *   JSON syntax incl. trailing garbage (malformed_json), object (not_object),
 *   then fields in payload order; the first bad field decides the reason.
 *   "empty" is judged last.
 * - Integer fields take any integral JSON number (1000, 1e3, 1000.0); a
 *   fractional one (1.5) is wrong_type. Non-finite numbers (1e999 parses as
 *   inf) are out_of_range, for integers too. Integers beyond 2^53 are judged
 *   after cJSON rounded them to a double.
 * - Range bounds are inclusive. null is accepted only for heart_rate and spo2.
 * - Strings (sensor_type, fw, device_id) must be printable ASCII 0x20..0x7E
 *   (wrong_type otherwise) and within their length (out_of_range); "" is a
 *   valid sensor_type/fw. A payload device_id that is a valid string but not
 *   the topic's id is id_mismatch.
 * - Keys are case-sensitive: "Heart_Rate" is an unknown field.
 * - max_len 0 means TELEMETRY_PAYLOAD_MAX_DEFAULT.
 * - Status: bare words may be surrounded by whitespace; text not starting
 *   with '{' that is not a bare word, a missing "status", or a "status" that
 *   is not the string "online"/"offline" is bad_status; text starting with
 *   '{' that fails to parse is malformed_json; fw/interval_ms/boot/device_id
 *   follow the data rules.
 * Output (JSON, ISO timestamps) is in telemetry_json.c. */
#include "telemetry.h"

#include "jsonin.h"
#include "topics.h"
#include "vital_ranges.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *const reason_names[TELEMETRY_REASON_COUNT] = {
    [TELEMETRY_OK] = "ok",
    [TELEMETRY_BAD_TOPIC] = "bad_topic",
    [TELEMETRY_OVERSIZE] = "oversize",
    [TELEMETRY_MALFORMED_JSON] = "malformed_json",
    [TELEMETRY_NOT_OBJECT] = "not_object",
    [TELEMETRY_WRONG_TYPE] = "wrong_type",
    [TELEMETRY_OUT_OF_RANGE] = "out_of_range",
    [TELEMETRY_ID_MISMATCH] = "id_mismatch",
    [TELEMETRY_DUPLICATE_FIELD] = "duplicate_field",
    [TELEMETRY_EMPTY] = "empty",
    [TELEMETRY_BAD_STATUS] = "bad_status",
    [TELEMETRY_DEVICE_CAP] = "device_cap",
    [TELEMETRY_NEW_DEVICE_RATE] = "new_device_rate",
    [TELEMETRY_UNKNOWN_COMMAND] = "unknown_command",
    [TELEMETRY_BAD_ACK] = "bad_ack",
};

const char *telemetry_reason_name(telemetry_reason r)
{
    if ((unsigned)r >= TELEMETRY_REASON_COUNT)
        return "unknown";
    return reason_names[r];
}

/* ---- topic ------------------------------------------------------------ */

/* The rule and the layout belong to protocol/ (device_id.h, topics.h); these
 * are vigild's names for them. */
int telemetry_id_valid(const char *s, size_t len)
{
    return device_id_valid(s, len);
}

telemetry_reason telemetry_parse_topic(const char *topic, size_t topic_len,
                                       char *id_out, telemetry_kind *kind_out)
{
    char id[DEVICE_ID_MAX + 1];
    topics_kind k;
    if (topics_parse(topic, topic_len, id, &k) != TOPICS_OK)
        return TELEMETRY_BAD_TOPIC;
    telemetry_kind tk;
    switch (k) { /* vigild only receives these three */
    case TOPICS_DATA: tk = TELEMETRY_KIND_DATA; break;
    case TOPICS_STATUS: tk = TELEMETRY_KIND_STATUS; break;
    case TOPICS_ACK: tk = TELEMETRY_KIND_ACK; break;
    default: return TELEMETRY_BAD_TOPIC;
    }
    if (id_out != NULL)
        memcpy(id_out, id, strlen(id) + 1);
    if (kind_out != NULL)
        *kind_out = tk;
    return TELEMETRY_OK;
}

/* ---- shared validation helpers ---------------------------------------- */

typedef struct errbuf {
    char *s;
    size_t n;
} errbuf;

__attribute__((format(printf, 3, 4)))
static telemetry_reason telemetry__fail(errbuf *e, telemetry_reason r, const char *fmt, ...)
{
    if (e->s != NULL && e->n > 0) {
        va_list ap;
        va_start(ap, fmt);
        /* A truncated detail is still useful, so the length is not checked. */
        int w = vsnprintf(e->s, e->n, fmt, ap);
        va_end(ap);
        if (w < 0)
            e->s[0] = '\0';
    }
    return r;
}

/* ---- cJSON's allocations: one bump arena per parse --------------------- */

/* cJSON mallocs every node and every key: 28 malloc/free pairs for a
 * fleet-shaped reading, about a third of a parse. While a parse below runs,
 * this thread's cJSON allocations come from a buffer on that parse's stack,
 * released as a whole when it returns. Everything else — another thread (the
 * web thread's commands and REST bodies), this thread outside a parse, an
 * arena that is full — goes to malloc/free as before: the result is the same
 * tree, only where its bytes live differs. The hooks are process-wide, so they
 * are installed once, before main and before any thread exists. */
#define TELEMETRY__ARENA_BYTES 4096 /* a fleet reading needs ~1.3 KB */

typedef struct telemetry__arena {
    unsigned char *base;
    size_t used, cap;
} telemetry__arena;

static _Thread_local telemetry__arena *telemetry__cur; /* NULL outside a parse */

static void *telemetry__alloc(size_t n)
{
    telemetry__arena *a = telemetry__cur;
    if (a != NULL) {
        size_t need = (n + 15u) & ~(size_t)15u; /* 16: max_align_t on x86-64/arm64 */
        if (need >= n && need <= a->cap - a->used) {
            void *p = a->base + a->used;
            a->used += need;
            return p;
        }
    }
    return malloc(n);
}

static void telemetry__free(void *p)
{
    const telemetry__arena *a = telemetry__cur;
    uintptr_t u = (uintptr_t)p, b = a != NULL ? (uintptr_t)a->base : 0;
    if (a != NULL && u >= b && u - b < a->cap)
        return; /* freed with the arena */
    free(p);
}

__attribute__((constructor)) static void telemetry__hooks_install(void)
{
    cJSON_Hooks h = {.malloc_fn = telemetry__alloc, .free_fn = telemetry__free};
    cJSON_InitHooks(&h);
}

/* Parses payload[0..len) strictly: text_ok, one JSON value, nothing after it
 * but whitespace. cJSON's require_null_terminated check needs the NUL inside
 * buffer_length, and the payload need not carry one, so it is copied. */
static cJSON *telemetry__parse_json(const char *payload, size_t len, errbuf *e,
                                    telemetry_reason *why)
{
    *why = TELEMETRY_MALFORMED_JSON;
    if (len == 0) {
        (void)telemetry__fail(e, TELEMETRY_MALFORMED_JSON, "empty payload");
        return NULL;
    }
    if (!jsonin_text_ok(payload, len)) {
        (void)telemetry__fail(e, TELEMETRY_MALFORMED_JSON,
                              "not UTF-8 JSON text (a NUL, a control byte or a bad \\u escape)");
        return NULL;
    }
    char local[TELEMETRY_PAYLOAD_MAX_DEFAULT + 1];
    char *copy = local;
    if (len >= sizeof local) {
        copy = malloc(len + 1);
        if (copy == NULL) {
            (void)telemetry__fail(e, TELEMETRY_MALFORMED_JSON, "out of memory");
            return NULL;
        }
    }
    memcpy(copy, payload, len);
    copy[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    if (root == NULL) {
        size_t at = (end != NULL && end >= copy && end <= copy + len) ? (size_t)(end - copy) : 0;
        (void)telemetry__fail(e, TELEMETRY_MALFORMED_JSON, "malformed JSON near byte %zu", at);
    }
    if (copy != local)
        free(copy);
    return root;
}

/* Key lookup for the dispatch loop: keys are case-sensitive, as JSON is. */
enum field {
    F_SENSOR_TYPE, F_DEVICE_ID, F_OBJECT_TEMP, F_AMBIENT_TEMP, F_HEART_RATE, F_SPO2,
    F_TIMESTAMP, F_SEQ, F_BOOT, F_TS, F_HR_VALID, F_SPO2_VALID, F_TEMP_VALID,
    F_BATTERY, F_RSSI, F_FW, F_STATUS, F_INTERVAL_MS, F_PREV_BOOT, F_PREV_LAST_SEQ, F_COUNT,
    F_UNKNOWN = F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "sensor_type", "device_id", "object_temp", "ambient_temp", "heart_rate", "spo2",
    "timestamp", "seq", "boot", "ts", "hr_valid", "spo2_valid", "temp_valid",
    "battery", "rssi", "fw", "status", "interval_ms", "prev_boot", "prev_last_seq",
};

static enum field telemetry__field_lookup(const char *key, enum field first, enum field last)
{
    if (key == NULL)
        return F_UNKNOWN;
    for (int f = first; f <= (int)last; f++)
        if (key[0] == field_names[f][0] && strcmp(key, field_names[f]) == 0)
            return (enum field)f;
    return F_UNKNOWN;
}

static telemetry_reason telemetry__get_double(const cJSON *it, const char *name, double lo,
                                              double hi, double *out, errbuf *e)
{
    if (!cJSON_IsNumber(it))
        return telemetry__fail(e, TELEMETRY_WRONG_TYPE, "%s: expected a number", name);
    double v = it->valuedouble;
    if (!isfinite(v))
        return telemetry__fail(e, TELEMETRY_OUT_OF_RANGE, "%s is not finite", name);
    if (v < lo || v > hi)
        return telemetry__fail(e, TELEMETRY_OUT_OF_RANGE, "%s %.10g outside %.10g..%.10g", name, v,
                               lo, hi);
    *out = v;
    return TELEMETRY_OK;
}

/* Integral values only: 1.5 is the wrong type, 1e3 and 1000.0 are 1000. */
static telemetry_reason telemetry__get_int(const cJSON *it, const char *name, int64_t lo,
                                           int64_t hi, int64_t *out, errbuf *e)
{
    if (!cJSON_IsNumber(it))
        return telemetry__fail(e, TELEMETRY_WRONG_TYPE, "%s: expected an integer", name);
    double v = it->valuedouble;
    if (!isfinite(v))
        return telemetry__fail(e, TELEMETRY_OUT_OF_RANGE, "%s is not finite", name);
    if (v != floor(v))
        return telemetry__fail(e, TELEMETRY_WRONG_TYPE, "%s %.10g is not an integer", name, v);
    /* The bounds are within 2^53, so the comparisons are exact and the
     * conversion below cannot overflow. */
    if (v < (double)lo || v > (double)hi)
        return telemetry__fail(e, TELEMETRY_OUT_OF_RANGE, "%s %.17g outside %" PRId64 "..%" PRId64,
                               name, v, lo, hi);
    *out = (int64_t)v;
    return TELEMETRY_OK;
}

static telemetry_reason telemetry__get_bool(const cJSON *it, const char *name, uint8_t *out,
                                            errbuf *e)
{
    if (!cJSON_IsBool(it))
        return telemetry__fail(e, TELEMETRY_WRONG_TYPE, "%s: expected true or false", name);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return TELEMETRY_OK;
}

/* Printable ASCII only: these strings are shown as is on the dashboard and
 * written into JSON by hand. */
static telemetry_reason telemetry__get_string(const cJSON *it, const char *name, size_t max,
                                   char *out, errbuf *e)
{
    if (!cJSON_IsString(it) || it->valuestring == NULL)
        return telemetry__fail(e, TELEMETRY_WRONG_TYPE, "%s: expected a string", name);
    const char *s = it->valuestring;
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7E)
            return telemetry__fail(e, TELEMETRY_WRONG_TYPE, "%s: not printable ASCII", name);
    if (n > max)
        return telemetry__fail(e, TELEMETRY_OUT_OF_RANGE, "%s: %zu chars, at most %zu", name, n,
                               max);
    if (out != NULL)
        memcpy(out, s, n + 1);
    return TELEMETRY_OK;
}

static telemetry_reason telemetry__check_device_id(const cJSON *it, const char *topic_id, errbuf *e)
{
    char id[TELEMETRY_ID_MAX + 1];
    telemetry_reason r = telemetry__get_string(it, "device_id", TELEMETRY_ID_MAX, id, e);
    if (r != TELEMETRY_OK)
        return r;
    if (strcmp(id, topic_id) != 0)
        return telemetry__fail(e, TELEMETRY_ID_MISMATCH,
                               "device_id \"%s\" differs from topic id \"%s\"", id, topic_id);
    return TELEMETRY_OK;
}

static size_t telemetry__payload_cap(size_t max_len)
{
    /* 0 means "not configured": the protocol default applies. */
    return max_len == 0 ? TELEMETRY_PAYLOAD_MAX_DEFAULT : max_len;
}

/* ---- data -------------------------------------------------------------- */

static telemetry_reason telemetry__data_field(enum field f, const cJSON *it, const char *topic_id,
                                   telemetry_reading *r, errbuf *e)
{
    const char *name = field_names[f];
    telemetry_reason rc = TELEMETRY_OK;
    switch (f) {
    case F_SENSOR_TYPE:
        rc = telemetry__get_string(it, name, TELEMETRY_SENSOR_TYPE_MAX, r->sensor_type, e);
        r->present |= TELEMETRY_HAS_SENSOR_TYPE;
        break;
    case F_DEVICE_ID:
        rc = telemetry__check_device_id(it, topic_id, e);
        break;
    case F_OBJECT_TEMP:
        rc = telemetry__get_double(it, name, VITAL_OBJECT_TEMP_MIN, VITAL_OBJECT_TEMP_MAX,
                                   &r->object_temp, e);
        r->present |= TELEMETRY_HAS_OBJECT_TEMP;
        break;
    case F_AMBIENT_TEMP:
        rc = telemetry__get_double(it, name, VITAL_AMBIENT_TEMP_MIN, VITAL_AMBIENT_TEMP_MAX,
                                   &r->ambient_temp, e);
        r->present |= TELEMETRY_HAS_AMBIENT_TEMP;
        break;
    case F_HEART_RATE:
        if (cJSON_IsNull(it)) /* null = the device has no valid value */
            break;
        rc = telemetry__get_double(it, name, VITAL_HEART_RATE_MIN, VITAL_HEART_RATE_MAX,
                                   &r->heart_rate, e);
        r->present |= TELEMETRY_HAS_HEART_RATE;
        break;
    case F_SPO2:
        if (cJSON_IsNull(it))
            break;
        rc = telemetry__get_double(it, name, VITAL_SPO2_MIN, VITAL_SPO2_MAX, &r->spo2, e);
        r->present |= TELEMETRY_HAS_SPO2;
        break;
    case F_TIMESTAMP:
        rc = telemetry__get_int(it, name, VITAL_COUNTER_MIN, VITAL_COUNTER_MAX, &r->uptime_ms, e);
        r->present |= TELEMETRY_HAS_UPTIME;
        break;
    case F_SEQ:
        rc = telemetry__get_int(it, name, VITAL_COUNTER_MIN, VITAL_COUNTER_MAX, &r->seq, e);
        r->present |= TELEMETRY_HAS_SEQ;
        break;
    case F_BOOT:
        rc = telemetry__get_int(it, name, VITAL_COUNTER_MIN, VITAL_COUNTER_MAX, &r->boot, e);
        r->present |= TELEMETRY_HAS_BOOT;
        break;
    case F_TS:
        rc = telemetry__get_int(it, name, VITAL_TS_MIN_MS, VITAL_TS_MAX_MS, &r->ts_ms, e);
        r->present |= TELEMETRY_HAS_TS;
        break;
    case F_HR_VALID:
        rc = telemetry__get_bool(it, name, &r->hr_valid, e);
        r->present |= TELEMETRY_HAS_HR_VALID;
        break;
    case F_SPO2_VALID:
        rc = telemetry__get_bool(it, name, &r->spo2_valid, e);
        r->present |= TELEMETRY_HAS_SPO2_VALID;
        break;
    case F_TEMP_VALID:
        rc = telemetry__get_bool(it, name, &r->temp_valid, e);
        r->present |= TELEMETRY_HAS_TEMP_VALID;
        break;
    case F_BATTERY:
        rc = telemetry__get_double(it, name, VITAL_BATTERY_MIN, VITAL_BATTERY_MAX, &r->battery, e);
        r->present |= TELEMETRY_HAS_BATTERY;
        break;
    case F_RSSI: {
        int64_t v = 0;
        rc = telemetry__get_int(it, name, VITAL_RSSI_MIN, VITAL_RSSI_MAX, &v, e);
        r->rssi = (int32_t)v;
        r->present |= TELEMETRY_HAS_RSSI;
        break;
    }
    case F_FW:
        rc = telemetry__get_string(it, name, TELEMETRY_FW_MAX, r->fw, e);
        r->present |= TELEMETRY_HAS_FW;
        break;
    default:
        break;
    }
    return rc;
}

/* The checks every message gets before its payload is looked at: the
 * caller's topic id, the size cap, a payload pointer. Clears detail. */
static telemetry_reason telemetry__check_envelope(const char *topic_id, const char *payload,
                                                  size_t len, size_t max_len,
                                                  telemetry_reason no_payload, errbuf *e)
{
    if (e->s != NULL && e->n > 0)
        e->s[0] = '\0';
    if (!device_id_valid_str(topic_id)) /* bounded: may be unterminated garbage */
        return telemetry__fail(e, TELEMETRY_BAD_TOPIC, "invalid device id");
    size_t cap = telemetry__payload_cap(max_len);
    if (len > cap)
        return telemetry__fail(e, TELEMETRY_OVERSIZE, "payload %zu bytes, at most %zu", len, cap);
    if (payload == NULL && len > 0)
        return telemetry__fail(e, no_payload, "no payload");
    return TELEMETRY_OK;
}

static telemetry_reason telemetry__parse_data(const char *topic_id, const char *payload,
                                              size_t len, size_t max_len,
                                              telemetry_reading *out,
                                              char *detail, size_t detail_len)
{
    errbuf e = {detail, detail_len};
    telemetry_reason env =
        telemetry__check_envelope(topic_id, payload, len, max_len, TELEMETRY_MALFORMED_JSON, &e);
    if (env != TELEMETRY_OK)
        return env;

    telemetry_reason rc;
    cJSON *root = telemetry__parse_json(payload, len, &e, &rc);
    if (root == NULL)
        return rc;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return telemetry__fail(&e, TELEMETRY_NOT_OBJECT, "payload is not a JSON object");
    }

    /* Filled locally so *out is never left half-written on rejection. */
    telemetry_reading r;
    memset(&r, 0, sizeof r);
    memcpy(r.device_id, topic_id, strlen(topic_id) + 1);
    uint32_t seen = 0;
    rc = TELEMETRY_OK;
    /* One pass over the children: cJSON keeps duplicate keys, and only this
     * loop sees all of them. */
    for (const cJSON *it = root->child; it != NULL && rc == TELEMETRY_OK; it = it->next) {
        enum field f = telemetry__field_lookup(it->string, F_SENSOR_TYPE, F_FW);
        if (f == F_UNKNOWN)
            continue; /* ignored, never stored nor forwarded */
        if (seen & (1u << f)) {
            rc = telemetry__fail(&e, TELEMETRY_DUPLICATE_FIELD, "%s given twice", field_names[f]);
            break;
        }
        seen |= 1u << f;
        rc = telemetry__data_field(f, it, topic_id, &r, &e);
    }
    cJSON_Delete(root);
    if (rc != TELEMETRY_OK)
        return rc;

    /* A null heart_rate/spo2 is no vital: it sets no HAS bit. */
    const uint32_t recordable = TELEMETRY_HAS_OBJECT_TEMP | TELEMETRY_HAS_AMBIENT_TEMP |
                                TELEMETRY_HAS_HEART_RATE | TELEMETRY_HAS_SPO2 | TELEMETRY_HAS_SEQ;
    if ((r.present & recordable) == 0)
        return telemetry__fail(&e, TELEMETRY_EMPTY, "no vital and no seq");
    if (out != NULL)
        *out = r;
    return TELEMETRY_OK;
}

/* Runs parse on this thread with a fresh arena in place (see telemetry__alloc);
 * the previous one, if any, is put back. */
#define TELEMETRY__WITH_ARENA(call)                                                          \
    do {                                                                                     \
        _Alignas(16) unsigned char buf_[TELEMETRY__ARENA_BYTES];                             \
        telemetry__arena a_ = {buf_, 0, sizeof buf_}, *prev_ = telemetry__cur;               \
        telemetry__cur = &a_;                                                                \
        rc_ = (call);                                                                        \
        telemetry__cur = prev_;                                                              \
    } while (0)

telemetry_reason telemetry_parse_data(const char *topic_id, const char *payload,
                                      size_t len, size_t max_len,
                                      telemetry_reading *out,
                                      char *detail, size_t detail_len)
{
    telemetry_reason rc_;
    TELEMETRY__WITH_ARENA(
        telemetry__parse_data(topic_id, payload, len, max_len, out, detail, detail_len));
    return rc_;
}

/* ---- status ------------------------------------------------------------ */

static int telemetry__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static telemetry_reason telemetry__parse_status(const char *topic_id, const char *payload,
                                                size_t len, size_t max_len,
                                                telemetry_status *out,
                                                char *detail, size_t detail_len)
{
    errbuf e = {detail, detail_len};
    telemetry_reason env =
        telemetry__check_envelope(topic_id, payload, len, max_len, TELEMETRY_BAD_STATUS, &e);
    if (env != TELEMETRY_OK)
        return env;
    if (payload == NULL)
        payload = ""; /* len is 0; avoids arithmetic on a null pointer */

    telemetry_status s;
    memset(&s, 0, sizeof s);
    memcpy(s.device_id, topic_id, strlen(topic_id) + 1);

    /* Old devices (and hand-typed mosquitto_pub) send bare words; surrounding
     * whitespace is tolerated. */
    size_t b = 0, n = len;
    while (b < n && telemetry__is_space(payload[b]))
        b++;
    while (n > b && telemetry__is_space(payload[n - 1]))
        n--;
    const char *w = payload + b;
    size_t wl = n - b;
    if ((wl == 6 && memcmp(w, "online", 6) == 0) || (wl == 7 && memcmp(w, "offline", 7) == 0)) {
        s.online = wl == 6;
        if (out != NULL)
            *out = s;
        return TELEMETRY_OK;
    }
    /* Only text that looks like an object is judged as JSON; anything else
     * is neither known form. */
    if (wl == 0 || w[0] != '{')
        return telemetry__fail(&e, TELEMETRY_BAD_STATUS,
                               "neither a JSON object nor online/offline");

    telemetry_reason rc;
    cJSON *root = telemetry__parse_json(payload, len, &e, &rc);
    if (root == NULL)
        return rc;
    if (!cJSON_IsObject(root)) { /* unreachable after the '{' check; kept for safety */
        cJSON_Delete(root);
        return telemetry__fail(&e, TELEMETRY_BAD_STATUS, "not a JSON object");
    }

    uint32_t seen = 0;
    int have_status = 0;
    rc = TELEMETRY_OK;
    for (const cJSON *it = root->child; it != NULL && rc == TELEMETRY_OK; it = it->next) {
        enum field f = telemetry__field_lookup(it->string, F_DEVICE_ID, F_PREV_LAST_SEQ);
        if (f != F_DEVICE_ID && f != F_BOOT && f != F_FW && f != F_STATUS && f != F_INTERVAL_MS &&
            f != F_PREV_BOOT && f != F_PREV_LAST_SEQ)
            continue;
        if (seen & (1u << f)) {
            rc = telemetry__fail(&e, TELEMETRY_DUPLICATE_FIELD, "%s given twice", field_names[f]);
            break;
        }
        seen |= 1u << f;
        switch (f) {
        case F_STATUS:
            if (cJSON_IsString(it) && it->valuestring != NULL &&
                strcmp(it->valuestring, "online") == 0) {
                s.online = 1;
                have_status = 1;
            } else if (cJSON_IsString(it) && it->valuestring != NULL &&
                       strcmp(it->valuestring, "offline") == 0) {
                s.online = 0;
                have_status = 1;
            } else {
                rc = telemetry__fail(&e, TELEMETRY_BAD_STATUS,
                                     "status must be \"online\" or \"offline\"");
            }
            break;
        case F_DEVICE_ID:
            rc = telemetry__check_device_id(it, topic_id, &e);
            break;
        case F_FW:
            rc = telemetry__get_string(it, "fw", TELEMETRY_FW_MAX, s.fw, &e);
            s.present |= TELEMETRY_STATUS_HAS_FW;
            break;
        case F_INTERVAL_MS:
            rc = telemetry__get_int(it, "interval_ms", VITAL_INTERVAL_MS_MIN, VITAL_INTERVAL_MS_MAX,
                                    &s.interval_ms, &e);
            s.present |= TELEMETRY_STATUS_HAS_INTERVAL;
            break;
        case F_BOOT:
            rc = telemetry__get_int(it, "boot", VITAL_COUNTER_MIN, VITAL_COUNTER_MAX, &s.boot, &e);
            s.present |= TELEMETRY_STATUS_HAS_BOOT;
            break;
        case F_PREV_BOOT: /* validated like boot and seq */
            rc = telemetry__get_int(it, "prev_boot", VITAL_COUNTER_MIN, VITAL_COUNTER_MAX,
                                    &s.prev_boot, &e);
            break;
        case F_PREV_LAST_SEQ:
            rc = telemetry__get_int(it, "prev_last_seq", VITAL_COUNTER_MIN, VITAL_COUNTER_MAX,
                                    &s.prev_last_seq, &e);
            break;
        default:
            break;
        }
    }
    cJSON_Delete(root);
    if (rc != TELEMETRY_OK)
        return rc;
    if (!have_status)
        return telemetry__fail(&e, TELEMETRY_BAD_STATUS, "no \"status\" field");
    /* The pair only means something together, and only about an earlier
     * boot: a half or a forward reference is refused rather than guessed. */
    int prev = ((seen >> F_PREV_BOOT) & 1u) + ((seen >> F_PREV_LAST_SEQ) & 1u);
    if (prev == 1)
        return telemetry__fail(&e, TELEMETRY_BAD_STATUS,
                               "prev_boot and prev_last_seq come together");
    if (prev == 2) {
        if ((s.present & TELEMETRY_STATUS_HAS_BOOT) && s.prev_boot >= s.boot)
            return telemetry__fail(&e, TELEMETRY_BAD_STATUS, "prev_boot %lld not below boot %lld",
                                   (long long)s.prev_boot, (long long)s.boot);
        s.present |= TELEMETRY_STATUS_HAS_PREV;
    }
    if (out != NULL)
        *out = s;
    return TELEMETRY_OK;
}

telemetry_reason telemetry_parse_status(const char *topic_id, const char *payload,
                                        size_t len, size_t max_len,
                                        telemetry_status *out,
                                        char *detail, size_t detail_len)
{
    telemetry_reason rc_;
    TELEMETRY__WITH_ARENA(
        telemetry__parse_status(topic_id, payload, len, max_len, out, detail, detail_len));
    return rc_;
}
