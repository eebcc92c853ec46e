#!/usr/bin/env node
// A stand-in for vigild, for front-end development and for checking the e2e
// runner while the real server is not built. Same CLI:
//   node e2e/mock-vigild.mjs --broker mqtt://127.0.0.1:1883 --listen 127.0.0.1:8080 --web-root dist
// With --broker it bridges MQTT through mosquitto_sub / mosquitto_pub child processes;
// with --synthetic N instead it generates N devices at 1 Hz in process (no broker).
// In memory only; implements the subset of docs/PROTOCOL.md the dashboard uses,
// and the access-control contract (sessions, CSRF, roles, users, tokens, audit).
// Users and tokens live in a JSON file at --db (re-read every 2 s, like vigild
// picks up CLI changes); without --db an in-memory admin is made and printed.
// CLI like vigild's:  node e2e/mock-vigild.mjs user add NAME --role ROLE --db DB  (password on stdin)
//                     node e2e/mock-vigild.mjs token add NAME --role ROLE --db DB (prints the token)
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import readline from 'node:readline';

const ROLES = ['viewer', 'clinician', 'technician', 'admin'];
const rank = (r) => ROLES.indexOf(r);
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
const pwHash = (pw, salt = crypto.randomBytes(16).toString('hex')) => ({ salt, hash: crypto.scryptSync(pw, salt, 32).toString('hex') });
const pwOk = (u, pw) => !!u && crypto.timingSafeEqual(Buffer.from(pwHash(pw, u.salt).hash, 'hex'), Buffer.from(u.hash, 'hex'));
const loadDb = (f) => { try { return JSON.parse(fs.readFileSync(f, 'utf8')); } catch { return { users: {}, tokens: [] }; } };
const saveDb = (f, db) => { const tmp = `${f}.tmp`; fs.writeFileSync(tmp, JSON.stringify(db), { mode: 0o600 }); fs.renameSync(tmp, f); };

