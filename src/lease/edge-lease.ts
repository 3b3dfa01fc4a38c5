/**
 * One isolate's lease of one tenant's slots and tokens, and its bounded local priority queue, as
 * pure functions over plain state with `now` (this isolate's epoch ms) passed in. The isolate
 * admits on what it holds, queues by priority, hands a finished request's slot straight to its
 * next local waiter, and sheds with exact knowledge of its lease and queue; it asks the tenant's
 * object only to renew, in batches (see lease-protocol.ts).
 *
 * Invariants:
 * - in use never exceeds the slots seen granted less those returned, and a token is spent only
 *   when one is held: whatever the isolate does, it cannot spend what the object has not granted;
 * - it admits only while its lease is valid (LEASE_TIMING.ttlMs after the report that renewed it);
 * - slots above the object's target go back as they free, before any local waiter gets them;
 * - the queue never holds more than max(maxQueue, maxInFlight) waiters, each until its own expiry.
 */
import type { ReleaseOutcome } from "../admission/counters";
import type { AdmissionLimits, Arrival } from "../admission/limits";
import { nextAverage } from "../admission/moving-average";
import { PRIORITIES, type Priority, countByPriority } from "../admission/priority";
import type { AdmissionShedReason } from "../admission/shed-reason";
import { waitBudgetMs } from "../admission/wait-budget";
import {
  type WaitQueue,
  type Waiter,
  countAhead,
  countQueuedByPriority,
  earliestExpiry,
  enqueue,
  partitionExpired,
  removeWaiter,
  victimForFullQueue,
} from "../admission/wait-queue";
import { LEASE_TIMING, type LeaseGrant, type LeaseReport, type LeaseTally, type Quota } from "./lease-protocol";
import { emptyTally, tallyAdmit, tallyArrival, tallyGone, tallyRelease, tallyShed } from "./tally";

/** What the object said when it last answered, kept until the next answer. */
export interface ObjectView {
  readonly freeSlots: number;
  readonly freeTokens: number;
  readonly tokenRate: number;
  readonly waitingAtOrAbove: Readonly<Record<Priority, number>>;
  readonly holdMs: number | null;
  readonly limits: AdmissionLimits;
  readonly quota: Quota;
}

export interface EdgeLease {
  readonly holder: string;
  readonly seq: number;
  readonly slotsGranted: number;
  readonly slotsReturned: number;
  readonly slotsReturnedSent: number;
  readonly tokensGranted: number;
  readonly tokensSpent: number;
  readonly tokensSpentSent: number;
  readonly tokensReturned: number;
  readonly inUse: Readonly<Record<Priority, number>>;
  readonly queue: WaitQueue;
  readonly nextSeq: number;
  /** Admits on its lease until then; 0 before the first answer. */
  readonly validUntil: number;
  readonly targetSlots: number;
  readonly renewAt: number;
  readonly sentAt: number;
  /** One renewal at a time, so cumulative reports arrive in order. */
  readonly renewing: boolean;
  /** Sent its leaving report: a new arrival starts a new lease. */
  readonly left: boolean;
  readonly failedAt: number | null;
  readonly view: ObjectView | null;
  readonly holdMs: number | null;
  /** Arrivals per second, moving average over renewals: sizes the tokens asked for. */
  readonly arrivalRate: number;
  readonly arrivalsSinceSent: number;
  readonly lastDemandAt: number;
  readonly tally: LeaseTally;
}

/** After a failed renewal, the next try waits this long (arrivals meanwhile fail as the fail mode says). */
export const RENEW_RETRY_MS = 100;
/** A lease that must ask its object gives a request at least this long for the answer, whatever maxWaitMs says. */
export const ASK_WAIT_MS = 1_000;

export function newEdgeLease(holder: string, now: number): EdgeLease {
  return {
    holder,
    seq: -1,
    slotsGranted: 0,
    slotsReturned: 0,
    slotsReturnedSent: 0,
    tokensGranted: 0,
    tokensSpent: 0,
    tokensSpentSent: 0,
    tokensReturned: 0,
    inUse: countByPriority(),
    queue: [],
    nextSeq: 0,
    validUntil: 0,
    targetSlots: 0,
    renewAt: now,
    sentAt: 0,
    renewing: false,
    left: false,
    failedAt: null,
    view: null,
    holdMs: null,
    arrivalRate: 0,
    arrivalsSinceSent: 0,
    lastDemandAt: now,
    tally: emptyTally(),
  };
}

