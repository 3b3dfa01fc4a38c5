import { DurableObject } from "cloudflare:workers";
import { type Counters, countCall, emptyCounters } from "./admission/counters";
import type { AdmissionLimits } from "./admission/limits";
import { PRIORITIES } from "./admission/priority";
import type { Env } from "./env";
import {
  type LeaseBook,
  applyLimits,
  applyReport,
  earliestReclaim,
  emptyBook,
  grant,
  reclaimExpired,
} from "./lease/lease-book";
import { type LeaseState, leaseState } from "./lease/lease-stats";
import { type LeaseAnswer, type LeaseReport, type LeaseTally, leaseReportSchema } from "./lease/lease-protocol";
import { countTally } from "./lease/tally";
import { ObjectTimers } from "./storage/object-timers";
import { type TenantConfig, limitsOf, tenantConfigSchema } from "./tenant/tenant-config";
import { type KeyChange, addKey, removeKey } from "./tenant/key-ring";
import { type KeyRecord, TenantStore } from "./tenant/tenant-store";

/** Counters and returns are written at most this often; grants are written before they are answered. */
export const FLUSH_INTERVAL_MS = 250;
/** An object with no config of its own (an anonymous per-IP bucket) deletes itself when idle. */
export const IDLE_CLEANUP_MS = 10 * 60_000;

export interface TenantStats {
  readonly limits: TenantConfig | null;
  readonly state: LeaseState;
  readonly counters: Counters;
  readonly keys: number;
}

export type { KeyChange } from "./tenant/key-ring";

interface PendingRenewal {
  readonly resolve: (answer: LeaseAnswer) => void;
  readonly until: number;
  readonly priority: number;
}

/**
 * One tenant's totals: the single writer of its bucket and in-flight limit, which it leases to
 * the isolates that have demand (src/lease/). A thin adapter: each call reads the clock once,
 * parses its input, calls the lease book, persists, and answers; a renewal that can be granted
 * nothing waits (bounded) for capacity another holder gives back.
 */
