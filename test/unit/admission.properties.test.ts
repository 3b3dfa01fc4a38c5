import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AdmissionState, applyLimits, pump } from "../../src/admission/admission";
import { RELEASE_OUTCOMES } from "../../src/admission/counters";
import { type AdmissionLimits, FULL_BEHAVIOURS } from "../../src/admission/limits";
import { PRIORITIES, priorityRank } from "../../src/admission/priority";
import type { WaitQueue, Waiter } from "../../src/admission/wait-queue";
import { GuardDriver, type Step, type StepRecord } from "./admission-driver";
import { PROPERTY_RUNS, PROPERTY_TIMEOUT_MS } from "./property-runs";

/**
 * Properties of the admission core over random traffic, driven the way the tenant Durable
 * Object drives it (see admission-driver.ts). Each `it` runs its own PROPERTY_RUNS random
 * sequences of up to 60 steps, then lets everything settle, and judges one invariant after
 * every step.
 */

// Small limits by default: contention (empty bucket, busy slots, full queue) is where the
// invariants are at risk, and it only happens within 60 steps when the bounds are tiny.
const contendedLimits = fc.record({
  rate: fc.oneof(
    fc.integer({ min: 1, max: 20 }),
    fc.double({ min: 0.05, max: 50, noNaN: true, noDefaultInfinity: true }),
  ),
  burst: fc.integer({ min: 1, max: 5 }),
  maxInFlight: fc.integer({ min: 1, max: 4 }),
  maxQueue: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 4, max: 10 })),
  maxWaitMs: fc.oneof(
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 6, arbitrary: fc.integer({ min: 500, max: 4_000 }) },
  ),
});

// The whole range tenant-config.ts accepts, so extreme settings are tried too.
const anyValidLimits = fc.record({
  rate: fc.double({ min: 0.001, max: 100_000, noNaN: true, noDefaultInfinity: true }),
  burst: fc.integer({ min: 1, max: 1_000_000 }),
  maxInFlight: fc.integer({ min: 1, max: 5_000 }),
  maxQueue: fc.integer({ min: 0, max: 1_000 }),
  maxWaitMs: fc.integer({ min: 0, max: 60_000 }),
});

const limitsArb: fc.Arbitrary<AdmissionLimits> = fc.oneof(
  { weight: 5, arbitrary: contendedLimits },
  { weight: 1, arbitrary: anyValidLimits },
);

const arrivalFields = {
  priority: fc.constantFrom(...PRIORITIES),
  // From already late to well past the contended maxWaitMs, so `block` often outwaits the rest;
  // the edges (due now, due in 1 ms) are where an off-by-one admits late.
  deadlineInMs: fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(0, 1) },
    { weight: 8, arbitrary: fc.integer({ min: -500, max: 12_000 }) },
  ),
  fullBehaviour: fc.constantFrom(...FULL_BEHAVIOURS),
};

interface TrafficShape {
  /** Clock jumps, backwards included. */
  readonly jumps: boolean;
  /** How limits change mid-run: by `configure`, by a carried-limits arrival, or not at all. */
  readonly limitChanges: "configure" | "carried" | "none";
}

function stepArb(shape: TrafficShape): fc.Arbitrary<Step> {
  const steps: fc.WeightedArbitrary<Step>[] = [
    { weight: 8, arbitrary: fc.record({ kind: fc.constant("arrive" as const), ...arrivalFields }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("release" as const),
        pick: fc.nat(),
        outcome: fc.constantFrom(...RELEASE_OUTCOMES),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 3_000 }) }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "stats" as const }) },
  ];
  if (shape.jumps) {
    steps.push({
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("jump" as const), ms: fc.integer({ min: -30_000, max: 30_000 }) }),
    });
  }
  if (shape.limitChanges === "configure") {
    steps.push({ weight: 1, arbitrary: fc.record({ kind: fc.constant("configure" as const), limits: limitsArb }) });
  }
  if (shape.limitChanges === "carried") {
    steps.push({
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("arrive-carrying" as const), limits: limitsArb, ...arrivalFields }),
    });
  }
  return fc.oneof(...steps);
}

