import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PRIORITIES, type Priority } from "../../src/admission/priority";
import { type OriginState, effectiveLimit, heldUntil } from "../../src/origin/origin-admission";
import { type OriginConfig, type OriginLimits, classCap, originConfigSchema } from "../../src/origin/origin-config";
import { OriginDesk, type OriginEffects } from "../../src/origin/origin-desk";
import { type AcquireDecision, type OriginRelease, bareRelease } from "../../src/origin/origin-rpc";
import { PROPERTY_RUNS, PROPERTY_TIMEOUT_MS } from "./property-runs";

/**
 * Properties of the origin stage over random traffic, driven through the production desk an
 * origin shard runs (src/origin/origin-desk.ts): arrivals, releases with the origin's answers,
 * holds from sibling shards, new configs, the clock moving, reaping. Every answer and every
 * invariant is judged after every step, and once more after the clock has run past every wait.
 */

const T0 = 1_700_000_000_000;
const TENANTS = ["t0", "t1", "t2", "t3"] as const;

// Small numbers: contention (full classes, a full queue, holds) is where the invariants are at risk.
const share = fc.constantFrom(0, 0.1, 0.3, 0.5, 0.6, 0.8, 0.9, 1);
interface Placed {
  readonly config: OriginConfig;
  readonly index: number;
}

const placedArb: fc.Arbitrary<Placed> = fc
  .record({
    maxInFlight: fc.integer({ min: 1, max: 8 }),
    minInFlight: fc.integer({ min: 1, max: 8 }),
    shards: fc.integer({ min: 1, max: 3 }),
    index: fc.nat(),
    maxQueue: fc.integer({ min: 0, max: 6 }),
    maxWaitMs: fc.oneof(
      { weight: 1, arbitrary: fc.constant(0) },
      { weight: 6, arbitrary: fc.integer({ min: 100, max: 5_000 }) },
    ),
    shares: fc.tuple(share, share, share).map((s) => [...s].sort((a, b) => a - b)),
    adaptive: fc.boolean(),
    latencyTolerance: fc.double({ min: 1, max: 3, noNaN: true }),
    capacityTtlMs: fc.integer({ min: 100, max: 5_000 }),
    maxBackoffMs: fc.integer({ min: 1_000, max: 20_000 }),
  })
  .map((raw) => {
    const minInFlight = Math.min(raw.minInFlight, raw.maxInFlight);
    const shards = Math.min(raw.shards, minInFlight);
    const config = originConfigSchema.parse({
      maxInFlight: raw.maxInFlight,
      minInFlight,
      shards,
      maxQueue: raw.maxQueue,
      maxWaitMs: raw.maxWaitMs,
      reservations: { low: raw.shares[0], normal: raw.shares[1], high: raw.shares[2], critical: 1 },
      adaptive: raw.adaptive,
      latencyTolerance: raw.latencyTolerance,
      capacityTtlMs: raw.capacityTtlMs,
      maxBackoffMs: raw.maxBackoffMs,
    });
    return { config, index: raw.index % shards };
  });

type Step =
  | { readonly kind: "arrive"; readonly tenant: number; readonly priority: Priority; readonly deadlineIn: number }
  | {
      readonly kind: "release";
      readonly pick: number;
      readonly heldMs: number | null;
      readonly latencyMs: number | null;
      readonly status: "ok" | "error" | "503" | "429";
      readonly retryAfterMs: number | null;
      readonly capacity: number | null;
    }
  | { readonly kind: "advance"; readonly ms: number }
  | { readonly kind: "hold"; readonly tenant: number | null; readonly untilIn: number }
  | { readonly kind: "configure"; readonly placed: Placed };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("arrive" as const),
      tenant: fc.integer({ min: 0, max: TENANTS.length - 1 }),
      priority: fc.constantFrom(...PRIORITIES),
      deadlineIn: fc.oneof(
        { weight: 1, arbitrary: fc.constantFrom(0, 1) },
        { weight: 8, arbitrary: fc.integer({ min: -200, max: 8_000 }) },
      ),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("release" as const),
      pick: fc.nat(),
      heldMs: fc.option(fc.integer({ min: 0, max: 3_000 })),
      latencyMs: fc.option(fc.integer({ min: 0, max: 3_000 })),
      status: fc.oneof(
        { weight: 8, arbitrary: fc.constant("ok" as const) },
        { weight: 2, arbitrary: fc.constant("error" as const) },
        { weight: 1, arbitrary: fc.constantFrom("503" as const, "429" as const) },
      ),
      retryAfterMs: fc.oneof(
        { weight: 1, arbitrary: fc.constant(null) },
        { weight: 2, arbitrary: fc.integer({ min: 0, max: 3_000 }) },
        { weight: 1, arbitrary: fc.integer({ min: 3_000, max: 60_000 }) },
      ),
      // Mostly no grant: a grant of 0 stops everything until it lapses.
      capacity: fc.oneof(
        { weight: 8, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 8 }) },
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.oneof(
        { weight: 1, arbitrary: fc.integer({ min: -50, max: -1 }) },
        { weight: 5, arbitrary: fc.integer({ min: 0, max: 3_000 }) },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("hold" as const),
      tenant: fc.option(fc.integer({ min: 0, max: TENANTS.length - 1 })),
      untilIn: fc.integer({ min: -100, max: 3_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("configure" as const), placed: placedArb }) },
);

