import type { Priority } from "./priority";

/**
 * What a queued request does when the wait queue is at its bound.
 * - `evict-lowest`: a higher-priority arrival displaces the lowest-priority, newest waiter;
 *   an arrival not higher than anything queued is shed.
 * - `shed-newest`: the arrival is shed; waiters keep their places.
 * - `shed-oldest`: the oldest waiter of the lowest class at or below the arrival's is shed to
 *   make room (it is the likeliest to miss its deadline anyway).
 * - `block`: the request may wait for its whole deadline budget instead of `maxWaitMs`; the
 *   queue bound still holds, so at the bound it is shed like `shed-newest`.
 */
export const FULL_BEHAVIOURS = ["evict-lowest", "shed-newest", "shed-oldest", "block"] as const;
export type FullBehaviour = (typeof FULL_BEHAVIOURS)[number];

/** One tenant's admission limits, already validated (see src/tenant-config.ts). */
export interface AdmissionLimits {
  /** Token refill, tokens per second. */
  readonly rate: number;
  /** Bucket capacity in tokens. */
  readonly burst: number;
  /** Requests admitted and not yet released. */
  readonly maxInFlight: number;
  /** Waiters held at once; 0 disables queueing. */
  readonly maxQueue: number;
  /** Longest a request waits in the queue, unless its route blocks. */
  readonly maxWaitMs: number;
}

/** A request asking for admission, as the core sees it. */
export interface Arrival {
  readonly id: string;
  readonly priority: Priority;
  /** Absolute deadline, epoch ms. */
  readonly deadline: number;
  readonly fullBehaviour: FullBehaviour;
}
