/**
 * How the Worker calls its Durable Objects on the request path. Errors the runtime marks
 * `overloaded` are never retried (a retry only adds to the overload); errors it marks
 * `retryable` get one more try after a short jittered pause, if the request's budget leaves room.
 * The calls retried this way (admit, acquire) are safe to repeat: a grant whose answer was lost
 * is a lease nobody releases, and leases expire.
 */
export const RETRY_PAUSE_MS = { min: 10, spread: 30 } as const;

function flag(error: unknown, name: "overloaded" | "retryable"): boolean {
  return typeof error === "object" && error !== null && (error as Record<string, unknown>)[name] === true;
}

export function isOverloaded(error: unknown): boolean {
  return flag(error, "overloaded");
}

export async function callObject<T>(
  call: () => Promise<T>,
  budgetMs: number,
  random: () => number,
  pause: (ms: number) => Promise<void> = (ms) => scheduler.wait(ms),
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const waitMs = RETRY_PAUSE_MS.min + random() * RETRY_PAUSE_MS.spread;
    if (!flag(error, "retryable") || isOverloaded(error) || waitMs * 2 >= budgetMs) throw error;
    await pause(waitMs);
    return call();
  }
}
