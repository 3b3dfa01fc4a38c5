/**
 * `Retry-After` in whole seconds. The base is when capacity is expected back; jitter only ever
 * adds to it (a client told to come back before capacity returns would be shed again), spread
 * over half the base or at least a second, so a crowd shed together does not return together.
 * `random` is injected: tests pass a fixed value.
 */
/**
 * A day: far enough for any tenant whose rate is at least one request a day, so a client is not
 * told to come back before its next token; past that the value says "much later" all the same.
 */
export const MAX_RETRY_AFTER_SECONDS = 86_400;

export function retryAfterSeconds(baseMs: number, random: () => number): number {
  const base = Math.max(0, Number.isFinite(baseMs) ? baseMs : 0);
  const spread = Math.max(1000, base / 2);
  const seconds = Math.ceil((base + random() * spread) / 1000);
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, seconds));
}
