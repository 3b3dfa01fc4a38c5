import { describe, expect, it } from "vitest";
import { emptyCounters } from "../../src/admission/counters";
import {
  countTally,
  emptyTally,
  tallyAdmit,
  tallyArrival,
  tallyDelta,
  tallyRelease,
  tallyShed,
} from "../../src/lease/tally";

describe("lease tallies", () => {
  it("count each decision once, cumulatively", () => {
    let t = emptyTally();
    t = tallyAdmit(tallyArrival(t, false), "high");
    t = tallyArrival(t, true);
    t = tallyShed(tallyArrival(t, false), "rate_limited", "low", true);
    t = tallyShed(t, "queue_timeout", "normal", false);
    t = tallyRelease(t, "deadline_exceeded");
    expect(t).toMatchObject({
      arrived: 3,
      queuedEver: 1,
      shedAtEdge: 1,
      admitted: { high: 1, low: 0 },
      shed: { rate_limited: { low: 1 }, queue_timeout: { normal: 1 } },
      released: { deadline_exceeded: 1, completed: 0 },
    });
  });

  it("give the difference between two reports, and nothing for a count that went backwards", () => {
    const before = tallyShed(tallyArrival(tallyArrival(emptyTally(), false), false), "queue_full", "low", true);
    const after = tallyRelease(tallyAdmit(tallyArrival(before, false), "critical"), "completed");
    const delta = tallyDelta(before, after);
    expect(delta).toMatchObject({ arrived: 1, admitted: { critical: 1 }, released: { completed: 1 }, shedAtEdge: 0 });
    expect(delta.shed.queue_full.low).toBe(0);
    const confused = tallyDelta(after, before);
    expect(confused.arrived).toBe(0);
    expect(confused.released.completed).toBe(0);
  });

  it("add a holder's new decisions to the tenant's counters as if the object had made them", () => {
    let t = emptyTally();
    t = tallyAdmit(tallyArrival(t, true), "normal");
    t = tallyShed(tallyArrival(t, false), "wait_exceeds_deadline", "low", true);
    t = tallyShed(t, "evicted", "low", true);
    for (const outcome of ["completed", "deadline_exceeded", "origin_failed", "not_forwarded"] as const) {
      t = tallyRelease(t, outcome);
    }
    const counters = countTally(countTally(emptyCounters(), t), tallyDelta(t, t));
    expect(counters).toMatchObject({
      arrived: 2,
      admitted: 1,
      admittedByPriority: { normal: 1 },
      shed: 2,
      shedByReason: { wait_exceeds_deadline: 1, evicted: 1 },
      shedByPriority: { low: 2 },
      queuedEver: 1,
      shedAtEdge: 2,
      released: 4,
      deadlineExceeded: 1,
      originFailed: 1,
      notForwarded: 1,
    });
  });
});
