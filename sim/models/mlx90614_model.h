/* mlx90614_model — register-level model of the MLX90614 at 0x5A (host only).
 *
 * Answers SMBus read-word transactions (1 command byte written, 3 bytes read:
 * LSB, MSB, PEC) from truth temperatures in °C, with the PEC the real part
 * computes. Fault knobs reproduce the field failures the driver must survive:
 * corrupted PEC, error flag, NACK, and a wedged bus that only recover()
 * frees (which then also breaks every other device on that bus — see
 * sensor_bus).
 *
 * Ownership: caller owns the struct. Not thread-safe. */
#ifndef VIGIL_MLX90614_MODEL_H
#define VIGIL_MLX90614_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "i2c_bus.h"

typedef struct mlx_model {
    uint8_t addr;
    float ta_c, tobj_c;      /* truth */
    uint16_t emissivity_raw; /* EEPROM 0x24, 0xFFFF = 1.0 */
    uint16_t config_raw;     /* EEPROM 0x25 */
    /* Fault knobs. */
    uint32_t corrupt_pec_reads; /* next N reads return a wrong PEC */
    bool error_flag;            /* set bit 15 in Ta/Tobj words while true */
    uint32_t nack_reads;        /* next N transactions are NACKed */
    bool stuck;                 /* ETIMEOUT on everything until recover() */
    /* Observations. */
    uint32_t transactions, recovers;
    uint8_t last_cmd;
} mlx_model;

/* Ta 25 °C, Tobj 36.6 °C, emissivity 1.0, no faults. */
void mlx_model_init(mlx_model *m);
void mlx_model_set_temps(mlx_model *m, float ta_c, float tobj_c);

/* Raw RAM word for a temperature (what the sensor would report). */
uint16_t mlx_model_raw_from_celsius(float c);

/* i2c_bus callbacks (ctx = mlx_model*). */
i2c_status mlx_model_write_read(void *ctx, uint8_t addr, const uint8_t *w, size_t wlen,
                                uint8_t *r, size_t rlen);
i2c_status mlx_model_recover(void *ctx);

/* Fills bus with this model alone (delay_ms is a no-op). */
void mlx_model_bus(mlx_model *m, i2c_bus *bus);

#endif
