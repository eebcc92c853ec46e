import type { Point, ReadingsResponse } from './types';
import { num } from './time';

/** Points from a /readings answer: raw rows as they are, buckets by their average. */
export function historyPoints(res: ReadingsResponse): { points: Point[]; bucketMs: number } {
  if (res.downsampled && Array.isArray(res.buckets)) {
    const points = res.buckets
      .filter((b) => b && Number.isFinite(b.t))
      .map((b) => ({
        t: b.t,
        hr: num(b.heart_rate?.avg),
        spo2: num(b.spo2?.avg),
        temp: num(b.object_temp?.avg),
        amb: num(b.ambient_temp?.avg),
      }));
    points.sort((a, b) => a.t - b.t);
    return { points, bucketMs: res.bucket_ms && res.bucket_ms > 0 ? res.bucket_ms : 0 };
  }
  const points = (res.readings ?? [])
    .filter((r) => r && Number.isFinite(r.t))
    .map((r) => ({
      t: r.t,
      hr: r.hr_valid === false ? NaN : num(r.heart_rate),
      spo2: r.spo2_valid === false ? NaN : num(r.spo2),
      temp: r.temp_valid === false ? NaN : num(r.object_temp),
      amb: num(r.ambient_temp),
    }));
  points.sort((a, b) => a.t - b.t);
  return { points, bucketMs: 0 };
}

function avg(vals: number[]): number {
  let s = 0, n = 0;
  for (const v of vals) if (Number.isFinite(v)) { s += v; n++; }
  return n ? s / n : NaN;
}

/** Averages points into buckets of width ms aligned on `origin` (bucket t = start). */
export function bucketize(points: Point[], width: number, origin = 0): Point[] {
  if (!(width > 1)) return points;
  const out: Point[] = [];
  let cur: Point[] = [];
  let curStart = NaN;
  const emit = () => {
    if (!cur.length) return;
    out.push({ t: curStart, hr: avg(cur.map((p) => p.hr)), spo2: avg(cur.map((p) => p.spo2)),
      temp: avg(cur.map((p) => p.temp)), amb: avg(cur.map((p) => p.amb)) });
    cur = [];
  };
  for (const p of points) {
    const start = origin + Math.floor((p.t - origin) / width) * width;
    if (start !== curStart) { emit(); curStart = start; }
    cur.push(p);
  }
  emit();
  return out;
}

export interface MergeOpts {
  from: number;
  to: number;
  maxPoints: number;
  /** bucket width of the history (0 = raw); live points are bucketed the same way */
  bucketMs?: number;
  /** bucket alignment origin (the request's `from`) */
  origin?: number;
}

/**
 * Joins history with live points: sorted by t, deduplicated by t (live wins:
 * it is the newest view of the same reading), clipped to [from, to] and
 * bounded to maxPoints (oldest dropped after live tail is bucketed like the
 * history so density stays even).
 */
export function mergeSeries(history: Point[], live: Point[], o: MergeOpts): Point[] {
  const bucketMs = o.bucketMs ?? 0;
  let tail = live.filter((p) => p.t >= o.from && p.t <= o.to);
  let hist = history.filter((p) => p.t >= o.from && p.t <= o.to);
  if (bucketMs > 0 && hist.length) {
    // live points falling in or before the last history bucket are already counted there
    const lastBucketEnd = hist[hist.length - 1].t + bucketMs;
    tail = bucketize(tail.filter((p) => p.t >= lastBucketEnd), bucketMs, o.origin ?? o.from);
  } else if (bucketMs > 0) {
    tail = bucketize(tail, bucketMs, o.origin ?? o.from);
  }
  const byT = new Map<number, Point>();
  for (const p of hist) byT.set(p.t, p);
  for (const p of tail) byT.set(p.t, p);
  let out = [...byT.values()].sort((a, b) => a.t - b.t);
  const max = Math.max(1, o.maxPoints | 0);
  if (out.length > max) {
    // too dense: bucket everything evenly over the range, then keep the newest max
    const width = Math.ceil((o.to - o.from + 1) / max);
    out = bucketize(out, width, o.origin ?? o.from);
    if (out.length > max) out = out.slice(out.length - max);
  }
  return out;
}

/** Columnar data for uPlot: [t(s), hr, spo2, temp, amb]; NaN -> null (gaps). */
export function toColumns(points: Point[]): [number[], (number | null)[], (number | null)[], (number | null)[], (number | null)[]] {
  const n = points.length;
  const t = new Array<number>(n), hr = new Array<number | null>(n), sp = new Array<number | null>(n),
    te = new Array<number | null>(n), am = new Array<number | null>(n);
  for (let i = 0; i < n; i++) {
    const p = points[i];
    t[i] = p.t / 1000;
    hr[i] = Number.isFinite(p.hr) ? p.hr : null;
    sp[i] = Number.isFinite(p.spo2) ? p.spo2 : null;
    te[i] = Number.isFinite(p.temp) ? p.temp : null;
    am[i] = Number.isFinite(p.amb) ? p.amb : null;
  }
  return [t, hr, sp, te, am];
}
