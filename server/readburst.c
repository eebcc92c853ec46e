/* readburst — see readburst.h. */
#include "readburst.h"

#define READBURST_MAX_REMAINING 268435455u /* MQTT's 4-byte variable integer */

void readburst_init(readburst *b, int counting)
{
    *b = (readburst){.counting = counting != 0};
}

static void readburst__call_reset(readburst *b)
{
    b->call_bytes = 0;
    b->call_msgs = 0;
    b->call_unknown = 0;
}

void readburst_begin(readburst *b)
{
    b->left = 0;
    b->publishes = 0;
    readburst__call_reset(b);
}

void readburst_publish(readburst *b, size_t wire_bytes)
{
    b->call_msgs++;
    b->publishes++;
    if (wire_bytes == 0)
        b->call_unknown = 1;
    b->call_bytes += wire_bytes;
}

int readburst_ask(readburst *b)
{
    /* A call that brought no PUBLISH (another packet, part of one, or
     * nothing) or one of unknown size leaves the count unknown: ask. */
    int ask = !b->counting || b->call_msgs == 0 || b->call_unknown;
    if (!ask) {
        b->left -= (long long)b->call_bytes;
        ask = b->left <= 0;
    }
    readburst__call_reset(b);
    if (ask)
        b->left = 0;
    return ask;
}

void readburst_avail(readburst *b, long long bytes)
{
    b->left = bytes > 0 ? bytes : 0;
}

static size_t readburst__varint_len(size_t v)
{
    return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

size_t readburst_publish_size(int mqtt_version, size_t topic_len, int qos, size_t props_len,
                              size_t payload_len)
{
    size_t rem = 2 + topic_len + (qos > 0 ? 2 : 0) + payload_len;
    if (mqtt_version == 5)
        rem += readburst__varint_len(props_len) + props_len;
    if (rem > READBURST_MAX_REMAINING)
        return 0;
    return 1 + readburst__varint_len(rem) + rem;
}
