import { useState } from 'react';
import { postCommand, putConfig } from '../api';
import { store, type Dev } from '../store';
import type { CommandResult } from '../types';
import { allowed, type Role } from '../roles';

const CMD_TIMEOUT_MS = 10000;
const CFG_TIMEOUT_MS = 15000;

interface LogEntry {
  n: number;
  label: string;
  key?: string;
  state: 'sending' | 'waiting' | 'ok' | 'failed' | 'timeout' | 'error';
  detail: string;
  at: number;
}

function describe(r: CommandResult): string {
  const skip = new Set(['device_id', 'received_at', 'cmd_id', 'cfg_id', 'cmd', 'ok', 'error']);
  const extra = Object.entries(r).filter(([k]) => !skip.has(k)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
  if (r.ok === false) return `failed: ${r.error ?? 'device said not ok'}${extra ? ` (${extra})` : ''}`;
  return `ok${extra ? ` (${extra})` : ''}`;
}

let seq = 0;

/** Only the controls the role may use (viewers never get here: DeviceDetail leaves the panel out). */
export function Commands({ dev, role }: { dev: Dev; role: Role | null }) {
  const id = dev.id;
  const may = allowed(role);
  const [log, setLog] = useState<LogEntry[]>([]);
  const [interval, setIntervalMs] = useState<string>(String(dev.intervalMs ?? 1000));
  const lastSeq = dev.last?.seq;
  const [rsBoot, setRsBoot] = useState<string>(dev.boot != null ? String(dev.boot) : dev.last?.boot != null ? String(dev.last.boot) : '');
  const [rsFrom, setRsFrom] = useState<string>(lastSeq != null ? String(Math.max(0, lastSeq - 60)) : '0');
  const [rsTo, setRsTo] = useState<string>(lastSeq != null ? String(lastSeq) : '0');

  const update = (n: number, p: Partial<LogEntry>) => setLog((l) => l.map((e) => (e.n === n ? { ...e, ...p } : e)));

  async function run(label: string, send: () => Promise<string>, timeoutMs: number) {
    const n = ++seq;
    setLog((l) => [{ n, label, state: 'sending' as const, detail: 'sending…', at: Date.now() }, ...l].slice(0, 8));
    let key: string;
    try {
      key = await send();
    } catch (e) {
      update(n, { state: 'error', detail: `not sent: ${e instanceof Error ? e.message : String(e)}` });
      return;
    }
    update(n, { key, state: 'waiting', detail: `sent (${key}), waiting for the device…` });
    const r = await store.waitResult(key, timeoutMs);
    if (!r) update(n, { state: 'timeout', detail: `no answer from the device within ${timeoutMs / 1000} s` });
    else update(n, { state: r.ok === false ? 'failed' : 'ok', detail: describe(r) });
  }

  const cmd = (name: string, extra: Record<string, unknown> = {}) =>
    run(name, async () => (await postCommand(id, { cmd: name, ...extra })).cmd_id, CMD_TIMEOUT_MS);

  const ivNum = Number(interval);
  const ivValid = Number.isInteger(ivNum) && ivNum >= 10 && ivNum <= 3600000;

  return (
    <section className="panel commands" aria-labelledby="cmd-h">
      <h2 id="cmd-h">Control</h2>
      {may.config && <form className="row" onSubmit={(e) => { e.preventDefault(); if (ivValid) run(`interval ${ivNum} ms`, async () => (await putConfig(id, ivNum)).cfg_id, CFG_TIMEOUT_MS); }}>
        <label className="field">
          <span>Interval (ms)</span>
          <input type="number" min={10} max={3600000} step={1} value={interval} onChange={(e) => setIntervalMs(e.target.value)}
            aria-invalid={!ivValid} data-testid="interval" />
        </label>
        <button type="submit" disabled={!ivValid}>Apply</button>
      </form>}
      <div className="row buttons">
        {may.command('ping') && <button onClick={() => cmd('ping')} data-testid="cmd-ping">Ping</button>}
        {may.command('identify') && <button onClick={() => cmd('identify')} data-testid="cmd-identify">Identify</button>}
        {may.command('reboot') && <button className="danger" onClick={() => { if (window.confirm(`Reboot ${id}? It will stop measuring for a few seconds.`)) cmd('reboot'); }} data-testid="cmd-reboot">Reboot…</button>}
      </div>
      {may.command('resend') && <form className="row" onSubmit={(e) => {
        e.preventDefault();
        cmd('resend', { boot: Number(rsBoot), from: Number(rsFrom), to: Number(rsTo) });
      }}>
        <label className="field small wide"><span>Boot</span><input type="number" min={0} value={rsBoot} onChange={(e) => setRsBoot(e.target.value)} /></label>
        <label className="field small"><span>Seq from</span><input type="number" min={0} value={rsFrom} onChange={(e) => setRsFrom(e.target.value)} /></label>
        <label className="field small"><span>to</span><input type="number" min={0} value={rsTo} onChange={(e) => setRsTo(e.target.value)} /></label>
        <button type="submit" disabled={rsBoot === '' || Number(rsFrom) > Number(rsTo)} data-testid="cmd-resend">Resend</button>
      </form>}
      <ul className="log" aria-live="polite" data-testid="cmd-log">
        {log.map((e) => (
          <li key={e.n} className={`log-${e.state}`} data-state={e.state}>
            <span className="log-label">{e.label}</span> <span className="log-detail">{e.detail}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
