import type { AdmissionLimits, Arrival } from "../../src/admission/limits";
import { type Priority, countByPriority } from "../../src/admission/priority";
import { type LeaseBook, applyReport, emptyBook, grant } from "../../src/lease/lease-book";
import type { LeaseGrant, LeaseReport } from "../../src/lease/lease-protocol";
import { emptyTally } from "../../src/lease/tally";

/** Fixed epochs and plain values for the lease specifications; no clock, no sleeps. */
export const T0 = 1_700_000_000_000;

export const LIMITS: AdmissionLimits = { rate: 10, burst: 20, maxInFlight: 4, maxQueue: 4, maxWaitMs: 1_000 };

export const holder = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
export const A = holder(0xa);
export const B = holder(0xb);
export const C = holder(0xc);

export const counts = (partial: Partial<Record<Priority, number>> = {}): Record<Priority, number> => ({
  ...countByPriority(),
  ...partial,
});

export function report(id: string, seq: number, over: Partial<LeaseReport> = {}): LeaseReport {
  return {
    holder: id,
    seq,
    slotsReturned: 0,
    tokensSpent: 0,
    tokensReturned: 0,
    inUse: counts(),
    waiting: counts(),
    wantTokens: 0,
    holdMs: null,
    waitMs: 0,
    coverMs: 1_000,
    leaving: false,
    tally: emptyTally(),
    ...over,
  };
}

/** The object's `lease` call without the shell: apply the report, then grant. */
export function renew(book: LeaseBook, r: LeaseReport, now: number, limits: AdmissionLimits = LIMITS) {
  const applied = applyReport(book, limits, r, now);
  return { applied, ...grant(applied.book, limits, r.holder, now) };
}

/** The answer a lone holder gets for `over`, from a real book: for edge specifications. */
export function answerFor(
  over: Partial<LeaseReport>,
  limits: AdmissionLimits = LIMITS,
  now = T0,
): { readonly book: LeaseBook; readonly answer: LeaseGrant } {
  const result = renew(emptyBook(limits, now), report(A, 0, over), now, limits);
  return { book: result.book, answer: result.answer };
}

let arrivals = 0;
export function arrival(over: Partial<Arrival> = {}, now = T0): Arrival {
  arrivals += 1;
  return { id: `q${arrivals}`, priority: "normal", deadline: now + 5_000, fullBehaviour: "evict-lowest", ...over };
}
