import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AdmissionLimits } from "../../src/admission/limits";
import { FULL_BEHAVIOURS } from "../../src/admission/limits";
import { PRIORITIES } from "../../src/admission/priority";
import { heldSlots, heldTokens, inUseTotal } from "../../src/lease/edge-lease";
import { LEASE_TIMING } from "../../src/lease/lease-protocol";
import { emptyBook, slotsOut, tokensOut } from "../../src/lease/lease-book";
import { A, B, counts, renew, report } from "./lease-fixtures";
import { type Fate, LeaseSim, SIM_T0, type SimArrival, type SimOptions } from "./lease-sim";
import { PROPERTY_RUNS, PROPERTY_TIMEOUT_MS } from "./property-runs";

/**
 * Properties of the lease protocol over random traffic: one tenant's lease book and up to eight
 * isolates' edge leases, driven through lease-sim.ts (the production modules, wired the way the
 * object and the isolates wire them) over a network that delays, loses, reorders and repeats
 * renewals. Every invariant is judged after every time point the simulation processes, and the
 * answers once more after the clock has run past every wait.
 */

const limitsArb: fc.Arbitrary<AdmissionLimits> = fc.record({
  rate: fc.constantFrom(0.5, 2, 5, 20, 100),
  burst: fc.integer({ min: 1, max: 10 }),
  maxInFlight: fc.integer({ min: 1, max: 6 }),
  maxQueue: fc.integer({ min: 0, max: 6 }),
  maxWaitMs: fc.oneof(fc.constant(0), fc.integer({ min: 50, max: 3_000 })),
});

const fateArb: fc.Arbitrary<Fate> = fc.record({
  kind: fc.oneof(
    { weight: 6, arbitrary: fc.constant("ok" as const) },
    { weight: 1, arbitrary: fc.constant("lost-report" as const) },
    { weight: 1, arbitrary: fc.constant("lost-answer" as const) },
    { weight: 1, arbitrary: fc.constant("late-report" as const) },
    { weight: 1, arbitrary: fc.constant("duplicate" as const) },
  ),
  outMs: fc.integer({ min: 0, max: 40 }),
  backMs: fc.integer({ min: 0, max: 40 }),
  lagMs: fc.integer({ min: 0, max: 600 }),
});

const COVER_MS = 5_000;
/** The simulation is heavier than one core call: half the runs, a longer timeout. */
const SIM_RUNS = Math.max(1, Math.ceil(PROPERTY_RUNS / 2));
const SIM_TIMEOUT_MS = PROPERTY_TIMEOUT_MS * 4;

const arrivalArb = (edges: number): fc.Arbitrary<SimArrival> =>
  fc.record({
    edge: fc.integer({ min: 0, max: edges - 1 }),
    priority: fc.constantFrom(...PRIORITIES),
    budgetMs: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: COVER_MS })),
    fullBehaviour: fc.constantFrom(...FULL_BEHAVIOURS),
    serviceMs: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 3_000 })),
    outcome: fc.oneof(
      { weight: 9, arbitrary: fc.constant("completed" as const) },
      { weight: 1, arbitrary: fc.constant("not_forwarded" as const) },
    ),
  });

type Step =
  | { readonly kind: "arrive"; readonly arrival: SimArrival }
  | { readonly kind: "advance"; readonly ms: number };

const stepsArb = (edges: number): fc.Arbitrary<Step[]> =>
  fc.array(
    fc.oneof(
      { weight: 5, arbitrary: arrivalArb(edges).map((arrival) => ({ kind: "arrive" as const, arrival })) },
      { weight: 3, arbitrary: fc.integer({ min: 0, max: 60 }).map((ms) => ({ kind: "advance" as const, ms })) },
      { weight: 1, arbitrary: fc.integer({ min: 200, max: 3_000 }).map((ms) => ({ kind: "advance" as const, ms })) },
    ),
    { minLength: 5, maxLength: 150, size: "large" },
  );

const outageArb = fc
  .tuple(fc.integer({ min: 0, max: 8_000 }), fc.integer({ min: 50, max: 20_000 }))
  .map(([from, length]) => [from, from + length] as const);

