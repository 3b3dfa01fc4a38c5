/**
 * The lease protocol between an isolate and a tenant's Durable Object (credit-based flow control
 * over the edge-to-object hop). The object is the single writer of the totals; an isolate holds
 * a lease of slots and tokens taken from them, admits on it, and renews it in batches.
 *
 * Every number an isolate reports is cumulative since it started holding (slots returned, tokens
 * spent and returned, decisions counted), and every number the object grants is cumulative too.
 * So a report or an answer that is lost, repeated or late changes nothing twice: the object
 * applies the difference to what it saw last, and the isolate spends at most what it has seen
 * granted, which is never more than the object granted.
 */
import { z } from "zod";
import { RELEASE_OUTCOMES } from "../admission/counters";
import { PRIORITIES } from "../admission/priority";
import { ADMISSION_SHED_REASONS } from "../admission/shed-reason";
import { admissionLimitsSchema, BOUNDS } from "../tenant/tenant-config";

export const LEASE_TIMING = {
  /** An isolate that holds or wants anything renews at least this often. */
  renewEveryMs: 250,
  /** ... and this often while other isolates have demand the object cannot meet. */
  contendedRenewMs: 100,
  /**
   * An isolate admits on its lease for this long after it sent the report that renewed it. It
   * counts from the send, the object from the receipt, so the isolate's window always closes
   * first, whatever the two clocks say.
   */
  ttlMs: 2_000,
  /** With no local demand for this long, an isolate gives everything back and stops renewing. */
  idleReturnMs: 1_000,
  /** Longest the object holds a renewal it can grant nothing to, waiting for capacity to free. */
  longPollMs: 250,
  /** Fewer ms than this between two renewals only when the last one found room it could not use. */
  minGapMs: 20,
  /** A holder is presumed gone this long after its lease and its longest request ran out. */
  graceMs: 5_000,
} as const;

/** Isolates holding one tenant's lease at once; more wait for one to leave or be reclaimed. */
export const MAX_HOLDERS = 256;

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const byPriority = z.strictObject(
  Object.fromEntries(PRIORITIES.map((p) => [p, count])) as Record<(typeof PRIORITIES)[number], typeof count>,
);
const byPriorityBounded = z.strictObject(
  Object.fromEntries(
    PRIORITIES.map((p) => [
      p,
      z
        .number()
        .int()
        .min(0)
        .max(BOUNDS.maxInFlight + BOUNDS.maxQueue),
    ]),
  ) as Record<(typeof PRIORITIES)[number], z.ZodNumber>,
);

/** What an isolate decided on its lease since it started holding it: cumulative, never reset. */
export const leaseTallySchema = z.strictObject({
  arrived: count,
  admitted: byPriority,
  queuedEver: count,
  /** Queued requests whose client went away before a decision: nothing was answered. */
  gone: count.default(0),
  /** Sheds decided without waiting for an object call. */
  shedAtEdge: count,
  shed: z.strictObject(
    Object.fromEntries(ADMISSION_SHED_REASONS.map((r) => [r, byPriority])) as Record<
      (typeof ADMISSION_SHED_REASONS)[number],
      typeof byPriority
    >,
  ),
  released: z.strictObject(
    Object.fromEntries(RELEASE_OUTCOMES.map((o) => [o, count])) as Record<
      (typeof RELEASE_OUTCOMES)[number],
      typeof count
    >,
  ),
});
export type LeaseTally = z.infer<typeof leaseTallySchema>;

export const leaseReportSchema = z.strictObject({
  /** One per isolate and tenant, chosen by the isolate. */
  holder: z.string().regex(/^[0-9a-f-]{36}$/),
  /** Increases with every report of this holder; an older one is answered, not applied. */
  seq: count,
  slotsReturned: count,
  tokensSpent: count,
  tokensReturned: count,
  /** Slots in use now (lingering ones included), by the priority of the request holding each. */
  inUse: byPriorityBounded,
  /** Requests waiting in the isolate's queue, by priority. */
  waiting: byPriorityBounded,
  /** Tokens it expects to spend before its next renewal (waiting plus arrivals at the recent rate). */
  wantTokens: z.number().int().min(0).max(BOUNDS.burst),
  /** Its slots' hold time, moving average (ms); null before the first release. */
  holdMs: z
    .number()
    .min(0)
    .max(BOUNDS.timeoutMs * 2)
    .nullable(),
  /** How long it may wait for an answer that grants something (long poll); 0: answer at once. */
  waitMs: z.number().int().min(0).max(LEASE_TIMING.longPollMs),
  /** The longest deadline budget of this tenant's requests (plus a streamed route's body): how long a slot may be in use. */
  coverMs: z
    .number()
    .int()
    .min(1)
    .max(BOUNDS.timeoutMs + BOUNDS.maxStreamMs),
  /** Returns everything and stops holding: slotsReturned and tokens settled cover all it saw granted. */
  leaving: z.boolean(),
  tally: leaseTallySchema,
  /** Limits carried for objects that have none of their own (anonymous per-IP buckets). */
  limits: admissionLimitsSchema.optional(),
});
export type LeaseReport = z.infer<typeof leaseReportSchema>;

/** The numbers behind the RateLimit fields, the object's view when it answered. */
export interface Quota {
  readonly rate: number;
  readonly burst: number;
  readonly tokens: number;
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly queued: number;
  readonly maxQueue: number;
  /** Until the bucket is full again. */
  readonly msUntilFull: number;
}

export interface LeaseGrant {
  readonly kind: "lease";
  /** Cumulative slots granted to this holder. */
  readonly slotsGranted: number;
  /** Cumulative tokens granted to this holder. */
  readonly tokensGranted: number;
  /** Slots this holder should hold; above it, it returns slots as they free instead of reusing them. */
  readonly targetSlots: number;
  /** Its share of the refill rate (tokens/s), for its own wait estimates. */
  readonly tokenRate: number;
  /** When to renew next, at the latest (ms after sending). */
  readonly renewInMs: number;
  /** Slots no holder has, after this grant: an isolate short of a slot may ask again early. */
  readonly freeSlots: number;
  /** Whole tokens in the bucket, after this grant: an isolate short of a token may ask again early. */
  readonly freeTokens: number;
  /** Waiting across all holders, at or above each priority: for the wait estimate of an isolate without slots. */
  readonly waitingAtOrAbove: Readonly<Record<(typeof PRIORITIES)[number], number>>;
  /** Hold time across holders (ms), moving average; null before any was reported. */
  readonly holdMs: number | null;
  readonly limits: z.infer<typeof admissionLimitsSchema>;
  readonly quota: Quota;
}

export type LeaseAnswer = LeaseGrant | { readonly kind: "unconfigured" };
