import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AdaptiveBounds,
  type AdaptiveState,
  BASELINE_DRIFT,
  DROP_BACKOFF,
  MIN_GRADIENT,
  WINDOW_MAX_MS,
  WINDOW_MIN_MS,
  WINDOW_MIN_SAMPLES,
  initialAdaptive,
  noteInFlight,
  rebound,
  recordSample,
} from "../../src/origin/adaptive-limit";
import { PROPERTY_RUNS } from "./property-runs";

const T0 = 1_700_000_000_000;
const BOUNDS: AdaptiveBounds = { floor: 2, ceiling: 40, latencyTolerance: 1.5 };

/** A state mid-life: limit and baseline as given, a fresh window opened at `at`. */
function settled(limit: number, baselineMs: number | null, at = T0): AdaptiveState {
  return { ...initialAdaptive(BOUNDS, at), limit, baselineMs };
}

interface WindowShape {
  readonly latencyMs: number;
  /** In flight at the busiest admission of the window; the limit's integer part by default. */
  readonly peak?: number;
  readonly drops?: number;
}

/** Runs one window that closes on its last sample: WINDOW_MIN_SAMPLES samples, WINDOW_MIN_MS in. */
function runWindow(state: AdaptiveState, shape: WindowShape, bounds = BOUNDS): AdaptiveState {
  const end = state.window.startedAt + WINDOW_MIN_MS;
  const drops = shape.drops ?? 0;
  let next = noteInFlight(state, shape.peak ?? Math.floor(state.limit));
  for (let i = 0; i < WINDOW_MIN_SAMPLES - drops; i += 1) {
    next = recordSample(next, { kind: "latency", ms: shape.latencyMs }, bounds, end);
  }
  for (let i = 0; i < drops; i += 1) next = recordSample(next, { kind: "drop" }, bounds, end);
  expect(next.window.startedAt, "the window closed").toBe(end);
  return next;
}

