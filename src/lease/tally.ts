/**
 * The decisions an isolate made on its lease, counted cumulatively (see lease-protocol.ts), and
 * how the object turns the difference between two reports into its counters. Pure.
 */
import type { Counters, ReleaseOutcome } from "../admission/counters";
import { RELEASE_OUTCOMES } from "../admission/counters";
import { PRIORITIES, type Priority, countByPriority } from "../admission/priority";
import { ADMISSION_SHED_REASONS, type AdmissionShedReason } from "../admission/shed-reason";
import type { LeaseTally } from "./lease-protocol";

export function emptyTally(): LeaseTally {
  return {
    arrived: 0,
    admitted: countByPriority(),
    queuedEver: 0,
    gone: 0,
    shedAtEdge: 0,
    shed: Object.fromEntries(ADMISSION_SHED_REASONS.map((r) => [r, countByPriority()])) as LeaseTally["shed"],
    released: Object.fromEntries(RELEASE_OUTCOMES.map((o) => [o, 0])) as LeaseTally["released"],
  };
}

const diff = (before: number, after: number) => Math.max(0, after - before);
function diffByPriority(before: Readonly<Record<Priority, number>>, after: Readonly<Record<Priority, number>>) {
  const out = countByPriority();
  for (const p of PRIORITIES) out[p] = diff(before[p], after[p]);
  return out;
}

/** What `after` adds to `before`; a count that went backwards (a confused holder) adds nothing. */
export function tallyDelta(before: LeaseTally, after: LeaseTally): LeaseTally {
  const shed = {} as Record<AdmissionShedReason, Record<Priority, number>>;
  for (const r of ADMISSION_SHED_REASONS) shed[r] = diffByPriority(before.shed[r], after.shed[r]);
  const released = {} as Record<ReleaseOutcome, number>;
  for (const o of RELEASE_OUTCOMES) released[o] = diff(before.released[o], after.released[o]);
  return {
    arrived: diff(before.arrived, after.arrived),
    admitted: diffByPriority(before.admitted, after.admitted),
    queuedEver: diff(before.queuedEver, after.queuedEver),
    gone: diff(before.gone, after.gone),
    shedAtEdge: diff(before.shedAtEdge, after.shedAtEdge),
    shed,
    released,
  };
}

const total = (counts: Readonly<Record<Priority, number>>) => PRIORITIES.reduce((n, p) => n + counts[p], 0);

/** Adds a holder's new decisions to the tenant's counters, as if the object had made them. */
export function countTally(counters: Counters, delta: LeaseTally): Counters {
  const admittedByPriority = { ...counters.admittedByPriority };
  const shedByPriority = { ...counters.shedByPriority };
  const shedByReason = { ...counters.shedByReason };
  let shed = 0;
  for (const p of PRIORITIES) admittedByPriority[p] += delta.admitted[p];
  for (const r of ADMISSION_SHED_REASONS) {
    const n = total(delta.shed[r]);
    shedByReason[r] += n;
    shed += n;
    for (const p of PRIORITIES) shedByPriority[p] += delta.shed[r][p];
  }
  const released = RELEASE_OUTCOMES.reduce((n, o) => n + delta.released[o], 0);
  return {
    ...counters,
    arrived: counters.arrived + delta.arrived,
    admitted: counters.admitted + total(delta.admitted),
    admittedByPriority,
    shed: counters.shed + shed,
    shedByReason,
    shedByPriority,
    queuedEver: counters.queuedEver + delta.queuedEver,
    gone: counters.gone + delta.gone,
    shedAtEdge: counters.shedAtEdge + delta.shedAtEdge,
    released: counters.released + released,
    deadlineExceeded: counters.deadlineExceeded + delta.released.deadline_exceeded,
    originFailed: counters.originFailed + delta.released.origin_failed,
    notForwarded: counters.notForwarded + delta.released.not_forwarded,
  };
}

/** The edge's side: one more decision of each kind. */
export function tallyArrival(tally: LeaseTally, queued: boolean): LeaseTally {
  return { ...tally, arrived: tally.arrived + 1, queuedEver: tally.queuedEver + (queued ? 1 : 0) };
}

export function tallyAdmit(tally: LeaseTally, priority: Priority): LeaseTally {
  return { ...tally, admitted: { ...tally.admitted, [priority]: tally.admitted[priority] + 1 } };
}

export function tallyShed(
  tally: LeaseTally,
  reason: AdmissionShedReason,
  priority: Priority,
  atEdge: boolean,
): LeaseTally {
  const byPriority = tally.shed[reason];
  return {
    ...tally,
    shedAtEdge: tally.shedAtEdge + (atEdge ? 1 : 0),
    shed: { ...tally.shed, [reason]: { ...byPriority, [priority]: byPriority[priority] + 1 } },
  };
}

/** A queued request left without a decision: its client went away. */
export function tallyGone(tally: LeaseTally): LeaseTally {
  return { ...tally, gone: tally.gone + 1 };
}

/** What a holder's tally admitted and never reported released (lingering slots count as released). */
export function unreleasedAdmissions(tally: LeaseTally): number {
  let released = 0;
  for (const o of RELEASE_OUTCOMES) released += tally.released[o];
  return Math.max(0, total(tally.admitted) - released);
}

export function tallyRelease(tally: LeaseTally, outcome: ReleaseOutcome): LeaseTally {
  return { ...tally, released: { ...tally.released, [outcome]: tally.released[outcome] + 1 } };
}
