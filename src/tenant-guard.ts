import { DurableObject } from "cloudflare:workers";
import {
  type AdmissionState,
  applyLimits,
  arrive,
  initialState,
  nextWakeAt,
  pump,
  queueDrainMs,
  refundToken,
  release,
} from "./admission/admission";
import {
  type CreditGrant,
  CREDIT_MAX_BUDGET_MS,
  CREDIT_USABLE_MS,
  creditReclaimAt,
  creditSize,
  drawCredit,
  returnCredit,
} from "./admission/credit";
import {
  type CreditReport,
  type Counters,
  type LocalShedCount,
  type ReleaseOutcome,
  countAdmit,
  countArrival,
  countCall,
  countCreditReport,
  countLocalSheds,
  countRelease,
  countShed,
  emptyCounters,
} from "./admission/counters";
import {
  type Lease,
  earliestLeaseExpiry,
  expiredLeases,
  LEASE_GRACE_MS,
  lingerLease,
  newLease,
} from "./admission/leases";
import type { AdmissionLimits } from "./admission/limits";
import { saturationAfterShed } from "./admission/saturation";
import type { AdmissionShedReason } from "./admission/shed-reason";
import { msUntilFull } from "./admission/token-bucket";
import { countQueuedByPriority, type Waiter } from "./admission/wait-queue";
import type { Env } from "./env";
import { ObjectTimers } from "./storage/object-timers";
import {
  type AdmitDecision,
  type AdmitRequest,
  type Quota,
  admitRequestSchema,
  creditReportSchema,
  localShedBatchSchema,
} from "./tenant/rpc";
import { type TenantConfig, limitsOf, tenantConfigSchema } from "./tenant/tenant-config";
import { type CreditLease, type KeyRecord, TenantStore } from "./tenant/tenant-store";

/**
 * Runtime state (bucket, counters, leases) is written at most this often. A crash (not a normal
 * eviction, which comes after idle time) loses at most this much: counting, and the leases
 * granted in that window, so until those requests end in-flight can exceed maxInFlight by what
 * was admitted in the last FLUSH_INTERVAL_MS. Limits, keys and credits are written at once.
 */
export const FLUSH_INTERVAL_MS = 250;
/** An object with no config of its own (an anonymous per-IP bucket) deletes itself when idle. */
export const IDLE_CLEANUP_MS = 10 * 60_000;
/** Keys per tenant: enough for rotation, bounded so the key record stays small. */
export const MAX_KEYS_PER_TENANT = 20;

export interface TenantStats {
  readonly limits: TenantConfig | null;
  readonly state: {
    readonly tokens: number;
    readonly inFlight: number;
    readonly lingering: number;
    /** Slots held by credits handed to isolates (hot tenants). */
    readonly creditSlots: number;
    readonly queued: number;
    readonly queuedByPriority: Record<string, number>;
    readonly holdMsEwma: number | null;
  };
  readonly counters: Counters;
  readonly keys: number;
}

export type KeyChange =
  | { readonly kind: "ok"; readonly key: KeyRecord }
  | { readonly kind: "unconfigured" }
  | { readonly kind: "too_many_keys"; readonly max: number }
  | { readonly kind: "not_found" };

/**
 * One tenant's admission state. A thin adapter: each RPC reads the clock once, calls the pure
 * core (src/admission/), keeps what it returns, answers the waiters the core names, and
 * schedules the two timers the core asks for (queue wake-up in memory, lease reaping as an alarm).
 */
