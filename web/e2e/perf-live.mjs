// The dashboard against the real thing: Mosquitto + vigild + vigil-sim with
// N devices at HZ, the ward view open in headless Chromium for SECONDS.
// Reports frames per second, main-thread busy %, long tasks and the JS heap
// at the start and at the end (is memory bounded over a long run?).
//   npm run build && node e2e/perf-live.mjs [N=1000] [HZ=1] [SECONDS=600]
// Env: VIGILD, VIGIL_SIM (defaults: ../build/server/vigild, ../build/sim/vigil-sim).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Procs, freePort, loginThroughPage, sleep, startMosquitto, tmpDir, vigildCli, waitPort } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const [N = 1000, HZ = 1, SECS = 600] = process.argv.slice(2).map(Number);
const VIGILD = process.env.VIGILD || path.join(root, 'build/server/vigild');
const SIM = process.env.VIGIL_SIM || path.join(root, 'build/sim/vigil-sim');
const dir = tmpDir();
const procs = new Procs(dir);
let browser;
try {
  const broker = await startMosquitto(procs, dir);
  const http = await freePort();
  // a real user through vigild's CLI, logged in through the login page below
  await vigildCli(VIGILD, ['user', 'add', 'perf', '--role', 'viewer', '--db', path.join(dir, 'v.db')], 'perf-live-pass-1\n');
  procs.start('vigild', VIGILD, ['--broker', `mqtt://127.0.0.1:${broker.port}`, '--listen', `127.0.0.1:${http}`,
    '--db', path.join(dir, 'v.db'), '--web-root', path.join(here, '..', 'dist'), '--client-id', `perf-live-${process.pid}`]);
  await waitPort(http);
  procs.start('sim', SIM, ['--broker', `mqtt://127.0.0.1:${broker.port}`, '--devices', String(N), '--rate', String(HZ),
    '--duration', String(SECS + 60), '--prefix', 'PERF_']);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'] });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(`http://127.0.0.1:${http}/?perf=1`);
  await loginThroughPage(page, `http://127.0.0.1:${http}`, 'perf', 'perf-live-pass-1', { goto: false });
  await page.waitForFunction((n) => document.querySelectorAll('a.tile').length >= n, N, { timeout: 60000 });
  await sleep(5000); // warm up
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
  const heap = async () => { await cdp.send('HeapProfiler.collectGarbage'); return (await metrics()).JSHeapUsedSize / 1e6; };
  await page.evaluate(() => {
    const w = window;
    w.__frames = 0; w.__long = [];
    const f = () => { w.__frames++; requestAnimationFrame(f); };
    requestAnimationFrame(f);
    new PerformanceObserver((l) => { for (const e of l.getEntries()) w.__long.push(e.duration); }).observe({ entryTypes: ['longtask'] });
  });
  const heap0 = await heap();
  const m0 = await metrics();
  const msgs0 = await page.evaluate(() => window.__vigilStore.stats.messages);
  const t0 = Date.now();
  const samples = [];
  while (Date.now() - t0 < SECS * 1000) {
    await sleep(Math.min(60000, SECS * 1000 - (Date.now() - t0)));
    samples.push({ at_s: Math.round((Date.now() - t0) / 1000), heap_mb: +(await heap()).toFixed(1) });
  }
  const m1 = await metrics();
  const wall = (Date.now() - t0) / 1000;
  const r = await page.evaluate(() => ({ frames: window.__frames, long: window.__long, messages: window.__vigilStore.stats.messages,
    tiles: document.querySelectorAll('a.tile').length, stale: document.querySelectorAll('a.tile.stale, a.tile.offline').length }));
  const out = {
    devices: N, hz: HZ, seconds: +wall.toFixed(0), tiles: r.tiles,
    messages_per_s: +((r.messages - msgs0) / wall).toFixed(0),
    fps: +(r.frames / wall).toFixed(1),
    main_thread_busy_pct: +(((m1.TaskDuration - m0.TaskDuration) / wall) * 100).toFixed(1),
    script_ms_per_s: +(((m1.ScriptDuration - m0.ScriptDuration) * 1000) / wall).toFixed(1),
    long_tasks: r.long.length, longest_task_ms: Math.round(Math.max(0, ...r.long)),
    js_heap_mb_start: +heap0.toFixed(1), js_heap_mb_end: samples.at(-1)?.heap_mb, heap_samples: samples,
  };
  console.log(JSON.stringify(out, null, 2));
} finally {
  await browser?.close().catch(() => {});
  await procs.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
}
