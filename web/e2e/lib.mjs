// Helpers for the dashboard e2e: free ports, child processes we own (stopped by
// PID only), bounded waits, Mosquitto publish/subscribe through its CLI tools.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export async function waitFor(pred, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try { last = await pred(); if (last) return last; } catch (e) { last = e; }
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

export function waitPort(port, timeout = 10000) {
  return waitFor(() => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), { timeout, what: `port ${port}` });
}

/** Children we started; each is stopped by its own PID, nothing else. */
export class Procs {
  constructor(dir) { this.list = []; this.dir = dir; }
  start(name, cmd, args, opts = {}) {
    const log = fs.openSync(path.join(this.dir, `${name}.log`), 'a');
    const p = spawn(cmd, args, { stdio: [opts.stdin ?? 'ignore', opts.stdout ?? log, log], env: { ...process.env, ...(opts.env ?? {}) } });
    p.name = name;
    p.exited = new Promise((r) => p.once('exit', (code, sig) => r({ code, sig })));
    p.on('error', (e) => fs.appendFileSync(path.join(this.dir, `${name}.log`), `spawn error: ${e.message}\n`));
    this.list.push(p);
    return p;
  }
  async stop(p, timeout = 5000) {
    if (p.exitCode !== null || p.signalCode !== null) return;
    try { process.kill(p.pid, 'SIGTERM'); } catch { return; }
    const done = await Promise.race([p.exited, sleep(timeout).then(() => null)]);
    if (!done) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } await Promise.race([p.exited, sleep(2000)]); }
  }
  async stopAll() {
    for (const p of [...this.list].reverse()) await this.stop(p);
    this.list = [];
  }
  log(name) {
    try { return fs.readFileSync(path.join(this.dir, `${name}.log`), 'utf8'); } catch { return ''; }
  }
}

export function tmpDir() { return fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-web-e2e-')); }

export async function startMosquitto(procs, dir) {
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`);
  const p = procs.start('mosquitto', 'mosquitto', ['-c', conf]);
  await waitPort(port, 10000);
  return { port, proc: p };
}

/** One message through mosquitto_pub (QoS 1), resolves when it exited. */
export function pub(port, topic, payload, { retain = false, timeout = 10000 } = {}) {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', typeof payload === 'string' ? payload : JSON.stringify(payload)];
  if (retain) args.push('-r');
  return new Promise((resolve, reject) => {
    const p = spawn('mosquitto_pub', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } reject(new Error(`mosquitto_pub timed out on ${topic}`)); }, timeout);
    p.on('exit', (code) => { clearTimeout(t); code === 0 ? resolve() : reject(new Error(`mosquitto_pub ${topic} exited ${code}: ${err}`)); });
  });
}

/**
 * Starts mosquitto_sub for one message on topic (-C 1 -W secs). Resolves
 * `ready` once the subscription is likely active (mosquitto_sub prints nothing
 * on subscribe, so this waits for its connection plus a short margin), and
 * `message` with the payload (or null on timeout).
 */
export function subOnce(procs, port, topic, secs = 10) {
  const p = procs.start(`sub-${topic.replace(/\W+/g, '_')}`, 'mosquitto_sub',
    ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-C', '1', '-W', String(secs), '-t', topic], { stdout: 'pipe' });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  const message = p.exited.then(() => (out.trim() ? out.trim() : null));
  return { proc: p, message, ready: sleep(800) };
}

/** The first message on topic whose JSON satisfies pred (others are skipped:
 * vigild itself may command the device, e.g. a completeness `resend`). */
export function subMatch(procs, port, topic, pred, secs = 10) {
  const p = procs.start(`subm-${topic.replace(/\W+/g, '_')}`, 'mosquitto_sub',
    ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-W', String(secs), '-t', topic], { stdout: 'pipe' });
  let buf = '';
  const message = new Promise((resolve) => {
    p.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        let msg = null;
        try { msg = JSON.parse(line); } catch { /* not JSON: skip */ }
        if (msg && pred(msg)) { resolve(line); procs.stop(p); return; }
      }
    });
    p.exited.then(() => resolve(null));
  });
  return { proc: p, message, ready: sleep(800) };
}

/** A long-lived `mosquitto_pub -l` for one topic: each written line is one message. */
export function pubLines(procs, port, topic) {
  const p = procs.start(`publ-${topic.replace(/\W+/g, '_')}`, 'mosquitto_pub',
    ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-l'], { stdin: 'pipe' });
  return { proc: p, send: (obj) => { if (!p.stdin.destroyed) p.stdin.write(JSON.stringify(obj) + '\n'); } };
}

/**
 * vigild's CLI (`user add NAME --role ROLE --db DB`, …) with `input` on stdin;
 * a .mjs path (the mock) runs under node. Resolves stdout; rejects on exit ≠ 0.
 */
export function vigildCli(vigild, args, input = '', timeout = 30000) {
  const [cmd, argv] = vigild.endsWith('.mjs') ? [process.execPath, [vigild, ...args]] : [vigild, args];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } reject(new Error(`vigild ${args.join(' ')} timed out`)); }, timeout);
    p.on('error', (e) => { clearTimeout(t); reject(e); });
    p.on('exit', (code) => { clearTimeout(t); code === 0 ? resolve(out) : reject(new Error(`vigild ${args.slice(0, 3).join(' ')} exited ${code}: ${err}`)); });
    p.stdin.end(input);
  });
}

/** Logs page in through the login page as user; resolves once the app shows who is logged in. */
export async function loginThroughPage(page, base, user, password, { goto = true } = {}) {
  if (goto) await page.goto(`${base}/`);
  await page.getByTestId('login-user').waitFor({ timeout: 10000 });
  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('who-user').waitFor({ timeout: 15000 });
}

/** Resolves once vigild (the child `proc`, serving `base`) answers /healthz 200 with its broker connected. */
export function waitVigild(procs, proc, base, timeout = 15000) {
  return waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`vigild exited ${proc.exitCode}:\n${procs.log('vigild').slice(-2000)}`);
    const r = await fetch(`${base}/healthz`).catch(() => null);
    if (!r || r.status !== 200) return false;
    const j = await r.json();
    return j.broker_connected !== false;
  }, { timeout, what: 'vigild /healthz 200 with broker connected' });
}

/** An e2e file's after(): the browser, every child we started, the temp dir (kept with VIGIL_E2E_KEEP). */
export async function teardown(browser, procs, dir) {
  await browser?.close().catch(() => {});
  await procs.stopAll();
  if (process.env.VIGIL_E2E_KEEP) console.log(`# kept ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
}