const total = (counts: Readonly<Record<Priority, number>>) => PRIORITIES.reduce((n, p) => n + counts[p], 0);
export const heldSlots = (l: EdgeLease) => l.slotsGranted - l.slotsReturned;
export const inUseTotal = (l: EdgeLease) => total(l.inUse);
export const heldTokens = (l: EdgeLease) => l.tokensGranted - l.tokensSpent - l.tokensReturned;
export const isValid = (l: EdgeLease, now: number) => l.validUntil > now && !l.left;
const bump = (counts: Readonly<Record<Priority, number>>, p: Priority, by: number) => ({
  ...counts,
  [p]: counts[p] + by,
});

function canAdmitNow(l: EdgeLease, now: number): boolean {
  const used = inUseTotal(l);
  return isValid(l, now) && used < heldSlots(l) && used < l.targetSlots && heldTokens(l) >= 1;
}

function admitOne(l: EdgeLease, priority: Priority): EdgeLease {
  return {
    ...l,
    inUse: bump(l.inUse, priority, 1),
    tokensSpent: l.tokensSpent + 1,
    tally: tallyAdmit(l.tally, priority),
  };
}

/** Free slots above the target go back (reported with the next renewal) instead of to local waiters. */
function returnSurplus(l: EdgeLease): EdgeLease {
  const surplus = Math.min(heldSlots(l) - l.targetSlots, heldSlots(l) - inUseTotal(l));
  return surplus > 0 ? { ...l, slotsReturned: l.slotsReturned + surplus } : l;
}

export type EdgeOutcome =
  | { readonly kind: "admit" }
  | { readonly kind: "queued"; readonly waiter: Waiter }
  | { readonly kind: "shed"; readonly reason: AdmissionShedReason; readonly retryAfterMs: number }
  /** No valid lease and the object could not be asked: the fail mode decides. */
  | { readonly kind: "unavailable" };

export interface EdgeArrival {
  readonly lease: EdgeLease;
  readonly outcome: EdgeOutcome;
  /** Waiters displaced to make room; each must be answered `evicted`. */
  readonly evicted: readonly Waiter[];
}

/**
 * Whether asking the object could admit a request now: no valid lease, or the lease lacks a slot
 * or a token that the object said it has (a lease short of slots gains nothing from free tokens).
 */
export function worthAsking(l: EdgeLease, now: number): boolean {
  if (!isValid(l, now) || !l.view) return true;
  const lacksSlot = inUseTotal(l) >= Math.min(heldSlots(l), l.targetSlots);
  const lacksToken = heldTokens(l) < 1;
  if (!lacksSlot && !lacksToken) return false;
  return (!lacksSlot || l.view.freeSlots > 0) && (!lacksToken || l.view.freeTokens >= 1);
}

/** Expected wait for a request with `ahead` local waiters before it, on this lease as it stands. */
/**
 * When the n-th of `busy` slots, each held `hold` ms on average, is expected to free: the first
 * after hold / (busy + 1) (the soonest of busy requests at random points of their service),
 * each next one hold / busy later. Counting a whole hold for the first overstated every wait by
 * up to half a hold and shed requests that would have been served in time (the lab: a quiet
 * tenant with 2 slots of 160 ms and a 250 ms wait bound, 95% served where HAProxy served 98%).
 */
function nthDeparture(n: number, busy: number, hold: number): number {
  return hold / (busy + 1) + ((n - 1) * hold) / busy;
}

