/* max30102_model — register-level model of the MAX30102 at 0x57 (host only).
 *
 * Registers with auto-increment (except FIFO_DATA, whose burst reads pop
 * samples), soft reset (RESET bit self-clears after reset_busy_ms of virtual
 * time), PART_ID 0x15, a 32-sample FIFO with WR/RD pointers and an overflow
 * counter (saturating at 31, cleared when a sample is popped; with ROLLOVER
 * the oldest sample is overwritten, without it the new one is dropped), and
 * the die-temperature handshake. Samples are produced only as virtual time
 * advances (max_model_advance or the bus delay_ms), at the rate SPO2_CONFIG
 * selects, averaged SMP_AVE at a time as the chip does, in HR or SpO2 mode
 * and not in shutdown. The signal comes from a callback or, by default, from
 * the built-in ppg_synth. LED currents do not scale the signal.
 *
 * Ownership: caller owns the struct (≈1 KB + synth). Not thread-safe. */
#ifndef VIGIL_MAX30102_MODEL_H
#define VIGIL_MAX30102_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "i2c_bus.h"
#include "ppg_synth.h"

/* Produces one raw ADC sample (before on-chip averaging) at virtual time
 * t_s. Counts are clamped to 18 bits by the model. */
typedef void (*max_model_source_fn)(void *ctx, double t_s, uint32_t *red, uint32_t *ir);

typedef struct max_model {
    uint8_t addr;
    uint8_t regs[256];
    uint32_t fifo_red[32], fifo_ir[32];
    uint8_t fifo_count; /* 0…32; disambiguates WR == RD */
    /* Virtual time. */
    uint64_t now_us;
    uint64_t next_sample_us; /* next raw ADC conversion */
    uint32_t reset_busy_ms;  /* how long RESET stays set; 0xFFFFFFFF = stuck */
    uint64_t reset_done_us;
    /* Averaging accumulator. */
    uint64_t acc_red, acc_ir;
    uint32_t acc_n;
    /* Signal. */
    max_model_source_fn source; /* NULL: built-in synth */
    void *source_ctx;
    ppg_synth synth;
    float die_temp_c;
    uint8_t part_id; /* 0x15; change to test a wrong part */
    /* Fault knobs / observations. */
    uint32_t nack_transactions; /* next N transactions are NACKed */
    uint32_t samples_pushed, samples_dropped;
} max_model;

/* Powers the model on with POR register values. synth_cfg NULL = synth
 * defaults; its fs_hz is overridden by the sample rate in use. */
void max_model_init(max_model *m, const ppg_synth_config *synth_cfg);

/* Replaces the synth's configuration (restarts it at the current time). */
void max_model_set_synth(max_model *m, const ppg_synth_config *synth_cfg);

/* Uses fn instead of the synth (fn NULL: back to the synth). */
void max_model_set_source(max_model *m, max_model_source_fn fn, void *ctx);

/* Advances virtual time, producing the samples the chip would. */
void max_model_advance(max_model *m, uint32_t ms);

/* Pushes one sample straight into the FIFO (tests of the FIFO format). */
void max_model_push_sample(max_model *m, uint32_t red, uint32_t ir);

/* Samples currently held. */
unsigned max_model_fifo_level(const max_model *m);

/* i2c_bus callbacks (ctx = max_model*). */
i2c_status max_model_write_read(void *ctx, uint8_t addr, const uint8_t *w, size_t wlen,
                                uint8_t *r, size_t rlen);

/* Fills bus with this model alone; delay_ms advances virtual time. */
void max_model_bus(max_model *m, i2c_bus *bus);

#endif
