/**
 * The admission core: one tenant's token bucket, in-flight count and bounded priority wait
 * queue, as pure functions. No `this`, no I/O, no clock: every function takes the state, the
 * limits and one `now` (epoch ms) and returns a new state with a decision that carries the
 * numbers explaining it. The Durable Object (src/tenant-guard.ts) is the only caller that keeps
 * state between calls.
 *
 * Invariant kept by `pump` (which callers run before `arrive`): after it, either the queue is
 * empty or its head cannot be admitted (no token or no free slot). So an arrival can be
 * admitted at once only when the queue is empty, and never overtakes a waiter.
 */
import { estimateWait } from "./expected-wait";
import type { AdmissionLimits, Arrival } from "./limits";
import type { AdmissionShedReason } from "./shed-reason";
import { type BucketState, fullBucket, msUntilTokens, refill, takeToken } from "./token-bucket";
import {
  type WaitQueue,
  type Waiter,
  countAhead,
  earliestExpiry,
  enqueue,
  partitionExpired,
  removeWaiter,
  victimForFullQueue,
} from "./wait-queue";

export interface AdmissionState {
  readonly bucket: BucketState;
  readonly inFlight: number;
  readonly queue: WaitQueue;
  readonly nextSeq: number;
  /** Moving average of how long an admitted request holds its slot; null until one is released. */
  readonly holdMsEwma: number | null;
  /**
   * Tokens handed out in credits and not yet returned (hot tenants). They still count against
   * the burst: the bucket refills only up to `burst - creditTokens`, so bucket and credits
   * together never hold more than the burst.
   */
  readonly creditTokens: number;
}

export type ArrivalOutcome =
  | { readonly kind: "admit" }
  | {
      readonly kind: "queued";
      readonly waiter: Waiter;
      readonly position: number;
      readonly expectedWaitMs: number;
    }
  | {
      readonly kind: "shed";
      readonly reason: AdmissionShedReason;
      /** When capacity is expected for it, before jitter. */
      readonly retryAfterMs: number;
      readonly expectedWaitMs: number;
      readonly waitBudgetMs: number;
    };

export interface ArrivalResult {
  readonly state: AdmissionState;
  readonly outcome: ArrivalOutcome;
  /** Waiters displaced to make room; each must be answered `evicted`. */
  readonly evicted: readonly Waiter[];
}

export interface PumpResult {
  readonly state: AdmissionState;
  /** Waiters that now hold a token and a slot, in service order. */
  readonly granted: readonly Waiter[];
  /** Waiters whose wait ended without admission; each must be answered `queue_timeout`. */
  readonly timedOut: readonly Waiter[];
}

/** Weight of the newest hold time in the moving average: reacts within ~10 releases. */
const HOLD_EWMA_ALPHA = 0.2;

export function initialState(limits: AdmissionLimits, now: number): AdmissionState {
  return { bucket: fullBucket(limits, now), inFlight: 0, queue: [], nextSeq: 0, holdMsEwma: null, creditTokens: 0 };
}

function canAdmitNow(state: AdmissionState, limits: AdmissionLimits): boolean {
  return state.bucket.tokens >= 1 && state.inFlight < limits.maxInFlight;
}

function admitOne(state: AdmissionState): AdmissionState {
  return { ...state, bucket: takeToken(state.bucket), inFlight: state.inFlight + 1 };
}

/**
 * Refills the bucket, drops waiters whose wait has ended, and admits waiters in service order
 * while a token and a slot are free.
 */
export function pump(state: AdmissionState, limits: AdmissionLimits, now: number): PumpResult {
  const { live, expired } = partitionExpired(state.queue, now);
  const bucketLimits = { rate: limits.rate, burst: bucketCapacity(state, limits) };
  let next: AdmissionState = { ...state, bucket: refill(state.bucket, bucketLimits, now), queue: live };
  let grants = 0;
  while (grants < next.queue.length && canAdmitNow(next, limits)) {
    next = admitOne(next);
    grants += 1;
  }
  return { state: { ...next, queue: live.slice(grants) }, granted: live.slice(0, grants), timedOut: expired };
}

/** What the bucket may hold: the burst, less the tokens out in credits. */
export function bucketCapacity(state: Pick<AdmissionState, "creditTokens">, limits: AdmissionLimits): number {
  return Math.max(0, limits.burst - state.creditTokens);
}

/**
 * How long `arrival` may wait in the queue, from `now`. The wait must leave the origin its
 * expected service time (`serviceMs`, the hold-time average) before the deadline: a request
 * admitted with less than that left would only come back as a 504 after using a slot.
 */
export function waitBudgetMs(
  limits: Pick<AdmissionLimits, "maxWaitMs">,
  arrival: Pick<Arrival, "deadline" | "fullBehaviour">,
  now: number,
  serviceMs: number | null = null,
): number {
  const untilDeadline = arrival.deadline - now - (serviceMs ?? 0);
  if (arrival.fullBehaviour === "block") return untilDeadline;
  return Math.min(limits.maxWaitMs, untilDeadline);
}

function shed(
  state: AdmissionState,
  reason: AdmissionShedReason,
  retryAfterMs: number,
  expectedWaitMs: number,
  waitBudget: number,
): ArrivalResult {
  return {
    state,
    outcome: { kind: "shed", reason, retryAfterMs, expectedWaitMs, waitBudgetMs: waitBudget },
    evicted: [],
  };
}

