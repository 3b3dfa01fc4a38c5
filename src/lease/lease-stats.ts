/** The tenant's live state as its lease book shows it: what the admin API and metrics report. Pure. */
import type { AdmissionLimits } from "../admission/limits";
import { PRIORITIES, type Priority, countByPriority } from "../admission/priority";
import { type LeaseBook, quotaOf, slotsOut, tokensOut } from "./lease-book";

export interface LeaseState {
  /** Tokens not yet spent: in the bucket, and out at isolates. */
  readonly tokens: number;
  /** Slots in use at the isolates, as they last reported (lags by at most a renewal). */
  readonly inFlight: number;
  readonly queued: number;
  readonly queuedByPriority: Record<Priority, number>;
  readonly holdMsEwma: number | null;
  readonly leases: { readonly holders: number; readonly slots: number; readonly tokens: number };
}

export function leaseState(book: LeaseBook | null, limits: AdmissionLimits | null): LeaseState {
  const quota = book && limits ? quotaOf(book, limits) : null;
  const queuedByPriority = countByPriority();
  const holds: number[] = [];
  for (const holder of book?.holders ?? []) {
    for (const p of PRIORITIES) queuedByPriority[p] += holder.waiting[p];
    if (holder.holdMs !== null) holds.push(holder.holdMs);
  }
  return {
    tokens: quota ? Math.floor(quota.tokens * 1000) / 1000 : 0,
    inFlight: quota?.inFlight ?? 0,
    queued: quota?.queued ?? 0,
    queuedByPriority,
    holdMsEwma: holds.length > 0 ? holds.reduce((a, b) => a + b, 0) / holds.length : null,
    leases: {
      holders: book?.holders.length ?? 0,
      slots: book ? slotsOut(book) : 0,
      tokens: book ? tokensOut(book) : 0,
    },
  };
}
