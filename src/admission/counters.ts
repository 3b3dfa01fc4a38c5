import { type Priority, countByPriority } from "./priority";
import { ADMISSION_SHED_REASONS, type AdmissionShedReason } from "./shed-reason";

/**
 * Per-tenant decision counters. They add up: arrived = admitted + shed + gone + queued now
 * (a queued request counts once it leaves the queue: admitted, shed, or its client gone).
 */
export interface Counters {
  readonly arrived: number;
  readonly admitted: number;
  readonly admittedByPriority: Readonly<Record<Priority, number>>;
  readonly shed: number;
  readonly shedByReason: Readonly<Record<AdmissionShedReason, number>>;
  readonly shedByPriority: Readonly<Record<Priority, number>>;
  /** Requests that waited in the queue at some point. */
  readonly queuedEver: number;
  /** Queued requests whose client went away before they were admitted or shed: answered by nobody. */
  readonly gone: number;
  readonly released: number;
  /** Leases reclaimed because their holder never released them. */
  readonly reaped: number;
  /** Admitted, then the origin did not answer before the deadline (504). */
  readonly deadlineExceeded: number;
  /** Admitted, then the origin could not be reached or failed mid-response. */
  readonly originFailed: number;
  /** Admitted here, then refused by the origin stage: never sent, its token given back. */
  readonly notForwarded: number;
  /** Of `shed`, how many an isolate decided on its lease without waiting for an object call. */
  readonly shedAtEdge: number;
  /** Leases the object took back because their isolate stopped renewing (their unreleased admissions are in `reaped`). */
  readonly holdersReaped: number;
  /** Calls the object served on the request path, by kind: its load, per request. */
  readonly calls: Readonly<Record<ObjectCall, number>>;
}

export const OBJECT_CALLS = ["lease"] as const;
export type ObjectCall = (typeof OBJECT_CALLS)[number];

/**
 * How an admitted request ended, as its holder reports on release. `abandoned`: the client went
 * away before the origin answered; the origin is probably still working on it, so its slot
 * lingers like a deadline abort's (but it says nothing of the origin's speed).
 */
export const RELEASE_OUTCOMES = [
  "completed",
  "cancelled",
  "abandoned",
  "deadline_exceeded",
  "origin_failed",
  "not_forwarded",
] as const;
export type ReleaseOutcome = (typeof RELEASE_OUTCOMES)[number];

export function emptyCounters(): Counters {
  const shedByReason = Object.fromEntries(ADMISSION_SHED_REASONS.map((reason) => [reason, 0])) as Record<
    AdmissionShedReason,
    number
  >;
  return {
    arrived: 0,
    admitted: 0,
    admittedByPriority: countByPriority(),
    shed: 0,
    shedByReason,
    shedByPriority: countByPriority(),
    queuedEver: 0,
    gone: 0,
    released: 0,
    reaped: 0,
    deadlineExceeded: 0,
    originFailed: 0,
    notForwarded: 0,
    shedAtEdge: 0,
    holdersReaped: 0,
    calls: { lease: 0 },
  };
}

export function countCall(counters: Counters, call: ObjectCall): Counters {
  return { ...counters, calls: { ...counters.calls, [call]: counters.calls[call] + 1 } };
}
