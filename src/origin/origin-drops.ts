/** Gateway errors that say the origin (or what is behind it) is overloaded or down. */
const OVERLOAD_STATUSES = new Set([502, 503, 504]);

/**
 * Whether a finished request is a drop for the adaptive limit: the origin failed or timed out
 * (a deadline abort only once it ran past `slowAfterMs`), answered 502/503/504, or 429 without
 * a Retry-After (a 429 with one holds back its tenant instead: one tenant's rate says nothing of
 * the origin's capacity). Other 5xx are the application's errors, not load.
 */
export function isDrop(
  report: { readonly outcome: string; readonly status: number; readonly retryAfterMs: number | null },
  ranMs: number,
  slowAfterMs: number,
): boolean {
  if (report.outcome === "origin_failed") return true;
  if (report.outcome === "deadline_exceeded") return ranMs >= slowAfterMs;
  return OVERLOAD_STATUSES.has(report.status) || (report.status === 429 && report.retryAfterMs === null);
}
