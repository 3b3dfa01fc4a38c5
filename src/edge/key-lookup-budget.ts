/**
 * How many API keys this isolate may look up in KV for one client (an IP, or an IPv6 /64) when
 * the key is in none of its caches: a token bucket per client. A flood of fresh, well-formed
 * keys from one client then costs a few KV reads a second, not one per request; past the budget
 * a key is treated as unknown for that request (not cached as unknown, so a real key still
 * resolves once the client's budget refills). Bounded: the least recently seen client is
 * forgotten past MAX_CLIENTS (it starts again with a full bucket).
 */
import { type BucketLimits, type BucketState, fullBucket, refill, takeToken } from "../admission/token-bucket";
import { LruCache } from "../lru-cache";

export const KEY_LOOKUPS: BucketLimits = { rate: 10, burst: 50 };
const MAX_CLIENTS = 10_000;
/** A bucket untouched this long is full again anyway: forgetting it changes nothing. */
const FORGET_AFTER_MS = (KEY_LOOKUPS.burst / KEY_LOOKUPS.rate) * 1000;

export class KeyLookupBudget {
  private readonly clients = new LruCache<string, BucketState>(MAX_CLIENTS, FORGET_AFTER_MS);

  constructor(private readonly limits: BucketLimits = KEY_LOOKUPS) {}

  /** Takes one lookup for `client` if it has one left. */
  take(client: string, now: number): boolean {
    const bucket = refill(this.clients.get(client, now) ?? fullBucket(this.limits, now), this.limits, now);
    if (bucket.tokens < 1) {
      this.clients.set(client, bucket, now);
      return false;
    }
    this.clients.set(client, takeToken(bucket), now);
    return true;
  }
}
