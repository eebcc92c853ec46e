/* sensor_bus — see sensor_bus.h. */
#include "sensor_bus.h"

#include <string.h>

static i2c_status sensor_bus__write_read(void *ctx, uint8_t addr, const uint8_t *w, size_t wlen,
                                         uint8_t *r, size_t rlen)
{
    sensor_bus *sb = ctx;
    sb->transactions++;
    if (sb->mlx != NULL && sb->mlx->stuck)
        return I2C_ETIMEOUT; /* SDA held low: nobody gets through */
    if (sb->mlx != NULL && (addr == sb->mlx->addr || addr == 0x00))
        return mlx_model_write_read(sb->mlx, addr, w, wlen, r, rlen);
    if (sb->max != NULL && addr == sb->max->addr)
        return max_model_write_read(sb->max, addr, w, wlen, r, rlen);
    return I2C_ENACK;
}

static i2c_status sensor_bus__recover(void *ctx)
{
    sensor_bus *sb = ctx;
    sb->recovers++;
    if (sb->mlx != NULL)
        (void)mlx_model_recover(sb->mlx);
    return I2C_OK;
}

void sensor_bus_advance(sensor_bus *sb, uint32_t ms)
{
    sb->now_ms += ms;
    if (sb->max != NULL)
        max_model_advance(sb->max, ms);
}

static void sensor_bus__delay(void *ctx, uint32_t ms)
{
    sensor_bus_advance(ctx, ms);
}

void sensor_bus_init(sensor_bus *sb, mlx_model *mlx, max_model *max)
{
    memset(sb, 0, sizeof(*sb));
    sb->mlx = mlx;
    sb->max = max;
    sb->bus.write_read = sensor_bus__write_read;
    sb->bus.recover = sensor_bus__recover;
    sb->bus.delay_ms = sensor_bus__delay;
    sb->bus.ctx = sb;
}

const i2c_bus *sensor_bus_i2c(sensor_bus *sb)
{
    return &sb->bus;
}
