/* ppg — see ppg.h for the algorithm and its contract. */
#include "ppg.h"

#include <math.h>
#include <string.h>

/* Maxim reference curve (spo2_algorithm.cpp table approximated by this
 * quadratic). Uncalibrated for Vigil's optics: a bench calibration against a
 * reference oximeter must replace these three numbers before clinical use. */
#define PPG_CURVE_A (-45.060f)
#define PPG_CURVE_B 30.354f
#define PPG_CURVE_C 94.845f
#define PPG_R_VERTEX (PPG_CURVE_B / (-2.0f * PPG_CURVE_A))

void ppg_default_config(ppg_config *cfg)
{
    if (cfg == NULL)
        return;
    cfg->fs_hz = 25.0f;
    cfg->window = 128;
    cfg->finger_dc_min = 50000;
    cfg->adc_sat = 262000;
    cfg->pi_min_pct = 0.1f;
    cfg->pi_max_pct = 10.0f;
    cfg->min_corr = 0.8f;
    cfg->min_snr = 6.5f;
    cfg->peak_rel = 0.45f;
    cfg->max_interval_dev = 0.20f;
    cfg->max_r_spread = 0.10f;
    cfg->hr_min = 40.0f;
    cfg->hr_max = 180.0f;
    cfg->r_min = 0.02f;
    cfg->r_max = 1.84f;
    cfg->spo2_min = 70.0f;
}

static bool ppg__config_ok(const ppg_config *c)
{
    return c->fs_hz >= 10.0f && c->fs_hz <= 100.0f && c->window >= PPG_MIN_WINDOW &&
           c->window <= PPG_MAX_WINDOW && c->pi_min_pct >= 0.0f &&
           c->pi_max_pct > c->pi_min_pct && c->min_corr >= -1.0f && c->min_corr <= 1.0f &&
           c->min_snr >= 0.0f && c->peak_rel > 0.0f && c->peak_rel < 1.0f &&
           c->max_interval_dev > 0.0f && c->max_r_spread > 0.0f && c->hr_min > 0.0f &&
           c->hr_max > c->hr_min && c->r_max > c->r_min;
}

bool ppg_init(ppg_state *st, const ppg_config *cfg)
{
    if (st == NULL)
        return false;
    memset(st, 0, sizeof(*st));
    if (cfg != NULL)
        st->cfg = *cfg;
    else
        ppg_default_config(&st->cfg);
    if (!ppg__config_ok(&st->cfg)) {
        st->cfg.window = 0; /* ppg_push/compute become no-ops */
        return false;
    }
    return true;
}

void ppg_reset(ppg_state *st)
{
    if (st == NULL)
        return;
    st->head = 0;
    st->count = 0;
}

void ppg_push(ppg_state *st, uint32_t red, uint32_t ir)
{
    if (st == NULL || st->cfg.window == 0)
        return;
    st->red[st->head] = red;
    st->ir[st->head] = ir;
    st->head = (uint16_t)((st->head + 1u) % st->cfg.window);
    if (st->count < st->cfg.window)
        st->count++;
}

float ppg_spo2_from_r(float r)
{
    if (r <= PPG_R_VERTEX)
        return 100.0f; /* the quadratic turns down again below its vertex */
    float s = PPG_CURVE_A * r * r + PPG_CURVE_B * r + PPG_CURVE_C;
    return s > 100.0f ? 100.0f : s;
}

const char *ppg_reason_str(ppg_reason r)
{
    switch (r) {
    case PPG_OK: return "ok";
    case PPG_NOT_READY: return "not ready";
    case PPG_NO_FINGER: return "no finger";
    case PPG_WEAK_SIGNAL: return "weak signal";
    case PPG_MOTION: return "motion";
    case PPG_DECORRELATED: return "decorrelated";
    case PPG_OUT_OF_RANGE: return "out of range";
    }
    return "unknown";
}

/* Median of n ≤ PPG_MAX_PEAKS values (copy + insertion sort). */
static float ppg__median(const float *v, int n)
{
    float t[PPG_MAX_PEAKS];
    if (n <= 0)
        return NAN;
    if (n > PPG_MAX_PEAKS)
        n = PPG_MAX_PEAKS;
    for (int i = 0; i < n; i++) {
        float x = v[i];
        int j = i;
        for (; j > 0 && t[j - 1] > x; j--)
            t[j] = t[j - 1];
        t[j] = x;
    }
    return (n & 1) ? t[n / 2] : 0.5f * (t[n / 2 - 1] + t[n / 2]);
}

