import type { DeviceInfo, ReadingsResponse } from './types';
import { csrfToken, session } from './auth';
import { endsSession } from './session';

export class ApiError extends Error {
  constructor(public status: number, message: string) { super(`${status} ${message}`); }
}

async function json<T>(res: Response): Promise<T> {
  let body: unknown = null;
  try { body = await res.json(); } catch { /* empty or not JSON */ }
  if (!res.ok) {
    const msg = body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : res.statusText;
    throw new ApiError(res.status, msg);
  }
  return body as T;
}

/**
 * Every API call goes through here: state-changing methods carry the session's
 * CSRF token, and a 401 ends the session (the login page says it expired).
 */
export async function request<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  let reqBody = init.body;
  if (init.json !== undefined) { headers.set('Content-Type', 'application/json'); reqBody = JSON.stringify(init.json); }
  if (method !== 'GET' && method !== 'HEAD') {
    const csrf = csrfToken();
    if (csrf) headers.set('X-CSRF-Token', csrf);
  }
  const { json: _omit, ...rest } = init;
  const res = await fetch(path, { ...rest, method, headers, body: reqBody, credentials: 'same-origin' });
  if (endsSession(method, path, res.status)) session.dispatch({ type: 'expired' });
  if (res.status === 204) return undefined as T;
  return json<T>(res);
}

const enc = encodeURIComponent;

export function getDevice(id: string, signal?: AbortSignal): Promise<DeviceInfo> {
  return request<DeviceInfo>(`/api/devices/${enc(id)}`, { signal });
}

export function getReadings(id: string, from: number, to: number, maxPoints: number, signal?: AbortSignal): Promise<ReadingsResponse> {
  const q = `from=${Math.floor(from)}&to=${Math.ceil(to)}&max_points=${Math.max(1, Math.min(10000, Math.round(maxPoints)))}`;
  return request<ReadingsResponse>(`/api/devices/${enc(id)}/readings?${q}`, { signal });
}

export function putConfig(id: string, intervalMs: number): Promise<{ cfg_id: string; config: unknown }> {
  return request(`/api/devices/${enc(id)}/config`, { method: 'PUT', json: { interval_ms: intervalMs } });
}

export function postCommand(id: string, body: Record<string, unknown>): Promise<{ cmd_id: string }> {
  return request(`/api/devices/${enc(id)}/commands`, { method: 'POST', json: body });
}

// ---- admin (role admin) ----
export interface UserRow { username: string; role: string; created_at?: string }
export interface TokenRow { id: string | number; name: string; role: string; created_at?: string; last_used_at?: string | null }
export interface NewToken { id: string | number; name: string; role: string; token: string }

export const listUsers = () => request<{ users: UserRow[] }>('/api/users').then((r) => r.users ?? []);
export const addUser = (username: string, role: string, password: string) =>
  request<{ username: string; role: string }>('/api/users', { method: 'POST', json: { username, role, password } });
export const updateUser = (name: string, p: { role?: string; password?: string }) =>
  request<{ username: string; role: string }>(`/api/users/${enc(name)}`, { method: 'PUT', json: p });
export const deleteUser = (name: string) => request<void>(`/api/users/${enc(name)}`, { method: 'DELETE' });
export const listTokens = () => request<{ tokens: TokenRow[] }>('/api/tokens').then((r) => r.tokens ?? []);
export const addToken = (name: string, role: string) => request<NewToken>('/api/tokens', { method: 'POST', json: { name, role } });
export const deleteToken = (id: string | number) => request<void>(`/api/tokens/${enc(String(id))}`, { method: 'DELETE' });
export const getAudit = (query: string, signal?: AbortSignal) =>
  request<{ entries: import('./audit').AuditEntry[] }>(`/api/audit?${query}`, { signal }).then((r) => r.entries ?? []);

// ---- alarms (docs/PROTOCOL.md "Alarms"; ack, silence and settings changes need a clinician) ----
export interface AlarmSettings { escalation_s?: number; conditions: Record<string, Record<string, number | boolean>>; [k: string]: unknown }
export const getAlarms = (signal?: AbortSignal) =>
  request<{ alarms: import('./types').Alarm[] }>('/api/alarms', { signal }).then((r) => r.alarms ?? []);
export const getAlarmHistory = (id: string, from: number, to: number, signal?: AbortSignal) =>
  request<{ alarms: import('./types').Alarm[] }>(`/api/alarms?device=${enc(id)}&from=${Math.floor(from)}&to=${Math.ceil(to)}`, { signal }).then((r) => r.alarms ?? []);
export const ackAlarm = (alarmId: number) => request<{ accepted: string }>(`/api/alarms/${alarmId}/ack`, { method: 'POST' });
export const silenceAlarm = (alarmId: number, seconds: number) =>
  request<{ accepted: string; seconds: number }>(`/api/alarms/${alarmId}/silence`, { method: 'POST', json: { seconds } });
export const getAlarmSettings = (id: string, signal?: AbortSignal) => request<AlarmSettings>(`/api/devices/${enc(id)}/alarm-settings`, { signal });
export const putAlarmSettings = (id: string, s: AlarmSettings) => request<AlarmSettings>(`/api/devices/${enc(id)}/alarm-settings`, { method: 'PUT', json: s });
