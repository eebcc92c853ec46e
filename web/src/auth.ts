// The session's I/O: who-am-I, login, logout, and the one store that holds the
// session (and its CSRF token) for api.ts, ws.ts and the UI. Decisions are in
// session.ts (pure).

import { useSyncExternalStore } from 'react';
import {
  INITIAL_SESSION, expiryCheckDelay, loginError, parseRetryAfter, reduceSession, type SessionEvent, type SessionState,
} from './session';

type Listener = () => void;

export class SessionStore {
  state: SessionState = INITIAL_SESSION;
  private listeners = new Set<Listener>();
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;

  get = (): SessionState => this.state;
  subscribe = (l: Listener): (() => void) => { this.listeners.add(l); return () => { this.listeners.delete(l); }; };

  dispatch(ev: SessionEvent): void {
    const next = reduceSession(this.state, ev);
    if (next === this.state) return;
    this.state = next;
    this.armExpiryCheck();
    for (const l of this.listeners) l();
  }

  /** The session ends at expires_at whatever happens: check right after, so the page says so. */
  private armExpiryCheck(): void {
    if (this.expiryTimer) { clearTimeout(this.expiryTimer); this.expiryTimer = null; }
    const d = expiryCheckDelay(this.state, Date.now());
    if (d != null) this.expiryTimer = setTimeout(() => { this.expiryTimer = null; void checkSession(); }, d);
  }
}

export const session = new SessionStore();

export function useSession(): SessionState {
  return useSyncExternalStore(session.subscribe, session.get);
}

/** The CSRF token every state-changing request carries (null when logged out). */
export function csrfToken(): string | null { return session.state.csrf; }

async function body(res: Response): Promise<unknown> {
  try { return await res.json(); } catch { return null; }
}

/** GET /api/session → its status (0 = no answer), applied to the session. */
export async function checkSession(): Promise<number> {
  let res: Response;
  try {
    res = await fetch('/api/session', { credentials: 'same-origin', cache: 'no-store' });
  } catch {
    session.dispatch({ type: 'checked', status: 0 });
    return 0;
  }
  session.dispatch({ type: 'checked', status: res.status, body: res.status === 200 ? await body(res) : undefined });
  return res.status;
}

/** POST /api/session; resolves null when logged in, else the message for the login page. */
export async function login(username: string, password: string): Promise<string | null> {
  let res: Response;
  try {
    res = await fetch('/api/session', {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    return loginError(0, null);
  }
  const b = await body(res);
  if (res.status === 200) {
    session.dispatch({ type: 'login', body: b });
    return session.state.phase === 'authed' ? null : 'The server sent an unexpected answer.';
  }
  const msg = b && typeof b === 'object' && 'error' in b ? String((b as { error: unknown }).error) : undefined;
  return loginError(res.status, parseRetryAfter(res.headers.get('Retry-After'), Date.now()), msg);
}

/** DELETE /api/session. Logged out locally whatever the answer (a 401 means it already was). */
export async function logout(): Promise<void> {
  const csrf = csrfToken();
  try {
    await fetch('/api/session', { method: 'DELETE', credentials: 'same-origin', headers: csrf ? { 'X-CSRF-Token': csrf } : {} });
  } catch { /* the server will drop it at its idle timeout */ }
  session.dispatch({ type: 'logout' });
}
