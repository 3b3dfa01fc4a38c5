import type { Env } from "../env";
import type { OriginShardStats } from "../origin/origin-shard-stats";
import { originShardName } from "../origin/origin-shards";
import type { OriginConfig } from "../origin/origin-config";
import { OriginDirectory } from "../origin/origin-directory";
import { placement } from "../object-placement";

/**
 * The origin stage as a whole, for GET /__guard/origin, the overview and the metrics: each
 * shard's stats, and their totals (each shard holds a share of every limit and counter).
 */
export function shard(env: Env, index: number) {
  return env.ORIGIN_GUARD.getByName(originShardName(index), placement(env));
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** Adds numbers at the same paths of plain objects (shard counters and stats), recursively. */
function addUp<T>(parts: readonly T[]): T {
  const first = parts[0];
  if (typeof first === "number") return sum(parts as readonly number[]) as T;
  if (first === null || typeof first !== "object") return first as T;
  const keys = Object.keys(first);
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = addUp(parts.map((part) => (part as Record<string, unknown>)[key]));
  return out as T;
}

/** The stage as a whole: sums over shards (limits too: each shard holds its share). */
export function originTotals(shards: readonly OriginShardStats[]) {
  const { index: _index, backoffMs: _backoff, latency: _latency, limit, ...rest } = addUp(shards);
  const adaptive = shards.every((s) => s.limit.adaptive === null)
    ? null
    : sum(shards.map((s) => s.limit.adaptive ?? 0));
  const capacity = shards.some((s) => s.limit.capacity !== null) ? sum(shards.map((s) => s.limit.capacity ?? 0)) : null;
  return {
    ...rest,
    limit: { ...limit, adaptive, capacity },
    backoffMs: Math.max(0, ...shards.map((s) => s.backoffMs)),
    latency: shards[0]?.latency ?? null,
  };
}

export type OriginStageStats = ReturnType<typeof originTotals> & { readonly shards: OriginShardStats[] };

/** The stage's config and stats, summed over its shards; nulls when the stage is off. */
export async function originStats(
  env: Env,
): Promise<{ readonly config: OriginConfig | null; readonly stats: OriginStageStats | null }> {
  const config = await new OriginDirectory(env.TENANTS).storedConfig();
  if (!config) return { config: null, stats: null };
  const answers = await Promise.all(Array.from({ length: config.shards }, (_, index) => shard(env, index).stats()));
  const shards = answers.flatMap((answer) => (answer.shard ? [answer.shard] : []));
  return { config, stats: shards.length > 0 ? { ...originTotals(shards), shards } : null };
}
