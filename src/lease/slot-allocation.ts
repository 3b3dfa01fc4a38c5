/**
 * How a tenant's in-flight limit is split between the isolates that hold its lease. Pure.
 *
 * Demand is what each holder has in use plus what waits in its queue, per priority. The limit
 * is filled from the highest priority down: all critical demand first, across holders, then
 * high, and so on; within the class where the limit runs out, holders get shares in proportion
 * to their demand (largest remainder, ties to the earlier holder). What is left after all demand
 * is spare, split evenly, the first holders taking the remainder, so a lone isolate ends up
 * holding the whole limit and admits without asking. The targets add up to the limit; the lease
 * book passes holders in one stable order, so the targets it tells them add up too.
 *
 * A target below what a holder has in use is not a revocation: in-use slots are never taken
 * back. The holder returns slots as they free until it is down to its target, which is how
 * capacity moves to the isolate with higher-priority or unmet demand.
 */
import { PRIORITIES, type Priority } from "../admission/priority";

export interface HolderDemand {
  readonly inUse: Readonly<Record<Priority, number>>;
  readonly waiting: Readonly<Record<Priority, number>>;
  /**
   * The slots the holder's arrivals keep busy (rate x hold time), by priority, when known. Where
   * a class runs out, shares follow it rather than in use + waiting: an isolate that holds fewer
   * slots sheds more on its wait estimate and so queues less, and shares by queue alone fed on
   * themselves (the multi-isolate run: equal load, goodput max/min 4.1). By offered load the
   * split is what one shared queue would give.
   */
  readonly offered?: Readonly<Record<Priority, number>>;
}

const HIGHEST_FIRST = [...PRIORITIES].reverse();

export function slotTargets(demands: readonly HolderDemand[], maxInFlight: number): number[] {
  const targets = demands.map(() => 0);
  let remaining = maxInFlight;
  for (const priority of HIGHEST_FIRST) {
    if (remaining <= 0) break;
    const wants = demands.map((d) => d.inUse[priority] + d.waiting[priority]);
    const total = wants.reduce((sum, want) => sum + want, 0);
    if (total === 0) continue;
    const shares =
      total <= remaining ? wants : cappedShares(contendedWeights(demands, wants, priority), wants, remaining);
    shares.forEach((share, i) => {
      targets[i] = (targets[i] ?? 0) + share;
    });
    remaining -= shares.reduce((sum, share) => sum + share, 0);
  }
  if (remaining > 0 && demands.length > 0) {
    const even = Math.floor(remaining / demands.length);
    const extra = remaining - even * demands.length;
    targets.forEach((target, i) => {
      targets[i] = target + even + (i < extra ? 1 : 0);
    });
  }
  return targets;
}

/**
 * Weights for a class the limit runs out in: each holder's offered load there when every
 * holder with demand in it has one, else its demand (in use + waiting). A holder without demand
 * in the class gets nothing whatever its load says.
 */
function contendedWeights(demands: readonly HolderDemand[], wants: readonly number[], priority: Priority): number[] {
  const known = demands.every((d, i) => (wants[i] ?? 0) === 0 || (d.offered?.[priority] ?? 0) > 0);
  if (!known) return [...wants];
  return demands.map((d, i) => ((wants[i] ?? 0) === 0 ? 0 : (d.offered?.[priority] ?? 0)));
}

/**
 * `amount` split by `weights`, no share above its holder's `caps` (what it can use now: a slot
 * given beyond that would sit idle while another holder's requests wait); what a cap leaves over
 * goes to the others by weight. Sums to `amount` when the caps add up to at least that.
 */
function cappedShares(weights: readonly number[], caps: readonly number[], amount: number): number[] {
  const shares = weights.map(() => 0);
  const open = new Set(weights.map((_, i) => i));
  let left = amount;
  while (left > 0 && open.size > 0) {
    const ids = [...open];
    const split = proportionalShares(
      ids.map((i) => weights[i] ?? 0),
      left,
    );
    let capped = false;
    ids.forEach((i, k) => {
      const room = (caps[i] ?? 0) - (shares[i] ?? 0);
      if ((split[k] ?? 0) >= room) {
        shares[i] = caps[i] ?? 0;
        left -= room;
        open.delete(i);
        capped = true;
      }
    });
    if (!capped) {
      ids.forEach((i, k) => {
        shares[i] = (shares[i] ?? 0) + (split[k] ?? 0);
      });
      left = 0;
    }
  }
  return shares;
}

/** Splits `amount` whole units in proportion to `weights` (largest remainder); sums to `amount`. */
export function proportionalShares(weights: readonly number[], amount: number): number[] {
  const total = weights.reduce((sum, w) => sum + w, 0);
  if (total <= 0 || amount <= 0) return weights.map(() => 0);
  const exact = weights.map((w) => (w * amount) / total);
  const shares = exact.map(Math.floor);
  let left = amount - shares.reduce((sum, s) => sum + s, 0);
  const byRemainder = exact
    .map((value, i) => ({ i, rest: value - Math.floor(value) }))
    .sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left <= 0) break;
    shares[i] = (shares[i] ?? 0) + 1;
    left -= 1;
  }
  return shares;
}