const scenarioArb = fc.integer({ min: 1, max: 8 }).chain((edges) =>
  fc.record({
    options: fc.record({
      limits: limitsArb,
      edges: fc.constant(edges),
      coverMs: fc.constant(COVER_MS),
      fates: fc.array(fateArb, { minLength: 1, maxLength: 12 }),
      longPoll: fc.boolean(),
      failAfterMs: fc.integer({ min: 50, max: 1_500 }),
      outages: fc.array(outageArb, { maxLength: 2 }),
    }),
    steps: stepsArb(edges),
  }),
);

/** Fails the property with the numbers; cheaper than `expect` on the simulator's hot path. */
function holds(ok: boolean, what: string, numbers: Record<string, unknown>): void {
  if (!ok) throw new Error(`${what}: ${JSON.stringify(numbers)}`);
}

/** The invariants every state of the simulation must hold. */
function checkInvariants(sim: LeaseSim): void {
  const { maxInFlight, burst, rate, maxQueue } = sim.limits;
  const at = sim.now - SIM_T0;
  // (a) never more in flight than the limit: at the origin, at the isolates, in the book.
  const inUse = sim.edges.reduce((n, e) => n + inUseTotal(e.lease), 0);
  holds(inUse <= maxInFlight, "slots in use across isolates exceed the limit", { at, inUse, maxInFlight });
  holds(sim.inUseEverywhere() <= maxInFlight, "requests at the origin exceed the limit", { at, maxInFlight });
  const booked = slotsOut(sim.book);
  holds(booked <= maxInFlight, "slots out in the book exceed the limit", { at, booked, maxInFlight });
  const held = sim.edges.reduce((n, e) => n + heldSlots(e.lease), 0);
  holds(held <= maxInFlight, "slots the isolates believe they hold exceed the limit", { at, held, maxInFlight });
  // (b) the bucket plus what is out never exceeds the burst; spending stays within burst + rate x time.
  const tokens = sim.book.bucket.tokens + tokensOut(sim.book);
  holds(tokens <= burst + 1e-9, "bucket + tokens out exceed the burst", { at, tokens, burst });
  const budget = burst + (rate * at) / 1000;
  holds(sim.tokensSpent <= budget + 1e-9, "tokens spent exceed burst + rate x time", {
    at,
    spent: sim.tokensSpent,
    budget,
  });
  sim.edges.forEach((edge, i) => {
    const lease = edge.lease;
    const numbers = { at, edge: i, inUse: inUseTotal(lease), held: heldSlots(lease), tokens: heldTokens(lease) };
    // (d) an isolate uses only slots it has seen granted and not returned, and tokens it holds.
    holds(numbers.inUse <= numbers.held, "an isolate uses more slots than it holds", numbers);
    holds(numbers.inUse === edge.service.length, "in use differs from the requests at the origin", numbers);
    holds(numbers.tokens >= 0, "an isolate spent tokens it was not granted", numbers);
    const record = sim.book.holders.find((h) => h.id === lease.holder);
    // A holder the book reclaimed starts over from a new record when its next answer arrives.
    if (record && !lease.left && !sim.reclaimedHolders.has(lease.holder)) {
      holds(lease.slotsGranted <= record.slotsGranted, "an isolate saw more slots granted than the book", numbers);
      holds(lease.tokensGranted <= record.tokensGranted, "an isolate saw more tokens granted than the book", numbers);
    }
    holds(lease.queue.length <= Math.max(maxQueue, maxInFlight), "the local queue passed its bound", numbers);
    holds(
      lease.queue.every((w) => w.expiresAt > sim.now),
      "a waiter stayed past its wait",
      numbers,
    );
  });
  // (c) nobody is answered twice.
  holds(sim.answeredTwice.length === 0, "a request was answered twice", { at, ids: sim.answeredTwice });
}

function run(options: SimOptions, steps: readonly Step[], check = checkInvariants): LeaseSim {
  const sim = new LeaseSim(options);
  sim.onTick = check;
  return runSteps(sim, steps);
}

function runSteps(sim: LeaseSim, steps: readonly Step[]): LeaseSim {
  for (const step of steps) {
    if (step.kind === "arrive") sim.arrive(step.arrival);
    else sim.advance(step.ms);
  }
  sim.drain();
  return sim;
}

