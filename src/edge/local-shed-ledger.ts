import type { Priority } from "../admission/priority";

/**
 * Per isolate: sheds decided locally, not yet reported to the object they were decided for. A
 * batch goes to the object piggybacked on the next call to that object, or on its own once it is
 * FLUSH_AFTER_MS old or FLUSH_AT_COUNT large, whichever comes first. So the object's counters lag
 * the edge by at most FLUSH_AFTER_MS (plus one call's latency) while the isolate lives; an isolate
 * that dies loses its unreported batch (at most FLUSH_AT_COUNT sheds per object).
 * Bounded: at most MAX_PENDING_OBJECTS batches; past that the oldest is reported at once.
 * Used by the origin stage for its shards (the tenant stage counts on its leases instead).
 */
export const FLUSH_AFTER_MS = 1_000;
export const FLUSH_AT_COUNT = 500;
const MAX_PENDING_OBJECTS = 1_000;

export interface ShedCount<R extends string> {
  readonly reason: R;
  readonly priority: Priority;
  readonly count: number;
}

interface Batch<R extends string> {
  readonly counts: Map<string, ShedCount<R>>;
  total: number;
}

export type LedgerAction = "none" | "schedule-flush" | "flush-now";

export class ShedLedger<R extends string> {
  private readonly pending = new Map<string, Batch<R>>();
  /**
   * When each object's scheduled report fires. A batch taken by a piggybacking call leaves the
   * schedule in place, so a new batch does not schedule another report: one per object per
   * FLUSH_AFTER_MS at most. Entries go when their report fires; bounded like `pending`.
   */
  private readonly reportDue = new Map<string, number>();

  private add(objectName: string, counts: readonly ShedCount<R>[], now: number): LedgerAction {
    let batch = this.pending.get(objectName);
    if (!batch) {
      batch = { counts: new Map(), total: 0 };
      this.pending.set(objectName, batch);
    }
    for (const { reason, priority, count } of counts) {
      const key = `${reason}|${priority}`;
      const previous = batch.counts.get(key)?.count ?? 0;
      batch.counts.set(key, { reason, priority, count: previous + count });
      batch.total += count;
    }
    if (batch.total >= FLUSH_AT_COUNT) return "flush-now";
    const due = this.reportDue.get(objectName);
    if (due !== undefined && due > now) return "none";
    this.reportDue.set(objectName, now + FLUSH_AFTER_MS);
    const oldest = this.reportDue.size > MAX_PENDING_OBJECTS ? this.reportDue.keys().next().value : undefined;
    if (oldest !== undefined) this.reportDue.delete(oldest);
    return "schedule-flush";
  }

  record(objectName: string, reason: R, priority: Priority, now: number): LedgerAction {
    return this.add(objectName, [{ reason, priority, count: 1 }], now);
  }

  /** The scheduled report for an object has fired: the next batch may schedule another. */
  reportFired(objectName: string): void {
    this.reportDue.delete(objectName);
  }

  /** Removes and returns an object's batch, if any. */
  take(objectName: string): ShedCount<R>[] | undefined {
    const batch = this.pending.get(objectName);
    if (!batch) return undefined;
    this.pending.delete(objectName);
    return [...batch.counts.values()];
  }

  /** Puts a batch back after a failed report, merged with anything counted since. */
  restore(objectName: string, counts: readonly ShedCount<R>[], now: number): LedgerAction {
    return this.add(objectName, counts, now);
  }

  /** The object whose batch should be reported now to keep the ledger within its bound. */
  overflowing(): string | undefined {
    return this.pending.size > MAX_PENDING_OBJECTS ? this.pending.keys().next().value : undefined;
  }
}
