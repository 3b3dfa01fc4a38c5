/**
 * Deadline budget arithmetic. Pure; `now` is passed in.
 * Budget = min(client's x-request-timeout-ms, route or tenant timeoutMs or DEFAULT_TIMEOUT_MS).
 * Only a relative client budget is accepted: clients' absolute clocks are not trusted.
 */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** A client budget is a plain positive integer of milliseconds; anything else is ignored. */
export function parseClientTimeoutMs(raw: string | null): number | null {
  if (raw === null) return null;
  const trimmed = raw.trim();
  if (!/^\d{1,9}$/.test(trimmed)) return null;
  const value = Number(trimmed);
  return value > 0 ? value : null;
}

export function deadlineBudgetMs(clientMs: number | null, configuredMs: number | undefined): number {
  const configured = configuredMs ?? DEFAULT_TIMEOUT_MS;
  return clientMs === null ? configured : Math.min(clientMs, configured);
}

/** What is left of the budget when the request is forwarded, never negative. */
export function remainingMs(deadline: number, now: number): number {
  return Math.max(0, deadline - now);
}
