// Open alarms as the dashboard shows them (pure logic, no I/O, no clock reads:
// callers pass `now`). Fed by three sources that all carry ALARM objects
// (docs/PROTOCOL.md): the snapshot's DEVICE `alarms`, the `alarm` WebSocket
// message (every change of an alarm) and GET /api/alarms. An alarm is keyed by
// alarm_id, replaced whole on each change, and dropped when its state is
// `cleared` (its last message). Display semantics follow IEC 60601-1-8's visual
// classes; the server decides what an alarm is (docs/ALARMS.md).

import { atLeast, type Role } from './roles';
import { parseIso } from './time';
import type { Alarm } from './types';

export type AlarmMap = Map<number, Alarm>;

const PRIO_RANK: Record<string, number> = { high: 0, medium: 1, low: 2 };
const rank = (p: string) => PRIO_RANK[p] ?? 3;

function valid(a: unknown): a is Alarm {
  return !!a && typeof a === 'object' && typeof (a as Alarm).alarm_id === 'number' && typeof (a as Alarm).device_id === 'string';
}

/** Applies one ALARM (upsert, or remove when cleared); returns true if the map changed. */
export function upsertAlarm(map: AlarmMap, a: Alarm): boolean {
  if (!valid(a)) return false;
  if (a.state === 'cleared') return map.delete(a.alarm_id);
  map.set(a.alarm_id, a);
  return true;
}

/** A device's open alarms are exactly `list` (DEVICE.alarms): others of that device go. */
export function replaceDeviceAlarms(map: AlarmMap, deviceId: string, list: readonly Alarm[] | undefined): boolean {
  let changed = false;
  const keep = new Set<number>();
  for (const a of list ?? []) {
    if (!valid(a) || a.device_id !== deviceId) continue;
    keep.add(a.alarm_id);
    changed = upsertAlarm(map, a) || changed;
  }
  for (const [id, a] of map) if (a.device_id === deviceId && !keep.has(id)) { map.delete(id); changed = true; }
  return changed;
}

/** Every open alarm is exactly `list` (a snapshot's devices together, or GET /api/alarms). */
export function replaceAllAlarms(map: AlarmMap, list: readonly Alarm[]): boolean {
  const had = map.size;
  map.clear();
  for (const a of list) upsertAlarm(map, a);
  return had > 0 || map.size > 0;
}

/** Highest priority first, then oldest (as the server orders them); alarm_id breaks ties. */
export function sortAlarms(list: Iterable<Alarm>): Alarm[] {
  return [...list].sort((x, y) => {
    const r = rank(x.priority) - rank(y.priority);
    if (r) return r;
    const tx = parseIso(x.started_at), ty = parseIso(y.started_at);
    const ax = Number.isFinite(tx) ? tx : Infinity, ay = Number.isFinite(ty) ? ty : Infinity;
    if (ax !== ay) return ax - ay;
    return x.alarm_id - y.alarm_id;
  });
}

export type Flash = 'fast' | 'slow' | 'none';
export interface Visual {
  colour: 'red' | 'yellow' | 'cyan';
  flash: Flash;       // fast ≈ 2 Hz (high), slow ≈ 0.5 Hz (medium), none: steady
  marker: string;     // shown always, so colour is never the only cue (and with reduced motion)
  className: string;
}

/**
 * IEC 60601-1-8 visual class: high red flashing 1.4–2.8 Hz, medium yellow 0.4–0.8 Hz,
 * low cyan (or yellow) steady. An acknowledged alarm is steady (it has been seen);
 * so is a retrospective one (recorded, not live). A latched alarm still flashes:
 * nobody has acknowledged it yet.
 */
export function visualOf(a: Alarm): Visual {
  const p = a.priority === 'high' || a.priority === 'medium' ? a.priority : 'low';
  const colour = p === 'high' ? 'red' : p === 'medium' ? 'yellow' : 'cyan';
  const steady = a.state === 'acked' || a.retrospective === true || p === 'low';
  const flash: Flash = steady ? 'none' : p === 'high' ? 'fast' : 'slow';
  const marker = p === 'high' ? '!!!' : p === 'medium' ? '!!' : '!';
  return { colour, flash, marker, className: `al al-${p} flash-${flash}` };
}

/** Whole seconds left of the audio pause (0 when none or over). */
export function silenceLeftS(a: Alarm, now: number): number {
  const until = parseIso(a.silenced_until);
  return Number.isFinite(until) && until > now ? Math.ceil((until - now) / 1000) : 0;
}

