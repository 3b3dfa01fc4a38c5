/**
 * The tenant object's whole decision state, with no I/O and `now` passed in: its lease book,
 * its counters, the limits it holds for an object without a config (an anonymous per-IP
 * bucket), and the renewals it is holding (long poll) until capacity comes back. The Durable
 * Object (src/tenant-guard.ts) only parses, calls this, keeps the promises of the held renewals,
 * persists as told and arms its timers.
 */
import { type Counters, countCall, emptyCounters } from "../admission/counters";
import type { AdmissionLimits } from "../admission/limits";
import { PRIORITIES } from "../admission/priority";
import {
  type LeaseBook,
  applyLimits,
  applyReport,
  earliestReclaim,
  emptyBook,
  grant,
  reclaimExpired,
} from "./lease-book";
import type { LeaseAnswer, LeaseReport } from "./lease-protocol";
import { countTally, unreleasedAdmissions } from "./tally";
import type { DeskEffects as ShellEffects } from "../storage/object-shell";

/** An object with no config of its own (an anonymous per-IP bucket) forgets itself when idle this long. */
export const IDLE_CLEANUP_MS = 10 * 60_000;

export interface DeskRecord {
  readonly book: LeaseBook | null;
  readonly counters: Counters;
  readonly carriedLimits: AdmissionLimits | null;
  readonly lastActiveAt: number;
}

/**
 * What a call changed, for the shell: held renewals to answer now (by holder), and how soon to
 * write. Grants are written before they are answered ("now"); tallies and returns can wait ("soon").
 */
export type DeskEffects = ShellEffects<LeaseAnswer>;

/** The answer to a renewal, or that it is held until `until` (the holder asked to wait that long). */
export type DeskReply = { readonly kind: "answer"; readonly answer: LeaseAnswer } | { readonly kind: "hold" };

interface HeldRenewal {
  readonly until: number;
  /** The rank of its highest waiting priority: freed capacity reaches it first. */
  readonly rank: number;
}

const NOTHING: DeskEffects = { answers: [], persist: "no" };

export class LeaseDesk {
  private book: LeaseBook | null;
  private counters: Counters;
  private carriedLimits: AdmissionLimits | null;
  private lastActiveAt: number;
  /** At most one per holder, so bounded by MAX_HOLDERS. */
  private readonly held = new Map<string, HeldRenewal>();
  private persist: DeskEffects["persist"] = "no";
  private answers: Array<DeskEffects["answers"][number]> = [];

  constructor(
    private configured: AdmissionLimits | null,
    record: DeskRecord | null,
  ) {
    this.book = record?.book ?? null;
    this.counters = record?.counters ?? emptyCounters();
    this.carriedLimits = record?.carriedLimits ?? null;
    this.lastActiveAt = record?.lastActiveAt ?? 0;
  }

  record(): DeskRecord {
    const { book, counters, lastActiveAt } = this;
    return { book, counters, lastActiveAt, carriedLimits: this.configured ? null : this.carriedLimits };
  }

  limits(): AdmissionLimits | null {
    return this.configured ?? this.carriedLimits;
  }

  countersNow(): Counters {
    return this.counters;
  }

  bookNow(now: number): LeaseBook | null {
    const limits = this.limits();
    if (limits && this.book) this.book = this.reclaimed(limits, now);
    return this.book;
  }

  /** When the shell must wake: the earliest held renewal's end, and the earliest reclaim. */
  heldUntil(): number | null {
    let at: number | null = null;
    for (const { until } of this.held.values()) at = at === null ? until : Math.min(at, until);
    return at;
  }

  reclaimAt(): number | null {
    return this.book ? earliestReclaim(this.book) : null;
  }

  /** For the shell (src/storage/object-shell.ts): the alarm reaps and cleans up, the wake serves held renewals. */
  alarmsAt(): ReadonlyArray<number | null> {
    return [this.reclaimAt(), this.idleCleanupAt()];
  }

  wakeAt(): number | null {
    return this.heldUntil();
  }

  /** A renewal: applies its report, answers it, or holds it while nothing can be granted. */
  lease(report: LeaseReport, now: number): { reply: DeskReply; effects: DeskEffects } {
    this.counters = countCall(this.counters, "lease");
    const limits = this.adoptLimits(report.limits, now);
    if (!limits) return { reply: { kind: "answer", answer: { kind: "unconfigured" } }, effects: NOTHING };
    this.lastActiveAt = now;
    const applied = applyReport(this.reclaimed(limits, now), limits, report, now);
    this.book = applied.book;
    if (applied.kind === "applied") this.counters = countTally(this.counters, applied.delta);
    this.touch("soon");
    // A newer report from a holder whose last renewal is held: that one is answered now.
    if (this.held.delete(report.holder))
      this.answers.push({ to: report.holder, answer: this.grantTo(report.holder, limits, now).answer });
    const result = this.grantTo(report.holder, limits, now);
    this.serveHeld(limits, now);
    const waiting = PRIORITIES.reduce((n, p) => n + report.waiting[p], 0);
    const hold = result.holdable && !report.leaving && report.waitMs > 0 && waiting > 0 && applied.kind !== "full";
    if (hold) {
      const rank = Math.max(...PRIORITIES.map((p, r) => (report.waiting[p] > 0 ? r : -1)));
      this.held.set(report.holder, { until: now + report.waitMs, rank });
    }
    return { reply: hold ? { kind: "hold" } : { kind: "answer", answer: result.answer }, effects: this.effects() };
  }

