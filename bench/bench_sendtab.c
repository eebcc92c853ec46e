/* bench_sendtab — see bench_sendtab.h. */
#include "bench_sendtab.h"

#include <sys/mman.h>

bench_sendtab_status bench_sendtab_create(bench_sendtab *t, long devices, long maxseq)
{
    t->devices = devices;
    t->maxseq = maxseq;
    size_t bytes = bench_sendtab_slots(t) * sizeof *t->ns;
    /* anonymous shared memory is zeroed: every slot starts "not sent" */
    t->ns = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t->ns == MAP_FAILED) {
        t->ns = NULL;
        return BENCH_SENDTAB_ENOMEM;
    }
    return BENCH_SENDTAB_OK;
}
