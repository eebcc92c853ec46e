/* mlx90614 — driver for the Melexis MLX90614 IR thermometer (SMBus, 0x5A).
 *
 * Reads ambient (RAM 0x06) and object (RAM 0x07) temperature and the
 * emissivity (EEPROM 0x24) as SMBus "read word" transactions with a repeated
 * start and a PEC byte. Every read is checked for PEC, the error flag (bit 15)
 * and physical plausibility; transport and PEC failures are retried a bounded
 * number of times, with bus recovery after a bus error (ESP32 parts are known
 * to wedge the bus; see docs/DOMAIN.md §1).
 *
 * Ownership: the caller owns the mlx90614 struct; the i2c_bus is borrowed and
 * must outlive it. No allocation. Threading: not thread-safe; one caller per
 * bus at a time (the i2c_bus contract). Blocking: only inside bus calls. */
#ifndef VIGIL_MLX90614_H
#define VIGIL_MLX90614_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "i2c_bus.h"

#define MLX90614_ADDR_DEFAULT 0x5A
#define MLX90614_RAM_TA 0x06
#define MLX90614_RAM_TOBJ1 0x07
#define MLX90614_RAM_TOBJ2 0x08
#define MLX90614_EEPROM_EMISSIVITY 0x24
#define MLX90614_EEPROM_CONFIG 0x25
#define MLX90614_ERROR_FLAG 0x8000u
#define MLX90614_DEFAULT_ATTEMPTS 3

typedef enum mlx90614_status {
    MLX90614_OK = 0,
    MLX90614_ERR_ARG = -1,   /* NULL pointer or uninitialised device */
    MLX90614_ERR_BUS = -2,   /* NACK / timeout / bus error on every attempt */
    MLX90614_ERR_PEC = -3,   /* PEC mismatch on every attempt */
    MLX90614_ERR_FLAG = -4,  /* sensor set the error flag (bit 15) */
    MLX90614_ERR_RANGE = -5, /* converted value physically implausible */
} mlx90614_status;

/* Counters let the caller raise a technical alarm ("I2C/PEC failure") on a
 * rising trend even when retries hide the individual failures. */
typedef struct mlx90614_stats {
    uint32_t reads;      /* read_word calls */
    uint32_t bus_errors; /* failed transactions (each attempt) */
    uint32_t pec_errors; /* PEC mismatches (each attempt) */
    uint32_t flag_errors;
    uint32_t range_errors;
    uint32_t recoveries; /* bus->recover calls */
} mlx90614_stats;

typedef struct mlx90614 {
    const i2c_bus *bus; /* borrowed */
    uint8_t addr;       /* 7-bit */
    uint8_t attempts;   /* total attempts per read, >= 1 */
    mlx90614_stats stats;
} mlx90614;

/* Binds the driver to a bus. addr 0 means MLX90614_ADDR_DEFAULT. No bus
 * traffic. Returns MLX90614_ERR_ARG on NULL dev/bus. */
mlx90614_status mlx90614_init(mlx90614 *dev, const i2c_bus *bus, uint8_t addr);

/* SMBus PEC: CRC-8, poly 0x07, init 0, no reflection, no final XOR. */
uint8_t mlx90614_pec(const uint8_t *data, size_t len);

/* T[°C] = raw * 0.02 - 273.15 (raw without the error flag). */
float mlx90614_raw_to_celsius(uint16_t raw);

/* One checked SMBus word read of command cmd (RAM 0x00|a, EEPROM 0x20|a),
 * retried on bus/PEC errors. Does not interpret bit 15 (EEPROM words use it).
 * Returns OK, ERR_ARG, ERR_BUS or ERR_PEC (the error of the last attempt). */
mlx90614_status mlx90614_read_word(mlx90614 *dev, uint8_t cmd, uint16_t *out);

/* Ambient temperature (RAM 0x06), plausible range -40…125 °C.
 * Returns OK, ERR_ARG, ERR_BUS, ERR_PEC, ERR_FLAG or ERR_RANGE; *celsius is
 * written only on OK. */
mlx90614_status mlx90614_read_ambient(mlx90614 *dev, float *celsius);

/* Object temperature (RAM 0x07), plausible range -70…380 °C. Same codes. */
mlx90614_status mlx90614_read_object(mlx90614 *dev, float *celsius);

/* Emissivity from EEPROM 0x24: raw / 65535 (0xFFFF = 1.0). A value of 0 is
 * reported as ERR_RANGE. Returns OK, ERR_ARG, ERR_BUS, ERR_PEC, ERR_RANGE. */
mlx90614_status mlx90614_read_emissivity(mlx90614 *dev, float *emissivity);

const char *mlx90614_status_str(mlx90614_status st);

#endif
