// The audit page's query: filter → GET /api/audit query string, and paging
// backwards through time with `to` (entries come newest first). Pure.

export interface AuditEntry {
  t: string;              // ISO 8601
  user?: string | null;
  address?: string | null;
  action: string;
  target?: string | null;
  outcome?: string | null;
  detail?: string | null;
}

export const AUDIT_MAX_LIMIT = 1000;
export const AUDIT_PAGE = 50;

export interface AuditQuery {
  user?: string;          // exact user name; empty = everyone
  from?: number;          // epoch ms, inclusive
  to?: number;            // epoch ms
  limit: number;          // what to ask for (page size plus the boundary overlap)
  /** Entries at the `to` boundary already shown on the page before: dropped from the answer. */
  seen?: string[];
}

export function auditQueryString(q: AuditQuery): string {
  const p = new URLSearchParams();
  if (q.from != null && Number.isFinite(q.from)) p.set('from', String(Math.floor(q.from)));
  if (q.to != null && Number.isFinite(q.to)) p.set('to', String(Math.floor(q.to)));
  const u = q.user?.trim();
  if (u) p.set('user', u);
  p.set('limit', String(Math.max(1, Math.min(AUDIT_MAX_LIMIT, Math.floor(q.limit)))));
  return p.toString();
}

/** A datetime-local input's value (local time) as epoch ms, undefined when empty or invalid. */
export function localInputMs(v: string): number | undefined {
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

/** First page for a filter. `to` empty means "up to now" (left to the server). */
export function firstPage(user: string, from: string, to: string, pageSize = AUDIT_PAGE): AuditQuery {
  const f = localInputMs(from);
  // a whole minute: the input has minute resolution, "to 10:15" includes 10:15:59
  const t = localInputMs(to);
  return { user: user.trim() || undefined, from: f, to: t != null ? t + 59_999 : undefined, limit: pageSize };
}

const key = (e: AuditEntry): string => JSON.stringify([e.t, e.user, e.address, e.action, e.target, e.outcome, e.detail]);

/** Drops the boundary entries the previous page already showed, and trims to the page size. */
export function pageEntries(q: AuditQuery, entries: AuditEntry[], pageSize = AUDIT_PAGE): AuditEntry[] {
  const seen = new Set(q.seen ?? []);
  return (seen.size ? entries.filter((e) => !seen.has(key(e))) : entries).slice(0, pageSize);
}

/**
 * The query for the next (older) page after `shown`, or null when the server
 * had no more. `to` = the oldest time shown, inclusive; entries that share that
 * time and were already shown are dropped on arrival (`seen`), and the limit
 * grows by as many so a full page still comes back. Works whether the server
 * treats `to` as inclusive or exclusive, and with second-resolution times.
 */
export function nextPage(q: AuditQuery, answered: number, shown: AuditEntry[], pageSize = AUDIT_PAGE): AuditQuery | null {
  if (answered < q.limit || !shown.length) return null;
  const oldest = Date.parse(shown[shown.length - 1].t);
  if (!Number.isFinite(oldest)) return null;
  const boundary = shown.filter((e) => Date.parse(e.t) === oldest).map(key);
  // a whole page within one millisecond: stepping over it is the only way on
  if (pageSize + boundary.length > AUDIT_MAX_LIMIT) return { ...q, to: oldest - 1, limit: pageSize, seen: undefined };
  return { ...q, to: oldest, limit: pageSize + boundary.length, seen: boundary };
}
