import type { AdmissionLimits } from "./limits";
import { type BucketState, msUntilTokens } from "./token-bucket";

export interface WaitEstimate {
  /** Until enough tokens exist for everyone ahead and this request. */
  readonly tokenMs: number;
  /** Until a slot frees for it, from how long admitted requests hold a slot. */
  readonly slotMs: number;
  readonly totalMs: number;
}

/**
 * How long a request with `ahead` waiters in front of it should expect to wait. Slots drain at
 * maxInFlight / holdMs; before any request has been released the hold time is unknown and the
 * slot part is taken as 0, so the estimate is hopeful and the wait timer is the backstop.
 */
export function estimateWait(
  bucket: BucketState,
  inFlight: number,
  holdMsEwma: number | null,
  limits: AdmissionLimits,
  ahead: number,
): WaitEstimate {
  const needed = ahead + 1;
  const tokenMs = msUntilTokens(bucket, limits, needed);
  const free = Math.max(0, limits.maxInFlight - inFlight);
  const slotMs = needed <= free ? 0 : Math.ceil(((needed - free) * (holdMsEwma ?? 0)) / limits.maxInFlight);
  return { tokenMs, slotMs, totalMs: Math.max(tokenMs, slotMs) };
}
