/* flash_mem — an in-memory NOR flash model behind platform_flash, for the
 * device tests: erase sets 0xFF, program ANDs bits in (a program over
 * non-erased bytes is an error, as it would corrupt real NOR), and a power
 * cut can be injected at the Nth erase/program step: that step is done
 * partly (a prefix of a program, a prefix of an erase) and every later
 * call fails until flash_mem_power_on. Pure C, no allocation after
 * flash_mem_init: runs on the bare-metal targets too. */
#ifndef VIGIL_TEST_FLASH_MEM_H
#define VIGIL_TEST_FLASH_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "platform.h"

typedef struct flash_mem {
    uint8_t *mem;      /* caller's buffer of size bytes */
    platform_flash f;
    uint64_t steps;    /* erase + program calls so far */
    uint64_t cut_at;   /* step number that is cut (0: never) */
    uint32_t cut_frac; /* of 256: how much of the cut step is done */
    bool dead;
    uint64_t erases, programs;
    uint32_t *sector_erases; /* optional, per sector */
} flash_mem;

void flash_mem_init(flash_mem *m, uint8_t *mem, uint32_t size, uint32_t sector, uint32_t prog);
void flash_mem_power_on(flash_mem *m); /* clears the cut and the dead state */

#endif
