import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fieldErrors } from "../../src/admin/json-body";
import { PRIORITIES } from "../../src/admission/priority";
import {
  DEFAULT_RESERVATIONS,
  ORIGIN_BOUNDS,
  classCap,
  originConfigSchema,
  shardLimits,
  shardShare,
} from "../../src/origin/origin-config";
import { PROPERTY_RUNS } from "./property-runs";

const valid = { maxInFlight: 10 };

describe("origin config", () => {
  it("fills every default from the ceiling alone", () => {
    expect(originConfigSchema.parse(valid)).toEqual({
      maxInFlight: 10,
      minInFlight: 1,
      maxQueue: 64,
      maxWaitMs: 1_000,
      reservations: { low: 0.6, normal: 0.8, high: 0.9, critical: 1 },
      adaptive: true,
      latencyTolerance: 1.5,
      capacityHeader: null,
      capacityTtlMs: 10_000,
      globalHoldHeader: null,
      maxBackoffMs: 30_000,
      shards: 1,
    });
  });

  it("gives each parse its own default reservations, never the shared constant", () => {
    const config = originConfigSchema.parse(valid);
    expect(config.reservations).toEqual(DEFAULT_RESERVATIONS);
    expect(config.reservations).not.toBe(DEFAULT_RESERVATIONS);
  });

  it("lower-cases the capacity header name", () => {
    expect(originConfigSchema.parse({ ...valid, capacityHeader: "X-Origin-Capacity" }).capacityHeader).toBe(
      "x-origin-capacity",
    );
  });

  it("accepts the floor equal to the ceiling and as many shards as floor slots", () => {
    const config = originConfigSchema.parse({ maxInFlight: 8, minInFlight: 8, shards: 8 });
    expect(config).toMatchObject({ minInFlight: 8, shards: 8 });
  });

  it("accepts equal shares for every class below critical", () => {
    const reservations = { low: 1, normal: 1, high: 1, critical: 1 };
    expect(originConfigSchema.parse({ ...valid, reservations }).reservations).toEqual(reservations);
  });

  it.each([
    [{ maxInFlight: 0 }, "maxInFlight"],
    [{ maxInFlight: 1.5 }, "maxInFlight"],
    [{ maxInFlight: ORIGIN_BOUNDS.maxInFlight + 1 }, "maxInFlight"],
    [{ maxInFlight: "10" }, "maxInFlight"],
    [{ minInFlight: 11 }, "minInFlight"],
    [{ minInFlight: 0 }, "minInFlight"],
    [{ minInFlight: 2, shards: 3 }, "shards"],
    [{ shards: 2 }, "shards"],
    [{ maxInFlight: 64, minInFlight: 64, shards: ORIGIN_BOUNDS.shards + 1 }, "shards"],
    [{ shards: 0 }, "shards"],
    [{ maxQueue: -1 }, "maxQueue"],
    [{ maxQueue: ORIGIN_BOUNDS.maxQueue + 1 }, "maxQueue"],
    [{ maxWaitMs: ORIGIN_BOUNDS.maxWaitMs + 1 }, "maxWaitMs"],
    [{ reservations: { low: 0.9, normal: 0.8, high: 0.9, critical: 1 } }, "reservations.normal"],
    [{ reservations: { low: 0.5, normal: 0.8, high: 0.7, critical: 1 } }, "reservations.high"],
    [{ reservations: { low: 0.6, normal: 0.8, high: 0.9, critical: 0.95 } }, "reservations.critical"],
    [{ reservations: { low: -0.1, normal: 0.8, high: 0.9, critical: 1 } }, "reservations.low"],
    [{ reservations: { low: 0.6, normal: 1.2, high: 0.9, critical: 1 } }, "reservations.normal"],
    [{ reservations: { low: 0.6, normal: 0.8, high: 0.9 } }, "reservations.critical"],
    [{ reservations: { low: 0.6, normal: 0.8, high: 0.9, critical: 1, urgent: 1 } }, "reservations.urgent"],
    [{ adaptive: "yes" }, "adaptive"],
    [{ latencyTolerance: 0.9 }, "latencyTolerance"],
    [{ latencyTolerance: 11 }, "latencyTolerance"],
    [{ capacityHeader: "x capacity" }, "capacityHeader"],
    [{ capacityHeader: "" }, "capacityHeader"],
    [{ capacityHeader: "x:capacity" }, "capacityHeader"],
    [{ capacityHeader: "x".repeat(65) }, "capacityHeader"],
    [{ capacityHeader: 7 }, "capacityHeader"],
    [{ capacityTtlMs: 99 }, "capacityTtlMs"],
    [{ capacityTtlMs: ORIGIN_BOUNDS.capacityTtlMs + 1 }, "capacityTtlMs"],
    [{ maxBackoffMs: 999 }, "maxBackoffMs"],
    [{ maxBackoffMs: ORIGIN_BOUNDS.maxBackoffMs + 1 }, "maxBackoffMs"],
    [{ surprise: true }, "surprise"],
  ])("rejects %j naming %s", (change, field) => {
    const input = { ...valid, ...change };
    const result = originConfigSchema.safeParse(input);
    expect(result.success).toBe(false);
    if (!result.success) expect(fieldErrors(result.error, input).map((e) => e.field)).toContain(field);
  });

  it.each([
    [{ minInFlight: 11 }, "minInFlight", "(got 11)"],
    [{ minInFlight: 2, shards: 3 }, "shards", "(got 3)"],
    [{ reservations: { low: 0.9, normal: 0.8, high: 0.9, critical: 1 } }, "reservations.normal", "(got 0.8)"],
    [{ reservations: { low: 0.6, normal: 0.8, high: 0.9, critical: 0.5 } }, "reservations.critical", "(got 0.5)"],
    [{ capacityHeader: "x capacity" }, "capacityHeader", '(got "x capacity")'],
  ])("explains %j at %s and echoes the bad value", (change, field, echo) => {
    const input = { ...valid, ...change };
    const result = originConfigSchema.safeParse(input);
    expect(!result.success && fieldErrors(result.error, input)).toContainEqual({
      field,
      message: expect.stringContaining(echo),
    });
  });

  it("names a missing ceiling", () => {
    const result = originConfigSchema.safeParse({});
    expect(!result.success && fieldErrors(result.error, {}).map((e) => e.field)).toEqual(["maxInFlight"]);
  });
});

