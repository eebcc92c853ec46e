/* libFuzzer target for device acks (server/command.c): command_parse_ack
 * and the resend ack parser, on the same bytes.
 *
 * Invariants: the reason is a known one; an accepted ack gives a JSON
 * object carrying device_id, received_at and a boolean ok, and the cmd_id
 * handed back is the object's own (printable, at most COMMAND_ID_MAX); a
 * rejected one hands back no cmd_id. A resend ack of ours has counts in
 * 0..2^53 and is permanent only when not ok; the kind is one of three. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "telemetry.h"
#include "fuzz_check.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    sbuf d;
    sbuf_init(&d, 0);
    char err[160] = "";
    char cid[COMMAND_ID_MAX + 1];
    memset(cid, 'x', sizeof cid);
    int r = command_parse_ack("DEV_1", in, size, 4096, 1700000000000, &d, cid, err, sizeof err);
    CHECK(r >= 0 && r < TELEMETRY_REASON_COUNT);
    CHECK(memchr(cid, 0, sizeof cid) != NULL);
    if (r == TELEMETRY_OK) {
        cJSON *o = cJSON_ParseWithLength(sbuf_data(&d), d.len);
        CHECK(cJSON_IsObject(o));
        const cJSON *dev = cJSON_GetObjectItemCaseSensitive(o, "device_id");
        CHECK(cJSON_IsString(dev) && !strcmp(dev->valuestring, "DEV_1"));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "received_at")));
        CHECK(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(o, "ok")));
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "cmd_id");
        if (cid[0]) {
            CHECK(cJSON_IsString(c) && !strcmp(c->valuestring, cid));
            for (const char *p = cid; *p; p++)
                CHECK(*p >= 0x20 && *p <= 0x7e);
        } else
            CHECK(c == NULL && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "cfg_id")));
        cJSON_Delete(o);
    } else {
        CHECK(cid[0] == 0);
        CHECK(err[0] != 0);
    }
    sbuf_free(&d);

    command_resend_ack ra;
    command_ack_kind k = command_parse_resend_ack(in, size, "rs-abc-", &ra);
    CHECK(k == COMMAND_ACK_RESEND || k == COMMAND_ACK_OTHER || k == COMMAND_ACK_INVALID);
    if (k == COMMAND_ACK_RESEND) {
        CHECK(ra.sent <= ((uint64_t)1 << 53) && ra.missing <= ((uint64_t)1 << 53));
        CHECK(!(ra.ok && ra.permanent));
    }
    return 0;
}
