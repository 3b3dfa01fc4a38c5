import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PRIORITIES, type Priority } from "../../src/admission/priority";
import {
  type OriginState,
  applyOriginLimits,
  arrive,
  effectiveLimit,
  heldUntil,
  holdBack,
  initialOriginState,
  learn,
  pump,
  releaseSlot,
} from "../../src/origin/origin-admission";
import { type OriginLimits, classCap, originConfigSchema, shardLimits } from "../../src/origin/origin-config";
import type { OriginWaiter } from "../../src/origin/origin-waiter";
import { PROPERTY_RUNS, PROPERTY_TIMEOUT_MS } from "./property-runs";

/**
 * Properties of the origin stage's core over random traffic, driven the way an origin shard
 * drives it: pump before each arrival; on a release, learn from the response, free the slot,
 * pump; a hold from a sibling shard or new limits, then a pump. Every invariant is judged after
 * every step, and once more after the clock has run past every wait.
 */

const T0 = 1_700_000_000_000;
const TENANTS = ["t0", "t1", "t2", "t3"] as const;

// Small numbers: contention (full classes, a full queue, holds) is where the invariants are at risk.
const share = fc.constantFrom(0, 0.1, 0.3, 0.5, 0.6, 0.8, 0.9, 1);
const limitsArb: fc.Arbitrary<OriginLimits> = fc
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
    return shardLimits(config, raw.index % shards);
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
  | { readonly kind: "configure"; readonly limits: OriginLimits };

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
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("configure" as const), limits: limitsArb }) },
);

interface Scenario {
  readonly limits: OriginLimits;
  /** Each tenant's share weight, fixed for the run. */
  readonly weights: readonly number[];
  readonly steps: readonly Step[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  limits: limitsArb,
  weights: fc.array(fc.constantFrom(0.5, 1, 1, 2, 3), { minLength: TENANTS.length, maxLength: TENANTS.length }),
  steps: fc.array(stepArb, { maxLength: 80, size: "max" }),
});

type Slot = Pick<OriginWaiter, "id" | "tenant" | "priority">;

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

/** Drives the core and checks each decision as it is made, and the state after every step. */
class CheckedShard {
  state: OriginState;
  limits: OriginLimits;
  now = T0;
  private arrivals = 0;
  /** How each arrival was finally answered; an arrival answered twice fails the run. */
  readonly answers = new Map<string, "admit" | "granted" | "shed" | "evicted" | "pump-shed">();
  /** Queued, not yet answered. */
  readonly pending = new Set<string>();
  readonly slots: Slot[] = [];

  constructor(
    limits: OriginLimits,
    private readonly weights: readonly number[],
  ) {
    this.limits = limits;
    this.state = initialOriginState(limits, T0);
  }

  get arrived(): number {
    return this.arrivals;
  }

  run(step: Step): void {
    switch (step.kind) {
      case "arrive":
        this.pump();
        this.arrive(step.tenant, step.priority, step.deadlineIn);
        break;
      case "release":
        this.release(step);
        this.pump();
        break;
      case "advance":
        this.now += step.ms;
        this.pump();
        break;
      case "hold":
        this.state = holdBack(
          this.state,
          this.limits,
          {
            scope: step.tenant === null ? { kind: "all" } : { kind: "party", party: tenantOf(step.tenant) },
            untilMs: this.now + step.untilIn,
          },
          this.now,
        );
        this.pump();
        break;
      case "configure": {
        const applied = applyOriginLimits(this.state, step.limits);
        this.limits = step.limits;
        this.state = applied.state;
        for (const waiter of applied.evicted) this.answerWaiter(waiter.id, "evicted");
        this.pump();
        break;
      }
    }
    this.checkState();
  }

  /** Lets the clock run past every wait and hold: nothing may be left waiting. */
  settle(): void {
    this.now += 10_000_000;
    this.pump();
    this.checkState();
    expect([...this.pending], "still waiting after every wait ended").toEqual([]);
    expect(this.answers.size, "every arrival answered").toBe(this.arrivals);
  }

  private answer(id: string, how: "admit" | "granted" | "shed" | "evicted" | "pump-shed"): void {
    expect(this.answers.has(id), `${id} answered twice (${this.answers.get(id)}, then ${how})`).toBe(false);
    this.answers.set(id, how);
  }

  private answerWaiter(id: string, how: "granted" | "evicted" | "pump-shed"): void {
    expect(this.pending.has(id), `${id} was not waiting when ${how}`).toBe(true);
    this.pending.delete(id);
    this.answer(id, how);
  }

