/**
 * An origin shard's whole decision state, with no I/O and `now` passed in: its placement, the
 * core (src/origin/origin-admission.ts), the leases of the requests it admitted, its counters.
 * Each call returns what the shell must do: answer queued requests, write, tell sibling shards
 * of a hold the origin asked for. The Durable Object (src/origin-guard.ts) only parses, calls
 * this, keeps the queued requests' promises, persists and arms its timers; the property tests
 * drive this class directly.
 */
import { earliestLeaseExpiry, expiredLeases, lingerLease, newLease } from "../admission/leases";
import type { DeskEffects } from "../storage/object-shell";
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
} from "./origin-admission";
import { type OriginConfig, type OriginLimits, shardLimits, shardShare } from "./origin-config";
import {
  type OriginCounters,
  type OriginShedCount,
  countOriginAdmit,
  countOriginCall,
  countOriginRelease,
  countOriginSheds,
  emptyOriginCounters,
} from "./origin-counters";
import { isDrop } from "./origin-drops";
import { holdKindOf, holdsCovering } from "./origin-holds";
import { routeClassKey } from "./origin-party";
import { restoreOriginState } from "./origin-restore";
import type { AcquireDecision, HoldRequest, OriginRelease, ParsedAcquireRequest } from "./origin-rpc";
import { type OriginShardStats, shardStats } from "./origin-shard-stats";
import { type OriginShedCause, reasonOf } from "./origin-shed";
import type { OriginLease, OriginRuntime, Placement } from "./origin-store";
import { originSaturation } from "./origin-verdict";
import type { OriginWaiter } from "./origin-waiter";
import { baselineOf } from "./party-evidence";

/** What a call asks of the shell beyond answers and writes. */
export interface OriginEffects extends DeskEffects<AcquireDecision> {
  /** Holds the origin asked for, to pass on to the other shards (by index). */
  readonly tell: ReadonlyArray<{ readonly shard: number; readonly hold: HoldRequest }>;
  /** What to do to storage beyond the runtime record: wipe it all first, then write this placement. */
  readonly store: { readonly wipe: boolean; readonly placement: Placement | null } | null;
}

export type OriginReply = { readonly kind: "answer"; readonly decision: AcquireDecision } | { readonly kind: "queued" };

type Admitted = Extract<AcquireDecision, { kind: "admit" }>;
type Grantee = Pick<
  OriginWaiter,
  "id" | "tenant" | "holdParty" | "method" | "route" | "priority" | "deadline" | "streamMs"
>;

interface Active {
  readonly placement: Placement;
  readonly limits: OriginLimits;
  core: OriginState;
}

export class OriginDesk {
  /** Null while the stage is off here, or this shard is retired. */
  private active: Active | null = null;
  /** Set when a lower shard count retired this shard: the count requests should pick from. */
  private retiredTo: number | null = null;
  private counters: OriginCounters = emptyOriginCounters();
  /** Bounded by the shard's ceiling plus lingering slots, which expire within MAX_LINGER_MS. */
  private readonly leases = new Map<string, OriginLease>();
  private answers: Array<OriginEffects["answers"][number]> = [];
  private tell: Array<OriginEffects["tell"][number]> = [];
  private persist: OriginEffects["persist"] = "no";
  private store: { wipe: boolean; placement: Placement | null } | null = null;

  constructor(stored: Placement | null, runtime: OriginRuntime | null, now: number) {
    if (stored && stored.index >= stored.config.shards) this.retiredTo = stored.config.shards;
    else if (stored) {
      const limits = shardLimits(stored.config, stored.index);
      if (runtime) this.counters = runtime.counters;
      // Leases come back with their slots: a restarted shard must not forget requests still running.
      for (const lease of runtime?.leases ?? []) this.leases.set(lease.id, lease);
      const core = applyOriginLimits(restoreOriginState(limits, runtime, now), limits).state;
      this.active = { placement: stored, limits, core };
    }
  }

