import { describe, expect, it } from "vitest";
import { MAX_RETRY_AFTER_SECONDS, retryAfterSeconds } from "../../src/admission/retry-after";

describe("Retry-After", () => {
  it("is at least one second", () => {
    expect(retryAfterSeconds(0, () => 0)).toBe(1);
    expect(retryAfterSeconds(-50, () => 0)).toBe(1);
    expect(retryAfterSeconds(Number.NaN, () => 0)).toBe(1);
  });

  it("never points before capacity is expected back", () => {
    for (const r of [0, 0.3, 0.999]) expect(retryAfterSeconds(4200, () => r)).toBeGreaterThanOrEqual(5);
  });

  it("spreads clients over half the wait, or a second at least", () => {
    expect(retryAfterSeconds(10_000, () => 0)).toBe(10);
    expect(retryAfterSeconds(10_000, () => 0.999)).toBe(15);
    expect(retryAfterSeconds(500, () => 0.999)).toBe(2);
    const seen = new Set(Array.from({ length: 50 }, (_, i) => retryAfterSeconds(8000, () => i / 50)));
    expect(seen.size).toBeGreaterThan(3);
  });

  it("is capped", () => {
    expect(retryAfterSeconds(10 ** 9, () => 1)).toBe(MAX_RETRY_AFTER_SECONDS);
  });
});
