import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AdaptiveBounds,
  type AdaptiveState,
  AT_BASELINE,
  DROP_BACKOFF,
  IDLE_HALF_LIFE_MS,
  MIN_GRADIENT,
  type Sample,
  WINDOW_MAX_MS,
  WINDOW_MIN_MS,
  WINDOW_MIN_SAMPLES,
  initialAdaptive,
  noteIdle,
  noteInFlight,
  rebound,
  recordSample,
  recoverWhileIdle,
  slotsOf,
} from "../../src/origin/adaptive-limit";
import {
  BASELINE_DRIFT,
  MAX_PARTIES,
  MAX_ROUTES_PER_PARTY,
  MAX_ROUTE_BASELINES,
  NO_EVIDENCE,
  PARTY_HORIZON_MS,
  baselineKey,
  baselineOf,
} from "../../src/origin/party-evidence";
import { PROPERTY_RUNS } from "./property-runs";

const T0 = 1_700_000_000_000;
const BOUNDS: AdaptiveBounds = { floor: 2, ceiling: 40, latencyTolerance: 1.5 };
const ROUTE = "GET /v1/items";

const latency = (ms: number, party = "a", route = ROUTE): Sample => ({ kind: "latency", ms, party, route });
const drop = (party = "a"): Sample => ({ kind: "drop", party });

/** Party "a"'s baseline on ROUTE. */
const baseline = (state: AdaptiveState, party = "a", route = ROUTE) => baselineOf(state.evidence, party, route);

/** A state mid-life: limit as given, party "a" heard with `baselineMs` on ROUTE, a fresh window opened at `at`. */
function settled(limit: number, baselineMs: number | null, at = T0): AdaptiveState {
  const evidence =
    baselineMs === null
      ? NO_EVIDENCE
      : {
          baselines: { [baselineKey("a", ROUTE)]: { ms: baselineMs, seenAt: at } },
          parties: { a: { seenAt: at, ratio: 1, dropped: false } },
        };
  return { ...initialAdaptive(BOUNDS, at), limit, evidence, idle: null };
}

interface WindowShape {
  readonly latencyMs: number;
  /** In flight at the busiest admission of the window; the limit's integer part by default. */
  readonly peak?: number;
  readonly drops?: number;
  readonly party?: string;
  readonly route?: string;
}

/** Runs one window that closes on its last sample: WINDOW_MIN_SAMPLES samples, WINDOW_MIN_MS in. */
function runWindow(state: AdaptiveState, shape: WindowShape, bounds = BOUNDS): AdaptiveState {
  const end = state.window.startedAt + WINDOW_MIN_MS;
  const drops = shape.drops ?? 0;
  let next = noteInFlight(state, shape.peak ?? slotsOf(state.limit));
  for (let i = 0; i < WINDOW_MIN_SAMPLES - drops; i += 1) {
    next = recordSample(next, latency(shape.latencyMs, shape.party, shape.route), bounds, end);
  }
  for (let i = 0; i < drops; i += 1) next = recordSample(next, drop(shape.party), bounds, end);
  expect(next.window.startedAt, "the window closed").toBe(end);
  return next;
}

/** Runs one window with each party's samples (or drops) as given, closing on the last one. */
function runMixedWindow(
  state: AdaptiveState,
  samples: ReadonlyArray<Sample>,
  peak = 0,
  bounds = BOUNDS,
): AdaptiveState {
  const end = state.window.startedAt + WINDOW_MIN_MS;
  let next = noteInFlight(state, peak);
  for (const sample of samples) next = recordSample(next, sample, bounds, end);
  expect(next.window.startedAt, "the window closed").toBe(end);
  return next;
}

const times = <T>(n: number, value: T): T[] => Array.from({ length: n }, () => value);

