import type { Reading } from './types';

export function parseIso(s: string | null | undefined): number {
  if (!s) return NaN;
  const v = Date.parse(s);
  return Number.isFinite(v) ? v : NaN;
}

/** The time of a reading, as the protocol defines `t`: device `ts` if it has one, else receive time. */
export function readingTime(r: Reading): number {
  if (typeof r.ts === 'number' && Number.isFinite(r.ts)) return r.ts;
  return parseIso(r.received_at);
}

export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : NaN;
}

export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}
