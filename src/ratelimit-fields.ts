import type { Quota } from "./lease/lease-protocol";

/**
 * `RateLimit-Policy` and `RateLimit` in the syntax of draft-ietf-httpapi-ratelimit-headers-11:
 * Structured Field Lists of policy items. The guard announces two policies of its own, prefixed
 * so they never collide with an origin's: the token bucket and the in-flight limit.
 * Token bucket as a quota: `q` is the burst and `w` the time the bucket takes to fill from
 * empty, so a client that spends `q` per `w` stays within the rate.
 */
export const RATE_POLICY = "guard-rate";
export const CONCURRENCY_POLICY = "guard-concurrency";

export function rateLimitPolicyField(quota: Quota): string {
  const window = Math.max(1, Math.ceil(quota.burst / quota.rate));
  return (
    `"${RATE_POLICY}";q=${quota.burst};w=${window}, ` +
    `"${CONCURRENCY_POLICY}";q=${quota.maxInFlight};qu="concurrent-requests"`
  );
}

/** A shed answer's view of the policies: which were violated, and when to come back. */
export interface Violation {
  readonly policies: readonly string[];
  readonly retryAfterSeconds: number;
}

/**
 * `r` is what is left now; `t` is the effective window in seconds, until the bucket is full
 * again. A policy a shed violated reads `r=0` with `t` equal to `Retry-After`, which the draft
 * says must not end before `t`; the other policy keeps its true values.
 */
export function rateLimitField(quota: Quota, violation: Violation | null): string {
  // The Retry-After of a violated policy, or null when this policy was not violated.
  const violatedUntil = (policy: string) => (violation?.policies.includes(policy) ? violation.retryAfterSeconds : null);
  const rateUntil = violatedUntil(RATE_POLICY);
  const slotsUntil = violatedUntil(CONCURRENCY_POLICY);
  const tokens = rateUntil === null ? Math.max(0, Math.floor(quota.tokens)) : 0;
  const window = rateUntil ?? Math.max(0, Math.ceil(quota.msUntilFull / 1000));
  const slots = slotsUntil === null ? Math.max(0, quota.maxInFlight - quota.inFlight) : 0;
  const slotWindow = slotsUntil === null ? "" : `;t=${slotsUntil}`;
  return `"${RATE_POLICY}";r=${tokens};t=${window}, "${CONCURRENCY_POLICY}";r=${slots}${slotWindow}`;
}

export function setRateLimitFields(headers: Headers, quota: Quota, violation: Violation | null): void {
  // Appended, not set: an origin's own RateLimit fields are a list this one extends.
  headers.append("RateLimit-Policy", rateLimitPolicyField(quota));
  headers.append("RateLimit", rateLimitField(quota, violation));
}
