/* scenario — parsing of --scenario NAME[=N[,K]][@LO-HI][:START-DUR] and
 * lookup of the scenarios active for a device at a time.
 *
 * The outage scenarios count readings instead of seconds: offline=N keeps
 * the device off the network (it goes on sampling into its flash outbox)
 * for N readings from START, then lets it reconnect; reboot_offline=N,K
 * does the same and reboots the device (a clean stop, a new boot id) after
 * K of them, so the outbox holds two boots when it comes back.
 *
 * LO-HI are device numbers as they appear in the ids (a single number is
 * allowed); START and DUR are seconds from the start of the run (DUR may be
 * left out: until the end). Ownership/threading: none. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const names[SIM_SC_COUNT] = {
    "desaturation", "tachycardia", "bradycardia", "fever",      "hypothermia",   "finger_off",
    "disconnect",   "offline",     "reboot_offline",
    "desat_recover", "spo2_flap", "battery_low", "deterioration", "motion",
};
_Static_assert(SIM_SC_COUNT <= 32, "scenarios are kept in an unsigned bit mask");

/* Shapes and timings as patient.c produces them (fidelity "vitals"; with
 * "sensor" the PPG adds its own ~5 s window). Kept next to the names so a
 * new scenario is documented where it is added. */
static const char help[] =
    "scenarios (times from the start of the window; values relax back to the\n"
    "patient's baseline with the same time constant when the window ends):\n"
    "  desaturation   SpO2 -> 80-88 % (per-patient severity), tau 20 s: below\n"
    "                 90 % after ~8-35 s; pulse +12 /min. Held for the window\n"
    "  desat_recover  SpO2 -> 80 %, tau 3 s: below 85 % from ~4 s to ~25 s (about\n"
    "                 20 s), back >= 92 % by ~30 s; pulse +12 /min. Repeats\n"
    "                 every 60 s while the window lasts\n"
    "  spo2_flap      SpO2 90 +- 1.2 % sine, period 6 s (reported 89-91 %):\n"
    "                 crosses the 90 % limit twice every 6 s\n"
    "  tachycardia    pulse -> 130-160 /min, tau 8 s (> 120 after ~6-14 s)\n"
    "  bradycardia    pulse -> 38-46 /min, tau 8 s (< 50 after ~3-20 s)\n"
    "  fever          skin temp -> baseline +2-3 C, tau 60 s; pulse +10-20 /min\n"
    "  hypothermia    skin temp -> 30-32 C, tau 60 s; pulse -10 /min\n"
    "  deterioration  over 120 s pulse rises to ~114 /min, SpO2 falls to ~91 %,\n"
    "                 skin +1.5 C: partial NEWS2 5 (SpO2 3 + pulse 2) with no\n"
    "                 SpO2 < 90 or pulse > 120 limit crossed\n"
    "  finger_off     hr_valid/spo2_valid false from the first reading, pulse and\n"
    "                 SpO2 left out; the skin sensor drifts to ambient +4 C\n"
    "  motion         30 % of readings with the optical channel invalid (pulse\n"
    "                 and SpO2 left out), at random; vitals fidelity only\n"
    "  battery_low    battery drains 5 %/s to 10 % (below 15 % within 18 s);\n"
    "                 swapped (100 %) when the window ends\n"
    "  disconnect     the TCP link is cut without DISCONNECT (the broker sends\n"
    "                 the last will: offline); readings wait in the outbox and\n"
    "                 are replayed when the window ends\n"
    "  offline=N      off the network for N readings from START, sampling into\n"
    "                 the outbox, then back (replayed, paced)\n"
    "  reboot_offline=N,K  the same, rebooting (a new boot id) after K of them\n";

const char *sim_scenario_help(void)
{
    return help;
}

const char *sim_scenario_name(sim_scen_kind k)
{
    return (unsigned)k < SIM_SC_COUNT ? names[k] : "?";
}

static int sim_scenario__parse_num(const char *s, const char *end, double *out)
{
    char buf[32];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    double v = strtod(buf, &e);
    if (*e || v < 0)
        return -1;
    *out = v;
    return 0;
}

