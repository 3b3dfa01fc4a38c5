import { z } from "zod";
import { PRIORITIES, type Priority, countByPriority } from "../admission/priority";
import { ORIGIN_SHED_CAUSES, type OriginShedCause } from "./origin-shed";

/** A count as stored: anything missing or broken (a record from an older version) reads as 0. */
const count = z.number().finite().min(0).catch(0);

/** One count per key of `keys`, each read as `count` is; a missing group reads as all zeros. */
function countsOf<K extends string>(keys: readonly K[]) {
  const group = z.object(Object.fromEntries(keys.map((key) => [key, count])) as Record<K, typeof count>);
  return z.preprocess((stored) => (typeof stored === "object" && stored !== null ? stored : {}), group);
}

export const ORIGIN_CALLS = ["acquire", "release", "reportSheds", "hold"] as const;
export type OriginCall = (typeof ORIGIN_CALLS)[number];

/**
 * One shard's decision counters, and how a stored record of them is read. They add up: arrived =
 * admitted + shed + queued now; admitted = released + reaped + (in flight - lingering): a slot
 * left lingering is already released.
 */
export const originCountersSchema = z.object({
  arrived: count,
  admitted: count,
  admittedByPriority: countsOf(PRIORITIES),
  shed: count,
  shedByCause: countsOf(ORIGIN_SHED_CAUSES),
  shedByPriority: countsOf(PRIORITIES),
  /** Of `shed`, decided by isolates from a cached verdict or hold, reported in batches. */
  shedAtEdge: count,
  released: count,
  /** Leases reclaimed because their holder never released them. */
  reaped: count,
  /** Responses that counted as a drop for the adaptive limit (5xx, 429, deadline, failure). */
  drops: count,
  /** Holds the origin asked for (503/429 with Retry-After), as seen by this shard. */
  holds: count,
  calls: countsOf(ORIGIN_CALLS),
});

export type OriginCounters = Readonly<z.infer<typeof originCountersSchema>>;

export interface OriginShedCount {
  readonly cause: OriginShedCause;
  readonly priority: Priority;
  readonly count: number;
}

export function emptyOriginCounters(): OriginCounters {
  return {
    arrived: 0,
    admitted: 0,
    admittedByPriority: countByPriority(),
    shed: 0,
    shedByCause: Object.fromEntries(ORIGIN_SHED_CAUSES.map((cause) => [cause, 0])) as Record<OriginShedCause, number>,
    shedByPriority: countByPriority(),
    shedAtEdge: 0,
    released: 0,
    reaped: 0,
    drops: 0,
    holds: 0,
    calls: { acquire: 0, release: 0, reportSheds: 0, hold: 0 },
  };
}

export function countOriginCall(counters: OriginCounters, call: OriginCall): OriginCounters {
  return { ...counters, calls: { ...counters.calls, [call]: counters.calls[call] + 1 } };
}

export function countOriginAdmit(counters: OriginCounters, priority: Priority): OriginCounters {
  return {
    ...counters,
    admitted: counters.admitted + 1,
    admittedByPriority: { ...counters.admittedByPriority, [priority]: counters.admittedByPriority[priority] + 1 },
  };
}

/** Sheds, decided here (`atEdge` false) or reported by isolates; an arrival each when `arrived`. */
export function countOriginSheds(
  counters: OriginCounters,
  sheds: readonly OriginShedCount[],
  options: { readonly atEdge: boolean; readonly arrived: boolean },
): OriginCounters {
  let next = counters;
  for (const { cause, priority, count } of sheds) {
    next = {
      ...next,
      arrived: next.arrived + (options.arrived ? count : 0),
      shed: next.shed + count,
      shedAtEdge: next.shedAtEdge + (options.atEdge ? count : 0),
      shedByCause: { ...next.shedByCause, [cause]: next.shedByCause[cause] + count },
      shedByPriority: { ...next.shedByPriority, [priority]: next.shedByPriority[priority] + count },
    };
  }
  return next;
}

export function countOriginRelease(
  counters: OriginCounters,
  how: { readonly reaped: boolean; readonly drop: boolean; readonly hold: boolean },
): OriginCounters {
  return {
    ...counters,
    released: counters.released + (how.reaped ? 0 : 1),
    reaped: counters.reaped + (how.reaped ? 1 : 0),
    drops: counters.drops + (how.drop ? 1 : 0),
    holds: counters.holds + (how.hold ? 1 : 0),
  };
}