describe("the lease protocol over random traffic and an unreliable network", () => {
  it(
    "never exceeds the in-flight limit or the token budget, and answers every arrival exactly once",
    () => {
      fc.assert(
        fc.property(scenarioArb, ({ options, steps }) => {
          const sim = run(options, steps);
          for (const record of sim.requests.values()) {
            expect(record.answers, `${record.id} answered once`).toHaveLength(1);
          }
          expect(sim.queued()).toBe(0);
          expect(sim.inUseEverywhere()).toBe(0);
        }),
        { numRuns: SIM_RUNS },
      );
    },
    SIM_TIMEOUT_MS,
  );
});

/**
 * (e) The stranding bound. On a lossless network, with tokens to spare, a slot that no request
 * uses while requests wait somewhere is handed on within one lease period: the holder with it
 * hears its lower target at its next renewal (renewEveryMs at the latest), gives it back, and
 * the waiting holder is answered (long poll) or asks again within contendedRenewMs. The bound
 * allows that plus the network's delays.
 */
const MAX_DELAY_MS = 10;
const STRANDING_BOUND_MS = LEASE_TIMING.renewEveryMs + LEASE_TIMING.contendedRenewMs + 4 * MAX_DELAY_MS;

const WARM_UP_MS = 1_000;
const STEADY_MS = 4_000;

/** Closed-loop clients at each isolate: constant demand, each sending again as soon as answered. */
const steadyArb = fc.integer({ min: 2, max: 6 }).chain((edges) =>
  fc.record({
    options: fc.record({
      limits: fc.record({
        rate: fc.constant(1_000),
        burst: fc.constant(1_000),
        maxInFlight: fc.integer({ min: 1, max: 6 }),
        maxQueue: fc.constant(12),
        maxWaitMs: fc.constant(3_000),
      }),
      edges: fc.constant(edges),
      coverMs: fc.constant(COVER_MS),
      fates: fc.array(
        fc.record({
          kind: fc.constant("ok" as const),
          outMs: fc.integer({ min: 0, max: MAX_DELAY_MS }),
          backMs: fc.integer({ min: 0, max: MAX_DELAY_MS }),
          lagMs: fc.constant(0),
        }),
        { minLength: 1, maxLength: 8 },
      ),
      longPoll: fc.constant(true),
      failAfterMs: fc.constant(5_000),
    }),
    clients: fc.array(
      fc.record({
        startMs: fc.integer({ min: 0, max: 100 }),
        arrival: fc.record({
          edge: fc.integer({ min: 0, max: edges - 1 }),
          priority: fc.constantFrom(...PRIORITIES),
          budgetMs: fc.integer({ min: 1_000, max: COVER_MS }),
          fullBehaviour: fc.constant("block" as const),
          serviceMs: fc.integer({ min: 20, max: 300 }),
          outcome: fc.constant("completed" as const),
          closedLoop: fc.constant({ thinkMs: 0, untilMs: STEADY_MS }),
        }),
      }),
      { minLength: 1, maxLength: 12 },
    ),
  }),
);

/**
 * Tracks, from tick to tick, how long each isolate has kept a free slot (held, not in use) while
 * another isolate had waiters, and how long the book has kept a slot nobody holds while any did.
 */
function strandingWatch() {
  const since = new Map<string, number>();
  const track = (sim: LeaseSim, key: string, stranded: boolean, numbers: () => Record<string, unknown>) => {
    if (!stranded) {
      since.delete(key);
      return;
    }
    const from = since.get(key) ?? sim.now;
    since.set(key, from);
    holds(sim.now - from <= STRANDING_BOUND_MS, `${key} kept a slot unused while requests waited`, {
      at: sim.now - SIM_T0,
      since: from - SIM_T0,
      ...numbers(),
    });
  };
  return (sim: LeaseSim) => {
    checkInvariants(sim);
    const at = sim.now - SIM_T0;
    if (at < WARM_UP_MS || at >= STEADY_MS) {
      since.clear();
      return;
    }
    const queued = sim.edges.map((e) => e.lease.queue.length);
    const numbers = () => ({
      held: sim.edges.map((e) => heldSlots(e.lease)),
      inUse: sim.edges.map((e) => inUseTotal(e.lease)),
      queued,
    });
    sim.edges.forEach((edge, i) => {
      const free = heldSlots(edge.lease) > inUseTotal(edge.lease);
      const othersWait = queued.some((n, j) => j !== i && n > 0);
      track(sim, `isolate ${i}`, free && othersWait, numbers);
    });
    const bookFree = slotsOut(sim.book) < sim.limits.maxInFlight;
    track(sim, "the book", bookFree && queued.some((n) => n > 0), numbers);
  };
}

