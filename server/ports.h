/* ports — the narrow interfaces main wires between vigild's modules, so that
 * no module holds a peer's handle (docs/ARCHITECTURE.md, "Wiring"). Each is
 * a struct of function pointers plus a ctx, like device/platform.h: the
 * module that offers it fills one in, main hands it to the module that uses
 * it, and a unit test can hand in a fake.
 *
 * Ownership: ports are plain values copied by the user; ctx is borrowed and
 * must outlive every call. Which thread may call each function is said at
 * the function. */
#ifndef VIGIL_PORTS_H
#define VIGIL_PORTS_H

#include <stddef.h>

typedef struct sbuf sbuf;

/* Publishing to the broker (offered by ingest, used by web for commands and
 * config). Any thread; never blocks: publish queues and returns. */
typedef enum publish_err {
    PUBLISH_OK = 0,
    PUBLISH_ENOTCONN = -1, /* not connected to the broker: nothing was queued */
    PUBLISH_EFULL = -2,    /* publish queue full: retry later */
    PUBLISH_EINVAL = -3,   /* topic or payload too long */
    PUBLISH_ENOMEM = -4,
} publish_err;

typedef struct vigil_publisher {
    publish_err (*publish)(void *ctx, const char *topic, const char *payload, size_t len, int qos,
                           int retain);
    int (*connected)(void *ctx); /* 1 while the broker session is up */
    void *ctx;
} vigil_publisher;

/* Extra facts about a device shown in its DEVICE object (offered by the
 * completeness tracker, used by the live model): appends one JSON value —
 * "null" when there is nothing to say — to out. Called on the web thread. */
typedef struct vigil_annotator {
    void (*annotate)(void *ctx, const char *device_id, sbuf *out);
    void *ctx;
} vigil_annotator;

/* Operator actions on alarms (offered by ingest, whose thread owns the
 * alarm engine; used by web). Any thread; never blocks: submit copies the
 * op into a bounded queue (ALARM_OPS_CAP in ingest.c) and returns 0, or -1
 * when it is full (the REST call answers 503). */
typedef enum vigil_alarm_op_kind { VIGIL_ALARM_ACK = 1, VIGIL_ALARM_SILENCE, VIGIL_ALARM_SETTINGS } vigil_alarm_op_kind;
struct alarm_settings;
typedef struct vigil_alarm_op {
    vigil_alarm_op_kind kind;
    unsigned long long alarm_id;
    long long seconds; /* silence: 1..600 */
    char user[65];     /* the authenticated user */
    char device_id[65];                /* settings: whose */
    struct alarm_settings *settings;   /* settings: malloc'ed; the ingest's once submitted */
} vigil_alarm_op;
typedef struct vigil_alarm_port {
    int (*submit)(void *ctx, const vigil_alarm_op *op);
    void *ctx;
} vigil_alarm_port;

#endif
