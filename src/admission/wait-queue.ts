import type { Arrival, FullBehaviour } from "./limits";
import { type Priority, countByPriority, priorityRank } from "./priority";

/**
 * The bounded priority wait queue, as a readonly array kept in service order: highest priority
 * first, FIFO (by `seq`) within a class. Its length never exceeds the bound it is given; the
 * bound is small (see MAX_QUEUE in tenant-config.ts), so copying on change is cheaper than it
 * looks and keeps every function pure.
 */
export interface Waiter extends Arrival {
  /** Arrival order, for FIFO within a class. */
  readonly seq: number;
  readonly enqueuedAt: number;
  /** When it stops waiting: min(enqueuedAt + wait budget, deadline). */
  readonly expiresAt: number;
}

export type WaitQueue = readonly Waiter[];

function servedBefore(a: Waiter, b: Waiter): boolean {
  const byRank = priorityRank(a.priority) - priorityRank(b.priority);
  return byRank > 0 || (byRank === 0 && a.seq < b.seq);
}

export function enqueue(queue: WaitQueue, waiter: Waiter): WaitQueue {
  let index = queue.length;
  for (let before = queue[index - 1]; before && servedBefore(waiter, before); before = queue[index - 1]) index -= 1;
  return [...queue.slice(0, index), waiter, ...queue.slice(index)];
}

export function removeWaiter(queue: WaitQueue, id: string): WaitQueue {
  return queue.filter((waiter) => waiter.id !== id);
}

/** Waiters that would be served before a new arrival of this priority. */
export function countAhead(queue: WaitQueue, priority: Priority): number {
  const rank = priorityRank(priority);
  let ahead = 0;
  for (const waiter of queue) if (priorityRank(waiter.priority) >= rank) ahead += 1;
  return ahead;
}

export function countQueuedByPriority(queue: WaitQueue): Record<Priority, number> {
  const counts = countByPriority();
  for (const waiter of queue) counts[waiter.priority] += 1;
  return counts;
}

/**
 * Which waiter, if any, gives up its place so that `arrival` can queue in a full queue.
 * `null` means the arrival itself is shed. Nobody is ever displaced by a lower-priority arrival.
 */
export function victimForFullQueue(
  queue: WaitQueue,
  arrival: Pick<Arrival, "priority">,
  behaviour: FullBehaviour,
): Waiter | null {
  const rank = priorityRank(arrival.priority);
  switch (behaviour) {
    case "shed-newest":
    case "block":
      return null;
    case "evict-lowest": {
      const lowestNewest = queue[queue.length - 1];
      return lowestNewest && priorityRank(lowestNewest.priority) < rank ? lowestNewest : null;
    }
    case "shed-oldest": {
      const lowest = queue[queue.length - 1];
      if (!lowest || priorityRank(lowest.priority) > rank) return null;
      // Service order is FIFO within a class, so the oldest of the lowest class is its first.
      return queue.find((waiter) => waiter.priority === lowest.priority) ?? null;
    }
  }
}

/** Splits off the waiters whose wait ended at or before `now`. */
export function partitionExpired(
  queue: WaitQueue,
  now: number,
): { readonly live: WaitQueue; readonly expired: readonly Waiter[] } {
  const live: Waiter[] = [];
  const expired: Waiter[] = [];
  for (const waiter of queue) (waiter.expiresAt <= now ? expired : live).push(waiter);
  return { live, expired };
}

export function earliestExpiry(queue: WaitQueue): number | null {
  let earliest: number | null = null;
  for (const waiter of queue) {
    if (earliest === null || waiter.expiresAt < earliest) earliest = waiter.expiresAt;
  }
  return earliest;
}
