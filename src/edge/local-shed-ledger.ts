import type { LocalShedCount } from "../admission/counters";
import type { Priority } from "../admission/priority";
import type { AdmissionShedReason } from "../admission/shed-reason";

/**
 * Per isolate: sheds decided locally, not yet reported to their tenant's object. A batch goes to
 * the object piggybacked on the next admit call for that object, or on its own once it is
 * FLUSH_AFTER_MS old or FLUSH_AT_COUNT large, whichever comes first. So the object's counters lag
 * the edge by at most FLUSH_AFTER_MS (plus one call's latency) while the isolate lives; an isolate
 * that dies loses its unreported batch (at most FLUSH_AT_COUNT sheds per tenant).
 * Bounded: at most MAX_PENDING_OBJECTS batches; past that the oldest is reported at once.
 */
export const FLUSH_AFTER_MS = 1_000;
export const FLUSH_AT_COUNT = 500;
const MAX_PENDING_OBJECTS = 1_000;

interface Batch {
  readonly counts: Map<string, LocalShedCount>;
  total: number;
}

export type LedgerAction = "none" | "schedule-flush" | "flush-now";

const pending = new Map<string, Batch>();
/**
 * When each object's scheduled report fires. A batch taken by a piggybacking admit call leaves
 * the schedule in place, so a new batch does not schedule another report: one per object per
 * FLUSH_AFTER_MS at most. Entries go when their report fires; bounded like `pending`.
 */
const reportDue = new Map<string, number>();

function addCounts(objectName: string, counts: readonly LocalShedCount[], now: number): LedgerAction {
  let batch = pending.get(objectName);
  if (!batch) {
    batch = { counts: new Map(), total: 0 };
    pending.set(objectName, batch);
  }
  for (const { reason, priority, count } of counts) {
    const key = `${reason}|${priority}`;
    const previous = batch.counts.get(key)?.count ?? 0;
    batch.counts.set(key, { reason, priority, count: previous + count });
    batch.total += count;
  }
  if (batch.total >= FLUSH_AT_COUNT) return "flush-now";
  const due = reportDue.get(objectName);
  if (due !== undefined && due > now) return "none";
  reportDue.set(objectName, now + FLUSH_AFTER_MS);
  const oldest = reportDue.size > MAX_PENDING_OBJECTS ? reportDue.keys().next().value : undefined;
  if (oldest !== undefined) reportDue.delete(oldest);
  return "schedule-flush";
}

export function recordLocalShed(
  objectName: string,
  reason: AdmissionShedReason,
  priority: Priority,
  now: number,
): LedgerAction {
  return addCounts(objectName, [{ reason, priority, count: 1 }], now);
}

/** The scheduled report for an object has fired: the next batch may schedule another. */
export function reportFired(objectName: string): void {
  reportDue.delete(objectName);
}

/** Removes and returns an object's batch, if any. */
export function takeLocalSheds(objectName: string): LocalShedCount[] | undefined {
  const batch = pending.get(objectName);
  if (!batch) return undefined;
  pending.delete(objectName);
  return [...batch.counts.values()];
}

/** Puts a batch back after a failed report, merged with anything counted since. */
export function restoreLocalSheds(objectName: string, counts: readonly LocalShedCount[], now: number): LedgerAction {
  return addCounts(objectName, counts, now);
}

/** The object whose batch should be reported now to keep the ledger within its bound. */
export function overflowingObject(): string | undefined {
  return pending.size > MAX_PENDING_OBJECTS ? pending.keys().next().value : undefined;
}
