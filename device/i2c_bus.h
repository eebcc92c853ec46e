/* i2c_bus — the one seam between the sensor drivers and a real I2C bus.
 *
 * The ESP32 port implements it with i2c_master_transmit_receive (repeated
 * start); vigil-sim and the tests implement it with register models
 * (sim/models). Drivers never include platform headers.
 *
 * Ownership: the struct and ctx belong to the platform; drivers only borrow
 * them. Thread safety: one bus, one caller at a time. */
#ifndef VIGIL_I2C_BUS_H
#define VIGIL_I2C_BUS_H

#include <stddef.h>
#include <stdint.h>

typedef enum i2c_status {
    I2C_OK = 0,
    I2C_ENACK = -1,    /* no acknowledge from the addressed device */
    I2C_ETIMEOUT = -2, /* bus stuck or clock stretched too long */
    I2C_EBUS = -3,     /* arbitration lost or other bus error */
} i2c_status;

typedef struct i2c_bus {
    /* Writes wlen bytes to 7-bit address addr, then, if rlen > 0, a
     * repeated start and reads rlen bytes. Either part may be empty. */
    i2c_status (*write_read)(void *ctx, uint8_t addr, const uint8_t *w, size_t wlen,
                             uint8_t *r, size_t rlen);
    /* Frees a stuck bus (9 clock pulses + stop on hardware). May be NULL. */
    i2c_status (*recover)(void *ctx);
    /* Sleeps at least ms milliseconds (the sim may advance virtual time). */
    void (*delay_ms)(void *ctx, uint32_t ms);
    void *ctx;
} i2c_bus;

#endif
