/* ppg_synth — see ppg_synth.h. */
#include "ppg_synth.h"

#include <math.h>
#include <string.h>

#define PPG_SYNTH_PI 3.14159265358979323846

void ppg_synth_default_config(ppg_synth_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->fs_hz = 25.0f;
    cfg->hr_bpm = 75.0f;
    cfg->spo2_pct = 97.0f;
    cfg->pi = 0.01f;
    cfg->dc_ir = 100000.0f;
    cfg->dc_red = 80000.0f;
    cfg->seed = 1;
    cfg->wander_hz = 0.25f;
    cfg->finger_off_dc = 3000.0f;
}

uint32_t ppg_synth_rand(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x9E3779B9u; /* xorshift32 must not be 0 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static float ppg_synth__uniform(uint32_t *state) /* (0, 1) */
{
    return ((float)(ppg_synth_rand(state) >> 8) + 0.5f) / 16777216.0f;
}

float ppg_synth_gauss(uint32_t *state)
{
    float u1 = ppg_synth__uniform(state), u2 = ppg_synth__uniform(state);
    return sqrtf(-2.0f * logf(u1)) * cosf(2.0f * (float)PPG_SYNTH_PI * u2);
}

float ppg_synth_r_from_spo2(float s)
{
    float d = 921.37f + 180.24f * (94.845f - s);
    if (d < 0.0f)
        d = 0.0f; /* above 99.96 % the curve has no solution: use its vertex */
    return (30.354f + sqrtf(d)) / 90.12f;
}

static double ppg_synth__draw_period(ppg_synth *s)
{
    double T = 60.0 / s->cfg.hr_bpm;
    if (s->cfg.hrv_rel > 0.0f) {
        float g = ppg_synth_gauss(&s->rng);
        if (g > 3.0f)
            g = 3.0f;
        if (g < -3.0f)
            g = -3.0f;
        T *= 1.0 + s->cfg.hrv_rel * g;
    }
    return T;
}

void ppg_synth_init(ppg_synth *s, const ppg_synth_config *cfg)
{
    memset(s, 0, sizeof(*s));
    if (cfg != NULL)
        s->cfg = *cfg;
    else
        ppg_synth_default_config(&s->cfg);
    if (s->cfg.wander_hz <= 0.0f)
        s->cfg.wander_hz = 0.25f;
    s->rng = s->cfg.seed * 2654435761u + 12345u;
    s->r = ppg_synth_r_from_spo2(s->cfg.spo2_pct);
    for (int k = 0; k < 3; k++)
        s->period[k] = ppg_synth__draw_period(s);
    s->onset[1] = -(double)s->cfg.phase * s->period[1];
    s->onset[0] = s->onset[1] - s->period[0];
    s->onset[2] = s->onset[1] + s->period[1];
    for (int k = 0; k < 3; k++) {
        s->mot_f[k] = 0.4f + 2.6f * ppg_synth__uniform(&s->rng);
        s->mot_ph[k] = 2.0f * (float)PPG_SYNTH_PI * ppg_synth__uniform(&s->rng);
        s->mot_gr[k] = 0.3f + 1.2f * ppg_synth__uniform(&s->rng);
        s->mot_phr[k] = s->mot_ph[k] + 1.5f * (ppg_synth__uniform(&s->rng) - 0.5f);
        s->dec_f[k] = 0.5f + 2.5f * ppg_synth__uniform(&s->rng);
        s->dec_ph[k] = 2.0f * (float)PPG_SYNTH_PI * ppg_synth__uniform(&s->rng);
    }
}

/* One beat's pulse τ seconds after its onset: systolic Gaussian at 0.25 T
 * plus a 0.3 dicrotic Gaussian 0.3 T later, widths bounded so fast beats
 * stay distinct. */
static double ppg_synth__beat(double tau, double T)
{
    double ss = 0.13 * T < 0.10 ? 0.13 * T : 0.10;
    double cs = 0.25 * T, cd = cs + 0.3 * T, sd = 1.6 * ss;
    double a = (tau - cs) / ss, b = (tau - cd) / sd;
    return exp(-0.5 * a * a) + 0.3 * exp(-0.5 * b * b);
}

void ppg_synth_next(ppg_synth *s, uint32_t *red, uint32_t *ir)
{
    const ppg_synth_config *c = &s->cfg;
    const double t = s->t;
    while (t >= s->onset[2]) { /* next beat has started: shift the triple */
        s->onset[0] = s->onset[1];
        s->period[0] = s->period[1];
        s->onset[1] = s->onset[2];
        s->period[1] = s->period[2];
        s->period[2] = ppg_synth__draw_period(s);
        s->onset[2] = s->onset[1] + s->period[1];
    }
    double p = 0.0;
    for (int k = 0; k < 3; k++)
        p += ppg_synth__beat(t - s->onset[k], s->period[k]);

    double p_red = p;
    if (c->decorrelation > 0.0f) {
        /* An unrelated wave with the pulse's mean and rough amplitude. */
        double q = 0.0;
        for (int k = 0; k < 3; k++)
            q += sin(2.0 * PPG_SYNTH_PI * s->dec_f[k] * t + s->dec_ph[k]);
        q = 0.3 + 0.25 * q;
        p_red = (1.0 - c->decorrelation) * p + c->decorrelation * q;
    }

    double dc_ir = c->dc_ir, dc_red = c->dc_red, pi = c->pi;
    if (c->finger_off) {
        dc_ir = dc_red = c->finger_off_dc;
        p = p_red = 0.0;
    }
    /* Wander and motion modulate the light path: multiplicative on DC. */
    double wander = c->wander_rel * pi * sin(2.0 * PPG_SYNTH_PI * c->wander_hz * t);
    double m_ir = 0.0, m_red = 0.0;
    if (c->motion_rel > 0.0f && t >= c->motion_start_s &&
        t < (double)c->motion_start_s + c->motion_len_s) {
        double u = (t - c->motion_start_s) / c->motion_len_s;
        double env = 0.5 - 0.5 * cos(2.0 * PPG_SYNTH_PI * u); /* Hann */
        for (int k = 0; k < 3; k++) {
            m_ir += sin(2.0 * PPG_SYNTH_PI * s->mot_f[k] * t + s->mot_ph[k]);
            m_red += s->mot_gr[k] * sin(2.0 * PPG_SYNTH_PI * s->mot_f[k] * t + s->mot_phr[k]);
        }
        m_ir *= env * c->motion_rel * pi / 1.5;
        m_red *= env * c->motion_rel * pi / 1.5;
    }
    double vi = dc_ir * (1.0 + wander + m_ir) * (1.0 - pi * p);
    double vr = dc_red * (1.0 + wander + m_red) * (1.0 - s->r * pi * p_red);
    if (c->noise_rel > 0.0f) {
        vi += c->noise_rel * c->dc_ir * pi * ppg_synth_gauss(&s->rng);
        vr += c->noise_rel * c->dc_red * pi * ppg_synth_gauss(&s->rng);
    }
    vi = vi < 0.0 ? 0.0 : vi > 262143.0 ? 262143.0 : vi;
    vr = vr < 0.0 ? 0.0 : vr > 262143.0 ? 262143.0 : vr;
    *ir = (uint32_t)(vi + 0.5);
    *red = (uint32_t)(vr + 0.5);
    s->t = t + 1.0 / c->fs_hz;
}
