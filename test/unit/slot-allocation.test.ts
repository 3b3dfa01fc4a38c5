import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PRIORITIES, type Priority } from "../../src/admission/priority";
import { type HolderDemand, proportionalShares, slotTargets } from "../../src/lease/slot-allocation";
import { counts } from "./lease-fixtures";
import { PROPERTY_RUNS } from "./property-runs";

const demand = (
  waiting: Partial<Record<Priority, number>>,
  inUse: Partial<Record<Priority, number>> = {},
): HolderDemand => ({
  inUse: counts(inUse),
  waiting: counts(waiting),
});

describe("slot targets", () => {
  it("gives a lone holder the whole limit, demand or not", () => {
    expect(slotTargets([demand({})], 8)).toEqual([8]);
    expect(slotTargets([demand({ low: 20 })], 8)).toEqual([8]);
  });

  it("fills the limit from the highest priority down, across holders", () => {
    expect(slotTargets([demand({ low: 4 }), demand({ critical: 3 })], 4)).toEqual([1, 3]);
    expect(slotTargets([demand({ low: 4 }, { normal: 1 }), demand({ high: 2 })], 4)).toEqual([2, 2]);
  });

  it("counts slots in use as demand, so what runs is not handed elsewhere by a lower class", () => {
    expect(slotTargets([demand({}, { normal: 3 }), demand({ low: 3 })], 4)).toEqual([3, 1]);
  });

  it("splits the class where the limit runs out in proportion to demand, ties to the earlier holder", () => {
    expect(slotTargets([demand({ normal: 3 }), demand({ normal: 1 })], 2)).toEqual([2, 0]);
    expect(slotTargets([demand({ normal: 1 }), demand({ normal: 1 }), demand({ normal: 1 })], 2)).toEqual([1, 1, 0]);
  });

  it("splits the spare evenly, the earlier holders taking the remainder", () => {
    expect(slotTargets([demand({ normal: 1 }), demand({}), demand({})], 6)).toEqual([3, 2, 1]);
    expect(slotTargets([demand({}), demand({}), demand({})], 4)).toEqual([2, 1, 1]);
  });

  it("has nothing to split among no holders", () => {
    expect(slotTargets([], 4)).toEqual([]);
  });
});

describe("slot targets by offered load", () => {
  const loaded = (held: number, waiting: number, slotsOffered: number): HolderDemand => ({
    ...demand({ normal: waiting }, { normal: held }),
    offered: counts({ normal: slotsOffered }),
  });

  it("splits a contended class by offered load, not by what each holder holds now", () => {
    // Equal arrivals: the one holding 5 of 8 and queueing deeper does not keep its lead.
    expect(slotTargets([loaded(5, 6, 10), loaded(1, 4, 10)], 8)).toEqual([4, 4]);
    // By queue alone the lead feeds on itself.
    expect(slotTargets([demand({ normal: 6 }, { normal: 5 }), demand({ normal: 4 }, { normal: 1 })], 8)).toEqual([
      6, 2,
    ]);
  });

  it("never gives a holder more than it can use now; what it cannot use goes to the others", () => {
    expect(slotTargets([loaded(1, 0, 30), loaded(3, 9, 10)], 8)).toEqual([1, 7]);
  });

  it("falls back to in use + waiting while any contender's load is not known", () => {
    expect(slotTargets([loaded(5, 6, 10), demand({ normal: 2 }, { normal: 1 })], 8)).toEqual([6, 2]);
  });
});

describe("proportional shares", () => {
  it("splits whole units by largest remainder and always sums to the amount", () => {
    expect(proportionalShares([1, 1, 1], 2)).toEqual([1, 1, 0]);
    expect(proportionalShares([5, 3], 4)).toEqual([3, 1]);
    expect(proportionalShares([0, 0], 3)).toEqual([0, 0]);
    expect(proportionalShares([2, 2], 0)).toEqual([0, 0]);
  });
});

const countsArb = fc.record(
  Object.fromEntries(PRIORITIES.map((p) => [p, fc.integer({ min: 0, max: 5 })])) as Record<
    Priority,
    fc.Arbitrary<number>
  >,
);
const demandsArb = fc.array(fc.record({ inUse: countsArb, waiting: countsArb }), { minLength: 1, maxLength: 8 });
const want = (d: HolderDemand, p: Priority) => d.inUse[p] + d.waiting[p];

describe("slot targets over random demand", () => {
  it("add up to the limit, none negative", () => {
    fc.assert(
      fc.property(demandsArb, fc.integer({ min: 1, max: 20 }), (demands, max) => {
        const targets = slotTargets(demands, max);
        expect(targets.reduce((a, b) => a + b, 0)).toBe(max);
        for (const t of targets) expect(t).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });

  it("(f) protect the higher priority: a class's whole demand is met whenever it and the classes above fit", () => {
    fc.assert(
      fc.property(demandsArb, fc.integer({ min: 1, max: 20 }), (demands, max) => {
        const targets = slotTargets(demands, max);
        let above = 0;
        for (const priority of [...PRIORITIES].reverse()) {
          above += demands.reduce((n, d) => n + want(d, priority), 0);
          if (above > max) break;
          // Every holder gets at least its demand at this class and all classes above it.
          demands.forEach((d, i) => {
            const own = PRIORITIES.slice(PRIORITIES.indexOf(priority)).reduce((n, p) => n + want(d, p), 0);
            expect(targets[i]).toBeGreaterThanOrEqual(own);
          });
        }
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });

  it("(f) with critical waiters at one isolate and low at another, the critical one's target covers its demand", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 40 }),
        fc.boolean(),
        (max, critical, low, criticalFirst) => {
          fc.pre(critical <= max);
          const c = demand({ critical });
          const l = demand({ low });
          const targets = slotTargets(criticalFirst ? [c, l] : [l, c], max);
          expect(targets[criticalFirst ? 0 : 1]).toBeGreaterThanOrEqual(critical);
        },
      ),
      { numRuns: PROPERTY_RUNS },
    );
  });

  it("never give a holder more than its demand while another holder's demand is unmet", () => {
    fc.assert(
      fc.property(demandsArb, fc.integer({ min: 1, max: 20 }), (demands, max) => {
        const targets = slotTargets(demands, max);
        const total = (d: HolderDemand) => PRIORITIES.reduce((n, p) => n + want(d, p), 0);
        const unmet = demands.some((d, i) => (targets[i] ?? 0) < total(d));
        if (!unmet) return;
        demands.forEach((d, i) => {
          expect(targets[i]).toBeLessThanOrEqual(total(d));
        });
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });
});