/**
 * Why a request that cannot wait is refused: over its rate (429) when a token is what it lacks,
 * over capacity (503) otherwise. A request whose budget is already spent is refused for that.
 */
function refusalReason(limits: AdmissionLimits, budget: number, tokenWaitMs: number): AdmissionShedReason {
  if (limits.maxQueue === 0) return tokenWaitMs > 0 ? "rate_limited" : "queue_full";
  if (budget <= 0) return "wait_exceeds_deadline";
  return tokenWaitMs > budget ? "rate_limited" : "wait_exceeds_deadline";
}

/** When a request arriving behind the whole queue could expect to get in. */
export function queueDrainMs(state: AdmissionState, limits: AdmissionLimits): number {
  return estimateWait(state.bucket, state.inFlight, state.holdMsEwma, limits, state.queue.length).totalMs;
}

/**
 * Decides one arrival: admit now, queue it, or shed it at once. Run `pump` at the same `now`
 * first so the state is refilled and the queue invariant holds.
 */
export function arrive(state: AdmissionState, limits: AdmissionLimits, arrival: Arrival, now: number): ArrivalResult {
  if (arrival.deadline <= now) {
    // Already late: whatever it would be sent to, the answer would come after the caller gave up.
    return shed(state, "wait_exceeds_deadline", queueDrainMs(state, limits), 0, 0);
  }
  if (state.queue.length === 0 && canAdmitNow(state, limits)) {
    return { state: admitOne(state), outcome: { kind: "admit" }, evicted: [] };
  }
  const budget = waitBudgetMs(limits, arrival, now, state.holdMsEwma);
  const ahead = countAhead(state.queue, arrival.priority);
  const wait = estimateWait(state.bucket, state.inFlight, state.holdMsEwma, limits, ahead);
  if (limits.maxQueue === 0 || budget <= 0 || wait.totalMs > budget) {
    return shed(state, refusalReason(limits, budget, wait.tokenMs), wait.totalMs, wait.totalMs, budget);
  }

  let queue = state.queue;
  const evicted: Waiter[] = [];
  if (queue.length >= limits.maxQueue) {
    const victim = victimForFullQueue(queue, arrival, arrival.fullBehaviour);
    if (!victim) return shed(state, "queue_full", queueDrainMs(state, limits), wait.totalMs, budget);
    queue = removeWaiter(queue, victim.id);
    evicted.push(victim);
  }

  const waiter: Waiter = {
    ...arrival,
    seq: state.nextSeq,
    enqueuedAt: now,
    expiresAt: now + budget,
  };
  queue = enqueue(queue, waiter);
  return {
    state: { ...state, queue, nextSeq: state.nextSeq + 1 },
    outcome: { kind: "queued", waiter, position: ahead + 1, expectedWaitMs: wait.totalMs },
    evicted,
  };
}

/**
 * Frees one slot. `heldMs` (admission to release) feeds the hold-time average that the wait
 * estimate uses; pass null when the hold time says nothing about the origin (a lease reaped
 * because its holder vanished).
 */
export function release(state: AdmissionState, heldMs: number | null): AdmissionState {
  // A clock that stepped back can make a hold look negative; it held for no less than nothing.
  if (heldMs !== null) heldMs = Math.max(0, heldMs);
  const holdMsEwma =
    heldMs === null
      ? state.holdMsEwma
      : state.holdMsEwma === null
        ? heldMs
        : state.holdMsEwma + HOLD_EWMA_ALPHA * (heldMs - state.holdMsEwma);
  return { ...state, inFlight: Math.max(0, state.inFlight - 1), holdMsEwma };
}

/**
 * Gives back the token of a request that was admitted but never sent (the origin stage refused
 * it): the tenant's rate is what it may send to the origin, and this one never got there.
 */
export function refundToken(state: AdmissionState, limits: AdmissionLimits): AdmissionState {
  const tokens = Math.min(bucketCapacity(state, limits), state.bucket.tokens + 1);
  return { ...state, bucket: { ...state.bucket, tokens } };
}

/**
 * When the queue next needs attention without any call arriving: the earliest waiter expiry,
 * or the moment the head gets its token if only a token holds it back. A head held back by
 * slots moves on `release`, not on a timer. null when nothing waits.
 */
export function nextWakeAt(state: AdmissionState, limits: AdmissionLimits): number | null {
  const expiry = earliestExpiry(state.queue);
  if (expiry === null) return null;
  if (state.inFlight >= limits.maxInFlight || state.bucket.tokens >= 1) return expiry;
  const tokenAt = state.bucket.updatedAt + msUntilTokens(state.bucket, limits, 1);
  return Math.min(expiry, tokenAt);
}

/** Carries state over a change of limits: tokens clamped to the new burst, queue trimmed. */
export function applyLimits(
  state: AdmissionState,
  limits: AdmissionLimits,
): { readonly state: AdmissionState; readonly evicted: readonly Waiter[] } {
  const bucket = { ...state.bucket, tokens: Math.min(state.bucket.tokens, bucketCapacity(state, limits)) };
  const kept = state.queue.slice(0, limits.maxQueue);
  return { state: { ...state, bucket, queue: kept }, evicted: state.queue.slice(limits.maxQueue) };
}
