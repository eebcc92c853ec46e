#!/usr/bin/env node
// A stand-in for vigild, for front-end development and for checking the e2e
// runner while the real server is not built. Same CLI:
//   node e2e/mock-vigild.mjs --broker mqtt://127.0.0.1:1883 --listen 127.0.0.1:8080 --web-root dist
// With --broker it bridges MQTT through mosquitto_sub / mosquitto_pub child processes;
// with --synthetic N instead it generates N devices at 1 Hz in process (no broker).
// In memory only; implements the subset of docs/PROTOCOL.md the dashboard uses.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import readline from 'node:readline';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => {
  if (v.startsWith('--')) a.push([v.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return a;
}, []));
const [host, port] = (args.listen ?? '127.0.0.1:8080').split(':');
const webRoot = path.resolve(args['web-root'] ?? 'dist');
const broker = args.broker ? new URL(args.broker) : null;
const children = [];

const devices = new Map(); // id -> {info, readings: []}
const HIST_CAP = 200000;
const iso = (ms = Date.now()) => new Date(ms).toISOString();

function dev(id) {
  let d = devices.get(id);
  if (!d) {
    const now = iso();
    d = { info: { device_id: id, status: 'unknown', first_seen: now, last_seen: now, status_at: null, fw: null, interval_ms: null, boot: null, last: null }, readings: [] };
    devices.set(id, d);
  }
  return d;
}

// ---------- WebSocket (RFC 6455, text frames only) ----------
const clients = new Set();
function frame(str) {
  const payload = Buffer.from(str);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.from([0x81, 126, n >> 8, n & 255]) : (() => {
    const b = Buffer.alloc(10); b[0] = 0x81; b[1] = 127; b.writeBigUInt64BE(BigInt(n), 2); return b;
  })();
  return Buffer.concat([head, payload]);
}
function send(c, obj) {
  if (c.sock.destroyed) return;
  if (c.sock.writableLength > 4 << 20) { c.sock.destroy(); return; } // too far behind
  c.sock.write(frame(JSON.stringify(obj)));
}
function broadcast(obj, id) {
  for (const c of clients) if (!c.filter || c.filter.has(id)) send(c, obj);
}
function snapshot(c) {
  const list = [...devices.values()].map((d) => d.info).filter((i) => !c.filter || c.filter.has(i.device_id));
  send(c, { type: 'snapshot', devices: list });
}
function onWsData(c, chunk) {
  c.buf = Buffer.concat([c.buf, chunk]);
  for (;;) {
    const b = c.buf;
    if (b.length < 2) return;
    const op = b[0] & 15, masked = b[1] & 128;
    let len = b[1] & 127, off = 2;
    if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); off = 4; }
    else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); off = 10; }
    const mask = masked ? b.subarray(off, off + 4) : null;
    if (masked) off += 4;
    if (b.length < off + len) return;
    const data = Buffer.from(b.subarray(off, off + len));
    if (mask) for (let i = 0; i < data.length; i++) data[i] ^= mask[i & 3];
    c.buf = b.subarray(off + len);
    if (op === 8) { c.sock.end(Buffer.from([0x88, 0])); return; }
    if (op === 9) { c.sock.write(Buffer.concat([Buffer.from([0x8a, data.length]), data])); continue; }
    if (op !== 1) continue;
    let m;
    try { m = JSON.parse(data.toString()); } catch { send(c, { type: 'error', error: 'malformed json' }); continue; }
    if (m?.type === 'subscribe') {
      c.filter = Array.isArray(m.devices) ? new Set(m.devices) : null;
      snapshot(c);
    } else send(c, { type: 'error', error: 'unknown message type' });
  }
}

// ---------- ingest ----------
function ingestReading(id, r) {
  const d = dev(id);
  const now = Date.now();
  const reading = { ...r, device_id: id, received_at: iso(now), topic: `sensors/esp32/${id}/data` };
  const t = typeof r.ts === 'number' ? r.ts : now;
  if (r.boot != null && r.seq != null && d.readings.some((x) => x.boot === r.boot && x.seq === r.seq)) return;
  d.readings.push({ t, received_at: reading.received_at, seq: r.seq, boot: r.boot, object_temp: r.object_temp, ambient_temp: r.ambient_temp,
    heart_rate: r.heart_rate ?? null, spo2: r.spo2 ?? null, hr_valid: r.hr_valid, spo2_valid: r.spo2_valid, temp_valid: r.temp_valid });
  if (d.readings.length > HIST_CAP) d.readings.shift();
  if (d.readings.length > 1 && d.readings[d.readings.length - 2].t > t) d.readings.sort((a, b) => a.t - b.t);
  d.info.last = reading;
  d.info.last_seen = reading.received_at;
  if (r.fw) d.info.fw = r.fw;
  broadcast({ type: 'sensor_data', data: reading }, id);
}
function ingestStatus(id, s) {
  const d = dev(id);
  const st = typeof s === 'string' ? { status: s } : s;
  const at = iso();
  d.info.status = st.status === 'online' || st.status === 'offline' ? st.status : 'unknown';
  d.info.status_at = at;
  if (st.fw) d.info.fw = st.fw;
  if (st.interval_ms) d.info.interval_ms = st.interval_ms;
  if (st.boot != null) d.info.boot = st.boot;
  broadcast({ type: 'device_status', data: { device_id: id, status: d.info.status, fw: d.info.fw, interval_ms: d.info.interval_ms, boot: d.info.boot, received_at: at } }, id);
}
function ingest(topic, payload) {
  const m = /^sensors\/esp32\/([A-Za-z0-9_.-]{1,64})\/(data|status|ack)$/.exec(topic);
  if (!m) return;
  const [, id, kind] = m;
  let body;
  try { body = JSON.parse(payload); } catch { body = payload.trim(); }
  if (kind === 'data' && body && typeof body === 'object') ingestReading(id, body);
  else if (kind === 'status') ingestStatus(id, body);
  else if (kind === 'ack' && body && typeof body === 'object') broadcast({ type: 'command_result', data: { ...body, device_id: id, received_at: iso() } }, id);
}

