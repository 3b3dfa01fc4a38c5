/**
 * The origin stage's core: one shard's share of the origin's in-flight limit, with per-class
 * reservations, a bounded wait queue served fairly across tenants, the adaptive limit, and the
 * origin's own feedback (Retry-After holds and a capacity cap). Pure: state, limits and one
 * `now` in; a new state and a decision that carries its numbers out.
 *
 * Invariant kept by `pump` (run before `arrive`): afterwards nothing in the queue can be
 * admitted. An arrival is admitted at once only if no waiter of its class or higher is queued,
 * so it never overtakes one; a higher class can pass lower waiters held back by their share.
 */
import { type Priority, countByPriority, priorityRank } from "../admission/priority";
import {
  type AdaptiveState,
  type Sample,
  initialAdaptive,
  noteIdle,
  noteInFlight,
  noteLimited,
  rebound,
  recordSample,
  recoverWhileIdle,
  slotsOf,
} from "./adaptive-limit";
import { nextToServe, victimFor } from "./fair-share";
import { type OriginLimits, classCap } from "./origin-config";
import type { OriginShedCause } from "./origin-shed";
import type { OriginArrival, OriginWaiter } from "./origin-waiter";
import {
  type HoldScope,
  NO_HOLDS,
  firstScope,
  type OriginHolds,
  type Unavailable,
  heedUnavailable,
  hold,
  holdsCovering,
  isRateHold,
  nextHoldEnd,
} from "./origin-holds";
import { routeClassKey } from "./origin-party";
import { own } from "../own-keys";

export interface OriginState {
  readonly inFlight: number;
  readonly inFlightByPriority: Readonly<Record<Priority, number>>;
  /** Only tenants holding slots; bounded by `inFlight`. */
  readonly inFlightByTenant: Readonly<Record<string, number>>;
  /** In arrival order; never longer than `maxQueue`. */
  readonly queue: readonly OriginWaiter[];
  readonly nextSeq: number;
  readonly adaptive: AdaptiveState;
  /** The origin's last capacity grant (this shard's part), until it lapses. */
  readonly capacity: { readonly limit: number; readonly until: number } | null;
  /** What the origin asked to be held back, and until when (see origin-holds.ts). */
  readonly holds: OriginHolds;
  /** Moving average of an origin slot's hold time; null until one is released. */
  readonly serviceMsEwma: number | null;
}

const SERVICE_EWMA_ALPHA = 0.2;

export type OriginOutcome =
  | { readonly kind: "admit" }
  | { readonly kind: "queued"; readonly waiter: OriginWaiter; readonly expectedWaitMs: number }
  | {
      readonly kind: "shed";
      readonly cause: OriginShedCause;
      readonly retryAfterMs: number;
      readonly expectedWaitMs: number;
      /** No room to wait at all (queue full, no queue, no capacity): say so to the edge. */
      readonly noRoom: boolean;
      /** The hold it was shed for, when it was. */
      readonly holdScope: HoldScope | null;
    };

export interface OriginArrivalResult {
  readonly state: OriginState;
  readonly outcome: OriginOutcome;
  readonly evicted: readonly OriginWaiter[];
}

export interface OriginPumpResult {
  readonly state: OriginState;
  readonly granted: readonly OriginWaiter[];
  readonly shed: ReadonlyArray<{ readonly waiter: OriginWaiter; readonly cause: OriginShedCause }>;
}

export function initialOriginState(limits: OriginLimits, now: number): OriginState {
  return {
    inFlight: 0,
    inFlightByPriority: countByPriority(),
    inFlightByTenant: {},
    queue: [],
    nextSeq: 0,
    adaptive: initialAdaptive(adaptiveBounds(limits), now),
    capacity: null,
    holds: NO_HOLDS,
    serviceMsEwma: null,
  };
}

export function adaptiveBounds(limits: OriginLimits) {
  return {
    floor: Math.min(limits.floor, limits.ceiling),
    ceiling: limits.ceiling,
    latencyTolerance: limits.latencyTolerance,
  };
}

/** The limit in force: the adaptive (or fixed) limit, capped by the origin's own grant. */
export function effectiveLimit(state: OriginState, limits: OriginLimits, now: number): number {
  const base = limits.adaptive ? slotsOf(state.adaptive.limit) : limits.ceiling;
  const granted = state.capacity && state.capacity.until > now ? state.capacity.limit : Number.POSITIVE_INFINITY;
  return Math.max(0, Math.min(base, granted));
}

