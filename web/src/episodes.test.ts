import { describe, expect, it } from 'vitest';
import { EPISODE_COLOR, clipEpisode, episodesFor, vitalsOf } from './episodes';
import type { Alarm } from './types';

const T = Date.parse('2026-12-01T08:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const al = (id: number, condition: string, priority: string, from: number, to: number | null, kind?: string): Alarm => ({
  alarm_id: id, device_id: 'D', condition, priority, kind, state: to == null ? 'active' : 'cleared',
  started_at: iso(from), cleared_at: to == null ? null : iso(to),
});

describe('alarm episodes on the charts', () => {
  it('each condition goes on the chart of its vital; technical on all', () => {
    expect(vitalsOf('spo2_desat')).toEqual(['spo2']);
    expect(vitalsOf('hr_high')).toEqual(['hr']);
    expect(vitalsOf('temp_low')).toEqual(['temp']);
    expect(vitalsOf('news2')).toEqual(['spo2', 'hr']);
    expect(vitalsOf('offline')).toEqual(['hr', 'spo2', 'temp']);
  });
  it('spans, colours by priority, strips for technical, oldest first', () => {
    const rows = [
      al(3, 'offline', 'medium', T + 60_000, null, 'technical'),
      al(2, 'spo2_low', 'medium', T + 10_000, T + 20_000, 'physiological'),
      al(1, 'spo2_desat', 'high', T, T + 30_000, 'physiological'),
      al(4, 'hr_high', 'medium', T, T + 5_000, 'physiological'),
    ];
    const sp = episodesFor(rows, 'spo2');
    expect(sp.map((e) => e.alarmId)).toEqual([1, 2, 3]);
    expect(sp[0]).toMatchObject({ from: T / 1000, to: (T + 30_000) / 1000, color: EPISODE_COLOR.high, strip: false });
    expect(sp[1].color).toBe(EPISODE_COLOR.medium);
    expect(sp[2]).toMatchObject({ strip: true, to: Infinity }); // still open
    expect(episodesFor(rows, 'hr').map((e) => e.alarmId)).toEqual([4, 3]);
    expect(episodesFor(rows, 'temp').map((e) => e.alarmId)).toEqual([3]);
  });
  it('clips to the visible range', () => {
    const [e] = episodesFor([al(1, 'spo2_desat', 'high', T, T + 30_000)], 'spo2');
    expect(clipEpisode(e, T / 1000 + 10, T / 1000 + 100)).toEqual([T / 1000 + 10, T / 1000 + 30]);
    expect(clipEpisode(e, T / 1000 + 31, T / 1000 + 100)).toBeNull();
    const [open] = episodesFor([al(2, 'spo2_low', 'low', T, null)], 'spo2');
    expect(clipEpisode(open, T / 1000, T / 1000 + 50)).toEqual([T / 1000, T / 1000 + 50]);
  });
  it('skips rows without a start time', () => {
    expect(episodesFor([{ alarm_id: 9, device_id: 'D', condition: 'spo2_low', priority: 'high', state: 'active' }], 'spo2')).toEqual([]);
  });
});
