import { useCallback, useSyncExternalStore } from 'react';
import { alarmStore } from './alarms';
import type { Alarm } from './types';
import { clock, store, type Dev } from './store';
import { deviceState } from './state';
import { news2Level, type DevState, type Level } from './severity';
import type { News2 } from './types';
import { connection, type ConnInfo } from './ws';

export function stateOf(d: Dev | undefined, now: number): DevState {
  if (!d) return 'stale';
  const r = d.last;
  return deviceState({
    status: d.status, intervalMs: d.intervalMs, lastReadingAt: d.lastAt,
    hrValid: r?.hr_valid, spo2Valid: r?.spo2_valid, hr: r?.heart_rate, spo2: r?.spo2,
  }, now);
}

/** The server's partial NEWS2 of a device and its level (none when not scored). */
export function news2Of(d: Dev | undefined): { news2: News2 | null; level: Level } {
  const n = d?.news2 ?? null;
  return { news2: n, level: news2Level(n) };
}

/** The device record; re-renders only when this device changes. */
export function useDevice(id: string): Dev | undefined {
  const sub = useCallback((l: () => void) => store.subscribeDevice(id, l), [id]);
  return useSyncExternalStore(sub, () => store.get(id));
}

/** The device's state (clock-dependent); re-renders only when the state string changes. */
export function useDevState(id: string): DevState {
  const sub = useCallback((l: () => void) => {
    const a = store.subscribeDevice(id, l);
    const b = clock.subscribe(l);
    return () => { a(); b(); };
  }, [id]);
  return useSyncExternalStore(sub, () => stateOf(store.get(id), clock.now()));
}

export function useClock(): number {
  return useSyncExternalStore(clock.subscribe, clock.now);
}

export function useConnection(): ConnInfo {
  return useSyncExternalStore(connection.subscribe, connection.get);
}

/** Every open alarm, highest priority first, then oldest. */
export function useAlarms(): Alarm[] {
  return useSyncExternalStore(alarmStore.subscribe, alarmStore.list);
}

/** One device's open alarms (same order). */
export function useDeviceAlarms(id: string): Alarm[] {
  return useSyncExternalStore(alarmStore.subscribe, () => alarmStore.forDevice(id));
}
