import { describe, expect, it } from "vitest";
import type { Arrival } from "../../src/admission/limits";
import type { Priority } from "../../src/admission/priority";
import {
  type HeldVerdict,
  MAX_VERDICT_AGE_MS,
  MIN_HOLD_MS,
  clampHold,
  decideLocally,
} from "../../src/admission/saturation";

const T0 = 1_700_000_000_000;

const held = (verdict: Omit<HeldVerdict, "receivedAt">): HeldVerdict => ({ ...verdict, receivedAt: T0 });

describe("verdict hold times", () => {
  it("hold at least MIN_HOLD_MS and at most MAX_VERDICT_AGE_MS, in whole ms", () => {
    expect(clampHold(0)).toBe(MIN_HOLD_MS);
    expect(clampHold(12.2)).toBe(13);
    expect(clampHold(10 * MAX_VERDICT_AGE_MS)).toBe(MAX_VERDICT_AGE_MS);
  });
});

describe("local decisions at the edge", () => {
  const fullQueue = held({
    reason: "queue_full",
    coversUpTo: "normal",
    noRoom: true,
    waitMs: 300,
    holdForMs: 40,
    retryAfterMs: 300,
    serviceMs: 50,
  });
  const tooLong = held({
    reason: "rate_limited",
    coversUpTo: "normal",
    noRoom: false,
    waitMs: 800,
    holdForMs: 200,
    retryAfterMs: 800,
    serviceMs: 50,
  });
  const request = (
    priority: Priority,
    waitBudgetMs = 500,
    fullBehaviour: Arrival["fullBehaviour"] = "evict-lowest",
  ) => ({
    priority,
    waitBudgetMs,
    fullBehaviour,
  });

  it("shed a covered request while there is no room, with Retry-After counted down", () => {
    expect(decideLocally(fullQueue, request("low", 60_000), T0 + 10)).toEqual({
      kind: "shed",
      reason: "queue_full",
      retryAfterMs: 290,
    });
    expect(decideLocally(fullQueue, request("normal"), T0 + 39).kind).toBe("shed");
    expect(decideLocally(fullQueue, request("normal"), T0 + 40).kind).toBe("ask");
  });

  it("send a higher priority than the verdict covers to the object", () => {
    expect(decideLocally(fullQueue, request("high"), T0).kind).toBe("ask");
    expect(decideLocally(tooLong, request("critical"), T0).kind).toBe("ask");
  });

  it("let shed-oldest requests at or above the lowest queued class ask, since they displace a waiter", () => {
    expect(decideLocally(fullQueue, request("normal", 500, "shed-oldest"), T0).kind).toBe("ask");
    expect(decideLocally(fullQueue, request("low", 500, "shed-oldest"), T0).kind).toBe("shed");
  });

  it("shed a budget the object refused while the verdict holds, then while the shrinking wait still exceeds it", () => {
    expect(decideLocally(tooLong, request("normal", 700), T0 + 150)).toEqual({
      kind: "shed",
      reason: "rate_limited",
      retryAfterMs: 650,
    });
    expect(decideLocally(tooLong, request("normal", 700), T0 + 200).kind).toBe("ask");
    expect(decideLocally(tooLong, request("normal", 100), T0 + 600).kind).toBe("shed");
    expect(decideLocally(tooLong, request("normal", 100), T0 + 700).kind).toBe("ask");
  });

  it("never shed a budget the object would have queued", () => {
    expect(decideLocally(tooLong, request("low", 800), T0).kind).toBe("ask");
    expect(decideLocally(tooLong, request("low", 5000), T0).kind).toBe("ask");
  });

  it("trust no verdict past its maximum age, or from the future", () => {
    const forever = held({ ...tooLong, waitMs: 10 * MAX_VERDICT_AGE_MS, holdForMs: MAX_VERDICT_AGE_MS });
    expect(decideLocally(forever, request("normal"), T0 + MAX_VERDICT_AGE_MS - 1).kind).toBe("shed");
    expect(decideLocally(forever, request("normal"), T0 + MAX_VERDICT_AGE_MS).kind).toBe("ask");
    expect(decideLocally(forever, request("normal"), T0 - 1).kind).toBe("ask");
  });
});
