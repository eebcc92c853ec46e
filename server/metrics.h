/* metrics — vigild's counters and the ingest→broadcast latency histogram,
 * rendered in the Prometheus text format for GET /metrics.
 *
 * One vigil_metrics is owned by main() and shared by pointer with every
 * thread. Every field is atomic (relaxed): any thread may update or read.
 * Gauges owned by other modules (queue depths, store stats) are read by the
 * renderer through metrics_render()'s arguments. */
#ifndef VIGIL_METRICS_H
#define VIGIL_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "sbuf.h"
#include "telemetry.h"

typedef struct store_stats store_stats;

#define METRICS_LAT_BUCKETS 14

/* Access control: login outcomes and refusals, by label. */
typedef enum metrics_login { METRICS_LOGIN_OK, METRICS_LOGIN_FAIL, METRICS_LOGIN_THROTTLED, METRICS_LOGIN_N } metrics_login;
typedef enum metrics_denied {
    METRICS_DENIED_UNAUTH, METRICS_DENIED_FORBIDDEN, METRICS_DENIED_CSRF, METRICS_DENIED_ORIGIN, METRICS_DENIED_N
} metrics_denied;

typedef struct vigil_metrics {
    _Atomic uint64_t received_data, received_status, received_ack, received_other;
    _Atomic uint64_t rejected[TELEMETRY_REASON_COUNT];
    _Atomic uint64_t accepted_data, accepted_status;
    _Atomic uint64_t hub_dropped;       /* live messages lost because the hub queue was full */
    _Atomic uint64_t broadcast;         /* messages fanned out to WebSocket clients */
    _Atomic uint64_t ws_frames;         /* WebSocket frames written */
    _Atomic uint64_t ws_clients;        /* gauge */
    _Atomic uint64_t ws_connections;    /* total accepted */
    _Atomic uint64_t ws_dropped_clients;/* disconnected for falling behind */
    _Atomic uint64_t ws_resyncs;        /* lagging clients resynced (queue dropped, snapshot sent) */
    _Atomic uint64_t ws_resync_dropped; /* messages those resyncs dropped */
    _Atomic uint64_t ws_bad_messages;   /* unparseable client messages */
    _Atomic uint64_t ws_subscribe_limited; /* subscribes ignored: over the per-connection rate */
    _Atomic uint64_t ws_refused;        /* upgrades refused: --max-ws-clients reached (503) */
    _Atomic uint64_t http_conn_refused; /* connections closed: --max-conns-per-ip reached */
    _Atomic uint64_t http_requests;
    _Atomic uint64_t http_busy;         /* history reads refused: query queue full (503) */
    _Atomic uint64_t mqtt_connected;    /* gauge 0/1 */
    _Atomic uint64_t mqtt_connects, mqtt_disconnects;
    _Atomic uint64_t commands_sent, configs_sent, publish_failed;
    _Atomic uint64_t alarm_events;     /* alarm engine events (raised, cleared, ...) */
    _Atomic uint64_t hub_queue_depth;   /* gauge */
    /* completeness (tracker.h): gaps opened, resend commands published,
     * readings that arrived because we asked, readings given up as lost */
    _Atomic uint64_t gaps_detected, resend_requests, readings_refilled, readings_lost;
    /* ingest→broadcast latency, seconds, cumulative buckets filled at render */
    _Atomic uint64_t lat_bucket[METRICS_LAT_BUCKETS + 1]; /* last = +Inf */
    _Atomic uint64_t lat_sum_ns, lat_count;
    _Atomic uint64_t auth_logins[METRICS_LOGIN_N];
    _Atomic uint64_t auth_denied[METRICS_DENIED_N];
    /* several instances (cluster.h): gauges but for takeovers (buckets
     * gained that another instance held before) and fences (session lost
     * while owning buckets) */
    _Atomic uint64_t cluster_enabled, cluster_connected, cluster_members, cluster_owned;
    _Atomic uint64_t cluster_takeovers, cluster_fences;
} vigil_metrics;

void metrics_observe_latency(vigil_metrics *m, uint64_t ns);
void metrics_render(const vigil_metrics *m, const store_stats *st, sbuf *out);

#endif
