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

const quiet = {
  holdParty: "t",
  method: "GET",
  route: "/v1",
  latencyMs: 100,
  drop: false,
  backoffMs: null,
  tenantBackoffMs: null,
  wholeOrigin: false,
  capacity: null,
} as const;

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
        {
          id: `r${id}`,
          tenant: "t",
          holdParty: "t",
          method: "GET",
          route: "/v1",
          weight: 1,
          priority: "normal",
          deadline: now + 10_000,
        },
        now,
      );
      state = result.state;
      if (result.outcome.kind === "admit") admitted.push(`r${id}`);
    }
    now += WINDOW_MIN_MS;
    for (const _ of admitted) {
      state = releaseSlot(state, { tenant: "t", priority: "normal" }, latencyMs, now);
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
      adaptive: { ...initialOriginState(LIMITS, T0).adaptive, limit: LIMITS.floor, idle: null },
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
    let state = noteLimited({ ...initialAdaptive(bounds, T0), limit: 3, idle: null });
    for (const at of [T0 + 100, T0 + 200, T0 + WINDOW_MIN_MS]) {
      state = recordSample(state, { kind: "latency", ms: 100, party: "t", route: "GET /v1" }, bounds, at);
    }
    // Three samples at a limit of 3 close the window at 250 ms: the limit grew by sqrt(3) / 2.
    expect(state.limit).toBeCloseTo(3 + Math.sqrt(3) / 2, 9);
    expect(state.window.startedAt).toBe(T0 + WINDOW_MIN_MS);
  });
});

describe("the lab's route mix: a fast low-priority flood, a lull, then a slower route", () => {
  // Global limit 3, floor 1: 100 ms low-priority requests flood it until the limit has fallen,
  // then 5 s of quiet, then 9 ordinary 300 ms requests from three tenants with 8 s to wait.
  // Before per-route baselines and the idle recovery, 5 of 9 were admitted at `effective` 1.
  const LAB: OriginLimits = { ...LIMITS, ceiling: 3, floor: 1, maxQueue: 64, maxWaitMs: 8_000 };

  const request = (id: string, tenant: string, route: string, priority: "low" | "normal", now: number) => ({
    id,
    tenant,
    holdParty: tenant,
    method: "GET",
    route,
    weight: 1,
    priority,
    deadline: now + 8_500,
  });

  const done = (tenant: string, route: string, latencyMs: number) => ({
    ...quiet,
    tenant,
    holdParty: tenant,
    route,
    latencyMs,
  });

  it("admits all nine slower requests in time, at the full limit", () => {
    let state = initialOriginState(LAB, T0);
    let now = T0;
    // The flood, queued at the stage: each release hands its slot straight to the next waiter,
    // and its latency climbs as the origin queues it, which is what shrank the limit.
    let running: { tenant: string; endsAt: number } | null = null;
    for (let tick = 0; tick < 120; tick += 1) {
      now = T0 + tick * 50;
      if (running && running.endsAt <= now) {
        state = learn(state, LAB, done("flood", "/v1/fast", 100 + tick * 5), now);
        state = releaseSlot(state, { tenant: "flood", priority: "low" }, 100, now);
        running = null;
      }
      const pumped = pump(state, LAB, now);
      state = pumped.state;
      if (pumped.granted.length > 0) running = { tenant: "flood", endsAt: now + 100 };
      const result = arrive(state, LAB, request(`f${tick}`, "flood", "/v1/fast", "low", now), now);
      state = result.state;
      if (result.outcome.kind === "admit") running = { tenant: "flood", endsAt: now + 100 };
    }
    // The flood stops: what it left queued times out, the last one in flight finishes.
    now += 9_000;
    state = pump(state, LAB, now).state;
    if (running) state = releaseSlot(state, { tenant: "flood", priority: "low" }, 100, now);
    expect(state.adaptive.limit).toBeLessThan(2);
    now += 5_000;
    state = pump(state, LAB, now).state;
    expect(effectiveLimit(state, LAB, now)).toBe(LAB.ceiling);

    const admittedAt = new Map<string, number>();
    const inFlight: Array<{ id: string; tenant: string; endsAt: number }> = [];
    const start = now;
    for (let i = 0; i < 9; i += 1) {
      const id = `s${i}`;
      const tenant = `t${i % 3}`;
      const result = arrive(state, LAB, request(id, tenant, "/v1/slow", "normal", start), now);
      state = result.state;
      expect(result.outcome.kind, `request ${i}`).not.toBe("shed");
      if (result.outcome.kind === "admit") {
        admittedAt.set(id, now);
        inFlight.push({ id, tenant, endsAt: now + 300 });
      }
    }
    while (admittedAt.size < 9 && now < start + 8_000) {
      inFlight.sort((a, b) => a.endsAt - b.endsAt);
      const next = inFlight.shift();
      if (!next) break;
      now = next.endsAt;
      state = learn(state, LAB, done(next.tenant, "/v1/slow", 300), now);
      state = releaseSlot(state, { tenant: next.tenant, priority: "normal" }, 300, now);
      const pumped = pump(state, LAB, now);
      state = pumped.state;
      expect(pumped.shed).toEqual([]);
      for (const waiter of pumped.granted) {
        admittedAt.set(waiter.id, now);
        inFlight.push({ id: waiter.id, tenant: waiter.tenant, endsAt: now + 300 });
      }
    }
    expect(admittedAt.size).toBe(9);
    // Two at a time (normal's 80% of 3): the last starts 1.2 s in, not 2.4 s in as at a limit of 1.
    expect(Math.max(...admittedAt.values()) - start).toBeLessThanOrEqual(1_200);
  });
});
