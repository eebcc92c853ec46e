/* mlx90614 — see mlx90614.h. */
#include "mlx90614.h"

#include <string.h>

#define MLX90614_TA_MIN (-40.0f)
#define MLX90614_TA_MAX 125.0f
#define MLX90614_TO_MIN (-70.0f)
#define MLX90614_TO_MAX 380.0f

mlx90614_status mlx90614_init(mlx90614 *dev, const i2c_bus *bus, uint8_t addr)
{
    if (dev == NULL || bus == NULL || bus->write_read == NULL)
        return MLX90614_ERR_ARG;
    memset(dev, 0, sizeof(*dev));
    dev->bus = bus;
    dev->addr = addr != 0 ? addr : MLX90614_ADDR_DEFAULT;
    dev->attempts = MLX90614_DEFAULT_ATTEMPTS;
    return MLX90614_OK;
}

uint8_t mlx90614_pec(const uint8_t *data, size_t len)
{
    uint8_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int b = 0; b < 8; b++)
            crc = (uint8_t)((crc & 0x80u) ? ((unsigned)crc << 1) ^ 0x07u : (unsigned)crc << 1);
    }
    return crc;
}

float mlx90614_raw_to_celsius(uint16_t raw)
{
    return (float)(raw & 0x7FFFu) * 0.02f - 273.15f;
}

/* One attempt: S, SA+W, cmd, Sr, SA+R, LSB, MSB, PEC, P. */
static mlx90614_status mlx90614__attempt(mlx90614 *dev, uint8_t cmd, uint16_t *out)
{
    uint8_t rx[3] = {0, 0, 0};
    i2c_status bs = dev->bus->write_read(dev->bus->ctx, dev->addr, &cmd, 1, rx, sizeof rx);
    if (bs != I2C_OK) {
        dev->stats.bus_errors++;
        return MLX90614_ERR_BUS;
    }
    const uint8_t frame[5] = {(uint8_t)(dev->addr << 1), cmd, (uint8_t)((dev->addr << 1) | 1u),
                              rx[0], rx[1]};
    if (mlx90614_pec(frame, sizeof frame) != rx[2]) {
        dev->stats.pec_errors++;
        return MLX90614_ERR_PEC;
    }
    *out = (uint16_t)(rx[0] | (rx[1] << 8));
    return MLX90614_OK;
}

mlx90614_status mlx90614_read_word(mlx90614 *dev, uint8_t cmd, uint16_t *out)
{
    if (dev == NULL || dev->bus == NULL || out == NULL)
        return MLX90614_ERR_ARG;
    dev->stats.reads++;
    uint8_t attempts = dev->attempts ? dev->attempts : 1;
    mlx90614_status st = MLX90614_ERR_BUS;
    for (uint8_t i = 0; i < attempts; i++) {
        st = mlx90614__attempt(dev, cmd, out);
        if (st == MLX90614_OK)
            return st;
        /* A failed transaction may leave a slave holding SDA low; a PEC
         * error is a corrupted but complete frame, so plain retry suffices. */
        if (st == MLX90614_ERR_BUS && dev->bus->recover != NULL) {
            dev->stats.recoveries++;
            (void)dev->bus->recover(dev->bus->ctx);
        }
    }
    return st;
}

static mlx90614_status mlx90614__read_temp(mlx90614 *dev, uint8_t cmd, float lo, float hi,
                                           float *celsius)
{
    if (celsius == NULL)
        return MLX90614_ERR_ARG;
    uint16_t raw = 0;
    mlx90614_status st = mlx90614_read_word(dev, cmd, &raw);
    if (st != MLX90614_OK)
        return st;
    /* Bit 15 means the sensor itself rejects the reading (Linux: -EIO).
     * Not retried: it is a well-formed answer, not a transport fault. */
    if (raw & MLX90614_ERROR_FLAG) {
        dev->stats.flag_errors++;
        return MLX90614_ERR_FLAG;
    }
    float t = mlx90614_raw_to_celsius(raw);
    if (!(t >= lo && t <= hi)) {
        dev->stats.range_errors++;
        return MLX90614_ERR_RANGE;
    }
    *celsius = t;
    return MLX90614_OK;
}

mlx90614_status mlx90614_read_ambient(mlx90614 *dev, float *celsius)
{
    return mlx90614__read_temp(dev, MLX90614_RAM_TA, MLX90614_TA_MIN, MLX90614_TA_MAX, celsius);
}

mlx90614_status mlx90614_read_object(mlx90614 *dev, float *celsius)
{
    return mlx90614__read_temp(dev, MLX90614_RAM_TOBJ1, MLX90614_TO_MIN, MLX90614_TO_MAX,
                               celsius);
}

mlx90614_status mlx90614_read_emissivity(mlx90614 *dev, float *emissivity)
{
    if (emissivity == NULL)
        return MLX90614_ERR_ARG;
    uint16_t raw = 0;
    mlx90614_status st = mlx90614_read_word(dev, MLX90614_EEPROM_EMISSIVITY, &raw);
    if (st != MLX90614_OK)
        return st;
    if (raw == 0)
        return MLX90614_ERR_RANGE; /* would zero every object reading */
    *emissivity = (float)raw / 65535.0f;
    return MLX90614_OK;
}

const char *mlx90614_status_str(mlx90614_status st)
{
    switch (st) {
    case MLX90614_OK: return "ok";
    case MLX90614_ERR_ARG: return "bad argument";
    case MLX90614_ERR_BUS: return "i2c bus error";
    case MLX90614_ERR_PEC: return "pec mismatch";
    case MLX90614_ERR_FLAG: return "sensor error flag";
    case MLX90614_ERR_RANGE: return "implausible value";
    }
    return "unknown";
}
