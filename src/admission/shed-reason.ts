import { ORIGIN_SHED_REASONS } from "../origin/origin-shed";

/**
 * Why a request was not served. The admission core decides the first five; the Worker adds the
 * ones that happen around it. src/signals.ts maps every reason to a response, exhaustively.
 */
export const ADMISSION_SHED_REASONS = [
  /** No token now, and none before the request's wait budget runs out. */
  "rate_limited",
  /** The wait queue is at its bound and the arrival displaces nobody. */
  "queue_full",
  /** A queued request displaced by a higher-priority arrival (or by `shed-oldest`). */
  "evicted",
  /** Expected wait, from the queue ahead and the drain rate, exceeds the budget left. */
  "wait_exceeds_deadline",
  /** Waited its whole budget without getting in (the estimate was too hopeful). */
  "queue_timeout",
] as const;

export type AdmissionShedReason = (typeof ADMISSION_SHED_REASONS)[number];

export const SHED_REASONS = [
  ...ADMISSION_SHED_REASONS,
  /** The origin did not answer before the request's deadline; the fetch was aborted. */
  "deadline_exceeded",
  /** A Durable Object could not be reached or is overloaded, and the guard fails closed. */
  "guard_unavailable",
  /** All anonymous traffic together is at the `anonymous` tenant's aggregate bound. */
  "anonymous_saturated",
  /** A WebSocket upgrade while the tenant already holds `maxConnections` open sockets. */
  "connections_full",
  ...ORIGIN_SHED_REASONS,
] as const;

export type ShedReason = (typeof SHED_REASONS)[number];

export function isShedReason(value: string): value is ShedReason {
  return (SHED_REASONS as readonly string[]).includes(value);
}
