import { z } from "zod";
import { PRIORITIES, type Priority } from "../admission/priority";

/**
 * The origin stage's settings, set with `PUT /__guard/origin`. One config for the whole origin;
 * each shard object enforces its share of the numbers (see `shardShare`).
 */
export const ORIGIN_BOUNDS = {
  maxInFlight: 10_000,
  maxQueue: 1_000,
  maxWaitMs: 60_000,
  capacityTtlMs: 600_000,
  maxBackoffMs: 3_600_000,
  /** Each shard is one Durable Object (about 1 000 calls/s each); 32 covers ~30 000 admissions/s. */
  shards: 32,
} as const;

/**
 * Share of the effective limit each class may fill. Stripe keeps ~20% for critical traffic; the
 * default keeps 40% out of reach of `low` and 10% for `critical` alone.
 */
export const DEFAULT_RESERVATIONS: {
  readonly low: number;
  readonly normal: number;
  readonly high: number;
  readonly critical: 1;
} = {
  low: 0.6,
  normal: 0.8,
  high: 0.9,
  critical: 1,
};

const share = z.number().min(0, "must be between 0 and 1").max(1, "must be between 0 and 1");

const reservationsSchema = z
  .strictObject({
    low: share,
    normal: share,
    high: share,
    critical: z.literal(1, { error: "must be 1: critical traffic may always use the whole limit" }),
  })
  .superRefine((shares, ctx) => {
    for (let i = 1; i < PRIORITIES.length; i += 1) {
      const lower = PRIORITIES[i - 1] as Priority;
      const higher = PRIORITIES[i] as Priority;
      if (shares[higher] < shares[lower]) {
        ctx.addIssue({
          code: "custom",
          path: [higher],
          message: `must be at least the share of '${lower}' (${shares[lower]}): a higher class never gets less`,
          input: shares[higher],
        });
      }
    }
  });

/** HTTP field-name token, lower-cased. */
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, "must be an HTTP header name (1 to 64 token characters)")
  .transform((name) => name.toLowerCase());

export const originConfigSchema = z
  .strictObject({
    /** The ceiling: the adaptive limit never goes above it (and it is the limit when adaptive is off). */
    maxInFlight: z.number().int().min(1).max(ORIGIN_BOUNDS.maxInFlight),
    /** The floor of the adaptive limit. */
    minInFlight: z.number().int().min(1).max(ORIGIN_BOUNDS.maxInFlight).default(1),
    maxQueue: z.number().int().min(0).max(ORIGIN_BOUNDS.maxQueue).default(64),
    maxWaitMs: z.number().int().min(0).max(ORIGIN_BOUNDS.maxWaitMs).default(1_000),
    reservations: reservationsSchema.default({ ...DEFAULT_RESERVATIONS }),
    adaptive: z.boolean().default(true),
    /** Latency above its baseline, as a ratio, that the adaptive limit accepts before backing off. */
    latencyTolerance: z.number().min(1).max(10).default(1.5),
    /** Response header whose integer value caps the requests in flight to the origin. */
    capacityHeader: headerName.nullable().default(null),
    capacityTtlMs: z.number().int().min(100).max(ORIGIN_BOUNDS.capacityTtlMs).default(10_000),
    /**
     * Response header by which the origin says a 503 is for the whole origin (any value): only
     * then does one answer hold every route and party. Without it, a 503 + Retry-After holds its
     * party on its route, and wider holds need several parties' answers (origin-holds.ts).
     */
    globalHoldHeader: headerName.nullable().default(null),
    /** An origin's Retry-After holds traffic back at most this long. */
    maxBackoffMs: z.number().int().min(1_000).max(ORIGIN_BOUNDS.maxBackoffMs).default(30_000),
    shards: z.number().int().min(1).max(ORIGIN_BOUNDS.shards).default(1),
  })
  .superRefine((config, ctx) => {
    if (config.minInFlight > config.maxInFlight) {
      ctx.addIssue({
        code: "custom",
        path: ["minInFlight"],
        message: `must not exceed maxInFlight (${config.maxInFlight})`,
        input: config.minInFlight,
      });
    }
    if (config.shards > config.minInFlight) {
      ctx.addIssue({
        code: "custom",
        path: ["shards"],
        message: `must not exceed minInFlight (${config.minInFlight}): every shard needs a slot of its own at the floor`,
        input: config.shards,
      });
    }
  });

export type OriginConfig = z.infer<typeof originConfigSchema>;

/**
 * Shard `index`'s part of a total: the total split as evenly as whole numbers allow, the
 * remainder going to the first shards. The parts add up to the total exactly, so the shards
 * together never admit more than the whole limit.
 */
export function shardShare(total: number, index: number, shards: number): number {
  const base = Math.floor(total / shards);
  return base + (index < total % shards ? 1 : 0);
}

/** What one shard enforces: its share of the config's totals. */
export interface OriginLimits {
  readonly ceiling: number;
  readonly floor: number;
  readonly maxQueue: number;
  readonly maxWaitMs: number;
  readonly reservations: Readonly<Record<Priority, number>>;
  readonly adaptive: boolean;
  readonly latencyTolerance: number;
  readonly capacityTtlMs: number;
  readonly maxBackoffMs: number;
}

export function shardLimits(config: OriginConfig, index: number): OriginLimits {
  const part = (total: number) => shardShare(total, index, config.shards);
  return {
    ceiling: part(config.maxInFlight),
    floor: Math.max(1, part(config.minInFlight)),
    maxQueue: part(config.maxQueue),
    maxWaitMs: config.maxWaitMs,
    reservations: config.reservations,
    adaptive: config.adaptive,
    latencyTolerance: config.latencyTolerance,
    capacityTtlMs: config.capacityTtlMs,
    maxBackoffMs: config.maxBackoffMs,
  };
}

/**
 * How many requests of `priority` may be in flight under `limit`. Critical traffic may fill the
 * whole limit; a class with a share above 0 always gets at least one slot of a non-zero limit.
 */
export function classCap(limit: number, reservations: Readonly<Record<Priority, number>>, priority: Priority): number {
  const share = reservations[priority];
  if (limit <= 0 || share <= 0) return 0;
  return Math.min(limit, Math.max(1, Math.floor(limit * share + 1e-9)));
}
