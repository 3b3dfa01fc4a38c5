import { DurableObject } from "cloudflare:workers";
import { type OriginShardStats, shardStats } from "./origin/origin-shard-stats";
import { originShardName } from "./origin/origin-shards";
import { restoreOriginState } from "./origin/origin-restore";
import { earliestLeaseExpiry, expiredLeases, lingerLease, newLease } from "./admission/leases";
import type { Env } from "./env";
import { ObjectTimers } from "./storage/object-timers";
import {
  type OriginState,
  applyOriginLimits,
  arrive,
  effectiveLimit,
  heldUntil,
  holdBack,
  initialOriginState,
  learn,
  nextWakeAt,
  originQueueDrainMs,
  pump,
  releaseSlot,
} from "./origin/origin-admission";
import {
  type OriginConfig,
  type OriginLimits,
  originConfigSchema,
  shardLimits,
  shardShare,
} from "./origin/origin-config";
import {
  type OriginCounters,
  type OriginShedCount,
  countOriginAdmit,
  countOriginCall,
  countOriginRelease,
  countOriginSheds,
  emptyOriginCounters,
} from "./origin/origin-counters";
import {
  type AcquireDecision,
  type AcquireRequest,
  acquireRequestSchema,
  type HoldRequest,
  holdRequestSchema,
  legacyHold,
  readOriginRelease,
} from "./origin/origin-rpc";
import { type OriginShedCause, reasonOf } from "./origin/origin-shed";
import { type OriginLease, OriginStore, type Placement } from "./origin/origin-store";
import { isDrop } from "./origin/origin-drops";
import { originSaturation } from "./origin/origin-verdict";
import type { OriginWaiter } from "./origin/origin-waiter";
import { holdKindOf, holdsCovering } from "./origin/origin-holds";
import { baselineOf } from "./origin/party-evidence";
import { routeClassKey } from "./origin/origin-party";

/** Runtime state is written at most this often (as in the tenant object; see FLUSH_INTERVAL_MS there). */
const ORIGIN_FLUSH_INTERVAL_MS = 250;

/**
 * One shard of the origin stage: its share of the origin's in-flight limit, across all tenants.
 * A thin adapter like TenantGuard: each RPC reads the clock once, calls the pure core
 * (src/origin/), keeps what it returns, answers the waiters it names, and keeps two timers
 * (queue wake-up in memory, lease reaping as an alarm).
 */
