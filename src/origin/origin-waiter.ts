import type { Priority } from "../admission/priority";

/** A request waiting for an origin slot, as the origin stage's core sees it. */
export interface OriginWaiter {
  readonly id: string;
  readonly tenant: string;
  /** The tenant's share weight (tenant config `weight`). */
  readonly weight: number;
  readonly priority: Priority;
  /** Absolute deadline, epoch ms. */
  readonly deadline: number;
  /** Arrival order: FIFO among equals. */
  readonly seq: number;
  readonly enqueuedAt: number;
  /** When it stops waiting: min(enqueuedAt + wait budget, deadline). */
  readonly expiresAt: number;
}

export type OriginArrival = Pick<OriginWaiter, "id" | "tenant" | "weight" | "priority" | "deadline">;
