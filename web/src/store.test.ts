import { describe, expect, it } from 'vitest';
import { applyMessage, DeviceStore, isNewer, newDev, reduceReading, type ApplyResult, type Dev } from './store';
import type { Reading, ServerMsg } from './types';

const out = (): ApplyResult => ({ changed: new Set(), membership: false, results: [] });
const NOW = Date.parse('2026-11-27T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function apply(map: Map<string, Dev>, msgs: ServerMsg[], now = NOW) {
  const o = out();
  for (const m of msgs) applyMessage(map, m, now, o);
  return o;
}

const rd = (p: Partial<Reading>): ServerMsg => ({ type: 'sensor_data', data: { device_id: 'A', ...p } });

describe('snapshot', () => {
  it('creates devices with status, info and last reading', () => {
    const map = new Map<string, Dev>();
    const o = apply(map, [{
      type: 'snapshot', devices: [
        { device_id: 'A', status: 'online', fw: '0.1.0', interval_ms: 500, boot: 7, status_at: iso(NOW - 5000),
          first_seen: iso(NOW - 1e6), last_seen: iso(NOW - 200),
          last: { device_id: 'A', heart_rate: 72, spo2: 98, object_temp: 36.6, ambient_temp: 24.1, seq: 10, boot: 7, ts: NOW - 300, received_at: iso(NOW - 200), battery: 80, rssi: -60 } },
        { device_id: 'B', status: 'offline', last: null },
      ],
    }]);
    expect(o.membership).toBe(true);
    expect([...o.changed].sort()).toEqual(['A', 'B']);
    const a = map.get('A')!;
    expect(a.status).toBe('online');
    expect(a.intervalMs).toBe(500);
    expect(a.boot).toBe(7);
    expect(a.last?.heart_rate).toBe(72);
    expect(a.lastT).toBe(NOW - 300);
    expect(a.lastAt).toBe(NOW - 200); // from received_at
    expect(a.battery).toBe(80);
    expect(a.ring.length).toBe(1);
    expect(map.get('B')!.status).toBe('offline');
    expect(map.get('B')!.last).toBeNull();
  });

  it('replaces the device set and keeps rings of devices still present', () => {
    const map = new Map<string, Dev>();
    apply(map, [{ type: 'snapshot', devices: [{ device_id: 'A', status: 'online' }, { device_id: 'B', status: 'online' }] }]);
    apply(map, [rd({ seq: 1, boot: 1, ts: NOW - 1000, heart_rate: 70, spo2: 97 })]);
    const o = apply(map, [{ type: 'snapshot', devices: [{ device_id: 'A', status: 'online', last: { device_id: 'A', seq: 2, boot: 1, ts: NOW, heart_rate: 71, spo2: 97 } }] }]);
    expect(map.has('B')).toBe(false);
    expect(o.membership).toBe(true);
    expect(map.get('A')!.ring.length).toBe(2);
    expect(map.get('A')!.last?.seq).toBe(2);
  });

  it('received_at in the future (server clock ahead) is capped at now', () => {
    const map = new Map<string, Dev>();
    apply(map, [{ type: 'snapshot', devices: [{ device_id: 'A', status: 'online', last: { device_id: 'A', heart_rate: 70, received_at: iso(NOW + 60000) } }] }]);
    expect(map.get('A')!.lastAt).toBe(NOW);
  });
});