  private arrive(tenantIndex: number, priority: Priority, deadlineIn: number): void {
    this.arrivals += 1;
    const tenant = tenantOf(tenantIndex);
    const id = `a${this.arrivals}`;
    const before = this.state;
    const limit = effectiveLimit(before, this.limits, this.now);
    const result = arrive(
      before,
      this.limits,
      {
        id,
        tenant,
        holdParty: tenant,
        method: "GET",
        route: ROUTE,
        weight: this.weights[tenantIndex] ?? 1,
        priority,
        deadline: this.now + deadlineIn,
      },
      this.now,
    );
    this.state = result.state;
    for (const victim of result.evicted) this.answerWaiter(victim.id, "evicted");
    const outcome = result.outcome;
    if (outcome.kind === "admit") {
      expect(isHeld(before, tenant, this.now), "admitted during a hold").toBe(false);
      expect(before.inFlight, "admitted past its class's cap").toBeLessThan(
        classCap(limit, this.limits.reservations, priority),
      );
      const rank = PRIORITIES.indexOf(priority);
      expect(
        before.queue.some((w) => PRIORITIES.indexOf(w.priority) >= rank),
        "overtook a waiter of its class or higher",
      ).toBe(false);
      this.slots.push({ id, tenant, priority });
      this.answer(id, "admit");
    } else if (outcome.kind === "queued") {
      expect(outcome.waiter.id).toBe(id);
      this.pending.add(id);
    } else {
      expect(outcome.retryAfterMs).toBeGreaterThanOrEqual(0);
      this.answer(id, "shed");
    }
    expect(this.state.inFlight).toBeLessThanOrEqual(Math.max(before.inFlight, limit));
  }

  private release(step: Extract<Step, { kind: "release" }>): void {
    if (this.slots.length === 0) return;
    const [slot] = this.slots.splice(step.pick % this.slots.length, 1);
    if (!slot) return;
    const status = step.status;
    this.state = learn(
      this.state,
      this.limits,
      {
        tenant: slot.tenant,
        holdParty: slot.tenant,
        method: "GET",
        route: ROUTE,
        latencyMs: step.latencyMs,
        drop: status !== "ok",
        backoffMs: status === "503" ? step.retryAfterMs : null,
        tenantBackoffMs: status === "429" ? step.retryAfterMs : null,
        wholeOrigin: status === "503" && step.heldMs !== null && step.heldMs % 2 === 0,
        capacity: step.capacity,
      },
      this.now,
    );
    this.state = releaseSlot(this.state, slot, step.heldMs, this.now);
  }

  private pump(): void {
    const before = this.state;
    const limit = effectiveLimit(before, this.limits, this.now);
    const result = pump(before, this.limits, this.now);
    this.state = result.state;
    for (const { waiter } of result.shed) this.answerWaiter(waiter.id, "pump-shed");
    result.granted.forEach((waiter, k) => {
      expect(isHeld(before, waiter.tenant, this.now), "granted during a hold").toBe(false);
      expect(waiter.expiresAt, "granted after its wait ended").toBeGreaterThan(this.now);
      expect(before.inFlight + k, "granted past its class's cap").toBeLessThan(
        classCap(limit, this.limits.reservations, waiter.priority),
      );
      const sameLine = (w: OriginWaiter) => w.tenant === waiter.tenant && w.priority === waiter.priority;
      const earlier = [...result.granted.slice(0, k), ...result.state.queue].filter(
        (w) => sameLine(w) && w.seq < waiter.seq,
      );
      expect(
        earlier.every((w) => result.granted.indexOf(w) < k && result.granted.includes(w)),
        "served out of order within its tenant",
      ).toBe(true);
      this.slots.push(waiter);
      this.answerWaiter(waiter.id, "granted");
    });
    expect(this.state.inFlight).toBeLessThanOrEqual(Math.max(before.inFlight, limit));
    for (const waiter of this.state.queue) {
      expect(
        this.state.inFlight >= classCap(limit, this.limits.reservations, waiter.priority),
        `${waiter.id} left waiting with room for its class`,
      ).toBe(true);
    }
  }

  private checkState(): void {
    const s = this.state;
    expect(s.inFlight).toBe(this.slots.length);
    expect(sum(s.inFlightByPriority)).toBe(s.inFlight);
    expect(sum(s.inFlightByTenant)).toBe(s.inFlight);
    for (const count of [...Object.values(s.inFlightByPriority), ...Object.values(s.inFlightByTenant)]) {
      expect(count).toBeGreaterThanOrEqual(0);
    }
    for (const count of Object.values(s.inFlightByTenant)) expect(count).toBeGreaterThan(0);
    expect(s.queue.length).toBeLessThanOrEqual(this.limits.maxQueue);
    expect(new Set(s.queue.map((w) => w.id))).toEqual(this.pending);
    s.queue.forEach((waiter, i) => {
      if (i > 0) expect(waiter.seq).toBeGreaterThan(s.queue[i - 1]?.seq ?? Number.NEGATIVE_INFINITY);
    });
    const limit = effectiveLimit(s, this.limits, this.now);
    expect(limit).toBeGreaterThanOrEqual(0);
    expect(limit).toBeLessThanOrEqual(this.limits.ceiling);
    if (this.limits.adaptive) {
      expect(s.adaptive.limit).toBeGreaterThanOrEqual(Math.min(this.limits.floor, this.limits.ceiling));
      expect(s.adaptive.limit).toBeLessThanOrEqual(this.limits.ceiling);
    }
  }
}

function exercise(scenario: Scenario): CheckedShard {
  const shard = new CheckedShard(scenario.limits, scenario.weights);
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
