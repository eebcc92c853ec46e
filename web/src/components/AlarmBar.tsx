import { useEffect, useState } from 'react';
import { alarmControls, alarmStore, audible, conditionText, fmtCountdown, silenceLeftS, soundPlan, stateText, valueText, visualOf } from '../alarms';
import { ackAlarm, getAlarms, silenceAlarm } from '../api';
import { useAlarms, useClock } from '../hooks';
import { useSession } from '../auth';
import { AlarmSound } from '../sound';
import { formatAge, parseIso } from '../time';
import type { Alarm } from '../types';

const SILENCE_S = 120;
const sound = new AlarmSound();
// the user's choice survives navigation (not a reload: a reload needs a new gesture anyway)
let soundWanted = false;

/** One open alarm: marker, priority, device, condition, value/limit, age; ack and silence for clinicians+. */
export function AlarmItem({ a, now, showDevice = true }: { a: Alarm; now: number; showDevice?: boolean }) {
  const { role } = useSession();
  const ctl = alarmControls(role);
  const v = visualOf(a);
  const left = silenceLeftS(a, now);
  const [err, setErr] = useState('');
  const started = parseIso(a.started_at);
  const run = (p: Promise<unknown>) => { setErr(''); p.catch((e: Error) => setErr(e.message)); };
  return (
    <li className={v.className} data-testid="alarm" data-alarm-id={a.alarm_id} data-device={a.device_id}
      data-priority={a.priority} data-condition={a.condition} data-state={a.state} data-flash={v.flash}>
      <span className="al-marker" aria-hidden="true">{v.marker}</span>
      <span className="al-prio" data-testid="alarm-priority">{a.priority}</span>
      {showDevice && <a className="al-dev" href={`#/device/${encodeURIComponent(a.device_id)}`}>{a.device_id}</a>}
      <span className="al-cond">{conditionText(a.condition)}</span>
      <span className="al-val">{valueText(a)}</span>
      <span className="al-age" title={a.started_at ?? ''}>{Number.isFinite(started) ? formatAge(now - started) : ''}</span>
      {a.state !== 'active' && <span className="al-st">{stateText(a)}</span>}
      {left > 0 && <span className="al-sil" data-testid="alarm-silenced" aria-label={`audio paused, ${left} seconds left`}>🔇 {fmtCountdown(left)}</span>}
      {ctl.ack && a.state !== 'acked' && <button className="al-btn" data-testid="alarm-ack" onClick={() => run(ackAlarm(a.alarm_id))}>Acknowledge</button>}
      {ctl.silence && audible(a) && left === 0 && <button className="al-btn" data-testid="alarm-silence" onClick={() => run(silenceAlarm(a.alarm_id, SILENCE_S))}>Silence 2 min</button>}
      {err && <span className="al-err" role="alert">{err}</span>}
    </li>
  );
}

/** Sound control: explicit enable (browsers block autoplay), state off / on / paused. */
function SoundControl({ alarms, now }: { alarms: Alarm[]; now: number }) {
  const [wanted, setWanted] = useState(soundWanted);
  const [unavailable, setUnavailable] = useState(false);
  const plan = soundPlan(wanted, alarms, now);
  useEffect(() => { sound.set(plan.play); }, [plan.play]);
  const toggle = () => {
    if (wanted) { sound.disable(); soundWanted = false; setWanted(false); return; }
    if (!sound.enable()) { setUnavailable(true); return; }
    soundWanted = true;
    setWanted(true);
  };
  const label = plan.state === 'off' ? 'Sound off' : plan.state === 'paused' ? 'Sound paused (silenced)' : 'Sound on';
  return (
    <span className={`sound sound-${plan.state}`} data-testid="sound" data-state={plan.state}>
      <span aria-live="polite">{unavailable ? 'Sound unavailable in this browser' : label}</span>
      <button data-testid="sound-toggle" onClick={toggle} aria-pressed={wanted}>{wanted ? 'Mute sound' : 'Enable sound'}</button>
    </span>
  );
}

/** Always visible under the header: every open alarm of every device. */
export function AlarmBar() {
  const alarms = useAlarms();
  const now = useClock();
  useEffect(() => {
    const ac = new AbortController();
    getAlarms(ac.signal).then((l) => alarmStore.setAll(l)).catch(() => { /* the snapshot carries them too */ });
    return () => ac.abort();
  }, []);
  return (
    <section className={`alarm-bar${alarms.length ? ' has' : ''}`} aria-label="Alarms" data-testid="alarm-bar">
      <div className="alarm-bar-head">
        <b>{alarms.length ? `${alarms.length} open alarm${alarms.length > 1 ? 's' : ''}` : 'No open alarms'}</b>
        <SoundControl alarms={alarms} now={now} />
      </div>
      {alarms.length > 0 && <ul className="alarm-list">{alarms.map((a) => <AlarmItem key={a.alarm_id} a={a} now={now} />)}</ul>}
    </section>
  );
}