function publish(topic, obj, retain = false) {
  if (!broker) {
    // synthetic devices answer by themselves
    const id = topic.split('/')[2];
    setTimeout(() => ingest(`sensors/esp32/${id}/ack`, JSON.stringify(obj.cfg_id ? { cfg_id: obj.cfg_id, ok: true, interval_ms: obj.interval_ms } : { cmd_id: obj.cmd_id, cmd: obj.cmd, ok: true })), 300);
    return;
  }
  const a = ['-h', broker.hostname, '-p', broker.port || '1883', '-q', '1', '-t', topic, '-m', JSON.stringify(obj)];
  if (retain) a.push('-r');
  spawn('mosquitto_pub', a, { stdio: 'ignore' });
}

// ---------- REST ----------
function downsample(rows, from, to, max) {
  const width = Math.max(1, Math.ceil((to - from + 1) / max));
  const buckets = new Map();
  for (const r of rows) {
    const k = from + Math.floor((r.t - from) / width) * width;
    let b = buckets.get(k);
    if (!b) { b = { t: k, n: 0, ch: {} }; buckets.set(k, b); }
    b.n++;
    for (const c of ['heart_rate', 'spo2', 'object_temp', 'ambient_temp']) {
      const v = r[c];
      if (typeof v !== 'number') continue;
      const s = b.ch[c] ?? (b.ch[c] = { min: v, max: v, sum: 0, n: 0 });
      s.min = Math.min(s.min, v); s.max = Math.max(s.max, v); s.sum += v; s.n++;
    }
  }
  return { bucket_ms: width, buckets: [...buckets.values()].sort((a, b) => a.t - b.t).map((b) => {
    const o = { t: b.t, n: b.n };
    for (const c of ['heart_rate', 'spo2', 'object_temp', 'ambient_temp']) {
      const s = b.ch[c]; o[c] = s ? { min: s.min, avg: s.sum / s.n, max: s.max } : null;
    }
    return o;
  }) };
}
const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json' };
let counter = 0;
function json(res, code, obj) { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(obj)); }
function body(req) {
  return new Promise((resolve) => { let s = ''; req.on('data', (c) => { s += c; }); req.on('end', () => { try { resolve(JSON.parse(s)); } catch { resolve(null); } }); });
}
const server = http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  const p = u.pathname;
  if (p === '/healthz') return json(res, 200, { ok: true, broker_connected: true, store_writable: true });
  if (p === '/api/devices') return json(res, 200, { devices: [...devices.values()].map((d) => d.info) });
  let m = /^\/api\/devices\/([^/]+)(\/readings|\/config|\/commands)?$/.exec(p);
  if (m) {
    const d = devices.get(decodeURIComponent(m[1]));
    if (!d) return json(res, 404, { error: 'unknown device' });
    const id = d.info.device_id;
    if (!m[2]) return json(res, 200, d.info);
    if (m[2] === '/readings') {
      const now = Date.now();
      const to = Number(u.searchParams.get('to') ?? now), from = Number(u.searchParams.get('from') ?? now - 3600e3);
      const max = Number(u.searchParams.get('max_points') ?? 1000);
      if (!(max >= 1 && max <= 10000) || !(from <= to)) return json(res, 400, { error: 'bad parameter' });
      const rows = d.readings.filter((r) => r.t >= from && r.t <= to);
      if (rows.length <= max) return json(res, 200, { device_id: id, from, to, total: rows.length, downsampled: false, readings: rows });
      return json(res, 200, { device_id: id, from, to, total: rows.length, downsampled: true, ...downsample(rows, from, to, max) });
    }
    if (m[2] === '/config' && req.method === 'PUT') {
      const b = await body(req);
      if (!b || !Number.isInteger(b.interval_ms) || b.interval_ms < 10 || b.interval_ms > 3600000) return json(res, 400, { error: 'bad interval_ms' });
      const cfg = { cfg_id: `cfg-${Date.now()}-${++counter}`, interval_ms: b.interval_ms };
      publish(`sensors/esp32/${id}/config`, cfg, true);
      return json(res, 202, { cfg_id: cfg.cfg_id, config: cfg });
    }
    if (m[2] === '/commands' && req.method === 'POST') {
      const b = await body(req);
      if (!b || typeof b.cmd !== 'string') return json(res, 400, { error: 'bad command' });
      const cmd = { ...b, cmd_id: `c-${Date.now()}-${++counter}` };
      publish(`commands/esp32/${id}/control`, cmd);
      return json(res, 202, { cmd_id: cmd.cmd_id });
    }
    return json(res, 405, { error: 'method not allowed' });
  }
  if (p.startsWith('/api/')) return json(res, 404, { error: 'no such route' });
  // static files
  const rel = p === '/' ? 'index.html' : decodeURIComponent(p.slice(1));
  const f = path.resolve(webRoot, rel);
  if (!f.startsWith(webRoot)) return json(res, 404, { error: 'not found' });
  fs.readFile(f, (err, data) => {
    if (err) return json(res, 404, { error: 'not found' });
    res.writeHead(200, { 'Content-Type': MIME[path.extname(f)] ?? 'application/octet-stream' });
    res.end(data);
  });
});
server.on('upgrade', (req, sock) => {
  if (new URL(req.url, 'http://x').pathname !== '/ws') { sock.destroy(); return; }
  const key = req.headers['sec-websocket-key'];
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  sock.setNoDelay(true);
  const c = { sock, buf: Buffer.alloc(0), filter: null };
  clients.add(c);
  sock.on('data', (d) => onWsData(c, d));
  sock.on('close', () => clients.delete(c));
  sock.on('error', () => clients.delete(c));
  snapshot(c);
});
server.listen(Number(port), host, () => console.log(`mock-vigild listening on http://${host}:${port} web-root=${webRoot}`));

