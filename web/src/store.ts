// Device state lives here, outside React: a Map of per-device records that are
// replaced (never mutated) on change, plus per-device listeners. WebSocket
// messages are queued and applied once per animation frame, so a burst of
// 1,000 readings costs one pass and one notification per changed device.
// A `resync` (the server dropped what it had queued for us) or a reconnect opens a
// gap on every device (gaps.ts); the snapshot that follows closes it, and views
// holding a window of readings refetch it from REST (useSeries.ts).

import { Ring } from './ring';
import { closeGaps, inGap, NO_GAPS, openGap, type Gap } from './gaps';
import { num, parseIso, readingTime } from './time';
import type { CommandResult, DeviceInfo, News2, Point, Reading, ServerMsg, StatusMsg } from './types';

export const RING_CAP = 600;
const RESULTS_CAP = 500;

export interface Dev {
  id: string;
  status: string;          // online | offline | unknown
  statusAt: number;        // server ms of the status we hold (NaN if unknown)
  fw?: string;
  intervalMs?: number;
  boot?: number;           // current boot as announced by status
  firstSeen?: string;
  lastSeen?: string;
  last: Reading | null;    // newest reading
  lastT: number;           // its t (ts, else receive time)
  lastAt: number;          // local ms it was received (drives staleness)
  battery?: number;
  rssi?: number;
  sensorType?: string;
  news2: News2 | null;     // the server's current partial NEWS2 (never computed here)
  ring: Ring;              // recent live points, shared across record versions
  gaps: readonly Gap[];    // where the live stream skipped readings (gaps.ts), oldest first
  rev: number;             // bumps on every change
}

export function newDev(id: string, cap = RING_CAP): Dev {
  return { id, status: 'unknown', statusAt: NaN, last: null, lastT: NaN, lastAt: NaN, news2: null, ring: new Ring(cap), gaps: NO_GAPS, rev: 0 };
}

/**
 * Is reading r newer than what dev holds? Same boot: by seq. Different boots:
 * the one matching the device's announced current boot wins. Otherwise by t.
 */
export function isNewer(dev: Dev, r: Reading): boolean {
  const L = dev.last;
  if (!L) return true;
  if (r.boot != null && L.boot != null && r.seq != null && L.seq != null) {
    if (r.boot === L.boot) return r.seq > L.seq;
    if (dev.boot != null) {
      if (r.boot === dev.boot && L.boot !== dev.boot) return true;
      if (L.boot === dev.boot && r.boot !== dev.boot) return false;
    }
  }
  const rt = readingTime(r);
  if (Number.isFinite(rt) && Number.isFinite(dev.lastT)) return rt >= dev.lastT;
  return true;
}

function pointOf(r: Reading, t: number) {
  return { t, hr: num(r.heart_rate), spo2: num(r.spo2), temp: num(r.object_temp), amb: num(r.ambient_temp) };
}

/**
 * Applies a reading; returns the new record, or the same one if nothing changed.
 * `receivedAt` is the local time the reading is known to have arrived (for a live
 * message: now; for a snapshot: its received_at, capped at now).
 */
export function reduceReading(dev: Dev, r: Reading, receivedAt: number): Dev {
  const t = readingTime(r);
  if (Number.isFinite(t)) dev.ring.push(pointOf(r, t));
  if (!isNewer(dev, r)) {
    // an older reading only adds to the history ring
    return Number.isFinite(t) ? { ...dev, rev: dev.rev + 1 } : dev;
  }
  return {
    ...dev,
    last: r,
    lastT: t,
    lastAt: Number.isFinite(dev.lastAt) ? Math.max(dev.lastAt, receivedAt) : receivedAt,
    battery: r.battery ?? dev.battery,
    rssi: r.rssi ?? dev.rssi,
    fw: r.fw ?? dev.fw,
    sensorType: r.sensor_type ?? dev.sensorType,
    // a reading the server did not score (no valid SpO2/pulse pair) leaves the
    // current score as the server does
    news2: r.news2 ?? dev.news2,
    lastSeen: r.received_at ?? dev.lastSeen,
    rev: dev.rev + 1,
  };
}

export function reduceStatus(dev: Dev, s: StatusMsg): Dev {
  const at = parseIso(s.received_at);
  if (Number.isFinite(at) && Number.isFinite(dev.statusAt) && at < dev.statusAt) return dev;
  const status = s.status === 'online' || s.status === 'offline' ? s.status : 'unknown';
  return {
    ...dev,
    status,
    statusAt: Number.isFinite(at) ? at : dev.statusAt,
    fw: s.fw ?? dev.fw,
    intervalMs: s.interval_ms ?? dev.intervalMs,
    boot: s.boot ?? dev.boot,
    rev: dev.rev + 1,
  };
}

