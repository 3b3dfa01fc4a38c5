/**
 * Where the verifier gets its keys: a fixed set (the `JWKS` secret), or a set fetched from
 * `JWKS_URL` and cached per isolate.
 *
 * The fetched set, and its bounds:
 * - fresh for JWKS_TIMING.maxAgeMs (10 min): no fetch at all while every token names a known kid;
 * - a token naming a kid the set lacks (a key rotation) refetches, but one isolate fetches at
 *   most once per JWKS_TIMING.cooldownMs (30 s) whatever its clients send, so a hostile client
 *   cannot make the guard fetch per request; until then that kid is unknown (401);
 * - staleness bound: when a refetch fails, the last good set is used until it is
 *   JWKS_TIMING.staleIfErrorMs (1 h) old, then the identity is unavailable (FAIL_MODE decides);
 *   a key removed from the published set stops verifying new tokens within maxAgeMs (10 min),
 *   plus the verified-token cache's 60 s (jwt-verifier.ts);
 * - one fetch in flight per URL and isolate; a request that has no usable set meanwhile polls
 *   for it (at most the fetch timeout), never waits on another request's promise;
 * - the body is at most MAX_JWKS_BYTES (64 KiB) and MAX_JWKS_MEMBERS keys, else refused.
 */
import { LruCache } from "../lru-cache";
import { type VerificationKey, parseJwks } from "./jwks";

export const JWKS_TIMING = {
  maxAgeMs: 10 * 60_000,
  cooldownMs: 30_000,
  staleIfErrorMs: 60 * 60_000,
  fetchTimeoutMs: 5_000,
  pollMs: 5,
} as const;
export const MAX_JWKS_BYTES = 64 * 1024;

/** The keys could not be had (no set yet, or only one older than the staleness bound). */
export class JwksUnavailable extends Error {
  override readonly name = "JwksUnavailable";
}

export interface KeySource {
  /** The keys to select from for a token naming `kid` (undefined: it names none). */
  keys(now: number, kid: string | undefined): Promise<readonly VerificationKey[]>;
}

export function fixedKeys(keys: readonly VerificationKey[]): KeySource {
  return { keys: async () => keys };
}

export interface FetchPorts {
  readonly fetch: (url: URL, init: RequestInit) => Promise<Response>;
  readonly pause: (ms: number) => Promise<void>;
  /** The clock for polling only; decisions use the `now` they are given. */
  readonly clock: () => number;
}

interface CachedSet {
  readonly keys: readonly VerificationKey[];
  readonly fetchedAt: number;
}

/** The body as text, refused past `limit` bytes without reading further. */
async function boundedText(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? 0);
  if (declared > limit) throw new Error(`JWKS body of ${declared} bytes is over ${limit}`);
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new Error(`JWKS body is over ${limit} bytes`);
    }
    chunks.push(value);
  }
  const whole = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(whole);
}

export class RemoteJwks implements KeySource {
  private set: CachedSet | null = null;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private fetching = false;

  constructor(
    private readonly url: URL,
    private readonly ports: FetchPorts,
  ) {}

  async keys(now: number, kid: string | undefined): Promise<readonly VerificationKey[]> {
    if (this.satisfies(now, kid)) return this.usable(now);
    if (this.fetching) await this.untilFetched();
    else if (now - this.lastAttemptAt >= JWKS_TIMING.cooldownMs) await this.refetch(now);
    return this.usable(now);
  }

  /** Fresh, and it has the key the token names. */
  private satisfies(now: number, kid: string | undefined): boolean {
    const set = this.set;
    if (!set || now - set.fetchedAt >= JWKS_TIMING.maxAgeMs) return false;
    return kid === undefined || set.keys.some((key) => key.kid === kid);
  }

  private usable(now: number): readonly VerificationKey[] {
    if (this.set && now - this.set.fetchedAt < JWKS_TIMING.staleIfErrorMs) return this.set.keys;
    throw new JwksUnavailable(
      `no JWKS from ${this.url.host} within the last ${JWKS_TIMING.staleIfErrorMs / 60_000} min`,
    );
  }

  private async untilFetched(): Promise<void> {
    const started = this.ports.clock();
    while (this.fetching && this.ports.clock() - started < JWKS_TIMING.fetchTimeoutMs) {
      await this.ports.pause(JWKS_TIMING.pollMs);
    }
  }

  private async refetch(now: number): Promise<void> {
    this.lastAttemptAt = now;
    this.fetching = true;
    try {
      const response = await this.ports.fetch(this.url, {
        headers: { accept: "application/jwk-set+json, application/json" },
        signal: AbortSignal.timeout(JWKS_TIMING.fetchTimeoutMs),
        // Workers has no redirect "error": "manual" hands a 3xx back, refused below like any non-200.
        redirect: "manual",
      });
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new Error(`JWKS answered ${response.status}`);
      }
      const parsed = parseJwks(JSON.parse(await boundedText(response, MAX_JWKS_BYTES)), false);
      if (parsed.kind === "invalid") throw new Error(`JWKS refused: ${parsed.problem}`);
      this.set = { keys: parsed.keys, fetchedAt: now };
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      console.error(`JWKS fetch from ${this.url.host} failed (${why}); the last set serves within its staleness bound`);
    } finally {
      this.fetching = false;
    }
  }
}

/** Per isolate, one cache per URL (a handful at most: one per deployed setting). */
const remoteSets = new LruCache<string, RemoteJwks>(8, Number.POSITIVE_INFINITY);

export function remoteJwks(url: URL, ports: FetchPorts, now: number): RemoteJwks {
  const known = remoteSets.get(url.href, now);
  if (known) return known;
  const created = new RemoteJwks(url, ports);
  remoteSets.set(url.href, created, now);
  return created;
}
