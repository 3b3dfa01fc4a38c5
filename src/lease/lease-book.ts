/**
 * The tenant object's lease book, as pure functions: the bucket and the in-flight limit are the
 * totals, and every slot and token an isolate may spend is taken from them before it is spent.
 * No `this`, no I/O, no clock: `now` (the object's epoch ms) is passed in.
 *
 * Invariants (each has a property test in test/unit/lease.properties.test.ts):
 * - slots held by all holders together (granted - returned) never exceed maxInFlight;
 * - the bucket plus the tokens out at holders never exceed the burst (the bucket refills only up
 *   to burst minus what is out), so tokens spent over a window stay within burst + rate x window;
 * - a report applied twice, late or out of order changes nothing the second time.
 */
import type { AdmissionLimits } from "../admission/limits";
import { PRIORITIES, type Priority, countByPriority } from "../admission/priority";
import { type BucketState, fullBucket, msUntilFull, refill } from "../admission/token-bucket";
import {
  LEASE_TIMING,
  type LeaseGrant,
  type LeaseReport,
  type LeaseTally,
  MAX_HOLDERS,
  type Quota,
} from "./lease-protocol";
import { slotTargets } from "./slot-allocation";
import { emptyTally, tallyDelta } from "./tally";

export interface HolderLease {
  readonly id: string;
  readonly seq: number;
  readonly slotsGranted: number;
  readonly slotsReturned: number;
  readonly tokensGranted: number;
  readonly tokensSpent: number;
  readonly tokensReturned: number;
  readonly inUse: Readonly<Record<Priority, number>>;
  readonly waiting: Readonly<Record<Priority, number>>;
  readonly wantTokens: number;
  readonly holdMs: number | null;
  readonly tally: LeaseTally;
  /**
   * Requests decided per second, by priority (admitted, shed or gone), from the tally's growth
   * between reports, smoothed: the holder's offered load, by which a contended limit is split.
   * Absent in records written before it existed.
   */
  readonly offered?: Readonly<Record<Priority, number>>;
  /** The object's clock: until then the holder may admit on what it holds. */
  readonly validUntil: number;
  /** The object's clock: past this the holder is presumed gone and what it holds comes back. */
  readonly reclaimAt: number;
}

/**
 * A holder that left or was reclaimed, remembered a while by its last report: a late or repeated
 * report of it (a leaving report retried after its answer was lost, an isolate that was paused
 * past its reclaim) is then stale, or counts only what it decided since, instead of its whole
 * cumulative tally a second time.
 */
export interface DepartedHolder {
  readonly id: string;
  readonly seq: number;
  readonly tally: LeaseTally;
  readonly at: number;
}

/** Departed holders are remembered this long, and at most this many (the newest). */
export const DEPARTED_KEEP_MS = 10 * 60_000;
export const MAX_DEPARTED = 256;

export interface LeaseBook {
  readonly bucket: BucketState;
  readonly holders: readonly HolderLease[];
  /** Absent in records written before it existed. */
  readonly departed?: readonly DepartedHolder[];
}

export function emptyBook(limits: AdmissionLimits, now: number): LeaseBook {
  return { bucket: fullBucket(limits, now), holders: [] };
}

export const slotsHeld = (h: HolderLease) => h.slotsGranted - h.slotsReturned;
export const tokensHeld = (h: HolderLease) => h.tokensGranted - h.tokensSpent - h.tokensReturned;
const sum = (values: Iterable<number>) => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};
const total = (counts: Readonly<Record<Priority, number>>) => sum(Object.values(counts));

export function slotsOut(book: LeaseBook): number {
  return sum(book.holders.map(slotsHeld));
}

export function tokensOut(book: LeaseBook): number {
  return sum(book.holders.map(tokensHeld));
}

/** What the bucket may hold: the burst, less the tokens out at holders. */
function bucketCapacity(book: LeaseBook, limits: AdmissionLimits): number {
  return Math.max(0, limits.burst - tokensOut(book));
}

function refilled(book: LeaseBook, limits: AdmissionLimits, now: number): LeaseBook {
  return { ...book, bucket: refill(book.bucket, { rate: limits.rate, burst: bucketCapacity(book, limits) }, now) };
}

function departedOf(book: LeaseBook, id: string): DepartedHolder | undefined {
  return book.departed?.find((d) => d.id === id);
}

