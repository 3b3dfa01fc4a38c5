import type { HeldVerdict, Saturation } from "../admission/saturation";
import { MAX_VERDICT_AGE_MS } from "../admission/saturation";
import { LruCache } from "../lru-cache";
import { type HoldScope, type HoldSubject, holdKey, scopesOf } from "../origin/origin-holds";
import type { OriginShedReason } from "../origin/origin-shed";

/**
 * Per isolate: what the origin stage last said that the edge may repeat on its own, so that a
 * flood the origin cannot take is shed without a round trip. Two kinds of key:
 * - a hold the origin asked for, under its scope (origin-holds.ts): the whole origin, a route
 *   class, one party on a route class (503 + Retry-After), one party (429 + Retry-After);
 * - one party's saturation: the stage was full for its class. Kept per party, so one party's
 *   flood never makes the edge refuse another, whose fair share may still be free.
 * Bounded in entries (least recently used evicted) and in age (MAX_VERDICT_AGE_MS).
 */
type OriginVerdict = HeldVerdict<OriginShedReason>;

const MAX_ORIGIN_VERDICTS = 10_000;
const verdicts = new LruCache<string, OriginVerdict>(MAX_ORIGIN_VERDICTS, MAX_VERDICT_AGE_MS);

/** Whom a verdict may cover: the fairness party, and the party and route a hold is scoped by. */
export interface VerdictSubject {
  readonly party: string;
  readonly hold: HoldSubject;
}

const heldKey = (scope: HoldScope) => (scope.kind === "all" ? "hold:origin" : `hold:${holdKey(scope)}`);
const saturatedFor = (party: string) => `full:${party}`;

/** The verdicts that apply to a request of `who`, most general first. */
export function originVerdictsFor(who: VerdictSubject, now: number): OriginVerdict[] {
  const found: OriginVerdict[] = [];
  for (const key of [...scopesOf(who.hold).map(heldKey), saturatedFor(who.party)]) {
    const verdict = verdicts.get(key, now);
    if (verdict) found.push(verdict);
  }
  return found;
}

/** Pins a hold to this isolate's clock under its scope. */
export function holdOriginVerdict(scope: HoldScope, saturation: Saturation<OriginShedReason>, now: number): void {
  verdicts.set(heldKey(scope), { ...saturation, receivedAt: now }, now);
}

/** Pins a saturation verdict for `party` to this isolate's clock. */
export function holdSaturationVerdict(party: string, saturation: Saturation<OriginShedReason>, now: number): void {
  verdicts.set(saturatedFor(party), { ...saturation, receivedAt: now }, now);
}

/** The stage admitted this party at once: its saturation verdict no longer holds. */
export function forgetOriginSaturation(party: string): void {
  verdicts.delete(saturatedFor(party));
}

export function clearOriginVerdicts(): void {
  verdicts.clear();
}
