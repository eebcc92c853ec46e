/* vigil-sim — shared declarations of the fleet simulator.
 *
 * Process model: main.c parses the command line and forks worker
 * processes (≤ --per-worker devices each, because libmosquitto needs ~3 fds
 * per client and the open-files limit is 20,000); each worker (worker.c)
 * drives its devices' libmosquitto clients from one epoll loop and reports
 * progress and its final per-device summary to the parent over a pipe.
 * Each device runs the portable device core (session + outbox + encoder)
 * over a host platform implementation; its vitals come from a patient
 * model (patient.c), either encoded directly (fidelity "vitals") or passed
 * through the register models and the real drivers + PPG (fidelity
 * "sensor", sensor.c).
 *
 * Ownership: sim_opts is built once by main and read-only afterwards.
 * Threading: none; each process is single-threaded. */
#ifndef VIGIL_SIM_H
#define VIGIL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry_enc.h"

#define SIM_MAX_SCENARIOS 32

typedef enum sim_scen_kind {
    SIM_SC_DESATURATION = 0,
    SIM_SC_TACHYCARDIA,
    SIM_SC_BRADYCARDIA,
    SIM_SC_FEVER,
    SIM_SC_HYPOTHERMIA,
    SIM_SC_FINGER_OFF,
    SIM_SC_DISCONNECT,
    SIM_SC_OFFLINE,        /* off the network for `readings` readings, then back */
    SIM_SC_REBOOT_OFFLINE, /* the same, rebooting after `reboot_after` of them */
    /* For the alarm engine's tests and demos (timings in sim_scenario_help). */
    SIM_SC_DESAT_RECOVER, /* a desaturation below 85 % that recovers, every 60 s */
    SIM_SC_SPO2_FLAP,     /* SpO2 oscillating 89–91 % around the 90 % limit */
    SIM_SC_BATTERY_LOW,   /* the battery drains below 15 %; swapped at the end */
    SIM_SC_DETERIORATION, /* slow NEWS2-style deterioration without a limit crossed */
    SIM_SC_MOTION,        /* motion artefacts: 30 % of optical readings invalid */
    SIM_SC_COUNT          /* at most 32: scenarios are a bit mask */
} sim_scen_kind;

typedef struct sim_scenario {
    sim_scen_kind kind;
    long dev_lo, dev_hi; /* device numbers (as in the ids), inclusive */
    double start_s;      /* from the start of the run */
    double dur_s;        /* < 0: until the end */
    /* offline / reboot_offline (NAME=N[,K]): the outage begins at start_s
     * (within the window) and lasts N readings; K: reboot after K of them. */
    long readings, reboot_after;
} sim_scenario;

typedef enum sim_fidelity { SIM_FID_VITALS = 0, SIM_FID_SENSOR = 1 } sim_fidelity;

typedef struct sim_opts {
    char host[256];
    int port;
    long devices;
    double rate_hz;
    double duration_s;
    char prefix[32];
    uint64_t seed;
    sim_fidelity fidelity;
    sim_scenario scen[SIM_MAX_SCENARIOS];
    int nscen;
    int qos;
    char summary_json[512];
    long first_id;
    int keepalive_s;
    bool clean_exit;
    long per_worker;
    double connect_rate;  /* per worker, connects per second */
    long outbox_cap;      /* flash outbox capacity, readings per device */
    char flash_dir[400];  /* outbox flash files DIR/ID.flash; empty: memory */
    uint64_t cut_at;      /* power cut at this erase/program step (0: none) */
    long cut_dev;         /* ... of this device number only; -1: of each */
    double cut_p;         /* power cut probability per erase/program step */
    uint32_t replay_per_s; /* backlog drain per device; 0: the firmware's default */
    bool verbose;
    int id_width;
    /* TLS (--broker mqtts://): the CA that verifies the broker (empty: the
     * system's), and the device's client certificate — per device from
     * tls_cert_dir/ID.crt + ID.key, or one pair for every device. */
    bool tls;
    char tls_ca[512];
    char tls_cert_dir[512];
    char tls_cert[512];
    char tls_key[512];
} sim_opts;

