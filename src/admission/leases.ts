import type { Priority } from "./priority";

/**
 * A lease is an admitted request's hold on one in-flight slot. Leases make slot release
 * independent of the holder behaving: every lease expires, and an expired lease is reclaimed
 * by the object's alarm even if its Worker invocation vanished without releasing.
 */
export interface Lease {
  readonly id: string;
  readonly priority: Priority;
  readonly admittedAt: number;
  /** After this the slot is reclaimed whatever the holder does. */
  readonly expiresAt: number;
  /**
   * Set once the holder has given up (deadline passed) while the origin may still be working:
   * the slot is held until `expiresAt` so in-flight reflects the origin, not the guard.
   */
  readonly lingering: boolean;
}

/**
 * A holder releases at the latest when its fetch is aborted at the deadline; the grace covers a
 * release call that is still on its way. Past it, the holder is presumed gone.
 */
export const LEASE_GRACE_MS = 5_000;

/** Longest a slot lingers after its holder gave up on the origin. */
export const MAX_LINGER_MS = 30_000;
const DEFAULT_LINGER_MS = 1_000;

export function newLease(id: string, priority: Priority, deadline: number, now: number): Lease {
  return { id, priority, admittedAt: now, expiresAt: Math.ceil(deadline + LEASE_GRACE_MS), lingering: false };
}

/**
 * A lease whose holder abandoned the origin at its deadline stays held: the origin is likely
 * still working on it, and sending another request into that slot now would exceed the
 * origin's concurrency. For how long is a guess; the guess is "at least a typical hold time, and
 * at least as long again as it has already run", since a request that overran is usually stuck
 * behind an origin that has slowed down.
 */
export function lingerLease(lease: Lease, holdMsEwma: number | null, now: number): Lease {
  // Whole milliseconds: alarms fire on whole milliseconds, and an alarm that fires just before a
  // fractional expiry reaps nothing (found by the overload lab: slots that never came back).
  return { ...lease, expiresAt: Math.ceil(now + lingerMs(holdMsEwma, now - lease.admittedAt)), lingering: true };
}

/** How long an abandoned request's slot stays held: see lingerLease. */
export function lingerMs(holdMsEwma: number | null, ranMs: number): number {
  return Math.min(MAX_LINGER_MS, Math.max(holdMsEwma ?? DEFAULT_LINGER_MS, Math.max(0, ranMs)));
}

export function expiredLeases<L extends Lease>(leases: Iterable<L>, now: number): L[] {
  const expired: L[] = [];
  for (const lease of leases) if (lease.expiresAt <= now) expired.push(lease);
  return expired;
}

export function earliestLeaseExpiry(leases: Iterable<Lease>): number | null {
  let earliest: number | null = null;
  for (const lease of leases) {
    if (earliest === null || lease.expiresAt < earliest) earliest = lease.expiresAt;
  }
  return earliest;
}
