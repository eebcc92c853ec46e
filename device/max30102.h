/* max30102 — driver for the Maxim MAX30102 red/IR pulse oximeter (I2C, 0x57).
 *
 * Brings the part up in SpO2 mode with the Maxim reference settings
 * (FIFO_CONFIG 0x4F: average 4, ROLLOVER off (bit 4 = 0: when the FIFO is
 * full new samples are dropped and counted in OVF_COUNTER), A_FULL=15
 * → 25 sps effective;
 * MODE 0x03; SPO2_CONFIG 0x27: 4096 nA, 100 sps, 411 µs; LED PA 0x24) and
 * drains the 32-sample FIFO as 18-bit red/IR pairs. Samples the host failed
 * to drain in time are reported through the overflow counter so the caller
 * can restart its PPG window instead of stitching a gap.
 *
 * Ownership: the caller owns the max30102 struct; the i2c_bus is borrowed.
 * No allocation. Threading: not thread-safe; one caller per bus at a time.
 * Blocking: bus calls plus bounded delay_ms polls (reset, die temperature). */
#ifndef VIGIL_MAX30102_H
#define VIGIL_MAX30102_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "i2c_bus.h"

#define MAX30102_ADDR 0x57
#define MAX30102_PART_ID 0x15
#define MAX30102_FIFO_DEPTH 32

/* Registers (docs/DOMAIN.md §2). */
#define MAX30102_REG_INT_STATUS1 0x00
#define MAX30102_REG_INT_STATUS2 0x01
#define MAX30102_REG_INT_ENABLE1 0x02
#define MAX30102_REG_INT_ENABLE2 0x03
#define MAX30102_REG_FIFO_WR_PTR 0x04
#define MAX30102_REG_OVF_COUNTER 0x05
#define MAX30102_REG_FIFO_RD_PTR 0x06
#define MAX30102_REG_FIFO_DATA 0x07
#define MAX30102_REG_FIFO_CONFIG 0x08
#define MAX30102_REG_MODE_CONFIG 0x09
#define MAX30102_REG_SPO2_CONFIG 0x0A
#define MAX30102_REG_LED1_PA 0x0C /* red */
#define MAX30102_REG_LED2_PA 0x0D /* IR */
#define MAX30102_REG_TEMP_INT 0x1F
#define MAX30102_REG_TEMP_FRAC 0x20
#define MAX30102_REG_TEMP_CONFIG 0x21
#define MAX30102_REG_REV_ID 0xFE
#define MAX30102_REG_PART_ID 0xFF

#define MAX30102_MODE_SHDN 0x80
#define MAX30102_MODE_RESET 0x40
#define MAX30102_MODE_HR 0x02
#define MAX30102_MODE_SPO2 0x03

#define MAX30102_FIFO_CONFIG_REF 0x4F /* SMP_AVE=4, no ROLLOVER, A_FULL=15 */
#define MAX30102_SPO2_CONFIG_REF 0x27 /* 4096 nA, 100 sps, 411 µs */
#define MAX30102_LED_PA_REF 0x24      /* ≈7 mA */
#define MAX30102_SAMPLE_MASK 0x3FFFFu

/* Polls before giving up on the RESET / TEMP_EN bits (1 ms apart). */
#define MAX30102_RESET_POLLS 20
#define MAX30102_TEMP_POLLS 50

typedef enum max30102_status {
    MAX30102_OK = 0,
    MAX30102_ERR_ARG = -1,     /* NULL pointer, zero capacity */
    MAX30102_ERR_BUS = -2,     /* NACK / timeout / bus error */
    MAX30102_ERR_PART_ID = -3, /* PART_ID is not 0x15 (wrong or absent chip) */
    MAX30102_ERR_TIMEOUT = -4, /* RESET or TEMP_EN bit never cleared */
} max30102_status;

typedef struct max30102_sample {
    uint32_t red; /* 18-bit ADC counts */
    uint32_t ir;
} max30102_sample;

typedef struct max30102 {
    const i2c_bus *bus; /* borrowed */
    uint8_t addr;
    uint8_t rev_id;
    uint8_t led_pa;
    uint32_t samples_read; /* since init */
    uint32_t samples_lost; /* sum of overflow counts since init (lower bound) */
} max30102;

/* Binds, resets, checks PART_ID, configures SpO2 mode (led_pa 0 means
 * MAX30102_LED_PA_REF) and clears the FIFO pointers.
 * Returns OK, ERR_ARG, ERR_BUS, ERR_PART_ID or ERR_TIMEOUT. */
max30102_status max30102_init(max30102 *dev, const i2c_bus *bus, uint8_t led_pa);

/* Soft reset: MODE = 0x40, then polls until the bit self-clears (bounded).
 * Returns OK, ERR_ARG, ERR_BUS or ERR_TIMEOUT. */
max30102_status max30102_reset(max30102 *dev);

/* Reads PART_ID (and REV_ID into dev->rev_id). *part_id may be NULL.
 * Returns OK, ERR_ARG, ERR_BUS, ERR_PART_ID. */
max30102_status max30102_check_part_id(max30102 *dev, uint8_t *part_id);

/* Writes the reference SpO2 configuration. Returns OK, ERR_ARG, ERR_BUS. */
max30102_status max30102_configure_spo2(max30102 *dev, uint8_t led_pa);

/* Zeroes WR_PTR, OVF_COUNTER and RD_PTR. Returns OK, ERR_ARG, ERR_BUS. */
max30102_status max30102_fifo_reset(max30102 *dev);

/* Drains up to cap samples, oldest first. *n_read receives the count;
 * *n_lost (may be NULL) the samples the chip dropped since the previous call
 * (OVF_COUNTER, saturates at 31 — treat any non-zero as "gap in the
 * stream"). With cap < available the rest stays in the FIFO for the next
 * call. Returns OK, ERR_ARG or ERR_BUS (*n_read then holds what was read). */
max30102_status max30102_read_fifo(max30102 *dev, max30102_sample *out, size_t cap,
                                   size_t *n_read, uint32_t *n_lost);

/* Die temperature (°C, chip not patient). Returns OK, ERR_ARG, ERR_BUS,
 * ERR_TIMEOUT. */
max30102_status max30102_read_die_temp(max30102 *dev, float *celsius);

/* Enters (on=true) or leaves low-power shutdown, keeping the mode bits. */
max30102_status max30102_shutdown(max30102 *dev, bool on);

const char *max30102_status_str(max30102_status st);

#endif