function capFor(state: OriginState, limits: OriginLimits, priority: Priority, now: number): number {
  return classCap(effectiveLimit(state, limits, now), limits.reservations, priority);
}

/** The widest hold the origin asked for that covers `who`; null when none does. */
export function heldUntil(
  state: OriginState,
  who: Pick<OriginWaiter, "holdParty" | "route">,
  now: number,
): { until: number; cause: OriginShedCause; scope: HoldScope } | null {
  const [widest] = holdsCovering(state.holds, { party: who.holdParty, route: who.route }, now);
  if (!widest) return null;
  return { until: widest.until, cause: isRateHold(widest.scope) ? "tenant_backoff" : "backoff", scope: widest.scope };
}

function admitOne(state: OriginState, who: Pick<OriginWaiter, "tenant" | "priority">, cap: number): OriginState {
  const inFlight = state.inFlight + 1;
  const adaptive = noteInFlight(state.adaptive, inFlight);
  return {
    ...state,
    inFlight,
    inFlightByPriority: { ...state.inFlightByPriority, [who.priority]: state.inFlightByPriority[who.priority] + 1 },
    inFlightByTenant: { ...state.inFlightByTenant, [who.tenant]: (own(state.inFlightByTenant, who.tenant) ?? 0) + 1 },
    adaptive: inFlight >= cap ? noteLimited(adaptive) : adaptive,
  };
}

function limitedBy(state: OriginState): OriginState {
  return { ...state, adaptive: noteLimited(state.adaptive) };
}

/**
 * Expected wait for a slot of class `priority` behind `ahead` waiters: the slots that must free
 * (enough to bring in-flight under the class's cap, then one per waiter ahead), at the rate the
 * in-flight requests finish. Unknown service time: 0 (the queue timeout still bounds the wait).
 */
function expectedWaitMs(state: OriginState, cap: number, ahead: number): number {
  if (state.serviceMsEwma === null || state.inFlight === 0) return 0;
  const releasesNeeded = Math.max(0, state.inFlight - cap + 1) + ahead;
  return (releasesNeeded * state.serviceMsEwma) / state.inFlight;
}

export function originQueueDrainMs(state: OriginState, limits: OriginLimits, now: number): number {
  const cap = capFor(state, limits, "critical", now);
  return expectedWaitMs(state, Math.max(1, cap), state.queue.length);
}

function shed(
  state: OriginState,
  cause: OriginShedCause,
  retryAfterMs: number,
  expected: number,
  noRoom: boolean,
  holdScope: HoldScope | null = null,
): OriginArrivalResult {
  return {
    state,
    outcome: {
      kind: "shed",
      cause,
      retryAfterMs: Math.max(0, retryAfterMs),
      expectedWaitMs: expected,
      noRoom,
      holdScope,
    },
    evicted: [],
  };
}

/**
 * Decides one arrival: admit, queue, or shed. Run `pump` at the same `now` first.
 * `serviceMs` budgeting as in the tenant stage: a wait must leave the origin its expected
 * service time before the deadline, or the slot is only used to produce a 504.
 */
