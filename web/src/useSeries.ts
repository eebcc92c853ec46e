import { useEffect, useMemo, useRef, useState } from 'react';
import { getReadings } from './api';
import { breakAtGaps, gapBands, needsRefetch, uncovered } from './gaps';
import { historyPoints, mergeSeries, toColumns } from './merge';
import { store } from './store';
import type { Point } from './types';

export type RangeSpec = { kind: 'live'; durMs: number } | { kind: 'custom'; from: number; to: number };

const TAIL_CAP = 20000; // raw live points kept since the history was fetched
/** After a failed refetch for a gap: wait this long before the next try; then the gap stays marked. */
const REPAIR_RETRY_MS = [2000, 5000, 10000, 20000, 30000];

export interface SeriesState {
  cols: ReturnType<typeof toColumns>;
  from: number;
  to: number;
  loading: boolean;
  error: string | null;
  downsampled: boolean;
  bucketMs: number;
  total: number;
  /** [start, end] ms where readings may be missing (a resync) and no refetch has landed yet */
  gaps: [number, number][];
  /** a refetch for a gap is in flight */
  repairing: boolean;
}

type Hist = { points: Point[]; bucketMs: number; from: number; to: number; total: number; downsampled: boolean;
  /** the store's resync count when it was asked for: it covers every gap stamped up to it (gaps.ts) */
  seq: number };

/**
 * History for the range from REST, joined with live points as they arrive. After a
 * resync (the live stream skipped readings: store.ts, gaps.ts) the whole window is
 * fetched again and replaces the history; until it lands the gap is marked (a break
 * in the line, `gaps` for the chart to shade).
 */
export function useSeries(id: string, range: RangeSpec, maxPoints: number): SeriesState {
  const [hist, setHist] = useState<Hist | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const [repairs, setRepairs] = useState(0);      // bumps to refetch the window after a resync
  const [repairing, setRepairing] = useState(false);
  const tail = useRef<Point[]>([]);
  const viewKey = useRef('');                     // id/range/width the history is for
  const asked = useRef(-1);                       // resync count of the newest fetch sent
  const retries = useRef(0);                      // failed refetches since the last success
  const mp = Math.max(50, Math.min(4000, Math.round(maxPoints)));
  const rangeKey = range.kind === 'live' ? `live:${range.durMs}` : `custom:${range.from}:${range.to}`;
  const win = (): [number, number] => {
    const now = Date.now();
    return range.kind === 'live' ? [now - range.durMs, now] : [range.from, range.to];
  };

  // Fetch history when device, range or width changes, and again after a resync.
  useEffect(() => {
    const key = `${id}|${rangeKey}|${mp}`;
    const fresh = key !== viewKey.current; // else: a refetch over a gap, keeping what is shown
    viewKey.current = key;
    const ac = new AbortController();
    let retry: ReturnType<typeof setTimeout> | null = null;
    let [from, to] = win();
    const seq = store.resync.seq;
    asked.current = seq;
    if (fresh) {
      tail.current = store.get(id)?.ring.range(from, Infinity) ?? [];
      retries.current = 0;
      setLoading(true);
      setError(null);
    } else {
      setRepairing(true);
      // a device clock ahead of ours: still ask up to the end of every gap
      for (const g of uncovered(store.get(id)?.gaps ?? [], -1)) if (range.kind === 'live' && g.to !== Infinity) to = Math.max(to, g.to);
    }
    getReadings(id, from, to, mp, ac.signal)
      .then((res) => {
        const h = historyPoints(res);
        if (!h.bucketMs) store.refill(id, h.points, seq); // raw readings also mend the device's ring
        retries.current = 0;
        setHist({ ...h, from, to, total: res.total ?? h.points.length, downsampled: !!res.downsampled, seq });
        setLoading(false);
        setError(null);
        setRepairing(false);
      })
      .catch((e: unknown) => {
        if (ac.signal.aborted) return;
        setHist((old) => old ?? { points: [], bucketMs: 0, from, to, total: 0, downsampled: false, seq: -1 });
        setError(e instanceof Error ? e.message : String(e));
        setLoading(false);
        setRepairing(false);
        // a refetch over a gap is retried a bounded number of times; the gap stays marked meanwhile
        const k = retries.current++;
        if (!fresh && k < REPAIR_RETRY_MS.length) retry = setTimeout(() => setRepairs((x) => x + 1), REPAIR_RETRY_MS[k]);
      });
    return () => { ac.abort(); if (retry) clearTimeout(retry); };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, rangeKey, mp, repairs]);

  // Follow live points for this device (coalesced by the store, then by a frame here).
  useEffect(() => {
    let raf = 0;
    let gaps = store.get(id)?.gaps;
    const pull = () => {
      raf = 0;
      const d = store.get(id);
      if (!d) return;
      const lastT = tail.current.length ? tail.current[tail.current.length - 1].t : -Infinity;
      const fresh = d.ring.range(-Infinity, Infinity);
      let added = false;
      for (const p of fresh) {
        if (p.t > lastT) { tail.current.push(p); added = true; }
        else if (p.t >= (tail.current[0]?.t ?? Infinity)) {
          // late (out-of-order) point: insert/replace in place
          const i = tail.current.findIndex((q) => q.t >= p.t);
          if (i >= 0 && tail.current[i].t === p.t) continue;
          if (i >= 0) { tail.current.splice(i, 0, p); added = true; }
        }
      }
      if (tail.current.length > TAIL_CAP) tail.current.splice(0, tail.current.length - TAIL_CAP);
      if (d.gaps !== gaps) {
        // a resync: mark the gap now, refetch once the snapshot has closed it
        gaps = d.gaps;
        added = true;
        const [from, to] = win();
        if (needsRefetch(d.gaps, asked.current, from, to)) { asked.current = store.resync.seq; setRepairs((x) => x + 1); }
      }
      if (added) setTick((x) => x + 1);
    };
    const off = store.subscribeDevice(id, () => { if (!raf) raf = requestAnimationFrame(pull); });
    // live windows slide even without data
    const iv = range.kind === 'live' ? setInterval(() => setTick((x) => x + 1), 1000) : null;
    return () => { off(); if (raf) cancelAnimationFrame(raf); if (iv) clearInterval(iv); };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, rangeKey]);

  return useMemo(() => {
    const [from, to] = win();
    const h = hist ?? { points: [], bucketMs: 0, from, to, total: 0, downsampled: false, seq: store.resync.seq };
    const bands = gapBands(store.get(id)?.gaps ?? [], h.seq, from, to);
    const merged = breakAtGaps(mergeSeries(h.points, tail.current, { from, to, maxPoints: mp, bucketMs: h.bucketMs, origin: h.from }), bands);
    return { cols: toColumns(merged), from, to, loading, error, downsampled: h.downsampled, bucketMs: h.bucketMs, total: h.total, gaps: bands, repairing };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [hist, tick, loading, error, rangeKey, mp, repairing]);
}
