/* flash — vigil-sim's model of a device's outbox flash region: NOR
 * semantics (erase sets whole sectors to 0xFF, program only clears bits)
 * behind platform_flash, in anonymous memory or in a file per device
 * (--flash-dir DIR: DIR/ID.flash, mapped shared, so a restart of vigil-sim
 * is a reboot of the device with its flash intact), with power-cut
 * injection: the Nth erase/program step (--power-cut-at) or each step with
 * probability P (--power-cut-random) is done only partly — a prefix of a
 * program with one half-programmed byte, a prefix of an erase, as
 * tests/device/flash_mem.c does — and every later call fails until
 * sim_flash_power_on, the way a device that lost power does nothing more.
 *
 * Host only (mmap, open): it is not in sim/models, which is cross-built for
 * MCUs.
 *
 * Ownership: the caller owns the sim_flash struct; it owns its mapping
 * (sim_flash_close unmaps and, for a file, leaves the file in place). The
 * platform_flash in .pf points at the struct: it must not move while in
 * use. Threading: none; one owner (a worker's device). */
#ifndef VIGIL_SIM_FLASH_H
#define VIGIL_SIM_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"

typedef enum sim_flash_status {
    SIM_FLASH_OK = 0,
    SIM_FLASH_EIO = -1,      /* cannot create, size or map the file / memory */
    SIM_FLASH_EGEOMETRY = -2 /* an existing file of another size: another partition layout */
} sim_flash_status;

typedef struct sim_flash {
    platform_flash pf;
    uint8_t *mem;
    bool file;           /* mem maps a file (else anonymous memory) */
    /* power cuts */
    uint64_t steps;      /* erase + program calls since power-on of the model */
    uint64_t cut_at;     /* the step that is cut (0: none) */
    double cut_p;        /* probability that any step is cut */
    uint64_t rng;        /* splitmix64 state for cut_p and the cut fraction */
    bool dead;           /* power is off: every call fails */
    bool cut;            /* a cut happened; the owner reboots the device */
    uint64_t cuts;       /* cuts so far */
} sim_flash;

/* Maps size bytes (whole sectors of sector_size) of the file at path,
 * created erased when missing, or anonymous erased memory when path is
 * NULL. prog_size as platform_flash. */
sim_flash_status sim_flash_open(sim_flash *f, const char *path, uint32_t size,
                                uint32_t sector_size, uint32_t prog_size, uint64_t seed);
void sim_flash_close(sim_flash *f);

/* The power comes back (the device reboots): calls work again; cut_at, if
 * it was reached, does not fire again. */
void sim_flash_power_on(sim_flash *f);

#endif