interface Scenario {
  readonly placed: Placed;
  /** Each tenant's share weight, fixed for the run. */
  readonly weights: readonly number[];
  readonly steps: readonly Step[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  placed: placedArb,
  weights: fc.array(fc.constantFrom(0.5, 1, 1, 2, 3), { minLength: TENANTS.length, maxLength: TENANTS.length }),
  steps: fc.array(stepArb, { maxLength: 80, size: "max" }),
});

interface Slot {
  readonly id: string;
  readonly leaseId: string;
  readonly tenant: string;
  readonly priority: Priority;
}

function tenantOf(index: number): string {
  return TENANTS[index] ?? "t0";
}

function sum(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((total, count) => total + count, 0);
}

const ROUTE = "/v1";

function isHeld(state: OriginState, tenant: string, now: number): boolean {
  return heldUntil(state, { holdParty: tenant, route: ROUTE }, now) !== null;
}

const rankOf = (priority: Priority) => PRIORITIES.indexOf(priority);

interface Arrival {
  readonly tenant: string;
  readonly priority: Priority;
}

/** Drives the desk as the origin shard does, and checks each answer and the state after every step. */
class CheckedShard {
  readonly desk: OriginDesk;
  now = T0;
  private arrivals = 0;
  /** How each arrival was finally answered; an arrival answered twice fails the run. */
  readonly answers = new Map<string, AcquireDecision["kind"]>();
  /** Queued, not yet answered. */
  readonly pending = new Map<string, Arrival>();
  /** Admitted and not yet released. */
  readonly slots: Slot[] = [];
  /** Released while the origin may still be working (deadline): held by the desk until reaped. */
  private lingering = 0;

  constructor(
    placed: Placed,
    private readonly weights: readonly number[],
  ) {
    this.desk = new OriginDesk(null, null, T0);
    this.desk.configure(placed.config, placed.index, T0);
  }

  get arrived(): number {
    return this.arrivals;
  }

  get state(): OriginState {
    const inspected = this.desk.inspect();
    if (!inspected) throw new Error("the shard is not active");
    return inspected.core;
  }

  get limits(): OriginLimits {
    const inspected = this.desk.inspect();
    if (!inspected) throw new Error("the shard is not active");
    return inspected.limits;
  }

  run(step: Step): void {
    const before = this.state;
    switch (step.kind) {
      case "arrive":
        this.arrive(step.tenant, step.priority, step.deadlineIn, before);
        break;
      case "release":
        this.release(step, before);
        break;
      case "advance":
        this.now += step.ms;
        this.judge(this.desk.wake(this.now), before, 0);
        break;
      case "hold": {
        const scope =
          step.tenant === null ? { kind: "all" as const } : { kind: "party" as const, party: tenantOf(step.tenant) };
        this.judge(this.desk.hold({ scope, untilMs: this.now + step.untilIn }, this.now), before, 0);
        break;
      }
      case "configure":
        this.judge(this.desk.configure(step.placed.config, step.placed.index, this.now), before, 0);
        break;
    }
    this.checkState();
  }

  /** Lets the clock run past every wait, hold and lease: nothing may be left waiting or held. */
  settle(): void {
    this.now += 10_000_000;
    this.judge(this.desk.wake(this.now), this.state, 0);
    this.checkState();
    expect([...this.pending.keys()], "still waiting after every wait ended").toEqual([]);
    expect(this.answers.size, "every arrival answered").toBe(this.arrivals);
  }

  /** Reaps as the alarm does, once every lease has lapsed: slots the test still holds are gone too. */
  reapAll(): void {
    this.now += 10_000_000;
    this.desk.reap(this.now);
    this.slots.length = 0;
    this.lingering = 0;
  }