/* [1 2 1]/4 smoothing with replicated edges. */
static void ppg__smooth(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        float a = x[i > 0 ? i - 1 : 0], b = x[i < n - 1 ? i + 1 : n - 1];
        y[i] = 0.25f * (a + 2.0f * x[i] + b);
    }
}

/* y = x − centred moving average of length 2h+1 (truncated at the edges). */
static void ppg__highpass(const float *x, float *y, int n, int h)
{
    for (int i = 0; i < n; i++) {
        int lo = i - h < 0 ? 0 : i - h, hi = i + h > n - 1 ? n - 1 : i + h;
        float s = 0.0f;
        for (int j = lo; j <= hi; j++)
            s += x[j];
        y[i] = x[i] - s / (float)(hi - lo + 1);
    }
}

static float ppg__pearson(const float *a, const float *b, int n)
{
    float ma = 0, mb = 0;
    for (int i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (float)n;
    mb /= (float)n;
    float sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        float da = a[i] - ma, db = b[i] - mb;
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    if (saa <= 0.0f || sbb <= 0.0f)
        return 0.0f;
    return sab / sqrtf(saa * sbb);
}

/* Topographic prominence of the local maximum s[i]: its height above the
 * higher of the two lowest points reachable before meeting higher ground. */
static float ppg__prominence(const float *s, int n, int i)
{
    float lmin = s[i], rmin = s[i];
    for (int j = i - 1; j >= 0 && s[j] <= s[i]; j--)
        if (s[j] < lmin)
            lmin = s[j];
    for (int j = i + 1; j < n && s[j] <= s[i]; j++)
        if (s[j] < rmin)
            rmin = s[j];
    return s[i] - (lmin > rmin ? lmin : rmin);
}

typedef struct ppg__peak {
    int idx;
    float pos; /* sub-sample position */
    float prom;
} ppg__peak;

/* Finds beats as prominent maxima of s; returns their count, sorted by
 * position. */
static int ppg__find_peaks(const float *s, int n, float rel, int min_dist, ppg__peak *out)
{
    ppg__peak cand[PPG_MAX_WINDOW / 2];
    int nc = 0;
    float pmax = 0.0f;
    for (int i = 1; i < n - 1 && nc < PPG_MAX_WINDOW / 2; i++) {
        if (s[i] > s[i - 1] && s[i] >= s[i + 1]) {
            cand[nc].idx = i;
            cand[nc].prom = ppg__prominence(s, n, i);
            if (cand[nc].prom > pmax)
                pmax = cand[nc].prom;
            nc++;
        }
    }
    if (pmax <= 0.0f)
        return 0;
    bool used[PPG_MAX_WINDOW / 2] = {false};
    int np = 0;
    /* Greedy by prominence, so a dicrotic bump never displaces its beat. */
    for (;;) {
        int best = -1;
        for (int k = 0; k < nc; k++)
            if (!used[k] && cand[k].prom >= rel * pmax &&
                (best < 0 || cand[k].prom > cand[best].prom))
                best = k;
        if (best < 0 || np >= PPG_MAX_PEAKS)
            break;
        used[best] = true;
        out[np++] = cand[best];
        for (int k = 0; k < nc; k++) {
            int d = cand[k].idx - cand[best].idx;
            if (d < 0)
                d = -d;
            if (d < min_dist)
                used[k] = true;
        }
    }
    /* Sort by index, then refine with a parabola through the three samples. */
    for (int i = 1; i < np; i++) {
        ppg__peak p = out[i];
        int j = i;
        for (; j > 0 && out[j - 1].idx > p.idx; j--)
            out[j] = out[j - 1];
        out[j] = p;
    }
    for (int k = 0; k < np; k++) {
        int i = out[k].idx;
        float a = s[i - 1], b = s[i], c = s[i + 1];
        float den = a - 2.0f * b + c;
        float d = den < 0.0f ? 0.5f * (a - c) / den : 0.0f;
        if (d > 0.5f)
            d = 0.5f;
        if (d < -0.5f)
            d = -0.5f;
        out[k].pos = (float)i + d;
    }
    return np;
}

static int ppg__argmin(const float *x, int lo, int hi)
{
    int best = lo;
    for (int i = lo + 1; i <= hi; i++)
        if (x[i] < x[best])
            best = i;
    return best;
}

static int ppg__argmax(const float *x, int lo, int hi)
{
    int best = lo;
    for (int i = lo + 1; i <= hi; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static float ppg__mean3(const float *x, int n, int i)
{
    int lo = i > 0 ? i - 1 : 0, hi = i < n - 1 ? i + 1 : n - 1;
    return (x[lo] + x[i] + x[hi]) / (float)(hi - lo + 1);
}

/* Per-beat AC/DC of one channel. AC is measured on the high-passed signal
 * hp (the same linear filter on both channels keeps their ratio, and it
 * strips the respiratory wander that would otherwise add the same absolute
 * error to both ACs and pull R towards 1); DC is the local baseline
 * dc + (sm − hp), i.e. the 1 s moving average at the trough. Writes ratio[k]
 * (NAN when the beat is unusable: foot cut off by the window edge,
 * non-positive AC). */
static void ppg__beat_ratios(const float *hp, const float *sm, float dc, int n,
                             const ppg__peak *pk, int np, int r, int span, float *ratio)
{
    int trough[PPG_MAX_PEAKS];
    for (int k = 0; k < np; k++) {
        int lo = pk[k].idx - r < 0 ? 0 : pk[k].idx - r;
        int hi = pk[k].idx + r > n - 1 ? n - 1 : pk[k].idx + r;
        trough[k] = ppg__argmin(hp, lo, hi); /* this channel's own minimum */
    }
    for (int k = 0; k < np; k++) {
        int t = trough[k];
        int a_lo = k > 0 ? trough[k - 1] : (t - span < 0 ? 0 : t - span);
        int b_hi = k < np - 1 ? trough[k + 1] : (t + span > n - 1 ? n - 1 : t + span);
        int fa = ppg__argmax(hp, a_lo, t), fb = ppg__argmax(hp, t, b_hi);
        ratio[k] = NAN;
        if (fa == 0 || fb == n - 1 || fa >= t || fb <= t)
            continue;
        /* Three-sample means: an argmin/argmax of a noisy signal is biased
         * by the noise itself, and more so in the smaller red channel. */
        float ya = ppg__mean3(hp, n, fa), yb = ppg__mean3(hp, n, fb);
        float line = ya + (yb - ya) * (float)(t - fa) / (float)(fb - fa);
        float ac = line - ppg__mean3(hp, n, t);
        float dcv = dc + (sm[t] - hp[t]);
        if (ac > 0.0f && dcv > 0.0f)
            ratio[k] = ac / dcv;
    }
}

static void ppg__invalidate(ppg_result *out, ppg_reason hr, ppg_reason spo2)
{
    out->hr_valid = false;
    out->hr_bpm = NAN;
    out->hr_reason = hr;
    out->spo2_valid = false;
    out->spo2_pct = NAN;
    out->spo2_reason = spo2;
}

void ppg_compute(ppg_state *st, ppg_result *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    out->r_ratio = out->r_fit = out->perfusion_pct = out->correlation = out->snr = NAN;
    out->dc_ir = out->dc_red = NAN;
    ppg__invalidate(out, PPG_NOT_READY, PPG_NOT_READY);
    if (st == NULL || st->cfg.window == 0 || st->count < st->cfg.window)
        return;
    const ppg_config *c = &st->cfg;
    const int n = c->window;
    const int start = st->head; /* full ring: head is the oldest sample */

    /* 1. DC, clipping, raw noise. hp_* temporarily hold the raw samples.
     * Sums in integers: exact, and cheap without a double-precision FPU. */
    uint64_t sr = 0, si = 0;
    uint32_t mx = 0;
    for (int i = 0; i < n; i++) {
        int j = (start + i) % n;
        st->hp_red[i] = (float)st->red[j];
        st->hp_ir[i] = (float)st->ir[j];
        sr += st->red[j];
        si += st->ir[j];
        if (st->red[j] > mx)
            mx = st->red[j];
        if (st->ir[j] > mx)
            mx = st->ir[j];
    }
    const float dc_red = (float)sr / (float)n, dc_ir = (float)si / (float)n;
    out->dc_red = dc_red;
    out->dc_ir = dc_ir;
    if (dc_ir < (float)c->finger_dc_min || dc_red <= 0.0f || mx >= c->adc_sat) {
        ppg__invalidate(out, PPG_NO_FINGER, PPG_NO_FINGER);
        return;
    }
    /* Noise σ from the residual of a 5-point quadratic Savitzky-Golay fit
     * (−3 12 17 12 −3)/35: it follows the pulse's curvature, which a plain
     * second difference mistakes for noise at high heart rates. For white
     * noise the residual variance is σ²(1 − 17/35). */
    for (int i = 0; i < n; i++) {
        /* Centre first: keeps single precision for the noise fit and the
         * filters (the fit's weights sum to 1, so the offset cancels). */
        st->hp_red[i] -= dc_red;
        st->hp_ir[i] -= dc_ir;
    }
    float e2 = 0;
    for (int i = 2; i < n - 2; i++) {
        const float *x = st->hp_ir;
        float fit = (-3.0f * x[i - 2] + 12.0f * x[i - 1] + 17.0f * x[i] + 12.0f * x[i + 1] -
                     3.0f * x[i + 2]) / 35.0f;
        float e = x[i] - fit;
        e2 += e * e;
    }
    const float noise = sqrtf(e2 / (float)(n - 4) / (18.0f / 35.0f));

    /* 2. Smooth, then high-pass. */
    ppg__smooth(st->hp_red, st->sm_red, n);
    ppg__smooth(st->hp_ir, st->sm_ir, n);
    int h = (int)(c->fs_hz * 0.5f + 0.5f);
    ppg__highpass(st->sm_red, st->hp_red, n, h);
    ppg__highpass(st->sm_ir, st->hp_ir, n, h);

    /* 3. Window gates. */
    float lo = st->hp_ir[0], hi = st->hp_ir[0];
    for (int i = 1; i < n; i++) {
        if (st->hp_ir[i] < lo)
            lo = st->hp_ir[i];
        if (st->hp_ir[i] > hi)
            hi = st->hp_ir[i];
    }
    const float pi_win = 100.0f * (hi - lo) / dc_ir;
    out->perfusion_pct = pi_win;
    if (pi_win < c->pi_min_pct) {
        ppg__invalidate(out, PPG_WEAK_SIGNAL, PPG_WEAK_SIGNAL);
        return;
    }
    if (pi_win > c->pi_max_pct) { /* no real finger pulses this much */
        ppg__invalidate(out, PPG_MOTION, PPG_MOTION);
        return;
    }
    out->correlation = ppg__pearson(st->hp_red, st->hp_ir, n);
    if (!(out->correlation >= c->min_corr)) {
        ppg__invalidate(out, PPG_DECORRELATED, PPG_DECORRELATED);
        return;
    }

    /* 4. Beats on the inverted IR (absorption peaks at systole). */
    for (int i = 0; i < n; i++)
        st->work[i] = -st->hp_ir[i];
    ppg__peak pk[PPG_MAX_PEAKS];
    int min_dist = (int)(c->fs_hz * 60.0f / 220.0f);
    if (min_dist < 2)
        min_dist = 2;
    int np = ppg__find_peaks(st->work, n, c->peak_rel, min_dist, pk);
    out->beats = (uint8_t)np;
    if (np < 2) {
        ppg__invalidate(out, PPG_WEAK_SIGNAL, PPG_WEAK_SIGNAL);
        return;
    }
    float proms[PPG_MAX_PEAKS];
    for (int k = 0; k < np; k++)
        proms[k] = pk[k].prom;
    const float amp = ppg__median(proms, np);
    out->snr = noise > 0.0f ? amp / noise : INFINITY;
    if (out->snr < c->min_snr) {
        ppg__invalidate(out, PPG_WEAK_SIGNAL, PPG_WEAK_SIGNAL);
        return;
    }

    /* 5. Rhythm. */
    float iv[PPG_MAX_PEAKS];
    for (int k = 0; k < np - 1; k++)
        iv[k] = pk[k + 1].pos - pk[k].pos;
    const float med = ppg__median(iv, np - 1);
    const float hr = 60.0f * c->fs_hz * (float)(np - 1) / (pk[np - 1].pos - pk[0].pos);
    if (np == 2) {
        /* One interval proves nothing, unless it is already too slow. */
        ppg_reason why = hr < c->hr_min ? PPG_OUT_OF_RANGE : PPG_WEAK_SIGNAL;
        ppg__invalidate(out, why, why);
        return;
    }
    for (int k = 0; k < np - 1; k++) {
        if (fabsf(iv[k] - med) > c->max_interval_dev * med) {
            ppg__invalidate(out, PPG_MOTION, PPG_MOTION);
            return;
        }
    }
    /* Beats must span the window: a stretch without beats means some were
     * lost (motion, clipping) even if the rest look regular. */
    const float edge = 1.5f * med + 2.0f;
    if (pk[0].pos > edge || (float)(n - 1) - pk[np - 1].pos > edge) {
        ppg__invalidate(out, PPG_MOTION, PPG_MOTION);
        return;
    }
    /* Gate on the value as displayed (whole bpm), so a true 180 measured as
     * 180.03 is not "out of range". */
    const float hr_shown = floorf(hr + 0.5f);
    if (hr_shown < c->hr_min || hr_shown > c->hr_max) {
        ppg__invalidate(out, PPG_OUT_OF_RANGE, PPG_OUT_OF_RANGE);
        return;
    }
    out->hr_valid = true;
    out->hr_bpm = hr;
    out->hr_reason = PPG_OK;

    /* 6. SpO2 from per-beat ratios, each channel at its own trough. */
    float rr[PPG_MAX_PEAKS], ri[PPG_MAX_PEAKS];
    int r = (int)(med * 0.25f);
    if (r < 2)
        r = 2;
    int span = (int)(med + 0.5f);
    ppg__beat_ratios(st->hp_red, st->sm_red, dc_red, n, pk, np, r, span, rr);
    ppg__beat_ratios(st->hp_ir, st->sm_ir, dc_ir, n, pk, np, r, span, ri);
    float rk[PPG_MAX_PEAKS], pik[PPG_MAX_PEAKS];
    int nb = 0;
    for (int k = 0; k < np; k++) {
        if (isnan(rr[k]) || isnan(ri[k]))
            continue;
        rk[nb] = rr[k] / ri[k];
        pik[nb] = 100.0f * ri[k];
        nb++;
    }
    if (nb == 0) {
        out->spo2_reason = PPG_WEAK_SIGNAL;
        return;
    }
    const float R = ppg__median(rk, nb);
    out->r_ratio = R;
    out->perfusion_pct = ppg__median(pik, nb);
    for (int k = 0; k < nb; k++) {
        if (fabsf(rk[k] - R) > 2.0f * c->max_r_spread * R) {
            out->spo2_reason = PPG_MOTION;
            return;
        }
    }
    /* Cross-check against the least-squares slope of red on IR over the
     * whole window: the same ratio of ratios from every sample instead of
     * two per beat. Fitted on first differences, which the pulse upstroke
     * dominates, because residual wander has "R" = 1 and would pull a fit
     * of the levels towards it. Disagreement means the beats are not clean
     * pulses. */
    float sxy = 0, sxx = 0;
    for (int i = 0; i < n - 1; i++) {
        float dr = st->hp_red[i + 1] - st->hp_red[i];
        float di = st->hp_ir[i + 1] - st->hp_ir[i];
        sxy += dr * di;
        sxx += di * di;
    }
    const float r_fit = sxx > 0 ? (sxy / sxx) * (dc_ir / dc_red) : NAN;
    out->r_fit = r_fit;
    if (!(fabsf(r_fit - R) <= c->max_r_spread * R)) {
        out->spo2_reason = PPG_MOTION;
        return;
    }
    if (!(R > c->r_min && R < c->r_max)) {
        out->spo2_reason = PPG_OUT_OF_RANGE;
        return;
    }
    /* The two estimators see the noise differently (two points per beat vs
     * every slope); their mean is steadier than either on few beats. */
    const float r_use = 0.5f * (R + r_fit);
    out->r_ratio = r_use;
    const float spo2 = ppg_spo2_from_r(r_use);
    if (spo2 < c->spo2_min) {
        out->spo2_reason = PPG_OUT_OF_RANGE;
        return;
    }
    out->spo2_valid = true;
    out->spo2_pct = spo2;
    out->spo2_reason = PPG_OK;
}
