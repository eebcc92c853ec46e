import type { DevState } from './severity';

export const DEFAULT_INTERVAL_MS = 1000;
export const STALE_FACTOR = 3;
/** Below this, a device is never stale (absorbs jitter for very fast intervals). */
export const MIN_STALE_MS = 3000;

export interface StateInput {
  status: string;              // online | offline | unknown
  intervalMs?: number | null;  // announced interval
  lastReadingAt: number;       // local-clock ms when the latest reading was received (NaN if none)
  hrValid?: boolean;
  spo2Valid?: boolean;
  hr?: number | null;
  spo2?: number | null;
}

export function staleAfterMs(intervalMs?: number | null): number {
  const iv = intervalMs && intervalMs > 0 ? intervalMs : DEFAULT_INTERVAL_MS;
  return Math.max(MIN_STALE_MS, STALE_FACTOR * iv);
}

export function isStale(lastReadingAt: number, intervalMs: number | null | undefined, now: number): boolean {
  if (!Number.isFinite(lastReadingAt)) return true;
  return now - lastReadingAt > staleAfterMs(intervalMs);
}

/**
 * offline: the device (or its last will) says so.
 * stale: no reading within 3x its announced interval (default 1 s), or none yet.
 * nosignal: the latest reading says hr/spo2 invalid, or has no hr/spo2 value.
 * online: otherwise.
 */
export function deviceState(d: StateInput, now: number): DevState {
  if (d.status === 'offline') return 'offline';
  if (isStale(d.lastReadingAt, d.intervalMs, now)) return 'stale';
  if (d.hrValid === false || d.spo2Valid === false) return 'nosignal';
  if (d.hr == null || !Number.isFinite(d.hr) || d.spo2 == null || !Number.isFinite(d.spo2)) return 'nosignal';
  return 'online';
}

export const STATE_LABEL: Record<DevState, string> = {
  online: 'Online',
  offline: 'Offline',
  stale: 'Stale',
  nosignal: 'No signal',
};

export const STATE_ICON: Record<DevState, string> = {
  online: '●',
  offline: '✕',
  stale: '◷',
  nosignal: '⚠',
};
