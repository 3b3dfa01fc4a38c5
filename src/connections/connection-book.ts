/**
 * A tenant's open WebSocket connections, as the tenant object counts them: pure functions over
 * plain values, `now` (the object's epoch ms) passed in. Counted per holder (one isolate), not
 * per socket, so the record stays small whatever the limit: at most MAX_CONNECTION_HOLDERS rows.
 *
 * Invariants (test/unit/connection-book.test.ts):
 * - an open is granted only while the total is below the limit, so the total never exceeds it
 *   (a lowered limit refuses new opens until enough close);
 * - a holder that stops renewing is presumed gone at `expiresAt`, and its connections are taken
 *   back at the next call, so a vanished isolate cannot hold connections for ever;
 * - a close never takes the count below zero, and a holder at zero is forgotten.
 */
import { MAX_HOLDERS } from "../lease/lease-protocol";

export const CONNECTION_TIMING = {
  /** An isolate with open connections renews its count this often. */
  renewEveryMs: 30_000,
  /** A holder not heard from this long is presumed gone: three missed renewals. */
  expiryMs: 90_000,
  /**
   * A renewal replaces the holder's count only when no open or close of it arrived this long
   * before: an answer lost or a call still in flight could make the isolate's count and the
   * object's differ for a moment, never for longer than a call can take.
   */
  settleMs: 10_000,
} as const;

/** Isolates holding one tenant's connections at once: the lease book's bound. */
export const MAX_CONNECTION_HOLDERS = MAX_HOLDERS;

export interface ConnectionHolder {
  readonly id: string;
  readonly open: number;
  /** The last open or close of this holder (object clock): a renewal near it may be out of date. */
  readonly changedAt: number;
  readonly expiresAt: number;
}

export interface ConnectionBook {
  readonly holders: readonly ConnectionHolder[];
}

export const emptyConnectionBook = (): ConnectionBook => ({ holders: [] });

export function openTotal(book: ConnectionBook): number {
  let total = 0;
  for (const holder of book.holders) total += holder.open;
  return total;
}

export type OpenResult =
  | { readonly kind: "open"; readonly book: ConnectionBook; readonly open: number }
  | { readonly kind: "full"; readonly book: ConnectionBook; readonly open: number };

/** Holders past their expiry dropped: their connections come back. */
export function reclaimConnections(book: ConnectionBook, now: number): ConnectionBook {
  if (book.holders.every((h) => h.expiresAt > now)) return book;
  return { holders: book.holders.filter((h) => h.expiresAt > now) };
}

/** One more connection for `holderId`, if the total is below `limit` (and a holder row is free). */
export function openConnection(book: ConnectionBook, holderId: string, limit: number, now: number): OpenResult {
  const current = reclaimConnections(book, now);
  const open = openTotal(current);
  const index = current.holders.findIndex((h) => h.id === holderId);
  if (open >= limit || (index < 0 && current.holders.length >= MAX_CONNECTION_HOLDERS)) {
    return { kind: "full", book: current, open };
  }
  const before = current.holders[index] ?? { id: holderId, open: 0, changedAt: now, expiresAt: now };
  const after = { ...before, open: before.open + 1, changedAt: now, expiresAt: now + CONNECTION_TIMING.expiryMs };
  const holders = index < 0 ? [...current.holders, after] : current.holders.map((h, i) => (i === index ? after : h));
  return { kind: "open", book: { holders }, open: open + 1 };
}

/** One connection of `holderId` closed; unknown holders (already reclaimed) change nothing. */
export function closeConnection(book: ConnectionBook, holderId: string, now: number): ConnectionBook {
  const current = reclaimConnections(book, now);
  const holder = current.holders.find((h) => h.id === holderId);
  if (!holder) return current;
  const open = Math.max(0, holder.open - 1);
  if (open === 0) return { holders: current.holders.filter((h) => h.id !== holderId) };
  return {
    holders: current.holders.map((h) =>
      h === holder ? { ...h, open, changedAt: now, expiresAt: now + CONNECTION_TIMING.expiryMs } : h,
    ),
  };
}

/**
 * The holder is alive and has `open` connections it knows to be open. Its lease is extended;
 * its count is believed only once no open or close of it was seen for `settleMs`, so
 * a count the object kept after a lost answer heals, while a call still in flight is not undone.
 */
export function renewConnections(book: ConnectionBook, holderId: string, open: number, now: number): ConnectionBook {
  const current = reclaimConnections(book, now);
  const holder = current.holders.find((h) => h.id === holderId);
  if (!holder) return current;
  const settled = now - holder.changedAt >= CONNECTION_TIMING.settleMs;
  // Never above what the object counted: a report can heal an overcount, never conjure room.
  const count = settled ? Math.min(open, holder.open) : holder.open;
  if (count === 0) return { holders: current.holders.filter((h) => h.id !== holderId) };
  return {
    holders: current.holders.map((h) =>
      h === holder ? { ...h, open: count, expiresAt: now + CONNECTION_TIMING.expiryMs } : h,
    ),
  };
}
