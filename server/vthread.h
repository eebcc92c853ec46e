/* vthread — thread-ownership and lock-holding rules made checkable, the way
 * SQLite asserts mutex_held(): a module records its owning thread when that
 * thread starts and asserts it in every "X thread only" entry point; a
 * vmutex knows which thread holds it, so "called with the lock held" is an
 * assert too. Debug builds (no NDEBUG) check; release builds compile every
 * check away and a vmutex is a plain pthread mutex.
 *
 * Ownership rule: a thread_owner that is unbound accepts any thread — the
 * set-up done by main before the owning thread starts (loading the hub,
 * rebuilding the tracker) and the tear-down after it has been joined. Bind
 * at the top of the thread's main function, release before it returns. */
#ifndef VIGIL_VTHREAD_H
#define VIGIL_VTHREAD_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

typedef struct thread_owner {
#ifndef NDEBUG
    _Atomic int bound;
    pthread_t tid;
#else
    char unused;
#endif
} thread_owner;

#ifndef NDEBUG
static inline void thread_owner_bind(thread_owner *o)
{
    o->tid = pthread_self();
    atomic_store(&o->bound, 1);
}
static inline void thread_owner_release(thread_owner *o) { atomic_store(&o->bound, 0); }
static inline int thread_owner_is_current(const thread_owner *o)
{
    return !atomic_load(&((thread_owner *)o)->bound) || pthread_equal(o->tid, pthread_self());
}
#define THREAD_ASSERT_OWNER(o) assert(thread_owner_is_current(o))
#else
static inline void thread_owner_bind(thread_owner *o) { (void)o; }
static inline void thread_owner_release(thread_owner *o) { (void)o; }
#define THREAD_ASSERT_OWNER(o) ((void)(o))
#endif

/* Names the calling thread (at most 15 characters: "vigil-ingest"), so
 * `top -H`, `perf` and /proc/PID/task/TID/comm tell vigild's threads
 * apart. Best effort: a failure only leaves the inherited name. */
static inline void vthread_name(const char *name) { (void)pthread_setname_np(pthread_self(), name); }

/* A mutex that knows its holder (debug builds). */
typedef struct vmutex {
    pthread_mutex_t m;
#ifndef NDEBUG
    _Atomic int held;
    pthread_t holder;
#endif
} vmutex;

static inline int vmutex_init(vmutex *x)
{
#ifndef NDEBUG
    atomic_init(&x->held, 0);
#endif
    return pthread_mutex_init(&x->m, NULL);
}
static inline void vmutex_destroy(vmutex *x) { pthread_mutex_destroy(&x->m); }
static inline void vmutex_lock(vmutex *x)
{
    pthread_mutex_lock(&x->m);
#ifndef NDEBUG
    x->holder = pthread_self();
    atomic_store(&x->held, 1);
#endif
}
static inline void vmutex_unlock(vmutex *x)
{
#ifndef NDEBUG
    assert(atomic_load(&x->held) && pthread_equal(x->holder, pthread_self()));
    atomic_store(&x->held, 0);
#endif
    pthread_mutex_unlock(&x->m);
}
/* pthread_cond_wait releases and retakes the mutex behind the vmutex's
 * back: these keep the holder record true across the wait. Called with x
 * held; return as pthread_cond_wait / pthread_cond_timedwait. */
static inline int vmutex_cond_wait(pthread_cond_t *c, vmutex *x)
{
#ifndef NDEBUG
    assert(atomic_load(&x->held) && pthread_equal(x->holder, pthread_self()));
    atomic_store(&x->held, 0);
#endif
    int rc = pthread_cond_wait(c, &x->m);
#ifndef NDEBUG
    x->holder = pthread_self();
    atomic_store(&x->held, 1);
#endif
    return rc;
}
static inline int vmutex_cond_timedwait(pthread_cond_t *c, vmutex *x, const struct timespec *abstime)
{
#ifndef NDEBUG
    assert(atomic_load(&x->held) && pthread_equal(x->holder, pthread_self()));
    atomic_store(&x->held, 0);
#endif
    int rc = pthread_cond_timedwait(c, &x->m, abstime);
#ifndef NDEBUG
    x->holder = pthread_self();
    atomic_store(&x->held, 1);
#endif
    return rc;
}

#ifndef NDEBUG
/* 1 if the calling thread holds x. */
static inline int vmutex_held(vmutex *x)
{
    return atomic_load(&x->held) && pthread_equal(x->holder, pthread_self());
}
#define VMUTEX_ASSERT_HELD(x) assert(vmutex_held(x))
#define VMUTEX_ASSERT_NOT_HELD(x) assert(!vmutex_held(x))
#else
#define VMUTEX_ASSERT_HELD(x) ((void)(x))
#define VMUTEX_ASSERT_NOT_HELD(x) ((void)(x))
#endif

#endif
