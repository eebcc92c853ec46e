// Gaps in the live stream: readings a view never got over the WebSocket because
// the server dropped what it had queued for this client (`resync`, docs/PROTOCOL.md)
// or the socket was lost and reopened. The store opens one Gap per device at each
// resync and closes it at the snapshot that follows; a view holding a window of
// readings refetches that window from REST history and, until it has, marks the
// gap (a shaded band and a break in the line, never a straight line across it).
// Pure: no I/O, no clock, no threads. Gap lists are replaced, never mutated.

import type { Point } from './types';

/**
 * Readings of one device with t in (from, to] may be missing from the live stream.
 * from: the newest t the store held for it when the resync came (-Infinity: none).
 * to: its newest t once the snapshot after the resync was applied (Infinity until then).
 * seq: the store's resync count when it was opened. A history fetch sent after the
 * resync was applied sees every dropped reading (REST reads are fresh), so a fetch
 * that knew resync count k covers every gap with seq <= k: no clocks are compared.
 * filled: its readings were put back into the device's ring.
 */
export interface Gap { from: number; to: number; seq: number; filled?: boolean }

/** Gaps kept per device; beyond it the two oldest become one spanning both (a storm of
 * resyncs stays bounded and nothing is forgotten: the merged gap is covered only by a
 * fetch that covers both). */
export const GAPS_CAP = 8;

export const NO_GAPS: readonly Gap[] = [];

/** A resync came: everything after `heldT` may be missing. */
export function openGap(gaps: readonly Gap[], heldT: number, seq: number): readonly Gap[] {
  const g: Gap = { from: Number.isFinite(heldT) ? heldT : -Infinity, to: Infinity, seq };
  const next = [...gaps, g];
  if (next.length > GAPS_CAP) {
    const [x, y] = next.splice(0, 2);
    const m: Gap = { from: Math.min(x.from, y.from), to: Math.max(x.to, y.to), seq: Math.max(x.seq, y.seq) };
    if (x.filled && y.filled) m.filled = true;
    next.unshift(m);
  }
  return next;
}

/**
 * The snapshot after a resync came: open gaps end at the newest t now held. One with
 * nothing newer than what was held is dropped: no reading of that device was missed
 * (a snapshot carries each device's newest reading).
 */
export function closeGaps(gaps: readonly Gap[], newestT: number): readonly Gap[] {
  if (!gaps.some((g) => g.to === Infinity)) return gaps;
  const out: Gap[] = [];
  for (const g of gaps) {
    if (g.to !== Infinity) { out.push(g); continue; }
    if (Number.isFinite(newestT) && newestT > g.from) out.push({ ...g, to: newestT });
  }
  return out.length ? out : NO_GAPS;
}

/** Gaps a view whose history knew resync count `coveredSeq` does not cover. */
export function uncovered(gaps: readonly Gap[], coveredSeq: number): Gap[] {
  return gaps.filter((g) => g.seq > coveredSeq);
}

/** Should a view of [from, to] refetch? A closed gap it does not cover overlaps it. */
export function needsRefetch(gaps: readonly Gap[], coveredSeq: number, from: number, to: number): boolean {
  return uncovered(gaps, coveredSeq).some((g) => g.to !== Infinity && g.to > from && g.from < to);
}

/** The uncovered gaps clipped to [from, to], as [start, end] in ms, oldest first. */
export function gapBands(gaps: readonly Gap[], coveredSeq: number, from: number, to: number): [number, number][] {
  const out: [number, number][] = [];
  for (const g of uncovered(gaps, coveredSeq)) {
    const a = Math.max(g.from, from), b = Math.min(g.to, to);
    if (b > a) out.push([a, b]);
  }
  return out.sort((x, y) => x[0] - y[0]);
}

/**
 * A point with no values just after the start of each band, so the chart breaks
 * the line there (NaN becomes a gap in toColumns) instead of joining the last point
 * before the gap to the first after it. Reading times are whole ms: +0.5 never
 * collides with one.
 */
export function breakAtGaps(points: Point[], bands: [number, number][]): Point[] {
  if (!bands.length) return points;
  const breaks = bands.map(([a]) => ({ t: a + 0.5, hr: NaN, spo2: NaN, temp: NaN, amb: NaN }));
  return [...points, ...breaks].sort((x, y) => x.t - y.t);
}

/** Does t fall in the gap? */
export function inGap(g: Gap, t: number): boolean {
  return t > g.from && t <= g.to;
}

/** For support staff: how often the live stream skipped readings and how many came back from history. */
export function resyncText(r: { server: number; reconnects: number; dropped: number; refilled: number }): string {
  if (!r.server && !r.reconnects) return 'no resync';
  const parts = [`resynced ${r.server} time${r.server === 1 ? '' : 's'} (${r.dropped} messages dropped by the server)`];
  if (r.reconnects) parts.push(`${r.reconnects} reconnect${r.reconnects === 1 ? '' : 's'}`);
  parts.push(`${r.refilled} readings refetched`);
  return parts.join(', ');
}