export class TenantGuard extends DurableObject<Env> {
  private readonly store: TenantStore;
  private config: TenantConfig | null;
  private keys: KeyRecord[];
  private carriedLimits: AdmissionLimits | null = null;
  private core: AdmissionState | null = null;
  private counters: Counters = emptyCounters();
  private lastActiveAt = 0;
  /** Bounded by maxInFlight plus lingering slots, which expire within MAX_LINGER_MS. */
  private readonly leases = new Map<string, Lease>();
  /** Each holds at least one slot, so bounded by maxInFlight too. */
  private readonly credits = new Map<string, CreditLease>();
  /** One entry per queued request; the core bounds the queue at maxQueue. */
  private readonly waiters = new Map<string, (decision: AdmitDecision) => void>();
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
      for (const lease of runtime.leases) this.leases.set(lease.id, lease);
      for (const credit of runtime.credits) this.credits.set(credit.id, credit);
      const limits = this.limits();
      if (limits) {
        this.core = {
          ...initialState(limits, runtime.bucket.updatedAt),
          bucket: runtime.bucket,
          inFlight: this.leases.size + this.creditSlots(),
          holdMsEwma: runtime.holdMsEwma,
          creditTokens: this.creditSlots(),
        };
      }
    }
    // Leases restored from storage may belong to holders that died with the old instance.
    this.timers.ensureAlarm(earliestLeaseExpiry(this.leases.values()));
    for (const credit of this.credits.values()) this.timers.ensureAlarm(credit.reclaimAt);
  }

  private creditSlots(): number {
    let slots = 0;
    for (const credit of this.credits.values()) slots += credit.tokens;
    return slots;
  }

  private limits(): AdmissionLimits | null {
    return this.config ? limitsOf(this.config) : this.carriedLimits;
  }

  async admit(raw: AdmitRequest): Promise<AdmitDecision> {
    const request = admitRequestSchema.parse(raw);
    const now = Date.now();
    this.counters = countCall(this.counters, "admit");
    if (request.localSheds) this.countLocalSheds(request.localSheds);
    const limits = this.adoptLimits(request, now);
    if (!limits) return { kind: "unconfigured" };
    this.pumpAt(now, limits);
    const core = this.core ?? initialState(limits, now);
    const id = crypto.randomUUID();
    const result = arrive(core, limits, { id, ...request }, now);
    this.core = result.state;
    this.lastActiveAt = now;
    for (const victim of result.evicted) this.answerShed(victim, "evicted", now, limits);
    const outcome = result.outcome;
    this.counters = countArrival(this.counters, outcome.kind === "queued");
    this.timers.markDirty();
    switch (outcome.kind) {
      case "admit": {
        const admitted = this.grant({ id, priority: request.priority, deadline: request.deadline }, now, 0, limits);
        return request.wantCredit ? { ...admitted, credit: this.grantCredit(limits, now) } : admitted;
      }
      case "shed":
        this.counters = countShed(this.counters, outcome.reason, request.priority);
        return {
          kind: "shed",
          reason: outcome.reason,
          retryAfterMs: outcome.retryAfterMs,
          waitedMs: 0,
          quota: this.quota(limits),
          saturation: saturationAfterShed(
            result.state,
            limits,
            { id, ...request },
            outcome.reason,
            outcome.expectedWaitMs,
            outcome.retryAfterMs,
          ),
        };
      case "queued": {
        const decision = new Promise<AdmitDecision>((resolve) => this.waiters.set(id, resolve));
        this.scheduleWake(limits);
        return decision;
      }
    }
  }

  /**
   * Takes back a credit an isolate is done with. Its admissions are counted now; a credit the
   * alarm already reclaimed still has its admissions counted, and frees nothing twice.
   */
  async returnCredit(creditId: string, raw: CreditReport): Promise<void> {
    const report = creditReportSchema.parse(raw);
    this.counters = countCreditReport(countCall(this.counters, "returnCredit"), report);
    const credit = this.credits.get(creditId);
    const limits = this.limits();
    if (credit && this.core && limits) {
      const now = Date.now();
      this.credits.delete(creditId);
      // Credited requests given up at their deadline (or by their client) may still run at the origin: their slots
      // linger like any other abandoned slot instead of coming back at once.
      const lingering = Math.min(credit.tokens, report.outcomes.deadline_exceeded + report.outcomes.abandoned);
      this.core = returnCredit(this.core, limits, credit.tokens, report.used, credit.tokens - lingering);
      for (let i = 0; i < lingering; i += 1) {
        const lease = lingerLease(newLease(crypto.randomUUID(), "normal", now, now), this.core.holdMsEwma, now);
        this.leases.set(lease.id, lease);
        this.timers.ensureAlarm(lease.expiresAt);
      }
      this.pumpAt(now, limits);
    }
    this.timers.markDirty();
  }

  private grantCredit(limits: AdmissionLimits, now: number): CreditGrant | null {
    const tokens = this.core ? creditSize(this.core, limits) : 0;
    if (!this.core || tokens < 1) return null;
    this.core = drawCredit(this.core, tokens);
    const credit: CreditLease = {
      id: crypto.randomUUID(),
      tokens,
      grantedAt: now,
      reclaimAt: creditReclaimAt(now, LEASE_GRACE_MS),
    };
    this.credits.set(credit.id, credit);
    this.timers.ensureAlarm(credit.reclaimAt);
    // Up to 16 slots leave at once: written now, so a crash cannot forget them (see FLUSH_INTERVAL_MS).
    this.flush();
    return { id: credit.id, tokens, usableForMs: CREDIT_USABLE_MS, maxBudgetMs: CREDIT_MAX_BUDGET_MS };
  }

  /**
   * Sheds an isolate decided itself from a cached verdict, reported in a batch so the
   * counters still add up (they lag the edge by at most the isolate's flush interval).
   */
  async recordLocalSheds(raw: LocalShedCount[]): Promise<void> {
    this.counters = countCall(this.counters, "reportSheds");
    this.countLocalSheds(localShedBatchSchema.parse(raw));
  }

  private countLocalSheds(batch: readonly LocalShedCount[]): void {
    if (batch.length === 0) return;
    this.counters = countLocalSheds(this.counters, batch);
    this.timers.markDirty();
  }

  /** Idempotent: a second release, or a release of a reaped lease, changes nothing. */
  async release(leaseId: string, outcome: ReleaseOutcome): Promise<void> {
    this.counters = countCall(this.counters, "release");
    const lease = this.leases.get(leaseId);
    if (!lease || lease.lingering) return;
    const now = Date.now();
    this.counters = countRelease(this.counters, outcome);
    if (outcome === "deadline_exceeded" || outcome === "abandoned") {
      const lingering = lingerLease(lease, this.core?.holdMsEwma ?? null, now);
      this.leases.set(leaseId, lingering);
      this.timers.ensureAlarm(lingering.expiresAt);
    } else {
      this.freeSlot(lease, outcome === "completed" ? now - lease.admittedAt : null);
    }
    this.timers.markDirty();
    const limits = this.limits();
    if (limits && outcome === "not_forwarded" && this.core) this.core = refundToken(this.core, limits);
    if (limits) this.pumpAt(now, limits);
  }

  async configure(raw: TenantConfig): Promise<TenantConfig> {
    const config = tenantConfigSchema.parse(raw);
    const now = Date.now();
    this.store.saveConfig(config);
    this.config = config;
    const limits = limitsOf(config);
    this.applyNewLimits(limits, now);
    this.pumpAt(now, limits);
    this.flush();
    return config;
  }

  async stats(): Promise<TenantStats> {
    const limits = this.limits();
    const now = Date.now();
    if (limits) this.pumpAt(now, limits);
    const core = this.core;
    let lingering = 0;
    for (const lease of this.leases.values()) if (lease.lingering) lingering += 1;
    return {
      limits: this.config,
      state: {
        tokens: core ? Math.floor(core.bucket.tokens * 1000) / 1000 : 0,
        inFlight: core?.inFlight ?? 0,
        lingering,
        creditSlots: this.creditSlots(),
        queued: core?.queue.length ?? 0,
        queuedByPriority: countQueuedByPriority(core?.queue ?? []),
        holdMsEwma: core?.holdMsEwma ?? null,
      },
      counters: this.counters,
      keys: this.keys.length,
    };
  }

  async addKey(key: KeyRecord): Promise<KeyChange> {
    if (!this.config) return { kind: "unconfigured" };
    if (this.keys.length >= MAX_KEYS_PER_TENANT) {
      return { kind: "too_many_keys", max: MAX_KEYS_PER_TENANT };
    }
    this.keys = [...this.keys, key];
    this.store.saveKeys(this.keys);
    return { kind: "ok", key };
  }

  async removeKey(id: string): Promise<KeyChange> {
    const key = this.keys.find((candidate) => candidate.id === id);
    if (!key) return { kind: "not_found" };
    this.keys = this.keys.filter((candidate) => candidate.id !== id);
    this.store.saveKeys(this.keys);
    return { kind: "ok", key };
  }

  async listKeys(): Promise<KeyRecord[]> {
    return this.keys;
  }

  /** Forgets the tenant. Queued requests are answered `unconfigured`; returns the key records. */
  async destroy(): Promise<KeyRecord[]> {
    const keys = this.keys;
    for (const resolve of this.waiters.values()) resolve({ kind: "unconfigured" });
    this.waiters.clear();
    this.leases.clear();
    this.credits.clear();
    this.timers.clear();
    this.config = null;
    this.keys = [];
    this.carriedLimits = null;
    this.core = null;
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
   * Reaps leases whose holders vanished, frees lingering slots, and cleans idle anonymous
   * buckets, as of `now`. The alarm's body, with the clock passed in so tests can run it
   * "later" without waiting.
   */
  reapAt(now: number): void {
    for (const lease of expiredLeases(this.leases.values(), now)) {
      if (!lease.lingering) this.counters = countRelease(this.counters, "reaped");
      this.freeSlot(lease, null);
    }
    const limits = this.limits();
    for (const credit of [...this.credits.values()]) {
      if (credit.reclaimAt > now || !this.core || !limits) continue;
      // Nobody returned it: its tokens count as spent, its slots come back.
      this.credits.delete(credit.id);
      this.core = returnCredit(this.core, limits, credit.tokens, credit.tokens);
      this.counters = { ...this.counters, creditsReaped: this.counters.creditsReaped + 1 };
    }
    // The bucket only ever refills up to the real clock, whatever `now` a test passes.
    if (limits) this.pumpAt(Math.min(now, Date.now()), limits);
    if (!this.config && this.leases.size === 0 && this.credits.size === 0 && this.waiters.size === 0) {
      if (now - this.lastActiveAt >= IDLE_CLEANUP_MS) {
        this.timers.clear();
        this.store.deleteAll();
        this.core = null;
        this.carriedLimits = null;
        this.counters = emptyCounters();
        return;
      }
      this.timers.ensureAlarm(this.lastActiveAt + IDLE_CLEANUP_MS);
    }
    this.timers.ensureAlarm(earliestLeaseExpiry(this.leases.values()));
    for (const credit of this.credits.values()) this.timers.ensureAlarm(credit.reclaimAt);
    this.flush();
  }

  /** Writes the runtime record now; normally called by the flush timer. */
  flush(): void {
    this.timers.flushing();
    if (!this.core) return;
    this.store.saveRuntime({
      bucket: this.core.bucket,
      holdMsEwma: this.core.holdMsEwma,
      counters: this.counters,
      leases: [...this.leases.values()],
      credits: [...this.credits.values()],
      carriedLimits: this.config ? null : this.carriedLimits,
      lastActiveAt: this.lastActiveAt,
    });
  }

  private adoptLimits(request: AdmitRequest, now: number): AdmissionLimits | null {
    if (this.config) return limitsOf(this.config);
    if (!request.limits) return null;
    if (!this.carriedLimits) this.timers.ensureAlarm(now + IDLE_CLEANUP_MS);
    if (JSON.stringify(request.limits) !== JSON.stringify(this.carriedLimits)) {
      this.carriedLimits = request.limits;
      this.applyNewLimits(request.limits, now);
    }
    return request.limits;
  }

  /** Carries the state over to new limits; waiters past a lowered queue bound are answered `evicted`. */
  private applyNewLimits(limits: AdmissionLimits, now: number): void {
    if (!this.core) {
      this.core = initialState(limits, now);
      return;
    }
    const applied = applyLimits(this.core, limits);
    this.core = applied.state;
    for (const victim of applied.evicted) this.answerShed(victim, "evicted", now, limits);
  }

  /** Runs the core's pump and answers the waiters it admitted or timed out. */
  private pumpAt(now: number, limits: AdmissionLimits): void {
    if (!this.core) return;
    const result = pump(this.core, limits, now);
    this.core = result.state;
    for (const waiter of result.timedOut) this.answerShed(waiter, "queue_timeout", now, limits);
    for (const waiter of result.granted) {
      const resolve = this.waiters.get(waiter.id);
      this.waiters.delete(waiter.id);
      const decision = this.grant(waiter, now, now - waiter.enqueuedAt, limits);
      resolve?.(decision);
    }
    if (result.granted.length > 0 || result.timedOut.length > 0) this.timers.markDirty();
    this.scheduleWake(limits);
  }

  /** Records an admission the core already made (token taken, in-flight counted). */
  private grant(
    waiter: Pick<Waiter, "id" | "priority" | "deadline">,
    now: number,
    waitedMs: number,
    limits: AdmissionLimits,
  ): Extract<AdmitDecision, { kind: "admit" }> {
    const lease = newLease(waiter.id, waiter.priority, waiter.deadline, now);
    this.leases.set(lease.id, lease);
    this.timers.ensureAlarm(lease.expiresAt);
    this.counters = countAdmit(this.counters, waiter.priority);
    return { kind: "admit", leaseId: lease.id, waitedMs, quota: this.quota(limits), credit: null };
  }

  private answerShed(waiter: Waiter, reason: AdmissionShedReason, now: number, limits: AdmissionLimits): void {
    const resolve = this.waiters.get(waiter.id);
    this.waiters.delete(waiter.id);
    this.counters = countShed(this.counters, reason, waiter.priority);
    const retryAfterMs = this.core ? queueDrainMs(this.core, limits) : 0;
    resolve?.({
      kind: "shed",
      reason,
      retryAfterMs,
      waitedMs: now - waiter.enqueuedAt,
      quota: this.quota(limits),
      saturation: null,
    });
  }

  private freeSlot(lease: Lease, heldMs: number | null): void {
    this.leases.delete(lease.id);
    if (this.core) this.core = release(this.core, heldMs);
  }

  private quota(limits: AdmissionLimits): Quota {
    const bucket = this.core?.bucket ?? { tokens: limits.burst, updatedAt: 0 };
    return {
      rate: limits.rate,
      burst: limits.burst,
      tokens: bucket.tokens,
      inFlight: this.core?.inFlight ?? 0,
      maxInFlight: limits.maxInFlight,
      queued: this.core?.queue.length ?? 0,
      maxQueue: limits.maxQueue,
      msUntilFull: msUntilFull(bucket, limits),
    };
  }

  private scheduleWake(limits: AdmissionLimits): void {
    this.timers.wakeAt(this.core ? nextWakeAt(this.core, limits) : null, () => {
      const current = this.limits();
      if (current) this.pumpAt(Date.now(), current);
    });
  }
}