  private answer(id: string, how: AcquireDecision["kind"]): void {
    expect(this.answers.has(id), `${id} answered twice (${this.answers.get(id)}, then ${how})`).toBe(false);
    this.answers.set(id, how);
  }

  /**
   * Judges the queued requests a call answered, in the order the desk granted them: `freed` is
   * how many slots the call freed before its pump, `admittedAfter` 1 when the call's own arrival
   * was admitted after its pump.
   */
  private judge(effects: OriginEffects, before: OriginState, freed: number, admittedAfter = 0): void {
    const after = this.state;
    const limit = effectiveLimit(after, this.limits, this.now);
    const granted = effects.answers.filter(({ answer }) => answer.kind === "admit");
    let inFlight = after.inFlight - granted.length - admittedAfter;
    expect(inFlight, "the slots freed before the pump").toBe(before.inFlight - freed);
    const seqOf = new Map(before.queue.map((w) => [w.id, w.seq]));
    const lastSeq = new Map<string, number>();
    for (const { to, answer } of effects.answers) {
      const waiter = this.pending.get(to);
      expect(waiter, `${to} answered while not waiting (${answer.kind})`).toBeDefined();
      if (!waiter) continue;
      this.pending.delete(to);
      this.answer(to, answer.kind);
      if (answer.kind !== "admit") {
        expect(answer.kind, "a queued request is granted or shed").toBe("shed");
        continue;
      }
      expect(isHeld(after, waiter.tenant, this.now), "granted during a hold").toBe(false);
      expect(inFlight, "granted past its class's cap").toBeLessThan(
        classCap(limit, this.limits.reservations, waiter.priority),
      );
      inFlight += 1;
      const line = `${waiter.tenant}/${waiter.priority}`;
      const seq = seqOf.get(to) ?? Number.NaN;
      expect(seq, "served out of order within its tenant").toBeGreaterThan(
        lastSeq.get(line) ?? Number.NEGATIVE_INFINITY,
      );
      lastSeq.set(line, seq);
      expect(
        after.queue.some((w) => `${w.tenant}/${w.priority}` === line && w.seq < seq),
        "served before an earlier waiter of its tenant and class",
      ).toBe(false);
      this.slots.push({ id: to, leaseId: answer.leaseId, ...waiter });
    }
    expect(after.inFlight, "in flight beyond the limit").toBeLessThanOrEqual(Math.max(before.inFlight, limit));
  }

  private arrive(tenantIndex: number, priority: Priority, deadlineIn: number, before: OriginState): void {
    this.arrivals += 1;
    const tenant = tenantOf(tenantIndex);
    const id = `a${this.arrivals}`;
    const request = { tenant, method: "GET", route: ROUTE, weight: this.weights[tenantIndex] ?? 1, priority };
    const { reply, effects } = this.desk.acquire({ ...request, deadline: this.now + deadlineIn }, id, this.now);
    const admitted = reply.kind === "answer" && reply.decision.kind === "admit";
    this.judge(effects, before, 0, admitted ? 1 : 0);
    const after = this.state;
    if (reply.kind === "queued") {
      expect(
        after.queue.some((w) => w.id === id),
        "queued but not in the queue",
      ).toBe(true);
      this.pending.set(id, { tenant, priority });
      return;
    }
    const decision = reply.decision;
    this.answer(id, decision.kind);
    if (decision.kind === "admit") {
      const limit = effectiveLimit(after, this.limits, this.now);
      expect(isHeld(after, tenant, this.now), "admitted during a hold").toBe(false);
      expect(after.inFlight - 1, "admitted past its class's cap").toBeLessThan(
        classCap(limit, this.limits.reservations, priority),
      );
      expect(
        after.queue.some((w) => rankOf(w.priority) >= rankOf(priority)),
        "overtook a waiter of its class or higher",
      ).toBe(false);
      this.slots.push({ id, leaseId: decision.leaseId, tenant, priority });
    } else {
      expect(decision.kind, "an active shard admits, queues or sheds").toBe("shed");
      if (decision.kind === "shed") expect(decision.retryAfterMs).toBeGreaterThanOrEqual(0);
    }
  }

