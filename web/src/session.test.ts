import { describe, expect, it } from 'vitest';
import {
  INITIAL_SESSION, afterSessionCheck, endsSession, expiryCheckDelay, loginError, parseRetryAfter, parseSessionBody, reduceSession,
  type SessionState,
} from './session';

const body = { user: 'alice', role: 'clinician', csrf: 'c1', idle_expires_at: '2030-01-01T12:00:00Z', expires_at: '2030-01-07T00:00:00Z' };
const authed: SessionState = reduceSession(INITIAL_SESSION, { type: 'checked', status: 200, body });

describe('session reducer', () => {
  it('a 200 who-am-I logs in, keeping the csrf and the absolute expiry', () => {
    expect(authed.phase).toBe('authed');
    expect(authed.user).toBe('alice');
    expect(authed.role).toBe('clinician');
    expect(authed.csrf).toBe('c1');
    expect(authed.expiresAt).toBe(Date.parse('2030-01-07T00:00:00Z'));
  });
  it('first visit: 401 shows the login page without a message; no answer says unreachable', () => {
    expect(reduceSession(INITIAL_SESSION, { type: 'checked', status: 401 })).toMatchObject({ phase: 'anon', notice: null });
    expect(reduceSession(INITIAL_SESSION, { type: 'checked', status: 0 })).toMatchObject({ phase: 'anon', notice: 'unreachable' });
    expect(reduceSession(INITIAL_SESSION, { type: 'checked', status: 200, body: { user: 'x' } })).toMatchObject({ phase: 'anon' });
  });
  it('a 401 while logged in is an expiry and forgets the csrf', () => {
    const s = reduceSession(authed, { type: 'checked', status: 401 });
    expect(s).toMatchObject({ phase: 'anon', notice: 'expired', csrf: null, user: null, role: null });
    expect(reduceSession(authed, { type: 'expired' })).toMatchObject({ phase: 'anon', notice: 'expired' });
  });
  it('a server error or no answer while logged in changes nothing', () => {
    expect(reduceSession(authed, { type: 'checked', status: 0 })).toBe(authed);
    expect(reduceSession(authed, { type: 'checked', status: 503 })).toBe(authed);
  });
  it('expiry when already logged out keeps the current message', () => {
    const out = reduceSession(authed, { type: 'logout' });
    expect(out.notice).toBe('logged_out');
    expect(reduceSession(out, { type: 'expired' })).toBe(out);
  });
  it('login: a valid body authenticates, an unknown role does not', () => {
    const anon = reduceSession(INITIAL_SESSION, { type: 'checked', status: 401 });
    expect(reduceSession(anon, { type: 'login', body: { user: 'bob', role: 'admin', csrf: 'z' } })).toMatchObject({ phase: 'authed', user: 'bob', role: 'admin', csrf: 'z', notice: null });
    expect(reduceSession(anon, { type: 'login', body: { user: 'bob', role: 'root', csrf: 'z' } })).toBe(anon);
    expect(parseSessionBody({ user: 'bob', role: 'admin' })).toBeNull();
  });
});

describe('session decisions', () => {
  it('every 401 ends the session except the login and the who-am-I', () => {
    expect(endsSession('GET', '/api/devices/A/readings', 401)).toBe(true);
    expect(endsSession('POST', '/api/devices/A/commands', 401)).toBe(true);
    expect(endsSession('POST', '/api/session', 401)).toBe(false);
    expect(endsSession('GET', '/api/session', 401)).toBe(false);
    expect(endsSession('GET', '/api/devices/A', 403)).toBe(false);
    expect(endsSession('GET', '/api/devices/A', 500)).toBe(false);
  });
  it('the WebSocket reconnects unless the session check said 401', () => {
    expect(afterSessionCheck(401)).toBe('expired');
    expect(afterSessionCheck(200)).toBe('reconnect');
    expect(afterSessionCheck(0)).toBe('reconnect');
    expect(afterSessionCheck(502)).toBe('reconnect');
  });
  it('Retry-After in seconds or as a date', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('4', now)).toBe(4);
    expect(parseRetryAfter('0', now)).toBe(1);
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
  it('login errors: 401 and 429 with the wait', () => {
    expect(loginError(401, null)).toBe('Wrong username or password.');
    expect(loginError(429, 8)).toBe('Too many failed logins. Try again in 8 s.');
    expect(loginError(429, 900)).toBe('Too many failed logins. Try again in 15 min.');
    expect(loginError(429, null)).toMatch(/later/);
    expect(loginError(0, null)).toMatch(/reach the server/);
    expect(loginError(500, null, 'boom')).toBe('Login failed (500: boom).');
  });
  it('re-checks the session just after its absolute end', () => {
    const now = Date.parse('2030-01-06T23:59:00Z');
    expect(expiryCheckDelay(authed, now)).toBe(61_000);
    expect(expiryCheckDelay({ ...authed, expiresAt: NaN }, now)).toBeNull();
    expect(expiryCheckDelay(INITIAL_SESSION, now)).toBeNull();
    expect(expiryCheckDelay(authed, 0)).toBe(2 ** 31 - 1);
  });
});
