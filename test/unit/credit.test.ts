import { describe, expect, it } from "vitest";
import { type AdmissionState, initialState, pump } from "../../src/admission/admission";
import { HOT_TENANT_RATE, MAX_CREDIT_TOKENS, creditSize, drawCredit, returnCredit } from "../../src/admission/credit";
import type { AdmissionLimits } from "../../src/admission/limits";

const T0 = 1_700_000_000_000;
const HOT: AdmissionLimits = { rate: 1000, burst: 1000, maxInFlight: 400, maxQueue: 10, maxWaitMs: 100 };
const state = (over: Partial<AdmissionState> = {}): AdmissionState => ({ ...initialState(HOT, T0), ...over });

describe("credit size", () => {
  it("is zero for a tenant at or under the hot threshold", () => {
    const limits = { ...HOT, rate: HOT_TENANT_RATE };
    expect(creditSize(initialState(limits, T0), limits)).toBe(0);
  });

  it("is zero while anyone waits in the queue", () => {
    const waiter = {
      id: "w",
      priority: "low" as const,
      deadline: T0 + 1,
      fullBehaviour: "evict-lowest" as const,
      seq: 0,
      enqueuedAt: T0,
      expiresAt: T0 + 1,
    };
    expect(creditSize(state({ queue: [waiter] }), HOT)).toBe(0);
  });

  it("is bounded by the batch size, the tokens held, the refill while usable, and a quarter of the free slots", () => {
    expect(creditSize(state(), HOT)).toBe(MAX_CREDIT_TOKENS);
    expect(creditSize(state({ bucket: { tokens: 3.7, updatedAt: T0 } }), HOT)).toBe(3);
    expect(creditSize(state({ inFlight: 380 }), HOT)).toBe(5);
    expect(creditSize(state(), { ...HOT, rate: 260 })).toBe(MAX_CREDIT_TOKENS);
    expect(creditSize(state(), { ...HOT, rate: 260, maxInFlight: 8 })).toBe(2);
  });
});

describe("drawing and returning a credit", () => {
  it("takes tokens and slots at once, so nothing is spent beyond the bucket or the slots", () => {
    const drawn = drawCredit(state({ bucket: { tokens: 20, updatedAt: T0 } }), 16);
    expect(drawn.bucket.tokens).toBe(4);
    expect(drawn.inFlight).toBe(16);
  });

  it("gives back the slots and the unspent tokens, never above the burst", () => {
    const drawn = drawCredit(state({ bucket: { tokens: 20, updatedAt: T0 } }), 16);
    const back = returnCredit(drawn, HOT, 16, 10);
    expect(back.inFlight).toBe(0);
    expect(back.bucket.tokens).toBe(10);
    expect(returnCredit(state({ inFlight: 16 }), HOT, 16, 0).bucket.tokens).toBe(HOT.burst);
  });
});

describe("credits and the burst", () => {
  it("never let bucket and outstanding credits together hold more than the burst", () => {
    // Found in review: the bucket refilled to the full burst while a credit was still out.
    const limits = { ...HOT, rate: 300, burst: 20 };
    const drawn = drawCredit(state({ bucket: { tokens: 19, updatedAt: T0 } }), 16);
    const later = pump(drawn, limits, T0 + 60).state;
    expect(later.bucket.tokens + later.creditTokens).toBeLessThanOrEqual(limits.burst);
    expect(later.bucket.tokens).toBe(4);
  });

  it("keep the slots of credited requests that hit their deadline held, when asked to", () => {
    const drawn = drawCredit(state(), 16);
    const back = returnCredit(drawn, HOT, 16, 16, 12);
    expect(back.inFlight).toBe(4);
    expect(back.creditTokens).toBe(0);
  });
});