/** Remembers `gone` as departed at `now`, forgetting those past DEPARTED_KEEP_MS or beyond MAX_DEPARTED. */
function depart(departed: readonly DepartedHolder[] | undefined, gone: readonly HolderLease[], now: number) {
  const fresh = gone.map((h) => ({ id: h.id, seq: h.seq, tally: h.tally, at: now }));
  const ids = new Set(gone.map((h) => h.id));
  const kept = (departed ?? []).filter((d) => !ids.has(d.id) && now - d.at < DEPARTED_KEEP_MS);
  return [...kept, ...fresh].slice(-MAX_DEPARTED);
}

function newHolder(id: string, departed?: DepartedHolder): HolderLease {
  return {
    id,
    seq: departed?.seq ?? -1,
    slotsGranted: 0,
    slotsReturned: 0,
    tokensGranted: 0,
    tokensSpent: 0,
    tokensReturned: 0,
    inUse: countByPriority(),
    waiting: countByPriority(),
    wantTokens: 0,
    holdMs: null,
    tally: departed?.tally ?? emptyTally(),
    validUntil: 0,
    reclaimAt: 0,
  };
}

export type ApplyResult =
  | { readonly kind: "applied"; readonly book: LeaseBook; readonly delta: LeaseTally }
  /** A repeated or overtaken report: nothing changed, but the holder still gets an answer. */
  | { readonly kind: "stale"; readonly book: LeaseBook }
  /** MAX_HOLDERS hold already: this isolate gets nothing until one leaves or is reclaimed. */
  | { readonly kind: "full"; readonly book: LeaseBook };

/**
 * Takes in what a holder reports. Cumulative numbers only move forward and are clamped to what
 * was granted, so a confused or hostile report can give back more than it holds but never
 * conjure capacity. A leaving holder settles everything and is forgotten: it returned all it saw
 * granted, and anything else was granted in an answer it never received, so it cannot be in use.
 *
 * A holder first heard of in the middle of its reports (seq > 0) is taken in without a valid
 * lease, so it is granted nothing until its next report: it lost its first report, or it is a
 * late report of a holder that left or was reclaimed, whose grants would go to nobody.
 */
export function applyReport(book: LeaseBook, limits: AdmissionLimits, report: LeaseReport, now: number): ApplyResult {
  const index = book.holders.findIndex((h) => h.id === report.holder);
  if (index < 0 && book.holders.length >= MAX_HOLDERS) return { kind: "full", book };
  // A departed holder comes back with its seq and tally only: what it held was settled or reclaimed.
  const before =
    index < 0 ? newHolder(report.holder, departedOf(book, report.holder)) : (book.holders[index] as HolderLease);
  if (report.seq <= before.seq) return { kind: "stale", book };

  const current = book;
  const slotsReturned = report.leaving
    ? before.slotsGranted
    : Math.min(before.slotsGranted, Math.max(before.slotsReturned, report.slotsReturned));
  const tokensSpent = Math.min(
    before.tokensGranted - before.tokensReturned,
    Math.max(before.tokensSpent, report.tokensSpent),
  );
  const tokensReturned = report.leaving
    ? before.tokensGranted - tokensSpent
    : Math.min(before.tokensGranted - tokensSpent, Math.max(before.tokensReturned, report.tokensReturned));
  const validUntil = now + LEASE_TIMING.ttlMs;
  const inactive = report.leaving || (index < 0 && report.seq > 0);
  const after: HolderLease = {
    ...before,
    seq: report.seq,
    slotsReturned,
    tokensSpent,
    tokensReturned,
    inUse: report.inUse,
    waiting: inactive ? countByPriority() : report.waiting,
    wantTokens: inactive ? 0 : report.wantTokens,
    holdMs: report.holdMs,
    tally: report.tally,
    offered: index < 0 ? before.offered : offeredLoad(before, report.tally, now),
    validUntil: inactive ? now : validUntil,
    reclaimAt: validUntil + report.coverMs + LEASE_TIMING.graceMs,
  };
  const settled = slotsHeld(after) === 0 && tokensHeld(after) === 0;
  const gone = report.leaving && settled;
  const holders = gone
    ? current.holders.filter((h) => h.id !== report.holder)
    : index < 0
      ? [...current.holders, after]
      : current.holders.map((h, i) => (i === index ? after : h));
  const departed = gone
    ? depart(current.departed, [after], now)
    : index < 0 && current.departed?.some((d) => d.id === report.holder)
      ? current.departed.filter((d) => d.id !== report.holder)
      : current.departed;
  // Unspent tokens come home, never above what the bucket may hold beside those still out.
  const back = after.tokensReturned - before.tokensReturned;
  // Refilled after the spending is known: the tokens a holder spent since its last report stop
  // counting against the burst for the whole interval. Refilling first held the bucket to burst
  // minus tokens already spent, so a lone holder got burst/2 per renewal (the multi-isolate run:
  // rate 40/s, burst 8 served 16/s). The bucket and what is out still never exceed the burst.
  let next: LeaseBook = refilled({ ...current, holders, ...(departed ? { departed } : {}) }, limits, now);
  next = {
    ...next,
    bucket: { ...next.bucket, tokens: Math.min(bucketCapacity(next, limits), next.bucket.tokens + back) },
  };
  return { kind: "applied", book: next, delta: tallyDelta(before.tally, report.tally) };
}