describe('sensor_data', () => {
  it('creates an unknown device and records the reading at local receive time', () => {
    const map = new Map<string, Dev>();
    const o = apply(map, [rd({ heart_rate: 80, spo2: 95, received_at: iso(NOW - 50) })]);
    expect(o.membership).toBe(true);
    const a = map.get('A')!;
    expect(a.last?.heart_rate).toBe(80);
    expect(a.lastAt).toBe(NOW);
    expect(a.lastT).toBe(NOW - 50); // no ts: t is receive time
    expect(a.status).toBe('unknown');
  });

  it('an older reading by seq (same boot) does not overwrite a newer one', () => {
    const map = new Map<string, Dev>();
    apply(map, [rd({ seq: 10, boot: 3, heart_rate: 90, received_at: iso(NOW) })]);
    apply(map, [rd({ seq: 9, boot: 3, heart_rate: 60, received_at: iso(NOW + 1000) })], NOW + 1000);
    const a = map.get('A')!;
    expect(a.last?.seq).toBe(10);
    expect(a.last?.heart_rate).toBe(90);
    expect(a.lastAt).toBe(NOW); // an old reading is no sign of fresh data
    expect(a.ring.length).toBe(2); // but it is history
  });

  it('a redelivered reading (same boot/seq) changes nothing', () => {
    const map = new Map<string, Dev>();
    apply(map, [rd({ seq: 10, boot: 3, ts: NOW, heart_rate: 90 })]);
    apply(map, [rd({ seq: 10, boot: 3, ts: NOW, heart_rate: 90 })]);
    expect(map.get('A')!.ring.length).toBe(1);
  });

  it('an older reading by t does not overwrite a newer one', () => {
    const map = new Map<string, Dev>();
    apply(map, [rd({ ts: NOW, heart_rate: 90 })]);
    apply(map, [rd({ ts: NOW - 5000, heart_rate: 60 })]);
    expect(map.get('A')!.last?.heart_rate).toBe(90);
    const pts = map.get('A')!.ring.range();
    expect(pts.map((p) => p.t)).toEqual([NOW - 5000, NOW]);
  });

  it('after a reboot the current boot wins even with a lower seq; resent readings of the old boot do not', () => {
    const map = new Map<string, Dev>();
    apply(map, [rd({ seq: 500, boot: 7, heart_rate: 70 })]);
    apply(map, [{ type: 'device_status', data: { device_id: 'A', status: 'online', boot: 8, interval_ms: 1000 } }]);
    apply(map, [rd({ seq: 1, boot: 8, heart_rate: 75 })]);
    expect(map.get('A')!.last?.boot).toBe(8);
    // a resend from boot 7 arrives later, without ts: still not newer
    apply(map, [rd({ seq: 501, boot: 7, heart_rate: 50 })]);
    expect(map.get('A')!.last?.boot).toBe(8);
    expect(map.get('A')!.last?.heart_rate).toBe(75);
  });
});

describe('device_status', () => {
  it('updates status, interval, fw and boot; ignores an older status', () => {
    const map = new Map<string, Dev>();
    apply(map, [{ type: 'device_status', data: { device_id: 'A', status: 'online', fw: '0.2.0', interval_ms: 2000, boot: 9, received_at: iso(NOW) } }]);
    let a = map.get('A')!;
    expect([a.status, a.fw, a.intervalMs, a.boot]).toEqual(['online', '0.2.0', 2000, 9]);
    apply(map, [{ type: 'device_status', data: { device_id: 'A', status: 'offline', received_at: iso(NOW + 1) } }]);
    a = map.get('A')!;
    expect(a.status).toBe('offline');
    expect(a.intervalMs).toBe(2000); // offline form carries no interval: kept
    apply(map, [{ type: 'device_status', data: { device_id: 'A', status: 'online', received_at: iso(NOW - 10) } }]);
    expect(map.get('A')!.status).toBe('offline');
  });

  it('maps unknown words to unknown', () => {
    const map = new Map<string, Dev>();
    apply(map, [{ type: 'device_status', data: { device_id: 'A', status: 'weird' } }]);
    expect(map.get('A')!.status).toBe('unknown');
  });
});

describe('isNewer', () => {
  it('without ordering information the latest message wins', () => {
    const d = reduceReading(newDev('A'), { device_id: 'A', heart_rate: 1 }, NOW);
    expect(isNewer(d, { device_id: 'A', heart_rate: 2 })).toBe(true);
  });
});

