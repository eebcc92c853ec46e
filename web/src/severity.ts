// Presentation of the server's partial NEWS2 (docs/ALARMS.md): vigild scores
// each reading (SpO2 scale 1 and pulse, RCP 2017) and sends the score in
// DEVICE.news2 and READING.news2; the browser never scores. This module only
// maps a score to a level (colours), a ward rank and its label. Not a
// clinical device: a ranking aid.
import type { News2 } from './types';

export type Level = 'high' | 'medium' | 'lowmedium' | 'low' | 'none';

export const NEWS2_LABEL = 'partial NEWS2 (SpO₂, pulse)';
export const NEWS2_NOT_MEASURED =
  'Partial NEWS2, scored by the server from SpO₂ and pulse only. Not measured, so not scored: ' +
  'respiration rate, blood pressure, consciousness, temperature (core) and supplemental O₂. ' +
  'A full NEWS2 would be at least this high.';

/** NEWS2 trigger levels: 7+ high, 5-6 medium, a single parameter scoring 3 low-medium, 1+ low. */
export function news2Level(n: News2 | null | undefined): Level {
  if (!n || !Number.isFinite(n.score)) return 'none';
  if (n.score >= 7) return 'high';
  if (n.score >= 5) return 'medium';
  if (n.spo2 === 3 || n.pulse === 3) return 'lowmedium';
  if (n.score >= 1) return 'low';
  return 'none';
}

/** Colour class of one sub-score (0-3), '' when unknown. */
export function subScoreClass(s: number | null | undefined): string {
  return s != null && s >= 1 && s <= 3 ? `s${s}` : '';
}

export type DevState = 'online' | 'offline' | 'stale' | 'nosignal';

/**
 * Sort rank, higher = worse. Clinical alarms that need a response (NEWS2 >= 5
 * or a single red score) come first, then technical alarms (offline, stale,
 * no signal: nothing trustworthy is known), then low scores, then normal.
 * The score of an offline/stale device does not count: it is old.
 */
export function rank(state: DevState, level: Level): number {
  if (state === 'online') {
    if (level === 'high') return 60;
    if (level === 'medium') return 50;
    if (level === 'lowmedium') return 40;
  }
  if (state === 'offline') return 32;
  if (state === 'stale') return 31;
  if (state === 'nosignal') return 30;
  if (state === 'online' && level === 'low') return 20;
  return 0;
}
