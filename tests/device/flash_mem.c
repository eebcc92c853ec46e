/* flash_mem — see flash_mem.h. */
#include "flash_mem.h"

#include <string.h>

static platform_status flash_mem__read(void *ctx, uint32_t off, void *buf, size_t len)
{
    flash_mem *m = ctx;
    if (m->dead)
        return PLATFORM_EIO;
    if ((uint64_t)off + len > m->f.size)
        return PLATFORM_EINVAL;
    memcpy(buf, m->mem + off, len);
    return PLATFORM_OK;
}

/* True when this step is the cut one: it is then done only partly. */
static bool flash_mem__step(flash_mem *m)
{
    m->steps++;
    if (m->cut_at && m->steps == m->cut_at) {
        m->dead = true;
        return true;
    }
    return false;
}

static platform_status flash_mem__program(void *ctx, uint32_t off, const void *buf, size_t len)
{
    flash_mem *m = ctx;
    if (m->dead)
        return PLATFORM_EIO;
    if ((uint64_t)off + len > m->f.size || off % m->f.prog_size || len % m->f.prog_size)
        return PLATFORM_EINVAL;
    const uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        if ((m->mem[off + i] & b[i]) != b[i])
            return PLATFORM_EIO; /* programming over data: a bug in the ring */
    m->programs++;
    size_t n = len;
    bool cut = flash_mem__step(m);
    if (cut)
        n = len * m->cut_frac / 256;
    for (size_t i = 0; i < n; i++)
        m->mem[off + i] &= b[i];
    if (cut && n < len)
        m->mem[off + n] &= (uint8_t)(b[n] | 0x0F); /* a half-programmed byte */
    return cut ? PLATFORM_EIO : PLATFORM_OK;
}

static platform_status flash_mem__erase(void *ctx, uint32_t off, size_t len)
{
    flash_mem *m = ctx;
    if (m->dead)
        return PLATFORM_EIO;
    if ((uint64_t)off + len > m->f.size || off % m->f.sector_size || len % m->f.sector_size)
        return PLATFORM_EINVAL;
    m->erases++;
    if (m->sector_erases)
        for (size_t s = off / m->f.sector_size; s < (off + len) / m->f.sector_size; s++)
            m->sector_erases[s]++;
    size_t n = len;
    bool cut = flash_mem__step(m);
    if (cut)
        n = len * m->cut_frac / 256;
    memset(m->mem + off, 0xFF, n);
    return cut ? PLATFORM_EIO : PLATFORM_OK;
}

void flash_mem_init(flash_mem *m, uint8_t *mem, uint32_t size, uint32_t sector, uint32_t prog)
{
    memset(m, 0, sizeof *m);
    m->mem = mem;
    memset(mem, 0xFF, size);
    m->f = (platform_flash){.read = flash_mem__read, .program = flash_mem__program,
                            .erase = flash_mem__erase, .size = size, .sector_size = sector,
                            .prog_size = prog, .ctx = m};
}

void flash_mem_power_on(flash_mem *m)
{
    m->dead = false;
    m->cut_at = 0;
}
