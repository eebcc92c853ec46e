import { describe, expect, it } from 'vitest';
import { AlarmStore, alarmControls, fmtCountdown, silenceLeftS, sortAlarms, soundPlan, upsertAlarm, replaceDeviceAlarms, valueText, visualOf, type AlarmMap } from './alarms';
import { burst } from './sound';
import type { Alarm } from './types';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const al = (over: Partial<Alarm>): Alarm => ({
  alarm_id: 1, device_id: 'D1', condition: 'spo2_desat', kind: 'physiological', priority: 'high', state: 'active',
  value: 80, limit: 85, started_at: iso(T0), cleared_at: null, acked_by: null, acked_at: null, silenced_until: null,
  escalation: 0, retrospective: false, ...over,
});

describe('alarm store', () => {
  it('upserts by alarm_id and removes on cleared', () => {
    const m: AlarmMap = new Map();
    expect(upsertAlarm(m, al({}))).toBe(true);
    expect(upsertAlarm(m, al({ state: 'acked', acked_by: 'clin' }))).toBe(true);
    expect(m.size).toBe(1);
    expect(m.get(1)!.state).toBe('acked');
    expect(upsertAlarm(m, al({ state: 'cleared' }))).toBe(true);
    expect(m.size).toBe(0);
    expect(upsertAlarm(m, al({ alarm_id: 9, state: 'cleared' }))).toBe(false);
    expect(upsertAlarm(m, { device_id: 'x' } as unknown as Alarm)).toBe(false);
  });

  it('sorts by priority, then oldest first', () => {
    const list = sortAlarms([
      al({ alarm_id: 1, priority: 'low', started_at: iso(T0 - 9e5) }),
      al({ alarm_id: 2, priority: 'high', started_at: iso(T0) }),
      al({ alarm_id: 3, priority: 'medium', started_at: iso(T0 - 5000) }),
      al({ alarm_id: 4, priority: 'high', started_at: iso(T0 - 1000) }),
    ]);
    expect(list.map((a) => a.alarm_id)).toEqual([4, 2, 3, 1]);
  });

  it('DEVICE alarms replace only that device', () => {
    const m: AlarmMap = new Map();
    upsertAlarm(m, al({ alarm_id: 1, device_id: 'D1' }));
    upsertAlarm(m, al({ alarm_id: 2, device_id: 'D1' }));
    upsertAlarm(m, al({ alarm_id: 3, device_id: 'D2' }));
    replaceDeviceAlarms(m, 'D1', [al({ alarm_id: 2, device_id: 'D1', state: 'latched' })]);
    expect([...m.keys()].sort()).toEqual([2, 3]);
    expect(m.get(2)!.state).toBe('latched');
  });

  it('a snapshot replaces everything, then alarm messages and GET /api/alarms apply', () => {
    const s = new AlarmStore();
    let n = 0;
    s.subscribe(() => n++);
    s.onMessage({ type: 'alarm', data: al({ alarm_id: 7, device_id: 'OLD' }) });
    s.onMessage({ type: 'snapshot', devices: [
      { device_id: 'D1', alarms: [al({ alarm_id: 1, priority: 'medium', condition: 'spo2_low' })] },
      { device_id: 'D2', alarms: [al({ alarm_id: 2, device_id: 'D2' })] },
      { device_id: 'D3' },
    ] });
    expect(s.list().map((a) => a.alarm_id)).toEqual([2, 1]);
    s.onMessage({ type: 'alarm', data: al({ alarm_id: 2, device_id: 'D2', state: 'cleared' }) });
    expect(s.list().map((a) => a.alarm_id)).toEqual([1]);
    expect(s.forDevice('D1')).toHaveLength(1);
    expect(s.forDevice('D2')).toHaveLength(0);
    s.setAll([al({ alarm_id: 5, device_id: 'D9' })]);
    expect(s.list().map((a) => a.alarm_id)).toEqual([5]);
    s.onMessage({ type: 'sensor_data', data: {} });
    expect(n).toBe(4);
  });
});

