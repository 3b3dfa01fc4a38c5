import type { CreditReport, ReleaseOutcome } from "../admission/counters";
import type { CreditGrant } from "../admission/credit";
import { type Priority, countByPriority } from "../admission/priority";
import type { Quota } from "../tenant/rpc";

/**
 * Per isolate: the credit each hot tenant's object handed it (see src/admission/credit.ts).
 * A request spends one token and occupies one of the credit's slots until its body ends. The
 * credit goes back to the object whole, once it is used up or no longer usable and its last
 * request has ended. Bounded: one credit per object, MAX_HELD_CREDITS objects; a credit that
 * finds no room is returned unused at once.
 */
const MAX_HELD_CREDITS = 1_000;

export interface HeldCredit {
  readonly objectName: string;
  readonly grant: CreditGrant;
  readonly quota: Quota;
  readonly receivedAt: number;
  left: number;
  inUse: number;
  /** Replaced by a newer credit: spends nothing more, goes back when its last request ends. */
  retired: boolean;
  used: number;
  readonly byPriority: Record<Priority, number>;
  readonly outcomes: Record<ReleaseOutcome, number>;
}

export interface CreditReturn {
  readonly objectName: string;
  readonly creditId: string;
  readonly report: CreditReport;
}

const credits = new Map<string, HeldCredit>();
/** Objects this isolate has an admit call out to that asks for a credit: one at a time each. */
const asking = new Set<string>();

function usable(credit: HeldCredit, now: number): boolean {
  return !credit.retired && now - credit.receivedAt < credit.grant.usableForMs && credit.left > 0;
}

function settle(credit: HeldCredit): CreditReturn {
  if (credits.get(credit.objectName) === credit) credits.delete(credit.objectName);
  return {
    objectName: credit.objectName,
    creditId: credit.grant.id,
    report: { used: credit.used, byPriority: credit.byPriority, outcomes: credit.outcomes },
  };
}

/**
 * Keeps a new credit for an object. Returns credits to hand back now: the one it replaces if
 * that one is idle, or the new one itself when the store is full.
 */
export function holdCredit(objectName: string, grant: CreditGrant, quota: Quota, now: number): CreditReturn[] {
  const fresh: HeldCredit = {
    objectName,
    grant,
    quota,
    receivedAt: now,
    left: grant.tokens,
    inUse: 0,
    retired: false,
    used: 0,
    byPriority: countByPriority(),
    outcomes: { completed: 0, cancelled: 0, deadline_exceeded: 0, origin_failed: 0, not_forwarded: 0, abandoned: 0 },
  };
  const returns: CreditReturn[] = [];
  const previous = credits.get(objectName);
  if (previous) {
    credits.delete(objectName);
    previous.retired = true;
    // A replaced credit still in use is settled by its last request's end.
    if (previous.inUse === 0) returns.push(settle(previous));
  }
  if (credits.size >= MAX_HELD_CREDITS) return [...returns, settle(fresh)];
  credits.set(objectName, fresh);
  return returns;
}

/** Spends one token of the object's credit on a request, if the credit covers it. */
export function spendCredit(objectName: string, priority: Priority, budgetMs: number, now: number): HeldCredit | null {
  const credit = credits.get(objectName);
  if (!credit || !usable(credit, now) || budgetMs > credit.grant.maxBudgetMs) return null;
  credit.left -= 1;
  credit.inUse += 1;
  credit.used += 1;
  credit.byPriority[priority] += 1;
  return credit;
}

/** A credited request ended; returns the credit to hand back if it is now done with. */
export function endCreditUse(credit: HeldCredit, outcome: ReleaseOutcome, now: number): CreditReturn | null {
  credit.inUse -= 1;
  credit.outcomes[outcome] += 1;
  return credit.inUse === 0 && !usable(credit, now) ? settle(credit) : null;
}

/** Hands back an object's credit if it can no longer be spent and nothing uses it. */
export function expireCredit(objectName: string, now: number): CreditReturn | null {
  const credit = credits.get(objectName);
  return credit && credit.inUse === 0 && !usable(credit, now) ? settle(credit) : null;
}

/**
 * Whether the next admit call to an object should ask for a credit: only when this isolate holds
 * no usable credit for it and is not already asking. Without this, a burst of concurrent calls
 * from one isolate would each draw a credit's slots before the first credit could be spent.
 */
export function askForCredit(objectName: string, now: number): boolean {
  const held = credits.get(objectName);
  if ((held && usable(held, now)) || asking.has(objectName) || asking.size >= MAX_HELD_CREDITS) return false;
  asking.add(objectName);
  return true;
}

export function creditAnswered(objectName: string): void {
  asking.delete(objectName);
}