  /** Installs the config as shard `index` of `config.shards`; a shard past the count retires. */
  configure(config: OriginConfig, index: number, now: number): OriginEffects {
    if (index >= config.shards) return this.retire(config, index);
    const limits = shardLimits(config, index);
    const applied = applyOriginLimits(this.active?.core ?? initialOriginState(limits, now), limits);
    this.retiredTo = null;
    this.active = { placement: { config, index }, limits, core: applied.state };
    this.store = { wipe: false, placement: this.active.placement };
    for (const victim of applied.evicted) this.answerShed(victim, "evicted", now);
    this.pumpAt(now);
    this.persist = "now";
    return this.effects();
  }

  /** Turns the stage off here: waiters are let through unguarded, state and leases forgotten. */
  disable(): OriginEffects {
    this.forget();
    this.leases.clear();
    this.retiredTo = null;
    return this.effects();
  }

  acquire(request: ParsedAcquireRequest, id: string, now: number): { reply: OriginReply; effects: OriginEffects } {
    this.counters = countOriginCall(this.counters, "acquire");
    const answer = (decision: AcquireDecision) => ({
      reply: { kind: "answer", decision } as const,
      effects: this.effects(),
    });
    if (this.retiredTo !== null) return answer({ kind: "moved", shards: this.retiredTo });
    if (request.localSheds) this.countEdgeSheds(request.localSheds);
    const active = this.active;
    if (!active) return answer({ kind: "disabled" });
    this.pumpAt(now);
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
    const result = arrive(active.core, active.limits, arrival, now);
    active.core = result.state;
    this.counters = { ...this.counters, arrived: this.counters.arrived + 1 };
    for (const victim of result.evicted) this.answerShed(victim, "evicted", now);
    this.dirty();
    const outcome = result.outcome;
    if (outcome.kind === "admit") return answer(this.grant(arrival, now, 0));
    if (outcome.kind === "queued") return { reply: { kind: "queued" }, effects: this.effects() };
    this.countShed(outcome.cause, request.priority, false);
    const drainMs = originQueueDrainMs(active.core, active.limits, now);
    return answer({
      kind: "shed",
      reason: reasonOf(outcome.cause),
      cause: outcome.cause,
      retryAfterMs: outcome.retryAfterMs,
      waitedMs: 0,
      saturation: originSaturation(outcome, request.priority, drainMs, active.core.serviceMsEwma),
      holdScope: outcome.holdScope,
    });
  }

  /**
   * Idempotent: a second release, or a release of a reaped lease, changes nothing (its feedback
   * is dropped too).
   */
  release(leaseId: string, report: OriginRelease, now: number): OriginEffects {
    this.counters = countOriginCall(this.counters, "release");
    const lease = this.leases.get(leaseId);
    if (!lease || lease.lingering) return this.effects();
    const active = this.active;
    if (!active) {
      // A retired shard: the slot counts nowhere any more, only the lease goes.
      this.leases.delete(leaseId);
      return this.effects();
    }
    const drop = isDrop(report, now - lease.admittedAt, this.slowAfterMs(active, lease));
    const kind = holdKindOf(report.status);
    const backoffMs = kind === "unavailable" ? report.retryAfterMs : null;
    const tenantBackoffMs = kind === "rate" ? report.retryAfterMs : null;
    const { placement } = active;
    const capacity =
      report.capacity === null ? null : shardShare(report.capacity, placement.index, placement.config.shards);
    const { tenant, holdParty, method, route } = lease;
    const feedback = {
      tenant,
      holdParty,
      method,
      route,
      latencyMs: report.latencyMs,
      drop,
      backoffMs,
      tenantBackoffMs,
    };
    active.core = learn(active.core, active.limits, { ...feedback, wholeOrigin: report.wholeOrigin, capacity }, now);
    const hold = backoffMs !== null || tenantBackoffMs !== null;
    this.counters = countOriginRelease(this.counters, { reaped: false, drop, hold });
    if (hold) this.tellSiblings(active, lease, now, backoffMs !== null ? report.wholeOrigin : null);
    if (report.outcome === "deadline_exceeded" || report.outcome === "abandoned") {
      // Still running at the origin, most likely: the slot stays taken for a while.
      this.leases.set(leaseId, { ...lease, ...lingerLease(lease, active.core.serviceMsEwma, now) });
    } else {
      const heldMs = report.streamed ? report.latencyMs : now - lease.admittedAt;
      this.freeSlot(lease, report.outcome === "completed" ? heldMs : null, now);
    }
    this.dirty();
    this.pumpAt(now);
    return this.effects();
  }

