import { alarmStore } from './alarms';
import { backoffDelay } from './backoff';
import { store } from './store';
import { afterSessionCheck } from './session';
import { checkSession } from './auth';
import type { ServerMsg } from './types';

export type ConnState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export interface ConnInfo {
  state: ConnState;
  lastMessageAt: number;   // local ms, NaN before the first
  connectedAt: number;
  disconnectedAt: number;
  nextRetryAt: number;
  attempt: number;
}

/** After this long without a connection the indicator says offline (still retrying). */
const OFFLINE_AFTER_MS = 20000;

type Listener = () => void;

export interface ConnectionOptions {
  /**
   * GET /api/session → its HTTP status (0 = no answer). Asked after every close
   * before reconnecting: the browser does not expose why an upgrade was refused,
   * and a server that answers 401 must not be hammered with upgrades.
   */
  checkSession?: () => Promise<number>;
  /** The session is gone: the connection stops until start() again. */
  onUnauthenticated?: () => void;
}

export class Connection {
  info: ConnInfo = { state: 'connecting', lastMessageAt: NaN, connectedAt: NaN, disconnectedAt: NaN, nextRetryAt: NaN, attempt: 0 };
  private ws: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<Listener>();
  private stopped = false;
  private checking = false;
  private listening = false;
  private opened = false;   // a socket of ours has opened before

  constructor(private url: string, private opts: ConnectionOptions = {}) {}

  subscribe = (l: Listener): (() => void) => { this.listeners.add(l); return () => { this.listeners.delete(l); }; };
  get = (): ConnInfo => this.info;

  private set(p: Partial<ConnInfo>): void {
    this.info = { ...this.info, ...p };
    for (const l of this.listeners) l();
  }

  start(): void {
    if (!this.stopped && (this.ws || this.timer || this.checking)) return;
    this.stopped = false;
    this.set({ state: 'connecting', attempt: 0, disconnectedAt: NaN, nextRetryAt: NaN });
    this.open();
    if (typeof window !== 'undefined' && !this.listening) {
      this.listening = true;
      window.addEventListener('online', () => this.retryNow());
      window.addEventListener('offline', () => { this.set({ state: 'offline' }); });
      document.addEventListener('visibilitychange', () => {
        if (!document.hidden && this.info.state !== 'connected') this.retryNow();
      });
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch { /* already closed */ }
    }
  }

  retryNow(): void {
    if (this.stopped || this.checking || this.info.state === 'connected' || this.info.state === 'connecting') return;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.open();
  }

  private open(): void {
    const old = this.ws;
    if (old) {
      // never two sockets feeding the store
      this.ws = null;
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try { old.close(); } catch { /* already closed */ }
    }
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    if (this.info.state !== 'reconnecting' && this.info.state !== 'offline') this.set({ state: 'connecting' });
    ws.onopen = () => {
      if (this.ws !== ws) return;
      // a socket after a lost one: whatever was sent meanwhile is missing, as after a
      // server resync (the snapshot that follows closes the gap; store.ts)
      if (this.opened) store.enqueue({ type: 'resync', reconnect: true });
      this.opened = true;
      this.set({ state: 'connected', connectedAt: Date.now(), nextRetryAt: NaN });
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.info.lastMessageAt = Date.now();
      let msg: ServerMsg;
      try { msg = JSON.parse(typeof ev.data === 'string' ? ev.data : ''); } catch { return; }
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'snapshot') this.set({ attempt: 0 }); // resynced: backoff resets
      store.enqueue(msg);
      alarmStore.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (this.info.state === 'connected') this.set({ disconnectedAt: Date.now() });
      this.afterClose();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  /** Reconnect with backoff, unless the session check says the session is gone. */
  private afterClose(): void {
    const check = this.opts.checkSession;
    if (!check) { this.scheduleRetry(); return; }
    this.checking = true;
    if (this.info.state === 'connected' || this.info.state === 'connecting') this.set({ state: 'reconnecting' });
    check().catch(() => 0).then((status) => {
      this.checking = false;
      if (this.stopped) return;
      if (afterSessionCheck(status) === 'expired') {
        this.stop();
        this.opts.onUnauthenticated?.();
        return;
      }
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    const attempt = this.info.attempt;
    const delay = backoffDelay(attempt);
    const down = Number.isFinite(this.info.disconnectedAt) ? Date.now() - this.info.disconnectedAt : Infinity;
    const offline = (typeof navigator !== 'undefined' && navigator.onLine === false) || down > OFFLINE_AFTER_MS;
    if (!Number.isFinite(this.info.disconnectedAt)) this.info.disconnectedAt = Date.now();
    this.set({ state: offline ? 'offline' : 'reconnecting', attempt: attempt + 1, nextRetryAt: Date.now() + delay });
    this.timer = setTimeout(() => { this.timer = null; this.open(); }, delay);
  }

  /** Narrow the stream (null = all devices). The server answers with a snapshot. */
  send(obj: unknown): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }
}

function wsUrl(): string {
  const loc = window.location;
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}

export const connection = new Connection(typeof window !== 'undefined' ? wsUrl() : 'ws://localhost/ws', {
  // the session store hears the 401 itself (checkSession dispatches it)
  checkSession,
});
