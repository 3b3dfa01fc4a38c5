import type { Quota } from "./tenant/rpc";

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

/**
 * `r` is what is left now; `t` is the effective window in seconds: until the bucket is full
 * again, or on a shed the `Retry-After` value, which the draft says must not end before `t`.
 */
export function rateLimitField(quota: Quota, retryAfterSeconds: number | null): string {
  const tokens = retryAfterSeconds === null ? Math.max(0, Math.floor(quota.tokens)) : 0;
  const window = retryAfterSeconds ?? Math.max(0, Math.ceil(quota.msUntilFull / 1000));
  const slots = Math.max(0, quota.maxInFlight - quota.inFlight);
  return `"${RATE_POLICY}";r=${tokens};t=${window}, "${CONCURRENCY_POLICY}";r=${slots}`;
}

export function setRateLimitFields(headers: Headers, quota: Quota, retryAfterSeconds: number | null): void {
  // Appended, not set: an origin's own RateLimit fields are a list this one extends.
  headers.append("RateLimit-Policy", rateLimitPolicyField(quota));
  headers.append("RateLimit", rateLimitField(quota, retryAfterSeconds));
}
