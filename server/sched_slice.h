/* sched_slice — a thread's nice value and EEVDF slice, set together.
 *
 * Under EEVDF (Linux 6.6+) a nice value sets a thread's share of a busy
 * CPU, not how long it runs once picked: that is its slice, by default
 * 0.7 ms x (1 + log2 cores), during which a thread that wakes meanwhile
 * waits. sched_attr.sched_runtime sets a normal thread's slice since Linux
 * 6.12; earlier kernels accept and ignore it. A short slice is an early
 * virtual deadline: the thread is picked sooner when it wakes, and others
 * are picked sooner when it has run its slice (docs/BENCHMARKS.md, "Issue
 * 13 — history load, third pass"). Used by the query worker (nice +10,
 * 0.1 ms). The live threads keep the default: a short slice for them was
 * measured and did not pay ("Issue 13 — live threads' slices").
 *
 * Best effort throughout: a failure leaves the thread as it was (or with
 * only the nice value set), which is a scheduling difference, never a
 * functional one. The caller logs the result if it cares.
 *
 * Ownership: no pointers. Threads: a thread sets its own attributes (both
 * functions act on the calling thread only), typically at the top of its
 * main function. */
#ifndef VIGIL_SCHED_SLICE_H
#define VIGIL_SCHED_SLICE_H

#include <stdint.h>

typedef enum sched_slice_result {
    SCHED_SLICE_OK = 0,
    SCHED_SLICE_ENICE,        /* the nice value was refused (errno says why); the slice was still tried */
    SCHED_SLICE_ENOT_NORMAL,  /* the thread is not SCHED_OTHER (set from outside): its policy was left alone */
    SCHED_SLICE_ESLICE,       /* sched_setattr refused (errno says why): the default slice stays */
    SCHED_SLICE_EUNSUPPORTED, /* not Linux: nothing was done */
} sched_slice_result;

/* The calling thread's nice value (0 if it cannot be read). */
int sched_slice_nice(void);

/* Sets the calling thread's nice value to `nice` (-20..19, clamped) and,
 * if it is a normal (SCHED_OTHER) thread, its slice to `slice_ns`; the
 * kernel clamps the slice to 0.1..100 ms. To keep the nice value, pass
 * sched_slice_nice(). Returns the first step that failed. */
sched_slice_result sched_slice_set(int nice, uint64_t slice_ns);

/* A short name for a result, for a log line. */
const char *sched_slice_str(sched_slice_result r);

#endif
