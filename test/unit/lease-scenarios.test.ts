import { describe, expect, it } from "vitest";
import { heldSlots } from "../../src/lease/edge-lease";
import { LEASE_TIMING } from "../../src/lease/lease-protocol";
import { LOSSLESS, LeaseSim, SIM_T0, type SimArrival, type SimOptions } from "./lease-sim";

/**
 * Fixed scenarios through the lease simulation (lease-sim.ts), each the shrunk counterexample
 * of a bug the properties found, kept as a specification of the behaviour that fixed it.
 */
const request = (edge: number, over: Partial<SimArrival> = {}): SimArrival => ({
  edge,
  priority: "low",
  budgetMs: 500,
  fullBehaviour: "evict-lowest",
  serviceMs: 1,
  outcome: "completed",
  ...over,
});

const options = (over: Partial<SimOptions> = {}): SimOptions => ({
  limits: { rate: 1_000, burst: 1_000, maxInFlight: 1, maxQueue: 1, maxWaitMs: 1_000 },
  edges: 2,
  coverMs: 5_000,
  fates: LOSSLESS,
  longPoll: true,
  failAfterMs: 5_000,
  ...over,
});

describe("lease scenarios", () => {
  it("gives a waiting isolate the only slot, freed at another isolate, within a lease period", () => {
    const sim = new LeaseSim(options());
    sim.arrive(request(1));
    const waiter = sim.arrive(request(0));
    sim.advance(1_000);
    const admitted = waiter.answers[0];
    expect(admitted?.kind).toBe("admit");
    expect((admitted?.at ?? Number.POSITIVE_INFINITY) - SIM_T0).toBeLessThanOrEqual(
      LEASE_TIMING.renewEveryMs + LEASE_TIMING.contendedRenewMs,
    );
  });

  it("hands on a slot given back by an isolate left holding nothing, instead of waiting for the reclaim", () => {
    const sim = new LeaseSim(
      options({
        limits: { rate: 0.5, burst: 1, maxInFlight: 1, maxQueue: 0, maxWaitMs: 50 },
        edges: 8,
        longPoll: false,
      }),
    );
    sim.arrive(request(5, { budgetMs: 1 }));
    sim.advance(0);
    sim.arrive(request(0, { budgetMs: 1 }));
    sim.advance(2_000);
    // The slot went to isolate 0, which asked for it; isolate 5 kept nothing and owes nothing.
    expect(sim.book.holders.reduce((n, h) => n + h.slotsGranted - h.slotsReturned, 0)).toBeLessThanOrEqual(1);
    const later = sim.arrive(request(0, { budgetMs: 3_000 }));
    sim.advance(3_000);
    expect(later.answers[0]?.kind).toBe("admit");
  });

  it("never lets isolates hold more than the limit after an outage long enough for the object to reclaim them", () => {
    const sim = new LeaseSim(
      options({
        limits: { rate: 100, burst: 50, maxInFlight: 4, maxQueue: 4, maxWaitMs: 1_000 },
        coverMs: 1_000,
        failAfterMs: 100,
        longPoll: false,
        outages: [[1_000, 15_000]],
      }),
    );
    let worstHeld = 0;
    let worstInUse = 0;
    sim.onTick = (s) => {
      worstHeld = Math.max(
        worstHeld,
        s.edges.reduce((n, e) => n + heldSlots(e.lease), 0),
      );
      worstInUse = Math.max(worstInUse, s.inUseEverywhere());
    };
    const send = (edge: number, serviceMs: number) => sim.arrive(request(edge, { budgetMs: 900, serviceMs }));
    for (const edge of [0, 0, 1, 1]) send(edge, 800);
    sim.advance(50);
    for (const edge of [0, 0, 1, 1]) send(edge, 800);
    sim.advance(300);
    for (let t = 0; t < 14_000; t += 300) {
      send(1, 1);
      sim.advance(150);
      send(0, 1);
      sim.advance(150);
    }
    for (let i = 0; i < 10; i += 1) {
      for (const edge of [1, 0, 1, 0, 1, 0]) send(edge, 800);
      sim.advance(100);
    }
    sim.drain();
    expect(worstInUse).toBeLessThanOrEqual(4);
    expect(worstHeld).toBeLessThanOrEqual(4);
  });
});
