import { memo, useCallback, useSyncExternalStore } from 'react';
import { clock, store } from '../store';
import { useDevice, useDevState, useDeviceAlarms, severityOf } from '../hooks';
import { conditionText, visualOf } from '../alarms';
import { STATE_ICON, STATE_LABEL } from '../state';
import { fmt1, fmtInt } from '../format';
import { formatAge } from '../time';

const SCORE_CLASS = ['', 's1', 's2', 's3'];

function Age({ id }: { id: string }) {
  const sub = useCallback((l: () => void) => {
    const a = store.subscribeDevice(id, l);
    const b = clock.subscribe(l);
    return () => { a(); b(); };
  }, [id]);
  const text = useSyncExternalStore(sub, () => {
    const d = store.get(id);
    return d && Number.isFinite(d.lastAt) ? formatAge(clock.now() - d.lastAt) : 'never';
  });
  return <span className="age" data-testid="age">{text}</span>;
}

export const Tile = memo(function Tile({ id }: { id: string }) {
  const d = useDevice(id);
  const state = useDevState(id);
  const alarms = useDeviceAlarms(id);
  if (!d) return null;
  const r = d.last;
  const live = state === 'online' || state === 'nosignal';
  const sev = severityOf(d);
  const hrOk = r?.hr_valid !== false && r?.heart_rate != null;
  const spOk = r?.spo2_valid !== false && r?.spo2 != null;
  const teOk = r?.temp_valid !== false && r?.object_temp != null;
  const level = live && state === 'online' ? sev.level : 'none';
  const label = `${id}: ${STATE_LABEL[state]}; heart rate ${hrOk ? fmtInt(r?.heart_rate) : 'no value'}; SpO2 ${spOk ? fmtInt(r?.spo2) + ' percent' : 'no value'}; skin temperature ${teOk ? fmt1(r?.object_temp) + ' °C' : 'no value'}${level !== 'none' ? `; early-warning score ${sev.score}` : ''}${alarms.length ? `; alarms: ${alarms.map((a) => `${a.priority} ${conditionText(a.condition)}`).join(', ')}` : ''}`;
  return (
    <a className={`tile st-${state} lv-${level}`} href={`#/device/${encodeURIComponent(id)}`}
      data-device={id} data-state={state} aria-label={label}>
      <div className="tile-head">
        <span className="tile-id">{id}</span>
        <span className={`chip chip-${state}`} data-testid="state"><span aria-hidden="true">{STATE_ICON[state]}</span> {STATE_LABEL[state]}</span>
      </div>
      {alarms.length > 0 && (
        <div className="tile-alarms" data-testid="tile-alarms">
          {alarms.slice(0, 2).map((a) => {
            const v = visualOf(a);
            return <span key={a.alarm_id} className={v.className} data-testid="tile-alarm" data-priority={a.priority} data-flash={v.flash}>
              <span className="al-marker" aria-hidden="true">{v.marker}</span> {conditionText(a.condition)}</span>;
          })}
          {alarms.length > 2 && <span className="al-more">+{alarms.length - 2}</span>}
        </div>
      )}
      <div className="tile-vitals" aria-hidden="true">
        <div className={`v v-hr ${live && hrOk ? SCORE_CLASS[sev.hr] : ''}`}>
          <span className="v-label">HR</span>
          <span className="v-num" data-testid="hr">{hrOk ? fmtInt(r?.heart_rate) : '--'}</span>
          <span className="v-unit">bpm</span>
        </div>
        <div className={`v v-spo2 ${live && spOk ? SCORE_CLASS[sev.spo2] : ''}`}>
          <span className="v-label">SpO₂</span>
          <span className="v-num" data-testid="spo2">{spOk ? fmtInt(r?.spo2) : '--'}</span>
          <span className="v-unit">%</span>
        </div>
        <div className={`v v-temp ${live && teOk ? SCORE_CLASS[sev.temp] : ''}`}>
          <span className="v-label">Skin</span>
          <span className="v-num" data-testid="temp">{teOk ? fmt1(r?.object_temp) : '--.-'}</span>
          <span className="v-unit">°C <span className="amb" data-testid="amb">amb {fmt1(r?.ambient_temp)}</span></span>
        </div>
      </div>
      <div className="tile-foot">
        {level !== 'none' ? <span className="news" title="Early-warning score: NEWS2 bands for HR and SpO₂, skin-temperature bands (not NEWS2)">EWS {sev.score}</span> : <span />}
        <Age id={id} />
      </div>
    </a>
  );
});
