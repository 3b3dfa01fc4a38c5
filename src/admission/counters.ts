import { type Priority, countByPriority } from "./priority";
import { ADMISSION_SHED_REASONS, type AdmissionShedReason } from "./shed-reason";

/**
 * Per-tenant decision counters. They add up: arrived = admitted + shed + queued now
 * (a queued request counts once it leaves the queue, admitted or shed).
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
  readonly released: number;
  /** Leases reclaimed because their holder never released them. */
  readonly reaped: number;
  /** Admitted, then the origin did not answer before the deadline (504). */
  readonly deadlineExceeded: number;
  /** Admitted, then the origin could not be reached or failed mid-response. */
  readonly originFailed: number;
  /** Admitted here, then refused by the origin stage: never sent, its token given back. */
  readonly notForwarded: number;
  /** Of `shed`, how many an isolate decided from a cached verdict and reported in a batch. */
  readonly shedAtEdge: number;
  /** Of `admitted`, how many an isolate admitted on a credit (hot tenants). */
  readonly admittedOnCredit: number;
  /** Credits the object took back because no isolate returned them. */
  readonly creditsReaped: number;
  /** Calls the object served on the request path, by kind: its load, per request. */
  readonly calls: Readonly<Record<ObjectCall, number>>;
}

export const OBJECT_CALLS = ["admit", "release", "reportSheds", "returnCredit"] as const;
export type ObjectCall = (typeof OBJECT_CALLS)[number];

/** What an isolate reports when it gives a credit back. */
export interface CreditReport {
  readonly used: number;
  readonly byPriority: Readonly<Record<Priority, number>>;
  readonly outcomes: Readonly<Record<ReleaseOutcome, number>>;
}

/** Sheds an isolate decided on its own, reported in a batch; one entry per reason and priority. */
export interface LocalShedCount {
  readonly reason: AdmissionShedReason;
  readonly priority: Priority;
  readonly count: number;
}

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
    released: 0,
    reaped: 0,
    deadlineExceeded: 0,
    originFailed: 0,
    notForwarded: 0,
    shedAtEdge: 0,
    admittedOnCredit: 0,
    creditsReaped: 0,
    calls: { admit: 0, release: 0, reportSheds: 0, returnCredit: 0 },
  };
}

export function countArrival(counters: Counters, queued: boolean): Counters {
  return {
    ...counters,
    arrived: counters.arrived + 1,
    queuedEver: counters.queuedEver + (queued ? 1 : 0),
  };
}

export function countAdmit(counters: Counters, priority: Priority): Counters {
  return {
    ...counters,
    admitted: counters.admitted + 1,
    admittedByPriority: bump(counters.admittedByPriority, priority),
  };
}

export function countShed(counters: Counters, reason: AdmissionShedReason, priority: Priority): Counters {
  return {
    ...counters,
    shed: counters.shed + 1,
    shedByReason: bump(counters.shedByReason, reason),
    shedByPriority: bump(counters.shedByPriority, priority),
  };
}

export function countCall(counters: Counters, call: ObjectCall): Counters {
  return { ...counters, calls: { ...counters.calls, [call]: counters.calls[call] + 1 } };
}

/** Local sheds count as arrivals and sheds, as if the object had decided them. */
export function countLocalSheds(counters: Counters, batch: readonly LocalShedCount[]): Counters {
  let next = counters;
  for (const { reason, priority, count } of batch) {
    next = {
      ...next,
      arrived: next.arrived + count,
      shed: next.shed + count,
      shedAtEdge: next.shedAtEdge + count,
      shedByReason: { ...next.shedByReason, [reason]: next.shedByReason[reason] + count },
      shedByPriority: { ...next.shedByPriority, [priority]: next.shedByPriority[priority] + count },
    };
  }
  return next;
}

/** Credited admissions count as arrivals, admissions and releases, as if the object had made them. */
export function countCreditReport(counters: Counters, report: CreditReport): Counters {
  const admittedByPriority = { ...counters.admittedByPriority };
  for (const [priority, count] of Object.entries(report.byPriority) as Array<[Priority, number]>) {
    admittedByPriority[priority] += count;
  }
  return {
    ...counters,
    arrived: counters.arrived + report.used,
    admitted: counters.admitted + report.used,
    admittedByPriority,
    admittedOnCredit: counters.admittedOnCredit + report.used,
    released: counters.released + report.used,
    deadlineExceeded: counters.deadlineExceeded + report.outcomes.deadline_exceeded,
    originFailed: counters.originFailed + report.outcomes.origin_failed,
    notForwarded: counters.notForwarded + report.outcomes.not_forwarded,
  };
}

export function countRelease(counters: Counters, outcome: ReleaseOutcome | "reaped"): Counters {
  switch (outcome) {
    case "reaped":
      return { ...counters, reaped: counters.reaped + 1 };
    case "deadline_exceeded":
      return { ...counters, released: counters.released + 1, deadlineExceeded: counters.deadlineExceeded + 1 };
    case "origin_failed":
      return { ...counters, released: counters.released + 1, originFailed: counters.originFailed + 1 };
    case "not_forwarded":
      return { ...counters, released: counters.released + 1, notForwarded: counters.notForwarded + 1 };
    case "completed":
    case "cancelled":
    case "abandoned":
      return { ...counters, released: counters.released + 1 };
  }
}

function bump<K extends string>(record: Readonly<Record<K, number>>, key: K): Record<K, number> {
  return { ...record, [key]: (record[key] ?? 0) + 1 };
}
