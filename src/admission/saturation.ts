/**
 * Saturation verdicts (the origin stage's; the tenant stage decides on its leases): what an
 * origin shard tells the edge when it sheds, so that each Worker
 * isolate can shed the same tenant's further requests itself, without a round trip, for as long
 * as the same answer is sure to hold. Pure: no clock, no I/O.
 *
 * A verdict holds only relative times (the object's clock and an isolate's need not agree); the
 * edge pins it to its own clock when the answer arrives. It covers the shed request's priority
 * and everything below it: a higher-priority request still goes to the object, which may admit
 * it ahead of everyone queued.
 */
import type { FullBehaviour } from "./limits";
import { type Priority, priorityRank } from "./priority";
import type { AdmissionShedReason } from "./shed-reason";

/** A verdict is trusted at most this long, whatever it says: the edge's staleness bound. */
export const MAX_VERDICT_AGE_MS = 1_000;
/** A verdict holds at least this long: one refreshing call per this, per isolate, at most. */
export const MIN_HOLD_MS = 5;
/**
 * Share of the queue's drain time a verdict holds for. While it holds, the queue is not refilled
 * and only drains, by this share of its length at most, so the origin stays busy; in exchange a
 * flooding tenant's object is asked a few times per drain of its queue instead of once per
 * freed place. The price: up to this share of the queue's places go unused under a flood.
 */
export const HOLD_SHARE_OF_DRAIN = 0.25;

export interface Saturation<R extends string = AdmissionShedReason> {
  readonly reason: R;
  /** Requests of this priority or lower are covered. */
  readonly coversUpTo: Priority;
  /** No room to wait (queue full, or no queue at all): covered requests are shed whatever their budget. */
  readonly noRoom: boolean;
  /** Expected wait of a covered arrival when the verdict was made. */
  readonly waitMs: number;
  /** How long the verdict holds from when it arrives (at most MAX_VERDICT_AGE_MS). */
  readonly holdForMs: number;
  /** When capacity was expected back for the shed request, before jitter. */
  readonly retryAfterMs: number;
  /** The object's expected service time, which a request's wait budget leaves room for. */
  readonly serviceMs: number | null;
}

/** A verdict as an isolate keeps it: pinned to the isolate's clock on arrival. */
export interface HeldVerdict<R extends string = AdmissionShedReason> extends Saturation<R> {
  readonly receivedAt: number;
}

export type LocalDecision<R extends string = AdmissionShedReason> =
  | { readonly kind: "shed"; readonly reason: R; readonly retryAfterMs: number }
  | { readonly kind: "ask" };

export function clampHold(ms: number): number {
  return Math.min(MAX_VERDICT_AGE_MS, Math.max(MIN_HOLD_MS, Math.ceil(ms)));
}

export interface LocalRequest {
  readonly priority: Priority;
  readonly fullBehaviour: FullBehaviour;
  /** How long this request may wait: min(maxWaitMs, deadline budget), or the budget if it blocks. */
  readonly waitBudgetMs: number;
}

/**
 * Sheds locally only a covered request that the object refused, or would have refused, when
 * it made the verdict: one with no room to wait, or whose budget is shorter than the wait then.
 * Past the hold time, a request is still shed while the wait, shrinking as time passes, exceeds
 * its budget. Anything uncertain is asked.
 */
export function decideLocally<R extends string>(
  verdict: HeldVerdict<R>,
  request: LocalRequest,
  now: number,
): LocalDecision<R> {
  const age = now - verdict.receivedAt;
  if (age < 0 || age >= MAX_VERDICT_AGE_MS) return { kind: "ask" };
  if (priorityRank(request.priority) > priorityRank(verdict.coversUpTo)) return { kind: "ask" };
  const retryAfterMs = Math.max(0, verdict.retryAfterMs - age);
  const shed = { kind: "shed", reason: verdict.reason, retryAfterMs } as const;
  const holding = age < verdict.holdForMs;
  if (verdict.noRoom) {
    // shed-oldest makes room by shedding a waiter of the lowest class, if it is at or below.
    const displaces =
      request.fullBehaviour === "shed-oldest" && priorityRank(request.priority) >= priorityRank(verdict.coversUpTo);
    return holding && !displaces ? shed : { kind: "ask" };
  }
  const refusedThen = request.waitBudgetMs < verdict.waitMs;
  const refusedNow = request.waitBudgetMs < verdict.waitMs - age;
  return (holding && refusedThen) || refusedNow ? shed : { kind: "ask" };
}
