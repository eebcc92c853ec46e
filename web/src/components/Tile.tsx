import { memo, useCallback, useSyncExternalStore } from 'react';
import { clock, store } from '../store';
import { useDevice, useDevState, useDeviceAlarms, news2Of } from '../hooks';
import { NEWS2_LABEL, NEWS2_NOT_MEASURED, subScoreClass } from '../severity';
import { conditionText, visualOf } from '../alarms';
import { STATE_ICON, STATE_LABEL } from '../state';
import { fmt1, fmtInt } from '../format';
import { formatAge } from '../time';

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
  const sev = news2Of(d);
  const n2 = sev.news2;
  const hrOk = r?.hr_valid !== false && r?.heart_rate != null;
  const spOk = r?.spo2_valid !== false && r?.spo2 != null;
  const teOk = r?.temp_valid !== false && r?.object_temp != null;
  const level = live && state === 'online' ? sev.level : 'none';
  const label = `${id}: ${STATE_LABEL[state]}; heart rate ${hrOk ? fmtInt(r?.heart_rate) : 'no value'}; SpO2 ${spOk ? fmtInt(r?.spo2) + ' percent' : 'no value'}; skin temperature ${teOk ? fmt1(r?.object_temp) + ' °C' : 'no value'}${level !== 'none' && n2 ? `; ${NEWS2_LABEL} ${n2.score}` : ''}${alarms.length ? `; alarms: ${alarms.map((a) => `${a.priority} ${conditionText(a.condition)}`).join(', ')}` : ''}`;
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
        <div className={`v v-hr ${live && hrOk ? subScoreClass(n2?.pulse) : ''}`}>
          <span className="v-label">HR</span>
          <span className="v-num" data-testid="hr">{hrOk ? fmtInt(r?.heart_rate) : '--'}</span>
          <span className="v-unit">bpm</span>
        </div>
        <div className={`v v-spo2 ${live && spOk ? subScoreClass(n2?.spo2) : ''}`}>
          <span className="v-label">SpO₂</span>
          <span className="v-num" data-testid="spo2">{spOk ? fmtInt(r?.spo2) : '--'}</span>
          <span className="v-unit">%</span>
        </div>
        <div className="v v-temp">
          <span className="v-label">Skin</span>
          <span className="v-num" data-testid="temp">{teOk ? fmt1(r?.object_temp) : '--.-'}</span>
          <span className="v-unit">°C <span className="amb" data-testid="amb">amb {fmt1(r?.ambient_temp)}</span></span>
        </div>
      </div>
      <div className="tile-foot">
        {level !== 'none' && n2 ? <span className="news" data-testid="news2" data-score={n2.score} title={NEWS2_NOT_MEASURED}>{NEWS2_LABEL} {n2.score}</span> : <span />}
        <Age id={id} />
      </div>
    </a>
  );
});
