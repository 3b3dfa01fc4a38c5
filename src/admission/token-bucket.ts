/**
 * Token bucket over plain values. No `this`, no I/O, no clock: `now` (epoch ms) is passed in,
 * so refill, remaining and reset times are computed from one reading of the clock.
 */
export interface BucketState {
  readonly tokens: number;
  readonly updatedAt: number;
}

export interface BucketLimits {
  readonly rate: number;
  readonly burst: number;
}

export function fullBucket(limits: BucketLimits, now: number): BucketState {
  return { tokens: limits.burst, updatedAt: now };
}

/**
 * Tokens accrued since the last update, capped at `burst`. A clock that went backwards (a new
 * isolate on another machine) adds nothing rather than removing tokens.
 */
export function refill(bucket: BucketState, limits: BucketLimits, now: number): BucketState {
  const elapsedMs = Math.max(0, now - bucket.updatedAt);
  const tokens = Math.min(limits.burst, bucket.tokens + (elapsedMs * limits.rate) / 1000);
  return { tokens, updatedAt: Math.max(now, bucket.updatedAt) };
}

/** Takes one token; the caller has checked `tokens >= 1` on a refilled bucket. */
export function takeToken(bucket: BucketState): BucketState {
  return { tokens: Math.max(0, bucket.tokens - 1), updatedAt: bucket.updatedAt };
}

/** Milliseconds until `count` whole tokens are available, on a refilled bucket. */
export function msUntilTokens(bucket: BucketState, limits: BucketLimits, count: number): number {
  const missing = count - bucket.tokens;
  if (missing <= 0) return 0;
  return Math.ceil((missing * 1000) / limits.rate);
}

/** Milliseconds until the bucket is full again, on a refilled bucket. */
export function msUntilFull(bucket: BucketState, limits: BucketLimits): number {
  return msUntilTokens(bucket, limits, limits.burst);
}
