import { describe, expect, it } from 'vitest';
import { hrScore, rank, severity, spo2Score, tempScore } from './severity';
import { computeWard } from './ward';
import { newDev, reduceReading, reduceStatus } from './store';

describe('NEWS2-like bands', () => {
  it('SpO2', () => {
    expect([91, 92, 93, 94, 95, 96, 100].map(spo2Score)).toEqual([3, 2, 2, 1, 1, 0, 0]);
    expect(spo2Score(null)).toBe(0);
  });
  it('heart rate', () => {
    expect([40, 41, 50, 51, 90, 91, 110, 111, 130, 131].map(hrScore)).toEqual([3, 1, 1, 0, 0, 1, 1, 2, 2, 3]);
  });
  it('temperature', () => {
    expect([31.0, 31.1, 32.0, 32.1, 37.5, 37.6, 38.5, 38.6, 30.96, 34.0].map(tempScore)).toEqual([2, 1, 1, 0, 0, 1, 1, 2, 2, 0]);
  });
  it('levels', () => {
    expect(severity(72, 98, 36.8).level).toBe('none');
    expect(severity(95, 98, 36.8).level).toBe('low');
    expect(severity(72, 91, 36.8).level).toBe('lowmedium');
    expect(severity(115, 93, 36.8)).toMatchObject({ score: 4, level: 'low' });
    expect(severity(115, 93, 38.5)).toMatchObject({ score: 5, level: 'medium' });
    expect(severity(135, 90, 39.5)).toMatchObject({ score: 8, level: 'high' });
  });
  it('rank: clinical urgent > technical > low > normal; old vitals are not scored', () => {
    const hi = severity(135, 90, 39.5), lo = severity(95, 98, 36.8), none = severity(72, 98, 36.8);
    expect(rank('online', hi)).toBeGreaterThan(rank('offline', none));
    expect(rank('offline', none)).toBeGreaterThan(rank('online', lo));
    expect(rank('stale', hi)).toBe(rank('stale', none));
    expect(rank('online', lo)).toBeGreaterThan(rank('online', none));
  });
});

describe('ward list', () => {
  const NOW = 5_000_000;
  const mk = (id: string, hr: number, spo2: number, temp: number, status = 'online', age = 0) => {
    let d = reduceStatus(newDev(id), { device_id: id, status, interval_ms: 1000 });
    d = reduceReading(d, { device_id: id, heart_rate: hr, spo2, object_temp: temp, hr_valid: true, spo2_valid: true }, NOW - age);
    return d;
  };
  const devs = [
    mk('D10', 72, 98, 36.8),
    mk('D2', 135, 89, 39.5),
    mk('D3', 72, 98, 36.8, 'offline'),
    mk('D4', 95, 98, 36.8),
    mk('D5', 72, 98, 36.8, 'online', 10_000),
  ];
  it('sorts worst first, then by id', () => {
    const w = computeWard(devs, { sort: 'severity', filter: 'all', search: '' }, NOW);
    expect(w.ids).toEqual(['D2', 'D3', 'D5', 'D4', 'D10']);
    expect(w.counts).toEqual({ total: 5, alarm: 1, technical: 2, ok: 2 });
  });
  it('sorts by id naturally, filters and searches', () => {
    expect(computeWard(devs, { sort: 'id', filter: 'all', search: '' }, NOW).ids).toEqual(['D2', 'D3', 'D4', 'D5', 'D10']);
    expect(computeWard(devs, { sort: 'id', filter: 'stale', search: '' }, NOW).ids).toEqual(['D5']);
    expect(computeWard(devs, { sort: 'id', filter: 'technical', search: '' }, NOW).ids).toEqual(['D3', 'D5']);
    expect(computeWard(devs, { sort: 'id', filter: 'all', search: 'd1' }, NOW).ids).toEqual(['D10']);
  });
});
