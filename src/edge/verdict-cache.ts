import { type HeldVerdict, MAX_VERDICT_AGE_MS, type Saturation } from "../admission/saturation";
import { LruCache } from "../lru-cache";
import type { Quota } from "../tenant/rpc";

/**
 * Per isolate: the last saturation verdict of each tenant object, with the quota numbers the
 * shed answer carried, so a local shed sends exactly the same signals. Bounded in entries
 * (least recently used evicted) and in age (MAX_VERDICT_AGE_MS).
 */
export interface CachedVerdict {
  readonly verdict: HeldVerdict;
  readonly quota: Quota;
}

const MAX_VERDICTS = 10_000;
const verdicts = new LruCache<string, CachedVerdict>(MAX_VERDICTS, MAX_VERDICT_AGE_MS);

export function cachedVerdict(objectName: string, now: number): CachedVerdict | undefined {
  return verdicts.get(objectName, now);
}

/** Pins the object's relative verdict to this isolate's clock. */
export function holdVerdict(objectName: string, saturation: Saturation, quota: Quota, now: number): void {
  verdicts.set(objectName, { verdict: { ...saturation, receivedAt: now }, quota }, now);
}

/** The object admitted or queued a request: whatever it said before no longer holds. */
export function forgetVerdict(objectName: string): void {
  verdicts.delete(objectName);
}

export function clearVerdicts(): void {
  verdicts.clear();
}
