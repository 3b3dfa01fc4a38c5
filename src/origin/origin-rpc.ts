import { z } from "zod";
import { PRIORITIES } from "../admission/priority";
import type { Saturation } from "../admission/saturation";
import { type HoldScope, holdScopeSchema } from "./origin-holds";
import { ORIGIN_PARTY, ROUTE_METHOD, ROUTE_PREFIX } from "./origin-party";
import { ORIGIN_SHED_CAUSES, type OriginShedCause, type OriginShedReason } from "./origin-shed";

/** The origin shard's RPC payloads, checked by the object: its state's last line of defence. */
export const acquireRequestSchema = z.strictObject({
  /** The party for fair shares and the adaptive limit (origin-party.ts). */
  tenant: z.string().regex(ORIGIN_PARTY),
  /** The party a 429's hold covers; the tenant when absent. */
  holdParty: z.string().regex(ORIGIN_PARTY).optional(),
  /** Defaults for an isolate of an older version during a rolling deploy. */
  method: z.string().regex(ROUTE_METHOD).default("OTHER"),
  route: z.string().regex(ROUTE_PREFIX).default("/"),
  weight: z.number().positive().max(1_000),
  priority: z.enum(PRIORITIES),
  deadline: z.number().finite(),
  /**
   * A streamed route: its response may run this long past `deadline` (the deadline bounds the
   * time to its headers), so its lease must not expire before.
   */
  streamMs: z.number().int().min(0).max(3_600_000).optional(),
  /** Sheds this isolate decided for the shard from a verdict or a hold, piggybacked. */
  localSheds: z
    .array(
      z.strictObject({
        cause: z.enum(ORIGIN_SHED_CAUSES),
        priority: z.enum(PRIORITIES),
        count: z.number().int().min(1).max(1_000_000),
      }),
    )
    .max(ORIGIN_SHED_CAUSES.length * PRIORITIES.length)
    .optional(),
});

export type AcquireRequest = z.input<typeof acquireRequestSchema>;
export type ParsedAcquireRequest = z.infer<typeof acquireRequestSchema>;

export type AcquireDecision =
  | {
      readonly kind: "admit";
      readonly leaseId: string;
      readonly waitedMs: number;
      /** The shard's effective limit when it admitted; what `x-guard-origin-limit` carries. */
      readonly limit: number;
    }
  | {
      readonly kind: "shed";
      readonly reason: OriginShedReason;
      readonly cause: OriginShedCause;
      readonly retryAfterMs: number;
      readonly waitedMs: number;
      /** For the edge: which priorities the same answer covers, and for how long. */
      readonly saturation: Saturation<OriginShedReason> | null;
      /** The hold it was shed for, when it was: what the edge may go on holding itself. */
      readonly holdScope: HoldScope | null;
    }
  /** The stage is off (never configured, or deleted). */
  | { readonly kind: "disabled" }
  /**
   * This shard was retired by a lower shard count: ask one of the first `shards` instead. An
   * isolate's cached config lags a change by up to 35 s; this keeps it inside the limit meanwhile.
   */
  | { readonly kind: "moved"; readonly shards: number };

export const ORIGIN_RELEASE_OUTCOMES = [
  "completed",
  "cancelled",
  "abandoned",
  "deadline_exceeded",
  "origin_failed",
] as const;

export const originReleaseSchema = z.strictObject({
  /** How the request ended: forwarded and answered, or not. */
  outcome: z.enum(ORIGIN_RELEASE_OUTCOMES),
  /** The origin's status, 0 when none came. */
  status: z.number().int().min(0).max(999),
  /** Time to the origin's response headers; null when none came. */
  latencyMs: z.number().min(0).max(3_600_000).nullable(),
  /** The origin's Retry-After, when it sent one with a 503 or 429. */
  retryAfterMs: z
    .number()
    .min(0)
    .max(365 * 86_400_000)
    .nullable(),
  /** The origin's capacity header value, when configured and present. */
  capacity: z.number().int().min(0).max(1_000_000).nullable(),
  /** The 503 carried the origin's configured whole-origin signal (`globalHoldHeader`). */
  wholeOrigin: z.boolean().default(false),
  /**
   * The client's own `x-request-timeout-ms` set the deadline, shorter than the route's: its
   * deadline abort says nothing of the origin and must not count as a drop.
   */
  clientBudget: z.boolean().default(false),
  /**
   * A streamed route's response: the slot was held for the whole stream, but the origin's
   * service ended at its headers (`latencyMs`), which is what the service-time average takes.
   */
  streamed: z.boolean().default(false),
});

export type OriginRelease = z.infer<typeof originReleaseSchema>;

/** A release that says nothing of the origin: a request never sent, or a report unreadable. */
export function bareRelease(outcome: OriginRelease["outcome"]): OriginRelease {
  return {
    outcome,
    status: 0,
    latencyMs: null,
    retryAfterMs: null,
    capacity: null,
    wholeOrigin: false,
    clientBudget: false,
    streamed: false,
  };
}

/**
 * A release's report, read so that the slot is freed whatever else is wrong with it: an outcome
 * the shard does not know counts as `cancelled`, and feedback that fails its schema (an origin
 * header out of range, say) is dropped rather than refusing the release, which would leave the
 * slot taken until its lease expires.
 */
export function readOriginRelease(raw: unknown): OriginRelease {
  const full = originReleaseSchema.safeParse(raw);
  if (full.success) return full.data;
  const outcome = z.object({ outcome: z.enum(ORIGIN_RELEASE_OUTCOMES) }).safeParse(raw);
  return bareRelease(outcome.success ? outcome.data.outcome : "cancelled");
}

/**
 * A hold another shard learnt: one it holds (`scope`), or a 503 it was told (`unavailable`),
 * which the receiver weighs with its own sightings, so that agreement forms across shards.
 */
export const holdRequestSchema = z.union([
  z.strictObject({ scope: holdScopeSchema, untilMs: z.number().finite() }),
  z.strictObject({
    unavailable: z.strictObject({
      who: z.strictObject({ party: z.string().regex(ORIGIN_PARTY), route: z.string().regex(ROUTE_PREFIX) }),
      voter: z.string().regex(ORIGIN_PARTY),
      wholeOrigin: z.boolean(),
    }),
    untilMs: z.number().finite(),
  }),
]);

export type HoldRequest = z.infer<typeof holdRequestSchema>;

/** An older version's hold call, `hold(tenant | null, untilMs)`, as today's request. */
export function legacyHold(tenant: unknown, untilMs: unknown): unknown {
  return { scope: tenant === null ? { kind: "all" } : { kind: "party", party: tenant }, untilMs };
}
