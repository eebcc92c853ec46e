/* ppg_synth — deterministic synthetic red/IR photoplethysmogram (host only).
 *
 * docs/DOMAIN.md §2 recipe: ir = DC_ir(1 − PI·p(t)), red = DC_red(1 − R·PI·p(t)),
 * p = systolic Gaussian + 0.3 × dicrotic Gaussian per beat, beat period
 * 60/HR (optionally jittered), R from the target SpO2 by inverting the Maxim
 * curve. Impairments: white noise, 0.25 Hz multiplicative baseline wander,
 * a motion burst, finger off, red/IR decorrelation, HR variability. Noise
 * comes from a seeded xorshift PRNG, so a (config, seed) pair always yields
 * the same samples.
 *
 * Ownership: caller owns the struct. No allocation. Not thread-safe. */
#ifndef VIGIL_PPG_SYNTH_H
#define VIGIL_PPG_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ppg_synth_config {
    float fs_hz;    /* output rate (25 for direct PPG tests, 100 inside the model) */
    float hr_bpm;   /* mean heart rate */
    float spo2_pct; /* target; ≥ 99.96 maps to the curve's vertex */
    float pi;       /* perfusion index as a fraction (0.01 = 1 %) */
    float dc_ir, dc_red;
    uint32_t seed;
    float phase;      /* initial beat phase 0…1 */
    /* Impairments; amplitudes are relative to the IR pulse amplitude
     * DC_ir·PI (so 1.0 = as large as the pulse). */
    float noise_rel;  /* white noise σ per channel, independent */
    float wander_rel; /* baseline wander amplitude (multiplicative, both channels) */
    float wander_hz;  /* default 0.25 */
    float motion_rel; /* motion burst amplitude */
    float motion_start_s, motion_len_s;
    float decorrelation; /* 0…1: share of the red pulse replaced by an unrelated wave */
    float hrv_rel;       /* σ of beat-to-beat period, relative */
    bool finger_off;     /* DC drops to finger_off_dc, no pulse */
    float finger_off_dc;
} ppg_synth_config;

typedef struct ppg_synth {
    ppg_synth_config cfg;
    uint32_t rng;
    double t;          /* seconds since start */
    double onset[3];   /* previous, current, next beat onsets (s) */
    double period[3];  /* their periods (s) */
    float r;           /* ratio of ratios */
    float mot_f[3], mot_ph[3], mot_gr[3], mot_phr[3]; /* motion components */
    float dec_f[3], dec_ph[3];                        /* decorrelating wave */
} ppg_synth;

/* Typical adult: 25 sps, 75 bpm, 97 %, PI 1 %, DC 100000/80000, no
 * impairments, seed 1. */
void ppg_synth_default_config(ppg_synth_config *cfg);

void ppg_synth_init(ppg_synth *s, const ppg_synth_config *cfg);

/* Produces the next sample (18-bit counts) and advances time by 1/fs. */
void ppg_synth_next(ppg_synth *s, uint32_t *red, uint32_t *ir);

/* R for a target SpO2 by inverting −45.060R² + 30.354R + 94.845. */
float ppg_synth_r_from_spo2(float spo2_pct);

/* Deterministic PRNG helpers (exposed for other models). */
uint32_t ppg_synth_rand(uint32_t *state);
float ppg_synth_gauss(uint32_t *state);

#endif
