// Who is logged in, as a pure reducer (no I/O, no clock): the I/O around it is
// auth.ts. The login page shows while phase is not 'authed'; the hash route is
// left alone meanwhile, so after a login (also after an expiry) the user is
// back where they were.

import { parseRole, type Role } from './roles';

export type Phase = 'checking' | 'anon' | 'authed';
/** Why the login page shows (null: first visit). */
export type Notice = 'expired' | 'logged_out' | 'unreachable' | null;

export interface SessionState {
  phase: Phase;
  user: string | null;
  role: Role | null;
  csrf: string | null;
  expiresAt: number;      // absolute end of the session, epoch ms (NaN if unknown)
  notice: Notice;
}

export const INITIAL_SESSION: SessionState = { phase: 'checking', user: null, role: null, csrf: null, expiresAt: NaN, notice: null };

export type SessionEvent =
  | { type: 'checked'; status: number; body?: unknown }   // GET /api/session; status 0 = no answer
  | { type: 'login'; body: unknown }                       // POST /api/session answered 200
  | { type: 'logout' }                                     // DELETE /api/session done (or the user gave up on it)
  | { type: 'expired' };                                   // some call or the WebSocket said 401

export interface SessionInfo { user: string; role: Role; csrf: string; expiresAt: number }

/** The session body of POST/GET /api/session, or null if it is not one. */
export function parseSessionBody(body: unknown): SessionInfo | null {
  if (!body || typeof body !== 'object') return null;
  const b = body as Record<string, unknown>;
  const role = parseRole(b.role);
  if (typeof b.user !== 'string' || !b.user || !role || typeof b.csrf !== 'string' || !b.csrf) return null;
  const exp = typeof b.expires_at === 'string' ? Date.parse(b.expires_at) : NaN;
  return { user: b.user, role, csrf: b.csrf, expiresAt: exp };
}

const anon = (notice: Notice): SessionState => ({ ...INITIAL_SESSION, phase: 'anon', notice });

export function reduceSession(s: SessionState, ev: SessionEvent): SessionState {
  switch (ev.type) {
    case 'checked': {
      if (ev.status === 200) {
        const info = parseSessionBody(ev.body);
        if (info) return { phase: 'authed', ...info, notice: null };
        return s.phase === 'checking' ? anon('unreachable') : s;
      }
      if (ev.status === 401) return s.phase === 'authed' ? anon('expired') : s.phase === 'checking' ? anon(null) : s;
      // no answer or a server error: a logged-in user stays logged in (the
      // connection indicator tells the story); a first visit cannot go on
      return s.phase === 'checking' ? anon('unreachable') : s;
    }
    case 'login': {
      const info = parseSessionBody(ev.body);
      return info ? { phase: 'authed', ...info, notice: null } : s;
    }
    case 'logout':
      return anon('logged_out');
    case 'expired':
      return s.phase === 'authed' ? anon('expired') : s;
    default:
      return s;
  }
}

/**
 * Does this API answer mean the session is gone? Any 401 except the login
 * itself (a wrong password) and the who-am-I check (handled by its caller).
 */
export function endsSession(method: string, path: string, status: number): boolean {
  if (status !== 401) return false;
  return !(path === '/api/session' || path.startsWith('/api/session?'));
}

/** After the WebSocket closed, GET /api/session said status: reconnect, or stop because the session is gone. */
export function afterSessionCheck(status: number): 'reconnect' | 'expired' {
  return status === 401 ? 'expired' : 'reconnect';
}

/** Retry-After (seconds or an HTTP date) as whole seconds ≥ 1, or null. */
export function parseRetryAfter(h: string | null | undefined, now: number): number | null {
  if (h == null || h.trim() === '') return null;
  const t = h.trim();
  if (/^\d+$/.test(t)) return Math.max(1, Number(t));
  const d = Date.parse(t);
  return Number.isFinite(d) ? Math.max(1, Math.ceil((d - now) / 1000)) : null;
}

export function formatWait(s: number): string {
  if (s < 120) return `${s} s`;
  const m = Math.ceil(s / 60);
  return `${m} min`;
}

/** What the login page says when POST /api/session did not answer 200 (status 0 = no answer). */
export function loginError(status: number, retryAfterS: number | null, serverMsg?: string): string {
  if (status === 401) return 'Wrong username or password.';
  if (status === 429) return retryAfterS != null
    ? `Too many failed logins. Try again in ${formatWait(retryAfterS)}.`
    : 'Too many failed logins. Try again later.';
  if (status === 0) return 'Cannot reach the server. Check the connection and try again.';
  return `Login failed (${status}${serverMsg ? `: ${serverMsg}` : ''}).`;
}

export const NOTICE_TEXT: Record<Exclude<Notice, null>, string> = {
  expired: 'Your session has expired — please log in again.',
  logged_out: 'You have logged out.',
  unreachable: 'Cannot reach the server. Log in when it is back.',
};

/** When to re-check the session to notice its absolute end (ms from now), or null. setTimeout-safe. */
export function expiryCheckDelay(s: SessionState, now: number): number | null {
  if (s.phase !== 'authed' || !Number.isFinite(s.expiresAt)) return null;
  return Math.min(2 ** 31 - 1, Math.max(1000, s.expiresAt - now + 1000));
}