/* A per-worker totals record, sent to the parent as a text line. */
typedef struct sim_totals {
    uint64_t sent;       /* data readings handed to the broker */
    uint64_t acked;      /* PUBACKs for data readings */
    uint64_t readings;   /* readings taken */
    uint64_t dropped;    /* pending readings lost to a full outbox or a reboot */
    uint64_t pending;    /* readings still waiting in outboxes */
    uint64_t reconnects; /* connects after the first one */
    uint64_t connected;  /* devices currently connected */
    uint64_t conn_fail;  /* failed connect attempts */
    uint64_t cmds;       /* commands and configs answered */
    double first_connect_all_s; /* time until every device had connected once, or -1 */
} sim_totals;

/* ---- PRNG: xoshiro256** seeded with splitmix64 (no rand()) ---- */
typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;

void sim_rng_seed(sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(sim_rng *r);
double sim_rng_uniform(sim_rng *r);           /* [0, 1) */
double sim_rng_range(sim_rng *r, double lo, double hi);
double sim_rng_normal(sim_rng *r);            /* N(0, 1) */

/* ---- patient model (patient.c) ---- */
typedef struct sim_patient {
    sim_rng rng;
    double hr0, spo20, skin0, amb0;   /* personal baselines */
    double hr, spo2, skin, amb;       /* physiological state */
    double hr_noise, spo2_noise;      /* AR(1) short-term variability */
    double drift_hr_amp, drift_hr_per, drift_hr_ph;
    double drift_t_amp, drift_t_per, drift_t_ph;
    double sev;                       /* per-patient scenario severity 0..1 */
    double battery;
    double rssi0;
    double last_t;
    bool started;
    unsigned prev_active;             /* the mask of the previous step */
    double age[SIM_SC_COUNT];         /* s each scenario has been active, 0 when not */
} sim_patient;

void sim_patient_init(sim_patient *p, uint64_t seed);
/* Advances the patient to time t_s (seconds of uptime) under the active
 * scenarios (bit mask of 1 << sim_scen_kind). Outputs the true values. */
void sim_patient_step(sim_patient *p, double t_s, unsigned active);
/* A "vitals" fidelity reading: the true values plus measurement noise. */
void sim_patient_reading(sim_patient *p, unsigned active, tenc_reading *r);

/* ---- scenarios (scenario.c) ---- */
int sim_scenario_parse(const char *spec, sim_scenario *out, char *err, size_t errlen);
const char *sim_scenario_name(sim_scen_kind k);
/* The --help text listing every scenario with its shape and timing. */
const char *sim_scenario_help(void);
/* Bit mask of the scenarios active for device number dev at time t_s. */
unsigned sim_scenarios_active(const sim_opts *o, long dev, double t_s);
/* The index of an outage scenario (offline, reboot_offline) due for device
 * dev at t_s and not in done (bit per index), with *sc set; else -1. */
int sim_scenario_outage_due(const sim_opts *o, long dev, double t_s, uint32_t done,
                            const sim_scenario **sc);

/* ---- sensor fidelity (sensor.c) ---- */
typedef struct sim_sensor sim_sensor;
/* Returns NULL when the sensor fidelity is not available in this build. */
sim_sensor *sim_sensor_new(uint64_t seed);
void sim_sensor_free(sim_sensor *s);
/* Runs the drivers and PPG against the register models fed by the
 * patient's true state; fills the vitals of r. */
bool sim_sensor_read(sim_sensor *s, sim_patient *p, unsigned active, double t_s, tenc_reading *r);
bool sim_sensor_available(void);

/* ---- worker (worker.c) ---- */
/* Runs devices [first_index, first_index + count) (0-based within the run)
 * until the duration ends or a stop signal; reports on out_fd. Returns a
 * process exit status. */
int sim_worker_run(const sim_opts *o, long first_index, long count, int out_fd, int worker_no);

#endif
