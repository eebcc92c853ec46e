// Page-only render cost: the built dashboard with N synthetic devices at HZ
// generated inside the page (?synthetic=N&hz=HZ), no server data. Serves
// web/dist with the mock (no broker), measures main-thread time with CDP.
//   npm run build && node e2e/perf.mjs [N=1000] [HZ=1] [SECONDS=20]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Procs, freePort, sleep, tmpDir, waitPort } from './lib.mjs';
import fs from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [N = 1000, HZ = 1, SECS = 20] = process.argv.slice(2).map(Number);
const dir = tmpDir();
const procs = new Procs(dir);
const port = await freePort();
procs.start('mock', process.execPath, [path.join(here, 'mock-vigild.mjs'), '--listen', `127.0.0.1:${port}`, '--web-root', path.join(here, '..', 'dist')]);
let browser;
try {
  await waitPort(port);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'] });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(`http://127.0.0.1:${port}/?synthetic=${N}&hz=${HZ}`);
  await page.waitForFunction((n) => document.querySelectorAll('a.tile').length >= n, N, { timeout: 30000 });
  await sleep(3000); // warm up
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const m = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
  await page.evaluate(() => {
    const w = window;
    w.__frames = []; w.__long = [];
    let last = performance.now();
    const f = (t) => { w.__frames.push(t - last); last = t; w.__raf = requestAnimationFrame(f); };
    w.__raf = requestAnimationFrame(f);
    new PerformanceObserver((l) => { for (const e of l.getEntries()) w.__long.push(e.duration); }).observe({ entryTypes: ['longtask'] });
  });
  const m0 = await m();
  const t0 = Date.now();
  await sleep(SECS * 1000);
  const m1 = await m();
  const wall = (Date.now() - t0) / 1000;
  const r = await page.evaluate(() => {
    const f = window.__frames.slice().sort((a, b) => a - b);
    const q = (p) => f[Math.min(f.length - 1, Math.floor(p * f.length))];
    const s = window.__vigilStore.stats;
    return { frames: f.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: f[f.length - 1], longTasks: window.__long.length,
      longMax: Math.max(0, ...window.__long), messages: s.messages, flushes: s.flushes,
      heapMB: performance.memory ? performance.memory.usedJSHeapSize / 1e6 : NaN, tiles: document.querySelectorAll('a.tile').length };
  });
  const d = (k) => (m1[k] - m0[k]);
  const out = {
    devices: N, hz: HZ, seconds: +wall.toFixed(1), tiles: r.tiles,
    fps: +(r.frames / wall).toFixed(1),
    frame_ms: { p50: +r.p50.toFixed(1), p95: +r.p95.toFixed(1), p99: +r.p99.toFixed(1), max: +r.max.toFixed(1) },
    long_tasks: r.longTasks, longest_task_ms: +r.longMax.toFixed(0),
    main_thread_busy_pct: +((d('TaskDuration') / wall) * 100).toFixed(1),
    script_ms_per_s: +((d('ScriptDuration') * 1000) / wall).toFixed(1),
    layout_ms_per_s: +((d('LayoutDuration') * 1000) / wall).toFixed(1),
    style_ms_per_s: +((d('RecalcStyleDuration') * 1000) / wall).toFixed(1),
    messages_per_s: +(r.messages / (wall + 3)).toFixed(0),
    js_heap_mb: +r.heapMB.toFixed(1),
  };
  console.log(JSON.stringify(out, null, 2));
  if (process.env.PERF_SHOT) await page.screenshot({ path: process.env.PERF_SHOT });
} finally {
  await browser?.close().catch(() => {});
  await procs.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
}
