export function fmtInt(v: number | null | undefined): string {
  return v == null || !Number.isFinite(v) ? '--' : String(Math.round(v));
}
export function fmt1(v: number | null | undefined): string {
  return v == null || !Number.isFinite(v) ? '--.-' : (Math.round(v * 10) / 10).toFixed(1);
}
export function fmtTime(ms: number | string | null | undefined): string {
  const v = typeof ms === 'string' ? Date.parse(ms) : ms;
  if (v == null || !Number.isFinite(v)) return '—';
  const d = new Date(v);
  return d.toLocaleString(undefined, { hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
/** Local HH:MM:SS of epoch ms. */
export function fmtClock(ms: number): string {
  const d = new Date(ms);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}
