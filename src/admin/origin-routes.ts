import type { Hono } from "hono";
import type { Env } from "../env";
import { type OriginShardStats, originShardName } from "../origin-guard";
import { type OriginConfig, originConfigSchema } from "../origin/origin-config";
import { OriginDirectory } from "../origin/origin-directory";
import { notFound } from "../problem";
import { parseOrThrow, readJson } from "./json-body";

type AdminEnv = { Bindings: Env };

function shard(env: Env, index: number) {
  return env.ORIGIN_GUARD.getByName(originShardName(index));
}

/**
 * Installs `config` on every shard, and turns off shards past its count that an older config
 * had. The shards are the authority and change first; the edge's KV copy follows.
 */
async function installOnShards(env: Env, config: OriginConfig | null, previous: OriginConfig | null): Promise<void> {
  const count = Math.max(config?.shards ?? 0, previous?.shards ?? 0, 1);
  await Promise.all(
    Array.from({ length: count }, (_, index) =>
      config && index < config.shards ? shard(env, index).configure(config, index) : shard(env, index).disable(),
    ),
  );
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

export async function originStats(env: Env) {
  const config = await new OriginDirectory(env.TENANTS).storedConfig();
  if (!config) return { config: null, stats: null };
  const answers = await Promise.all(Array.from({ length: config.shards }, (_, index) => shard(env, index).stats()));
  const shards = answers.flatMap((answer) => (answer.shard ? [answer.shard] : []));
  return { config, stats: shards.length > 0 ? { ...originTotals(shards), shards } : null };
}

export function mountOriginRoutes(admin: Hono<AdminEnv>): void {
  admin.put("/origin", async (c) => {
    const config = parseOrThrow(originConfigSchema, await readJson(c.req.raw), "origin config");
    const directory = new OriginDirectory(c.env.TENANTS);
    await installOnShards(c.env, config, await directory.storedConfig());
    await directory.put(config);
    return c.json({ config });
  });

  admin.get("/origin", async (c) => c.json(await originStats(c.env), 200, { "cache-control": "no-store" }));

  admin.delete("/origin", async (c) => {
    const directory = new OriginDirectory(c.env.TENANTS);
    const previous = await directory.storedConfig();
    if (!previous) throw notFound("the origin stage is not configured");
    await installOnShards(c.env, null, previous);
    await directory.delete();
    return c.body(null, 204);
  });
}
