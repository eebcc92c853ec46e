// Alarm episodes as chart bands (pure): which vital's chart an alarm condition
// belongs on, and the time span and colour of each episode, from the device's
// alarm history (GET /api/alarms?device=ID). Drawn by Chart's uPlot draw hook.
import { parseIso } from './time';
import type { Alarm } from './types';

export type Vital = 'hr' | 'spo2' | 'temp';

export interface Episode {
  alarmId: number;
  /** seconds (the charts' x scale); `to` is Infinity while the alarm is open */
  from: number;
  to: number;
  priority: string;
  condition: string;
  /** technical alarms: a strip along the bottom of every chart, not a full band */
  strip: boolean;
  color: string;
}

/** Band colours by priority, translucent so the trace stays readable (IEC 60601-1-8 hues). */
export const EPISODE_COLOR: Record<string, string> = {
  high: 'rgba(255,82,82,0.22)',
  medium: 'rgba(255,193,7,0.22)',
  low: 'rgba(79,195,247,0.20)',
};

/** The charts an alarm condition concerns; [] for none. Technical conditions: all. */
export function vitalsOf(condition: string): Vital[] {
  if (condition.startsWith('spo2_')) return ['spo2'];
  if (condition.startsWith('hr_')) return ['hr'];
  if (condition.startsWith('temp_')) return ['temp'];
  if (condition === 'news2') return ['spo2', 'hr'];
  return ['hr', 'spo2', 'temp'];
}

function isTechnical(a: Alarm): boolean {
  return a.kind ? a.kind === 'technical' : !/^(spo2_|hr_|temp_|news2$)/.test(a.condition);
}

/** The episodes to draw on one vital's chart, oldest first. */
export function episodesFor(alarms: readonly Alarm[], vital: Vital): Episode[] {
  const out: Episode[] = [];
  for (const a of alarms) {
    if (!vitalsOf(a.condition).includes(vital)) continue;
    const from = parseIso(a.started_at ?? undefined);
    if (!Number.isFinite(from)) continue;
    const end = parseIso(a.cleared_at ?? undefined);
    const to = a.state === 'cleared' ? (Number.isFinite(end) ? end : from) : Infinity;
    out.push({
      alarmId: a.alarm_id, from: from / 1000, to: to / 1000, priority: a.priority, condition: a.condition,
      strip: isTechnical(a), color: EPISODE_COLOR[a.priority] ?? EPISODE_COLOR.low,
    });
  }
  return out.sort((x, y) => x.from - y.from || x.alarmId - y.alarmId);
}

/** The part of an episode inside the visible range [min, max] (seconds), or null. */
export function clipEpisode(e: Episode, min: number, max: number): [number, number] | null {
  const a = Math.max(e.from, min), b = Math.min(e.to, max);
  return b >= a ? [a, b] : null;
}
