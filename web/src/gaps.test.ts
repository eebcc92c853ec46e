import { describe, expect, it } from 'vitest';
import { breakAtGaps, closeGaps, gapBands, GAPS_CAP, needsRefetch, NO_GAPS, openGap, resyncText, uncovered } from './gaps';
import { toColumns } from './merge';
import type { Point } from './types';

const p = (t: number, hr = 70): Point => ({ t, hr, spo2: 98, temp: 36.6, amb: 24 });

describe('openGap / closeGaps', () => {
  it('opens after the newest point held and closes at the newest one after the snapshot', () => {
    const open = openGap(NO_GAPS, 1000, 1);
    expect(open).toEqual([{ from: 1000, to: Infinity, seq: 1 }]);
    expect(closeGaps(open, 5000)).toEqual([{ from: 1000, to: 5000, seq: 1 }]);
  });
  it('a device with nothing newer in the snapshot missed nothing: its gap goes', () => {
    expect(closeGaps(openGap(NO_GAPS, 1000, 1), 1000)).toBe(NO_GAPS);
    expect(closeGaps(openGap(NO_GAPS, -Infinity, 1), NaN)).toBe(NO_GAPS);
  });
  it('leaves closed gaps alone and keeps at most GAPS_CAP, merging the oldest', () => {
    let g = NO_GAPS;
    for (let i = 1; i <= GAPS_CAP + 3; i++) g = closeGaps(openGap(g, i * 100, i), i * 100 + 50);
    expect(g.length).toBe(GAPS_CAP);
    // gaps 1..4 are one now, uncovered until a fetch knew count 4
    expect(g[0]).toEqual({ from: 100, to: 450, seq: 4 });
    expect(g[1]).toEqual({ from: 500, to: 550, seq: 5 });
    expect(g[g.length - 1]).toEqual({ from: (GAPS_CAP + 3) * 100, to: (GAPS_CAP + 3) * 100 + 50, seq: GAPS_CAP + 3 });
    const same = closeGaps(g, 1e9);
    expect(same).toBe(g); // nothing open: the same list
  });
  it('no held point: from -Infinity', () => {
    expect(openGap(NO_GAPS, -Infinity, 2)[0].from).toBe(-Infinity);
    expect(openGap(NO_GAPS, NaN, 2)[0].from).toBe(-Infinity);
  });
});

describe('coverage by resync count', () => {
  const gaps = [{ from: 100, to: 200, seq: 1 }, { from: 300, to: 400, seq: 2 }, { from: 500, to: Infinity, seq: 3 }];
  it('a fetch that knew count k covers gaps stamped up to k', () => {
    expect(uncovered(gaps, 0).map((g) => g.seq)).toEqual([1, 2, 3]);
    expect(uncovered(gaps, 2).map((g) => g.seq)).toEqual([3]);
    expect(uncovered(gaps, 3)).toEqual([]);
  });
  it('refetches only for a closed uncovered gap overlapping the window', () => {
    expect(needsRefetch(gaps, 0, 0, 1000)).toBe(true);
    expect(needsRefetch(gaps, 2, 0, 1000)).toBe(false); // only the open one left: wait for the snapshot
    expect(needsRefetch(gaps, 0, 450, 1000)).toBe(false); // the closed ones end before the window
    expect(needsRefetch(gaps, 0, 0, 100)).toBe(false); // ... or start after it
    expect(needsRefetch(gaps, 0, 150, 160)).toBe(true);
  });
  it('bands are the uncovered gaps clipped to the window; an open one runs to its end', () => {
    expect(gapBands(gaps, 0, 150, 1000)).toEqual([[150, 200], [300, 400], [500, 1000]]);
    expect(gapBands(gaps, 1, 0, 1000)).toEqual([[300, 400], [500, 1000]]);
    expect(gapBands([{ from: -Infinity, to: 50, seq: 1 }], 0, 10, 100)).toEqual([[10, 50]]);
    expect(gapBands(gaps, 3, 0, 1000)).toEqual([]);
  });
});

describe('breakAtGaps', () => {
  it('puts an empty point right after each gap start, so the line is not drawn across it', () => {
    const pts = [p(100), p(200), p(600)];
    const out = breakAtGaps(pts, [[200, 600]]);
    expect(out.map((x) => x.t)).toEqual([100, 200, 200.5, 600]);
    const cols = toColumns(out);
    expect(cols[1]).toEqual([70, 70, null, 70]); // null: uPlot breaks the line (spanGaps off)
  });
  it('no bands: the same array', () => {
    const pts = [p(1)];
    expect(breakAtGaps(pts, [])).toBe(pts);
  });
});

describe('resyncText', () => {
  it('says how often and how much', () => {
    expect(resyncText({ server: 0, reconnects: 0, dropped: 0, refilled: 0 })).toBe('no resync');
    expect(resyncText({ server: 2, reconnects: 1, dropped: 1500, refilled: 1480 }))
      .toBe('resynced 2 times (1500 messages dropped by the server), 1 reconnect, 1480 readings refetched');
  });
});