  private release(step: Extract<Step, { kind: "release" }>, before: OriginState): void {
    if (this.slots.length === 0) return;
    const [slot] = this.slots.splice(step.pick % this.slots.length, 1);
    if (!slot) return;
    // An error is a failed fetch, or a deadline abort before any headers (which keeps the slot:
    // the origin may still be working); the others are the origin's answers.
    const aborted = step.status === "error" && (step.heldMs ?? 1) % 3 === 0;
    const outcome = step.status !== "error" ? "completed" : aborted ? "deadline_exceeded" : "origin_failed";
    const report: OriginRelease = {
      outcome,
      status: { ok: 200, error: 0, "503": 503, "429": 429 }[step.status],
      latencyMs: step.status === "error" ? null : step.latencyMs,
      retryAfterMs: step.status === "503" || step.status === "429" ? step.retryAfterMs : null,
      capacity: step.capacity,
      wholeOrigin: step.status === "503" && (step.heldMs ?? 1) % 2 === 0,
      clientBudget: false,
      streamed: false,
    };
    this.now += Math.min(step.heldMs ?? 0, 300);
    const frees = report.outcome !== "deadline_exceeded";
    if (!frees) this.lingering += 1;
    this.judge(this.desk.release(slot.leaseId, report, this.now), before, frees ? 1 : 0);
    // A second release of the same lease changes nothing, even one that says it completed: a
    // lingering slot is the origin's until it lapses.
    const again = this.state;
    const repeated = this.desk.release(slot.leaseId, bareRelease("completed"), this.now);
    expect(repeated.answers, "a repeated release answers nobody").toEqual([]);
    expect(this.state.inFlight, "a repeated release frees nothing").toBe(again.inFlight);
  }

  private checkState(): void {
    const s = this.state;
    const inspected = this.desk.inspect();
    expect(s.inFlight, "in flight: the slots held plus those lingering").toBe(this.slots.length + this.lingering);
    expect(inspected?.leases, "one lease per slot").toBe(s.inFlight);
    expect(sum(s.inFlightByPriority)).toBe(s.inFlight);
    expect(sum(s.inFlightByTenant)).toBe(s.inFlight);
    for (const count of [...Object.values(s.inFlightByPriority), ...Object.values(s.inFlightByTenant)]) {
      expect(count).toBeGreaterThanOrEqual(0);
    }
    for (const count of Object.values(s.inFlightByTenant)) expect(count).toBeGreaterThan(0);
    expect(s.queue.length).toBeLessThanOrEqual(this.limits.maxQueue);
    expect(new Set(s.queue.map((w) => w.id))).toEqual(new Set(this.pending.keys()));
    s.queue.forEach((waiter, i) => {
      if (i > 0) expect(waiter.seq).toBeGreaterThan(s.queue[i - 1]?.seq ?? Number.NEGATIVE_INFINITY);
    });
    const limit = effectiveLimit(s, this.limits, this.now);
    for (const waiter of s.queue) {
      expect(
        s.inFlight >= classCap(limit, this.limits.reservations, waiter.priority),
        `${waiter.id} left waiting with room for its class`,
      ).toBe(true);
    }
    expect(limit).toBeGreaterThanOrEqual(0);
    expect(limit).toBeLessThanOrEqual(this.limits.ceiling);
    if (this.limits.adaptive) {
      expect(s.adaptive.limit).toBeGreaterThanOrEqual(Math.min(this.limits.floor, this.limits.ceiling));
      expect(s.adaptive.limit).toBeLessThanOrEqual(this.limits.ceiling);
    }
  }
}

function exercise(scenario: Scenario): CheckedShard {
  const shard = new CheckedShard(scenario.placed, scenario.weights);
  for (const step of scenario.steps) shard.run(step);
  shard.settle();
  return shard;
}

describe("origin admission core under random traffic, driven as an origin shard drives it", () => {
  it(
    "keeps every invariant after every step: caps, holds, counts, queue bound, order, one answer per arrival",
    () => {
      fc.assert(
        fc.property(scenarioArb, (scenario) => {
          exercise(scenario);
        }),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "returns to an empty shard once every wait has ended and every slot is released",
    () => {
      fc.assert(
        fc.property(scenarioArb, (scenario) => {
          const shard = exercise(scenario);
          while (shard.slots.length > 0) {
            shard.run({
              kind: "release",
              pick: 0,
              heldMs: null,
              latencyMs: null,
              status: "ok",
              retryAfterMs: null,
              capacity: null,
            });
          }
          shard.reapAll();
          expect(shard.state.inFlight).toBe(0);
          expect(shard.state.inFlightByTenant).toEqual({});
          expect(shard.state.queue).toEqual([]);
        }),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
