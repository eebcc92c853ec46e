/* bench_atomic — the relaxed atomics the bench's counters use.
 *
 * Every counter has one writer (a worker process, the receiver thread or
 * the main thread) and is read by others while the run goes on, possibly
 * from another process through MAP_SHARED memory. Relaxed loads and stores
 * are enough: readers want a recent value, not an ordering. */
#ifndef VIGIL_BENCH_ATOMIC_H
#define VIGIL_BENCH_ATOMIC_H

#define BENCH_LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define BENCH_ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
/* single writer only: a load and a store, not a read-modify-write */
#define BENCH_INC(x) BENCH_ST(x, BENCH_LD(x) + 1)

#endif
