import type { Hono } from "hono";
import type { Env } from "../env";
import { type OriginConfig, originConfigSchema } from "../origin/origin-config";
import { OriginDirectory } from "../origin/origin-directory";
import { notFound } from "../guard-errors";
import { parseOrThrow, readJson } from "./json-body";
import { originStats, shard } from "./origin-stats";

type AdminEnv = { Bindings: Env };

/**
 * Installs `config` on every shard, and on shards past its count that an older config had (they
 * retire: isolates whose cached config still picks them are sent on). Without a config every
 * shard is turned off. The shards are the authority and change first; the edge's KV copy follows.
 */
async function installOnShards(env: Env, config: OriginConfig | null, previous: OriginConfig | null): Promise<void> {
  const count = Math.max(config?.shards ?? 0, previous?.shards ?? 0, 1);
  await Promise.all(
    Array.from({ length: count }, (_, index) =>
      config ? shard(env, index).configure(config, index) : shard(env, index).disable(),
    ),
  );
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
