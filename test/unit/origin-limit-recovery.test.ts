import { describe, expect, it } from "vitest";
import { WINDOW_MIN_MS, initialAdaptive, noteLimited, recordSample } from "../../src/origin/adaptive-limit";
import {
  type OriginState,
  arrive,
  effectiveLimit,
  initialOriginState,
  learn,
  pump,
  releaseSlot,
} from "../../src/origin/origin-admission";
import { DEFAULT_RESERVATIONS, type OriginLimits } from "../../src/origin/origin-config";

const T0 = 1_700_000_000_000;
const LIMITS: OriginLimits = {
  ceiling: 20,
  floor: 2,
  // No queue: what is not admitted at once is refused, so every admission is released in its round.
  maxQueue: 0,
  maxWaitMs: 5_000,
  reservations: { ...DEFAULT_RESERVATIONS },
  adaptive: true,
  latencyTolerance: 1.5,
  capacityTtlMs: 10_000,
  maxBackoffMs: 30_000,
};

const quiet = { latencyMs: 100, drop: false, backoffMs: null, tenantBackoffMs: null, capacity: null } as const;

/**
 * Drives `normal` traffic that always wants more than it gets, through `rounds` windows, with
 * every finished request taking `latencyMs`; returns the state after.
 */
function saturateWithNormal(start: OriginState, from: number, rounds: number, latencyMs: number): OriginState {
  let state = start;
  let now = from;
  let id = 0;
  for (let round = 0; round < rounds; round += 1) {
    const admitted: string[] = [];
    for (let i = 0; i < 30; i += 1) {
      id += 1;
      const result = arrive(
        state,
        LIMITS,
        { id: `r${id}`, tenant: "t", weight: 1, priority: "normal", deadline: now + 10_000 },
        now,
      );
      state = result.state;
      if (result.outcome.kind === "admit") admitted.push(`r${id}`);
    }
    now += WINDOW_MIN_MS;
    for (const _ of admitted) {
      state = releaseSlot(state, { tenant: "t", priority: "normal" }, latencyMs);
      state = learn(state, LIMITS, { ...quiet, tenant: "t", latencyMs }, now);
    }
    state = pump(state, LIMITS, now).state;
  }
  return state;
}

describe("adaptive origin limit under reservations", () => {
  it("grows back from the floor with normal traffic alone, which may never fill the whole limit", () => {
    const atFloor: OriginState = {
      ...initialOriginState(LIMITS, T0),
      adaptive: { ...initialOriginState(LIMITS, T0).adaptive, limit: LIMITS.floor, baselineMs: 100 },
    };
    const after = saturateWithNormal(atFloor, T0, 40, 100);
    expect(effectiveLimit(after, LIMITS, T0 + 40 * WINDOW_MIN_MS)).toBe(LIMITS.ceiling);
  });

  it("backs off when the origin's latency climbs past the tolerance", () => {
    const warm = saturateWithNormal(initialOriginState(LIMITS, T0), T0, 5, 100);
    const slowed = saturateWithNormal(warm, T0 + 5 * WINDOW_MIN_MS, 5, 400);
    expect(effectiveLimit(slowed, LIMITS, T0 + 10 * WINDOW_MIN_MS)).toBeLessThan(LIMITS.ceiling * 0.7);
  });

  it("closes windows on as few samples as the limit completes, so a low limit climbs every 250 ms", () => {
    const bounds = { floor: 2, ceiling: 20, latencyTolerance: 1.5 };
    let state = noteLimited({ ...initialAdaptive(bounds, T0), limit: 3, baselineMs: 100 });
    for (const at of [T0 + 100, T0 + 200, T0 + WINDOW_MIN_MS]) {
      state = recordSample(state, { kind: "latency", ms: 100 }, bounds, at);
    }
    // Three samples at a limit of 3 close the window at 250 ms: the limit grew by sqrt(3) / 2.
    expect(state.limit).toBeCloseTo(3 + Math.sqrt(3) / 2, 9);
    expect(state.window.startedAt).toBe(T0 + WINDOW_MIN_MS);
  });
});
