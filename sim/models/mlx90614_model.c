/* mlx90614_model — see mlx90614_model.h. */
#include "mlx90614_model.h"

#include <math.h>
#include <string.h>

#include "mlx90614.h"

void mlx_model_init(mlx_model *m)
{
    memset(m, 0, sizeof(*m));
    m->addr = MLX90614_ADDR_DEFAULT;
    m->ta_c = 25.0f;
    m->tobj_c = 36.6f;
    m->emissivity_raw = 0xFFFF;
    m->config_raw = 0x9FB4; /* a factory default seen on real parts */
}

void mlx_model_set_temps(mlx_model *m, float ta_c, float tobj_c)
{
    m->ta_c = ta_c;
    m->tobj_c = tobj_c;
}

uint16_t mlx_model_raw_from_celsius(float c)
{
    double raw = floor(((double)c + 273.15) / 0.02 + 0.5);
    if (raw < 0.0)
        raw = 0.0;
    if (raw > 0x7FFF)
        raw = 0x7FFF;
    return (uint16_t)raw;
}

static i2c_status mlx_model__word(mlx_model *m, uint8_t cmd, uint16_t *word)
{
    switch (cmd) {
    case MLX90614_RAM_TA:
        *word = mlx_model_raw_from_celsius(m->ta_c);
        break;
    case MLX90614_RAM_TOBJ1:
    case MLX90614_RAM_TOBJ2:
        *word = mlx_model_raw_from_celsius(m->tobj_c);
        break;
    case MLX90614_EEPROM_EMISSIVITY:
        *word = m->emissivity_raw;
        return I2C_OK;
    case MLX90614_EEPROM_CONFIG:
        *word = m->config_raw;
        return I2C_OK;
    default:
        if (cmd <= 0x3F) { /* other RAM/EEPROM cells: zero */
            *word = 0;
            return I2C_OK;
        }
        return I2C_ENACK; /* unknown command */
    }
    if (m->error_flag)
        *word |= MLX90614_ERROR_FLAG;
    return I2C_OK;
}

i2c_status mlx_model_write_read(void *ctx, uint8_t addr, const uint8_t *w, size_t wlen,
                                uint8_t *r, size_t rlen)
{
    mlx_model *m = ctx;
    m->transactions++;
    if (m->stuck)
        return I2C_ETIMEOUT;
    if (addr != m->addr && addr != 0x00) /* 0x00 is the SMBus broadcast */
        return I2C_ENACK;
    if (m->nack_reads > 0) {
        m->nack_reads--;
        return I2C_ENACK;
    }
    if (wlen < 1)
        return I2C_ENACK;
    m->last_cmd = w[0];
    if (rlen == 0)
        return I2C_OK; /* writes (EEPROM) accepted and ignored */
    uint16_t word = 0;
    i2c_status st = mlx_model__word(m, w[0], &word);
    if (st != I2C_OK)
        return st;
    /* PEC covers the address as sent, so a broadcast read uses 0x00. */
    uint8_t frame[5] = {(uint8_t)(addr << 1), w[0], (uint8_t)((addr << 1) | 1u),
                        (uint8_t)(word & 0xFF), (uint8_t)(word >> 8)};
    uint8_t out[3] = {frame[3], frame[4], mlx90614_pec(frame, sizeof frame)};
    if (m->corrupt_pec_reads > 0) {
        m->corrupt_pec_reads--;
        out[2] ^= 0x5A;
    }
    for (size_t i = 0; i < rlen; i++)
        r[i] = i < sizeof out ? out[i] : 0xFF;
    return I2C_OK;
}

i2c_status mlx_model_recover(void *ctx)
{
    mlx_model *m = ctx;
    m->recovers++;
    m->stuck = false;
    return I2C_OK;
}

static void mlx_model__delay(void *ctx, uint32_t ms)
{
    (void)ctx;
    (void)ms;
}

void mlx_model_bus(mlx_model *m, i2c_bus *bus)
{
    bus->write_read = mlx_model_write_read;
    bus->recover = mlx_model_recover;
    bus->delay_ms = mlx_model__delay;
    bus->ctx = m;
}
