/* cluster_probe — server/cluster.c alone, for tests/integration/test_cluster.py:
 * joins the cluster on CONNINFO as NAME and reports on stdout, one line each,
 *   G <bucket> <mono_ns>   a bucket gained (after its lock was granted)
 *   L <bucket> <mono_ns>   a bucket lost (before its lock is released)
 *   S <members> <owned mask, hex> <connected> <takeovers> <mono_ns>   every 200 ms
 * until SIGTERM/SIGINT, or 300 s. CLOCK_MONOTONIC is one clock for every
 * process on the machine, so the test can check that no two probes ever
 * owned one bucket at the same time. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "cluster.h"
#include "metrics.h"
#include "vclock.h"

static pthread_mutex_t probe__out = PTHREAD_MUTEX_INITIALIZER;

static void probe__change(void *ctx, unsigned bucket, int owned)
{
    (void)ctx;
    pthread_mutex_lock(&probe__out);
    printf("%c %u %" PRIu64 "\n", owned ? 'G' : 'L', bucket, vclock_mono_ns());
    fflush(stdout);
    pthread_mutex_unlock(&probe__out);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: cluster_probe CONNINFO NAME\n");
        return 2;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    static vigil_metrics m;
    cluster *c = NULL;
    if (cluster_create(argv[1], argv[2], &m, (cluster_port){.on_change = probe__change}, &c) != CLUSTER_OK ||
        cluster_start(c) != CLUSTER_OK) {
        fprintf(stderr, "cluster_probe: cannot start\n");
        cluster_stop(c);
        return 1;
    }
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
    for (int i = 0; i < 1500; i++) { /* 300 s at most */
        if (sigtimedwait(&sigs, NULL, &tick) > 0)
            break;
        pthread_mutex_lock(&probe__out);
        printf("S %" PRIu64 " %016" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
               atomic_load(&m.cluster_members), cluster_owned_mask(c), atomic_load(&m.cluster_connected),
               atomic_load(&m.cluster_takeovers), vclock_mono_ns());
        fflush(stdout);
        pthread_mutex_unlock(&probe__out);
    }
    cluster_stop(c);
    return 0;
}
