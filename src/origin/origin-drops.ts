/** Gateway errors that say the origin (or what is behind it) is overloaded or down. */
const OVERLOAD_STATUSES = new Set([502, 503, 504]);

/**
 * Whether a finished request is a drop for the adaptive limit: only the origin's own failures
 * count. That is a failed fetch; a 502/503/504; a 429 without a Retry-After (a 429 with one
 * holds back its party instead: one party's rate says nothing of the origin's capacity); and a
 * deadline abort before any headers came, on a budget the guard set (the route's, not a
 * client's shorter `x-request-timeout-ms`), once it ran past `slowAfterMs`. A deadline that ran
 * out while a slow client read the body is the client's, and a client that picks a tiny budget
 * must not be able to pull down everyone's limit. Other 5xx are the application's errors.
 */
export function isDrop(
  report: {
    readonly outcome: string;
    readonly status: number;
    readonly latencyMs: number | null;
    readonly retryAfterMs: number | null;
    readonly clientBudget: boolean;
  },
  ranMs: number,
  slowAfterMs: number,
): boolean {
  if (report.outcome === "origin_failed") return true;
  if (report.outcome === "deadline_exceeded") {
    return report.latencyMs === null && !report.clientBudget && ranMs >= slowAfterMs;
  }
  return OVERLOAD_STATUSES.has(report.status) || (report.status === 429 && report.retryAfterMs === null);
}