export function expectedWaitMs(l: EdgeLease, priority: Priority, ahead: number): { tokenMs: number; slotMs: number } {
  const needed = ahead + 1;
  const rate = l.view?.tokenRate ?? 0;
  const missingTokens = needed - heldTokens(l);
  const tokenMs =
    missingTokens <= 0 ? 0 : rate > 0 ? Math.ceil((missingTokens * 1000) / rate) : Number.POSITIVE_INFINITY;
  const hold = l.holdMs ?? l.view?.holdMs ?? 0;
  const usable = Math.min(heldSlots(l), l.targetSlots);
  const free = usable - inUseTotal(l);
  let slotMs: number;
  if (needed <= free) slotMs = 0;
  else if (usable > 0) slotMs = Math.ceil(nthDeparture(needed - Math.max(0, free), usable, hold));
  else {
    // No slot here: it waits for the tenant's slots as a whole to reach it.
    const max = l.view?.limits.maxInFlight ?? 1;
    slotMs = Math.ceil((((l.view?.waitingAtOrAbove[priority] ?? 0) + needed) * hold) / max);
  }
  return { tokenMs, slotMs };
}

function refused(l: EdgeLease, arrival: Arrival, reason: AdmissionShedReason, retryAfterMs: number): EdgeArrival {
  return {
    lease: { ...l, tally: tallyShed(tallyArrival(l.tally, false), reason, arrival.priority, true) },
    outcome: { kind: "shed", reason, retryAfterMs: Math.max(0, retryAfterMs) },
    evicted: [],
  };
}

/**
 * Decides one arrival: admit on the lease, queue it locally, or shed it now. Run `pump` at the
 * same `now` first, so the queue's head is known not to be admissible.
 */
export function arrive(l0: EdgeLease, limits: AdmissionLimits, arrival: Arrival, now: number): EdgeArrival {
  const l: EdgeLease = { ...l0, arrivalsSinceSent: l0.arrivalsSinceSent + 1, lastDemandAt: now };
  if (arrival.deadline <= now) return refused(l, arrival, "wait_exceeds_deadline", drainMs(l));
  if (l.queue.length === 0 && canAdmitNow(l, now)) {
    const admitted = admitOne(l, arrival.priority);
    return {
      lease: { ...admitted, tally: tallyArrival(admitted.tally, false) },
      outcome: { kind: "admit" },
      evicted: [],
    };
  }
  if (!isValid(l, now) && l.failedAt !== null && now - l.failedAt < RENEW_RETRY_MS) {
    return { lease: { ...l, tally: tallyArrival(l.tally, false) }, outcome: { kind: "unavailable" }, evicted: [] };
  }

  const asking = worthAsking(l, now);
  // Only a cold lease stretches the wait to the answer of its first renewal; a warm one that
  // asks for more keeps the tenant's own wait bound.
  const cold = !isValid(l, now);
  const budget = cold
    ? Math.max(
        waitBudgetMs(limits, arrival, now, l.holdMs),
        Math.min(ASK_WAIT_MS, arrival.deadline - now - (l.holdMs ?? 0)),
      )
    : waitBudgetMs(limits, arrival, now, l.holdMs);
  const ahead = countAhead(l.queue, arrival.priority);
  const wait = asking ? { tokenMs: 0, slotMs: 0 } : expectedWaitMs(l, arrival.priority, ahead);
  const waitMs = Math.max(wait.tokenMs, wait.slotMs);
  const bound = cold ? Math.max(limits.maxQueue, limits.maxInFlight) : limits.maxQueue;
  if (bound === 0) return refused(l, arrival, wait.tokenMs > 0 ? "rate_limited" : "queue_full", waitMs);
  if (budget <= 0) return refused(l, arrival, "wait_exceeds_deadline", waitMs);
  if (waitMs > budget)
    return refused(l, arrival, wait.tokenMs > budget ? "rate_limited" : "wait_exceeds_deadline", waitMs);

  let queue = l.queue;
  const evicted: Waiter[] = [];
  let tally = l.tally;
  if (queue.length >= bound) {
    const victim = victimForFullQueue(queue, arrival, arrival.fullBehaviour);
    if (!victim) return refused(l, arrival, "queue_full", drainMs(l));
    queue = removeWaiter(queue, victim.id);
    evicted.push(victim);
    tally = tallyShed(tally, "evicted", victim.priority, true);
  }
  const waiter: Waiter = { ...arrival, seq: l.nextSeq, enqueuedAt: now, expiresAt: now + budget };
  return {
    lease: { ...l, queue: enqueue(queue, waiter), nextSeq: l.nextSeq + 1, tally: tallyArrival(tally, true) },
    outcome: { kind: "queued", waiter },
    evicted,
  };
}

