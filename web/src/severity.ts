// NEWS2-like scoring for the three vitals Vigil measures (not a clinical device:
// a ranking aid). Scores per parameter follow NEWS2 bands:
//   SpO2 (scale 1): <=91 -> 3, 92-93 -> 2, 94-95 -> 1, >=96 -> 0
//   Pulse: <=40 -> 3, 41-50 -> 1, 51-90 -> 0, 91-110 -> 1, 111-130 -> 2, >=131 -> 3
//   Temperature: NOT NEWS2. The MLX90614 reads skin surface temperature
//   (a forehead or wrist reads ~32-36 °C), not core temperature, and no
//   validated skin→core offset exists for our optics. Scoring skin with the
//   core bands would put most healthy patients in alarm, so skin gets its own
//   conservative bands, worth at most 2:
//   <=31.0 -> 2, 31.1-32.0 -> 1, 32.1-37.5 -> 0, 37.6-38.5 -> 1, >=38.6 -> 2

export function spo2Score(v: number | null | undefined): number {
  if (v == null || !Number.isFinite(v)) return 0;
  if (v <= 91) return 3;
  if (v <= 93) return 2;
  if (v <= 95) return 1;
  return 0;
}

export function hrScore(v: number | null | undefined): number {
  if (v == null || !Number.isFinite(v)) return 0;
  if (v <= 40) return 3;
  if (v <= 50) return 1;
  if (v <= 90) return 0;
  if (v <= 110) return 1;
  if (v <= 130) return 2;
  return 3;
}

export function tempScore(v: number | null | undefined): number {
  if (v == null || !Number.isFinite(v)) return 0;
  // bands are on 0.1 °C steps; round to avoid 35.04 falling between them
  const r = Math.round(v * 10) / 10;
  if (r <= 31.0) return 2;
  if (r <= 32.0) return 1;
  if (r <= 37.5) return 0;
  if (r <= 38.5) return 1;
  return 2;
}

export type Level = 'high' | 'medium' | 'lowmedium' | 'low' | 'none';

export interface Severity {
  score: number;
  level: Level;
  hr: number;
  spo2: number;
  temp: number;
}

export function severity(hr?: number | null, spo2?: number | null, temp?: number | null): Severity {
  const h = hrScore(hr), s = spo2Score(spo2), t = tempScore(temp);
  const score = h + s + t;
  let level: Level = 'none';
  if (score >= 7) level = 'high';
  else if (score >= 5) level = 'medium';
  else if (h === 3 || s === 3 || t === 3) level = 'lowmedium';
  else if (score >= 1) level = 'low';
  return { score, level, hr: h, spo2: s, temp: t };
}

export type DevState = 'online' | 'offline' | 'stale' | 'nosignal';

/**
 * Sort rank, higher = worse. Clinical alarms that need a response (NEWS2 >= 5
 * or a single red score) come first, then technical alarms (offline, stale,
 * no signal: nothing trustworthy is known), then low scores, then normal.
 * Vitals of an offline/stale device are not scored: they are old.
 */
export function rank(state: DevState, sev: Severity): number {
  if (state === 'online') {
    if (sev.level === 'high') return 60;
    if (sev.level === 'medium') return 50;
    if (sev.level === 'lowmedium') return 40;
  }
  if (state === 'offline') return 32;
  if (state === 'stale') return 31;
  if (state === 'nosignal') return 30;
  if (sev.level === 'low') return 20;
  return 0;
}
