/**
 * The one place the guard reads the time. Pure modules take `now` as a number; the shells (the
 * Durable Objects, the request path) read it here and pass it on, so a test can hand them a
 * clock of its own and every decision in one call sees the same instant.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
