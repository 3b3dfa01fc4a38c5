/**
 * The conservative local limiter behind FAIL_MODE=open: when a Durable Object cannot be asked,
 * this isolate forwards at most `max` requests at once on its own authority, and sheds the rest
 * as if failing closed. Per isolate, so the origin may see up to max times the number of
 * isolates; keep it small.
 */
let inFlight = 0;

/** A slot of the gate, or null when it is full. Call the returned function exactly once. */
export function enterFailOpen(max: number): (() => void) | null {
  if (inFlight >= max) return null;
  inFlight += 1;
  let left = false;
  return () => {
    if (left) return;
    left = true;
    inFlight -= 1;
  };
}
