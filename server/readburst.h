/* readburst — whether the ingest thread's read burst may call
 * mosquitto_loop_read again without asking the kernel first (pure: no I/O,
 * no clock, no threads; ingest.c asks the kernel and feeds the answers).
 *
 * libmosquitto 2.0 reads about one packet per mosquitto_loop_read call, so
 * the ingest thread calls it again while the socket holds more. Asking the
 * kernel (ioctl FIONREAD) after every call was one system call per reading.
 * Instead the burst asks once, then counts down the bytes of the PUBLISH
 * packets libmosquitto hands over (a PUBLISH's size on the wire follows from
 * its topic, QoS, properties and payload: readburst_publish_size), and asks
 * again only when the count is used up or a call brought anything it could
 * not count (no PUBLISH at all: a PINGRESP, a SUBACK, a partial packet; or a
 * PUBLISH with properties).
 *
 * Never wrong, only more or less thrifty: counting too many bytes makes the
 * burst ask sooner; counting too few makes one more call find the socket
 * empty (one read() answering EAGAIN, a call with no PUBLISH), and the burst
 * then asks. The burst ends only when the kernel said it holds nothing, so a
 * readable socket is never left unread until the next poll.
 *
 * Not under TLS: FIONREAD counts encrypted bytes, and OpenSSL keeps records
 * it has read; there (counting = 0) the burst asks after every call, as it
 * always did.
 *
 * Ownership: the caller's struct, no pointers. Thread: the one that owns it
 * (vigil-ingest). */
#ifndef VIGIL_READBURST_H
#define VIGIL_READBURST_H

#include <stddef.h>

typedef struct readburst {
    int counting;        /* plain TCP: PUBLISH sizes are counted down */
    long long left;      /* bytes the kernel held when last asked, minus what was counted since */
    size_t call_bytes;   /* PUBLISH bytes counted in the current call */
    unsigned call_msgs;  /* PUBLISH packets in the current call */
    int call_unknown;    /* the current call brought a PUBLISH of unknown size */
    unsigned publishes;  /* PUBLISH packets since readburst_begin: libmosquitto
                          * reads as many packets per call as it has QoS 1/2
                          * messages in flight (2.0 ignores max_packets), so
                          * calls do not count readings */
} readburst;

/* counting: 1 for plain TCP, 0 under TLS (ask after every call). */
void readburst_init(readburst *b, int counting);

/* A burst starts (the socket polled readable): nothing is known yet, no
 * PUBLISH counted. */
void readburst_begin(readburst *b);

/* libmosquitto handed over a PUBLISH (the message callback) whose size on
 * the wire is wire_bytes; 0 for a size that cannot be told. */
void readburst_publish(readburst *b, size_t wire_bytes);

/* A mosquitto_loop_read call returned success. 1: ask the kernel how many
 * bytes it holds (then readburst_avail, or end the burst on 0); 0: call
 * mosquitto_loop_read again at once, the bytes counted say there is more. */
int readburst_ask(readburst *b);

/* The kernel's answer to the ask (FIONREAD), > 0: the burst reads on. */
void readburst_avail(readburst *b, long long bytes);

/* A PUBLISH's size on the wire: fixed header, topic, packet id for QoS 1
 * and 2, for MQTT 5 (mqtt_version 5; 311 or 31 otherwise) the properties'
 * length and props_len bytes of properties, then the payload. 0 when it
 * exceeds MQTT's largest packet. */
size_t readburst_publish_size(int mqtt_version, size_t topic_len, int qos, size_t props_len,
                              size_t payload_len);

#endif
