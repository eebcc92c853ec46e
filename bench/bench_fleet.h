/* bench_fleet — the publishing devices: one libmosquitto client per device,
 * spread over forked worker processes, each driving its clients from one
 * epoll loop (as vigil-sim does: no mosquitto_loop_start, whose select()
 * breaks past fd 1024).
 *
 * Why processes: libmosquitto holds three descriptors per client (socket +
 * an internal socketpair), so 10,000 devices do not fit one process' open
 * files limit. Message m of the run goes to device m % devices with seq
 * m / devices: one global schedule, O(1) per message, every device at the
 * same rate with its phase spread evenly. Each worker writes the send time
 * of its messages into the shared bench_sendtab just before publishing.
 *
 * Ownership: main owns the fleet; the options and the send table must
 * outlive it. Workers are never reconnected: a disconnect is counted and
 * the loss shows in the receivers' numbers.
 * Threading / processes: bench_fleet_fork must run before any thread
 * exists (fork() in a threaded process may copy a held lock). After that
 * the main thread calls every function; workers see go / rate / stop
 * through MAP_SHARED memory and exit on stop or when their parent dies. */
#ifndef VIGIL_BENCH_FLEET_H
#define VIGIL_BENCH_FLEET_H

#include <stdint.h>

#include "bench_opts.h"
#include "bench_sendtab.h"

#define BENCH_FLEET_MAX_WORKERS 64

typedef struct bench_fleet bench_fleet;

typedef enum bench_fleet_status {
    BENCH_FLEET_OK = 0,
    BENCH_FLEET_ENOMEM = -1, /* the shared control block */
    BENCH_FLEET_EFORK = -2,  /* fork() failed (already reported with perror) */
} bench_fleet_status;

/* Summed over every worker; each field read with a relaxed load. */
typedef struct bench_fleet_stats {
    uint64_t sent, skipped, connected, disconnects, errors;
} bench_fleet_stats;

/* A desaturated device (--desat-devices): its first low readings, as
 * published. Written only by the worker owning the device; read by main
 * after bench_fleet_stop (waitpid orders the two). */
#define BENCH_FLEET_DESAT_READINGS 16
typedef struct bench_fleet_desat {
    long dev;                                     /* device number */
    int n;                                        /* low readings recorded, ≤ BENCH_FLEET_DESAT_READINGS */
    int64_t ts_ms[BENCH_FLEET_DESAT_READINGS];    /* their "ts" */
    uint64_t pub_ns[BENCH_FLEET_DESAT_READINGS];  /* bench_now_ns() just before mosquitto_publish */
} bench_fleet_desat;

/* Allocates the fleet and its shared control block. */
bench_fleet_status bench_fleet_create(const bench_opts *o, const bench_sendtab *tab,
                                      bench_fleet **out);
/* Forks the workers; they create their clients, then wait for go. */
bench_fleet_status bench_fleet_fork(bench_fleet *f);
/* Workers start connecting (paced at --connect-rate in total). */
void bench_fleet_go(bench_fleet *f);
/* Per-device Hz from now on; 0 stops publishing. Re-bases the schedule. */
void bench_fleet_set_rate(bench_fleet *f, double hz);
/* Tells the workers to stop and waits for every one of them. */
void bench_fleet_stop(bench_fleet *f);
void bench_fleet_read(const bench_fleet *f, bench_fleet_stats *out);
int bench_fleet_workers(const bench_fleet *f);
/* Desaturated device k (0 ≤ k < --desat-devices); call after bench_fleet_stop. */
const bench_fleet_desat *bench_fleet_desat_of(const bench_fleet *f, long k);
int bench_fleet_worker_pid(const bench_fleet *f, int i);

#endif