  /** The held renewals' timer fired, or capacity came back: answers those that can be answered. */
  wake(now: number): DeskEffects {
    const limits = this.limits();
    if (limits) this.serveHeld(limits, now);
    return this.effects();
  }

  configure(limits: AdmissionLimits, now: number): DeskEffects {
    this.configured = limits;
    this.book = this.book ? applyLimits(this.book, limits) : emptyBook(limits, now);
    this.serveHeld(limits, now);
    this.touch("now");
    return this.effects();
  }

  /**
   * The alarm's body: takes back what vanished holders held and answers held renewals that can
   * be. `forget` is true when an object without a config has been idle long enough to delete.
   * `servedAt` (default `now`) is the clock held renewals are judged by: tests reap "later"
   * without cutting short a renewal a live isolate is still waiting on.
   */
  reap(now: number, servedAt = now): { effects: DeskEffects; forget: boolean } {
    const limits = this.limits();
    if (limits && this.book) {
      this.book = this.reclaimed(limits, now);
      this.serveHeld(limits, servedAt);
    }
    const forget =
      !this.configured &&
      (this.book?.holders.length ?? 0) === 0 &&
      this.held.size === 0 &&
      now - this.lastActiveAt >= IDLE_CLEANUP_MS;
    this.touch("now");
    return { effects: this.effects(), forget };
  }

  /** When an object without a config may be forgotten; null with a config, holders, or nothing to forget. */
  idleCleanupAt(): number | null {
    if (this.configured || !this.carriedLimits) return null;
    if ((this.book?.holders.length ?? 0) > 0 || this.held.size > 0) return null;
    return this.lastActiveAt + IDLE_CLEANUP_MS;
  }

  /** Forgets everything; held renewals are answered `unconfigured`. */
  reset(): DeskEffects {
    for (const holder of this.held.keys()) this.answers.push({ to: holder, answer: { kind: "unconfigured" } });
    this.held.clear();
    this.configured = null;
    this.book = null;
    this.carriedLimits = null;
    this.counters = emptyCounters();
    this.persist = "no";
    return this.effects();
  }

  private effects(): DeskEffects {
    const effects = { answers: this.answers, persist: this.persist };
    this.answers = [];
    this.persist = "no";
    return effects;
  }

  private touch(persist: "now" | "soon"): void {
    if (persist === "now" || this.persist === "no") this.persist = persist;
  }

  private grantTo(holder: string, limits: AdmissionLimits, now: number) {
    const result = grant(this.book ?? emptyBook(limits, now), limits, holder, now);
    this.book = result.book;
    if (result.granted) this.touch("now");
    return result;
  }

  /** Grants to held renewals, highest waiting priority first; answers those whose wait ran out anyway. */
  private serveHeld(limits: AdmissionLimits, now: number): void {
    const order = [...this.held.entries()].sort((a, b) => b[1].rank - a[1].rank);
    for (const [holder, held] of order) {
      const result = grant(this.book ?? emptyBook(limits, now), limits, holder, now);
      // Still nothing to grant or to take back: it may wait on (see grant's `holdable`).
      if (result.holdable && held.until > now) continue;
      this.book = result.book;
      if (result.granted) this.touch("now");
      this.held.delete(holder);
      this.answers.push({ to: holder, answer: result.answer });
    }
  }

  /**
   * The book with holders past their reclaim time taken back. `reaped` counts the admissions a
   * vanished holder never reported released, not the slots it held: a lone holder holds the whole
   * limit with a few of them in use, and only its admissions keep admitted = released + reaped +
   * in flight (the slots themselves come back to the book either way).
   */
  private reclaimed(limits: AdmissionLimits, now: number): LeaseBook {
    const result = reclaimExpired(this.book ?? emptyBook(limits, now), limits, now);
    if (result.reclaimed.length === 0) return result.book;
    let unreleased = 0;
    for (const holder of result.reclaimed) unreleased += unreleasedAdmissions(holder.tally);
    this.counters = {
      ...this.counters,
      reaped: this.counters.reaped + unreleased,
      holdersReaped: this.counters.holdersReaped + result.reclaimed.length,
    };
    this.touch("soon");
    return result.book;
  }

  private adoptLimits(carried: AdmissionLimits | undefined, now: number): AdmissionLimits | null {
    if (this.configured) return this.configured;
    if (!carried) return null;
    if (JSON.stringify(carried) !== JSON.stringify(this.carriedLimits)) {
      this.carriedLimits = carried;
      this.book = this.book ? applyLimits(this.book, carried) : emptyBook(carried, now);
    }
    return carried;
  }
}
