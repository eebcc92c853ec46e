/* sensor — the "sensor" fidelity: the patient's true state drives the
 * register models (sim/models), and the reading comes out of the real
 * device drivers (mlx90614, max30102) and PPG algorithm, exactly as on the
 * ESP32. So HR/SpO2 are what the firmware would compute (including
 * "not ready" for the first ~5 s and invalid windows on finger-off).
 *
 * Time: the models run on a virtual clock advanced to the patient's uptime
 * in 200 ms steps, draining the MAX30102 FIFO (32 samples = 1.28 s at the
 * driver's 25 sps) at every step so nothing overflows.
 *
 * Ownership: one heap block per device (≈6 KB), created by the worker.
 * Threading: none. */
#include <math.h>
#include <stdlib.h>

#include "max30102.h"
#include "max30102_model.h"
#include "mlx90614.h"
#include "mlx90614_model.h"
#include "ppg.h"
#include "ppg_synth.h"
#include "sensor_bus.h"
#include "sim.h"

struct sim_sensor {
    mlx_model mlx;
    max_model max;
    sensor_bus sb;
    mlx90614 mdrv;
    max30102 xdrv;
    ppg_state ppg;
    double t_s; /* virtual time the models have reached */
    bool max_ok, mlx_ok;
};

bool sim_sensor_available(void)
{
    return true;
}

sim_sensor *sim_sensor_new(uint64_t seed)
{
    sim_sensor *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    ppg_synth_config sc;
    ppg_synth_default_config(&sc);
    sc.seed = (uint32_t)(seed ^ (seed >> 32)) | 1u;
    sc.noise_rel = 0.02f;
    sc.hrv_rel = 0.02f;
    sc.phase = (float)((seed % 1000) / 1000.0);
    mlx_model_init(&s->mlx);
    max_model_init(&s->max, &sc);
    sensor_bus_init(&s->sb, &s->mlx, &s->max);
    const i2c_bus *bus = sensor_bus_i2c(&s->sb);
    s->mlx_ok = mlx90614_init(&s->mdrv, bus, 0) == MLX90614_OK;
    s->max_ok = max30102_init(&s->xdrv, bus, 0) == MAX30102_OK;
    if (!ppg_init(&s->ppg, NULL) || !s->max_ok || !s->mlx_ok) {
        free(s);
        return NULL;
    }
    return s;
}

void sim_sensor_free(sim_sensor *s)
{
    free(s);
}

static void sim_sensor__drain(sim_sensor *s)
{
    max30102_sample buf[32];
    size_t n = 0;
    uint32_t lost = 0;
    if (max30102_read_fifo(&s->xdrv, buf, 32, &n, &lost) != MAX30102_OK)
        return;
    if (lost)
        ppg_reset(&s->ppg); /* no window may straddle a gap */
    for (size_t i = 0; i < n; i++)
        ppg_push(&s->ppg, buf[i].red, buf[i].ir);
}

bool sim_sensor_read(sim_sensor *s, sim_patient *p, unsigned active, double t_s, tenc_reading *r)
{
    sim_patient_step(p, t_s, active);
    bool finger = !(active & (1u << SIM_SC_FINGER_OFF));
    /* Drive the models from the patient's truth. The synth draws each
     * beat's period from cfg.hr_bpm, so changing it keeps the waveform
     * continuous; R follows the target SpO2. */
    ppg_synth *syn = &s->max.synth;
    syn->cfg.hr_bpm = (float)fmax(30.0, p->hr + p->hr_noise);
    syn->cfg.spo2_pct = (float)fmin(100.0, p->spo2 + p->spo2_noise);
    syn->r = ppg_synth_r_from_spo2(syn->cfg.spo2_pct);
    if (syn->cfg.finger_off != !finger) {
        syn->cfg.finger_off = !finger;
        ppg_reset(&s->ppg);
    }
    mlx_model_set_temps(&s->mlx, (float)p->amb, (float)p->skin);

    /* Catch the models up with the device's uptime (bounded: 60 s). */
    double target = t_s;
    if (target - s->t_s > 60)
        s->t_s = target - 60;
    while (s->t_s + 0.2 <= target) {
        sensor_bus_advance(&s->sb, 200);
        s->t_s += 0.2;
        sim_sensor__drain(s);
    }
    ppg_result pr;
    ppg_compute(&s->ppg, &pr);
    r->hr_valid = pr.hr_valid;
    r->heart_rate = pr.hr_valid ? pr.hr_bpm : NAN;
    r->spo2_valid = pr.spo2_valid;
    r->spo2 = pr.spo2_valid ? pr.spo2_pct : NAN;

    float ta = NAN, to = NAN;
    bool ta_ok = mlx90614_read_ambient(&s->mdrv, &ta) == MLX90614_OK;
    bool to_ok = mlx90614_read_object(&s->mdrv, &to) == MLX90614_OK;
    r->ambient_temp = ta_ok ? ta : NAN;
    r->object_temp = to_ok ? to : NAN;
    r->temp_valid = to_ok;

    /* Battery and RSSI are not sensors: take them from the patient model. */
    tenc_reading aux = *r;
    sim_patient_reading(p, active, &aux);
    r->battery = aux.battery;
    r->rssi = aux.rssi;
    return true;
}