/** Holders past their reclaim time: gone, so their slots come back and their tokens count as spent. */
export function reclaimExpired(
  book: LeaseBook,
  limits: AdmissionLimits,
  now: number,
): { readonly book: LeaseBook; readonly reclaimed: readonly HolderLease[] } {
  const reclaimed = book.holders.filter((h) => h.reclaimAt <= now);
  if (reclaimed.length === 0) return { book, reclaimed };
  const current = refilled(book, limits, now);
  const holders = current.holders.filter((h) => h.reclaimAt > now);
  return { book: { ...current, holders, departed: depart(current.departed, reclaimed, now) }, reclaimed };
}

export function earliestReclaim(book: LeaseBook): number | null {
  let earliest: number | null = null;
  for (const h of book.holders) if (earliest === null || h.reclaimAt < earliest) earliest = h.reclaimAt;
  return earliest;
}

const wantedTokens = (h: HolderLease) => Math.max(0, h.wantTokens - tokensHeld(h));
const demandOf = (h: HolderLease) => total(h.inUse) + total(h.waiting);

/** Weight of a new rate sample in a holder's offered load (a few reports' memory). */
const OFFERED_ALPHA = 0.3;

/** The holder's decisions per second since its last report, by priority, folded into its average. */
/**
 * The slots a holder's offered load keeps busy, by priority (Little's law: rate x hold time),
 * for slot-allocation.ts; none while its load or hold time is not known yet.
 */
function withOffered(h: HolderLease) {
  if (!h.offered || h.holdMs === null) return h;
  const holdMs = h.holdMs;
  const offered = countByPriority();
  for (const p of PRIORITIES) offered[p] = (h.offered[p] * holdMs) / 1000;
  return { inUse: h.inUse, waiting: h.waiting, offered };
}

function offeredLoad(before: HolderLease, tally: LeaseTally, now: number): Record<Priority, number> {
  const lastReportAt = before.validUntil - LEASE_TIMING.ttlMs;
  const elapsedMs = now - lastReportAt;
  const previous = before.offered;
  if (elapsedMs <= 0) return { ...(previous ?? countByPriority()) };
  const delta = tallyDelta(before.tally, tally);
  const out = countByPriority();
  for (const p of PRIORITIES) {
    let decided = delta.admitted[p];
    for (const counts of Object.values(delta.shed)) decided += counts[p];
    const rate = (decided * 1000) / elapsedMs;
    out[p] = previous ? previous[p] + OFFERED_ALPHA * (rate - previous[p]) : rate;
  }
  return out;
}

export interface GrantResult {
  readonly book: LeaseBook;
  readonly answer: LeaseGrant;
  /** Slots or tokens were granted: the book changed and must be kept before the answer goes. */
  readonly granted: boolean;
  /**
   * Nothing granted and nothing to give back: the object may hold this answer a while (long poll)
   * for capacity to free. An answer that lowers the holder's target below what it holds must go
   * at once, or the slots another holder waits for stay where they are until the poll ends.
   */
  readonly holdable: boolean;
}

/**
 * Grants the holder what its target allows and what is free: slots by priority and demand across
 * holders (see slot-allocation.ts), tokens in proportion to what each holder still wants. Answers
 * with the cumulative grants and the numbers the isolate decides with until its next renewal.
 */
