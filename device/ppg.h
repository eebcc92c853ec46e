/* ppg — heart rate and SpO2 from MAX30102 red/IR samples.
 *
 * Feed every FIFO sample with ppg_push() (25 sps after the chip's 4-sample
 * averaging) and call ppg_compute() whenever a result is wanted (e.g. once a
 * second). Each computation looks at the last `window` samples (default 128 =
 * 5.12 s) and returns numbers only when the window passes every quality gate;
 * otherwise the *_valid flag is false, the value is NAN and *_reason says why.
 * An invalid window never yields "HR 0".
 *
 * Algorithm (ours, not Maxim's spo2_algorithm.cpp):
 *  1. DC = window mean. No finger if IR DC < finger_dc_min or the ADC clips.
 *  2. [1 2 1]/4 smoothing, then high-pass by subtracting a centred 1 s
 *     moving average (removes DC and most respiratory baseline wander).
 *  3. Gates: perfusion index, Pearson(red, IR) ≥ min_corr, noise estimate
 *     (second difference) against the pulse amplitude.
 *  4. Beats = peaks of the inverted IR with topographic prominence ≥
 *     peak_rel × the largest prominence (local, so immune to slow baseline),
 *     refractory 0.27 s, positions refined by parabolic interpolation.
 *  5. Intervals must be within ±max_interval_dev of their median (else
 *     MOTION: motion, missed beats and arrhythmia all land here), beats must
 *     cover the window, HR = 60·fs·(n−1)/(t_last − t_first) — the mean of the
 *     accepted intervals, which with sub-sample peak positions is far more
 *     precise than the median at 25 sps (1 sample = 21 bpm at 180 bpm).
 *  6. SpO2: per beat and per channel, trough at the channel's OWN minimum
 *     (the vendor code uses the red index for IR), feet = maxima between
 *     consecutive troughs, AC = line joining the feet minus the trough,
 *     DC = that line at the trough. R = median over beats of
 *     (AC_red/DC_red)/(AC_ir/DC_ir), AC on the high-passed signals (same
 *     filter on both channels, so the ratio survives, wander does not),
 *     DC = local 1 s mean. SpO2 is MOTION-invalid when a beat's R is more
 *     than 2·max_r_spread from the median, or the median disagrees by more
 *     than max_r_spread with the least-squares slope of red on IR over the
 *     window (a whole-window ratio of ratios). The R used for SpO2 is the
 *     mean of the two (they see noise differently; on 3–4 beats the mean
 *     is steadier); r_ratio reports it, r_fit the fit alone.
 *     SpO2 = −45.060R² + 30.354R + 94.845: the Maxim reference curve, NOT
 *     calibrated for Vigil's optics. Valid for 0.02 < R < 1.84 and, because
 *     the curve is meaningless below it, SpO2 ≥ 70 %; R below the curve's
 *     vertex (0.337, 99.96 %) saturates at 100 %.
 *
 * Ownership: the caller owns ppg_state (≈3.6 KB: keep it static on the ESP32).
 * No allocation, no platform headers. Threading: not thread-safe; one
 * producer/consumer per state. */
#ifndef VIGIL_PPG_H
#define VIGIL_PPG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PPG_MAX_WINDOW 128
#define PPG_MIN_WINDOW 64
#define PPG_MAX_PEAKS 48

typedef enum ppg_reason {
    PPG_OK = 0,
    PPG_NOT_READY,    /* window not yet full (after init/reset) */
    PPG_NO_FINGER,    /* IR DC below threshold or ADC saturated */
    PPG_WEAK_SIGNAL,  /* perfusion < pi_min, noise too high, too few beats */
    PPG_MOTION,       /* irregular intervals, uncovered window, PI > pi_max,
                         inconsistent per-beat R */
    PPG_DECORRELATED, /* Pearson(red, IR) < min_corr */
    PPG_OUT_OF_RANGE, /* HR outside hr_min…hr_max, R outside r_min…r_max,
                         SpO2 below spo2_min */
} ppg_reason;

typedef struct ppg_config {
    float fs_hz;            /* effective sample rate, default 25 */
    uint16_t window;        /* samples analysed, PPG_MIN_WINDOW…PPG_MAX_WINDOW */
    uint32_t finger_dc_min; /* IR counts, default 50000 (SparkFun) */
    uint32_t adc_sat;       /* counts regarded as clipped, default 262000 */
    float pi_min_pct;       /* perfusion index gate, default 0.1 % */
    float pi_max_pct;       /* default 10 % */
    float min_corr;         /* Pearson red/IR, default 0.8 */
    float min_snr;          /* pulse amplitude / noise σ, default 6.5 */
    float peak_rel;         /* prominence relative to the largest, 0.45 */
    float max_interval_dev; /* relative, default 0.20 */
    float max_r_spread;     /* relative; per-beat R within 2×, window fit
                               within 1× of the median R. Default 0.10 */
    float hr_min, hr_max;   /* bpm, default 40…180 */
    float r_min, r_max;     /* default 0.02…1.84 */
    float spo2_min;         /* %, default 70 */
} ppg_config;

typedef struct ppg_result {
    bool hr_valid;
    float hr_bpm; /* NAN unless hr_valid */
    ppg_reason hr_reason;
    bool spo2_valid; /* implies hr_valid */
    float spo2_pct;  /* NAN unless spo2_valid */
    ppg_reason spo2_reason;
    /* Diagnostics, filled as far as the computation got (NAN otherwise). */
    float r_ratio; /* R used: mean of per-beat median and r_fit */
    float r_fit;   /* whole-window least-squares ratio of ratios */
    float perfusion_pct; /* AC_ir/DC_ir × 100 */
    float correlation;   /* Pearson(red, IR) after high-pass */
    float snr;
    float dc_ir, dc_red;
    uint8_t beats; /* peaks detected */
} ppg_result;

typedef struct ppg_state {
    ppg_config cfg;
    uint32_t red[PPG_MAX_WINDOW]; /* ring buffer, raw counts */
    uint32_t ir[PPG_MAX_WINDOW];
    uint16_t head;  /* next write position */
    uint16_t count; /* valid samples, ≤ cfg.window */
    /* Scratch for ppg_compute (kept here so nothing large is on the stack). */
    float sm_red[PPG_MAX_WINDOW], sm_ir[PPG_MAX_WINDOW];
    float hp_red[PPG_MAX_WINDOW], hp_ir[PPG_MAX_WINDOW];
    float work[PPG_MAX_WINDOW];
} ppg_state;

/* Fills cfg with the defaults above. */
void ppg_default_config(ppg_config *cfg);

/* Initialises st with cfg (NULL = defaults). Returns false, leaving st
 * unusable, when cfg is out of bounds (rejected, not clamped). */
bool ppg_init(ppg_state *st, const ppg_config *cfg);

/* Forgets all samples: call after finger-off, FIFO overflow (lost samples)
 * or any other gap, so no window straddles a discontinuity. */
void ppg_reset(ppg_state *st);

/* Appends one sample (oldest drops out once the window is full). */
void ppg_push(ppg_state *st, uint32_t red, uint32_t ir);

/* Analyses the current window. Always fills *out. */
void ppg_compute(ppg_state *st, ppg_result *out);

/* The Maxim curve, clamped to ≤ 100 and saturating at 100 below its vertex.
 * No validity checks. */
float ppg_spo2_from_r(float r);

const char *ppg_reason_str(ppg_reason r);

#endif
