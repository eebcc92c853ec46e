// End-to-end: a real resync. vigild runs with a tiny per-client WebSocket queue
// (--ws-queue 16); the device page is open while its renderer is slowed down
// (Chrome DevTools CPU throttling: Chrome then reads the socket slowly, so
// vigild's queue for the page overflows) and a burst of readings is published.
// vigild drops what it had queued, sends {"type":"resync"} and a snapshot; the
// page must refetch the window from REST and end up charting every reading of the
// burst. Run from web/ after `npm run build`:
//   VIGILD=../build/server/vigild node --test e2e/resync.e2e.test.mjs
// Env as for dashboard.e2e.test.mjs (VIGILD, CHROMIUM, VIGIL_E2E_KEEP).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Procs, freePort, loginThroughPage, pub, pubLines, sleep, startMosquitto, teardown, tmpDir, vigildCli, waitFor, waitVigild } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '..');
const dist = process.env.VIGIL_E2E_DIST || path.join(webDir, 'dist');
const VIGILD = process.env.VIGILD || path.resolve(webDir, '../build/server/vigild');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const dir = tmpDir();
const procs = new Procs(dir);
let mq, base, browser;
const DB = path.join(dir, 'vigil.db');
const USER = { name: 'tech', role: 'technician', password: 'e2e-tech-pass-1' };

const ID = 'RS_A';            // the device whose chart is open
const FILLERS = 40;           // other devices: volume that makes the page fall behind
const BASE_N = 5;             // readings before the burst
const ROUNDS = 3;             // pause + burst rounds at most (until vigild has resynced the page)
const PER_ROUND = 400;        // readings of ID per round (every one must end up on the chart, raw)
const FILL_PER = 5;           // filler readings published after each reading of ID: each resync
                              // drops several of ID's, more than the snapshot's newest brings back

const reading = (over) => ({ sensor_type: 'MAX30614', hr_valid: true, spo2_valid: true, temp_valid: true, fw: '0.1.0', ...over });

/** Resolves when p exits or after ms (the timer is cleared: it must not hold the test process open). */
const exited = (p, ms) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  p.exited.then(() => { clearTimeout(t); resolve(); });
});

async function metric(name) {
  const r = await fetch(`${base}/metrics`);
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(await r.text());
  return m ? Number(m[1]) : NaN;
}

before(async () => {
  assert.ok(fs.existsSync(path.join(dist, 'index.html')), `${dist}/index.html missing: run npm run build first`);
  assert.ok(fs.existsSync(VIGILD) && !VIGILD.endsWith('.mjs'), `a real vigild is needed at ${VIGILD} (set VIGILD)`);
  assert.ok(fs.existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}`);
  mq = await startMosquitto(procs, dir);
  const httpPort = await freePort();
  base = `http://127.0.0.1:${httpPort}`;
  await vigildCli(VIGILD, ['user', 'add', USER.name, '--role', USER.role, '--db', DB], `${USER.password}\n`);
  const vigild = procs.start('vigild', VIGILD, ['--broker', `mqtt://127.0.0.1:${mq.port}`, '--listen', `127.0.0.1:${httpPort}`,
    '--db', DB, '--web-root', dist, '--client-id', `vigild-resync-e2e-${process.pid}`, '--ws-queue', '16']);
  await waitVigild(procs, vigild, base);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
});

after(() => teardown(browser, procs, dir));

