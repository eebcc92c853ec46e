/* sched_probe — what the kernel reports of a thread's scheduling, for the
 * unit tests of threads that set their own (server/sched_slice.h): the EEVDF
 * slice from /proc, and whether this kernel honours a requested slice.
 * Linux only; no pointers kept; any thread. */
#ifndef VIGIL_SCHED_PROBE_H
#define VIGIL_SCHED_PROBE_H

#include <sys/types.h>

/* The scheduler's slice of thread `tid` of this process in ns (/proc's
 * "se.slice"), or -1 where the kernel does not show it. */
long long sched_probe_slice(pid_t tid);

/* 1 on Linux 6.12 or later, where sched_attr.sched_runtime sets a normal
 * thread's slice; 0 before (the request is accepted and ignored). */
int sched_probe_kernel_sets_slices(void);

#endif
