// Page-only load generator: ?synthetic=1000&hz=1 feeds the store with N devices
// at hz readings/s each, spread evenly over the second, as the WebSocket would.
import { store } from './store';
import type { Reading } from './types';

export function startSynthetic(n: number, hz: number): void {
  const ids = Array.from({ length: n }, (_, i) => `SIM_${String(i + 1).padStart(4, '0')}`);
  const seq = new Array<number>(n).fill(0);
  const now0 = Date.now();
  store.enqueue({
    type: 'snapshot',
    devices: ids.map((id) => ({ device_id: id, status: 'online', fw: '0.1.0', interval_ms: Math.round(1000 / hz), boot: 1, last: null, status_at: new Date(now0).toISOString() })),
  });
  const reading = (i: number, t: number): Reading => {
    const s = seq[i]++;
    const base = (i * 7919) % 100;
    const sick = i % 17 === 0;
    return {
      device_id: ids[i], sensor_type: 'MAX30614', seq: s, boot: 1, ts: t, timestamp: s * 1000,
      received_at: new Date(t).toISOString(),
      heart_rate: Math.round((sick ? 118 : 60 + base * 0.3) + 4 * Math.sin(t / 7000 + i)),
      spo2: Math.round(sick ? 92 : 97 + Math.sin(t / 9000 + i)),
      object_temp: Math.round((36.6 + (sick ? 2 : 0) + 0.2 * Math.sin(t / 20000 + i)) * 10) / 10,
      ambient_temp: 24.1, hr_valid: i % 53 !== 0, spo2_valid: i % 53 !== 0, temp_valid: true,
      battery: 50 + (i % 50), rssi: -40 - (i % 50), fw: '0.1.0',
    };
  };
  // tick every 20 ms, each tick sending the slice of devices due in it
  const tickMs = 20;
  const perTick = (n * hz * tickMs) / 1000;
  let acc = 0, next = 0;
  setInterval(() => {
    acc += perTick;
    const t = Date.now();
    while (acc >= 1) {
      acc -= 1;
      store.enqueue({ type: 'sensor_data', data: reading(next, t) });
      next = (next + 1) % n;
    }
  }, tickMs);
  (window as unknown as { __vigilStore: typeof store }).__vigilStore = store;
}