describe('alarm display', () => {
  it('IEC 60601-1-8 visual classes', () => {
    expect(visualOf(al({ priority: 'high' }))).toMatchObject({ colour: 'red', flash: 'fast', marker: '!!!' });
    expect(visualOf(al({ priority: 'high', state: 'latched' })).flash).toBe('fast');
    expect(visualOf(al({ priority: 'medium' }))).toMatchObject({ colour: 'yellow', flash: 'slow', marker: '!!' });
    expect(visualOf(al({ priority: 'low' }))).toMatchObject({ colour: 'cyan', flash: 'none', marker: '!' });
    expect(visualOf(al({ priority: 'high', state: 'acked' })).flash).toBe('none');
    expect(visualOf(al({ priority: 'high', state: 'acked' })).className).toBe('al al-high flash-none');
    expect(visualOf(al({ priority: 'medium', retrospective: true })).flash).toBe('none');
  });

  it('silence countdown', () => {
    const a = al({ silenced_until: iso(T0 + 120000) });
    expect(silenceLeftS(a, T0)).toBe(120);
    expect(silenceLeftS(a, T0 + 119001)).toBe(1);
    expect(silenceLeftS(a, T0 + 120000)).toBe(0);
    expect(silenceLeftS(al({}), T0)).toBe(0);
    expect(fmtCountdown(120)).toBe('2:00');
    expect(fmtCountdown(65)).toBe('1:05');
  });

  it('values in words', () => {
    expect(valueText(al({}))).toBe('80 % (limit 85 %)');
    expect(valueText(al({ condition: 'offline', value: null, limit: null }))).toBe('');
    expect(valueText(al({ condition: 'news2', news2: { score: 6, partial: true } }))).toBe('score 6 (partial)');
  });

  it('controls by role: clinician and above', () => {
    expect(alarmControls('viewer')).toEqual({ ack: false, silence: false, edit: false });
    expect(alarmControls(null)).toEqual({ ack: false, silence: false, edit: false });
    for (const r of ['clinician', 'technician', 'admin'] as const) expect(alarmControls(r)).toEqual({ ack: true, silence: true, edit: true });
  });
});

describe('sound', () => {
  it('is off unless enabled; plays the highest audible priority', () => {
    const hi = al({ alarm_id: 1 }), med = al({ alarm_id: 2, priority: 'medium' });
    expect(soundPlan(false, [hi], T0)).toEqual({ state: 'off', play: null });
    expect(soundPlan(true, [med, hi], T0)).toEqual({ state: 'on', play: 'high' });
    expect(soundPlan(true, [med], T0)).toEqual({ state: 'on', play: 'medium' });
    expect(soundPlan(true, [], T0)).toEqual({ state: 'on', play: null });
    expect(soundPlan(true, [al({ priority: 'low' })], T0).play).toBeNull();
  });
  it('never for acked or retrospective alarms; paused while silenced', () => {
    expect(soundPlan(true, [al({ state: 'acked' })], T0).play).toBeNull();
    expect(soundPlan(true, [al({ retrospective: true })], T0).play).toBeNull();
    const sil = al({ silenced_until: iso(T0 + 60000) });
    expect(soundPlan(true, [sil], T0)).toEqual({ state: 'paused', play: null });
    expect(soundPlan(true, [sil], T0 + 60000)).toEqual({ state: 'on', play: 'high' });
    expect(soundPlan(true, [sil, al({ alarm_id: 3, priority: 'medium' })], T0)).toEqual({ state: 'on', play: 'medium' });
  });
  it('pulse patterns: 10 for high (3+2, 3+2), 3 for medium, within IEC ranges', () => {
    const h = burst('high'), m = burst('medium');
    expect(h).toHaveLength(10);
    expect(m).toHaveLength(3);
    for (const p of [...h, ...m]) expect(p.dur).toBeGreaterThanOrEqual(0.075), expect(p.dur).toBeLessThanOrEqual(0.2);
    const gaps = h.slice(1).map((p, i) => Math.round((p.at - h[i].at - h[i].dur) * 1000));
    expect(gaps).toEqual([75, 75, 250, 75, 500, 75, 75, 250, 75]);
    const mg = m.slice(1).map((p, i) => Math.round((p.at - m[i].at - m[i].dur) * 1000));
    for (const g of mg) expect(g).toBeGreaterThanOrEqual(125), expect(g).toBeLessThanOrEqual(250);
  });
});
