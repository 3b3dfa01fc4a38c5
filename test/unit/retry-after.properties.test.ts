import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_RETRY_AFTER_SECONDS, retryAfterSeconds } from "../../src/admission/retry-after";
import { PROPERTY_RUNS, PROPERTY_TIMEOUT_MS } from "./property-runs";

// Bases the core produces (whole and fractional milliseconds, around and past the cap) mixed
// with any double at all (NaN, infinities, negatives, subnormals), and a random source that
// honours Math.random's contract: [0, 1), its ends included as often as its middle.
const sensibleBase = fc.oneof(
  fc.integer({ min: 0, max: 2 * MAX_RETRY_AFTER_SECONDS * 1000 }),
  fc.double({ min: 0, max: 2 * MAX_RETRY_AFTER_SECONDS * 1000, noNaN: true }),
);
const anyBase = fc.oneof(sensibleBase, fc.double());
const unitRandom = fc.oneof(
  fc.constantFrom(0, 0.5, 1 - Number.EPSILON / 2),
  fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
);

describe("Retry-After under any base and any draw of the jitter", () => {
  it(
    "is a whole number of seconds, at least 1 and at most MAX_RETRY_AFTER_SECONDS",
    () => {
      fc.assert(
        fc.property(anyBase, unitRandom, (base, random) => {
          const seconds = retryAfterSeconds(base, () => random);
          expect(Number.isInteger(seconds)).toBe(true);
          expect(seconds).toBeGreaterThanOrEqual(1);
          expect(seconds).toBeLessThanOrEqual(MAX_RETRY_AFTER_SECONDS);
        }),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "never points before capacity is expected back, up to the cap",
    () => {
      // The cap is deliberate (a client is never told to stay away longer than ten minutes), so
      // the exact bound is ceil(base / 1000) clamped to it, not ceil(base / 1000) alone.
      fc.assert(
        fc.property(anyBase, unitRandom, (base, random) => {
          fc.pre(Number.isFinite(base));
          const seconds = retryAfterSeconds(base, () => random);
          expect(seconds).toBeGreaterThanOrEqual(Math.min(MAX_RETRY_AFTER_SECONDS, Math.ceil(base / 1000)));
        }),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "adds at most half the base, or one second, of jitter",
    () => {
      fc.assert(
        fc.property(sensibleBase, unitRandom, (base, random) => {
          const seconds = retryAfterSeconds(base, () => random);
          const spread = Math.max(1000, base / 2);
          expect(seconds).toBeLessThanOrEqual(Math.max(1, Math.ceil((base + spread) / 1000)));
        }),
        { numRuns: PROPERTY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
