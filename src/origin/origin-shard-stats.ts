/**
 * What one origin shard shows in `GET /__guard/origin` (summed over shards in admin/origin-stats.ts),
 * built from its state as of `now`. Pure.
 */
import { type Priority, countByPriority } from "../admission/priority";
import { type OriginState, effectiveLimit } from "./origin-admission";
import type { OriginLimits } from "./origin-config";
import type { OriginCounters } from "./origin-counters";
import { partiesHeld, routesHeld } from "./origin-holds";
import type { OriginLease } from "./origin-store";

export interface OriginShardStats {
  readonly index: number;
  readonly limit: {
    readonly ceiling: number;
    readonly floor: number;
    /** The adaptive estimate (a real number), null when adaptive is off. */
    readonly adaptive: number | null;
    /** The origin's capacity grant in force (this shard's part), null when none. */
    readonly capacity: number | null;
    readonly effective: number;
  };
  readonly inFlight: number;
  readonly inFlightByPriority: Record<Priority, number>;
  readonly lingering: number;
  readonly queued: number;
  readonly queuedByPriority: Record<Priority, number>;
  /** Left of an origin-wide hold (503 + Retry-After), ms. */
  readonly backoffMs: number;
  /** Parties held back on every route by the origin's 429 + Retry-After now. */
  readonly tenantsHeld: number;
  /** Route classes held back for everyone by 503s + Retry-After that several parties got. */
  readonly routesHeld: number;
  readonly latency: {
    /** The last window's latency over the parties' own baselines (lower median over parties). */
    readonly ratio: number | null;
    readonly lastMs: number | null;
    readonly serviceMs: number | null;
    /** Per party and route class baselines learnt (bounded). */
    readonly routeBaselines: number;
  };
  readonly counters: OriginCounters;
}

export function shardStats(
  core: OriginState,
  limits: OriginLimits,
  index: number,
  leases: Iterable<OriginLease>,
  counters: OriginCounters,
  now: number,
): OriginShardStats {
  const queuedByPriority = countByPriority();
  for (const waiter of core.queue) queuedByPriority[waiter.priority] += 1;
  let lingering = 0;
  for (const lease of leases) if (lease.lingering) lingering += 1;
  return {
    index,
    limit: {
      ceiling: limits.ceiling,
      floor: limits.floor,
      adaptive: limits.adaptive ? Math.round(core.adaptive.limit * 100) / 100 : null,
      capacity: core.capacity && core.capacity.until > now ? core.capacity.limit : null,
      effective: effectiveLimit(core, limits, now),
    },
    inFlight: core.inFlight,
    inFlightByPriority: { ...core.inFlightByPriority },
    lingering,
    queued: core.queue.length,
    queuedByPriority,
    backoffMs: Math.max(0, core.holds.allUntil - now),
    tenantsHeld: partiesHeld(core.holds, now),
    routesHeld: routesHeld(core.holds, now),
    latency: {
      ratio: core.adaptive.lastRatio,
      lastMs: core.adaptive.lastLatencyMs,
      serviceMs: core.serviceMsEwma,
      routeBaselines: Object.keys(core.adaptive.evidence.baselines).length,
    },
    counters,
  };
}
