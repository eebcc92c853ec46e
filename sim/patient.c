/* patient — per-device synthetic physiology and the seeded PRNG.
 *
 * Each patient has personal baselines (HR 55–95 /min, SpO2 95–99 %, skin
 * 33–36.5 °C, ambient 20–26 °C), a slow sinusoidal drift (minutes), AR(1)
 * short-term variability, and relaxes towards scenario targets with
 * physiological time constants, so a desaturation ramps down over tens of
 * seconds instead of jumping. Scenarios with a shape in time (desat_recover,
 * spo2_flap, deterioration) follow how long they have been active, counted
 * from the steps' own dt so a reboot (uptime back to 0) does not restart
 * them. Deterministic for a given seed.
 *
 * Ownership: plain structs owned by the worker. Threading: none. */
#include <math.h>

#include "sim.h"

static uint64_t sim_rng__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = sim_rng__splitmix64(&seed);
}

static uint64_t sim_rng__rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = sim_rng__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sim_rng__rotl(s[3], 45);
    return result;
}

double sim_rng_uniform(sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

double sim_rng_range(sim_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * sim_rng_uniform(r);
}

double sim_rng_normal(sim_rng *r)
{
    /* Box-Muller; one value per call is plenty for a few Hz per device. */
    double u1 = sim_rng_uniform(r), u2 = sim_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void sim_patient_init(sim_patient *p, uint64_t seed)
{
    *p = (sim_patient){0};
    sim_rng_seed(&p->rng, seed);
    sim_rng *g = &p->rng;
    p->hr0 = sim_rng_range(g, 55, 95);
    p->spo20 = sim_rng_range(g, 95, 99);
    p->skin0 = sim_rng_range(g, 33, 36.5);
    p->amb0 = sim_rng_range(g, 20, 26);
    p->hr = p->hr0;
    p->spo2 = p->spo20;
    p->skin = p->skin0;
    p->amb = p->amb0;
    p->drift_hr_amp = sim_rng_range(g, 2, 6);
    p->drift_hr_per = sim_rng_range(g, 300, 1200);
    p->drift_hr_ph = sim_rng_range(g, 0, 2 * M_PI);
    p->drift_t_amp = sim_rng_range(g, 0.1, 0.4);
    p->drift_t_per = sim_rng_range(g, 900, 3600);
    p->drift_t_ph = sim_rng_range(g, 0, 2 * M_PI);
    p->sev = sim_rng_uniform(g);
    p->battery = sim_rng_range(g, 60, 100);
    p->rssi0 = sim_rng_range(g, -75, -45);
}

static double sim_patient__relax(double x, double target, double dt, double tau)
{
    return target + (x - target) * exp(-dt / tau);
}

#define ACT(k) (active & (1u << (k)))

void sim_patient_step(sim_patient *p, double t_s, unsigned active)
{
    double dt = p->started ? t_s - p->last_t : 0.0;
    if (dt < 0)
        dt = 0;
    if (dt > 60)
        dt = 60;
    p->started = true;
    p->last_t = t_s;
    sim_rng *g = &p->rng;
    for (int k = 0; k < SIM_SC_COUNT; k++)
        p->age[k] = !ACT(k) ? 0.0 : (p->prev_active & (1u << k)) ? p->age[k] + dt : 0.0;
    bool batt_swap = (p->prev_active & (1u << SIM_SC_BATTERY_LOW)) && !ACT(SIM_SC_BATTERY_LOW);
    p->prev_active = active;

    double hr_t = p->hr0 + p->drift_hr_amp * sin(2 * M_PI * t_s / p->drift_hr_per + p->drift_hr_ph);
    double spo2_t = p->spo20;
    double skin_t = p->skin0 + p->drift_t_amp * sin(2 * M_PI * t_s / p->drift_t_per + p->drift_t_ph);
    double amb_t = p->amb0;
    double hr_tau = 8, spo2_tau = 15, skin_tau = 90;

    if (ACT(SIM_SC_DESATURATION)) {
        spo2_t = 88 - 8 * p->sev; /* 80–88 % */
        hr_t += 12;
        spo2_tau = 20;
    }
    if (ACT(SIM_SC_TACHYCARDIA))
        hr_t = 130 + 30 * p->sev;
    if (ACT(SIM_SC_BRADYCARDIA))
        hr_t = 46 - 8 * p->sev;
    if (ACT(SIM_SC_FEVER)) {
        skin_t = p->skin0 + 2.0 + 1.0 * p->sev;
        hr_t += 10 + 10 * p->sev; /* ~10 /min per °C */
        skin_tau = 60;
    }
    if (ACT(SIM_SC_HYPOTHERMIA)) {
        skin_t = 32 - 2 * p->sev;
        hr_t -= 10;
        skin_tau = 60;
    }
    if (ACT(SIM_SC_FINGER_OFF))
        skin_t = p->amb + 4; /* the IR thermometer now sees mostly air */
    if (ACT(SIM_SC_DESAT_RECOVER)) {
        /* 24 s at a target of 80 % with tau 3 s: below 85 % for ~21 s. */
        bool low = fmod(p->age[SIM_SC_DESAT_RECOVER], 60.0) < 24.0;
        if (low) {
            spo2_t = 80;
            hr_t += 12;
        }
        spo2_tau = 3;
    }
    if (ACT(SIM_SC_DETERIORATION)) {
        double f = fmin(1.0, p->age[SIM_SC_DETERIORATION] / 120.0);
        hr_t += f * (114 - hr_t);
        spo2_t += f * (91 - spo2_t);
        skin_t += f * 1.5;
    }
    if (ACT(SIM_SC_SPO2_FLAP)) {
        /* A short tau: the sine goes through nearly unfiltered. */
        spo2_t = 90 + 1.2 * sin(2 * M_PI * p->age[SIM_SC_SPO2_FLAP] / 6.0);
        spo2_tau = 0.5;
    }

    p->hr = sim_patient__relax(p->hr, hr_t, dt, hr_tau);
    p->spo2 = sim_patient__relax(p->spo2, spo2_t, dt, spo2_tau);
    p->skin = sim_patient__relax(p->skin, skin_t, dt, skin_tau);
    p->amb = sim_patient__relax(p->amb, amb_t, dt, 600);
    /* AR(1) beat-to-beat and measurement-scale variability. */
    double a = exp(-dt / 5.0), w = sqrt(1 - a * a);
    p->hr_noise = a * p->hr_noise + w * 2.5 * sim_rng_normal(g);
    p->spo2_noise = a * p->spo2_noise + w * 0.6 * sim_rng_normal(g);
    p->battery -= dt * 0.0005; /* ~2 %/h */
    if (ACT(SIM_SC_BATTERY_LOW))
        p->battery = fmax(10.0, p->battery - dt * 5.0);
    if (p->battery < 5 || batt_swap)
        p->battery = 100; /* recharged, or swapped by a nurse */
}

void sim_patient_reading(sim_patient *p, unsigned active, tenc_reading *r)
{
    sim_rng *g = &p->rng;
    r->heart_rate = p->hr + p->hr_noise;
    /* The flap must stay within 89-91 % to test chattering, not noise. */
    double spo2_noise = ACT(SIM_SC_SPO2_FLAP) ? 0.25 * p->spo2_noise : p->spo2_noise;
    r->spo2 = fmin(100.0, p->spo2 + spo2_noise);
    r->object_temp = p->skin + 0.05 * sim_rng_normal(g);
    r->ambient_temp = p->amb + 0.03 * sim_rng_normal(g);
    bool finger = !ACT(SIM_SC_FINGER_OFF);
    /* Occasional motion artefacts invalidate the optical channel only. */
    bool motion = sim_rng_uniform(g) < (ACT(SIM_SC_MOTION) ? 0.3 : 0.005);
    r->hr_valid = finger && !motion;
    r->spo2_valid = finger && !motion;
    r->temp_valid = true;
    r->battery = (int)lround(p->battery);
    r->rssi = (int)lround(p->rssi0 + 3 * sim_rng_normal(g));
    if (r->rssi > 0)
        r->rssi = 0;
    if (r->rssi < -127)
        r->rssi = -127;
}