interface Scenario {
  readonly limits: AdmissionLimits;
  readonly steps: readonly Step[];
}

const MAX_STEPS = 60;

function scenarioArb(shape: TrafficShape): fc.Arbitrary<Scenario> {
  return fc.record({ limits: limitsArb, steps: fc.array(stepArb(shape), { maxLength: MAX_STEPS, size: "max" }) });
}

const ANY_TRAFFIC: TrafficShape = { jumps: true, limitChanges: "configure" };

/** What a check sees: the driver after the step, what the step did, and in-flight before it. */
type Check = (driver: GuardDriver, record: StepRecord, inFlightBefore: number) => void;

function exercise(scenario: Scenario, check: Check): GuardDriver {
  const driver = new GuardDriver(scenario.limits);
  for (const step of scenario.steps) {
    const inFlightBefore = driver.core.inFlight;
    check(driver, driver.run(step), inFlightBefore);
  }
  const inFlightBefore = driver.core.inFlight;
  check(driver, driver.settle(), inFlightBefore);
  return driver;
}

function assertForAllTraffic(check: Check, shape: TrafficShape = ANY_TRAFFIC, examples: [Scenario][] = []): void {
  fc.assert(
    fc.property(scenarioArb(shape), (scenario) => {
      exercise(scenario, check);
    }),
    { numRuns: PROPERTY_RUNS, examples },
  );
}

function servedBefore(a: Waiter, b: Waiter): boolean {
  const byRank = priorityRank(a.priority) - priorityRank(b.priority);
  return byRank > 0 || (byRank === 0 && a.seq < b.seq);
}

function expectServiceOrder(queue: WaitQueue): void {
  queue.forEach((waiter, index) => {
    const previous = queue[index - 1];
    if (previous) expect(servedBefore(previous, waiter), `${previous.id} before ${waiter.id}`).toBe(true);
  });
}

function canAdmitHead(state: AdmissionState, limits: AdmissionLimits): boolean {
  return state.queue.length > 0 && state.bucket.tokens >= 1 && state.inFlight < limits.maxInFlight;
}

const SMALL_LIMITS: AdmissionLimits = { rate: 1, burst: 1, maxInFlight: 1, maxQueue: 2, maxWaitMs: 5_000 };

