/* bench_recv — the receivers: --clients connections to the subject under
 * test, spread over --recv-threads threads (client i on thread i mod N,
 * default 1), each on its own epoll loop, counting what arrives. A
 * receiver thread reads every byte every client gets: ~260 ns of CPU per
 * vigild delivery (~440 B), ~0.4 of a core at 100 clients x 15,000 msgs/s
 * (docs/BENCHMARKS.md, "what bounds 100 clients"); more threads let it use
 * more cores where the host has them.
 *
 * Kinds (--recv): `ws`, a hand-written WebSocket client reading JSON text
 * frames (vigild, the relay, the baselines); `mqttws`, MQTT 3.1.1 over
 * WebSocket (a broker's websockets listener); `mqtt`, libmosquitto
 * subscribers on sensors/esp32/+/data. They stay cheaper than the subjects
 * they measure: payloads are scanned for (device_id, seq), never parsed.
 *
 * Message identity is (device, seq): the device from the numeric part of
 * the id, seq from the payload. Each connection has a bitmap of what it has
 * seen, giving unique, duplicated and unknown deliveries per connection;
 * every delivery's latency (now - its bench_sendtab send time) goes into
 * the histogram of the step main has set (bench_recv_set_step).
 *
 * Ownership: main owns the receivers; the options and the send table must
 * outlive them. Nothing is freed before exit (the kernel closes sockets).
 * Threading: bench_recv_start starts the receiver threads; each owns its
 * connections and its own counters (per-step counts and histograms, one
 * writer each), which main sums. The main thread calls everything else;
 * the counters it reads while the threads run are relaxed atomics,
 * bench_recv_read and bench_recv_step_hist only after bench_recv_stop. */
#ifndef VIGIL_BENCH_RECV_H
#define VIGIL_BENCH_RECV_H

#include <stdint.h>

#include "bench_hist.h"
#include "bench_opts.h"
#include "bench_sendtab.h"

typedef struct bench_recv bench_recv;

typedef enum bench_recv_status {
    BENCH_RECV_OK = 0,
    BENCH_RECV_ENOMEM = -1, /* connections or their bitmaps */
    BENCH_RECV_ESYS = -2,   /* epoll_create1 or pthread_create failed */
} bench_recv_status;

typedef struct bench_recv_stats {
    uint64_t uniq, dups, unknown, frames, bytes;
} bench_recv_stats;

/* Allocates the connections (not yet connected) and their bitmaps. */
bench_recv_status bench_recv_create(const bench_opts *o, const bench_sendtab *tab,
                                    bench_recv **out);
/* Starts the receiver threads: they open the connections in bursts of 200
 * (all threads together). */
bench_recv_status bench_recv_start(bench_recv *r);
/* Steps 1..BENCH_MAX_STEPS-1 are measured; 0 is warm-up, BENCH_MAX_STEPS
 * the drain (late deliveries counted apart). */
void bench_recv_set_step(bench_recv *r, int step);
long bench_recv_ready(const bench_recv *r);  /* subscribed and receiving */
long bench_recv_closed(const bench_recv *r); /* failed or closed by the server */
uint64_t bench_recv_uniq(const bench_recv *r); /* unique deliveries, all connections */
uint64_t bench_recv_step_count(const bench_recv *r, int step); /* deliveries in a step */
/* CPU seconds (user + system) each receiver thread has used so far, into
 * out[0..n) (n at most max); main may call it while they run. Returns n. */
int bench_recv_thread_cpu(const bench_recv *r, double *out, int max);
/* Stops and joins the receiver threads; sums their histograms. */
void bench_recv_stop(bench_recv *r);
/* After bench_recv_stop. */
void bench_recv_read(const bench_recv *r, bench_recv_stats *out);
const bench_hist *bench_recv_step_hist(const bench_recv *r, int step);

#endif
