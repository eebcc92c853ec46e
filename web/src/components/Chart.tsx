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

/** uPlot plugin: shades each alarm episode in the draw hook (after the series,
 * translucent) and records how many it drew in data-alarm-bands on `mark`, so
 * a test can see them. */
function episodesPlugin(get: () => Episode[] | undefined, mark: () => HTMLElement | null): uPlot.Plugin {
  return {
    hooks: {
      draw: [(u: uPlot) => {
        const eps = get() ?? [];
        const { min, max } = u.scales.x;
        let n = 0;
        if (min != null && max != null) {
          const ctx = u.ctx;
          ctx.save();
          const { left, top, width, height } = u.bbox;
          const strip = STRIP_PX * uPlot.pxRatio;
          for (const e of eps) {
            const c = clipEpisode(e, min, max);
            if (!c) continue;
            const x0 = Math.max(left, u.valToPos(c[0], 'x', true));
            const x1 = Math.min(left + width, Math.max(x0 + uPlot.pxRatio, u.valToPos(c[1], 'x', true))); // at least 1 px
            ctx.fillStyle = e.color;
            if (e.strip) ctx.fillRect(x0, top + height - strip, x1 - x0, strip);
            else ctx.fillRect(x0, top, x1 - x0, height);
            n++;
          }
          ctx.restore();
        }
        const el = mark();
        if (el) el.dataset.alarmBands = String(n);
      }],
    },
  };
}

const AXIS = { stroke: '#8b97a8', grid: { stroke: 'rgba(140,160,190,0.12)', width: 1 }, ticks: { stroke: 'rgba(140,160,190,0.2)', width: 1 } };

/** A uPlot chart created once; data changes are applied with setData (no re-creation). */
export function Chart({ title, unit, series, data, xRange, yRange, bands, episodes, height = 180, testId }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const section = useRef<HTMLElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef({ data, xRange, yRange, bands, episodes });
  latest.current = { data, xRange, yRange, bands, episodes };

  useEffect(() => {
    const el = host.current!;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true, live: true },
      cursor: { sync: { key: 'vigil' }, drag: { x: false, y: false } },
      plugins: [episodesPlugin(() => latest.current.episodes, () => section.current)],
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
  useEffect(() => { plot.current?.redraw(false, false); }, [episodes]);

  return (
    <section ref={section} className="chart" aria-label={`${title} chart`} data-testid={testId} data-points={data[0]?.length ?? 0}>
      <h3 className="chart-title">{title}</h3>
      <div ref={host} className="chart-host" />
    </section>
  );
}
