import { useEffect, useMemo, useRef, useState } from 'react';
import { getReadings } from './api';
import { historyPoints, mergeSeries, toColumns } from './merge';
import { store } from './store';
import type { Point } from './types';

export type RangeSpec = { kind: 'live'; durMs: number } | { kind: 'custom'; from: number; to: number };

const TAIL_CAP = 20000; // raw live points kept since the history was fetched

export interface SeriesState {
  cols: ReturnType<typeof toColumns>;
  from: number;
  to: number;
  loading: boolean;
  error: string | null;
  downsampled: boolean;
  bucketMs: number;
  total: number;
}

/** History for the range from REST, joined with live points as they arrive. */
export function useSeries(id: string, range: RangeSpec, maxPoints: number): SeriesState {
  const [hist, setHist] = useState<{ points: Point[]; bucketMs: number; from: number; to: number; total: number; downsampled: boolean } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const tail = useRef<Point[]>([]);
  const mp = Math.max(50, Math.min(4000, Math.round(maxPoints)));
  const rangeKey = range.kind === 'live' ? `live:${range.durMs}` : `custom:${range.from}:${range.to}`;

  // Fetch history when device, range or width changes.
  useEffect(() => {
    const ac = new AbortController();
    const now = Date.now();
    const from = range.kind === 'live' ? now - range.durMs : range.from;
    const to = range.kind === 'live' ? now : range.to;
    tail.current = store.get(id)?.ring.range(from, Infinity) ?? [];
    setLoading(true);
    setError(null);
    getReadings(id, from, to, mp, ac.signal)
      .then((res) => {
        const h = historyPoints(res);
        setHist({ ...h, from, to, total: res.total ?? h.points.length, downsampled: !!res.downsampled });
        setLoading(false);
      })
      .catch((e: unknown) => {
        if (ac.signal.aborted) return;
        setHist({ points: [], bucketMs: 0, from, to, total: 0, downsampled: false });
        setError(e instanceof Error ? e.message : String(e));
        setLoading(false);
      });
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, rangeKey, mp]);

  // Follow live points for this device (coalesced by the store, then by a frame here).
  useEffect(() => {
    let raf = 0;
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
      if (added) setTick((x) => x + 1);
    };
    const off = store.subscribeDevice(id, () => { if (!raf) raf = requestAnimationFrame(pull); });
    // live windows slide even without data
    const iv = range.kind === 'live' ? setInterval(() => setTick((x) => x + 1), 1000) : null;
    return () => { off(); if (raf) cancelAnimationFrame(raf); if (iv) clearInterval(iv); };
  }, [id, range.kind]);

  return useMemo(() => {
    const now = Date.now();
    const from = range.kind === 'live' ? now - range.durMs : range.from;
    const to = range.kind === 'live' ? now : range.to;
    const h = hist ?? { points: [], bucketMs: 0, from, to, total: 0, downsampled: false };
    const merged = mergeSeries(h.points, tail.current, { from, to, maxPoints: mp, bucketMs: h.bucketMs, origin: h.from });
    return { cols: toColumns(merged), from, to, loading, error, downsampled: h.downsampled, bucketMs: h.bucketMs, total: h.total };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [hist, tick, loading, error, rangeKey, mp]);
}
