/* libFuzzer target for the WebSocket client-message parser
 * (fanout_parse_subscribe, server/fanout.c).
 *
 * Beyond "no crash, no leak, no out-of-bounds read" (ASan), it checks the
 * parser's contract: the result is one the header lists; a refusal carries
 * a message and no ids; an accepted filter is sorted, within
 * FANOUT_FILTER_MAX and made of valid device ids; a second parse gives the
 * same answer (no hidden state). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fanout.h"
#include "telemetry.h"
#include "fuzz_check.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fanout_subscribe a, b;
    fanout_parse_result ra = fanout_parse_subscribe((const char *)data, size, &a);
    CHECK(ra == FANOUT_PARSE_OK || ra == FANOUT_PARSE_BAD || ra == FANOUT_PARSE_BAD_SUBSCRIBE);
    if (ra != FANOUT_PARSE_OK) {
        CHECK(a.err != NULL && a.ids == NULL);
    } else {
        CHECK(a.filtered == (a.ids != NULL));
        CHECK(a.nids <= FANOUT_FILTER_MAX);
        for (size_t i = 0; i < a.nids; i++) {
            CHECK(telemetry_id_valid(a.ids[i], strlen(a.ids[i])));
            CHECK(i == 0 || strcmp(a.ids[i - 1], a.ids[i]) <= 0);
        }
    }
    fanout_parse_result rb = fanout_parse_subscribe((const char *)data, size, &b);
    CHECK(ra == rb && a.nids == b.nids && a.filtered == b.filtered && a.batch == b.batch &&
          a.batch_set == b.batch_set);
    for (size_t i = 0; i < a.nids; i++)
        CHECK(!strcmp(a.ids[i], b.ids[i]));
    fanout_subscribe_free(&a);
    fanout_subscribe_free(&b);
    return 0;
}
