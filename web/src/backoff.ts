/** Exponential backoff with "equal jitter": half fixed, half random; capped. */
export function backoffDelay(attempt: number, baseMs = 500, capMs = 15000, rand: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(exp / 2 + rand() * (exp / 2));
}
