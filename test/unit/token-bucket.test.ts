import { describe, expect, it } from "vitest";
import { fullBucket, msUntilFull, msUntilTokens, refill, takeToken } from "../../src/admission/token-bucket";

const T0 = 1_700_000_000_000;
const limits = { rate: 10, burst: 5 };

describe("token bucket", () => {
  it("starts full", () => {
    expect(fullBucket(limits, T0)).toEqual({ tokens: 5, updatedAt: T0 });
  });

  it("refills at the rate, capped at burst", () => {
    const empty = { tokens: 0, updatedAt: T0 };
    expect(refill(empty, limits, T0 + 250).tokens).toBeCloseTo(2.5);
    expect(refill(empty, limits, T0 + 10_000).tokens).toBe(5);
  });

  it("adds nothing when the clock goes backwards, and keeps the later timestamp", () => {
    const bucket = { tokens: 1, updatedAt: T0 };
    expect(refill(bucket, limits, T0 - 5_000)).toEqual({ tokens: 1, updatedAt: T0 });
  });

  it("takes one token and never goes below zero", () => {
    expect(takeToken({ tokens: 1.5, updatedAt: T0 }).tokens).toBe(0.5);
    expect(takeToken({ tokens: 0.2, updatedAt: T0 }).tokens).toBe(0);
  });

  it("says how long until whole tokens and until full", () => {
    const bucket = { tokens: 0.5, updatedAt: T0 };
    expect(msUntilTokens(bucket, limits, 1)).toBe(50);
    expect(msUntilTokens(bucket, limits, 3)).toBe(250);
    expect(msUntilTokens({ tokens: 4, updatedAt: T0 }, limits, 2)).toBe(0);
    expect(msUntilFull(bucket, limits)).toBe(450);
  });
});
