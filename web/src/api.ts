import type { DeviceInfo, ReadingsResponse } from './types';

async function json<T>(res: Response): Promise<T> {
  let body: unknown = null;
  try { body = await res.json(); } catch { /* empty or not JSON */ }
  if (!res.ok) {
    const msg = body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : res.statusText;
    throw new Error(`${res.status} ${msg}`);
  }
  return body as T;
}

const enc = encodeURIComponent;

export function getDevice(id: string, signal?: AbortSignal): Promise<DeviceInfo> {
  return fetch(`/api/devices/${enc(id)}`, { signal }).then((r) => json<DeviceInfo>(r));
}

export function getReadings(id: string, from: number, to: number, maxPoints: number, signal?: AbortSignal): Promise<ReadingsResponse> {
  const q = `from=${Math.floor(from)}&to=${Math.ceil(to)}&max_points=${Math.max(1, Math.min(10000, Math.round(maxPoints)))}`;
  return fetch(`/api/devices/${enc(id)}/readings?${q}`, { signal }).then((r) => json<ReadingsResponse>(r));
}

export function putConfig(id: string, intervalMs: number): Promise<{ cfg_id: string; config: unknown }> {
  return fetch(`/api/devices/${enc(id)}/config`, {
    method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ interval_ms: intervalMs }),
  }).then((r) => json(r));
}

export function postCommand(id: string, body: Record<string, unknown>): Promise<{ cmd_id: string }> {
  return fetch(`/api/devices/${enc(id)}/commands`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  }).then((r) => json(r));
}
