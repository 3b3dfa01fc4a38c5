import { describe, expect, it } from "vitest";
import { HOLD_SHARE_OF_DRAIN, MAX_VERDICT_AGE_MS, MIN_HOLD_MS } from "../../src/admission/saturation";
import type { OriginOutcome } from "../../src/origin/origin-admission";
import {
  countOriginAdmit,
  countOriginCall,
  countOriginRelease,
  countOriginSheds,
  emptyOriginCounters,
} from "../../src/origin/origin-counters";
import { ORIGIN_SHED_CAUSES, type OriginShedCause, reasonOf } from "../../src/origin/origin-shed";
import { originSaturation } from "../../src/origin/origin-verdict";

type Shed = Extract<OriginOutcome, { kind: "shed" }>;

function shed(cause: OriginShedCause, change: Partial<Shed> = {}): Shed {
  return { kind: "shed", cause, retryAfterMs: 400, expectedWaitMs: 400, noRoom: false, holdScope: null, ...change };
}

describe("origin shed reasons", () => {
  it("tells the client a 503 hold as origin_backoff, a 429 hold as origin_rate_limited, the rest as origin_saturated", () => {
    expect(Object.fromEntries(ORIGIN_SHED_CAUSES.map((cause) => [cause, reasonOf(cause)]))).toEqual({
      queue_full: "origin_saturated",
      wait_exceeds_deadline: "origin_saturated",
      queue_timeout: "origin_saturated",
      evicted: "origin_saturated",
      backoff: "origin_backoff",
      tenant_backoff: "origin_rate_limited",
    });
  });
});

describe("origin verdicts for the edge", () => {
  it("lets the edge repeat an origin hold for every class, re-asking at least once a verdict age", () => {
    expect(originSaturation(shed("backoff", { retryAfterMs: 4_000, noRoom: true }), "low", 900, 120)).toEqual({
      reason: "origin_backoff",
      coversUpTo: "critical",
      noRoom: true,
      waitMs: 4_000,
      holdForMs: MAX_VERDICT_AGE_MS,
      retryAfterMs: 4_000,
      serviceMs: null,
    });
    expect(originSaturation(shed("tenant_backoff", { retryAfterMs: 300 }), "normal", 0, null)).toMatchObject({
      reason: "origin_rate_limited",
      coversUpTo: "critical",
      holdForMs: 300,
    });
  });

  it.each(["queue_timeout", "evicted"] as const)(
    "gives no verdict for %s, which happens to waiters, not arrivals",
    (cause) => {
      expect(originSaturation(shed(cause), "normal", 1_000, 100)).toBeNull();
    },
  );

  it("gives no verdict for a request refused only for its own spent budget", () => {
    expect(originSaturation(shed("wait_exceeds_deadline", { expectedWaitMs: 0 }), "normal", 1_000, 100)).toBeNull();
  });

  it("covers the shed class and below for a quarter of the drain time when the wait was too long", () => {
    expect(originSaturation(shed("wait_exceeds_deadline", { expectedWaitMs: 700 }), "high", 2_000, 150)).toEqual({
      reason: "origin_saturated",
      coversUpTo: "high",
      noRoom: false,
      waitMs: 700,
      holdForMs: HOLD_SHARE_OF_DRAIN * 2_000,
      retryAfterMs: 400,
      serviceMs: 150,
    });
  });

  it("holds a no-room verdict at least until the retry time, within the verdict age bounds", () => {
    const full = shed("queue_full", { noRoom: true, retryAfterMs: 600 });
    expect(originSaturation(full, "low", 400, null)).toMatchObject({ noRoom: true, waitMs: 400, holdForMs: 600 });
    expect(originSaturation({ ...full, retryAfterMs: 0 }, "low", 0, null)?.holdForMs).toBe(MIN_HOLD_MS);
    expect(originSaturation({ ...full, retryAfterMs: 60_000 }, "low", 0, null)?.holdForMs).toBe(MAX_VERDICT_AGE_MS);
  });
});

describe("origin counters", () => {
  it("start at zero for every cause, class and call", () => {
    const counters = emptyOriginCounters();
    expect(Object.values(counters.shedByCause)).toEqual(ORIGIN_SHED_CAUSES.map(() => 0));
    expect(counters).toMatchObject({ arrived: 0, admitted: 0, shed: 0, released: 0, reaped: 0, drops: 0, holds: 0 });
    expect(counters.calls).toEqual({ acquire: 0, release: 0, reportSheds: 0, hold: 0 });
  });

  it("add up: sheds by cause and by class sum to the sheds, edge sheds count as arrivals", () => {
    let counters = countOriginAdmit(emptyOriginCounters(), "high");
    counters = countOriginSheds(
      counters,
      [
        { cause: "queue_full", priority: "low", count: 3 },
        { cause: "backoff", priority: "critical", count: 2 },
      ],
      { atEdge: true, arrived: true },
    );
    counters = countOriginSheds(counters, [{ cause: "evicted", priority: "low", count: 1 }], {
      atEdge: false,
      arrived: false,
    });
    expect(counters).toMatchObject({ arrived: 5, admitted: 1, shed: 6, shedAtEdge: 5 });
    expect(counters.shedByCause).toMatchObject({ queue_full: 3, backoff: 2, evicted: 1 });
    expect(counters.shedByPriority).toEqual({ low: 4, normal: 0, high: 0, critical: 2 });
    expect(counters.admittedByPriority.high).toBe(1);
  });

  it("tell releases from reaped leases, and count drops, holds and calls", () => {
    let counters = countOriginRelease(emptyOriginCounters(), { reaped: false, drop: true, hold: true });
    counters = countOriginRelease(counters, { reaped: true, drop: false, hold: false });
    counters = countOriginCall(countOriginCall(counters, "acquire"), "acquire");
    expect(counters).toMatchObject({ released: 1, reaped: 1, drops: 1, holds: 1 });
    expect(counters.calls.acquire).toBe(2);
  });
});
