import { describe, expect, it } from "vitest";
import { type AdmissionState, arrive, initialState, pump } from "../../src/admission/admission";
import type { AdmissionLimits, Arrival } from "../../src/admission/limits";
import type { Priority } from "../../src/admission/priority";
import {
  type HeldVerdict,
  HOLD_SHARE_OF_DRAIN,
  MAX_VERDICT_AGE_MS,
  MIN_HOLD_MS,
  decideLocally,
  saturationAfterShed,
} from "../../src/admission/saturation";

const T0 = 1_700_000_000_000;
const LIMITS: AdmissionLimits = { rate: 10, burst: 2, maxInFlight: 2, maxQueue: 2, maxWaitMs: 1000 };

let n = 0;
const arrival = (priority: Priority = "normal", fullBehaviour: Arrival["fullBehaviour"] = "evict-lowest"): Arrival => {
  n += 1;
  return { id: `a${n}`, priority, deadline: T0 + 5000, fullBehaviour };
};

function run(state: AdmissionState, limits: AdmissionLimits, arrivals: Arrival[]) {
  let last: ReturnType<typeof arrive> | undefined;
  for (const a of arrivals) {
    last = arrive(pump(state, limits, T0).state, limits, a, T0);
    state = last.state;
  }
  return last!;
}

const held = (verdict: Omit<HeldVerdict, "receivedAt">): HeldVerdict => ({ ...verdict, receivedAt: T0 });

describe("saturation verdicts from the object", () => {
  it("cover a full queue up to its lowest class while the head is stuck, or a share of the drain", () => {
    const state = { ...initialState(LIMITS, T0), holdMsEwma: 100 };
    const shedArrival = arrival("low");
    const result = run(state, LIMITS, [arrival(), arrival(), arrival("high"), arrival("normal"), shedArrival]);
    expect(result.outcome).toMatchObject({ kind: "shed", reason: "queue_full" });
    const verdict = saturationAfterShed(result.state, LIMITS, shedArrival, "queue_full", 0, 1000);
    // The head needs a slot (100 ms hold / 2 slots) and a token (100 ms at 10/s): the later wins.
    expect(verdict).toMatchObject({ reason: "queue_full", coversUpTo: "normal", noRoom: true, holdForMs: 100 });
    // Tokens for the head and one more waiter: the queue drains in 100 ms, the verdict holds a share.
    const tokensLeft = { ...result.state, holdMsEwma: null, bucket: { tokens: 2, updatedAt: T0 } };
    const shortly = saturationAfterShed(tokensLeft, LIMITS, shedArrival, "queue_full", 0, 0);
    expect(shortly?.holdForMs).toBe(Math.ceil(HOLD_SHARE_OF_DRAIN * 100));
    const drainsNow = { ...tokensLeft, bucket: { tokens: 3, updatedAt: T0 } };
    expect(saturationAfterShed(drainsNow, LIMITS, shedArrival, "queue_full", 0, 0)?.holdForMs).toBe(MIN_HOLD_MS);
  });

  it("cover the shed class and below when the wait was too long, for a share of the queue's drain", () => {
    const state = { ...initialState(LIMITS, T0), bucket: { tokens: 0, updatedAt: T0 } };
    const verdict = saturationAfterShed(state, LIMITS, arrival("high"), "rate_limited", 900, 900);
    expect(verdict).toEqual({
      reason: "rate_limited",
      coversUpTo: "high",
      noRoom: false,
      waitMs: 900,
      holdForMs: Math.ceil(HOLD_SHARE_OF_DRAIN * 100),
      retryAfterMs: 900,
      serviceMs: null,
    });
  });

  it("treat a tenant without a queue as having no room, whatever the budget", () => {
    const limits = { ...LIMITS, maxQueue: 0 };
    const state = { ...initialState(limits, T0), bucket: { tokens: 0, updatedAt: T0 } };
    expect(saturationAfterShed(state, limits, arrival(), "rate_limited", 100, 100)).toMatchObject({
      noRoom: true,
      holdForMs: 100,
    });
  });

  it("say nothing when the arrival was refused only because its own budget was spent", () => {
    expect(saturationAfterShed(initialState(LIMITS, T0), LIMITS, arrival(), "wait_exceeds_deadline", 0, 0)).toBeNull();
  });

  it.each(["evicted", "queue_timeout"] as const)("say nothing about the next request after %s", (reason) => {
    expect(saturationAfterShed(initialState(LIMITS, T0), LIMITS, arrival(), reason, 0, 0)).toBeNull();
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
