/**
 * Fairness between tenants at the origin stage: when tenants compete for origin slots, each gets
 * slots in proportion to its weight. A tenant's load is what it holds (in flight, plus queued
 * when deciding who gives up a queue place) divided by its weight; the least loaded tenant is
 * served first and the most loaded gives way first. Pure.
 */
import { priorityRank } from "../admission/priority";
import type { OriginWaiter } from "./origin-waiter";
import { own } from "../own-keys";

export type TenantCounts = Readonly<Record<string, number>>;

export function loadOf(inFlightByTenant: TenantCounts, tenant: string, weight: number, extra = 0): number {
  return ((own(inFlightByTenant, tenant) ?? 0) + extra) / weight;
}

/**
 * The waiter to serve next: the highest class waiting; within it, the waiter whose tenant holds
 * the fewest slots for its weight; ties by arrival. Undefined for an empty queue.
 */
export function nextToServe(queue: readonly OriginWaiter[], inFlightByTenant: TenantCounts): OriginWaiter | undefined {
  let best: OriginWaiter | undefined;
  let bestLoad = 0;
  for (const waiter of queue) {
    const load = loadOf(inFlightByTenant, waiter.tenant, waiter.weight);
    if (!best) {
      best = waiter;
      bestLoad = load;
      continue;
    }
    const byRank = priorityRank(waiter.priority) - priorityRank(best.priority);
    // One tenant's own waiters go in arrival order, whatever weight each carried (a weight
    // change reaches isolates at different times).
    const sameTenant = waiter.tenant === best.tenant;
    const lighter = sameTenant
      ? waiter.seq < best.seq
      : load < bestLoad || (load === bestLoad && waiter.seq < best.seq);
    if (byRank > 0 || (byRank === 0 && lighter)) {
      best = waiter;
      bestLoad = load;
    }
  }
  return best;
}

function queuedByTenant(queue: readonly OriginWaiter[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const waiter of queue) counts.set(waiter.tenant, (counts.get(waiter.tenant) ?? 0) + 1);
  return counts;
}

/**
 * Who gives up a place in the full queue to `arrival`: a waiter of a lower class (the lowest
 * class, the most loaded tenant, its newest waiter); or else, in the arrival's own class, the
 * newest waiter of a tenant more loaded than the arrival's would be with it. Null: the arrival
 * is the one refused.
 */
export function victimFor(
  queue: readonly OriginWaiter[],
  inFlightByTenant: TenantCounts,
  arrival: Pick<OriginWaiter, "tenant" | "weight" | "priority">,
): OriginWaiter | null {
  const queued = queuedByTenant(queue);
  const held = (tenant: string, weight: number, extra = 0) =>
    loadOf(inFlightByTenant, tenant, weight, (queued.get(tenant) ?? 0) + extra);
  const arrivalRank = priorityRank(arrival.priority);
  let victim: OriginWaiter | null = null;
  let victimLoad = 0;
  for (const waiter of queue) {
    const rank = priorityRank(waiter.priority);
    if (rank > arrivalRank) continue;
    const load = held(waiter.tenant, waiter.weight);
    if (rank === arrivalRank && load <= held(arrival.tenant, arrival.weight, 1)) continue;
    if (!victim) {
      victim = waiter;
      victimLoad = load;
      continue;
    }
    const byRank = rank - priorityRank(victim.priority);
    const sameTenant = waiter.tenant === victim.tenant;
    const heavier = sameTenant
      ? waiter.seq > victim.seq
      : load > victimLoad || (load === victimLoad && waiter.seq > victim.seq);
    if (byRank < 0 || (byRank === 0 && heavier)) {
      victim = waiter;
      victimLoad = load;
    }
  }
  return victim;
}
