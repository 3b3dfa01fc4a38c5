import type { Priority } from "../admission/priority";

/** A request waiting for an origin slot, as the origin stage's core sees it. */
export interface OriginWaiter {
  readonly id: string;
  /** The party it counts against for fair shares (origin-party.ts). */
  readonly tenant: string;
  /** The party a 429's hold covers: the tenant, or an anonymous client's own bucket. */
  readonly holdParty: string;
  readonly method: string;
  /** Its route class prefix (origin-party.ts): what a 503's hold covers. */
  readonly route: string;
  /** The tenant's share weight (tenant config `weight`). */
  readonly weight: number;
  readonly priority: Priority;
  /** Absolute deadline, epoch ms. */
  readonly deadline: number;
  /** A streamed route: how long its response may run past the deadline (its lease covers it). */
  readonly streamMs?: number;
  /** Arrival order: FIFO among equals. */
  readonly seq: number;
  readonly enqueuedAt: number;
  /** When it stops waiting: min(enqueuedAt + wait budget, deadline). */
  readonly expiresAt: number;
}

export type OriginArrival = Pick<
  OriginWaiter,
  "id" | "tenant" | "holdParty" | "method" | "route" | "weight" | "priority" | "deadline" | "streamMs"
>;