export function arrive(
  state: OriginState,
  limits: OriginLimits,
  arrival: OriginArrival,
  now: number,
): OriginArrivalResult {
  const held = heldUntil(state, arrival, now);
  if (held) return shed(state, held.cause, held.until - now, held.until - now, true, held.scope);
  const limit = effectiveLimit(state, limits, now);
  const cap = classCap(limit, limits.reservations, arrival.priority);
  const rank = priorityRank(arrival.priority);
  const ahead = state.queue.filter((waiter) => priorityRank(waiter.priority) >= rank).length;
  if (ahead === 0 && state.inFlight < cap) {
    return { state: admitOne(state, arrival, cap), outcome: { kind: "admit" }, evicted: [] };
  }
  // From here on the arrival waits or is refused for want of a slot: demand met the limit.
  state = limitedBy(state);
  if (cap === 0) {
    // No share at all right now (the origin granted no capacity, or the class has none).
    const lapse = state.capacity && state.capacity.until > now ? state.capacity.until - now : limits.capacityTtlMs;
    return shed(state, "queue_full", lapse, lapse, true);
  }
  const wait = expectedWaitMs(state, cap, ahead);
  const budget = Math.min(limits.maxWaitMs, arrival.deadline - now - (state.serviceMsEwma ?? 0));
  if (limits.maxQueue === 0) return shed(state, "queue_full", wait, wait, true);
  if (budget <= 0 || wait > budget) return shed(state, "wait_exceeds_deadline", wait, wait, false);

  let queue = state.queue;
  const evicted: OriginWaiter[] = [];
  if (queue.length >= limits.maxQueue) {
    const victim = victimFor(queue, state.inFlightByTenant, arrival);
    if (!victim) return shed(state, "queue_full", originQueueDrainMs(state, limits, now), wait, true);
    queue = queue.filter((waiter) => waiter.id !== victim.id);
    evicted.push(victim);
  }
  const waiter: OriginWaiter = { ...arrival, seq: state.nextSeq, enqueuedAt: now, expiresAt: now + budget };
  return {
    state: { ...state, queue: [...queue, waiter], nextSeq: state.nextSeq + 1 },
    outcome: { kind: "queued", waiter, expectedWaitMs: wait },
    evicted,
  };
}

/**
 * Sheds waiters whose wait ended or whose traffic the origin asked to hold back, then admits
 * waiters (highest class first, fairly across tenants) while their class has room.
 */
export function pump(state: OriginState, limits: OriginLimits, now: number): OriginPumpResult {
  const shedNow: Array<{ waiter: OriginWaiter; cause: OriginShedCause }> = [];
  const live: OriginWaiter[] = [];
  if (limits.adaptive && state.inFlight === 0) {
    state = { ...state, adaptive: recoverWhileIdle(state.adaptive, adaptiveBounds(limits), now) };
  }
  for (const waiter of state.queue) {
    const held = heldUntil(state, waiter, now);
    if (held) shedNow.push({ waiter, cause: held.cause });
    else if (waiter.expiresAt <= now) shedNow.push({ waiter, cause: "queue_timeout" });
    else live.push(waiter);
  }
  let next: OriginState = { ...state, queue: live };
  const granted: OriginWaiter[] = [];
  for (;;) {
    const candidate = nextToServe(next.queue, next.inFlightByTenant);
    const cap = candidate ? capFor(next, limits, candidate.priority, now) : 0;
    if (!candidate || next.inFlight >= cap) break;
    next = { ...admitOne(next, candidate, cap), queue: next.queue.filter((waiter) => waiter.id !== candidate.id) };
    granted.push(candidate);
  }
  return { state: next, granted, shed: shedNow };
}

/**
 * Frees one slot. `heldMs` feeds the service-time average; null when it says nothing about the
 * origin (a reaped lease, a request never sent). The last slot freed starts the idle recovery.
 */
export function releaseSlot(
  state: OriginState,
  slot: Pick<OriginWaiter, "tenant" | "priority">,
  heldMs: number | null,
  now: number,
): OriginState {
  const tenantHeld = (own(state.inFlightByTenant, slot.tenant) ?? 0) - 1;
  const inFlightByTenant = { ...state.inFlightByTenant };
  if (tenantHeld > 0) inFlightByTenant[slot.tenant] = tenantHeld;
  else delete inFlightByTenant[slot.tenant];
  const held = heldMs === null ? null : Math.max(0, heldMs);
  const serviceMsEwma =
    held === null
      ? state.serviceMsEwma
      : state.serviceMsEwma === null
        ? held
        : state.serviceMsEwma + SERVICE_EWMA_ALPHA * (held - state.serviceMsEwma);
  const inFlight = Math.max(0, state.inFlight - 1);
  return {
    ...state,
    inFlight,
    adaptive: inFlight === 0 ? noteIdle(state.adaptive, now) : state.adaptive,
    inFlightByPriority: {
      ...state.inFlightByPriority,
      [slot.priority]: Math.max(0, state.inFlightByPriority[slot.priority] - 1),
    },
    inFlightByTenant,
    serviceMsEwma,
  };
}