int sim_scenario_parse(const char *spec, sim_scenario *out, char *err, size_t errlen)
{
    *out = (sim_scenario){.dev_lo = 0, .dev_hi = -1, .start_s = 0, .dur_s = -1};
    const char *at = strchr(spec, '@'), *colon = strchr(spec, ':');
    const char *name_end = at ? at : colon ? colon : spec + strlen(spec);
    const char *eq = memchr(spec, '=', (size_t)(name_end - spec));
    const char *args_end = name_end;
    if (eq)
        name_end = eq;
    int k = -1;
    for (int i = 0; i < SIM_SC_COUNT; i++)
        if (strlen(names[i]) == (size_t)(name_end - spec) && !strncmp(spec, names[i], (size_t)(name_end - spec)))
            k = i;
    if (k < 0) {
        snprintf(err, errlen, "unknown scenario in '%s'", spec);
        return -1;
    }
    out->kind = (sim_scen_kind)k;
    bool outage = k == SIM_SC_OFFLINE || k == SIM_SC_REBOOT_OFFLINE;
    if (outage != (eq != NULL)) {
        snprintf(err, errlen, "'%s': offline=N and reboot_offline=N,K take a count, others none",
                 spec);
        return -1;
    }
    if (eq) {
        const char *comma = memchr(eq + 1, ',', (size_t)(args_end - eq - 1));
        double n, kk = 0;
        if (sim_scenario__parse_num(eq + 1, comma ? comma : args_end, &n) ||
            (comma && sim_scenario__parse_num(comma + 1, args_end, &kk)) || n < 1 || n > 1e9 ||
            (k == SIM_SC_REBOOT_OFFLINE) != (comma != NULL) ||
            (comma && (kk < 1 || kk >= n))) {
            snprintf(err, errlen, "bad reading counts in '%s' (offline=N, reboot_offline=N,K with 1 <= K < N)",
                     spec);
            return -1;
        }
        out->readings = (long)n;
        out->reboot_after = (long)kk;
    }
    if (at) {
        const char *re = colon && colon > at ? colon : at + strlen(at);
        const char *dash = memchr(at + 1, '-', (size_t)(re - at - 1));
        double lo, hi;
        if (sim_scenario__parse_num(at + 1, dash ? dash : re, &lo) ||
            (dash && sim_scenario__parse_num(dash + 1, re, &hi))) {
            snprintf(err, errlen, "bad device range in '%s'", spec);
            return -1;
        }
        out->dev_lo = (long)lo;
        out->dev_hi = dash ? (long)hi : (long)lo;
        if (out->dev_hi < out->dev_lo) {
            snprintf(err, errlen, "empty device range in '%s'", spec);
            return -1;
        }
    }
    if (colon) {
        const char *e = colon + strlen(colon);
        const char *dash = strchr(colon + 1, '-');
        if (sim_scenario__parse_num(colon + 1, dash ? dash : e, &out->start_s) ||
            (dash && sim_scenario__parse_num(dash + 1, e, &out->dur_s))) {
            snprintf(err, errlen, "bad time window in '%s'", spec);
            return -1;
        }
    }
    return 0;
}

static bool sim_scenario__applies(const sim_scenario *s, long dev, double t_s)
{
    if (s->dev_hi >= 0 && (dev < s->dev_lo || dev > s->dev_hi))
        return false;
    return t_s >= s->start_s && (s->dur_s < 0 || t_s < s->start_s + s->dur_s);
}

unsigned sim_scenarios_active(const sim_opts *o, long dev, double t_s)
{
    unsigned m = 0;
    for (int i = 0; i < o->nscen; i++)
        if (sim_scenario__applies(&o->scen[i], dev, t_s))
            m |= 1u << o->scen[i].kind;
    return m;
}

int sim_scenario_outage_due(const sim_opts *o, long dev, double t_s, uint32_t done,
                            const sim_scenario **sc)
{
    for (int i = 0; i < o->nscen; i++) {
        const sim_scenario *s = &o->scen[i];
        if ((s->kind == SIM_SC_OFFLINE || s->kind == SIM_SC_REBOOT_OFFLINE) &&
            !(done & (1u << i)) && sim_scenario__applies(s, dev, t_s)) {
            *sc = s;
            return i;
        }
    }
    return -1;
}
