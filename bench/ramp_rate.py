"""The saturation ramp's rules, shared by bench/orchestrate.py (which runs the
ramp) and bench/report.py (which renders it): what a passed step is, the
sustainable rate of a run, and the bisection that refines that rate between
the coarse ramp's last passed and first failed step.

Pure: no I/O, no clock, no processes. The bisection takes its measurement as a
callable (probe), so a test drives it with an oracle. Rates are per-device Hz
(what vigil-bench's --rates takes); readings/s are Hz x devices.
"""

# A step is sustained when every client got >= 95 % of the offered rate and
# p99 stayed under one second (a negative p99: nothing was delivered).
DELIVERED_MIN = 0.95
P99_MAX_MS = 1000

# The bisection stops once the bracket is at most this wide in readings/s
# (the larger of the two), or after the caller's probe budget.
TOL_ABS = 1000
TOL_REL = 0.05


def step_ok(s):
    """True when the step dict of vigil-bench's JSON passes the ramp's rule."""
    return (s["delivered_msgs_per_s_per_client"] >= DELIVERED_MIN * s["offered_msgs_per_s"]
            and 0 <= s["p99_ms"] <= P99_MAX_MS)


def sustainable(steps):
    """Highest offered rate (readings/s, as measured) of the ramp's steps up to
    the first failing one; 0.0 when the first step fails."""
    best = 0.0
    for s in steps:
        if not step_ok(s):
            break
        best = max(best, s["offered_msgs_per_s"])
    return best


def bracket(steps):
    """(last passed Hz, first failed Hz) of a ramp, from the steps' nominal
    rates: 0 for the passed rate when the first step fails, None for the failed
    one when every step passed (nothing to refine)."""
    lo = 0.0
    for s in steps:
        if not step_ok(s):
            return lo, s["rate_hz"]
        lo = s["rate_hz"]
    return lo, None


def wide(lo_hz, hi_hz, devices, tol_abs=TOL_ABS, tol_rel=TOL_REL):
    """True while the bracket is wider than the resolution asked for: more
    than tol_abs readings/s and more than tol_rel of the passed rate."""
    return (hi_hz - lo_hz) * devices > max(tol_abs, tol_rel * lo_hz * devices)


def bisect(lo_hz, hi_hz, devices, probe, max_probes, tol_abs=TOL_ABS, tol_rel=TOL_REL):
    """Halves [lo_hz, hi_hz) with probe(hz) -> True (the step passed) or False
    until the bracket is narrow enough (wide() false) or max_probes are spent.
    Assumes what the ramp assumes: a subject that fails a rate fails the
    higher ones. Returns (probes as [(hz, passed)], lo_hz, hi_hz)."""
    probes = []
    while hi_hz is not None and len(probes) < max_probes and wide(lo_hz, hi_hz, devices, tol_abs, tol_rel):
        # Rounded to 1/1000 Hz: vigil-bench's --rates takes the text as is.
        mid = round((lo_hz + hi_hz) / 2, 3)
        if not lo_hz < mid < hi_hz:
            break
        ok = bool(probe(mid))
        probes.append((mid, ok))
        if ok:
            lo_hz = mid
        else:
            hi_hz = mid
    return probes, lo_hz, hi_hz


def refined(steps, probe_steps):
    """Sustainable readings/s from the coarse ramp's steps and the bisection's
    one-step probes (a probe with no step, e.g. its run failed, is a failure):
    the highest measured offered rate among the ramp's steps up to its first
    failure and the probes that passed."""
    best = sustainable(steps)
    for s in probe_steps:
        if s is not None and step_ok(s):
            best = max(best, s["offered_msgs_per_s"])
    return best


def first_failure(steps, probe_steps=()):
    """The failing step of lowest nominal rate, coarse ramp and probes
    together; None when none failed."""
    fails = [s for s in list(steps) + [p for p in probe_steps if p is not None] if not step_ok(s)]
    return min(fails, key=lambda s: s["rate_hz"]) if fails else None