export function reduceDeviceInfo(prev: Dev | undefined, d: DeviceInfo, now: number): Dev {
  let dev: Dev = prev ?? newDev(d.device_id);
  dev = reduceStatus(dev, {
    device_id: d.device_id,
    status: d.status,
    fw: d.fw,
    interval_ms: d.interval_ms,
    boot: d.boot,
    received_at: d.status_at ?? undefined,
  });
  dev = { ...dev, firstSeen: d.first_seen ?? dev.firstSeen, lastSeen: d.last_seen ?? dev.lastSeen, rev: dev.rev + 1 };
  if (d.last) {
    const rat = parseIso(d.last.received_at);
    dev = reduceReading(dev, { ...d.last, device_id: d.device_id }, Number.isFinite(rat) ? Math.min(rat, now) : now);
  }
  // the DEVICE's own news2 is the server's current one (an older vigild sends none)
  if (d.news2 !== undefined) dev = { ...dev, news2: d.news2, rev: dev.rev + 1 };
  return dev;
}

export interface ApplyResult {
  changed: Set<string>;
  membership: boolean;   // a device appeared or disappeared
  results: CommandResult[];
  resyncs?: number;      // server resyncs applied
  reconnects?: number;   // reconnects applied (ws.ts's own resync)
  dropped?: number;      // messages the server said it dropped
}

/** The newest t held for dev (ring or last reading), -Infinity if none. */
function heldT(dev: Dev): number {
  const r = dev.ring.lastT();
  return Number.isFinite(dev.lastT) && dev.lastT > r ? dev.lastT : r;
}

/**
 * Pure-ish reducer over the map (records are replaced, rings are shared).
 * gapSeq: the resync count to stamp a gap opened by a `resync` with (gaps.ts).
 */
export function applyMessage(map: Map<string, Dev>, msg: ServerMsg, now: number, out: ApplyResult, gapSeq = 0): void {
  switch (msg.type) {
    case 'resync': {
      // every device may have missed readings until the snapshot that follows
      for (const [id, dev] of map) {
        map.set(id, { ...dev, gaps: openGap(dev.gaps, heldT(dev), gapSeq), rev: dev.rev + 1 });
        out.changed.add(id);
      }
      if (msg.reconnect) out.reconnects = (out.reconnects ?? 0) + 1;
      else out.resyncs = (out.resyncs ?? 0) + 1;
      if (typeof msg.dropped === 'number' && msg.dropped > 0) out.dropped = (out.dropped ?? 0) + msg.dropped;
      break;
    }
    case 'snapshot': {
      const seen = new Set<string>();
      for (const d of msg.devices ?? []) {
        if (!d || typeof d.device_id !== 'string') continue;
        seen.add(d.device_id);
        const prev = map.get(d.device_id);
        if (!prev) out.membership = true;
        let next = reduceDeviceInfo(prev, d, now);
        if (next.gaps !== NO_GAPS) {
          const gaps = closeGaps(next.gaps, heldT(next));
          if (gaps !== next.gaps) next = { ...next, gaps };
        }
        map.set(d.device_id, next);
        out.changed.add(d.device_id);
      }
      for (const id of [...map.keys()]) {
        if (!seen.has(id)) { map.delete(id); out.changed.add(id); out.membership = true; }
      }
      break;
    }
    case 'sensor_data': {
      const r = msg.data;
      if (!r || typeof r.device_id !== 'string') return;
      let dev = map.get(r.device_id);
      if (!dev) { dev = newDev(r.device_id); out.membership = true; }
      const next = reduceReading(dev, r, now);
      if (next !== dev || !map.has(r.device_id)) { map.set(r.device_id, next); out.changed.add(r.device_id); }
      break;
    }
    case 'device_status': {
      const s = msg.data;
      if (!s || typeof s.device_id !== 'string') return;
      let dev = map.get(s.device_id);
      if (!dev) { dev = newDev(s.device_id); out.membership = true; }
      const next = reduceStatus(dev, s);
      if (next !== dev || !map.has(s.device_id)) { map.set(s.device_id, next); out.changed.add(s.device_id); }
      break;
    }
    case 'command_result':
      if (msg.data) out.results.push(msg.data);
      break;
    default:
      break;
  }
}

type Listener = () => void;

export class DeviceStore {
  readonly devices = new Map<string, Dev>();
  version = 0;
  membershipVersion = 0;
  private devListeners = new Map<string, Set<Listener>>();
  private anyListeners = new Set<Listener>();
  private queue: ServerMsg[] = [];
  private scheduled = false;
  private results = new Map<string, CommandResult>();
  private resultListeners = new Set<(r: CommandResult) => void>();
  /** Messages applied and flushes done: for the perf overlay / tests. */
  stats = { messages: 0, flushes: 0, lastFlushMs: 0 };
  /** Resyncs seen (server `resync`s, reconnects, messages the server dropped) and
   * readings put back from history: for support staff (the connection indicator).
   * seq counts both kinds: the stamp of the newest gap (gaps.ts). */
  resync = { seq: 0, server: 0, reconnects: 0, dropped: 0, refilled: 0 };
  now: () => number = () => Date.now();