describe("admission core under random traffic, driven as the tenant object drives it", () => {
  it(
    "never holds fewer than 0 or more than burst tokens",
    () => {
      assertForAllTraffic((driver) => {
        expect(driver.core.bucket.tokens).toBeGreaterThanOrEqual(0);
        expect(driver.core.bucket.tokens).toBeLessThanOrEqual(driver.limits.burst);
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "never admits more than the burst plus what the rate refilled, over any window of time, whichever way the clock steps",
    () => {
      // Limits fixed so the bound is a plain formula. A clock that steps back refills nothing,
      // so the time that counts is how far the clock has ever got, not where it is now.
      const shape: TrafficShape = { jumps: true, limitChanges: "none" };
      fc.assert(
        fc.property(scenarioArb(shape), (scenario) => {
          const refilledUpTo: number[] = [];
          exercise(scenario, (_driver, record) => {
            for (const grant of record.grants) refilledUpTo.push(grant.refilledUpTo);
          });
          const { burst, rate } = scenario.limits;
          refilledUpTo.forEach((from, first) => {
            refilledUpTo.slice(first).forEach((to, offset) => {
              const admitted = offset + 1;
              expect(admitted).toBeLessThanOrEqual(burst + (rate * (to - from)) / 1000 + 1e-6);
            });
          });
        }),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "never queues more waiters than maxQueue",
    () => {
      assertForAllTraffic((driver) => {
        expect(driver.core.queue.length).toBeLessThanOrEqual(driver.limits.maxQueue);
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "keeps the queue in service order: higher priority first, FIFO within a class",
    () => {
      assertForAllTraffic((driver) => expectServiceOrder(driver.core.queue));
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "never leaves a waiter queued while a token and a slot are free for it",
    () => {
      // Every call ends with a pump; between calls nothing frees a slot, and a token that
      // accrues or a wait that ends is what the wake timer is armed for.
      assertForAllTraffic((driver) => {
        expect(canAdmitHead(driver.core, driver.limits)).toBe(false);
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "arms the wake timer so that, as time passes, no waiter misses its token or outstays its wait",
    () => {
      // After time has passed with only the timers firing, a pump now must find nothing to do.
      // A forward clock jump is excluded: the timer it made due has not had its turn yet.
      const shape: TrafficShape = { jumps: false, limitChanges: "configure" };
      assertForAllTraffic((driver) => {
        const late = pump(driver.core, driver.limits, driver.now);
        expect(late.granted.map((waiter) => waiter.id)).toEqual([]);
        expect(late.timedOut.map((waiter) => waiter.id)).toEqual([]);
      }, shape);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "admits only while in flight is below maxInFlight, so after maxInFlight is lowered in flight never grows until it is back under it",
    () => {
      // The exact invariant: each admission happens at inFlight < maxInFlight (the bound in
      // force then). inFlight can sit above the bound only after a configure lowered it, and
      // then a step can only lower it (releases, reaps), never raise it.
      assertForAllTraffic((driver, record, inFlightBefore) => {
        for (const grant of record.grants) expect(grant.inFlightBefore).toBeLessThan(grant.maxInFlight);
        if (driver.core.inFlight > driver.limits.maxInFlight) {
          expect(driver.core.inFlight).toBeLessThanOrEqual(inFlightBefore);
        }
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "counts in flight exactly the leases held, lingering ones included",
    () => {
      assertForAllTraffic((driver) => {
        expect(driver.core.inFlight).toBe(driver.leases.size);
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "never admits a request at or after its deadline, nor a waiter at or after the end of its wait",
    () => {
      assertForAllTraffic((_driver, record) => {
        for (const grant of record.grants) {
          expect(grant.at).toBeLessThan(grant.deadline);
          if (grant.expiresAt !== null) expect(grant.at).toBeLessThan(grant.expiresAt);
        }
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "lets a waiter wait until maxWaitMs, or until its deadline less the expected service time if that is sooner (or if it blocks)",
    () => {
      assertForAllTraffic((driver, record) => {
        for (const { arrival, at, outcome, holdMsEwmaBefore } of record.arrivals) {
          if (outcome.kind !== "queued") continue;
          const lastUsefulStart = arrival.deadline - Math.max(0, holdMsEwmaBefore ?? 0);
          const waitEnds =
            arrival.fullBehaviour === "block"
              ? lastUsefulStart
              : Math.min(at + driver.limits.maxWaitMs, lastUsefulStart);
          expect(outcome.waiter.expiresAt).toBe(waitEnds);
          expect(outcome.waiter.expiresAt).toBeGreaterThan(at);
        }
        for (const { waiter, at } of record.timedOut) expect(waiter.expiresAt).toBeLessThanOrEqual(at);
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "admits an arrival at once only when nobody is queued, and admits nobody in its place when it queues or sheds it",
    () => {
      assertForAllTraffic((_driver, record) => {
        for (const { queueBefore, outcome, inFlightBefore, inFlightAfter } of record.arrivals) {
          if (outcome.kind === "admit") expect(queueBefore).toHaveLength(0);
          expect(inFlightAfter - inFlightBefore).toBe(outcome.kind === "admit" ? 1 : 0);
        }
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "sheds an arrival as queue_full only when nothing queued is of lower priority (evict-lowest) or of its class or lower (shed-oldest)",
    () => {
      assertForAllTraffic((_driver, record) => {
        for (const { arrival, queueBefore, outcome } of record.arrivals) {
          if (outcome.kind !== "shed" || outcome.reason !== "queue_full") continue;
          const rank = priorityRank(arrival.priority);
          for (const waiter of queueBefore) {
            if (arrival.fullBehaviour === "evict-lowest") {
              expect(priorityRank(waiter.priority)).toBeGreaterThanOrEqual(rank);
            }
            if (arrival.fullBehaviour === "shed-oldest") {
              expect(priorityRank(waiter.priority)).toBeGreaterThan(rank);
            }
          }
        }
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "evicts a waiter for an arrival only from a full queue: the newest of the lowest class and strictly lower (evict-lowest), or the oldest of the lowest class and not higher (shed-oldest), never for shed-newest or block",
    () => {
      assertForAllTraffic((driver, record) => {
        for (const { victim, cause } of record.evictions) {
          if (cause.kind !== "arrival") continue;
          const { arrival, queueBefore } = cause;
          const victimRank = priorityRank(victim.priority);
          const lowestRank = Math.min(...queueBefore.map((waiter) => priorityRank(waiter.priority)));
          const lowestClass = queueBefore.filter((waiter) => priorityRank(waiter.priority) === lowestRank);
          expect(queueBefore.length).toBeGreaterThanOrEqual(driver.limits.maxQueue);
          expect(victimRank).toBe(lowestRank);
          const arrived = record.arrivals.find((entry) => entry.arrival.id === arrival.id);
          expect(arrived?.outcome.kind).toBe("queued");
          switch (arrival.fullBehaviour) {
            case "evict-lowest":
              expect(victimRank).toBeLessThan(priorityRank(arrival.priority));
              expect(victim.id).toBe(lowestClass[lowestClass.length - 1]?.id);
              break;
            case "shed-oldest":
              expect(victimRank).toBeLessThanOrEqual(priorityRank(arrival.priority));
              expect(victim.id).toBe(lowestClass[0]?.id);
              break;
            case "shed-newest":
            case "block":
              expect.unreachable(`${arrival.fullBehaviour} evicted ${victim.id}`);
          }
        }
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "on a change of limits evicts only waiters that every kept waiter is served before",
    () => {
      assertForAllTraffic((_driver, record) => {
        for (const { victim, cause } of record.evictions) {
          if (cause.kind !== "limits") continue;
          for (const kept of cause.kept) expect(servedBefore(kept, victim)).toBe(true);
        }
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "answers every request exactly once (admitted, shed, evicted or timed out) unless it is still queued",
    () => {
      assertForAllTraffic(expectEveryRequestAnsweredOnceOrQueued);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "adds its counters up: arrived = admitted + shed + queued, and admitted = released + reaped + held",
    () => {
      assertForAllTraffic(expectCountersAddUp);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "frees every slot exactly once: in flight is back to 0 once every lease is released and the queue has drained",
    () => {
      fc.assert(
        fc.property(scenarioArb(ANY_TRAFFIC), (scenario) => {
          const everHeld = new Set<string>();
          const freed = new Set<string>();
          const driver = exercise(scenario, (current) => {
            for (const id of everHeld) if (!current.leases.has(id)) freed.add(id);
            for (const id of current.leases.keys()) {
              expect(freed.has(id), `${id} held again after it was freed`).toBe(false);
              everHeld.add(id);
            }
          });
          const admitted = driver.arrivals.filter(({ id }) => driver.answers.get(id)?.[0]?.kind === "admit");
          expect(driver.leases.size).toBe(0);
          expect(driver.core.queue).toHaveLength(0);
          expect(driver.core.inFlight).toBe(0);
          expect(driver.counters.admitted).toBe(admitted.length);
          expect(driver.counters.released + driver.counters.reaped).toBe(admitted.length);
        }),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "wakes only to make progress: a wake that admits or expires nobody re-arms strictly later",
    () => {
      assertForAllTraffic((_driver, record) => {
        for (const wake of record.wakes) {
          if (wake.progressed || wake.nextWakeAt === null) continue;
          expect(wake.nextWakeAt).toBeGreaterThan(wake.firedAt);
        }
      });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "on a change of limits alone, before any pump, holds at most the new burst and keeps the first maxQueue waiters",
    () => {
      // The object always pumps right after, which would hide a missing clamp; check it bare.
      fc.assert(
        fc.property(scenarioArb(ANY_TRAFFIC), limitsArb, (scenario, next) => {
          const driver = new GuardDriver(scenario.limits);
          for (const step of scenario.steps) driver.run(step);
          const { state, evicted } = applyLimits(driver.core, next);
          expect(state.bucket.tokens).toBeLessThanOrEqual(next.burst);
          expect(state.bucket.tokens).toBe(Math.min(driver.core.bucket.tokens, next.burst));
          expect(state.queue.length).toBeLessThanOrEqual(next.maxQueue);
          expect([...state.queue, ...evicted]).toEqual(driver.core.queue);
          expect(state.inFlight).toBe(driver.core.inFlight);
        }),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  // Regression: an anonymous per-IP object receiving a request that carried different limits
  // used to drop the waiters its lowered queue bound trimmed, unanswered (their admit call hung).
  it(
    "answers the waiters trimmed when an anonymous object's carried limits change",
    () => {
      const trimmedByCarriedLimits: Scenario = {
        limits: SMALL_LIMITS,
        steps: [
          { kind: "arrive", priority: "normal", deadlineInMs: 10_000, fullBehaviour: "evict-lowest" },
          { kind: "arrive", priority: "normal", deadlineInMs: 10_000, fullBehaviour: "evict-lowest" },
          {
            kind: "arrive-carrying",
            limits: { ...SMALL_LIMITS, maxQueue: 0 },
            priority: "normal",
            deadlineInMs: 10_000,
            fullBehaviour: "evict-lowest",
          },
        ],
      };
      assertForAllTraffic(
        (driver) => {
          expectEveryRequestAnsweredOnceOrQueued(driver);
          expectCountersAddUp(driver);
        },
        { jumps: true, limitChanges: "carried" },
        [[trimmedByCarriedLimits]],
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  // Regression: a clock that stepped back between admission and release used to give a negative
  // hold time, which the moving average took as is (wait estimates then ignored busy slots).
  it(
    "never learns a negative hold time, even when the clock steps back between admission and release",
    () => {
      const releasedAfterClockStepBack: Scenario = {
        limits: SMALL_LIMITS,
        steps: [
          { kind: "arrive", priority: "normal", deadlineInMs: 10_000, fullBehaviour: "evict-lowest" },
          { kind: "jump", ms: -1_000 },
          { kind: "release", pick: 0, outcome: "completed" },
        ],
      };
      assertForAllTraffic(
        (driver) => {
          const ewma = driver.core.holdMsEwma;
          if (ewma !== null) expect(ewma).toBeGreaterThanOrEqual(0);
        },
        ANY_TRAFFIC,
        [[releasedAfterClockStepBack]],
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});

function expectEveryRequestAnsweredOnceOrQueued(driver: GuardDriver): void {
  const queued = new Set(driver.core.queue.map((waiter) => waiter.id));
  const wrong: string[] = [];
  for (const { id } of driver.arrivals) {
    const answers = driver.answers.get(id) ?? [];
    if (answers.length > 1) wrong.push(`${id} answered ${answers.length} times`);
    if (answers.length === 0 && !queued.has(id)) wrong.push(`${id} neither answered nor queued`);
    if (answers.length > 0 && queued.has(id)) wrong.push(`${id} answered but still queued`);
  }
  expect(wrong).toEqual([]);
}

function expectCountersAddUp(driver: GuardDriver): void {
  const { arrived, admitted, shed, released, reaped } = driver.counters;
  const queued = driver.core.queue.length;
  const held = driver.heldLeases().length;
  expect(arrived, "arrived").toBe(driver.arrivals.length);
  expect(admitted + shed + queued, "admitted + shed + queued").toBe(arrived);
  expect(released + reaped + held, "released + reaped + held").toBe(admitted);
}
