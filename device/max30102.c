/* max30102 — see max30102.h. */
#include "max30102.h"

#include <string.h>

/* Samples per burst: bounds the stack buffer (6 bytes per red/IR pair). */
#define MAX30102_BURST 8

static max30102_status max30102__write(max30102 *dev, uint8_t reg, uint8_t val)
{
    const uint8_t w[2] = {reg, val};
    return dev->bus->write_read(dev->bus->ctx, dev->addr, w, 2, NULL, 0) == I2C_OK
               ? MAX30102_OK
               : MAX30102_ERR_BUS;
}

static max30102_status max30102__read(max30102 *dev, uint8_t reg, uint8_t *buf, size_t n)
{
    return dev->bus->write_read(dev->bus->ctx, dev->addr, &reg, 1, buf, n) == I2C_OK
               ? MAX30102_OK
               : MAX30102_ERR_BUS;
}

static void max30102__delay(max30102 *dev, uint32_t ms)
{
    if (dev->bus->delay_ms != NULL)
        dev->bus->delay_ms(dev->bus->ctx, ms);
}

static bool max30102__bound(const max30102 *dev)
{
    return dev != NULL && dev->bus != NULL && dev->bus->write_read != NULL;
}

max30102_status max30102_reset(max30102 *dev)
{
    if (!max30102__bound(dev))
        return MAX30102_ERR_ARG;
    max30102_status st = max30102__write(dev, MAX30102_REG_MODE_CONFIG, MAX30102_MODE_RESET);
    if (st != MAX30102_OK)
        return st;
    for (int i = 0; i < MAX30102_RESET_POLLS; i++) {
        max30102__delay(dev, 1);
        uint8_t mode = 0;
        st = max30102__read(dev, MAX30102_REG_MODE_CONFIG, &mode, 1);
        if (st != MAX30102_OK)
            return st;
        if ((mode & MAX30102_MODE_RESET) == 0)
            return MAX30102_OK;
    }
    return MAX30102_ERR_TIMEOUT;
}

max30102_status max30102_check_part_id(max30102 *dev, uint8_t *part_id)
{
    if (!max30102__bound(dev))
        return MAX30102_ERR_ARG;
    uint8_t ids[2] = {0, 0}; /* REV_ID 0xFE, PART_ID 0xFF: one burst */
    max30102_status st = max30102__read(dev, MAX30102_REG_REV_ID, ids, 2);
    if (st != MAX30102_OK)
        return st;
    dev->rev_id = ids[0];
    if (part_id != NULL)
        *part_id = ids[1];
    return ids[1] == MAX30102_PART_ID ? MAX30102_OK : MAX30102_ERR_PART_ID;
}

max30102_status max30102_configure_spo2(max30102 *dev, uint8_t led_pa)
{
    if (!max30102__bound(dev))
        return MAX30102_ERR_ARG;
    if (led_pa == 0)
        led_pa = MAX30102_LED_PA_REF;
    const uint8_t seq[][2] = {
        {MAX30102_REG_INT_ENABLE1, 0xC0}, /* A_FULL + PPG_RDY, as the reference */
        {MAX30102_REG_INT_ENABLE2, 0x00},
        {MAX30102_REG_FIFO_CONFIG, MAX30102_FIFO_CONFIG_REF},
        {MAX30102_REG_MODE_CONFIG, MAX30102_MODE_SPO2},
        {MAX30102_REG_SPO2_CONFIG, MAX30102_SPO2_CONFIG_REF},
        {MAX30102_REG_LED1_PA, led_pa},
        {MAX30102_REG_LED2_PA, led_pa},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        max30102_status st = max30102__write(dev, seq[i][0], seq[i][1]);
        if (st != MAX30102_OK)
            return st;
    }
    dev->led_pa = led_pa;
    return MAX30102_OK;
}

max30102_status max30102_fifo_reset(max30102 *dev)
{
    if (!max30102__bound(dev))
        return MAX30102_ERR_ARG;
    /* Auto-increment: one write covers WR_PTR, OVF_COUNTER, RD_PTR. */
    const uint8_t w[4] = {MAX30102_REG_FIFO_WR_PTR, 0, 0, 0};
    return dev->bus->write_read(dev->bus->ctx, dev->addr, w, sizeof w, NULL, 0) == I2C_OK
               ? MAX30102_OK
               : MAX30102_ERR_BUS;
}

max30102_status max30102_init(max30102 *dev, const i2c_bus *bus, uint8_t led_pa)
{
    if (dev == NULL || bus == NULL || bus->write_read == NULL)
        return MAX30102_ERR_ARG;
    memset(dev, 0, sizeof(*dev));
    dev->bus = bus;
    dev->addr = MAX30102_ADDR;
    max30102_status st = max30102_reset(dev);
    if (st == MAX30102_OK)
        st = max30102_check_part_id(dev, NULL);
    if (st == MAX30102_OK)
        st = max30102_configure_spo2(dev, led_pa);
    if (st == MAX30102_OK)
        st = max30102_fifo_reset(dev);
    return st;
}

