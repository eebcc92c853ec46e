import { useEffect, useState } from 'react';
import { alarmControls, conditionText, stateText, valueText, visualOf } from '../alarms';
import { getAlarmHistory, getAlarmSettings, putAlarmSettings, type AlarmSettings } from '../api';
import { useSession } from '../auth';
import { useClock, useDeviceAlarms } from '../hooks';
import { fmtTime } from '../format';
import type { Alarm } from '../types';
import { AlarmItem } from './AlarmBar';

/** The device's open alarms, with the same controls and visual classes as the alarm bar. */
export function DeviceActiveAlarms({ id }: { id: string }) {
  const alarms = useDeviceAlarms(id);
  const now = useClock();
  if (!alarms.length) return null;
  return (
    <section className="panel dev-alarms" aria-label="Active alarms" data-testid="device-alarms">
      <ul className="alarm-list">{alarms.map((a) => <AlarmItem key={a.alarm_id} a={a} now={now} showDevice={false} />)}</ul>
    </section>
  );
}

const HIST_MS = 24 * 3600e3;

export interface AlarmHist { rows: Alarm[] | null; err: string; refresh: () => void }

/** GET /api/alarms?device=ID&from=&to=: the last 24 h, newest first, cleared ones
 * included; fetched again when the device's open alarms change. Shared by the
 * history list and the charts' episode bands. */
export function useAlarmHistory(id: string): AlarmHist {
  const open = useDeviceAlarms(id);
  const [rows, setRows] = useState<Alarm[] | null>(null);
  const [err, setErr] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    const to = Date.now();
    getAlarmHistory(id, to - HIST_MS, to, ac.signal).then((r) => { setRows(r); setErr(''); })
      .catch((e: Error) => { if (!ac.signal.aborted) setErr(e.message); });
    return () => ac.abort();
  }, [id, open, tick]); // a change of the open alarms is a new row or state here too
  return { rows, err, refresh: () => setTick((t) => t + 1) };
}