/** What the origin said, or showed, with one response. */
export interface OriginFeedback {
  /** The party for fairness and for the adaptive limit (anonymous traffic is one). */
  readonly tenant: string;
  /** The party a 429's hold is for (an anonymous client's own bucket). */
  readonly holdParty: string;
  readonly method: string;
  /** The route class prefix (origin-party.ts). */
  readonly route: string;
  /** Time to the response's headers, for a response that came; null otherwise. */
  readonly latencyMs: number | null;
  /** The origin failed, or was overloaded (see origin-drops.ts). */
  readonly drop: boolean;
  /** Hold back as the origin asked with a 503 + Retry-After, this long. */
  readonly backoffMs: number | null;
  /** Hold this party back this long (a 429 with Retry-After). */
  readonly tenantBackoffMs: number | null;
  /** The 503 carried the configured whole-origin signal (`globalHoldHeader`). */
  readonly wholeOrigin: boolean;
  /** The origin's capacity grant, already this shard's part. */
  readonly capacity: number | null;
}

/** Learns from one response: the adaptive limit's sample, holds, the capacity grant. */
export function learn(state: OriginState, limits: OriginLimits, feedback: OriginFeedback, now: number): OriginState {
  let next = state;
  const sample: Sample | null = feedback.drop
    ? { kind: "drop", party: feedback.tenant }
    : feedback.latencyMs === null
      ? null
      : {
          kind: "latency",
          ms: feedback.latencyMs,
          party: feedback.tenant,
          route: routeClassKey(feedback.method, feedback.route),
        };
  if (sample) next = { ...next, adaptive: recordSample(next.adaptive, sample, adaptiveBounds(limits), now) };
  const subject = { party: feedback.holdParty, route: feedback.route };
  if (feedback.backoffMs !== null && feedback.backoffMs > 0) {
    const until = now + Math.min(feedback.backoffMs, limits.maxBackoffMs);
    const answer = { who: subject, voter: feedback.tenant, wholeOrigin: feedback.wholeOrigin };
    next = { ...next, holds: heedUnavailable(next.holds, answer, until, now) };
  }
  if (feedback.tenantBackoffMs !== null && feedback.tenantBackoffMs > 0) {
    const until = now + Math.min(feedback.tenantBackoffMs, limits.maxBackoffMs);
    next = { ...next, holds: hold(next.holds, firstScope("rate", subject, false), until, now) };
  }
  if (feedback.capacity !== null) {
    next = { ...next, capacity: { limit: Math.max(0, feedback.capacity), until: now + limits.capacityTtlMs } };
  }
  return next;
}

/** A hold learnt by another shard: the same scope, capped as the origin's own would be. */
export function holdBack(
  state: OriginState,
  limits: OriginLimits,
  held:
    | { readonly scope: HoldScope; readonly untilMs: number }
    | { readonly unavailable: Unavailable; readonly untilMs: number },
  now: number,
): OriginState {
  const until = Math.min(held.untilMs, now + limits.maxBackoffMs);
  const holds =
    "scope" in held
      ? hold(state.holds, held.scope, until, now)
      : heedUnavailable(state.holds, held.unavailable, until, now);
  return { ...state, holds };
}

/**
 * When the queue needs attention with no call arriving: the earliest waiter expiry, or the end
 * of a hold or of a capacity grant (either can let waiters in, or must shed them). Null when
 * nothing waits.
 */
export function nextWakeAt(state: OriginState, now: number): number | null {
  if (state.queue.length === 0) return null;
  let at = Number.POSITIVE_INFINITY;
  for (const waiter of state.queue) at = Math.min(at, waiter.expiresAt);
  at = Math.min(at, nextHoldEnd(state.holds, now));
  if (state.capacity && state.capacity.until > now) at = Math.min(at, state.capacity.until);
  return at;
}

/**
 * Carries the state over to new limits: the limit clamped, and a queue past the new bound
 * trimmed as a full queue is, lowest class first and newest first within it.
 */
export function applyOriginLimits(
  state: OriginState,
  limits: OriginLimits,
): { readonly state: OriginState; readonly evicted: readonly OriginWaiter[] } {
  const byService = [...state.queue].sort(
    (a, b) => priorityRank(b.priority) - priorityRank(a.priority) || a.seq - b.seq,
  );
  const evicted = new Set(byService.slice(limits.maxQueue));
  return {
    state: {
      ...state,
      queue: state.queue.filter((waiter) => !evicted.has(waiter)),
      adaptive: rebound(state.adaptive, adaptiveBounds(limits)),
    },
    evicted: [...evicted],
  };
}