export function grant(book: LeaseBook, limits: AdmissionLimits, holderId: string, now: number): GrantResult {
  let current = refilled(book, limits, now);
  const index = current.holders.findIndex((h) => h.id === holderId);
  const holder = current.holders[index];
  // Nothing for a holder without a valid lease (see applyReport): it would go to nobody.
  if (!holder || holder.validUntil <= now) {
    return { book: current, answer: answerFor(current, limits, holder ?? null, 0, 0), granted: false, holdable: false };
  }

  const active = current.holders.filter((h) => h.validUntil > now || h.id === holderId);
  // Every holder's target from the same order (the book's), so the targets add up to the limit:
  // were the asker first, each would take the spare's remainder and keep it, while another
  // holder's demand went unmet.
  const target = slotTargets(active.map(withOffered), limits.maxInFlight)[active.indexOf(holder)] ?? 0;
  const free = Math.max(0, limits.maxInFlight - slotsOut(current));
  const slots = Math.max(0, Math.min(target - slotsHeld(holder), free));

  const available = Math.floor(current.bucket.tokens);
  const need = wantedTokens(holder);
  const allNeed = sum(active.map(wantedTokens));
  const fair = allNeed > 0 ? Math.floor((available * need) / allNeed) : 0;
  const tokens = Math.min(need, available, Math.max(fair, need > 0 && available >= 1 ? 1 : 0));

  const updated: HolderLease = {
    ...holder,
    slotsGranted: holder.slotsGranted + slots,
    tokensGranted: holder.tokensGranted + tokens,
  };
  current = {
    bucket: { ...current.bucket, tokens: current.bucket.tokens - tokens },
    holders: current.holders.map((h, i) => (i === index ? updated : h)),
  };
  // Renew faster only when demand is unmet and capacity can move: another holder's (this one may
  // have to give slots up, and should hear so soon), or this one's while its target is above what
  // it holds (slots others give back come to it on its next renewal). A lone holder under load
  // has nobody to give slots to nor take them from.
  const others = active.filter((h) => h.id !== holderId);
  const waitsForSlots = demandOf(holder) > slotsHeld(updated) && slotsHeld(updated) < target;
  const contended =
    waitsForSlots ||
    others.some((h) => demandOf(h) > slotsHeld(h)) ||
    (others.some((h) => wantedTokens(h) > 0) && current.bucket.tokens < 1);
  return {
    book: current,
    answer: answerFor(current, limits, updated, target, contended ? 1 : 0),
    granted: slots > 0 || tokens > 0,
    holdable: slots === 0 && tokens === 0 && target >= slotsHeld(updated),
  };
}

function answerFor(
  book: LeaseBook,
  limits: AdmissionLimits,
  holder: HolderLease | null,
  target: number,
  contended: number,
): LeaseGrant {
  const wantAll = sum(book.holders.map((h) => h.wantTokens));
  const share = holder && wantAll > 0 ? holder.wantTokens / wantAll : 1;
  const free = limits.maxInFlight - slotsOut(book);
  const waitingAtOrAbove = countByPriority();
  let above = 0;
  for (const priority of [...PRIORITIES].reverse()) {
    above += sum(book.holders.map((h) => h.waiting[priority]));
    waitingAtOrAbove[priority] = above;
  }
  const holds = book.holders.flatMap((h) => (h.holdMs === null ? [] : [h.holdMs]));
  return {
    kind: "lease",
    slotsGranted: holder?.slotsGranted ?? 0,
    tokensGranted: holder?.tokensGranted ?? 0,
    targetSlots: target,
    tokenRate: limits.rate * share,
    renewInMs: contended ? LEASE_TIMING.contendedRenewMs : LEASE_TIMING.renewEveryMs,
    freeSlots: Math.max(0, free),
    freeTokens: Math.max(0, Math.floor(book.bucket.tokens)),
    waitingAtOrAbove,
    holdMs: holds.length > 0 ? sum(holds) / holds.length : null,
    limits,
    quota: quotaOf(book, limits),
  };
}

/** The tenant as a whole: tokens not yet spent (in the bucket or out at holders), slots in use, waiters. */
export function quotaOf(book: LeaseBook, limits: AdmissionLimits): Quota {
  return {
    rate: limits.rate,
    burst: limits.burst,
    tokens: book.bucket.tokens + tokensOut(book),
    inFlight: sum(book.holders.map((h) => total(h.inUse))),
    maxInFlight: limits.maxInFlight,
    queued: sum(book.holders.map((h) => total(h.waiting))),
    maxQueue: limits.maxQueue,
    msUntilFull: msUntilFull(book.bucket, { rate: limits.rate, burst: Math.max(0, limits.burst - tokensOut(book)) }),
  };
}

/** Carries the book over new limits: the bucket clamped to the new burst; holders above their new targets return slots as they free. */
export function applyLimits(book: LeaseBook, limits: AdmissionLimits): LeaseBook {
  return { ...book, bucket: { ...book.bucket, tokens: Math.min(book.bucket.tokens, bucketCapacity(book, limits)) } };
}