export function fmtCountdown(s: number): string {
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Would this alarm sound now (ignoring the audio pause)? Not when acked, retrospective or cleared. */
export function audible(a: Alarm): boolean {
  return (a.state === 'active' || a.state === 'latched') && a.retrospective !== true;
}

export type SoundState = 'off' | 'on' | 'paused';
export interface SoundPlan { state: SoundState; play: 'high' | 'medium' | null }

/**
 * What the speaker does: nothing unless enabled; the highest priority among the
 * audible, not silenced alarms (low priority has no tone here); `paused` while
 * every audible alarm is in its audio pause.
 */
export function soundPlan(enabled: boolean, alarms: Iterable<Alarm>, now: number): SoundPlan {
  if (!enabled) return { state: 'off', play: null };
  let best: 'high' | 'medium' | null = null, silenced = false;
  for (const a of alarms) {
    if (!audible(a)) continue;
    if (silenceLeftS(a, now) > 0) { silenced = true; continue; }
    if (a.priority === 'high') best = 'high';
    else if (a.priority === 'medium' && best !== 'high') best = 'medium';
  }
  return { state: !best && silenced ? 'paused' : 'on', play: best };
}

export interface AlarmControls { ack: boolean; silence: boolean; edit: boolean }

/** Acknowledge, audio pause and the limit editor are for clinicians and above (server: 403). */
export function alarmControls(role: Role | null | undefined): AlarmControls {
  const c = atLeast(role, 'clinician');
  return { ack: c, silence: c, edit: c };
}

export const CONDITION_TEXT: Record<string, string> = {
  spo2_low: 'SpO₂ low', spo2_desat: 'SpO₂ desaturation', hr_high: 'Heart rate high', hr_low: 'Heart rate low',
  temp_high: 'Skin temperature high', temp_low: 'Skin temperature low', news2: 'NEWS2 (partial) raised',
  offline: 'Device offline', stale: 'No data (stale)', no_signal: 'No signal', battery_low: 'Battery low',
  data_lost: 'Readings lost',
};

const UNIT: Record<string, string> = {
  spo2_low: '%', spo2_desat: '%', hr_high: '/min', hr_low: '/min', temp_high: '°C', temp_low: '°C', battery_low: '%',
};

export function conditionText(c: string): string { return CONDITION_TEXT[c] ?? c.replace(/_/g, ' '); }

/** "80 % (limit 85 %)", "score 6 (partial)", "12 lost" or "" for conditions without a value. */
export function valueText(a: Alarm): string {
  if (a.condition === 'news2' && a.news2) return `score ${a.news2.score}${a.news2.partial !== false ? ' (partial)' : ''}`;
  if (a.value == null) return '';
  if (a.condition === 'data_lost') return `${a.value} lost`;
  const u = UNIT[a.condition] ? ` ${UNIT[a.condition]}` : '';
  return a.limit != null ? `${a.value}${u} (limit ${a.limit}${u})` : `${a.value}${u}`;
}

export function stateText(a: Alarm): string {
  if (a.retrospective) return 'retrospective';
  if (a.state === 'acked') return `acknowledged${a.acked_by ? ` by ${a.acked_by}` : ''}`;
  if (a.state === 'latched') return 'latched (condition over, not acknowledged)';
  return a.state;
}

type Listener = () => void;

/** The open alarms, outside React; the sorted list is rebuilt only on change. */
export class AlarmStore {
  readonly map: AlarmMap = new Map();
  private listeners = new Set<Listener>();
  private sorted: Alarm[] = [];
  private byDevice = new Map<string, Alarm[]>();
  private prevByDevice = new Map<string, Alarm[]>();

  /** A WebSocket message: a snapshot replaces everything, an `alarm` is applied. Others are ignored. */
  onMessage(msg: { type: string; devices?: { device_id: string; alarms?: Alarm[] }[]; data?: unknown }): void {
    if (msg.type === 'snapshot') {
      const all: Alarm[] = [];
      for (const d of msg.devices ?? []) for (const a of d?.alarms ?? []) if (valid(a) && a.device_id === d.device_id) all.push(a);
      if (replaceAllAlarms(this.map, all)) this.changed();
    } else if (msg.type === 'alarm') {
      if (upsertAlarm(this.map, msg.data as Alarm)) this.changed();
    }
  }

  /** GET /api/alarms: every open alarm. */
  setAll(list: readonly Alarm[]): void { if (replaceAllAlarms(this.map, list)) this.changed(); }

  /** GET /api/devices/{id}: that device's open alarms. */
  setDevice(id: string, list: readonly Alarm[] | undefined): void { if (replaceDeviceAlarms(this.map, id, list)) this.changed(); }

  list = (): Alarm[] => this.sorted;

  forDevice(id: string): Alarm[] {
    let l = this.byDevice.get(id);
    if (!l) {
      l = this.sorted.filter((a) => a.device_id === id);
      // unchanged devices keep the same array, so only their own views re-render
      const old = this.prevByDevice.get(id);
      if (old && old.length === l.length && old.every((a, i) => a === l![i])) l = old;
      this.byDevice.set(id, l);
    }
    return l;
  }

  subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l);
    return () => { this.listeners.delete(l); };
  };

  private changed(): void {
    this.sorted = sortAlarms(this.map.values());
    for (const [k, v] of this.byDevice) this.prevByDevice.set(k, v);
    this.byDevice = new Map();
    for (const l of this.listeners) l();
  }
}

export const alarmStore = new AlarmStore();
