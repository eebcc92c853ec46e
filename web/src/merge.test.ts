import { describe, expect, it } from 'vitest';
import { bucketize, historyPoints, mergeSeries, toColumns } from './merge';
import type { Point } from './types';

const p = (t: number, hr = 70): Point => ({ t, hr, spo2: 98, temp: 36.6, amb: 24 });

describe('historyPoints', () => {
  it('raw readings, sorted, invalid channels become gaps', () => {
    const h = historyPoints({ device_id: 'A', from: 0, to: 100, total: 2, downsampled: false,
      readings: [{ t: 20, heart_rate: 80, spo2: 97, hr_valid: false }, { t: 10, heart_rate: 70, spo2: null, object_temp: 36 }] });
    expect(h.bucketMs).toBe(0);
    expect(h.points.map((x) => x.t)).toEqual([10, 20]);
    expect(h.points[0].spo2).toBeNaN();
    expect(h.points[1].hr).toBeNaN();
  });
  it('buckets use the average; a null channel is a gap', () => {
    const h = historyPoints({ device_id: 'A', from: 0, to: 100, total: 120, downsampled: true, bucket_ms: 50,
      buckets: [{ t: 50, n: 60, heart_rate: { min: 60, avg: 70, max: 80 }, spo2: null }, { t: 0, n: 60, heart_rate: { min: 1, avg: 2, max: 3 } }] });
    expect(h.bucketMs).toBe(50);
    expect(h.points.map((x) => [x.t, x.hr])).toEqual([[0, 2], [50, 70]]);
    expect(h.points[1].spo2).toBeNaN();
  });
});

describe('mergeSeries', () => {
  it('dedupes by t (live wins), sorts and clips to the range', () => {
    const out = mergeSeries([p(1), p(3), p(5)], [p(5, 99), p(4), p(7), p(100)], { from: 0, to: 10, maxPoints: 100 });
    expect(out.map((x) => x.t)).toEqual([1, 3, 4, 5, 7]);
    expect(out.find((x) => x.t === 5)!.hr).toBe(99);
  });
  it('buckets live points like the history and skips those already inside the last bucket', () => {
    const hist = [p(0, 60), p(100, 62)]; // buckets [0,100) [100,200)
    const live = [p(150, 1), p(210, 70), p(250, 80), p(310, 90)];
    const out = mergeSeries(hist, live, { from: 0, to: 1000, maxPoints: 100, bucketMs: 100, origin: 0 });
    expect(out.map((x) => [x.t, x.hr])).toEqual([[0, 60], [100, 62], [200, 75], [300, 90]]);
  });
  it('is bounded by maxPoints', () => {
    const live = Array.from({ length: 1000 }, (_, i) => p(i * 10));
    const out = mergeSeries([], live, { from: 0, to: 9990, maxPoints: 100 });
    expect(out.length).toBeLessThanOrEqual(100);
    expect(out.length).toBeGreaterThan(90);
    for (let i = 1; i < out.length; i++) expect(out[i].t).toBeGreaterThan(out[i - 1].t);
  });
  it('bucketize averages ignoring NaN', () => {
    const out = bucketize([p(0, 10), { ...p(5), hr: NaN }, p(9, 20), p(10, 30)], 10, 0);
    expect(out.map((x) => [x.t, x.hr])).toEqual([[0, 15], [10, 30]]);
  });
  it('toColumns gives seconds and null gaps', () => {
    const c = toColumns([{ t: 2000, hr: NaN, spo2: 97, temp: 36, amb: 20 }]);
    expect(c[0]).toEqual([2]);
    expect(c[1]).toEqual([null]);
    expect(c[2]).toEqual([97]);
  });
});