export class OriginGuard extends DurableObject<Env> {
  private readonly store: OriginStore;
  private placement: Placement | null;
  /** Set when a lower shard count retired this shard: the count requests should pick from. */
  private retiredTo: number | null = null;
  private limits: OriginLimits | null = null;
  private core: OriginState | null = null;
  private counters: OriginCounters = emptyOriginCounters();
  /** Bounded by the shard's ceiling plus lingering slots, which expire within MAX_LINGER_MS. */
  private readonly leases = new Map<string, OriginLease>();
  /** One per queued request; the core bounds the queue at maxQueue. */
  private readonly waiters = new Map<string, (decision: AcquireDecision) => void>();
  private readonly timers = new ObjectTimers(this.ctx.storage, () => this.flush(), ORIGIN_FLUSH_INTERVAL_MS);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new OriginStore(ctx.storage.sql);
    this.placement = this.store.loadPlacement();
    if (this.placement && this.placement.index >= this.placement.config.shards) {
      this.retiredTo = this.placement.config.shards;
      this.placement = null;
    }
    if (!this.placement) return;
    const now = Date.now();
    this.limits = shardLimits(this.placement.config, this.placement.index);
    const runtime = this.store.loadRuntime();
    if (runtime) this.counters = runtime.counters;
    // Leases come back with their slots: a restarted shard must not forget requests still running.
    for (const lease of runtime?.leases ?? []) this.leases.set(lease.id, lease);
    const core = restoreOriginState(this.limits, runtime, now);
    this.core = applyOriginLimits(core, this.limits).state;
    this.timers.ensureAlarm(earliestLeaseExpiry(this.leases.values()));
  }

  /** Installs the config as shard `index` of `config.shards`; a shard past the count retires. */
  async configure(raw: OriginConfig, index: number): Promise<void> {
    const config = originConfigSchema.parse(raw);
    if (index >= config.shards) return this.retire(config, index);
    const now = Date.now();
    this.retiredTo = null;
    this.placement = { config, index };
    this.limits = shardLimits(config, index);
    this.store.savePlacement(this.placement);
    const applied = applyOriginLimits(this.core ?? initialOriginState(this.limits, now), this.limits);
    this.core = applied.state;
    for (const victim of applied.evicted) this.answerShed(victim, "evicted", now);
    this.pumpAt(now);
    this.flush();
  }

  /**
   * A lower shard count left this shard out. Isolates that still pick it (their config lags) are
   * sent to the remaining shards, waiters included; the requests it admitted keep their leases
   * here until released, but no longer count against any shard's limit.
   */
  private retire(config: OriginConfig, index: number): void {
    this.forget({ kind: "moved", shards: config.shards });
    this.retiredTo = config.shards;
    this.store.savePlacement({ config, index });
  }

  /** Turns the stage off here: waiters are let through unguarded, state forgotten. */
  async disable(): Promise<void> {
    this.forget({ kind: "disabled" });
    this.leases.clear();
    this.retiredTo = null;
    await this.timers.deleteAlarm();
  }

  /** Answers every waiter `answer` and drops the shard's state (its leases stay). */
  private forget(answer: AcquireDecision): void {
    for (const resolve of this.waiters.values()) resolve(answer);
    this.waiters.clear();
    this.timers.clear();
    this.placement = null;
    this.limits = null;
    this.core = null;
    this.counters = emptyOriginCounters();
    this.store.deleteAll();
  }

  async acquire(raw: AcquireRequest): Promise<AcquireDecision> {
    const request = acquireRequestSchema.parse(raw);
    this.counters = countOriginCall(this.counters, "acquire");
    if (this.retiredTo !== null) return { kind: "moved", shards: this.retiredTo };
    if (request.localSheds) this.countEdgeSheds(request.localSheds);
    const limits = this.limits;
    if (!limits || !this.core) return { kind: "disabled" };
    const now = Date.now();
    this.pumpAt(now);
    const id = crypto.randomUUID();
    const arrival = {
      id,
      tenant: request.tenant,
      holdParty: request.holdParty ?? request.tenant,
      method: request.method,
      route: request.route,
      weight: request.weight,
      priority: request.priority,
      deadline: request.deadline,
      ...(request.streamMs ? { streamMs: request.streamMs } : {}),
    };
    const result = arrive(this.core, limits, arrival, now);
    this.core = result.state;
    this.counters = { ...this.counters, arrived: this.counters.arrived + 1 };
    for (const victim of result.evicted) this.answerShed(victim, "evicted", now);
    this.timers.markDirty();
    const outcome = result.outcome;
    switch (outcome.kind) {
      case "admit":
        return this.grant(arrival, now, 0);
      case "shed":
        this.counters = countOriginSheds(
          this.counters,
          [{ cause: outcome.cause, priority: request.priority, count: 1 }],
          {
            atEdge: false,
            arrived: false,
          },
        );
        return {
          kind: "shed",
          reason: reasonOf(outcome.cause),
          cause: outcome.cause,
          retryAfterMs: outcome.retryAfterMs,
          waitedMs: 0,
          saturation: originSaturation(
            outcome,
            request.priority,
            originQueueDrainMs(this.core, limits, now),
            this.core.serviceMsEwma,
          ),
          holdScope: outcome.holdScope,
        };
      case "queued": {
        const decision = new Promise<AcquireDecision>((resolve) => this.waiters.set(id, resolve));
        this.scheduleWake();
        return decision;
      }
    }
  }

  /**
   * Idempotent: a second release, or a release of a reaped lease, changes nothing (its feedback
   * is dropped too). A report with bad feedback still frees the slot (see readOriginRelease).
   */
  async release(leaseId: string, raw: unknown): Promise<void> {
    const report = readOriginRelease(raw);
    this.counters = countOriginCall(this.counters, "release");
    const limits = this.limits;
    const lease = this.leases.get(leaseId);
    if (!lease || lease.lingering) return;
    if (!limits || !this.core) {
      // A retired shard: the slot counts nowhere any more, only the lease goes.
      this.leases.delete(leaseId);
      return;
    }
    const now = Date.now();
    const drop = isDrop(report, now - lease.admittedAt, this.slowAfterMs(limits, lease));
    const kind = holdKindOf(report.status);
    const backoffMs = kind === "unavailable" ? report.retryAfterMs : null;
    const tenantBackoffMs = kind === "rate" ? report.retryAfterMs : null;
    const placement = this.placement;
    const capacity =
      report.capacity === null || !placement
        ? null
        : shardShare(report.capacity, placement.index, placement.config.shards);
    this.core = learn(
      this.core,
      limits,
      {
        tenant: lease.tenant,
        holdParty: lease.holdParty,
        method: lease.method,
        route: lease.route,
        latencyMs: report.latencyMs,
        drop,
        backoffMs,
        tenantBackoffMs,
        wholeOrigin: report.wholeOrigin,
        capacity,
      },
      now,
    );
    const hold = backoffMs !== null || tenantBackoffMs !== null;
    this.counters = countOriginRelease(this.counters, { reaped: false, drop, hold });
    if (hold) this.tellSiblings(lease, this.core, now, backoffMs !== null ? report.wholeOrigin : null);
    if (report.outcome === "deadline_exceeded" || report.outcome === "abandoned") {
      // Still running at the origin, most likely: the slot stays taken for a while.
      const lingering: OriginLease = { ...lease, ...lingerLease(lease, this.core.serviceMsEwma, now) };
      this.leases.set(leaseId, lingering);
      this.timers.ensureAlarm(lingering.expiresAt);
    } else {
      const heldMs = report.streamed ? report.latencyMs : now - lease.admittedAt;
      this.freeSlot(lease, report.outcome === "completed" ? heldMs : null, now);
    }
    this.timers.markDirty();
    this.pumpAt(now);
  }

  /** A hold another shard learnt from the origin. */
  async hold(raw: HoldRequest, legacyUntilMs?: number): Promise<void> {
    // A shard of the previous version calls hold(tenant | null, untilMs) during a rolling deploy.
    const hold = holdRequestSchema.parse(legacyUntilMs === undefined ? raw : legacyHold(raw, legacyUntilMs));
    this.counters = countOriginCall(this.counters, "hold");
    if (!this.limits || !this.core) return;
    const now = Date.now();
    this.core = holdBack(this.core, this.limits, hold, now);
    this.timers.markDirty();
    this.pumpAt(now);
  }

  /** Sheds isolates decided from this shard's verdicts and holds, reported in batches. */
  async recordLocalSheds(batch: OriginShedCount[]): Promise<void> {
    this.counters = countOriginCall(this.counters, "reportSheds");
    const parsed = acquireRequestSchema.shape.localSheds.parse(batch);
    if (parsed) this.countEdgeSheds(parsed);
  }

  async stats(): Promise<{ readonly config: OriginConfig | null; readonly shard: OriginShardStats | null }> {
    const limits = this.limits;
    const placement = this.placement;
    if (!limits || !placement || !this.core) return { config: null, shard: null };
    const now = Date.now();
    this.pumpAt(now);
    const shard = shardStats(this.core, limits, placement.index, this.leases.values(), this.counters, now);
    return { config: placement.config, shard };
  }

  override async alarm(): Promise<void> {
    this.timers.alarmFired();
    this.reapAt(Date.now());
  }

  /** Frees leases whose holder vanished and slots that lingered long enough, as of `now`. */
  reapAt(now: number): void {
    for (const lease of expiredLeases(this.leases.values(), now)) {
      if (!lease.lingering)
        this.counters = countOriginRelease(this.counters, { reaped: true, drop: false, hold: false });
      this.freeSlot(lease, null, now);
    }
    this.pumpAt(Math.min(now, Date.now()));
    this.timers.ensureAlarm(earliestLeaseExpiry(this.leases.values()));
    this.flush();
  }

  flush(): void {
    this.timers.flushing();
    if (!this.core) return;
    this.store.saveRuntime({
      leases: [...this.leases.values()],
      adaptive: this.core.adaptive,
      capacity: this.core.capacity,
      holds: this.core.holds,
      serviceMsEwma: this.core.serviceMsEwma,
      counters: this.counters,
    });
  }

  /**
   * How long a request must have run for its deadline abort to say the origin is slow: the
   * tolerated latency of its party on its route class. Shorter, and the slot came too late for
   * any origin to answer in time. Before any latency is known, every guard-budget abort counts.
   */
  private slowAfterMs(limits: OriginLimits, lease: OriginLease): number {
    const evidence = this.core?.adaptive.evidence;
    const own = evidence ? baselineOf(evidence, lease.tenant, routeClassKey(lease.method, lease.route)) : null;
    const typical = own ?? this.core?.serviceMsEwma ?? null;
    return typical === null ? 0 : typical * limits.latencyTolerance;
  }

  private countEdgeSheds(batch: readonly OriginShedCount[]): void {
    if (batch.length === 0) return;
    this.counters = countOriginSheds(this.counters, batch, { atEdge: true, arrived: true });
    this.timers.markDirty();
  }

  /**
   * Other shards learn the origin's holds too: they are the origin's, not this shard's. Every
   * hold now covering the lease's party and route is passed on, as far as this shard widened it.
   */
  private tellSiblings(lease: OriginLease, core: OriginState, now: number, wholeOrigin: boolean | null): void {
    const placement = this.placement;
    if (!placement || placement.config.shards <= 1) return;
    const who = { party: lease.holdParty, route: lease.route };
    const held = holdsCovering(core.holds, who, now);
    const calls: HoldRequest[] = held.map(({ scope, until }) => ({ scope, untilMs: until }));
    // A 503 is also passed on as a sighting: agreement across shards, not just on this one.
    const until = Math.max(now, ...held.map((h) => h.until));
    if (wholeOrigin !== null) calls.push({ unavailable: { who, voter: lease.tenant, wholeOrigin }, untilMs: until });
    for (let index = 0; index < placement.config.shards; index += 1) {
      if (index === placement.index) continue;
      const shard = this.env.ORIGIN_GUARD.getByName(originShardName(index));
      for (const call of calls) {
        this.ctx.waitUntil(
          shard.hold(call).catch((error: unknown) => console.error(`telling shard ${index} of a hold failed`, error)),
        );
      }
    }
  }

  private pumpAt(now: number): void {
    if (!this.core || !this.limits) return;
    const result = pump(this.core, this.limits, now);
    this.core = result.state;
    for (const { waiter, cause } of result.shed) this.answerShed(waiter, cause, now);
    for (const waiter of result.granted) {
      const resolve = this.waiters.get(waiter.id);
      this.waiters.delete(waiter.id);
      resolve?.(this.grant(waiter, now, now - waiter.enqueuedAt));
    }
    if (result.granted.length > 0 || result.shed.length > 0) this.timers.markDirty();
    this.scheduleWake();
  }

  /** Records an admission the core already made. */
  private grant(
    who: Pick<OriginWaiter, "id" | "tenant" | "holdParty" | "method" | "route" | "priority" | "deadline" | "streamMs">,
    now: number,
    waitedMs: number,
  ): Extract<AcquireDecision, { kind: "admit" }> {
    const lease: OriginLease = {
      // A streamed response holds its slot past the deadline, up to its stream limit.
      ...newLease(who.id, who.priority, who.deadline + (who.streamMs ?? 0), now),
      tenant: who.tenant,
      holdParty: who.holdParty,
      method: who.method,
      route: who.route,
    };
    this.leases.set(lease.id, lease);
    this.timers.ensureAlarm(lease.expiresAt);
    this.counters = countOriginAdmit(this.counters, who.priority);
    const limit = this.core && this.limits ? effectiveLimit(this.core, this.limits, now) : 0;
    return { kind: "admit", leaseId: lease.id, waitedMs, limit };
  }

  private answerShed(waiter: OriginWaiter, cause: OriginShedCause, now: number): void {
    const resolve = this.waiters.get(waiter.id);
    this.waiters.delete(waiter.id);
    this.counters = countOriginSheds(this.counters, [{ cause, priority: waiter.priority, count: 1 }], {
      atEdge: false,
      arrived: false,
    });
    const core = this.core;
    const held = core ? heldUntil(core, waiter, now) : null;
    const retryAfterMs = held
      ? Math.max(0, held.until - now)
      : core && this.limits
        ? originQueueDrainMs(core, this.limits, now)
        : 0;
    resolve?.({
      kind: "shed",
      reason: reasonOf(cause),
      cause,
      retryAfterMs,
      waitedMs: now - waiter.enqueuedAt,
      saturation: null,
      holdScope: held?.scope ?? null,
    });
  }

  private freeSlot(lease: OriginLease, heldMs: number | null, now: number): void {
    this.leases.delete(lease.id);
    if (this.core) this.core = releaseSlot(this.core, lease, heldMs, now);
  }

  private scheduleWake(): void {
    this.timers.wakeAt(this.core ? nextWakeAt(this.core, Date.now()) : null, () => this.pumpAt(Date.now()));
  }
}