// ---------- sources ----------
if (broker) {
  const sub = spawn('mosquitto_sub', ['-h', broker.hostname, '-p', broker.port || '1883', '-q', '1', '-v',
    '-t', 'sensors/esp32/+/data', '-t', 'sensors/esp32/+/status', '-t', 'sensors/esp32/+/ack'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(sub);
  readline.createInterface({ input: sub.stdout }).on('line', (line) => {
    const i = line.indexOf(' ');
    if (i > 0) ingest(line.slice(0, i), line.slice(i + 1));
  });
}
const nSynth = Number(args.synthetic ?? 0);
if (nSynth > 0) {
  const backfillS = Number(args['backfill-s'] ?? 1800);
  const ids = Array.from({ length: nSynth }, (_, i) => `ESP32_${String(i + 1).padStart(3, '0')}`);
  const vit = (i, t) => {
    const sick = i % 11 === 3, cold = i % 23 === 7;
    return {
      heart_rate: Math.round((sick ? 124 : 62 + (i * 37) % 30) + 5 * Math.sin(t / 30000 + i)),
      spo2: Math.round(sick ? 91 + Math.sin(t / 40000) : 96 + ((i * 13) % 4) + 0.6 * Math.sin(t / 50000 + i)),
      object_temp: Math.round(((cold ? 35.3 : sick ? 38.6 : 36.4 + ((i * 7) % 8) / 10) + 0.15 * Math.sin(t / 60000 + i)) * 10) / 10,
      ambient_temp: Math.round((23 + (i % 5) * 0.4) * 10) / 10,
    };
  };
  const seq = ids.map(() => 0);
  const start = Date.now();
  ids.forEach((id, i) => {
    ingestStatus(id, { status: i % 29 === 5 ? 'offline' : 'online', fw: '0.1.0', interval_ms: 1000, boot: 7 });
    const d = dev(id);
    for (let s = backfillS; s > 0; s--) {
      const t = start - s * 1000;
      d.readings.push({ t, received_at: iso(t), seq: seq[i]++, boot: 7, ...vit(i, t), hr_valid: true, spo2_valid: true, temp_valid: true });
    }
  });
  setInterval(() => {
    const t = Date.now();
    ids.forEach((id, i) => {
      if (i % 29 === 5) return; // offline
      if (i % 31 === 9 && t - start > 2000) return; // goes stale
      const noSig = i % 19 === 11;
      const v = vit(i, t);
      ingestReading(id, { sensor_type: 'MAX30614', ...v, ...(noSig ? { heart_rate: null, spo2: null } : {}), timestamp: t - start, seq: seq[i]++, boot: 7, ts: t,
        hr_valid: !noSig, spo2_valid: !noSig, temp_valid: true, battery: 40 + (i * 17) % 60, rssi: -45 - (i * 7) % 40, fw: '0.1.0' });
    });
  }, 1000);
}

const stop = () => { for (const c of children) { try { c.kill('SIGTERM'); } catch { /* gone */ } } server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
