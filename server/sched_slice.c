/* sched_slice — see sched_slice.h. */
#include "sched_slice.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#include <sys/syscall.h>

/* The kernel's struct sched_attr (uapi linux/sched/types.h, version 0, 48
 * bytes): that header clashes with glibc's <sched.h>, and glibc 2.36 has no
 * sched_setattr wrapper. */
typedef struct sched_slice__attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
} sched_slice__attr;

/* Only a normal thread: a policy set from outside (chrt) is left alone.
 * sched_setattr sets the nice value too, hence `nice` again. */
static sched_slice_result sched_slice__setattr(int nice, uint64_t slice_ns)
{
    if (sched_getscheduler(0) != SCHED_OTHER)
        return SCHED_SLICE_ENOT_NORMAL;
    sched_slice__attr a = {.size = sizeof a, .policy = SCHED_OTHER, .nice = nice, .runtime = slice_ns};
    return syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? SCHED_SLICE_OK : SCHED_SLICE_ESLICE;
}
#endif

int sched_slice_nice(void)
{
#ifdef __linux__
    errno = 0;
    /* Linux: nice is per thread, addressed by tid. */
    int n = getpriority(PRIO_PROCESS, (id_t)gettid());
    return n == -1 && errno != 0 ? 0 : n;
#else
    return 0;
#endif
}

sched_slice_result sched_slice_set(int nice, uint64_t slice_ns)
{
#ifdef __linux__
    nice = nice < -20 ? -20 : nice > 19 ? 19 : nice;
    /* setpriority first: it is what takes effect if sched_setattr is not
     * tried (another policy) or fails. Its errno is kept for the caller. */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), nice) != 0) {
        int e = errno;
        (void)sched_slice__setattr(nice, slice_ns);
        errno = e;
        return SCHED_SLICE_ENICE;
    }
    return sched_slice__setattr(nice, slice_ns);
#else
    (void)nice;
    (void)slice_ns;
    return SCHED_SLICE_EUNSUPPORTED;
#endif
}

const char *sched_slice_str(sched_slice_result r)
{
    switch (r) {
    case SCHED_SLICE_OK:
        return "ok";
    case SCHED_SLICE_ENICE:
        return "nice value refused";
    case SCHED_SLICE_ENOT_NORMAL:
        return "not a SCHED_OTHER thread";
    case SCHED_SLICE_ESLICE:
        return "slice refused";
    case SCHED_SLICE_EUNSUPPORTED:
        return "not supported here";
    }
    return "?";
}