/** When a request behind the whole local queue could expect to get in. */
export function drainMs(l: EdgeLease): number {
  const wait = expectedWaitMs(l, "low", l.queue.length);
  const ms = Math.max(wait.tokenMs, wait.slotMs);
  return Number.isFinite(ms) ? ms : 1_000;
}

export interface PumpResult {
  readonly lease: EdgeLease;
  /** Waiters that now hold a slot and a token, in service order. */
  readonly granted: readonly Waiter[];
  /** Waiters whose wait ended; each must be answered `queue_timeout`. */
  readonly timedOut: readonly Waiter[];
}

/** Drops waiters whose wait ended, admits waiters while the lease allows, returns the surplus. */
export function pump(l0: EdgeLease, now: number): PumpResult {
  const { live, expired } = partitionExpired(l0.queue, now);
  let l: EdgeLease = { ...l0, queue: live };
  for (const waiter of expired) l = { ...l, tally: tallyShed(l.tally, "queue_timeout", waiter.priority, true) };
  const granted: Waiter[] = [];
  for (let head = l.queue[0]; head && canAdmitNow(l, now); head = l.queue[0]) {
    l = { ...admitOne(l, head.priority), queue: l.queue.slice(1) };
    granted.push(head);
  }
  return { lease: returnSurplus(l), granted, timedOut: expired };
}

/**
 * After an answer changed what the lease knows: waiters that can no longer be served within
 * their wait, by the new numbers, are refused now rather than left to time out (a cold lease
 * that the object gave no token, a lease whose slots turn out too few). Not while asking again
 * could still help.
 */
export function reassess(
  l0: EdgeLease,
  now: number,
): {
  readonly lease: EdgeLease;
  readonly refused: readonly { waiter: Waiter; reason: AdmissionShedReason; retryAfterMs: number }[];
} {
  if (worthAsking(l0, now)) return { lease: l0, refused: [] };
  let l = l0;
  const refused: { waiter: Waiter; reason: AdmissionShedReason; retryAfterMs: number }[] = [];
  let ahead = 0;
  for (const waiter of l0.queue) {
    const wait = expectedWaitMs(l0, waiter.priority, ahead);
    const left = waiter.expiresAt - now;
    if (Math.max(wait.tokenMs, wait.slotMs) <= left) {
      ahead += 1;
      continue;
    }
    const reason: AdmissionShedReason = wait.tokenMs > left ? "rate_limited" : "wait_exceeds_deadline";
    const retryAfterMs = Math.max(wait.tokenMs, wait.slotMs);
    refused.push({ waiter, reason, retryAfterMs: Number.isFinite(retryAfterMs) ? retryAfterMs : 1_000 });
    l = { ...l, queue: removeWaiter(l.queue, waiter.id), tally: tallyShed(l.tally, reason, waiter.priority, false) };
  }
  return { lease: l, refused };
}

/**
 * A waiter that left before it was served: its own timer fired first (`reason`, a shed), or its
 * client went away (null: counted as gone, so arrivals still add up with nothing answered).
 */
export function cancelWaiter(
  l: EdgeLease,
  id: string,
  reason: AdmissionShedReason | null,
): { readonly lease: EdgeLease; readonly waiter: Waiter | null } {
  const waiter = l.queue.find((w) => w.id === id) ?? null;
  if (!waiter) return { lease: l, waiter: null };
  const tally = reason ? tallyShed(l.tally, reason, waiter.priority, true) : tallyGone(l.tally);
  return { lease: { ...l, queue: removeWaiter(l.queue, id), tally }, waiter };
}

/**
 * Records how an admitted request ended. `heldMs` feeds the hold-time average when the request
 * completed. The slot itself is freed by `freeSlot`, at once or, for a request the origin may
 * still be working on, after it lingered.
 */
export function finish(l: EdgeLease, outcome: ReleaseOutcome, heldMs: number | null): EdgeLease {
  const holdMs = outcome === "completed" && heldMs !== null ? nextAverage(l.holdMs, Math.max(0, heldMs)) : l.holdMs;
  return { ...l, holdMs, tally: tallyRelease(l.tally, outcome) };
}

export function freeSlot(l: EdgeLease, priority: Priority): EdgeLease {
  return { ...l, inUse: bump(l.inUse, priority, l.inUse[priority] > 0 ? -1 : 0) };
}