describe("adaptive origin limit", () => {
  it("starts at the ceiling with no baseline: the operator's number is trusted at first", () => {
    const state = initialAdaptive(BOUNDS, T0);
    expect(state).toMatchObject({ limit: 40, lastRatio: null, lastLatencyMs: null, evidence: NO_EVIDENCE });
    expect(state.window).toMatchObject({ startedAt: T0, samples: 0, latencySumMs: 0, drops: 0, peakInFlight: 0 });
  });

  it("takes the first window's latency as the baseline without moving the limit down", () => {
    const state = runWindow(settled(20, null), { latencyMs: 300, peak: 5 });
    expect(state.limit).toBeGreaterThanOrEqual(20);
    expect(state).toMatchObject({ lastRatio: 1, lastLatencyMs: 300 });
    expect(baseline(state)).toBe(300);
  });

  describe("windows", () => {
    it("stays open before WINDOW_MIN_MS, however many samples arrive", () => {
      let state = settled(20, 100);
      for (let i = 0; i < 5 * WINDOW_MIN_SAMPLES; i += 1) {
        state = recordSample(state, latency(1_000), BOUNDS, T0 + WINDOW_MIN_MS - 1);
      }
      expect(state.window).toMatchObject({ startedAt: T0, samples: 5 * WINDOW_MIN_SAMPLES });
      expect(state.limit).toBe(20);
    });

    it("stays open past WINDOW_MIN_MS until WINDOW_MIN_SAMPLES are seen", () => {
      let state = settled(20, 100);
      for (let i = 0; i < WINDOW_MIN_SAMPLES - 1; i += 1) {
        state = recordSample(state, latency(1_000), BOUNDS, T0 + WINDOW_MAX_MS - 1);
      }
      expect(state.window.samples).toBe(WINDOW_MIN_SAMPLES - 1);
      state = recordSample(state, latency(1_000), BOUNDS, T0 + WINDOW_MAX_MS - 1);
      expect(state.window).toMatchObject({ startedAt: T0 + WINDOW_MAX_MS - 1, samples: 0 });
    });

    it("closes at WINDOW_MAX_MS with a single sample", () => {
      const state = recordSample(settled(20, 100), latency(120), BOUNDS, T0 + WINDOW_MAX_MS);
      expect(state.window).toMatchObject({ startedAt: T0 + WINDOW_MAX_MS, samples: 0 });
      expect(state.lastLatencyMs).toBe(120);
    });

    it("counts a drop as a seen sample when closing at WINDOW_MAX_MS", () => {
      const state = recordSample(settled(20, 100), drop(), BOUNDS, T0 + WINDOW_MAX_MS);
      expect(state.window.startedAt).toBe(T0 + WINDOW_MAX_MS);
      expect(state.limit).toBeCloseTo(20 * DROP_BACKOFF, 9);
    });

    it("does not close a window early when the clock steps back: the window just runs longer", () => {
      let state = settled(20, 100);
      for (let i = 0; i < WINDOW_MIN_SAMPLES; i += 1) {
        state = recordSample(state, latency(1_000), BOUNDS, T0 - 5_000);
      }
      state = recordSample(state, drop(), BOUNDS, T0 - 60_000);
      expect(state.window).toMatchObject({ startedAt: T0, samples: WINDOW_MIN_SAMPLES, drops: 1 });
      expect(state.limit).toBe(20);
      state = recordSample(state, latency(1_000), BOUNDS, T0 + WINDOW_MIN_MS);
      expect(state.window.startedAt).toBe(T0 + WINDOW_MIN_MS);
      expect(state.limit).toBeCloseTo(20 * DROP_BACKOFF, 9);
    });

    it("treats a negative latency as 0 rather than letting it lower the mean", () => {
      let state = settled(20, 100);
      state = recordSample(state, latency(-500), BOUNDS, T0);
      expect(state.window.latencySumMs).toBe(0);
    });
  });

  describe("growth", () => {
    it("grows by sqrt(limit) / 2 when the window reached the limit and latency is within tolerance", () => {
      const state = runWindow(settled(16, 100), { latencyMs: 140, peak: 16 });
      expect(state.limit).toBeCloseTo(16 + Math.sqrt(16) / 2, 9);
    });

    it("does not grow when nobody filled the limit and latency is above its baseline", () => {
      const state = runWindow(settled(16, 100), { latencyMs: 100 * (AT_BASELINE + 0.1), peak: 15 });
      expect(state.limit).toBe(16);
    });

    it("grows when latency is back at its baseline, even though nobody filled the limit", () => {
      const state = runWindow(settled(16, 100), { latencyMs: 100 * AT_BASELINE - 1, peak: 1 });
      expect(state.limit).toBeCloseTo(16 + Math.sqrt(16) / 2, 9);
    });

    it("counts the limit as reached at its slots, the nearest whole number", () => {
      const reached = runWindow(settled(16.4, 100), { latencyMs: 130, peak: 16 });
      expect(reached.limit).toBeCloseTo(16.4 + Math.sqrt(16.4) / 2, 9);
      const short = runWindow(settled(16.7, 100), { latencyMs: 130, peak: 16 });
      expect(short.limit).toBe(16.7);
    });

    it("never grows past the ceiling", () => {
      let state = settled(39, 100);
      for (let i = 0; i < 5; i += 1) state = runWindow(state, { latencyMs: 100 });
      expect(state.limit).toBe(BOUNDS.ceiling);
    });
  });

  describe("shrinking", () => {
    it("shrinks by half the gradient's shortfall when window latency exceeds tolerance * baseline", () => {
      // gradient = 1.5 * 100 / 200 = 0.75: the limit loses (1 - 0.75) / 2 of itself.
      const state = runWindow(settled(20, 100), { latencyMs: 200 });
      expect(state.limit).toBeCloseTo(20 * (1 - 0.25 / 2), 9);
    });

    it("shrinks by at most (1 - MIN_GRADIENT) / 2 per window, however slow the origin got", () => {
      const state = runWindow(settled(20, 100), { latencyMs: 100_000 });
      expect(state.limit).toBeCloseTo(20 * (1 - (1 - MIN_GRADIENT) / 2), 9);
    });

    it("holds steady at exactly tolerance * baseline when the limit was not reached", () => {
      const state = runWindow(settled(20, 100), { latencyMs: 150, peak: 3 });
      expect(state.limit).toBe(20);
    });

    it("multiplies the limit by DROP_BACKOFF on any drop, whatever the latency", () => {
      const state = runWindow(settled(20, 100), { latencyMs: 10, drops: 1 });
      expect(state.limit).toBeCloseTo(20 * DROP_BACKOFF, 9);
    });

    it("never shrinks below the floor", () => {
      let state = settled(3, 100);
      for (let i = 0; i < 10; i += 1) state = runWindow(state, { latencyMs: 0, drops: WINDOW_MIN_SAMPLES });
      expect(state.limit).toBe(BOUNDS.floor);
    });
  });

  describe("baseline", () => {
    it("follows a faster window at once", () => {
      const state = runWindow(settled(20, 100), { latencyMs: 60 });
      expect(baseline(state)).toBe(60);
    });

    it("creeps towards a slower window by BASELINE_DRIFT of the gap", () => {
      const state = runWindow(settled(20, 100), { latencyMs: 500 });
      expect(baseline(state)).toBeCloseTo(100 + BASELINE_DRIFT * 400, 9);
      expect(state.lastLatencyMs).toBe(500);
    });

    it("accepts a lasting slowdown: the limit falls, then grows again once the baseline has drifted up", () => {
      let state = settled(BOUNDS.ceiling, null);
      for (let i = 0; i < 5; i += 1) state = runWindow(state, { latencyMs: 100 });
      expect(state.limit).toBe(BOUNDS.ceiling);
      expect(baseline(state)).toBe(100);

      const limits: number[] = [];
      for (let i = 0; i < 200; i += 1) {
        state = runWindow(state, { latencyMs: 500 });
        limits.push(state.limit);
      }
      expect(limits[9]).toBeLessThan(5);
      const lowest = Math.min(...limits);
      expect(lowest).toBe(BOUNDS.floor);
      // tolerance * baseline reaches 500 ms once the baseline is at 333 ms: after ~44 windows.
      const firstGrowth = limits.findIndex((limit, i) => i > 0 && limit > (limits[i - 1] ?? 0));
      expect(firstGrowth).toBeGreaterThan(30);
      expect(firstGrowth).toBeLessThan(60);
      expect(limits[limits.length - 1]).toBe(BOUNDS.ceiling);
    });
  });

  it("carries the limit over to new bounds, clamped into them", () => {
    const state = settled(30, 100);
    expect(rebound(state, { ...BOUNDS, ceiling: 10 }).limit).toBe(10);
    expect(rebound(state, { ...BOUNDS, floor: 35, ceiling: 50 }).limit).toBe(35);
    expect(rebound(state, { ...BOUNDS, ceiling: 50 }).limit).toBe(30);
  });

  it("notes only a higher in-flight peak", () => {
    const state = noteInFlight(noteInFlight(settled(20, 100), 7), 3);
    expect(state.window.peakInFlight).toBe(7);
  });

  it("keeps the limit within [floor, ceiling] over any samples, clock steps and peaks", () => {
    const event = fc.oneof(
      fc.record({
        kind: fc.constant("latency" as const),
        ms: fc.double({ min: -10, max: 20_000, noNaN: true }),
        dt: fc.integer({ min: -2_000, max: 1_500 }),
        party: fc.constantFrom("a", "b", "c"),
        route: fc.constantFrom("GET /a", "GET /b", "POST /a"),
      }),
      fc.record({
        kind: fc.constant("drop" as const),
        dt: fc.integer({ min: -2_000, max: 1_500 }),
        party: fc.constantFrom("a", "b", "c"),
      }),
      fc.record({ kind: fc.constant("peak" as const), inFlight: fc.integer({ min: 0, max: 100 }) }),
      fc.record({ kind: fc.constant("idle" as const), dt: fc.integer({ min: -2_000, max: 10_000 }) }),
    );
    const bounds = fc
      .record({
        floor: fc.integer({ min: 1, max: 50 }),
        span: fc.integer({ min: 0, max: 50 }),
        latencyTolerance: fc.double({ min: 1, max: 10, noNaN: true }),
      })
      .map(({ floor, span, latencyTolerance }) => ({ floor, ceiling: floor + span, latencyTolerance }));
    fc.assert(
      fc.property(bounds, fc.array(event, { maxLength: 300 }), (b, events) => {
        let state = initialAdaptive(b, T0);
        let now = T0;
        for (const e of events) {
          if (e.kind === "peak") state = noteInFlight(state, e.inFlight);
          else if (e.kind === "idle") {
            now += e.dt;
            state = recoverWhileIdle(noteIdle(state, now), b, now + e.dt);
          } else {
            now += e.dt;
            state = recordSample(state, e.kind === "drop" ? drop(e.party) : latency(e.ms, e.party, e.route), b, now);
          }
          expect(state.limit).toBeGreaterThanOrEqual(b.floor);
          expect(state.limit).toBeLessThanOrEqual(b.ceiling);
          expect(Number.isFinite(state.limit)).toBe(true);
        }
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });

  describe("a route mix cannot fool it", () => {
    it("judges a slower route against its own baseline, not the faster route's (the lab's 100 ms then 300 ms)", () => {
      let state = settled(3, 100);
      state = runWindow(state, { latencyMs: 300, route: "GET /v1/slow", peak: 1 });
      expect(state.lastRatio).toBe(1);
      expect(state.limit).toBeGreaterThan(3);
      expect(baseline(state, "a", "GET /v1/slow")).toBe(300);
    });

    it("still reads the same route's latency tripling as overload", () => {
      const state = runWindow(settled(20, 100), { latencyMs: 300 });
      expect(state.limit).toBeCloseTo(20 * (1 - (1 - MIN_GRADIENT) / 2), 9);
    });

    it("keeps one baseline per party and route: another party's fast requests do not make a party look slow", () => {
      let state = settled(20, 300);
      state = runWindow(state, { latencyMs: 10, party: "fast" });
      expect(baseline(state, "fast")).toBe(10);
      expect(baseline(state)).toBe(300);
      state = runWindow(state, { latencyMs: 300, peak: 1 });
      expect(state.limit).toBeGreaterThanOrEqual(20);
    });

    it("bounds the baselines and the parties it remembers, stalest first", () => {
      let state = settled(20, 100);
      for (let i = 0; i < MAX_ROUTE_BASELINES + 10; i += 1) {
        state = runMixedWindow(
          state,
          times(WINDOW_MIN_SAMPLES, latency(100, `p${i % (MAX_PARTIES + 5)}`, `GET /r${i}`)),
        );
      }
      expect(Object.keys(state.evidence.baselines).length).toBe(MAX_ROUTE_BASELINES);
      expect(Object.keys(state.evidence.parties).length).toBeLessThanOrEqual(MAX_PARTIES);
    });
  });

  describe("a party that sprays routes or floods", () => {
    it("evicts only its own baselines when it sprays route classes", () => {
      let state = settled(20, 100);
      for (let i = 0; i < MAX_ROUTE_BASELINES + 50; i += 1) {
        state = runMixedWindow(state, times(WINDOW_MIN_SAMPLES, latency(10, "spray", `GET /x${i}`)));
      }
      expect(baseline(state)).toBe(100);
      const sprayed = Object.keys(state.evidence.baselines).filter((key) => key.startsWith("spray "));
      expect(sprayed.length).toBe(MAX_ROUTES_PER_PARTY);
    });

    it("weighs every party's samples, however many a flooding party completes first", () => {
      let state = runMixedWindow(
        settled(20, 100),
        [...times(10, latency(100, "b")), ...times(10, latency(100, "c"))],
        1,
      );
      const before = state.limit;
      state = runMixedWindow(
        state,
        [...times(1_000, latency(1_000, "flood")), latency(100, "b"), latency(100, "c")],
        1,
      );
      expect(state.lastRatio).toBeCloseTo(1, 9);
      expect(state.limit).toBeGreaterThanOrEqual(before);
    });
  });

  describe("drops", () => {
    it("keeps backing off while every one of many parties sees drops", () => {
      const parties = Array.from({ length: 60 }, (_, i) => `t${i}`);
      let state = settled(100, 100);
      const limits: number[] = [];
      for (let round = 0; round < 6; round += 1) {
        state = runMixedWindow(
          state,
          parties.map((party) => drop(party)),
          0,
          { ...BOUNDS, ceiling: 100 },
        );
        limits.push(state.limit);
      }
      for (let i = 1; i < limits.length; i += 1) expect(limits[i]).toBeLessThan(limits[i - 1] ?? 0);
    });

    it("does not count a party's drop of an earlier window once its latest window had none", () => {
      const first = [...times(3, drop("a")), ...times(3, drop("b")), ...times(4, latency(100, "c"))];
      let state = runMixedWindow(settled(20, 100), first);
      expect(state.limit).toBeCloseTo(20 * DROP_BACKOFF, 9);
      const before = state.limit;
      state = runMixedWindow(state, [...times(5, latency(100, "a")), ...times(5, latency(100, "b")), drop("c")]);
      expect(state.limit).toBeGreaterThanOrEqual(before);
    });
  });

  describe("one party cannot steer it while others are heard", () => {
    /** Parties b and c at their baselines, as a window of their own. */
    const withBystanders = (state: AdaptiveState) =>
      runMixedWindow(state, [...times(5, latency(100, "b")), ...times(5, latency(100, "c"))], 1);

    it("takes the lower median over parties: one party's slow answers do not shrink everyone's limit", () => {
      let state = withBystanders(withBystanders(settled(20, 100)));
      const before = state.limit;
      state = runMixedWindow(state, [...times(8, latency(1_000)), latency(100, "b"), latency(100, "c")], 1);
      expect(state.lastRatio).toBeCloseTo(1, 9);
      expect(state.limit).toBeGreaterThanOrEqual(before);
    });

    it("shrinks when most parties are slow", () => {
      let state = withBystanders(withBystanders(settled(20, 100)));
      const before = state.limit;
      state = runMixedWindow(state, [...times(5, latency(300)), ...times(5, latency(300, "b")), latency(100, "c")]);
      expect(state.limit).toBeLessThan(before);
    });

    it("ignores one party's drops while other parties were heard within PARTY_HORIZON_MS", () => {
      let state = withBystanders(settled(20, 100));
      const before = state.limit;
      state = runMixedWindow(state, times(WINDOW_MIN_SAMPLES, drop("a")));
      expect(state.limit).toBe(before);
    });

    it("backs off when most recent parties saw drops", () => {
      let state = withBystanders(settled(20, 100));
      const before = state.limit;
      state = runMixedWindow(state, [...times(5, drop("a")), ...times(5, drop("b"))]);
      expect(state.limit).toBeCloseTo(before * DROP_BACKOFF, 9);
    });

    it("lets a party alone steer it, once the others have been quiet for PARTY_HORIZON_MS", () => {
      let state = withBystanders(settled(20, 100));
      const before = state.limit;
      state = { ...state, window: { ...state.window, startedAt: state.window.startedAt + PARTY_HORIZON_MS + 1 } };
      state = runMixedWindow(state, times(WINDOW_MIN_SAMPLES, drop("a")));
      expect(state.limit).toBeCloseTo(before * DROP_BACKOFF, 9);
    });
  });

  describe("idle recovery", () => {
    const LAB: AdaptiveBounds = { floor: 1, ceiling: 3, latencyTolerance: 1.5 };

    it("brings the limit back to the ceiling while nothing is in flight (the lab: 1.73 after a flood, then 5 s quiet)", () => {
      const idle = noteIdle({ ...initialAdaptive(LAB, T0), limit: 1.73, idle: null }, T0);
      expect(recoverWhileIdle(idle, LAB, T0).limit).toBe(1.73);
      const halfway = recoverWhileIdle(idle, LAB, T0 + IDLE_HALF_LIFE_MS);
      expect(halfway.limit).toBe(3);
      const wide = { ...LAB, ceiling: 100 };
      const big = noteIdle({ ...initialAdaptive(wide, T0), limit: 1, idle: null }, T0);
      expect(recoverWhileIdle(big, wide, T0 + IDLE_HALF_LIFE_MS).limit).toBeCloseTo(100 - 99 / 2, 9);
      expect(recoverWhileIdle(big, wide, T0 + 10 * IDLE_HALF_LIFE_MS).limit).toBe(100);
    });

    it("is the same however often it is asked at one moment, and stops once something is in flight", () => {
      const wide = { ...LAB, ceiling: 100 };
      const idle = noteIdle({ ...initialAdaptive(wide, T0), limit: 1, idle: null }, T0);
      const once = recoverWhileIdle(idle, wide, T0 + 2_000);
      expect(recoverWhileIdle(once, wide, T0 + 2_000)).toEqual(once);
      const busy = noteInFlight(once, 1);
      expect(busy.idle).toBeNull();
      expect(recoverWhileIdle(busy, wide, T0 + 60_000).limit).toBe(once.limit);
    });

    it("does not undo a window's cut in a hand-off between two requests", () => {
      const idle = noteIdle({ ...initialAdaptive(LAB, T0), limit: 2.65, idle: null }, T0);
      expect(recoverWhileIdle(idle, LAB, T0).limit).toBe(2.65);
      expect(recoverWhileIdle(idle, LAB, T0 + 10).limit).toBeLessThan(3);
    });

    it("never lowers a limit", () => {
      const idle = noteIdle({ ...initialAdaptive(LAB, T0), limit: 2.5, idle: null }, T0);
      const lower = { ...idle, idle: { since: T0, limit: 1 } };
      expect(recoverWhileIdle(lower, LAB, T0 + 10).limit).toBe(2.5);
    });
  });
});
