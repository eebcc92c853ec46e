import { describe, expect, it } from 'vitest';
import { Ring } from './ring';

const p = (t: number, hr = t) => ({ t, hr, spo2: NaN, temp: NaN, amb: NaN });

describe('Ring', () => {
  it('is bounded and drops the oldest', () => {
    const r = new Ring(3);
    for (let t = 1; t <= 5; t++) r.push(p(t));
    expect(r.length).toBe(3);
    expect(r.range().map((x) => x.t)).toEqual([3, 4, 5]);
  });
  it('inserts out-of-order points in place and dedupes by t', () => {
    const r = new Ring(5);
    [1, 4, 2, 5, 3].forEach((t) => r.push(p(t)));
    r.push(p(3, 99));
    expect(r.range().map((x) => x.t)).toEqual([1, 2, 3, 4, 5]);
    expect(r.range(3, 3)[0].hr).toBe(99);
    expect(r.length).toBe(5);
  });
  it('when full, a point older than everything is dropped and a middle one evicts the oldest', () => {
    const r = new Ring(3);
    [10, 20, 30].forEach((t) => r.push(p(t)));
    expect(r.push(p(5))).toBe(false);
    r.push(p(25));
    expect(r.range().map((x) => x.t)).toEqual([20, 25, 30]);
  });
  it('range filters by time', () => {
    const r = new Ring(10);
    [1, 2, 3, 4].forEach((t) => r.push(p(t)));
    expect(r.range(2, 3).map((x) => x.t)).toEqual([2, 3]);
  });
});
