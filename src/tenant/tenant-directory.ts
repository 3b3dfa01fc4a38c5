import { z } from "zod";
import { LruCache } from "../lru-cache";
import { mayBeApiKey } from "./api-key-format";
import { type RouteMatcher, compileRoutes } from "./route-rules";
import { type TenantConfig, tenantConfigSchema } from "./tenant-config";

/**
 * Where the edge finds a tenant before it knows which Durable Object to ask: API key hash ->
 * tenant, and tenant -> routing config, in Workers KV, read through a small per-isolate cache.
 * The Durable Object stays the authority on limits (changes apply there at once); this copy
 * only classifies requests.
 *
 * Staleness bound: an isolate trusts a cached entry for EDGE_CACHE_TTL_MS and KV's own edge
 * cache holds a read for KV_CACHE_TTL_S, so a deleted key or changed route rule takes effect
 * everywhere within 90 s (plus KV's write propagation, normally well under a minute).
 */
export const EDGE_CACHE_TTL_MS = 30_000;
export const KV_CACHE_TTL_S = 60;
/**
 * Known and unknown keys are cached apart, so a flood of unknown keys churns only its own cache
 * and never evicts a real key. Keys are at most API_KEY_MAX_LENGTH (256) characters (anything
 * else is never looked up nor cached), so both caches together hold under 8 MiB.
 */
const MAX_CACHED_KEYS = 10_000;
const MAX_CACHED_UNKNOWN_KEYS = 10_000;
const MAX_CACHED_TENANTS = 1_000;

export interface KeyEntry {
  readonly tenant: string;
  readonly id: string;
  /**
   * Epoch ms after which the key is refused. Carried in the entry, so an isolate's cached copy
   * expires the key at the exact millisecond, never up to EDGE_CACHE_TTL_MS late.
   */
  readonly expiresAt?: number;
}

export interface EdgeTenant {
  readonly name: string;
  readonly config: TenantConfig;
  readonly classify: RouteMatcher;
}

const keyEntrySchema = z.object({ tenant: z.string(), id: z.string(), expiresAt: z.number().optional() });

export const kvKeyName = (hash: string) => `key:${hash}`;
export const kvTenantName = (tenant: string) => `tenant:${tenant}`;
export const KV_TENANT_PREFIX = "tenant:";

export async function hashKey(apiKey: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(apiKey));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Cached in module scope: it lives as long as the isolate, bounded by the LRU limits. */
const keyCache = new LruCache<string, KeyEntry>(MAX_CACHED_KEYS, EDGE_CACHE_TTL_MS);
const unknownKeyCache = new LruCache<string, true>(MAX_CACHED_UNKNOWN_KEYS, EDGE_CACHE_TTL_MS);
const tenantCache = new LruCache<string, EdgeTenant | null>(MAX_CACHED_TENANTS, EDGE_CACHE_TTL_MS);

/** KV could not be read: the request takes the guard's fail mode, never a bare 500. */
export class DirectoryUnavailable extends Error {
  override readonly name = "DirectoryUnavailable";
}

async function kvJson(kv: KVNamespace, name: string): Promise<unknown> {
  try {
    return await kv.get(name, { type: "json", cacheTtl: KV_CACHE_TTL_S });
  } catch (error) {
    throw new DirectoryUnavailable(`reading ${name.split(":")[0]} from KV failed`, { cause: error });
  }
}

export class TenantDirectory {
  constructor(private readonly kv: KVNamespace) {}

  /**
   * The tenant an API key belongs to, or null. A key no registered key can look like is unknown
   * at once; one in neither cache is looked up only if `mayLookUp()` allows (the client's lookup
   * budget), and unknown keys are cached too, so a flood of bad keys stays off KV.
   */
  async tenantForKey(apiKey: string, now: number, mayLookUp: () => boolean = () => true): Promise<KeyEntry | null> {
    if (!mayBeApiKey(apiKey)) return null;
    const cached = keyCache.get(apiKey, now);
    if (cached !== undefined) return cached;
    if (unknownKeyCache.get(apiKey, now)) return null;
    if (!mayLookUp()) return null;
    const raw = await kvJson(this.kv, kvKeyName(await hashKey(apiKey)));
    const parsed = keyEntrySchema.safeParse(raw);
    if (!parsed.success) {
      unknownKeyCache.set(apiKey, true, now);
      return null;
    }
    keyCache.set(apiKey, parsed.data, now);
    return parsed.data;
  }

  async tenant(name: string, now: number): Promise<EdgeTenant | null> {
    const cached = tenantCache.get(name, now);
    if (cached !== undefined) return cached;
    const raw = await kvJson(this.kv, kvTenantName(name));
    const parsed = tenantConfigSchema.safeParse(raw);
    const tenant = parsed.success ? { name, config: parsed.data, classify: compileRoutes(parsed.data) } : null;
    tenantCache.set(name, tenant, now);
    return tenant;
  }

  async putTenant(name: string, config: TenantConfig): Promise<void> {
    await this.kv.put(kvTenantName(name), JSON.stringify(config));
    tenantCache.delete(name);
  }

  async deleteTenant(name: string): Promise<void> {
    await this.kv.delete(kvTenantName(name));
    tenantCache.delete(name);
  }

  /** Drops this isolate's cached view of a key and its tenant (the object said it is gone). */
  forget(apiKey: string | null, tenant: string): void {
    if (apiKey) {
      keyCache.delete(apiKey);
      unknownKeyCache.delete(apiKey);
    }
    tenantCache.delete(tenant);
  }

  async putKey(hash: string, entry: KeyEntry): Promise<void> {
    await this.kv.put(kvKeyName(hash), JSON.stringify(entry));
  }

  async getKey(hash: string): Promise<KeyEntry | null> {
    const parsed = keyEntrySchema.safeParse(await this.kv.get(kvKeyName(hash), { type: "json" }));
    return parsed.success ? parsed.data : null;
  }

  /** Removes a key; this isolate forgets it at once, others within the staleness bound. */
  async deleteKey(hash: string): Promise<void> {
    await this.kv.delete(kvKeyName(hash));
    forgetKeys();
  }

  async listTenants(cursor: string | undefined, limit: number) {
    const page = await this.kv.list({ prefix: KV_TENANT_PREFIX, limit, ...(cursor ? { cursor } : {}) });
    return {
      tenants: page.keys.map((key) => key.name.slice(KV_TENANT_PREFIX.length)),
      cursor: page.list_complete ? null : page.cursor,
    };
  }
}

/**
 * This isolate forgets every key it resolved or found unknown: called where a key was written
 * or removed by its registry object (another invocation, whose caches are not this one's).
 */
export function forgetKeys(): void {
  keyCache.clear();
  unknownKeyCache.clear();
}

/** For tests: forget everything this isolate cached. */
export function clearEdgeCaches(): void {
  keyCache.clear();
  tenantCache.clear();
}
