/* flash — see flash.h. */
#include "flash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t sim_flash__rand(sim_flash *f)
{
    uint64_t z = (f->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* One erase/program step: true when power fails during it. */
static bool sim_flash__step(sim_flash *f)
{
    f->steps++;
    bool cut = (f->cut_at && f->steps == f->cut_at) ||
               (f->cut_p > 0 && (double)(sim_flash__rand(f) >> 11) * 0x1p-53 < f->cut_p);
    if (cut) {
        f->dead = true;
        f->cut = true;
        f->cuts++;
    }
    return cut;
}

/* How much of a cut step got done: 0..len-1 bytes. */
static size_t sim_flash__done(sim_flash *f, size_t len)
{
    return len ? (size_t)(sim_flash__rand(f) % len) : 0;
}

static platform_status sim_flash__read(void *ctx, uint32_t off, void *buf, size_t len)
{
    sim_flash *f = ctx;
    if (f->dead)
        return PLATFORM_EIO;
    if ((uint64_t)off + len > f->pf.size)
        return PLATFORM_EINVAL;
    memcpy(buf, f->mem + off, len);
    return PLATFORM_OK;
}

static platform_status sim_flash__program(void *ctx, uint32_t off, const void *buf, size_t len)
{
    sim_flash *f = ctx;
    if (f->dead)
        return PLATFORM_EIO;
    if ((uint64_t)off + len > f->pf.size || off % f->pf.prog_size || len % f->pf.prog_size)
        return PLATFORM_EINVAL;
    const uint8_t *b = buf;
    size_t n = len;
    bool cut = sim_flash__step(f);
    if (cut)
        n = sim_flash__done(f, len);
    for (size_t i = 0; i < n; i++)
        f->mem[off + i] &= b[i]; /* programming only clears bits */
    if (cut)
        f->mem[off + n] &= (uint8_t)(b[n] | 0x0F); /* a half-programmed byte */
    return cut ? PLATFORM_EIO : PLATFORM_OK;
}

static platform_status sim_flash__erase(void *ctx, uint32_t off, size_t len)
{
    sim_flash *f = ctx;
    if (f->dead)
        return PLATFORM_EIO;
    if ((uint64_t)off + len > f->pf.size || off % f->pf.sector_size || len % f->pf.sector_size)
        return PLATFORM_EINVAL;
    size_t n = len;
    bool cut = sim_flash__step(f);
    if (cut)
        n = sim_flash__done(f, len);
    memset(f->mem + off, 0xFF, n);
    return cut ? PLATFORM_EIO : PLATFORM_OK;
}

/* The file mapped shared, created erased when missing. A file of another
 * size is refused rather than resized: its contents were laid out for
 * another partition and would be misread. */
static sim_flash_status sim_flash__map_file(sim_flash *f, const char *path, uint32_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "vigil-sim: flash file %s: %s\n", path, strerror(errno));
        return SIM_FLASH_EIO;
    }
    struct stat st;
    sim_flash_status rc = SIM_FLASH_OK;
    bool fresh = false;
    if (fstat(fd, &st) != 0) {
        rc = SIM_FLASH_EIO;
    } else if (st.st_size == 0) {
        fresh = true;
        if (ftruncate(fd, (off_t)size) != 0)
            rc = SIM_FLASH_EIO;
    } else if (st.st_size != (off_t)size) {
        fprintf(stderr, "vigil-sim: flash file %s is %lld bytes, the outbox region is %lu\n", path,
                (long long)st.st_size, (unsigned long)size);
        rc = SIM_FLASH_EGEOMETRY;
    }
    void *m = MAP_FAILED;
    if (rc == SIM_FLASH_OK)
        m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rc == SIM_FLASH_OK && m == MAP_FAILED) {
        fprintf(stderr, "vigil-sim: flash file %s: mmap: %s\n", path, strerror(errno));
        rc = SIM_FLASH_EIO;
    }
    close(fd); /* the mapping keeps the file */
    if (rc != SIM_FLASH_OK)
        return rc;
    f->mem = m;
    f->file = true;
    if (fresh)
        memset(f->mem, 0xFF, size); /* new flash comes erased */
    return SIM_FLASH_OK;
}

sim_flash_status sim_flash_open(sim_flash *f, const char *path, uint32_t size,
                                uint32_t sector_size, uint32_t prog_size, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->rng = seed;
    if (path) {
        sim_flash_status rc = sim_flash__map_file(f, path, size);
        if (rc != SIM_FLASH_OK)
            return rc;
    } else {
        /* Anonymous memory is committed only as sectors are used, so a
         * fleet of 1 MiB outboxes costs what the devices wrote. It reads as
         * 0x00 until then: foreign content, which the ring never trusts and
         * erases before it writes a sector. */
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return SIM_FLASH_EIO;
        f->mem = m;
    }
    f->pf = (platform_flash){.read = sim_flash__read, .program = sim_flash__program,
                             .erase = sim_flash__erase, .size = size, .sector_size = sector_size,
                             .prog_size = prog_size, .ctx = f};
    return SIM_FLASH_OK;
}

void sim_flash_close(sim_flash *f)
{
    if (f->mem)
        munmap(f->mem, f->pf.size);
    f->mem = NULL;
}

void sim_flash_power_on(sim_flash *f)
{
    f->dead = false;
    f->cut = false;
}