export function AlarmHistory({ hist }: { hist: AlarmHist }) {
  const { rows, err } = hist;
  return (
    <section className="panel alarm-history" aria-labelledby="ah-h" data-testid="alarm-history">
      <h2 id="ah-h">Alarm history (24 h) <button className="link" onClick={hist.refresh}>refresh</button></h2>
      {err ? <p className="al-err">history unavailable: {err}</p> : rows == null ? <p className="muted">loading…</p> : !rows.length ? <p className="muted">No alarms in the last 24 h.</p> : (
        <table className="ah-table">
          <thead><tr><th>Started</th><th>Priority</th><th>Condition</th><th>Value</th><th>State</th><th>Cleared</th></tr></thead>
          <tbody>
            {rows.map((a) => (
              <tr key={a.alarm_id} data-testid="alarm-history-row" data-state={a.state}>
                <td>{fmtTime(a.started_at ?? undefined)}</td>
                <td><span className={visualOf({ ...a, state: 'acked' }).className}>{visualOf(a).marker} {a.priority}</span></td>
                <td>{conditionText(a.condition)}</td>
                <td>{valueText(a)}</td>
                <td>{stateText(a)}{a.acked_by && a.state !== 'acked' ? ` · acked by ${a.acked_by}` : ''}{a.escalation ? ` · escalated ${a.escalation}×` : ''}</td>
                <td>{a.cleared_at ? fmtTime(a.cleared_at) : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

type Draft = { escalation_s: string; conditions: Record<string, Record<string, string | boolean>> };

function toDraft(s: AlarmSettings): Draft {
  const conditions: Draft['conditions'] = {};
  for (const [c, m] of Object.entries(s.conditions ?? {})) {
    conditions[c] = {};
    for (const [k, v] of Object.entries(m)) conditions[c][k] = typeof v === 'boolean' ? v : String(v);
  }
  return { escalation_s: s.escalation_s != null ? String(s.escalation_s) : '', conditions };
}

// a value that is not a number goes as typed: the server names the field in its 400
const numOr = (s: string): number | string => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s);

function fromDraft(d: Draft): AlarmSettings {
  const conditions: AlarmSettings['conditions'] = {};
  for (const [c, m] of Object.entries(d.conditions)) {
    conditions[c] = {};
    for (const [k, v] of Object.entries(m)) conditions[c][k] = (typeof v === 'boolean' ? v : numOr(v)) as number | boolean;
  }
  const out: AlarmSettings = { conditions };
  if (d.escalation_s !== '') out.escalation_s = numOr(d.escalation_s) as number;
  return out;
}

/** GET/PUT /api/devices/{id}/alarm-settings: every condition's members; clinicians+ may change them. */
export function AlarmSettingsEditor({ id }: { id: string }) {
  const { role } = useSession();
  const edit = alarmControls(role).edit;
  const [draft, setDraft] = useState<Draft | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const ac = new AbortController();
    getAlarmSettings(id, ac.signal).then((s) => setDraft(toDraft(s)))
      .catch((e: Error) => { if (!ac.signal.aborted) setMsg({ ok: false, text: e.message }); });
    return () => ac.abort();
  }, [id]);
  if (!draft) return <section className="panel"><h2>Alarm limits</h2>{msg ? <p className="al-err">{msg.text}</p> : <p className="muted">loading…</p>}</section>;
  const members = [...new Set(Object.values(draft.conditions).flatMap((m) => Object.keys(m)))];
  const set = (c: string, k: string, v: string | boolean) =>
    setDraft({ ...draft, conditions: { ...draft.conditions, [c]: { ...draft.conditions[c], [k]: v } } });
  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true); setMsg(null);
    try {
      const s = await putAlarmSettings(id, fromDraft(draft));
      setDraft(toDraft(s));
      setMsg({ ok: true, text: 'Saved: these limits are now in force.' });
    } catch (err) {
      setMsg({ ok: false, text: (err as Error).message });
    } finally { setBusy(false); }
  };
  return (
    <section className="panel alarm-settings" aria-labelledby="as-h" data-testid="alarm-settings">
      <h2 id="as-h">Alarm limits</h2>
      <form onSubmit={save}>
        <fieldset disabled={!edit || busy}>
          <label className="field small"><span>Escalation after (s)</span>
            <input data-testid="as-escalation_s" value={draft.escalation_s} inputMode="numeric" onChange={(e) => setDraft({ ...draft, escalation_s: e.target.value })} /></label>
          <div className="as-scroll">
            <table className="as-table">
              <thead><tr><th>Condition</th>{members.map((k) => <th key={k}>{k.replace(/_/g, ' ')}</th>)}</tr></thead>
              <tbody>
                {Object.entries(draft.conditions).map(([c, m]) => (
                  <tr key={c}>
                    <th scope="row" title={c}>{conditionText(c)}</th>
                    {members.map((k) => (
                      <td key={k}>{!(k in m) ? '' : typeof m[k] === 'boolean' ? (
                        <input type="checkbox" aria-label={`${c} ${k}`} data-testid={`as-${c}-${k}`} checked={m[k] as boolean} onChange={(e) => set(c, k, e.target.checked)} />
                      ) : (
                        <input className="as-num" aria-label={`${c} ${k}`} data-testid={`as-${c}-${k}`} value={m[k] as string} inputMode="decimal" onChange={(e) => set(c, k, e.target.value)} />
                      )}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {edit && <button type="submit" data-testid="alarm-settings-save">Save limits</button>}
        </fieldset>
        {!edit && <p className="muted">Changing limits needs the clinician role.</p>}
        {msg && <p className={msg.ok ? 'ok' : 'al-err'} role={msg.ok ? 'status' : 'alert'} data-testid={msg.ok ? 'alarm-settings-ok' : 'alarm-settings-error'}>{msg.text}</p>}
      </form>
    </section>
  );
}
