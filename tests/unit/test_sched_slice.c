/* Unit tests for server/sched_slice.c: a thread sets its own nice value and
 * EEVDF slice. A set with the thread's own nice value keeps it and gives the
 * short slice; a set with another nice value takes both; nice values are clamped; a thread
 * whose policy was set from outside is left alone. Each case runs on a
 * thread of its own so the runner's thread keeps its defaults, and checks
 * the slice the kernel reports (/proc), skipped before Linux 6.12, where a
 * requested slice is ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sched_probe.h"
#include "sched_slice.h"

/* What one thread did and saw; filled in by on_thread. */
typedef struct probe {
    int nice_in;       /* OWN: the thread's own (sched_slice_nice()) */
    uint64_t slice_in;
    int batch_first;   /* switch to SCHED_BATCH first, as `chrt -b` would from outside */
    sched_slice_result r;
    int nice_before, nice_after, policy_after;
    long long slice_after;
} probe;

#define OWN (-1000)

static void *on_thread(void *arg)
{
    probe *p = arg;
    if (p->batch_first) {
        struct sched_param sp = {.sched_priority = 0};
        if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
            return NULL; /* policy_after stays -1: the test fails */
    }
    p->nice_before = sched_slice_nice();
    p->r = sched_slice_set(p->nice_in == OWN ? sched_slice_nice() : p->nice_in, p->slice_in);
    p->nice_after = sched_slice_nice();
    p->policy_after = sched_getscheduler(0);
    p->slice_after = sched_probe_slice(gettid());
    return NULL;
}

static probe run(int nice_in, uint64_t slice_in, int batch_first)
{
    probe p = {.nice_in = nice_in, .slice_in = slice_in, .batch_first = batch_first, .policy_after = -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, on_thread, &p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    return p;
}

/* The slice is checked only where the kernel honours and shows it. */
static void assert_slice(const probe *p, long long want)
{
    if (sched_probe_kernel_sets_slices() && p->slice_after >= 0) {
        assert_int_equal(p->slice_after, want);
        assert_true(sched_probe_slice(gettid()) != want); /* the runner keeps its own */
    }
}

static void test_own_nice_kept_and_the_slice_shortened(void **state)
{
    (void)state;
    probe p = run(OWN, 100000, 0);
    assert_int_equal(p.r, SCHED_SLICE_OK);
    assert_int_equal(p.nice_after, p.nice_before);
    assert_int_equal(p.nice_after, getpriority(PRIO_PROCESS, 0)); /* the process's, inherited */
    assert_int_equal(p.policy_after, SCHED_OTHER);
    assert_slice(&p, 100000);
}

static void test_set_takes_nice_and_slice(void **state)
{
    (void)state;
    int base = getpriority(PRIO_PROCESS, 0);
    probe p = run(base + 3, 300000, 0);
    assert_int_equal(p.r, SCHED_SLICE_OK);
    assert_int_equal(p.nice_after, base + 3 > 19 ? 19 : base + 3);
    assert_slice(&p, 300000);
    assert_int_equal(getpriority(PRIO_PROCESS, 0), base); /* only the calling thread changed */
}

static void test_nice_is_clamped(void **state)
{
    (void)state;
    probe p = run(100, 200000, 0);
    assert_int_equal(p.r, SCHED_SLICE_OK);
    assert_int_equal(p.nice_after, 19);
    assert_slice(&p, 200000);
}

static void test_another_policy_is_left_alone(void **state)
{
    (void)state;
    probe p = run(OWN, 100000, 1);
    assert_int_equal(p.r, SCHED_SLICE_ENOT_NORMAL);
    assert_int_equal(p.policy_after, SCHED_BATCH);
    assert_int_equal(p.nice_after, p.nice_before);
    assert_string_equal(sched_slice_str(p.r), "not a SCHED_OTHER thread");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_nice_kept_and_the_slice_shortened),
        cmocka_unit_test(test_set_takes_nice_and_slice),
        cmocka_unit_test(test_nice_is_clamped),
        cmocka_unit_test(test_another_policy_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