describe('dashboard after a WebSocket resync', { timeout: 240000 }, () => {
  it('refetches what the server dropped: the chart shows every reading of the burst', async () => {
    const t0 = Date.now();
    const tOf = (i) => t0 - 400000 + i * 250; // i-th reading of ID: all inside the 15 min window
    await pub(mq.port, `sensors/esp32/${ID}/status`, { status: 'online', fw: '0.1.0', interval_ms: 1000, boot: 1 }, { retain: true });
    for (let i = 0; i < BASE_N; i++) {
      await pub(mq.port, `sensors/esp32/${ID}/data`, reading({ heart_rate: 70 + i, spo2: 97, object_temp: 36.5, ambient_temp: 23, seq: i + 1, boot: 1, ts: tOf(i), timestamp: i * 1000 }));
    }
    // wide enough that the chart asks for every reading raw (max_points ~ its width)
    const page = await browser.newPage({ viewport: { width: 1800, height: 900 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await loginThroughPage(page, base, USER.name, USER.password);
    await page.goto(`${base}/?perf=1#/device/${ID}`); // perf=1: the store is window.__vigilStore
    const chart = page.getByTestId('chart-hr');
    const points = async () => Number(await chart.getAttribute('data-points'));
    await waitFor(async () => (await points()) === BASE_N, { timeout: 15000, what: `HR chart with ${BASE_N} points` });
    const conn = page.getByTestId('conn');
    await waitFor(async () => (await conn.getAttribute('data-state')) === 'connected', { timeout: 10000, what: 'connected' });
    assert.equal(await metric('vigil_ws_resyncs_total'), 0);
    // From here the page's history requests are held until released, so the test can
    // see what the page shows before its refetch lands (the test's own query passes).
    const held = [];
    let release;
    const released = new Promise((r) => { release = r; });
    const pageHistory = (url) => url.pathname === `/api/devices/${ID}/readings` && url.searchParams.get('max_points') !== '10000';
    await page.route(pageHistory, async (route) => { held.push(route); await released; await route.continue().catch(() => {}); });

    // The page stops reading: its main thread paused in the debugger (Chrome then stops
    // reading the socket), in spells shorter than vigild's 2 s "not reading" limit, while
    // bursts are published; vigild's queue for the page overflows: resync, not disconnect.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Debugger.enable');
    const dev = pubLines(procs, mq.port, `sensors/esp32/${ID}/data`);
    const fill = Array.from({ length: FILLERS }, (_, k) => pubLines(procs, mq.port, `sensors/esp32/RS_F${String(k).padStart(2, '0')}/data`));
    const fseq = new Array(FILLERS).fill(0);
    let f = 0, sent = 0;
    try {
      for (let round = 0; round < ROUNDS && !((await metric('vigil_ws_resyncs_total')) > 0); round++) {
        await cdp.send('Debugger.pause');
        for (let j = 0; j < PER_ROUND; j++, sent++) {
          const i = BASE_N + sent;
          dev.send(reading({ heart_rate: 60 + (i % 40), spo2: 95 + (i % 4), object_temp: 36.5, ambient_temp: 23, seq: i + 1, boot: 1, ts: tOf(i), timestamp: i * 1000 }));
          for (let k = 0; k < FILL_PER; k++, f = (f + 1) % FILLERS) {
            fseq[f]++;
            fill[f].send(reading({ heart_rate: 75, spo2: 98, object_temp: 36.6, ambient_temp: 23, seq: fseq[f], boot: 1, ts: Date.now() - 1000, timestamp: fseq[f] * 1000 }));
          }
        }
        await sleep(1300);
        await cdp.send('Debugger.resume').catch(() => {});
        await sleep(700);
      }
    } finally {
      await cdp.send('Debugger.resume').catch(() => {});
      for (const p of [dev, ...fill]) p.proc.stdin.end();
      for (const p of [dev, ...fill]) await exited(p.proc, 60000); // publishes all it was given, then exits
    }
    const N = BASE_N + sent;
    // every reading is stored (REST history has them all) ...
    await waitFor(async () => {
      const r = await page.evaluate(async ([id, from]) => (await fetch(`/api/devices/${id}/readings?from=${from}&to=${Date.now() + 60000}&max_points=10000`)).json(), [ID, tOf(0)]);
      return r.total === N;
    }, { timeout: 30000, what: `${N} readings of ${ID} stored` });
    // ... and vigild really resynced the page rather than keeping up or disconnecting it
    await waitFor(async () => (await metric('vigil_ws_resyncs_total')) > 0, { timeout: 30000, what: 'vigil_ws_resyncs_total > 0' });
    const resyncs = await metric('vigil_ws_resyncs_total');
    const dropped = await metric('vigil_ws_resync_dropped_total');
    assert.equal(await metric('vigil_ws_dropped_clients_total'), 0, 'vigild disconnected the page instead of resyncing it');

    // before the refetch has landed: the gap is marked, not drawn across
    await waitFor(async () => Number(await chart.getAttribute('data-gaps')) >= 1, { timeout: 15000, what: 'the gap shaded on the HR chart' });
    assert.ok(Number(await page.getByTestId('chart-spo2').getAttribute('data-gaps')) >= 1, 'the gap shaded on the SpO2 chart');
    assert.match(await page.getByTestId('range-gap').textContent(), /Readings missing .*reloading from history/);
    assert.ok(held.length >= 1, 'the page asked for the history again');
    release();
    await page.unroute(pageHistory);

    // the chart ends with every reading: none lost, none doubled, no gap left marked
    await waitFor(async () => (await points()) === N, { timeout: 30000, what: `HR chart with ${N} points` })
      .catch(async (e) => { throw new Error(`${e.message} (has ${await points()})`); });
    await waitFor(async () => (await chart.getAttribute('data-gaps')) === '0', { timeout: 10000, what: 'no gap marked' });
    assert.equal(await page.getByTestId('range-gap').count(), 0);
    const hr = await page.evaluate(() => document.querySelector('[data-testid="d-hr"]')?.textContent?.trim());
    assert.equal(hr, String(60 + ((N - 1) % 40)), 'the big number is the newest reading');
    // the page counted it, for support staff: resyncs seen and readings put back from history
    // (the indicator redraws with the once-a-second clock)
    await waitFor(async () => Number(await conn.getAttribute('data-resyncs')) > 0, { timeout: 5000, what: 'the page counted a resync' });
    await waitFor(async () => Number(await conn.getAttribute('data-refilled')) > 0, { timeout: 5000, what: 'readings of the burst refetched (were any dropped?)' })
      .catch(async (e) => { throw new Error(`${e.message}: vigild ${resyncs} resyncs, ${dropped} dropped; page store ${await page.evaluate(() => JSON.stringify(window.__vigilStore.resync))}`); });
    assert.match(await conn.getAttribute('title'), /resynced \d+ times? \(\d+ messages dropped by the server\).*\d+ readings refetched/);
    console.log(`# vigild: ${resyncs} resyncs, ${dropped} messages dropped; page: ${await conn.getAttribute('title')}`);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
