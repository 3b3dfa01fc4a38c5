import { describe, expect, it } from "vitest";
import { HOLD_AVERAGE_ALPHA, nextAverage } from "../../src/admission/moving-average";
import { waitBudgetMs } from "../../src/admission/wait-budget";

const T0 = 1_700_000_000_000;

describe("wait budget", () => {
  it("is maxWaitMs, or less when the deadline comes first", () => {
    expect(waitBudgetMs({ maxWaitMs: 500 }, { deadline: T0 + 2_000, fullBehaviour: "evict-lowest" }, T0)).toBe(500);
    expect(waitBudgetMs({ maxWaitMs: 500 }, { deadline: T0 + 300, fullBehaviour: "shed-oldest" }, T0)).toBe(300);
  });

  it("leaves the origin its expected service time before the deadline", () => {
    expect(waitBudgetMs({ maxWaitMs: 5_000 }, { deadline: T0 + 1_000, fullBehaviour: "evict-lowest" }, T0, 250)).toBe(
      750,
    );
    expect(waitBudgetMs({ maxWaitMs: 5_000 }, { deadline: T0 + 100, fullBehaviour: "evict-lowest" }, T0, 250)).toBe(
      -150,
    );
  });

  it("is the whole deadline budget for a route that blocks", () => {
    expect(waitBudgetMs({ maxWaitMs: 500 }, { deadline: T0 + 4_000, fullBehaviour: "block" }, T0, 100)).toBe(3_900);
  });
});

describe("hold-time moving average", () => {
  it("takes the first sample as it is, then moves by HOLD_AVERAGE_ALPHA of the difference", () => {
    expect(nextAverage(null, 80)).toBe(80);
    expect(nextAverage(100, 200)).toBe(100 + HOLD_AVERAGE_ALPHA * 100);
    expect(nextAverage(100, 0, 0.5)).toBe(50);
  });

  it("is not dragged far by one outlier", () => {
    let average: number | null = null;
    for (let i = 0; i < 20; i += 1) average = nextAverage(average, 100);
    expect(nextAverage(average, 10_000)).toBeLessThan(2_100);
  });
});