max30102_status max30102_read_fifo(max30102 *dev, max30102_sample *out, size_t cap,
                                   size_t *n_read, uint32_t *n_lost)
{
    if (n_read != NULL)
        *n_read = 0;
    if (n_lost != NULL)
        *n_lost = 0;
    if (!max30102__bound(dev) || out == NULL || cap == 0 || n_read == NULL)
        return MAX30102_ERR_ARG;
    uint8_t ptr[3]; /* WR_PTR, OVF_COUNTER, RD_PTR in one burst */
    max30102_status st = max30102__read(dev, MAX30102_REG_FIFO_WR_PTR, ptr, sizeof ptr);
    if (st != MAX30102_OK)
        return st;
    uint8_t wr = ptr[0] & 0x1F, ovf = ptr[1] & 0x1F, rd = ptr[2] & 0x1F;
    size_t avail = (size_t)((wr - rd) & 0x1F);
    /* WR == RD is ambiguous (empty or full); a non-zero overflow count means
     * the FIFO filled up, so all 32 slots hold data. */
    if (avail == 0 && ovf != 0)
        avail = MAX30102_FIFO_DEPTH;
    if (n_lost != NULL)
        *n_lost = ovf;
    dev->samples_lost += ovf;
    if (avail > cap)
        avail = cap;

    size_t done = 0;
    while (done < avail) {
        size_t chunk = avail - done;
        if (chunk > MAX30102_BURST)
            chunk = MAX30102_BURST;
        uint8_t buf[MAX30102_BURST * 6];
        /* FIFO_DATA does not auto-increment: the burst pops samples. */
        st = max30102__read(dev, MAX30102_REG_FIFO_DATA, buf, chunk * 6);
        if (st != MAX30102_OK)
            break;
        for (size_t i = 0; i < chunk; i++) {
            const uint8_t *b = &buf[i * 6];
            out[done + i].red =
                (((uint32_t)b[0] << 16) | ((uint32_t)b[1] << 8) | b[2]) & MAX30102_SAMPLE_MASK;
            out[done + i].ir =
                (((uint32_t)b[3] << 16) | ((uint32_t)b[4] << 8) | b[5]) & MAX30102_SAMPLE_MASK;
        }
        done += chunk;
    }
    *n_read = done;
    dev->samples_read += (uint32_t)done;
    return st;
}

max30102_status max30102_read_die_temp(max30102 *dev, float *celsius)
{
    if (!max30102__bound(dev) || celsius == NULL)
        return MAX30102_ERR_ARG;
    max30102_status st = max30102__write(dev, MAX30102_REG_TEMP_CONFIG, 0x01);
    if (st != MAX30102_OK)
        return st;
    for (int i = 0; i < MAX30102_TEMP_POLLS; i++) {
        max30102__delay(dev, 1);
        uint8_t en = 0;
        st = max30102__read(dev, MAX30102_REG_TEMP_CONFIG, &en, 1);
        if (st != MAX30102_OK)
            return st;
        if ((en & 0x01) == 0) {
            uint8_t t[2];
            st = max30102__read(dev, MAX30102_REG_TEMP_INT, t, 2);
            if (st != MAX30102_OK)
                return st;
            *celsius = (float)(int8_t)t[0] + (float)(t[1] & 0x0F) * 0.0625f;
            return MAX30102_OK;
        }
    }
    return MAX30102_ERR_TIMEOUT;
}

max30102_status max30102_shutdown(max30102 *dev, bool on)
{
    if (!max30102__bound(dev))
        return MAX30102_ERR_ARG;
    uint8_t mode = 0;
    max30102_status st = max30102__read(dev, MAX30102_REG_MODE_CONFIG, &mode, 1);
    if (st != MAX30102_OK)
        return st;
    mode = on ? (uint8_t)(mode | MAX30102_MODE_SHDN) : (uint8_t)(mode & ~MAX30102_MODE_SHDN);
    return max30102__write(dev, MAX30102_REG_MODE_CONFIG, mode & (uint8_t)~MAX30102_MODE_RESET);
}

const char *max30102_status_str(max30102_status st)
{
    switch (st) {
    case MAX30102_OK: return "ok";
    case MAX30102_ERR_ARG: return "bad argument";
    case MAX30102_ERR_BUS: return "i2c bus error";
    case MAX30102_ERR_PART_ID: return "unexpected part id";
    case MAX30102_ERR_TIMEOUT: return "timeout";
    }
    return "unknown";
}
