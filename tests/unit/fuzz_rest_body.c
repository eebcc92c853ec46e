/* libFuzzer target for REST bodies (server/command.c): command_build and
 * command_build_config on the same bytes.
 *
 * Invariants: an accepted body gives a JSON object whose cmd_id / cfg_id is
 * exactly the id we passed, whose cmd is one of the five, whose numbers are
 * within the documented bounds, and which carries no field the body was not
 * allowed to set; a refused one sets a message. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "command.h"
#include "fuzz_check.h"


static void check_int(const cJSON *o, const char *k, double lo, double hi)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return;
    CHECK(cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi &&
          v->valuedouble == floor(v->valuedouble));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char err[160] = "";
    sbuf p;
    sbuf_init(&p, 0);
    if (command_build(in, size, "c-1-\"q\"", &p, err, sizeof err) == 0) {
        cJSON *o = cJSON_ParseWithLength(sbuf_data(&p), p.len);
        CHECK(cJSON_IsObject(o));
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "cmd_id");
        CHECK(cJSON_IsString(id) && !strcmp(id->valuestring, "c-1-\"q\""));
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "cmd");
        CHECK(cJSON_IsString(c));
        const char *s = c->valuestring;
        CHECK(!strcmp(s, "ping") || !strcmp(s, "identify") || !strcmp(s, "reboot") ||
              !strcmp(s, "set_interval") || !strcmp(s, "resend"));
        check_int(o, "interval_ms", COMMAND_INTERVAL_MIN, COMMAND_INTERVAL_MAX);
        check_int(o, "boot", 0, 9007199254740992.0);
        check_int(o, "from", 0, 9007199254740992.0);
        check_int(o, "to", 0, 9007199254740992.0);
        const cJSON *it;
        cJSON_ArrayForEach(it, o)
        {
            const char *k = it->string;
            CHECK(!strcmp(k, "cmd_id") || !strcmp(k, "cmd") || !strcmp(k, "interval_ms") ||
                  !strcmp(k, "boot") || !strcmp(k, "from") || !strcmp(k, "to"));
        }
        cJSON_Delete(o);
    } else
        CHECK(err[0] != 0);
    sbuf_free(&p);

    err[0] = 0;
    sbuf_init(&p, 0);
    if (command_build_config(in, size, "cfg-7", &p, err, sizeof err) == 0) {
        cJSON *o = cJSON_ParseWithLength(sbuf_data(&p), p.len);
        CHECK(cJSON_IsObject(o) && cJSON_GetArraySize(o) == 2);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "cfg_id");
        CHECK(cJSON_IsString(id) && !strcmp(id->valuestring, "cfg-7"));
        CHECK(cJSON_GetObjectItemCaseSensitive(o, "interval_ms"));
        check_int(o, "interval_ms", COMMAND_INTERVAL_MIN, COMMAND_INTERVAL_MAX);
        cJSON_Delete(o);
    } else
        CHECK(err[0] != 0);
    sbuf_free(&p);
    return 0;
}
