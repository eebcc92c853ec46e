import type { Point } from './types';

/**
 * Bounded, time-ordered series of recent live points for one device.
 * Columnar typed arrays (t: f64, channels: f32) so 1,000 devices x 600 points
 * stay around 14 MB. Appends in order are O(1); an out-of-order point is
 * inserted at its place (O(n), n <= capacity); a point with a t already held
 * replaces it (dedupe by t). When full, the oldest point is dropped.
 */
/** Float32 storage turns 24.2 into 24.200000762939453: give back 3 decimals (NaN stays NaN). */
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

export class Ring {
  readonly cap: number;
  private t: Float64Array;
  private hr: Float32Array;
  private spo2: Float32Array;
  private temp: Float32Array;
  private amb: Float32Array;
  private head = 0; // index of oldest
  private len = 0;

  constructor(cap = 600) {
    this.cap = Math.max(1, cap | 0);
    this.t = new Float64Array(this.cap);
    this.hr = new Float32Array(this.cap);
    this.spo2 = new Float32Array(this.cap);
    this.temp = new Float32Array(this.cap);
    this.amb = new Float32Array(this.cap);
  }

  get length(): number { return this.len; }

  private idx(i: number): number { return (this.head + i) % this.cap; }

  lastT(): number { return this.len ? this.t[this.idx(this.len - 1)] : -Infinity; }
  firstT(): number { return this.len ? this.t[this.head] : Infinity; }

  private write(j: number, p: Point): void {
    this.t[j] = p.t; this.hr[j] = p.hr; this.spo2[j] = p.spo2; this.temp[j] = p.temp; this.amb[j] = p.amb;
  }

  at(i: number): Point {
    const j = this.idx(i);
    return { t: this.t[j], hr: r3(this.hr[j]), spo2: r3(this.spo2[j]), temp: r3(this.temp[j]), amb: r3(this.amb[j]) };
  }

  /** Returns false if the point was older than everything kept in a full buffer (dropped). */
  push(p: Point): boolean {
    if (!Number.isFinite(p.t)) return false;
    const last = this.lastT();
    if (this.len === 0 || p.t > last) {
      if (this.len === this.cap) { this.head = (this.head + 1) % this.cap; this.len--; }
      this.write(this.idx(this.len), p);
      this.len++;
      return true;
    }
    // Binary search for the first index with t >= p.t.
    let lo = 0, hi = this.len;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.t[this.idx(mid)] < p.t) lo = mid + 1; else hi = mid;
    }
    if (lo < this.len && this.t[this.idx(lo)] === p.t) { this.write(this.idx(lo), p); return true; }
    if (this.len === this.cap) {
      if (lo === 0) return false; // older than all we keep
      // drop the oldest, shifting the insertion point down by one
      this.head = (this.head + 1) % this.cap; this.len--; lo--;
    }
    for (let i = this.len; i > lo; i--) this.write(this.idx(i), this.at(i - 1));
    this.write(this.idx(lo), p);
    this.len++;
    return true;
  }

  /** Points with t in [from, to], oldest first. */
  range(from = -Infinity, to = Infinity): Point[] {
    const out: Point[] = [];
    for (let i = 0; i < this.len; i++) {
      const j = this.idx(i);
      const t = this.t[j];
      if (t < from) continue;
      if (t > to) break;
      out.push(this.at(i));
    }
    return out;
  }

  clear(): void { this.head = 0; this.len = 0; }
}