  get(id: string): Dev | undefined { return this.devices.get(id); }

  enqueue(msg: ServerMsg): void {
    this.queue.push(msg);
    if (this.queue.length > 20000) { this.flush(); return; }
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => { if (this.scheduled) this.flush(); };
    if (typeof requestAnimationFrame === 'function') requestAnimationFrame(run);
    // hidden tabs get no frames: a timer backs it up
    setTimeout(run, 250);
  }

  flush(): void {
    this.scheduled = false;
    if (!this.queue.length) return;
    const t0 = typeof performance !== 'undefined' ? performance.now() : 0;
    const q = this.queue;
    this.queue = [];
    const out: ApplyResult = { changed: new Set(), membership: false, results: [] };
    const now = this.now();
    for (const m of q) {
      if (m.type === 'resync') this.resync.seq++;
      applyMessage(this.devices, m, now, out, this.resync.seq);
    }
    this.resync.server += out.resyncs ?? 0;
    this.resync.reconnects += out.reconnects ?? 0;
    this.resync.dropped += out.dropped ?? 0;
    this.stats.messages += q.length;
    this.stats.flushes++;
    for (const r of out.results) this.addResult(r);
    if (out.membership) this.membershipVersion++;
    if (out.changed.size || out.membership) {
      this.version++;
      for (const id of out.changed) {
        const ls = this.devListeners.get(id);
        if (ls) for (const l of ls) l();
      }
      for (const l of this.anyListeners) l();
    }
    if (typeof performance !== 'undefined') this.stats.lastFlushMs = performance.now() - t0;
  }

  /**
   * History fetched by a view that knew resync count `coveredSeq` (so it holds every
   * reading of the gaps stamped up to it): puts the raw points falling in those gaps
   * back into the device's ring, once per gap. Returns how many were not there.
   */
  refill(id: string, points: readonly Point[], coveredSeq: number): number {
    const fill = (g: Gap) => !g.filled && g.seq <= coveredSeq && g.to !== Infinity;
    const dev = this.devices.get(id);
    if (!dev || !dev.gaps.some(fill)) return 0;
    const todo = dev.gaps.filter(fill);
    let n = 0;
    for (const p of points) {
      if (!todo.some((g) => inGap(g, p.t))) continue;
      const had = dev.ring.range(p.t, p.t).length > 0; // merged gaps (gaps.ts) may span readings held
      if (dev.ring.push(p) && !had) n++;
    }
    this.devices.set(id, { ...dev, gaps: dev.gaps.map((g) => (fill(g) ? { ...g, filled: true } : g)), rev: dev.rev + 1 });
    this.resync.refilled += n;
    const ls = this.devListeners.get(id);
    if (ls) for (const l of ls) l();
    return n;
  }

  subscribeDevice(id: string, l: Listener): () => void {
    let s = this.devListeners.get(id);
    if (!s) { s = new Set(); this.devListeners.set(id, s); }
    s.add(l);
    return () => { s!.delete(l); if (!s!.size) this.devListeners.delete(id); };
  }

  subscribeAny(l: Listener): () => void {
    this.anyListeners.add(l);
    return () => { this.anyListeners.delete(l); };
  }

  private addResult(r: CommandResult): void {
    const key = r.cmd_id ?? r.cfg_id;
    if (typeof key === 'string') {
      this.results.set(key, r);
      if (this.results.size > RESULTS_CAP) this.results.delete(this.results.keys().next().value as string);
    }
    for (const l of this.resultListeners) l(r);
  }

  result(key: string): CommandResult | undefined { return this.results.get(key); }

  onResult(l: (r: CommandResult) => void): () => void {
    this.resultListeners.add(l);
    return () => { this.resultListeners.delete(l); };
  }

  /** Resolves with the device's answer for cmd_id/cfg_id, or null after timeoutMs. */
  waitResult(key: string, timeoutMs: number): Promise<CommandResult | null> {
    const have = this.results.get(key);
    if (have) return Promise.resolve(have);
    return new Promise((resolve) => {
      const off = this.onResult((r) => {
        if (r.cmd_id === key || r.cfg_id === key) { clearTimeout(timer); off(); resolve(r); }
      });
      const timer = setTimeout(() => { off(); resolve(null); }, timeoutMs);
    });
  }
}

/** A coarse clock shared by all tiles: one tick per second. */
export class Clock {
  private listeners = new Set<Listener>();
  private timer: ReturnType<typeof setInterval> | null = null;
  value = Date.now();
  constructor(private periodMs = 1000) {}
  now = (): number => this.value;
  subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l);
    if (!this.timer && typeof window !== 'undefined') {
      this.timer = setInterval(() => { this.value = Date.now(); for (const x of this.listeners) x(); }, this.periodMs);
    }
    return () => {
      this.listeners.delete(l);
      if (!this.listeners.size && this.timer) { clearInterval(this.timer); this.timer = null; }
    };
  };
}

export const store = new DeviceStore();
export const clock = new Clock(1000);