describe("the lease protocol on a lossless network, in a steady state", () => {
  it(
    `hands an unused slot to a waiting isolate within one lease period (${STRANDING_BOUND_MS} ms)`,
    () => {
      fc.assert(
        fc.property(steadyArb, ({ options, clients }) => {
          const steps: Step[] = [];
          let at = 0;
          for (const client of [...clients].sort((a, b) => a.startMs - b.startMs)) {
            steps.push({ kind: "advance", ms: client.startMs - at }, { kind: "arrive", arrival: client.arrival });
            at = client.startMs;
          }
          steps.push({ kind: "advance", ms: STEADY_MS - at });
          run(options, steps, strandingWatch());
        }),
        { numRuns: SIM_RUNS },
      );
    },
    SIM_TIMEOUT_MS,
  );
});

describe("the lease protocol protects the higher priority", () => {
  it(
    "(f) tells an isolate with critical waiters a target covering them while all critical demand fits",
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 8 }),
          fc.integer({ min: 0, max: 8 }),
          fc.integer({ min: 0, max: 8 }),
          fc.integer({ min: 0, max: 16 }),
          fc.boolean(),
          (maxInFlight, criticalWaiting, lowInUse, lowWaiting, lowFirst) => {
            fc.pre(criticalWaiting <= maxInFlight);
            const limits = { rate: 100, burst: 100, maxInFlight, maxQueue: 16, maxWaitMs: 1_000 };
            const low = report(B, 0, {
              inUse: counts({ low: Math.min(lowInUse, maxInFlight) }),
              waiting: counts({ low: lowWaiting }),
            });
            const critical = report(A, 0, { waiting: counts({ critical: criticalWaiting }) });
            const [first, second] = lowFirst ? [low, critical] : [critical, low];
            let book = renew(emptyBook(limits, SIM_T0), first, SIM_T0, limits).book;
            book = renew(book, second, SIM_T0 + 1, limits).book;
            const again = renew(book, { ...critical, seq: 1 }, SIM_T0 + 2, limits);
            expect(again.answer.targetSlots).toBeGreaterThanOrEqual(criticalWaiting);
          },
        ),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "(f) admits critical requests beside a low flood at another isolate within the low work's hold plus a lease period",
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 4 }),
          fc.integer({ min: 1, max: 200 }),
          fc.integer({ min: 0, max: 10 }),
          (maxInFlight, lowServiceMs, extraLow) => {
            const sim = new LeaseSim({
              limits: { rate: 1_000, burst: 1_000, maxInFlight, maxQueue: 16, maxWaitMs: 3_000 },
              edges: 2,
              coverMs: COVER_MS,
              fates: [{ kind: "ok", outMs: 2, backMs: 2, lagMs: 0 }],
              longPoll: true,
              failAfterMs: 5_000,
            });
            const loop = { thinkMs: 0, untilMs: STEADY_MS };
            // Isolate 1 floods with low work; isolate 0 sends critical requests, at most maxInFlight at once.
            for (let i = 0; i < maxInFlight + extraLow; i += 1) {
              sim.arrive({
                edge: 1,
                priority: "low",
                budgetMs: 3_000,
                fullBehaviour: "evict-lowest",
                serviceMs: lowServiceMs,
                outcome: "completed",
                closedLoop: loop,
              });
            }
            sim.advance(WARM_UP_MS);
            for (let i = 0; i < maxInFlight; i += 1) {
              sim.arrive({
                edge: 0,
                priority: "critical",
                budgetMs: 3_000,
                fullBehaviour: "evict-lowest",
                serviceMs: 50,
                outcome: "completed",
                closedLoop: loop,
              });
            }
            sim.advance(STEADY_MS - WARM_UP_MS);
            sim.drain();
            const critical = [...sim.requests.values()].filter((r) => r.priority === "critical");
            for (const r of critical) {
              const answer = r.answers[0];
              expect(answer?.kind, `${r.id} at ${r.arrivedAt - SIM_T0}`).toBe("admit");
              expect((answer?.at ?? 0) - r.arrivedAt).toBeLessThanOrEqual(lowServiceMs + STRANDING_BOUND_MS);
            }
          },
        ),
        { numRuns: SIM_RUNS },
      );
    },
    SIM_TIMEOUT_MS,
  );
});