describe("adaptive origin limit", () => {
  it("starts at the ceiling with no baseline: the operator's number is trusted at first", () => {
    const state = initialAdaptive(BOUNDS, T0);
    expect(state).toMatchObject({ limit: 40, baselineMs: null, lastLatencyMs: null });
    expect(state.window).toMatchObject({ startedAt: T0, samples: 0, latencySumMs: 0, drops: 0, peakInFlight: 0 });
  });

  it("takes the first window's latency as the baseline without moving the limit down", () => {
    const state = runWindow(settled(20, null), { latencyMs: 300, peak: 5 });
    expect(state).toMatchObject({ limit: 20, baselineMs: 300, lastLatencyMs: 300 });
  });

  describe("windows", () => {
    it("stays open before WINDOW_MIN_MS, however many samples arrive", () => {
      let state = settled(20, 100);
      for (let i = 0; i < 5 * WINDOW_MIN_SAMPLES; i += 1) {
        state = recordSample(state, { kind: "latency", ms: 1_000 }, BOUNDS, T0 + WINDOW_MIN_MS - 1);
      }
      expect(state.window).toMatchObject({ startedAt: T0, samples: 5 * WINDOW_MIN_SAMPLES });
      expect(state.limit).toBe(20);
    });

    it("stays open past WINDOW_MIN_MS until WINDOW_MIN_SAMPLES are seen", () => {
      let state = settled(20, 100);
      for (let i = 0; i < WINDOW_MIN_SAMPLES - 1; i += 1) {
        state = recordSample(state, { kind: "latency", ms: 1_000 }, BOUNDS, T0 + WINDOW_MAX_MS - 1);
      }
      expect(state.window.samples).toBe(WINDOW_MIN_SAMPLES - 1);
      state = recordSample(state, { kind: "latency", ms: 1_000 }, BOUNDS, T0 + WINDOW_MAX_MS - 1);
      expect(state.window).toMatchObject({ startedAt: T0 + WINDOW_MAX_MS - 1, samples: 0 });
    });

    it("closes at WINDOW_MAX_MS with a single sample", () => {
      const state = recordSample(settled(20, 100), { kind: "latency", ms: 120 }, BOUNDS, T0 + WINDOW_MAX_MS);
      expect(state.window).toMatchObject({ startedAt: T0 + WINDOW_MAX_MS, samples: 0 });
      expect(state.lastLatencyMs).toBe(120);
    });

    it("counts a drop as a seen sample when closing at WINDOW_MAX_MS", () => {
      const state = recordSample(settled(20, 100), { kind: "drop" }, BOUNDS, T0 + WINDOW_MAX_MS);
      expect(state.window.startedAt).toBe(T0 + WINDOW_MAX_MS);
      expect(state.limit).toBeCloseTo(20 * DROP_BACKOFF, 9);
    });

    it("does not close a window early when the clock steps back: the window just runs longer", () => {
      let state = settled(20, 100);
      for (let i = 0; i < WINDOW_MIN_SAMPLES; i += 1) {
        state = recordSample(state, { kind: "latency", ms: 1_000 }, BOUNDS, T0 - 5_000);
      }
      state = recordSample(state, { kind: "drop" }, BOUNDS, T0 - 60_000);
      expect(state.window).toMatchObject({ startedAt: T0, samples: WINDOW_MIN_SAMPLES, drops: 1 });
      expect(state.limit).toBe(20);
      state = recordSample(state, { kind: "latency", ms: 1_000 }, BOUNDS, T0 + WINDOW_MIN_MS);
      expect(state.window.startedAt).toBe(T0 + WINDOW_MIN_MS);
      expect(state.limit).toBeCloseTo(20 * DROP_BACKOFF, 9);
    });

    it("treats a negative latency as 0 rather than letting it lower the mean", () => {
      let state = settled(20, 100);
      state = recordSample(state, { kind: "latency", ms: -500 }, BOUNDS, T0);
      expect(state.window.latencySumMs).toBe(0);
    });
  });

  describe("growth", () => {
    it("grows by sqrt(limit) / 2 when the window reached the limit and latency is within tolerance", () => {
      const state = runWindow(settled(16, 100), { latencyMs: 140, peak: 16 });
      expect(state.limit).toBeCloseTo(16 + Math.sqrt(16) / 2, 9);
    });

    it("does not grow when nobody filled the limit: an unused limit proves nothing", () => {
      const state = runWindow(settled(16, 100), { latencyMs: 100, peak: 15 });
      expect(state.limit).toBe(16);
    });

    it("counts the limit as reached at its integer part", () => {
      const state = runWindow(settled(16.7, 100), { latencyMs: 100, peak: 16 });
      expect(state.limit).toBeCloseTo(16.7 + Math.sqrt(16.7) / 2, 9);
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
      expect(state.baselineMs).toBe(100);
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
      expect(state.baselineMs).toBe(60);
    });

    it("creeps towards a slower window by BASELINE_DRIFT of the gap", () => {
      const state = runWindow(settled(20, 100), { latencyMs: 500 });
      expect(state.baselineMs).toBeCloseTo(100 + BASELINE_DRIFT * 400, 9);
      expect(state.lastLatencyMs).toBe(500);
    });

    it("accepts a lasting slowdown: the limit falls, then grows again once the baseline has drifted up", () => {
      let state = settled(BOUNDS.ceiling, null);
      for (let i = 0; i < 5; i += 1) state = runWindow(state, { latencyMs: 100 });
      expect(state).toMatchObject({ limit: BOUNDS.ceiling, baselineMs: 100 });

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
      }),
      fc.record({ kind: fc.constant("drop" as const), dt: fc.integer({ min: -2_000, max: 1_500 }) }),
      fc.record({ kind: fc.constant("peak" as const), inFlight: fc.integer({ min: 0, max: 100 }) }),
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
          else {
            now += e.dt;
            state = recordSample(state, e.kind === "drop" ? { kind: "drop" } : { kind: "latency", ms: e.ms }, b, now);
          }
          expect(state.limit).toBeGreaterThanOrEqual(b.floor);
          expect(state.limit).toBeLessThanOrEqual(b.ceiling);
          expect(Number.isFinite(state.limit)).toBe(true);
        }
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });
});
