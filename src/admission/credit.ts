/**
 * Credit leases for hot tenants: tenants whose rate is more than one Durable Object can decide
 * request by request (about a thousand calls a second, and each admitted request costs two:
 * admit and release). With every immediate admission, the object also hands the calling isolate
 * a small credit: tokens AND slots, taken from the bucket and the in-flight count at once. The
 * isolate admits up to that many requests itself, then returns the credit whole.
 *
 * Overshoot, worst case: none. Tokens are drawn before they are spent, so the rate over any
 * window stays within the bucket's; slots are held by the credit, so in-flight stays within
 * maxInFlight; the object reclaims a credit's slots only after the last request it can cover has
 * passed its deadline. What it costs instead: up to `tokens` admissions per isolate bypass the
 * object's priority queue (a credit is granted only when nobody waits), and a credit its isolate
 * loses keeps its slots until reaped (CREDIT_USABLE_MS + CREDIT_MAX_BUDGET_MS + grace).
 * Pure: no clock, no I/O.
 */
import { type AdmissionState, bucketCapacity } from "./admission";
import type { AdmissionLimits } from "./limits";

/** Above this configured rate (tokens/s) a tenant is served through credits. */
export const HOT_TENANT_RATE = 250;
/** How long an isolate may spend a credit after receiving it. */
export const CREDIT_USABLE_MS = 500;
/** A credit covers only requests with at most this deadline budget; longer ones ask the object. */
export const CREDIT_MAX_BUDGET_MS = 10_000;
/** Tokens in one credit, at most; with the share of free slots below, the unit of batching. */
export const MAX_CREDIT_TOKENS = 16;
/** A credit takes at most this share of the free slots, so one isolate cannot hoard them. */
const CREDIT_SHARE_OF_FREE_SLOTS = 0.25;

export interface CreditGrant {
  readonly id: string;
  readonly tokens: number;
  readonly usableForMs: number;
  readonly maxBudgetMs: number;
}

export function isHot(limits: AdmissionLimits): boolean {
  return limits.rate > HOT_TENANT_RATE;
}

/**
 * How many tokens (and slots) a credit may take now: bounded by the batch size, by the tokens
 * the bucket holds, by what the rate refills while the credit is usable, and by a share of the
 * free slots. Zero when anyone waits: waiters come before credits.
 */
export function creditSize(state: AdmissionState, limits: AdmissionLimits): number {
  if (!isHot(limits) || state.queue.length > 0) return 0;
  const freeSlots = limits.maxInFlight - state.inFlight;
  return Math.max(
    0,
    Math.min(
      MAX_CREDIT_TOKENS,
      Math.floor(state.bucket.tokens),
      Math.floor((limits.rate * CREDIT_USABLE_MS) / 1000),
      Math.floor(freeSlots * CREDIT_SHARE_OF_FREE_SLOTS),
    ),
  );
}

/** Draws a credit's tokens and slots from the state; the tokens stay counted against the burst. */
export function drawCredit(state: AdmissionState, tokens: number): AdmissionState {
  return {
    ...state,
    bucket: { ...state.bucket, tokens: state.bucket.tokens - tokens },
    inFlight: state.inFlight + tokens,
    creditTokens: state.creditTokens + tokens,
  };
}

/**
 * Takes a credit back: `freedSlots` of its slots are freed (the rest stay held, lingering, by the
 * caller) and the tokens it did not spend go back into the bucket, never above its capacity.
 */
export function returnCredit(
  state: AdmissionState,
  limits: AdmissionLimits,
  granted: number,
  used: number,
  freedSlots: number = granted,
): AdmissionState {
  const unused = Math.max(0, granted - used);
  const creditTokens = Math.max(0, state.creditTokens - granted);
  return {
    ...state,
    bucket: {
      ...state.bucket,
      tokens: Math.min(bucketCapacity({ creditTokens }, limits), state.bucket.tokens + unused),
    },
    inFlight: Math.max(0, state.inFlight - freedSlots),
    creditTokens,
  };
}

/** When the object may reclaim a credit nobody returned: after every request it covers is over. */
export function creditReclaimAt(grantedAt: number, leaseGraceMs: number): number {
  return grantedAt + CREDIT_USABLE_MS + CREDIT_MAX_BUDGET_MS + leaseGraceMs;
}
