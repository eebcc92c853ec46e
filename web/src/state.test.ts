import { describe, expect, it } from 'vitest';
import { deviceState, isStale, staleAfterMs } from './state';
import { backoffDelay } from './backoff';
import { formatAge } from './time';

const N = 1_000_000;
const base = { status: 'online', intervalMs: 1000, lastReadingAt: N, hr: 70, spo2: 97, hrValid: true, spo2Valid: true };

describe('staleness', () => {
  it('stale after 3x the announced interval (default 1 s, floor 3 s)', () => {
    expect(staleAfterMs(undefined)).toBe(3000);
    expect(staleAfterMs(null)).toBe(3000);
    expect(staleAfterMs(5000)).toBe(15000);
    expect(staleAfterMs(100)).toBe(3000);
    expect(isStale(N, 1000, N + 3000)).toBe(false);
    expect(isStale(N, 1000, N + 3001)).toBe(true);
    expect(isStale(N, 10000, N + 29000)).toBe(false);
    expect(isStale(NaN, 1000, N)).toBe(true);
  });
  it('device state', () => {
    expect(deviceState(base, N + 500)).toBe('online');
    expect(deviceState({ ...base, status: 'offline' }, N + 500)).toBe('offline');
    expect(deviceState({ ...base, status: 'unknown' }, N + 500)).toBe('online');
    expect(deviceState(base, N + 4000)).toBe('stale');
    expect(deviceState({ ...base, hrValid: false }, N)).toBe('nosignal');
    expect(deviceState({ ...base, spo2Valid: false }, N)).toBe('nosignal');
    expect(deviceState({ ...base, hr: null }, N)).toBe('nosignal');
    expect(deviceState({ ...base, spo2: undefined }, N)).toBe('nosignal');
    expect(deviceState({ ...base, lastReadingAt: NaN }, N)).toBe('stale');
    // offline wins over stale
    expect(deviceState({ ...base, status: 'offline' }, N + 1e6)).toBe('offline');
  });
  it('formats ages', () => {
    expect(formatAge(0)).toBe('0 s');
    expect(formatAge(59_999)).toBe('59 s');
    expect(formatAge(60_000)).toBe('1 min');
    expect(formatAge(3 * 3600e3)).toBe('3 h');
    expect(formatAge(NaN)).toBe('—');
  });
});

describe('backoff', () => {
  it('grows exponentially with jitter and is capped', () => {
    expect(backoffDelay(0, 500, 15000, () => 0)).toBe(250);
    expect(backoffDelay(0, 500, 15000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, 15000, () => 1)).toBe(4000);
    expect(backoffDelay(20, 500, 15000, () => 1)).toBe(15000);
    expect(backoffDelay(20, 500, 15000, () => 0)).toBe(7500);
  });
});
