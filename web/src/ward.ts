import type { Dev } from './store';
import { rank, type DevState } from './severity';
import { news2Of, stateOf } from './hooks';

export type SortKey = 'severity' | 'id';
export type Filter = 'all' | 'alarm' | 'technical' | DevState;

export interface WardQuery { sort: SortKey; filter: Filter; search: string }

export interface WardList {
  ids: string[];
  counts: { total: number; alarm: number; technical: number; ok: number };
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

export function computeWard(devs: Iterable<Dev>, q: WardQuery, now: number): WardList {
  const rows: { id: string; rank: number; score: number }[] = [];
  const counts = { total: 0, alarm: 0, technical: 0, ok: 0 };
  const needle = q.search.trim().toLowerCase();
  for (const d of devs) {
    const st = stateOf(d, now);
    const sev = news2Of(d);
    const rk = rank(st, sev.level);
    counts.total++;
    const isAlarm = rk >= 40;
    const isTech = st !== 'online';
    if (isAlarm) counts.alarm++; else if (isTech) counts.technical++; else counts.ok++;
    if (needle && !d.id.toLowerCase().includes(needle)) continue;
    if (q.filter === 'alarm' && !isAlarm) continue;
    if (q.filter === 'technical' && !isTech) continue;
    if (q.filter !== 'all' && q.filter !== 'alarm' && q.filter !== 'technical' && st !== q.filter) continue;
    rows.push({ id: d.id, rank: rk, score: st === 'online' ? sev.news2?.score ?? 0 : 0 });
  }
  if (q.sort === 'severity') {
    rows.sort((a, b) => b.rank - a.rank || b.score - a.score || collator.compare(a.id, b.id));
  } else {
    rows.sort((a, b) => collator.compare(a.id, b.id));
  }
  return { ids: rows.map((r) => r.id), counts };
}

export function sameIds(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