  /** A hold another shard learnt from the origin. */
  hold(hold: HoldRequest, now: number): OriginEffects {
    this.counters = countOriginCall(this.counters, "hold");
    const active = this.active;
    if (!active) return this.effects();
    active.core = holdBack(active.core, active.limits, hold, now);
    this.dirty();
    this.pumpAt(now);
    return this.effects();
  }

  /** Sheds isolates decided from this shard's verdicts and holds, reported in batches. */
  recordLocalSheds(batch: readonly OriginShedCount[]): OriginEffects {
    this.counters = countOriginCall(this.counters, "reportSheds");
    this.countEdgeSheds(batch);
    return this.effects();
  }

  /** As of the last call (the shell wakes the desk first, so that grants due now are answered). */
  stats(now: number): { readonly config: OriginConfig | null; readonly shard: OriginShardStats | null } {
    const active = this.active;
    if (!active) return { config: null, shard: null };
    const { placement, core, limits } = active;
    return {
      config: placement.config,
      shard: shardStats(core, limits, placement.index, this.leases.values(), this.counters, now),
    };
  }

  /**
   * Frees leases whose holder vanished and slots that lingered long enough, as of `now`; queued
   * requests are judged as of `servedAt` (tests reap "later" without cutting a live wait short).
   */
  reap(now: number, servedAt = now): OriginEffects {
    for (const lease of expiredLeases(this.leases.values(), now)) {
      if (!lease.lingering)
        this.counters = countOriginRelease(this.counters, { reaped: true, drop: false, hold: false });
      this.freeSlot(lease, null, now);
    }
    this.pumpAt(servedAt);
    this.persist = "now";
    return this.effects();
  }

  /** The core and limits as they stand, read-only: for the property tests, which judge the desk by them. */
  inspect(): { readonly core: OriginState; readonly limits: OriginLimits; readonly leases: number } | null {
    return this.active && { core: this.active.core, limits: this.active.limits, leases: this.leases.size };
  }

  wake(now: number): OriginEffects {
    this.pumpAt(now);
    return this.effects();
  }

  wakeAt(now: number): number | null {
    return this.active ? nextWakeAt(this.active.core, now) : null;
  }

  alarmsAt(): ReadonlyArray<number | null> {
    return [earliestLeaseExpiry(this.leases.values())];
  }

  /** What the shell writes; null when there is nothing of this shard's own to keep. */
  record(): OriginRuntime | null {
    const core = this.active?.core;
    if (!core) return null;
    const { adaptive, capacity, holds, serviceMsEwma } = core;
    return { leases: [...this.leases.values()], adaptive, capacity, holds, serviceMsEwma, counters: this.counters };
  }

  /**
   * A lower shard count left this shard out. Isolates that still pick it (their config lags) are
   * sent to the remaining shards, waiters included; the requests it admitted keep their leases
   * here until released, but no longer count against any shard's limit.
   */
  private retire(config: OriginConfig, index: number): OriginEffects {
    this.forget({ kind: "moved", shards: config.shards });
    this.retiredTo = config.shards;
    // The retired shard remembers the count it was retired by, so a restart still sends callers on.
    this.store = { wipe: true, placement: { config, index } };
    return this.effects();
  }

  /** Answers every queued request and drops the shard's state (its leases stay). */
  private forget(answer: AcquireDecision = { kind: "disabled" }): void {
    for (const waiter of this.active?.core.queue ?? []) this.answers.push({ to: waiter.id, answer });
    this.active = null;
    this.counters = emptyOriginCounters();
    this.persist = "no";
    this.store = { wipe: true, placement: null };
  }

  /**
   * How long a request must have run for its deadline abort to say the origin is slow: the
   * tolerated latency of its party on its route class. Shorter, and the slot came too late for
   * any origin to answer in time. Before any latency is known, every guard-budget abort counts.
   */
  private slowAfterMs({ core, limits }: Active, lease: OriginLease): number {
    const own = baselineOf(core.adaptive.evidence, lease.tenant, routeClassKey(lease.method, lease.route));
    const typical = own ?? core.serviceMsEwma;
    return typical === null ? 0 : typical * limits.latencyTolerance;
  }

