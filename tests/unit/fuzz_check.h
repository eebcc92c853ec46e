/* fuzz_check — what every libFuzzer target here shares: the entry point's
 * prototype (-Wmissing-prototypes) and CHECK, which traps on a broken
 * invariant so the fuzzer records the input (assert() would vanish under
 * NDEBUG, and a trap needs no libc). */
#ifndef VIGIL_FUZZ_CHECK_H
#define VIGIL_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)              \
    do {                      \
        if (!(c))             \
            __builtin_trap(); \
    } while (0)

#endif
