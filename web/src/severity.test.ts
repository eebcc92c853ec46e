import { describe, expect, it } from 'vitest';
import { NEWS2_LABEL, NEWS2_NOT_MEASURED, news2Level, rank, subScoreClass } from './severity';
import { computeWard } from './ward';
import { newDev, reduceDeviceInfo, reduceReading, reduceStatus } from './store';
import type { News2 } from './types';

const n2 = (spo2: number, pulse: number): News2 => ({ score: spo2 + pulse, partial: true, measured: ['spo2', 'pulse'], spo2, pulse });

describe('partial NEWS2 presentation (the server scores)', () => {
  it('levels from the server score', () => {
    expect(news2Level(null)).toBe('none');
    expect(news2Level(undefined)).toBe('none');
    expect(news2Level(n2(0, 0))).toBe('none');
    expect(news2Level(n2(1, 0))).toBe('low');
    expect(news2Level(n2(3, 0))).toBe('lowmedium');
    expect(news2Level(n2(2, 2))).toBe('low');
    expect(news2Level(n2(3, 2))).toBe('medium');
    expect(news2Level(n2(3, 3))).toBe('medium');
    expect(news2Level({ score: 7 })).toBe('high');
  });
  it('sub-score colour classes', () => {
    expect([0, 1, 2, 3].map(subScoreClass)).toEqual(['', 's1', 's2', 's3']);
    expect(subScoreClass(undefined)).toBe('');
  });
  it('says what is not measured', () => {
    expect(NEWS2_LABEL).toBe('partial NEWS2 (SpO₂, pulse)');
    for (const w of ['respiration rate', 'blood pressure', 'consciousness', 'temperature (core)', 'O₂']) expect(NEWS2_NOT_MEASURED).toContain(w);
  });
  it('rank: clinical urgent > technical > low > normal; old scores do not count', () => {
    expect(rank('online', 'high')).toBeGreaterThan(rank('offline', 'none'));
    expect(rank('offline', 'none')).toBeGreaterThan(rank('online', 'low'));
    expect(rank('stale', 'high')).toBe(rank('stale', 'none'));
    expect(rank('online', 'low')).toBeGreaterThan(rank('online', 'none'));
  });
});

describe('news2 reducer', () => {
  it('a scored reading sets it; an unscored one keeps it; the DEVICE object is authoritative', () => {
    let d = newDev('D');
    expect(d.news2).toBeNull();
    d = reduceReading(d, { device_id: 'D', heart_rate: 115, spo2: 92, seq: 1, boot: 1, news2: n2(2, 2) }, 1000);
    expect(d.news2?.score).toBe(4);
    d = reduceReading(d, { device_id: 'D', heart_rate: null, spo2: null, spo2_valid: false, seq: 2, boot: 1 }, 2000);
    expect(d.news2?.score).toBe(4);
    // an older reading (out of order) does not replace the current score
    d = reduceReading(d, { device_id: 'D', heart_rate: 72, spo2: 98, seq: 0, boot: 1, news2: n2(0, 0) }, 3000);
    expect(d.news2?.score).toBe(4);
    d = reduceDeviceInfo(d, { device_id: 'D', status: 'online', news2: n2(3, 3) }, 4000);
    expect(d.news2?.score).toBe(6);
    d = reduceDeviceInfo(d, { device_id: 'D', status: 'online', news2: null }, 5000);
    expect(d.news2).toBeNull();
  });
  it('never computes a score from the values itself', () => {
    const d = reduceReading(newDev('D'), { device_id: 'D', heart_rate: 140, spo2: 80, seq: 1, boot: 1 }, 1000);
    expect(d.news2).toBeNull();
  });
});

describe('ward list', () => {
  const NOW = 5_000_000;
  // the server's score is what counts: values alone do not rank a device
  const mk = (id: string, score: News2 | undefined, status = 'online', age = 0) => {
    let d = reduceStatus(newDev(id), { device_id: id, status, interval_ms: 1000 });
    d = reduceReading(d, { device_id: id, heart_rate: 72, spo2: 98, object_temp: 36.8, hr_valid: true, spo2_valid: true, news2: score }, NOW - age);
    return d;
  };
  const devs = [
    mk('D10', n2(0, 0)),
    mk('D2', n2(3, 3)),
    mk('D3', n2(3, 3), 'offline'),
    mk('D4', n2(0, 1)),
    mk('D5', n2(3, 3), 'online', 10_000),
    mk('D6', undefined),
    mk('D7', n2(3, 2)),
  ];
  it('sorts worst first by the server score, then by id', () => {
    const w = computeWard(devs, { sort: 'severity', filter: 'all', search: '' }, NOW);
    expect(w.ids).toEqual(['D2', 'D7', 'D3', 'D5', 'D4', 'D6', 'D10']);
    expect(w.counts).toEqual({ total: 7, alarm: 2, technical: 2, ok: 3 });
  });
  it('sorts by id naturally, filters and searches', () => {
    expect(computeWard(devs, { sort: 'id', filter: 'all', search: '' }, NOW).ids).toEqual(['D2', 'D3', 'D4', 'D5', 'D6', 'D7', 'D10']);
    expect(computeWard(devs, { sort: 'id', filter: 'stale', search: '' }, NOW).ids).toEqual(['D5']);
    expect(computeWard(devs, { sort: 'id', filter: 'technical', search: '' }, NOW).ids).toEqual(['D3', 'D5']);
    expect(computeWard(devs, { sort: 'id', filter: 'all', search: 'd1' }, NOW).ids).toEqual(['D10']);
  });
});