if (process.argv[2] === 'user' || process.argv[2] === 'token') {
  // the CLI: exit 0 ok, 1 failure, 2 usage
  const [kind, verb, name] = process.argv.slice(2);
  const opt = (k) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : undefined; };
  const dbf = opt('db');
  if (!dbf || !verb) { console.error('usage: user|token add|del|list NAME --role ROLE --db DB'); process.exit(2); }
  const db = loadDb(dbf);
  const stdinLine = () => (fs.readFileSync(0, 'utf8').split('\n')[0] ?? '');
  if (kind === 'user' && verb === 'add') {
    const role = opt('role');
    if (!name || !ROLES.includes(role)) { console.error('usage: user add NAME --role ROLE --db DB'); process.exit(2); }
    if (db.users[name]) { console.error(`user ${name} exists`); process.exit(1); }
    const pw = stdinLine();
    if (pw.length < 8) { console.error('password too short'); process.exit(1); }
    db.users[name] = { role, ...pwHash(pw), created_at: new Date().toISOString() };
  } else if (kind === 'user' && verb === 'del') {
    delete db.users[name];
  } else if (kind === 'user' && verb === 'list') {
    for (const [n, u] of Object.entries(db.users)) console.log(`${n}\t${u.role}`);
  } else if (kind === 'token' && verb === 'add') {
    const role = opt('role');
    if (!name || !ROLES.includes(role)) { console.error('usage: token add NAME --role ROLE --db DB'); process.exit(2); }
    const token = `vgt_${crypto.randomBytes(32).toString('base64url')}`;
    db.tokens.push({ id: String(Date.now()), name, role, hash: sha(token), created_at: new Date().toISOString(), last_used_at: null });
    console.log(token);
  } else { console.error('unknown verb'); process.exit(2); }
  saveDb(dbf, db);
  process.exit(0);
}

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
    d = { info: { device_id: id, status: 'unknown', first_seen: now, last_seen: now, status_at: null, fw: null, interval_ms: null, boot: null, last: null, news2: null }, readings: [] };
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
// vigild's partial NEWS2 (server/alarm.c), played here: only a valid SpO2/pulse pair is scored
const n2spo2 = (v) => (v <= 91 ? 3 : v <= 93 ? 2 : v <= 95 ? 1 : 0);
const n2pulse = (v) => (v <= 40 ? 3 : v <= 50 ? 1 : v <= 90 ? 0 : v <= 110 ? 1 : v <= 130 ? 2 : 3);
function news2Of(r) {
  if (typeof r.spo2 !== 'number' || typeof r.heart_rate !== 'number' || r.spo2_valid === false || r.hr_valid === false) return undefined;
  const spo2 = n2spo2(r.spo2), pulse = n2pulse(r.heart_rate);
  return { score: spo2 + pulse, partial: true, measured: ['spo2', 'pulse'],
    not_measured: ['respiration_rate', 'blood_pressure', 'consciousness', 'supplemental_o2', 'temperature'], spo2, pulse };
}
function ingestReading(id, r) {
  const d = dev(id);
  const now = Date.now();
  const news2 = news2Of(r);
  const reading = { ...r, device_id: id, received_at: iso(now), topic: `sensors/esp32/${id}/data`, ...(news2 ? { news2 } : {}) };
  if (news2) d.info.news2 = news2;
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
// ---------- access control (the contract, simplified: no idle timeout, scrypt instead of Argon2id) ----------
const dbFile = args.db ? path.resolve(args.db) : null;
let db = dbFile ? loadDb(dbFile) : { users: {}, tokens: [] };
if (!dbFile) {
  const pw = crypto.randomBytes(9).toString('base64url');
  db.users.admin = { role: 'admin', ...pwHash(pw), created_at: iso() };
  console.log(`mock-vigild: log in as admin / ${pw}`);
}
const persist = () => { if (dbFile) saveDb(dbFile, db); };
if (dbFile) setInterval(() => { db = loadDb(dbFile); }, 2000).unref();
const sessions = new Map(); // sha(sid) -> {user, csrf, expires}
const failures = new Map(); // username or address -> {n, until}
const audit = [];
const SESSION_MAX_MS = Number(args['session-max'] ?? 604800) * 1000;
function addAudit(req, user, action, target = null, outcome = 'ok', detail = null) {
  audit.push({ t: iso(), user, address: req.socket.remoteAddress, action, target, outcome, detail });
  if (audit.length > 10000) audit.shift();
}
function cookieSid(req) {
  const m = /(?:^|;\s*)vigil_session=([^;]+)/.exec(req.headers.cookie ?? '');
  return m ? m[1] : null;
}
/** {user, role, csrf?, bearer} or null. Deleted users and revoked tokens stop working at once. */
function whoami(req) {
  const a = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (a) {
    const t = db.tokens.find((x) => x.hash === sha(a[1]));
    if (!t) return null;
    t.last_used_at = iso();
    return { user: `token:${t.name}`, role: t.role, bearer: true };
  }
  const sid = cookieSid(req);
  const s = sid && sessions.get(sha(sid));
  if (!s) return null;
  if (Date.now() > s.expires || !db.users[s.user]) { sessions.delete(sha(sid)); return null; }
  return { user: s.user, role: db.users[s.user].role, csrf: s.csrf, expires: s.expires, bearer: false };
}
function throttled(keys) {
  const now = Date.now();
  return Math.max(0, ...keys.map((k) => { const f = failures.get(k); return f && f.until > now ? Math.ceil((f.until - now) / 1000) : 0; }));
}
function failed(keys) {
  for (const k of keys) {
    const f = failures.get(k) ?? { n: 0, until: 0 };
    f.n++;
    if (f.n >= 5) f.until = Date.now() + Math.min(900, 2 ** (f.n - 5)) * 1000;
    failures.set(k, f);
  }
}
async function sessionRoute(req, res) {
  if (req.method === 'POST') {
    const b = await body(req);
    const name = typeof b?.username === 'string' ? b.username : '';
    const keys = [`u:${name}`, `a:${req.socket.remoteAddress}`];
    const wait = throttled(keys);
    if (wait) { addAudit(req, name, 'login', null, 'throttled'); res.setHeader('Retry-After', String(wait)); return json(res, 429, { error: 'too many failed logins, retry later' }); }
    const u = db.users[name];
    if (!u || typeof b?.password !== 'string' || !pwOk(u, b.password)) {
      failed(keys);
      addAudit(req, name, 'login', null, 'fail');
      return json(res, 401, { error: 'invalid username or password' });
    }
    for (const k of keys) failures.delete(k);
    const sid = crypto.randomBytes(32).toString('base64url'), csrf = crypto.randomBytes(32).toString('base64url');
    sessions.set(sha(sid), { user: name, csrf, expires: Date.now() + SESSION_MAX_MS });
    addAudit(req, name, 'login');
    res.setHeader('Set-Cookie', `vigil_session=${sid}; HttpOnly; SameSite=Strict; Path=/`);
    return json(res, 200, { user: name, role: u.role, csrf });
  }
  const w = whoami(req);
  if (!w || w.bearer) return json(res, 401, { error: 'authentication required' });
  if (req.method === 'GET') return json(res, 200, { user: w.user, role: w.role, csrf: w.csrf, idle_expires_at: iso(w.expires), expires_at: iso(w.expires) });
  if (req.method === 'DELETE') {
    if (req.headers['x-csrf-token'] !== w.csrf) return json(res, 403, { error: 'missing or invalid CSRF token' });
    sessions.delete(sha(cookieSid(req)));
    addAudit(req, w.user, 'logout');
    res.writeHead(204, { 'Set-Cookie': 'vigil_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0' });
    return res.end();
  }
  return json(res, 405, { error: 'method not allowed' });
}
async function adminRoute(req, res, w, p, u) {
  let m;
  if (p === '/api/users' && req.method === 'GET') return json(res, 200, { users: Object.entries(db.users).map(([username, x]) => ({ username, role: x.role, created_at: x.created_at })) });
  if (p === '/api/users' && req.method === 'POST') {
    const b = await body(req);
    if (!b || typeof b.username !== 'string' || !/^[A-Za-z0-9_.@-]{1,64}$/.test(b.username) || ['.', '..'].includes(b.username) || !ROLES.includes(b.role) || typeof b.password !== 'string' || b.password.length < 8) return json(res, 400, { error: 'bad user' });
    if (db.users[b.username]) return json(res, 409, { error: 'user exists' });
    db.users[b.username] = { role: b.role, ...pwHash(b.password), created_at: iso() };
    persist(); addAudit(req, w.user, 'user_add', b.username);
    return json(res, 201, { username: b.username, role: b.role });
  }
  if ((m = /^\/api\/users\/([^/]+)$/.exec(p))) {
    const name = decodeURIComponent(m[1]);
    const x = db.users[name];
    if (!x) return json(res, 404, { error: 'no such user' });
    if (req.method === 'PUT') {
      const b = await body(req);
      if (!b || (b.role !== undefined && !ROLES.includes(b.role)) || (b.password !== undefined && (typeof b.password !== 'string' || b.password.length < 8))) return json(res, 400, { error: 'bad update' });
      if (b.role) x.role = b.role;
      if (b.password) Object.assign(x, pwHash(b.password));
      persist(); addAudit(req, w.user, 'user_update', name);
      return json(res, 200, { username: name, role: x.role });
    }
    if (req.method === 'DELETE') {
      delete db.users[name];
      for (const [k, s] of sessions) if (s.user === name) sessions.delete(k);
      persist(); addAudit(req, w.user, 'user_del', name);
      res.writeHead(204); return res.end();
    }
  }
  if (p === '/api/tokens' && req.method === 'GET') return json(res, 200, { tokens: db.tokens.map(({ hash, ...t }) => t) });
  if (p === '/api/tokens' && req.method === 'POST') {
    const b = await body(req);
    if (!b || typeof b.name !== 'string' || !b.name || !ROLES.includes(b.role)) return json(res, 400, { error: 'bad token' });
    const token = `vgt_${crypto.randomBytes(32).toString('base64url')}`;
    const t = { id: String(Date.now()) + String(++counter), name: b.name, role: b.role, hash: sha(token), created_at: iso(), last_used_at: null };
    db.tokens.push(t);
    persist(); addAudit(req, w.user, 'token_add', b.name);
    return json(res, 201, { id: t.id, name: t.name, role: t.role, token });
  }
  if ((m = /^\/api\/tokens\/([^/]+)$/.exec(p)) && req.method === 'DELETE') {
    const i = db.tokens.findIndex((t) => t.id === decodeURIComponent(m[1]));
    if (i < 0) return json(res, 404, { error: 'no such token' });
    db.tokens.splice(i, 1);
    persist(); addAudit(req, w.user, 'token_del', decodeURIComponent(m[1]));
    res.writeHead(204); return res.end();
  }
  if (p === '/api/audit' && req.method === 'GET') {
    const from = Number(u.searchParams.get('from') ?? -Infinity), to = Number(u.searchParams.get('to') ?? Infinity);
    const who = u.searchParams.get('user'), limit = Math.min(1000, Number(u.searchParams.get('limit') ?? 200));
    const rows = audit.filter((e) => { const t = Date.parse(e.t); return t >= from && t <= to && (!who || e.user === who); }).reverse().slice(0, limit);
    return json(res, 200, { entries: rows });
  }
  return json(res, 404, { error: 'no such route' });
}

const server = http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  const p = u.pathname;
  if (p === '/healthz') return json(res, 200, { ok: true, broker_connected: true, store_writable: true });
  if (p === '/api/session') return sessionRoute(req, res);
  let w = null;
  if (p.startsWith('/api/')) {
    w = whoami(req);
    if (!w) return json(res, 401, { error: 'authentication required' });
    if (req.method !== 'GET' && !w.bearer && req.headers['x-csrf-token'] !== w.csrf) return json(res, 403, { error: 'missing or invalid CSRF token' });
    if (/^\/api\/(users|tokens|audit)(\/|$)/.test(p)) {
      if (w.role !== 'admin') return json(res, 403, { error: 'forbidden' });
      return adminRoute(req, res, w, p, u);
    }
  }
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
      if (rank(w.role) < rank('technician')) return json(res, 403, { error: 'forbidden' });
      const b = await body(req);
      if (!b || !Number.isInteger(b.interval_ms) || b.interval_ms < 10 || b.interval_ms > 3600000) return json(res, 400, { error: 'bad interval_ms' });
      const cfg = { cfg_id: `cfg-${Date.now()}-${++counter}`, interval_ms: b.interval_ms };
      publish(`sensors/esp32/${id}/config`, cfg, true);
      addAudit(req, w.user, 'config', id, 'ok', `interval_ms=${b.interval_ms}`);
      return json(res, 202, { cfg_id: cfg.cfg_id, config: cfg });
    }
    if (m[2] === '/commands' && req.method === 'POST') {
      const b = await body(req);
      if (!b || typeof b.cmd !== 'string') return json(res, 400, { error: 'bad command' });
      if (rank(w.role) < rank(['ping', 'identify'].includes(b.cmd) ? 'clinician' : 'technician')) return json(res, 403, { error: 'forbidden' });
      addAudit(req, w.user, 'command', id, 'ok', b.cmd);
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
  // refused before the handshake, never accepted and then closed
  const refuse = (code, text) => { sock.end(`HTTP/1.1 ${code} ${text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`); };
  const w = whoami(req);
  if (!w) return refuse(401, 'Unauthorized');
  const origin = req.headers.origin;
  if (origin === undefined ? !w.bearer : origin !== `http://${req.headers.host}`) return refuse(403, 'Forbidden');
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
