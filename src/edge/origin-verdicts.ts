import type { HeldVerdict, Saturation } from "../admission/saturation";
import { MAX_VERDICT_AGE_MS } from "../admission/saturation";
import { LruCache } from "../lru-cache";
import type { OriginShedReason } from "../origin/origin-shed";

/**
 * Per isolate: what the origin stage last said that the edge may repeat on its own, so that a
 * flood the origin cannot take is shed without a round trip. Three kinds of key:
 * - the whole origin: a hold the origin asked for (503 + Retry-After);
 * - one tenant: a hold of its traffic (429 + Retry-After);
 * - one tenant's saturation: the stage was full for its class. Kept per tenant, so one tenant's
 *   flood never makes the edge refuse another tenant, whose fair share may still be free.
 * Bounded in entries (least recently used evicted) and in age (MAX_VERDICT_AGE_MS).
 */
type OriginVerdict = HeldVerdict<OriginShedReason>;

const MAX_ORIGIN_VERDICTS = 10_000;
const verdicts = new LruCache<string, OriginVerdict>(MAX_ORIGIN_VERDICTS, MAX_VERDICT_AGE_MS);

const WHOLE_ORIGIN = "origin";
const heldTenant = (tenant: string) => `hold:${tenant}`;
const saturatedFor = (tenant: string) => `full:${tenant}`;

/** The verdicts that apply to a request of `tenant`, most general first. */
export function originVerdictsFor(tenant: string, now: number): OriginVerdict[] {
  const found: OriginVerdict[] = [];
  for (const key of [WHOLE_ORIGIN, heldTenant(tenant), saturatedFor(tenant)]) {
    const verdict = verdicts.get(key, now);
    if (verdict) found.push(verdict);
  }
  return found;
}

/** Pins a verdict to this isolate's clock under the key its reason calls for. */
export function holdOriginVerdict(tenant: string, saturation: Saturation<OriginShedReason>, now: number): void {
  const key =
    saturation.reason === "origin_backoff"
      ? WHOLE_ORIGIN
      : saturation.reason === "origin_rate_limited"
        ? heldTenant(tenant)
        : saturatedFor(tenant);
  verdicts.set(key, { ...saturation, receivedAt: now }, now);
}

/** The stage admitted this tenant at once: its saturation verdict no longer holds. */
export function forgetOriginSaturation(tenant: string): void {
  verdicts.delete(saturatedFor(tenant));
}

export function clearOriginVerdicts(): void {
  verdicts.clear();
}
