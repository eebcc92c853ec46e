#include "metrics.h"
#include "store.h"

#include <inttypes.h>

/* Upper bounds of the latency buckets, in microseconds: 50 µs .. 5 s. */
static const uint64_t lat_bounds_us[METRICS_LAT_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};

void metrics_observe_latency(vigil_metrics *m, uint64_t ns)
{
    uint64_t us = ns / 1000;
    int i = 0;
    while (i < METRICS_LAT_BUCKETS && us > lat_bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&m->lat_bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_count, 1, memory_order_relaxed);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void metrics__counter(sbuf *o, const char *name, const char *help, uint64_t v)
{
    sbuf_addf(o, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

static void metrics__gauge(sbuf *o, const char *name, const char *help, uint64_t v)
{
    sbuf_addf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n", name, help, name, name, v);
}

void metrics_render(const vigil_metrics *cm, const store_stats *st, sbuf *o)
{
    vigil_metrics *m = (vigil_metrics *)cm; /* atomics are read-only here */
    sbuf_adds(o, "# HELP vigil_received_total MQTT messages received, by topic kind.\n"
                 "# TYPE vigil_received_total counter\n");
    sbuf_addf(o, "vigil_received_total{kind=\"data\"} %" PRIu64 "\n", LOAD(m->received_data));
    sbuf_addf(o, "vigil_received_total{kind=\"status\"} %" PRIu64 "\n", LOAD(m->received_status));
    sbuf_addf(o, "vigil_received_total{kind=\"ack\"} %" PRIu64 "\n", LOAD(m->received_ack));
    sbuf_addf(o, "vigil_received_total{kind=\"other\"} %" PRIu64 "\n", LOAD(m->received_other));

    sbuf_adds(o, "# HELP vigil_rejected_total Messages rejected by validation, by reason.\n"
                 "# TYPE vigil_rejected_total counter\n");
    for (int r = 1; r < TELEMETRY_REASON_COUNT; r++)
        sbuf_addf(o, "vigil_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                  telemetry_reason_name((telemetry_reason)r), LOAD(m->rejected[r]));

    metrics__counter(o, "vigil_readings_accepted_total", "Readings that passed validation.", LOAD(m->accepted_data));
    metrics__counter(o, "vigil_statuses_accepted_total", "Status messages that passed validation.", LOAD(m->accepted_status));
    metrics__counter(o, "vigil_stored_total", "Readings inserted into the store.", st->stored);
    metrics__counter(o, "vigil_store_duplicates_total", "Readings ignored as already stored (device, boot, seq).", st->duplicates);
    metrics__counter(o, "vigil_store_dropped_total", "Records refused because the store queue was full.", st->dropped_full);
    metrics__counter(o, "vigil_store_write_errors_total", "Failed store transactions (retried).", st->write_errors);
    metrics__counter(o, "vigil_store_pruned_total", "Readings removed by retention.", st->pruned);
    metrics__gauge(o, "vigil_store_queue_depth", "Records waiting for the store writer.", st->queue_depth);
    metrics__gauge(o, "vigil_store_queue_capacity", "Capacity of the store queue.", st->queue_capacity);
    metrics__gauge(o, "vigil_store_writable", "1 if the last store transaction succeeded.", (uint64_t)st->writable);
    metrics__counter(o, "vigil_broadcast_total", "Messages fanned out to WebSocket clients.", LOAD(m->broadcast));
    metrics__counter(o, "vigil_ws_frames_total", "WebSocket frames written.", LOAD(m->ws_frames));
    metrics__gauge(o, "vigil_ws_clients", "Connected WebSocket clients.", LOAD(m->ws_clients));
    metrics__counter(o, "vigil_ws_connections_total", "WebSocket connections accepted.", LOAD(m->ws_connections));
    metrics__counter(o, "vigil_ws_dropped_clients_total", "WebSocket clients disconnected for falling behind.", LOAD(m->ws_dropped_clients));
    metrics__counter(o, "vigil_ws_resyncs_total", "Lagging WebSocket clients resynced: queue dropped, resync and snapshot sent.", LOAD(m->ws_resyncs));
    metrics__counter(o, "vigil_ws_resync_dropped_total", "Queued WebSocket messages dropped by resyncs.", LOAD(m->ws_resync_dropped));
    metrics__counter(o, "vigil_ws_bad_messages_total", "Unparseable messages from WebSocket clients.", LOAD(m->ws_bad_messages));
    metrics__counter(o, "vigil_ws_subscribe_limited_total", "WebSocket subscribes ignored: over the per-connection rate.", LOAD(m->ws_subscribe_limited));
    metrics__counter(o, "vigil_ws_refused_total", "WebSocket upgrades refused with 503: --max-ws-clients reached.", LOAD(m->ws_refused));
    metrics__counter(o, "vigil_http_conn_refused_total", "Connections closed at once: --max-conns-per-ip reached.", LOAD(m->http_conn_refused));
    metrics__counter(o, "vigil_hub_dropped_total", "Live messages dropped because the broadcast queue was full.", LOAD(m->hub_dropped));
    metrics__gauge(o, "vigil_hub_queue_depth", "Messages waiting for the broadcast thread.", LOAD(m->hub_queue_depth));
    metrics__counter(o, "vigil_http_requests_total", "HTTP requests served.", LOAD(m->http_requests));
    metrics__counter(o, "vigil_http_busy_total", "History reads refused with 503 because the query queue was full.",
            LOAD(m->http_busy));
    metrics__gauge(o, "vigil_mqtt_connected", "1 while connected to the broker.", LOAD(m->mqtt_connected));
    metrics__counter(o, "vigil_mqtt_connects_total", "Successful broker connections.", LOAD(m->mqtt_connects));
    metrics__counter(o, "vigil_mqtt_disconnects_total", "Broker connections lost.", LOAD(m->mqtt_disconnects));
    metrics__counter(o, "vigil_commands_sent_total", "Commands published to devices.", LOAD(m->commands_sent));
    metrics__counter(o, "vigil_alarm_events_total", "Alarm events (raised, escalated, acknowledged, audio paused, cleared, updated).", LOAD(m->alarm_events));
    metrics__counter(o, "vigil_configs_sent_total", "Configurations published to devices.", LOAD(m->configs_sent));
    metrics__counter(o, "vigil_publish_failed_total", "Publishes to the broker that failed.", LOAD(m->publish_failed));
    metrics__counter(o, "vigil_gaps_detected_total", "Gaps opened in a device's (boot, seq) record.", LOAD(m->gaps_detected));
    metrics__counter(o, "vigil_resend_requests_total", "Resend commands published to devices.", LOAD(m->resend_requests));
    if (LOAD(m->cluster_enabled)) {
        metrics__gauge(o, "vigil_cluster_connected", "1 while the cluster's database session is up.", LOAD(m->cluster_connected));
        metrics__gauge(o, "vigil_cluster_members", "vigild instances holding the membership lock.", LOAD(m->cluster_members));
        metrics__gauge(o, "vigil_cluster_owned_buckets", "Device buckets this instance owns (of 64).", LOAD(m->cluster_owned));
        metrics__counter(o, "vigil_cluster_takeovers_total", "Buckets gained that another instance held before.", LOAD(m->cluster_takeovers));
        metrics__counter(o, "vigil_cluster_fences_total", "Times the database session was lost while owning buckets (they are kept through the outage).", LOAD(m->cluster_fences));
    }
    metrics__counter(o, "vigil_readings_refilled_total", "Readings stored after a resend request for them.", LOAD(m->readings_refilled));
    metrics__counter(o, "vigil_readings_lost_total", "Readings given up as lost (device no longer has them).", LOAD(m->readings_lost));

    static const char *const logins[METRICS_LOGIN_N] = {"ok", "fail", "throttled"};
    static const char *const denied[METRICS_DENIED_N] = {"unauthenticated", "forbidden", "csrf", "origin"};
    sbuf_adds(o, "# HELP vigil_auth_logins_total Login attempts, by outcome.\n"
                 "# TYPE vigil_auth_logins_total counter\n");
    for (int i = 0; i < METRICS_LOGIN_N; i++)
        sbuf_addf(o, "vigil_auth_logins_total{outcome=\"%s\"} %" PRIu64 "\n", logins[i], LOAD(m->auth_logins[i]));
    sbuf_adds(o, "# HELP vigil_auth_denied_total Requests refused by access control, by reason.\n"
                 "# TYPE vigil_auth_denied_total counter\n");
    for (int i = 0; i < METRICS_DENIED_N; i++)
        sbuf_addf(o, "vigil_auth_denied_total{reason=\"%s\"} %" PRIu64 "\n", denied[i], LOAD(m->auth_denied[i]));

    sbuf_adds(o, "# HELP vigil_ingest_to_broadcast_seconds Time from MQTT receive to WebSocket fan-out.\n"
                 "# TYPE vigil_ingest_to_broadcast_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_LAT_BUCKETS; i++) {
        cum += LOAD(m->lat_bucket[i]);
        sbuf_addf(o, "vigil_ingest_to_broadcast_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                  (double)lat_bounds_us[i] / 1e6, cum);
    }
    cum += LOAD(m->lat_bucket[METRICS_LAT_BUCKETS]);
    sbuf_addf(o, "vigil_ingest_to_broadcast_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    sbuf_addf(o, "vigil_ingest_to_broadcast_seconds_sum %.9f\n", (double)LOAD(m->lat_sum_ns) / 1e9);
    sbuf_addf(o, "vigil_ingest_to_broadcast_seconds_count %" PRIu64 "\n", LOAD(m->lat_count));
}
