import { useEffect, useLayoutEffect, useMemo, useState } from 'react';
import { useClock, useDevice, useDevState, news2Of } from '../hooks';
import { NEWS2_LABEL, NEWS2_NOT_MEASURED, subScoreClass } from '../severity';
import { episodesFor } from '../episodes';
import { STATE_ICON, STATE_LABEL, staleAfterMs } from '../state';
import { fmt1, fmtClock, fmtInt, fmtTime } from '../format';
import { formatAge } from '../time';
import { useSeries, type RangeSpec } from '../useSeries';
import { Chart, type SeriesDef } from './Chart';
import { Commands } from './Commands';
import { useSession } from '../auth';
import { allowed } from '../roles';
import { AlarmHistory, AlarmSettingsEditor, DeviceActiveAlarms, useAlarmHistory } from './DeviceAlarms';

const RANGES: { label: string; durMs: number }[] = [
  { label: '15 min', durMs: 15 * 60e3 },
  { label: '1 h', durMs: 60 * 60e3 },
  { label: '24 h', durMs: 24 * 60 * 60e3 },
];

const S_HR: SeriesDef[] = [{ label: 'HR', color: '#3ddc84' }];
const S_SPO2: SeriesDef[] = [{ label: 'SpO₂', color: '#4fc3f7' }];
const S_TEMP: SeriesDef[] = [{ label: 'Skin', color: '#ffb74d' }, { label: 'Ambient', color: '#8d99ae', width: 1, dash: [4, 4], secondary: 'amb °C' }];
const B_HR = [{ from: 0, to: 40, color: 'rgba(255,82,82,0.10)' }, { from: 131, to: 400, color: 'rgba(255,82,82,0.10)' }];
const B_SPO2 = [{ from: 0, to: 91, color: 'rgba(255,82,82,0.10)' }];
const B_TEMP = [{ from: -50, to: 32, color: 'rgba(79,195,247,0.08)' }, { from: 37.6, to: 100, color: 'rgba(255,82,82,0.10)' }];

