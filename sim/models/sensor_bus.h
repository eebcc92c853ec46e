/* sensor_bus — one simulated I2C bus carrying the MLX90614 and MAX30102
 * models, dispatched by address, so the real drivers run unmodified against
 * both sensors (vigil-sim and the device tests).
 *
 * A stuck MLX (mlx_model.stuck) holds SDA low and therefore times out every
 * transaction on the bus until recover(). delay_ms advances the virtual
 * clock of the MAX30102 model (the MLX model is timeless).
 *
 * Ownership: the caller owns the sensor_bus and both models (either may be
 * NULL: that address then NACKs). Not thread-safe. */
#ifndef VIGIL_SENSOR_BUS_H
#define VIGIL_SENSOR_BUS_H

#include <stdint.h>

#include "i2c_bus.h"
#include "max30102_model.h"
#include "mlx90614_model.h"

typedef struct sensor_bus {
    mlx_model *mlx;
    max_model *max;
    uint64_t now_ms; /* virtual time advanced through this bus */
    uint32_t transactions, recovers;
    i2c_bus bus; /* hand &bus to the drivers */
} sensor_bus;

void sensor_bus_init(sensor_bus *sb, mlx_model *mlx, max_model *max);

/* The i2c_bus the drivers borrow (points into sb). */
const i2c_bus *sensor_bus_i2c(sensor_bus *sb);

/* Advances virtual time by ms (same as the bus delay_ms). */
void sensor_bus_advance(sensor_bus *sb, uint32_t ms);

#endif