describe("shard shares", () => {
  it("splits a total into parts that add up to it exactly, the remainder going to the first shards", () => {
    for (let shards = 1; shards <= ORIGIN_BOUNDS.shards; shards += 1) {
      for (const total of [
        0,
        1,
        shards - 1,
        shards,
        shards + 1,
        63,
        64,
        100,
        1_000,
        9_999,
        ORIGIN_BOUNDS.maxInFlight,
      ]) {
        const parts = Array.from({ length: shards }, (_, index) => shardShare(total, index, shards));
        expect(
          parts.reduce((sum, part) => sum + part, 0),
          `${total} over ${shards}`,
        ).toBe(total);
        expect(Math.max(...parts) - Math.min(...parts)).toBeLessThanOrEqual(1);
        expect(parts).toEqual([...parts].sort((a, b) => b - a));
      }
    }
  });

  it("adds up for any total and shard count", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 1, max: ORIGIN_BOUNDS.shards }),
        (total, shards) => {
          let sum = 0;
          for (let index = 0; index < shards; index += 1) sum += shardShare(total, index, shards);
          expect(sum).toBe(total);
        },
      ),
      { numRuns: PROPERTY_RUNS },
    );
  });

  it("gives every shard a floor of at least one slot and ceilings that add up to the whole limit", () => {
    const config = originConfigSchema.parse({ maxInFlight: 103, minInFlight: 5, maxQueue: 10, shards: 4 });
    const shards = [0, 1, 2, 3].map((index) => shardLimits(config, index));
    expect(shards.map((s) => s.ceiling)).toEqual([26, 26, 26, 25]);
    expect(shards.map((s) => s.floor)).toEqual([2, 1, 1, 1]);
    expect(shards.map((s) => s.maxQueue)).toEqual([3, 3, 2, 2]);
    expect(shards.every((s) => s.maxWaitMs === config.maxWaitMs && s.reservations === config.reservations)).toBe(true);
  });
});

describe("class caps", () => {
  const defaults = DEFAULT_RESERVATIONS;

  it("lets low fill 6, normal 8, high 9 and critical all 10 of a limit of 10", () => {
    expect(PRIORITIES.map((p) => classCap(10, defaults, p))).toEqual([6, 8, 9, 10]);
  });

  it("gives critical the whole limit whatever it is", () => {
    for (const limit of [1, 2, 3, 7, 10_000]) expect(classCap(limit, defaults, "critical")).toBe(limit);
  });

  it("gives a class with a share of 0 nothing, and nothing to anyone under a limit of 0", () => {
    const noLow = { ...defaults, low: 0 };
    expect(classCap(10, noLow, "low")).toBe(0);
    expect(PRIORITIES.map((p) => classCap(0, defaults, p))).toEqual([0, 0, 0, 0]);
  });

  it("gives a class with any positive share at least one slot of a limit of 1", () => {
    const tiny = { low: 0.01, normal: 0.01, high: 0.01, critical: 1 };
    expect(PRIORITIES.map((p) => classCap(1, tiny, p))).toEqual([1, 1, 1, 1]);
  });

  it("does not lose a slot to floating point when the share times the limit is a whole number", () => {
    // 0.29 * 100 is 28.999999999999996 in binary floating point.
    expect(classCap(100, { ...defaults, low: 0.29 }, "low")).toBe(29);
    expect(classCap(10, { ...defaults, low: 0.7, normal: 0.7 }, "low")).toBe(7);
  });

  it("stays within [1, limit] for a positive share, and never gives a higher class less", () => {
    const share = fc.double({ min: 0, max: 1, noNaN: true });
    const reservations = fc
      .tuple(share, share, share)
      .map(([a, b, c]) => [a, b, c].sort((x, y) => x - y) as [number, number, number])
      .map(([low, normal, high]) => ({ low, normal, high, critical: 1 }));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: ORIGIN_BOUNDS.maxInFlight }), reservations, (limit, shares) => {
        let previous = 0;
        for (const priority of PRIORITIES) {
          const cap = classCap(limit, shares, priority);
          expect(cap).toBeLessThanOrEqual(limit);
          expect(cap).toBeGreaterThanOrEqual(previous);
          if (limit > 0 && shares[priority] > 0) expect(cap).toBeGreaterThanOrEqual(1);
          if (shares[priority] === 0 || limit === 0) expect(cap).toBe(0);
          expect(Number.isInteger(cap)).toBe(true);
          previous = cap;
        }
        expect(classCap(limit, shares, "critical")).toBe(limit);
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });
});