function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function useWidth(el: HTMLElement | null): number {
  const [w, setW] = useState(800);
  useLayoutEffect(() => {
    if (!el) return;
    setW(el.clientWidth || 800);
    const ro = new ResizeObserver(() => {
      const nw = el.clientWidth;
      // refetch only on a real change of size (bucketed to 100 px)
      setW((old) => (Math.abs(nw - old) >= 100 ? nw : old));
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, [el]);
  return w;
}

export function DeviceDetail({ id }: { id: string }) {
  const dev = useDevice(id);
  const { role } = useSession();
  const state = useDevState(id);
  const now = useClock();
  const [range, setRange] = useState<RangeSpec>({ kind: 'live', durMs: RANGES[0].durMs });
  const [cFrom, setCFrom] = useState(() => toLocalInput(Date.now() - 3600e3));
  const [cTo, setCTo] = useState(() => toLocalInput(Date.now()));
  const [chartsEl, setChartsEl] = useState<HTMLDivElement | null>(null);
  const width = useWidth(chartsEl);
  const s = useSeries(id, range, width - 60);
  const xRange = useMemo<[number, number]>(() => [s.from / 1000, s.to / 1000], [s.from, s.to]);
  const hrData = useMemo(() => [s.cols[0], s.cols[1]], [s.cols]);
  const spData = useMemo(() => [s.cols[0], s.cols[2]], [s.cols]);
  const teData = useMemo(() => [s.cols[0], s.cols[3], s.cols[4]], [s.cols]);
  const gapKey = s.gaps.map((g) => g.join('-')).join(',');
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const gapsS = useMemo<[number, number][]>(() => s.gaps.map(([a, b]) => [a / 1000, b / 1000]), [gapKey]);
  const hist = useAlarmHistory(id);
  const epHr = useMemo(() => episodesFor(hist.rows ?? [], 'hr'), [hist.rows]);
  const epSp = useMemo(() => episodesFor(hist.rows ?? [], 'spo2'), [hist.rows]);
  const epTe = useMemo(() => episodesFor(hist.rows ?? [], 'temp'), [hist.rows]);

  useEffect(() => { document.title = `${id} — Vigil`; return () => { document.title = 'Vigil'; }; }, [id]);

  if (!dev) {
    return (
      <main className="detail">
        <a className="back" href="#/">← Ward</a>
        <p className="empty">Device <b>{id}</b> is not known (yet). Waiting for data…</p>
      </main>
    );
  }
  const r = dev.last;
  const sev = news2Of(dev);
  const n2 = sev.news2;
  const live = state === 'online';
  const hrOk = r?.hr_valid !== false && r?.heart_rate != null;
  const spOk = r?.spo2_valid !== false && r?.spo2 != null;
  const teOk = r?.temp_valid !== false && r?.object_temp != null;
  const level = live ? sev.level : 'none';

  return (
    <main className="detail">
      <div className="detail-head">
        <a className="back" href="#/">← Ward</a>
        <h1 className="detail-id">{id}</h1>
        <span className={`chip chip-${state} big`} data-testid="detail-state"><span aria-hidden="true">{STATE_ICON[state]}</span> {STATE_LABEL[state]}</span>
        {n2 && live
          ? <span className={`news lv-${level}`} data-testid="d-news2" data-score={n2.score} title={NEWS2_NOT_MEASURED}>{NEWS2_LABEL} {n2.score}</span>
          : <span className="news muted" data-testid="d-news2" title={NEWS2_NOT_MEASURED}>{NEWS2_LABEL} —</span>}
        <span className="age">updated {Number.isFinite(dev.lastAt) ? `${formatAge(now - dev.lastAt)} ago` : 'never'}</span>
      </div>

      <DeviceActiveAlarms id={id} />

      <div className={`big-vitals st-${state} lv-${level}`}>
        <div className={`bv v-hr ${live && hrOk ? subScoreClass(n2?.pulse) : ''}`}><span className="v-label">Heart rate</span><span className="v-num" data-testid="d-hr">{hrOk ? fmtInt(r?.heart_rate) : '--'}</span><span className="v-unit">bpm</span></div>
        <div className={`bv v-spo2 ${live && spOk ? subScoreClass(n2?.spo2) : ''}`}><span className="v-label">SpO₂</span><span className="v-num" data-testid="d-spo2">{spOk ? fmtInt(r?.spo2) : '--'}</span><span className="v-unit">%</span></div>
        <div className="bv v-temp"><span className="v-label">Skin temperature</span><span className="v-num" data-testid="d-temp">{teOk ? fmt1(r?.object_temp) : '--.-'}</span><span className="v-unit">°C · ambient {fmt1(r?.ambient_temp)}</span></div>
      </div>

      <div className="detail-body">
        <div className="charts-col" ref={setChartsEl}>
          <div className="range" role="group" aria-label="Time range">
            {RANGES.map((rg) => (
              <button key={rg.label} aria-pressed={range.kind === 'live' && range.durMs === rg.durMs}
                onClick={() => setRange({ kind: 'live', durMs: rg.durMs })}>{rg.label}</button>
            ))}
            <form className="custom" onSubmit={(e) => {
              e.preventDefault();
              const f = Date.parse(cFrom), t = Date.parse(cTo);
              if (Number.isFinite(f) && Number.isFinite(t) && f < t) setRange({ kind: 'custom', from: f, to: t });
            }}>
              <label className="field small"><span>From</span><input type="datetime-local" value={cFrom} onChange={(e) => setCFrom(e.target.value)} /></label>
              <label className="field small"><span>To</span><input type="datetime-local" value={cTo} onChange={(e) => setCTo(e.target.value)} /></label>
              <button type="submit" aria-pressed={range.kind === 'custom'}>Custom</button>
            </form>
            <span className="range-info" aria-live="off">
              {s.loading ? 'loading…' : s.error ? `history unavailable: ${s.error}` :
                `${s.cols[0].length} points${s.downsampled ? ` · ${s.total} readings in ${s.bucketMs < 10000 ? (s.bucketMs / 1000).toFixed(1) : Math.round(s.bucketMs / 1000)} s buckets (avg)` : ''}`}
            </span>
            {s.gaps.length > 0 && (
              <span className="range-gap" role="status" data-testid="range-gap">
                Readings missing {s.gaps.map(([a, b]) => `${fmtClock(a)}–${fmtClock(b)}`).join(', ')} (live stream resynced):
                {s.repairing ? ' reloading from history…' : s.error ? ' could not reload them (history unavailable)' : ' reloading soon'}
              </span>
            )}
          </div>
          <Chart title="Heart rate" unit="bpm" series={S_HR} data={hrData} xRange={xRange} yRange={[50, 110]} bands={B_HR} episodes={epHr} gaps={gapsS} testId="chart-hr" />
          <Chart title="SpO₂" unit="%" series={S_SPO2} data={spData} xRange={xRange} yRange={[90, 100]} bands={B_SPO2} episodes={epSp} gaps={gapsS} testId="chart-spo2" />
          <Chart title="Skin temperature" unit="°C" series={S_TEMP} data={teData} xRange={xRange} yRange={[30, 39]} bands={B_TEMP} episodes={epTe} gaps={gapsS} testId="chart-temp" />
          <p className="muted legend" data-testid="news2-legend">Shaded on the charts: alarm episodes (red high, yellow medium, cyan low; a strip along the bottom for technical ones). {NEWS2_NOT_MEASURED}</p>
          <AlarmHistory hist={hist} />
          <AlarmSettingsEditor key={id} id={id} />
        </div>
        <aside className="side">
          <section className="panel info" aria-labelledby="info-h">
            <h2 id="info-h">Device</h2>
            <dl>
              <dt>Status</dt><dd>{dev.status}{Number.isFinite(dev.statusAt) ? ` since ${fmtTime(dev.statusAt)}` : ''}</dd>
              <dt>Firmware</dt><dd>{dev.fw ?? '—'}</dd>
              <dt>Sensor</dt><dd>{dev.sensorType ?? '—'}</dd>
              <dt>Interval</dt><dd>{dev.intervalMs != null ? `${dev.intervalMs} ms` : '— (1000 ms assumed)'} · stale after {staleAfterMs(dev.intervalMs) / 1000} s</dd>
              <dt>Wi-Fi RSSI</dt><dd>{dev.rssi != null ? `${dev.rssi} dBm` : '—'}</dd>
              <dt>Battery</dt><dd>{dev.battery != null ? `${Math.round(dev.battery)} %` : '—'}</dd>
              <dt>Last seen</dt><dd>{fmtTime(dev.lastSeen)}</dd>
              <dt>First seen</dt><dd>{fmtTime(dev.firstSeen)}</dd>
              <dt>Boot</dt><dd>{dev.boot ?? r?.boot ?? '—'}{r?.seq != null ? ` · seq ${r.seq}` : ''}</dd>
              <dt>Uptime</dt><dd>{r?.timestamp != null ? formatAge(r.timestamp) : '—'}</dd>
            </dl>
          </section>
          {allowed(role).commands && <Commands key={id} dev={dev} role={role} />}
        </aside>
      </div>
    </main>
  );
}