  /**
   * Other shards learn the origin's holds too: they are the origin's, not this shard's. Every
   * hold now covering the lease's party and route is passed on, as far as this shard widened it.
   */
  private tellSiblings(
    { core, placement }: Active,
    lease: OriginLease,
    now: number,
    wholeOrigin: boolean | null,
  ): void {
    if (placement.config.shards <= 1) return;
    const who = { party: lease.holdParty, route: lease.route };
    const held = holdsCovering(core.holds, who, now);
    const calls: HoldRequest[] = held.map(({ scope, until }) => ({ scope, untilMs: until }));
    // A 503 is also passed on as a sighting: agreement across shards, not just on this one.
    const until = Math.max(now, ...held.map((h) => h.until));
    if (wholeOrigin !== null) calls.push({ unavailable: { who, voter: lease.tenant, wholeOrigin }, untilMs: until });
    for (let shard = 0; shard < placement.config.shards; shard += 1) {
      if (shard !== placement.index) for (const hold of calls) this.tell.push({ shard, hold });
    }
  }

  private pumpAt(now: number): void {
    const active = this.active;
    if (!active) return;
    const result = pump(active.core, active.limits, now);
    active.core = result.state;
    for (const { waiter, cause } of result.shed) this.answerShed(waiter, cause, now);
    for (const waiter of result.granted) {
      this.answers.push({ to: waiter.id, answer: this.grant(waiter, now, now - waiter.enqueuedAt) });
    }
    if (result.granted.length > 0 || result.shed.length > 0) this.dirty();
  }

  /** Records an admission the core already made. */
  private grant(who: Grantee, now: number, waitedMs: number): Admitted {
    const { tenant, holdParty, method, route } = who;
    // A streamed response holds its slot past the deadline, up to its stream limit.
    const lease = newLease(who.id, who.priority, who.deadline + (who.streamMs ?? 0), now);
    this.leases.set(lease.id, { ...lease, tenant, holdParty, method, route });
    this.counters = countOriginAdmit(this.counters, who.priority);
    const limit = this.active ? effectiveLimit(this.active.core, this.active.limits, now) : 0;
    return { kind: "admit", leaseId: lease.id, waitedMs, limit };
  }

  private answerShed(waiter: OriginWaiter, cause: OriginShedCause, now: number): void {
    this.countShed(cause, waiter.priority, false);
    const active = this.active;
    const held = active ? heldUntil(active.core, waiter, now) : null;
    const drainMs = active ? originQueueDrainMs(active.core, active.limits, now) : 0;
    const answer: AcquireDecision = {
      kind: "shed",
      reason: reasonOf(cause),
      cause,
      retryAfterMs: held ? Math.max(0, held.until - now) : drainMs,
      waitedMs: now - waiter.enqueuedAt,
      saturation: null,
      holdScope: held?.scope ?? null,
    };
    this.answers.push({ to: waiter.id, answer });
  }

  private countEdgeSheds(batch: readonly OriginShedCount[]): void {
    if (batch.length === 0) return;
    this.counters = countOriginSheds(this.counters, batch, { atEdge: true, arrived: true });
    this.dirty();
  }

  private countShed(cause: OriginShedCause, priority: OriginWaiter["priority"], atEdge: boolean): void {
    this.counters = countOriginSheds(this.counters, [{ cause, priority, count: 1 }], { atEdge, arrived: atEdge });
  }

  private freeSlot(lease: OriginLease, heldMs: number | null, now: number): void {
    this.leases.delete(lease.id);
    if (this.active) this.active.core = releaseSlot(this.active.core, lease, heldMs, now);
  }

  private dirty(): void {
    if (this.persist === "no") this.persist = "soon";
  }

  private effects(): OriginEffects {
    const effects: OriginEffects = {
      answers: this.answers,
      persist: this.persist,
      tell: this.tell,
      store: this.store,
    };
    this.answers = [];
    this.tell = [];
    this.persist = "no";
    this.store = null;
    return effects;
  }
}