describe('DeviceStore', () => {
  it('coalesces queued messages into one flush and notifies only changed devices', () => {
    const s = new DeviceStore();
    s.now = () => NOW;
    let a = 0, b = 0, any = 0;
    s.enqueue({ type: 'snapshot', devices: [{ device_id: 'A', status: 'online' }, { device_id: 'B', status: 'online' }] });
    s.flush();
    s.subscribeDevice('A', () => a++);
    s.subscribeDevice('B', () => b++);
    s.subscribeAny(() => any++);
    for (let i = 0; i < 5; i++) s.enqueue({ type: 'sensor_data', data: { device_id: 'A', seq: i, boot: 1, heart_rate: 70 + i } });
    s.flush();
    expect([a, b, any]).toEqual([1, 0, 1]);
    expect(s.get('A')!.last?.heart_rate).toBe(74);
  });

  it('matches command results by cmd_id and cfg_id, even when they arrive first', async () => {
    const s = new DeviceStore();
    s.enqueue({ type: 'command_result', data: { device_id: 'A', cmd_id: 'c-1', cmd: 'ping', ok: true } });
    s.flush();
    expect((await s.waitResult('c-1', 100))?.ok).toBe(true);
    const p = s.waitResult('cfg-2', 1000);
    s.enqueue({ type: 'command_result', data: { device_id: 'A', cfg_id: 'cfg-2', ok: false, error: 'x' } });
    s.flush();
    expect((await p)?.error).toBe('x');
    expect(await s.waitResult('c-never', 20)).toBeNull();
  });
});

describe('resync', () => {
  const snapA = (seq: number, ts: number): ServerMsg => ({ type: 'snapshot', devices: [
    { device_id: 'A', status: 'online', last: { device_id: 'A', seq, boot: 1, ts, heart_rate: 70 } },
    { device_id: 'B', status: 'online', last: { device_id: 'B', seq: 1, boot: 1, ts: NOW - 9000, heart_rate: 60 } }] });

  it('opens a gap after what each device held; the snapshot closes it at its newest reading', () => {
    const map = new Map<string, Dev>();
    apply(map, [snapA(1, NOW - 9000), rd({ seq: 2, boot: 1, ts: NOW - 8000 })]);
    const o = apply(map, [{ type: 'resync', dropped: 40 }], NOW);
    expect(o.resyncs).toBe(1);
    expect(o.dropped).toBe(40);
    expect([...o.changed].sort()).toEqual(['A', 'B']);
    expect(map.get('A')!.gaps).toEqual([{ from: NOW - 8000, to: Infinity, seq: 0 }]);
    apply(map, [snapA(42, NOW)]);
    // A: readings 3..41 went missing between NOW-8000 and NOW; B sent nothing new: no gap
    expect(map.get('A')!.gaps).toEqual([{ from: NOW - 8000, to: NOW, seq: 0 }]);
    expect(map.get('B')!.gaps).toEqual([]);
  });

  it('DeviceStore stamps gaps with its resync count, counts resyncs and reconnects, and refills the ring', () => {
    const s = new DeviceStore();
    s.now = () => NOW;
    s.enqueue(snapA(1, NOW - 10000));
    s.flush();
    s.enqueue({ type: 'resync', dropped: 3 });
    s.enqueue(snapA(5, NOW - 6000));
    s.flush();
    s.enqueue({ type: 'resync', reconnect: true });
    s.enqueue(snapA(7, NOW - 4000));
    s.flush();
    expect(s.resync).toMatchObject({ seq: 2, server: 1, reconnects: 1, dropped: 3, refilled: 0 });
    const a = s.get('A')!;
    expect(a.gaps).toEqual([{ from: NOW - 10000, to: NOW - 6000, seq: 1 }, { from: NOW - 6000, to: NOW - 4000, seq: 2 }]);
    expect(a.ring.range().map((x) => x.t)).toEqual([NOW - 10000, NOW - 6000, NOW - 4000]);
    let told = 0;
    s.subscribeDevice('A', () => told++);
    // history fetched knowing count 1: fills the first gap only (seq 2..4), once
    const hist = [7000, 8000, 9000, 5000, 4500].map((d) => ({ t: NOW - d, hr: 71, spo2: 97, temp: 36, amb: 22 }));
    expect(s.refill('A', hist, 1)).toBe(3);
    expect(s.refill('A', hist, 1)).toBe(0);
    expect(told).toBe(1);
    expect(s.get('A')!.ring.range().map((x) => x.t)).toEqual([NOW - 10000, NOW - 9000, NOW - 8000, NOW - 7000, NOW - 6000, NOW - 4000]);
    expect(s.refill('A', [...hist, { t: NOW - 4000, hr: 72, spo2: 97, temp: 36, amb: 22 }], 2)).toBe(2); // NOW-4000 was held
    expect(s.resync.refilled).toBe(5);
    expect(s.get('A')!.gaps.every((g) => g.filled)).toBe(true);
  });
});
