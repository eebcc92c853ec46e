import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { clipEpisode, type Episode } from '../episodes';

export interface SeriesDef { label: string; color: string; width?: number; dash?: number[]; /** own right-hand axis */ secondary?: string }

interface Props {
  title: string;
  unit: string;
  series: SeriesDef[];
  /** [t seconds, ...one column per series] */
  data: (number | null)[][];
  xRange: [number, number]; // seconds
  yRange?: [number, number]; // soft range, grows to fit the data
  bands?: { from: number; to: number; color: string }[];
  /** alarm episodes shaded over the time axis (episodes.ts) */
  episodes?: Episode[];
  /** [start, end] seconds where readings may be missing (a resync, gaps.ts) until a refetch lands */
  gaps?: [number, number][];
  height?: number;
  testId?: string;
}

const pad2 = (n: number) => String(n).padStart(2, '0');
function timeTicks(_u: uPlot, splits: number[], _ax: number, _space: number, incr: number): string[] {
  return splits.map((s) => {
    const d = new Date(s * 1000);
    const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    if (incr < 60) return `${hm}:${pad2(d.getSeconds())}`;
    if (incr >= 6 * 3600) return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hm}`;
    return hm;
  });
}

const STRIP_PX = 6; // CSS px: technical episodes' strip along the bottom

/** A uPlot plugin that paints over the series in the draw hook; `paint` says how
 * many things it drew, recorded in data-<attr> on `mark` so a test can see them. */
function overlayPlugin(attr: string, paint: (u: uPlot, min: number, max: number) => number, mark: () => HTMLElement | null): uPlot.Plugin {
  return {
    hooks: {
      draw: [(u: uPlot) => {
        const { min, max } = u.scales.x;
        let n = 0;
        if (min != null && max != null) {
          u.ctx.save();
          n = paint(u, min, max);
          u.ctx.restore();
        }
        const el = mark();
        if (el) el.dataset[attr] = String(n);
      }],
    },
  };
}

/** Shades each alarm episode (translucent, over the series): data-alarm-bands. */
function episodesPlugin(get: () => Episode[] | undefined, mark: () => HTMLElement | null): uPlot.Plugin {
  return overlayPlugin('alarmBands', (u, min, max) => {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const strip = STRIP_PX * uPlot.pxRatio;
    let n = 0;
    for (const e of get() ?? []) {
      const c = clipEpisode(e, min, max);
      if (!c) continue;
      const x0 = Math.max(left, u.valToPos(c[0], 'x', true));
      const x1 = Math.min(left + width, Math.max(x0 + uPlot.pxRatio, u.valToPos(c[1], 'x', true))); // at least 1 px
      ctx.fillStyle = e.color;
      if (e.strip) ctx.fillRect(x0, top + height - strip, x1 - x0, strip);
      else ctx.fillRect(x0, top, x1 - x0, height);
      n++;
    }
    return n;
  }, mark);
}

const GAP_FILL = 'rgba(160,170,185,0.16)';
const GAP_EDGE = 'rgba(200,208,220,0.7)';

/** Each gap in the data (a resync, gaps.ts) is a grey band with dashed edges and
 * "readings missing", over the series, so a hole is never mistaken for a trend: data-gaps. */
function gapsPlugin(get: () => [number, number][] | undefined, mark: () => HTMLElement | null): uPlot.Plugin {
  return overlayPlugin('gaps', (u, min, max) => {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const px = uPlot.pxRatio;
    let n = 0;
    for (const [a, b] of get() ?? []) {
      if (b < min || a > max) continue;
      const x0 = Math.max(left, u.valToPos(Math.max(a, min), 'x', true));
      const x1 = Math.min(left + width, Math.max(x0 + 2 * px, u.valToPos(Math.min(b, max), 'x', true)));
      ctx.fillStyle = GAP_FILL;
      ctx.fillRect(x0, top, x1 - x0, height);
      ctx.strokeStyle = GAP_EDGE;
      ctx.lineWidth = px;
      ctx.setLineDash([4 * px, 3 * px]);
      ctx.beginPath();
      ctx.moveTo(x0, top); ctx.lineTo(x0, top + height);
      ctx.moveTo(x1, top); ctx.lineTo(x1, top + height);
      ctx.stroke();
      if (x1 - x0 > 90 * px) {
        ctx.setLineDash([]);
        ctx.fillStyle = GAP_EDGE;
        ctx.font = `${11 * px}px system-ui`;
        ctx.fillText('readings missing', x0 + 4 * px, top + 13 * px);
      }
      n++;
    }
    return n;
  }, mark);
}

const AXIS = { stroke: '#8b97a8', grid: { stroke: 'rgba(140,160,190,0.12)', width: 1 }, ticks: { stroke: 'rgba(140,160,190,0.2)', width: 1 } };

/** A uPlot chart created once; data changes are applied with setData (no re-creation). */
export function Chart({ title, unit, series, data, xRange, yRange, bands, episodes, gaps, height = 180, testId }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const section = useRef<HTMLElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef({ data, xRange, yRange, bands, episodes, gaps });
  latest.current = { data, xRange, yRange, bands, episodes, gaps };

  useEffect(() => {
    const el = host.current!;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true, live: true },
      cursor: { sync: { key: 'vigil' }, drag: { x: false, y: false } },
      plugins: [episodesPlugin(() => latest.current.episodes, () => section.current),
        gapsPlugin(() => latest.current.gaps, () => section.current)],
      scales: {
        x: { time: true, range: () => latest.current.xRange },
        ...Object.fromEntries(series.filter((s) => s.secondary).map((s) => [s.secondary!, {
          range: (_u: uPlot, min: number, max: number): uPlot.Range.MinMax => {
            if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
            const mid = (min + max) / 2, half = Math.max(1, (max - min) / 2 * 1.2);
            return [Math.floor(mid - half), Math.ceil(mid + half)];
          },
        }])),
        y: {
          range: (_u, min, max) => {
            const yr = latest.current.yRange;
            if (!yr) { const pad = Math.max(1, (max - min) * 0.1); return [min - pad, max + pad]; }
            return [Math.min(yr[0], Number.isFinite(min) ? min : yr[0]), Math.max(yr[1], Number.isFinite(max) ? max : yr[1])];
          },
        },
      },
      axes: [
        { ...AXIS, values: timeTicks, font: '12px system-ui' },
        { ...AXIS, size: 48, label: unit, labelSize: 18, labelFont: '12px system-ui', font: '12px system-ui' },
        ...series.filter((s) => s.secondary).map((s) => ({
          ...AXIS, scale: s.secondary, side: 1, size: 44, grid: { show: false }, label: s.secondary, labelSize: 18,
          labelFont: '12px system-ui', font: '12px system-ui', stroke: s.color,
        })),
      ],
      series: [
        { label: 'time', value: '{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}' },
        ...series.map((s) => ({ label: s.label, stroke: s.color, width: s.width ?? 2, dash: s.dash, spanGaps: false, points: { show: false }, ...(s.secondary ? { scale: s.secondary } : {}) })),
      ],
      hooks: {
        drawClear: [(u: uPlot) => {
          const bs = latest.current.bands;
          if (!bs) return;
          const ctx = u.ctx;
          ctx.save();
          const top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
          for (const b of bs) {
            const y0 = Math.max(top, Math.min(bottom, u.valToPos(b.to, 'y', true)));
            const y1 = Math.max(top, Math.min(bottom, u.valToPos(b.from, 'y', true)));
            if (Math.abs(y1 - y0) < 0.5) continue;
            ctx.fillStyle = b.color;
            ctx.fillRect(u.bbox.left, Math.min(y0, y1), u.bbox.width, Math.abs(y1 - y0));
          }
          ctx.restore();
        }],
      },
    };
    const u = new uPlot(opts, latest.current.data as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => { ro.disconnect(); u.destroy(); plot.current = null; };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [height, series.length]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData(data as uPlot.AlignedData, true);
  }, [data, xRange[0], xRange[1]]);

  // new episodes with the same data: repaint only (no path or axis rebuild)
  useEffect(() => { plot.current?.redraw(false, false); }, [episodes, gaps]);

  return (
    <section ref={section} className="chart" aria-label={`${title} chart`} data-testid={testId} data-points={data[0]?.length ?? 0}>
      <h3 className="chart-title">{title}</h3>
      <div ref={host} className="chart-host" />
    </section>
  );
}
