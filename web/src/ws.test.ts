import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection } from './ws';
import { store } from './store';

class FakeWS {
  static OPEN = 1;
  static all: FakeWS[] = [];
  readyState = 0;
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  sent: string[] = [];
  constructor(public url: string) { FakeWS.all.push(this); }
  send(s: string) { this.sent.push(s); }
  close() { this.readyState = 3; }
  // test helpers
  open() { this.readyState = 1; this.onopen?.(); }
  msg(o: unknown) { this.onmessage?.({ data: JSON.stringify(o) }); }
  drop() { this.readyState = 3; this.onclose?.(); }
}

describe('Connection', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeWS.all = [];
    vi.stubGlobal('WebSocket', FakeWS);
  });
  afterEach(() => { vi.useRealTimers(); vi.unstubAllGlobals(); });

  it('reconnects with growing, capped delays and resyncs from the snapshot', () => {
    const c = new Connection('ws://x/ws');
    (c as unknown as { open(): void }).open();
    expect(FakeWS.all.length).toBe(1);
    FakeWS.all[0].open();
    expect(c.info.state).toBe('connected');
    FakeWS.all[0].drop();
    expect(c.info.state).toBe('reconnecting');
    expect(c.info.attempt).toBe(1);
    // several failures in a row: delays grow but never exceed the cap
    let prevAttempt = c.info.attempt;
    for (let i = 0; i < 8; i++) {
      const delay = c.info.nextRetryAt - Date.now();
      expect(delay).toBeLessThanOrEqual(15000);
      vi.advanceTimersByTime(delay + 1);
      const ws = FakeWS.all[FakeWS.all.length - 1];
      ws.drop();
      expect(c.info.attempt).toBe(prevAttempt + 1);
      prevAttempt = c.info.attempt;
    }
    vi.advanceTimersByTime(c.info.nextRetryAt - Date.now() + 1);
    const ws = FakeWS.all[FakeWS.all.length - 1];
    ws.open();
    ws.msg({ type: 'snapshot', devices: [{ device_id: 'R1', status: 'online' }] });
    expect(c.info.attempt).toBe(0);
    store.flush();
    expect(store.get('R1')?.status).toBe('online');
    expect(Number.isFinite(c.info.lastMessageAt)).toBe(true);
  });

  it('retryNow never leaves two sockets feeding the store', () => {
    const c = new Connection('ws://x/ws');
    (c as unknown as { open(): void }).open();
    FakeWS.all[0].drop();
    c.retryNow();
    expect(FakeWS.all.length).toBe(2);
    vi.advanceTimersByTime(20000); // the scheduled retry was cancelled
    expect(FakeWS.all.length).toBe(2);
    c.stop();
  });

  it('a socket after a lost one opens a gap on every device like a server resync; the first does not', () => {
    const c = new Connection('ws://x/ws');
    (c as unknown as { open(): void }).open();
    FakeWS.all[0].open();
    FakeWS.all[0].msg({ type: 'snapshot', devices: [{ device_id: 'G1', status: 'online', last: { device_id: 'G1', ts: 1000, heart_rate: 70 } }] });
    store.flush();
    const before = { ...store.resync };
    expect(store.get('G1')!.gaps).toEqual([]);
    FakeWS.all[0].drop();
    vi.advanceTimersByTime(c.info.nextRetryAt - Date.now() + 1);
    const ws = FakeWS.all[FakeWS.all.length - 1];
    ws.open();
    ws.msg({ type: 'snapshot', devices: [{ device_id: 'G1', status: 'online', last: { device_id: 'G1', ts: 9000, heart_rate: 72 } }] });
    store.flush();
    expect(store.resync.reconnects).toBe(before.reconnects + 1);
    expect(store.resync.server).toBe(before.server);
    expect(store.get('G1')!.gaps).toEqual([{ from: 1000, to: 9000, seq: before.seq + 1 }]);
    // the server's own resync is counted as one, with what it dropped
    ws.msg({ type: 'resync', dropped: 12 });
    store.flush();
    expect(store.resync.server).toBe(before.server + 1);
    expect(store.resync.dropped).toBe(before.dropped + 12);
    c.stop();
  });

  it('goes offline after a long outage', () => {
    const c = new Connection('ws://x/ws');
    (c as unknown as { open(): void }).open();
    FakeWS.all[0].open();
    FakeWS.all[0].drop();
    vi.advanceTimersByTime(21000);
    FakeWS.all[FakeWS.all.length - 1].drop();
    expect(c.info.state).toBe('offline');
    c.stop();
  });
});

describe('Connection and the session', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeWS.all = [];
    vi.stubGlobal('WebSocket', FakeWS);
  });
  afterEach(() => { vi.useRealTimers(); vi.unstubAllGlobals(); });

  it('a refused upgrade with the session gone (401): stops, no more upgrades', async () => {
    const checks: number[] = [];
    let gone = 0;
    const c = new Connection('ws://x/ws', { checkSession: async () => { checks.push(Date.now()); return 401; }, onUnauthenticated: () => { gone++; } });
    c.start();
    FakeWS.all[0].open();
    FakeWS.all[0].drop();          // the server ended the session and the socket
    await vi.advanceTimersByTimeAsync(0);
    expect(checks.length).toBe(1);
    expect(gone).toBe(1);
    await vi.advanceTimersByTimeAsync(120000);
    expect(FakeWS.all.length).toBe(1); // never tried again
    expect(checks.length).toBe(1);
    c.retryNow();
    expect(FakeWS.all.length).toBe(1);
    // after a new login, start() connects again
    c.start();
    expect(FakeWS.all.length).toBe(2);
    c.stop();
  });

  it('server down (no answer) or session fine: one check per attempt, reconnects with backoff', async () => {
    let status = 0;
    let checks = 0;
    const c = new Connection('ws://x/ws', { checkSession: async () => { checks++; return status; }, onUnauthenticated: () => { throw new Error('not gone'); } });
    c.start();
    FakeWS.all[0].open();
    FakeWS.all[0].drop();
    await vi.advanceTimersByTimeAsync(0);
    expect(checks).toBe(1);
    expect(c.info.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(c.info.nextRetryAt - Date.now() + 1);
    expect(FakeWS.all.length).toBe(2);
    status = 200;
    FakeWS.all[1].drop();
    await vi.advanceTimersByTimeAsync(0);
    expect(checks).toBe(2);
    expect(c.info.attempt).toBe(2);
    await vi.advanceTimersByTimeAsync(c.info.nextRetryAt - Date.now() + 1);
    expect(FakeWS.all.length).toBe(3);
    FakeWS.all[2].open();
    expect(c.info.state).toBe('connected');
    c.stop();
  });

  it('retryNow does nothing while the session check is out', async () => {
    let release: (n: number) => void = () => {};
    const c = new Connection('ws://x/ws', { checkSession: () => new Promise<number>((r) => { release = r; }) });
    c.start();
    FakeWS.all[0].drop();
    c.retryNow();
    expect(FakeWS.all.length).toBe(1);
    release(200);
    await vi.advanceTimersByTimeAsync(0);
    c.retryNow();
    expect(FakeWS.all.length).toBe(2);
    c.stop();
  });
});