/**
 * Gives back the token of a request admitted but never sent (the origin stage refused it), if
 * its spending has not been reported yet; once reported, the object has counted it spent.
 */
export function refundToken(l: EdgeLease): EdgeLease {
  return l.tokensSpent > l.tokensSpentSent ? { ...l, tokensSpent: l.tokensSpent - 1 } : l;
}

function idle(l: EdgeLease, now: number): boolean {
  return l.queue.length === 0 && inUseTotal(l) === 0 && now - l.lastDemandAt >= LEASE_TIMING.idleReturnMs;
}

/** Nothing held, nothing wanted, nothing to report: the isolate may forget this lease. */
export function isDone(l: EdgeLease, now: number): boolean {
  return !l.renewing && l.queue.length === 0 && inUseTotal(l) === 0 && (l.left || (!holdsOrOwes(l) && idle(l, now)));
}

/**
 * Holds slots or tokens, or gave some back or spent some that the object has not heard of: a
 * lease that returned its last slot still owes the report that hands it on.
 */
function holdsOrOwes(l: EdgeLease): boolean {
  return (
    heldSlots(l) > 0 || heldTokens(l) > 0 || l.slotsReturned > l.slotsReturnedSent || l.tokensSpent > l.tokensSpentSent
  );
}

/** Whether a renewal should be sent now. */
export function renewalDue(l: EdgeLease, now: number): boolean {
  if (l.renewing || l.left) return false;
  // Idle, it leaves even holding nothing: its object forgets it now, and the next arrival starts a
  // new lease, instead of resuming one the object may have reclaimed meanwhile (see applyReport).
  if (idle(l, now) && l.seq >= 0) return true;
  const holding = holdsOrOwes(l);
  const waiting = l.queue.length > 0;
  if (!holding && !waiting) return false;
  if (l.failedAt !== null && now - l.failedAt < RENEW_RETRY_MS) return false;
  if (waiting && !isValid(l, now)) return true;
  const gapOk = now - l.sentAt >= LEASE_TIMING.minGapMs;
  if (waiting && worthAsking(l, now) && gapOk) return true;
  // A slot given back goes at once: another isolate waits for it (that is why the target fell).
  if (l.slotsReturned > l.slotsReturnedSent) return true;
  return now >= l.renewAt;
}

/** When this lease next needs attention with no request arriving: a waiter's expiry, a renewal, going idle. */
export function nextWakeAt(l: EdgeLease): number | null {
  const times: number[] = [];
  const expiry = earliestExpiry(l.queue);
  if (expiry !== null) times.push(expiry);
  if (holdsOrOwes(l) || l.queue.length > 0) times.push(l.renewAt);
  if (inUseTotal(l) === 0 && l.queue.length === 0 && !l.left) times.push(l.lastDemandAt + LEASE_TIMING.idleReturnMs);
  return times.length > 0 ? Math.min(...times) : null;
}

/**
 * The report that renews the lease (or, when idle, gives everything back). Marks the lease as
 * renewing: exactly one report is on its way until `applyAnswer` or `renewalFailed`.
 */
