import { LruCache } from "../lru-cache";
import { type OriginConfig, originConfigSchema } from "./origin-config";

/**
 * Where the edge learns whether the origin stage is on, and how many shards it has, without a
 * round trip: the config in Workers KV, read through a per-isolate cache. The shard objects are
 * the authority (a change applies there at once); this copy only says which shard to ask.
 * Staleness: ORIGIN_CACHE_TTL_MS here plus KV's edge cache (ORIGIN_KV_CACHE_TTL_S, KV's
 * minimum), so a change reaches every isolate within about 35 s; meanwhile a shard past a
 * lowered shard count answers "disabled" and the request passes to the tenant stage's limits only.
 */
export const ORIGIN_CACHE_TTL_MS = 5_000;
export const ORIGIN_KV_CACHE_TTL_S = 30;
const KV_ORIGIN_CONFIG = "origin:config";
const CACHE_KEY = "config";

const cache = new LruCache<string, OriginConfig | null>(1, ORIGIN_CACHE_TTL_MS);
/** The last config read, kept past its TTL for when KV cannot be read. */
let lastKnown: OriginConfig | null = null;

export class OriginDirectory {
  constructor(private readonly kv: KVNamespace) {}

  /** The stage's config as the edge knows it; null when the stage is off. */
  async config(now: number): Promise<OriginConfig | null> {
    const cached = cache.get(CACHE_KEY, now);
    if (cached !== undefined) return cached;
    let raw: unknown;
    try {
      raw = await this.kv.get(KV_ORIGIN_CONFIG, { type: "json", cacheTtl: ORIGIN_KV_CACHE_TTL_S });
    } catch (error) {
      // A failed read must not fail the request, nor turn the stage off: the last config holds.
      console.error("reading the origin stage's config failed; using the last one read", error);
      return lastKnown;
    }
    const parsed = originConfigSchema.safeParse(raw);
    if (!parsed.success && raw !== null)
      console.error("the origin stage's stored config is invalid; stage off", parsed.error.issues);
    const config = parsed.success ? parsed.data : null;
    cache.set(CACHE_KEY, config, now);
    lastKnown = config;
    return config;
  }

  /** Read past every cache: for the admin API, which must see what it wrote. */
  async storedConfig(): Promise<OriginConfig | null> {
    const parsed = originConfigSchema.safeParse(await this.kv.get(KV_ORIGIN_CONFIG, { type: "json" }));
    return parsed.success ? parsed.data : null;
  }

  async put(config: OriginConfig): Promise<void> {
    await this.kv.put(KV_ORIGIN_CONFIG, JSON.stringify(config));
    cache.clear();
  }

  async delete(): Promise<void> {
    await this.kv.delete(KV_ORIGIN_CONFIG);
    cache.clear();
  }
}
