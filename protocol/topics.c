/* topics — see topics.h. */
#include "topics.h"

#include <string.h>

/* Each kind is prefix + id + suffix. */
static const struct {
    const char *prefix, *suffix;
} topics__layout[TOPICS_KIND_COUNT] = {
    [TOPICS_DATA] = {TOPICS_SENSORS_PREFIX, "/data"},
    [TOPICS_STATUS] = {TOPICS_SENSORS_PREFIX, "/status"},
    [TOPICS_ACK] = {TOPICS_SENSORS_PREFIX, "/ack"},
    [TOPICS_CONFIG] = {TOPICS_SENSORS_PREFIX, "/config"},
    [TOPICS_CONTROL] = {TOPICS_COMMANDS_PREFIX, "/control"},
    [TOPICS_ALARMS] = {TOPICS_ALARMS_PREFIX, ""},
};

const char *topics_err_name(topics_err e)
{
    switch (e) {
    case TOPICS_OK: return "ok";
    case TOPICS_EINVAL: return "invalid argument";
    case TOPICS_EBADID: return "invalid device id";
    case TOPICS_ENOSPC: return "topic does not fit the buffer";
    case TOPICS_EBADTOPIC: return "not a Vigil topic";
    }
    return "unknown";
}

topics_err topics_build(topics_kind kind, const char *id, char *buf, size_t cap,
                        size_t *len_out)
{
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
    if (buf == NULL || id == NULL || (unsigned)kind >= TOPICS_KIND_COUNT)
        return TOPICS_EINVAL;
    if (!device_id_valid_str(id))
        return TOPICS_EBADID;
    const char *pre = topics__layout[kind].prefix, *suf = topics__layout[kind].suffix;
    size_t np = strlen(pre), ni = strlen(id), ns = strlen(suf);
    if (np + ni + ns >= cap)
        return TOPICS_ENOSPC;
    memcpy(buf, pre, np);
    memcpy(buf + np, id, ni);
    memcpy(buf + np + ni, suf, ns + 1);
    if (len_out != NULL)
        *len_out = np + ni + ns;
    return TOPICS_OK;
}

/* 1 if s[0..len) starts with the NUL-terminated lit; *n gets its length. */
static int topics__skip(const char *s, size_t len, const char *lit, size_t *n)
{
    *n = strlen(lit);
    return len >= *n && memcmp(s, lit, *n) == 0;
}

topics_err topics_parse(const char *topic, size_t len, char *id_out, topics_kind *kind_out)
{
    if (topic == NULL)
        return TOPICS_EBADTOPIC;
    size_t np;
    if (topics__skip(topic, len, TOPICS_ALARMS_PREFIX, &np)) { /* alarms/esp32/{id}: no suffix */
        if (memchr(topic + np, '/', len - np) != NULL || !device_id_valid(topic + np, len - np))
            return TOPICS_EBADTOPIC;
        if (id_out != NULL) {
            memcpy(id_out, topic + np, len - np);
            id_out[len - np] = '\0';
        }
        if (kind_out != NULL)
            *kind_out = TOPICS_ALARMS;
        return TOPICS_OK;
    }
    int sensors = topics__skip(topic, len, TOPICS_SENSORS_PREFIX, &np);
    if (!sensors && !topics__skip(topic, len, TOPICS_COMMANDS_PREFIX, &np))
        return TOPICS_EBADTOPIC;

    const char *id = topic + np;
    size_t rest = len - np;
    const char *slash = memchr(id, '/', rest);
    if (slash == NULL)
        return TOPICS_EBADTOPIC;
    size_t id_len = (size_t)(slash - id);
    if (!device_id_valid(id, id_len))
        return TOPICS_EBADTOPIC;

    /* The kind is the whole remainder: "/data/x" (an extra level) must not
     * match. The prefix must be the kind's own. */
    const char *suf = slash;
    size_t suf_len = rest - id_len;
    for (int k = 0; k < TOPICS_KIND_COUNT; k++) {
        if (strcmp(topics__layout[k].prefix, sensors ? TOPICS_SENSORS_PREFIX
                                                     : TOPICS_COMMANDS_PREFIX) != 0)
            continue;
        const char *ks = topics__layout[k].suffix;
        if (strlen(ks) != suf_len || memcmp(ks, suf, suf_len) != 0)
            continue;
        if (id_out != NULL) {
            memcpy(id_out, id, id_len);
            id_out[id_len] = '\0';
        }
        if (kind_out != NULL)
            *kind_out = (topics_kind)k;
        return TOPICS_OK;
    }
    return TOPICS_EBADTOPIC;
}