export function startRenewal(
  l: EdgeLease,
  limits: AdmissionLimits,
  coverMs: number,
  now: number,
): { readonly lease: EdgeLease; readonly report: LeaseReport } {
  const leaving = idle(l, now);
  const elapsed = l.sentAt > 0 ? Math.max(1, now - l.sentAt) : LEASE_TIMING.renewEveryMs;
  const arrivalRate = nextAverage(l.sentAt > 0 ? l.arrivalRate : null, (l.arrivalsSinceSent * 1000) / elapsed, 0.5);
  const horizonMs = 2 * LEASE_TIMING.renewEveryMs;
  const wantTokens = leaving
    ? 0
    : Math.min(limits.burst, l.queue.length + Math.ceil((arrivalRate * horizonMs) / 1000) + 1);
  // A long poll only when the waiters may wait for what the object can free for this lease: a
  // slot another isolate gives back, or a token. A lone isolate holding the whole limit waits
  // only for its own slots; holding its renewal at the object would leave it unable to ask for
  // tokens meanwhile (the lab: p99 225 ms at 40% load).
  const ownsAllSlots = heldSlots(l) >= (l.view?.limits.maxInFlight ?? Number.POSITIVE_INFINITY);
  const expiry = l.queue.length > 0 && (!ownsAllSlots || heldTokens(l) < 1) ? earliestExpiry(l.queue) : null;
  // Whole ms: the report's schema takes no fraction, and an expiry inherits one from the hold-time average.
  const waitMs = expiry === null ? 0 : Math.max(0, Math.floor(Math.min(LEASE_TIMING.longPollMs, expiry - now - 5)));
  const next: EdgeLease = {
    ...l,
    seq: l.seq + 1,
    slotsReturned: leaving ? l.slotsGranted : l.slotsReturned,
    tokensReturned: leaving ? l.tokensReturned + heldTokens(l) : l.tokensReturned,
    renewing: true,
    left: leaving,
    sentAt: now,
    arrivalRate,
    arrivalsSinceSent: 0,
  };
  const sent: EdgeLease = { ...next, slotsReturnedSent: next.slotsReturned, tokensSpentSent: next.tokensSpent };
  return {
    lease: sent,
    report: {
      holder: l.holder,
      seq: sent.seq,
      slotsReturned: sent.slotsReturned,
      tokensSpent: sent.tokensSpent,
      tokensReturned: sent.tokensReturned,
      inUse: { ...sent.inUse },
      waiting: countQueuedByPriority(sent.queue),
      wantTokens,
      holdMs: sent.holdMs,
      waitMs,
      coverMs,
      leaving,
      tally: sent.tally,
    },
  };
}

/**
 * Grants the object has forgotten: its cumulative numbers never shrink while it knows this holder,
 * so smaller ones mean it reclaimed the lease (the isolate could not reach it for longer than
 * ttl + cover + grace) and gave what it held to others. The lease starts over from the object's
 * new record: it keeps only slots for requests still in use, out of what that record granted, and
 * reports the rest returned; its old tokens are gone.
 */
function startOver(l: EdgeLease, answer: LeaseGrant): EdgeLease {
  const keep = Math.min(inUseTotal(l), answer.slotsGranted);
  return {
    ...l,
    slotsGranted: answer.slotsGranted,
    slotsReturned: answer.slotsGranted - keep,
    slotsReturnedSent: 0,
    tokensGranted: answer.tokensGranted,
    tokensSpent: 0,
    tokensSpentSent: 0,
    tokensReturned: answer.tokensGranted,
  };
}

/** Takes in the object's answer to the report sent at `l.sentAt`. Run `pump` after it. */
export function applyAnswer(l0: EdgeLease, answer: LeaseGrant): EdgeLease {
  const forgotten = answer.slotsGranted < l0.slotsGranted || answer.tokensGranted < l0.tokensGranted;
  const l = forgotten ? startOver(l0, answer) : l0;
  return {
    ...l,
    renewing: false,
    failedAt: null,
    slotsGranted: Math.max(l.slotsGranted, answer.slotsGranted),
    tokensGranted: Math.max(l.tokensGranted, answer.tokensGranted),
    targetSlots: answer.targetSlots,
    validUntil: l.left ? 0 : l.sentAt + LEASE_TIMING.ttlMs,
    renewAt: l.sentAt + answer.renewInMs,
    view: {
      freeSlots: answer.freeSlots,
      freeTokens: answer.freeTokens,
      tokenRate: answer.tokenRate,
      waitingAtOrAbove: answer.waitingAtOrAbove,
      holdMs: answer.holdMs,
      limits: answer.limits,
      quota: answer.quota,
    },
  };
}

/**
 * The renewal failed (the object could not be reached, or was overloaded). The lease stays
 * usable until it expires; waiters that only the object could serve are handed to the fail
 * mode once it has.
 */
export function renewalFailed(
  l: EdgeLease,
  now: number,
): { readonly lease: EdgeLease; readonly stranded: readonly Waiter[] } {
  const failed: EdgeLease = { ...l, renewing: false, failedAt: now, renewAt: now + RENEW_RETRY_MS };
  if (isValid(failed, now)) return { lease: failed, stranded: [] };
  return { lease: { ...failed, queue: [] }, stranded: failed.queue };
}