export class TenantGuard extends DurableObject<Env> {
  private readonly store: TenantStore;
  private config: TenantConfig | null;
  private keys: readonly KeyRecord[];
  private carriedLimits: AdmissionLimits | null = null;
  private book: LeaseBook | null = null;
  private counters: Counters = emptyCounters();
  private lastActiveAt = 0;
  /** At most one per holder, so bounded by MAX_HOLDERS. */
  private readonly pending = new Map<string, PendingRenewal>();
  private readonly timers = new ObjectTimers(this.ctx.storage, () => this.flush(), FLUSH_INTERVAL_MS);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new TenantStore(ctx.storage.sql);
    this.config = this.store.loadConfig();
    this.keys = this.store.loadKeys();
    const runtime = this.store.loadRuntime();
    if (runtime) {
      this.carriedLimits = runtime.carriedLimits;
      this.counters = runtime.counters;
      this.lastActiveAt = runtime.lastActiveAt;
      this.book = { bucket: runtime.bucket, holders: runtime.holders };
    }
    this.timers.ensureAlarm(this.book ? earliestReclaim(this.book) : null);
  }

  private limits(): AdmissionLimits | null {
    return this.config ? limitsOf(this.config) : this.carriedLimits;
  }

  async lease(raw: LeaseReport): Promise<LeaseAnswer> {
    const report = leaseReportSchema.parse(raw);
    const now = Date.now();
    this.counters = countCall(this.counters, "lease");
    const limits = this.adoptLimits(report.limits, now);
    if (!limits) return { kind: "unconfigured" };
    this.lastActiveAt = now;
    const applied = applyReport(this.reclaimed(limits, now), limits, report, now);
    this.book = applied.book;
    if (applied.kind === "applied") this.counters = countTally(this.counters, applied.delta);
    this.pending.get(report.holder)?.resolve(this.answerNow(report.holder, limits, now));
    this.pending.delete(report.holder);
    const result = grant(this.book, limits, report.holder, now);
    this.book = result.book;
    this.timers.ensureAlarm(earliestReclaim(this.book));
    if (result.granted) this.flush();
    else this.timers.markDirty();
    this.servePending(limits, now);
    const waiting = PRIORITIES.reduce((n, p) => n + report.waiting[p], 0);
    if (!result.holdable || report.leaving || report.waitMs === 0 || waiting === 0 || applied.kind === "full") {
      return result.answer;
    }
    const priority = Math.max(...PRIORITIES.map((p, rank) => (report.waiting[p] > 0 ? rank : -1)));
    return new Promise<LeaseAnswer>((resolve) => {
      this.pending.set(report.holder, { resolve, until: now + report.waitMs, priority });
      this.scheduleWake();
    });
  }

  /** Grants to waiting renewals, highest waiting priority first; answers those whose wait ran out anyway. */
  private servePending(limits: AdmissionLimits, now: number): void {
    const order = [...this.pending.entries()].sort((a, b) => b[1].priority - a[1].priority);
    for (const [holder, waiting] of order) {
      const result = grant(this.book ?? emptyBook(limits, now), limits, holder, now);
      // Still nothing to grant or to take back: it may wait on (see grant's `holdable`).
      if (result.holdable && waiting.until > now) continue;
      this.book = result.book;
      this.pending.delete(holder);
      if (result.granted) this.flush();
      waiting.resolve(result.answer);
    }
    this.scheduleWake();
  }

  private answerNow(holder: string, limits: AdmissionLimits, now: number): LeaseAnswer {
    const result = grant(this.book ?? emptyBook(limits, now), limits, holder, now);
    this.book = result.book;
    if (result.granted) this.flush();
    return result.answer;
  }

  private scheduleWake(): void {
    let at: number | null = null;
    for (const { until } of this.pending.values()) at = at === null ? until : Math.min(at, until);
    this.timers.wakeAt(at, () => {
      const limits = this.limits();
      if (limits) this.servePending(limits, Date.now());
    });
  }

  /**
   * The book with holders past their reclaim time taken back. `reaped` counts the admissions a
   * vanished holder never reported released, not the slots it held: a lone holder holds the whole
   * limit with a few of them in use, and only its admissions keep admitted = released + reaped +
   * in flight (the slots themselves come back to the book either way).
   */
  private reclaimed(limits: AdmissionLimits, now: number): LeaseBook {
    const result = reclaimExpired(this.book ?? emptyBook(limits, now), limits, now);
    let unreleased = 0;
    for (const holder of result.reclaimed) unreleased += unreleasedAdmissions(holder.tally);
    if (result.reclaimed.length > 0) {
      this.counters = {
        ...this.counters,
        reaped: this.counters.reaped + unreleased,
        holdersReaped: this.counters.holdersReaped + result.reclaimed.length,
      };
      this.timers.markDirty();
    }
    return result.book;
  }

  async configure(raw: TenantConfig): Promise<TenantConfig> {
    const config = tenantConfigSchema.parse(raw);
    const now = Date.now();
    this.store.saveConfig(config);
    this.config = config;
    const limits = limitsOf(config);
    this.book = this.book ? applyLimits(this.book, limits) : emptyBook(limits, now);
    this.servePending(limits, now);
    this.flush();
    return config;
  }

  async stats(): Promise<TenantStats> {
    const limits = this.limits();
    if (limits) this.book = this.reclaimed(limits, Date.now());
    return {
      limits: this.config,
      state: leaseState(this.book, limits),
      counters: this.counters,
      keys: this.keys.length,
    };
  }

  async addKey(key: KeyRecord): Promise<KeyChange> {
    if (!this.config) return { kind: "unconfigured" };
    return this.changeKeys(addKey(this.keys, key));
  }

  async removeKey(id: string): Promise<KeyChange> {
    return this.changeKeys(removeKey(this.keys, id));
  }

  private changeKeys(result: { keys: readonly KeyRecord[]; change: KeyChange }): KeyChange {
    if (result.change.kind === "ok") {
      this.keys = result.keys;
      this.store.saveKeys(this.keys);
    }
    return result.change;
  }

  async listKeys(): Promise<readonly KeyRecord[]> {
    return this.keys;
  }

  /** Forgets the tenant. Waiting renewals are answered `unconfigured`; returns the key records. */
  async destroy(): Promise<readonly KeyRecord[]> {
    const keys = this.keys;
    for (const { resolve } of this.pending.values()) resolve({ kind: "unconfigured" });
    this.pending.clear();
    this.timers.clear();
    this.config = null;
    this.keys = [];
    this.carriedLimits = null;
    this.book = null;
    this.counters = emptyCounters();
    this.store.deleteAll();
    await this.timers.deleteAlarm();
    return keys;
  }

  override async alarm(): Promise<void> {
    this.timers.alarmFired();
    this.reapAt(Date.now());
  }

  /**
   * Takes back the leases of holders that vanished and cleans idle anonymous buckets, as of
   * `now`: the alarm's body, with the clock passed in so tests can run it "later".
   */
  reapAt(now: number): void {
    const limits = this.limits();
    if (limits && this.book) {
      this.book = this.reclaimed(limits, now);
      this.servePending(limits, Math.min(now, Date.now()));
    }
    if (!this.config && (this.book?.holders.length ?? 0) === 0 && this.pending.size === 0) {
      if (now - this.lastActiveAt >= IDLE_CLEANUP_MS) {
        this.timers.clear();
        this.store.deleteAll();
        this.book = null;
        this.carriedLimits = null;
        this.counters = emptyCounters();
        return;
      }
      this.timers.ensureAlarm(this.lastActiveAt + IDLE_CLEANUP_MS);
    }
    this.timers.ensureAlarm(this.book ? earliestReclaim(this.book) : null);
    this.flush();
  }

  /** Writes the runtime record now; normally called by the flush timer. */
  flush(): void {
    this.timers.flushing();
    if (!this.book) return;
    this.store.saveRuntime({
      bucket: this.book.bucket,
      holders: this.book.holders,
      counters: this.counters,
      carriedLimits: this.config ? null : this.carriedLimits,
      lastActiveAt: this.lastActiveAt,
    });
  }

  private adoptLimits(carried: AdmissionLimits | undefined, now: number): AdmissionLimits | null {
    if (this.config) return limitsOf(this.config);
    if (!carried) return null;
    if (!this.carriedLimits) this.timers.ensureAlarm(now + IDLE_CLEANUP_MS);
    if (JSON.stringify(carried) !== JSON.stringify(this.carriedLimits)) {
      this.carriedLimits = carried;
      this.book = this.book ? applyLimits(this.book, carried) : emptyBook(carried, now);
    }
    return carried;
  }
}

/** What a holder's last report admitted and never reported released (lingering slots count as released). */
function unreleasedAdmissions(tally: LeaseTally): number {
  let admitted = 0;
  for (const p of PRIORITIES) admitted += tally.admitted[p];
  let released = 0;
  for (const count of Object.values(tally.released)) released += count;
  return Math.max(0, admitted - released);
}
