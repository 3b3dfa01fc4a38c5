/**
 * The adaptive origin limit: a concurrency window that follows what the origin can serve, in
 * the spirit of Netflix's Gradient2 and Envoy's adaptive concurrency, with AIMD on errors. Pure:
 * state in, state out, `now` passed in.
 *
 * Samples are gathered in windows (at least WINDOW_MIN_MS and `windowSamples(limit)` samples,
 * or WINDOW_MAX_MS with any sample). At each window's end:
 * - any drop (a 5xx or 429 from the origin, a deadline abort, a failed fetch): multiply by
 *   DROP_BACKOFF, as TCP halves its window on loss, but gentler;
 * - otherwise the latency gradient g = tolerance * baseline / windowLatency, clamped to
 *   [MIN_GRADIENT, 1]: below 1 the origin is queueing more than tolerated, and the limit shrinks
 *   by half the gradient's shortfall; at 1 it grows by sqrt(limit) / 2, but only when demand
 *   actually met the limit in the window (a limit nobody fills proves nothing).
 * The baseline is the lowest window latency seen, creeping up by BASELINE_DRIFT per window
 * towards higher ones, so a lasting slowdown of the origin is accepted within tens of windows
 * instead of pinning the limit at the floor forever, while a queue the guard itself builds
 * (which raises latency by the tolerance within a window or two) is caught long before.
 * The limit is a real number kept between floor and ceiling; callers use its integer part.
 */
export interface AdaptiveWindow {
  readonly startedAt: number;
  readonly samples: number;
  readonly latencySumMs: number;
  readonly drops: number;
  /** Highest in-flight count seen at an admission in this window. */
  readonly peakInFlight: number;
  /**
   * Demand met the limit in this window: an admission filled its class's share, or an arrival
   * had to wait or was refused for want of a slot. With reservations, `normal` traffic alone
   * never fills the whole limit, so the peak alone would never let the limit grow back.
   */
  readonly limited: boolean;
}

export interface AdaptiveState {
  readonly limit: number;
  /** Lowest recent window latency; null before the first window. */
  readonly baselineMs: number | null;
  /** The last closed window's mean latency, for stats. */
  readonly lastLatencyMs: number | null;
  readonly window: AdaptiveWindow;
}

export interface AdaptiveBounds {
  readonly floor: number;
  readonly ceiling: number;
  readonly latencyTolerance: number;
}

export const WINDOW_MIN_MS = 250;
export const WINDOW_MIN_SAMPLES = 10;
/** A window never closes on fewer samples than this (except at WINDOW_MAX_MS). */
export const WINDOW_FEWEST_SAMPLES = 3;

/**
 * Samples a window needs: WINDOW_MIN_SAMPLES, but no more than the limit (at least
 * WINDOW_FEWEST_SAMPLES). A low limit completes few requests per window; waiting for ten made
 * each step of a recovery from the floor take a whole second (the lab: 7 s back to the ceiling).
 */
export function windowSamples(limit: number): number {
  return Math.max(WINDOW_FEWEST_SAMPLES, Math.min(WINDOW_MIN_SAMPLES, Math.floor(limit)));
}
export const WINDOW_MAX_MS = 1_000;
export const DROP_BACKOFF = 0.8;
export const MIN_GRADIENT = 0.5;
export const BASELINE_DRIFT = 0.02;

function emptyWindow(now: number): AdaptiveWindow {
  return { startedAt: now, samples: 0, latencySumMs: 0, drops: 0, peakInFlight: 0, limited: false };
}

/** Starts at the ceiling: the operator's number is trusted until the origin shows strain. */
export function initialAdaptive(bounds: AdaptiveBounds, now: number): AdaptiveState {
  return { limit: bounds.ceiling, baselineMs: null, lastLatencyMs: null, window: emptyWindow(now) };
}

export function clampLimit(limit: number, bounds: AdaptiveBounds): number {
  return Math.min(bounds.ceiling, Math.max(bounds.floor, limit));
}

/** Notes the in-flight count at an admission, for the "did anyone fill the limit" test. */
export function noteInFlight(state: AdaptiveState, inFlight: number): AdaptiveState {
  if (inFlight <= state.window.peakInFlight) return state;
  return { ...state, window: { ...state.window, peakInFlight: inFlight } };
}

/** Notes that demand met the limit in this window (see `AdaptiveWindow.limited`). */
export function noteLimited(state: AdaptiveState): AdaptiveState {
  if (state.window.limited) return state;
  return { ...state, window: { ...state.window, limited: true } };
}

export type Sample = { readonly kind: "latency"; readonly ms: number } | { readonly kind: "drop" };

/** Adds one finished request and closes the window when it is due. */
export function recordSample(state: AdaptiveState, sample: Sample, bounds: AdaptiveBounds, now: number): AdaptiveState {
  const w = state.window;
  const window: AdaptiveWindow =
    sample.kind === "drop"
      ? { ...w, drops: w.drops + 1 }
      : { ...w, samples: w.samples + 1, latencySumMs: w.latencySumMs + Math.max(0, sample.ms) };
  const next = { ...state, window };
  return windowDue(window, now, state.limit) ? closeWindow(next, bounds, now) : next;
}

function windowDue(window: AdaptiveWindow, now: number, limit: number): boolean {
  const age = now - window.startedAt;
  const seen = window.samples + window.drops;
  // A clock that stepped back makes the age negative: the window just runs longer.
  return (age >= WINDOW_MIN_MS && seen >= windowSamples(limit)) || (age >= WINDOW_MAX_MS && seen > 0);
}

function closeWindow(state: AdaptiveState, bounds: AdaptiveBounds, now: number): AdaptiveState {
  const w = state.window;
  const fresh = emptyWindow(now);
  if (w.drops > 0) {
    return { ...state, limit: clampLimit(state.limit * DROP_BACKOFF, bounds), window: fresh };
  }
  const latency = w.latencySumMs / w.samples;
  const baseline = state.baselineMs ?? latency;
  const gradient = Math.min(1, Math.max(MIN_GRADIENT, (bounds.latencyTolerance * baseline) / Math.max(latency, 1e-3)));
  let limit = state.limit;
  if (gradient < 1) limit = state.limit * (1 - (1 - gradient) / 2);
  else if (w.limited || w.peakInFlight >= Math.floor(state.limit)) limit = state.limit + Math.sqrt(state.limit) / 2;
  const baselineMs = latency < baseline ? latency : baseline + BASELINE_DRIFT * (latency - baseline);
  return { limit: clampLimit(limit, bounds), baselineMs, lastLatencyMs: latency, window: fresh };
}

/** Bounds changed (a new config): the limit is carried over, clamped into the new range. */
export function rebound(state: AdaptiveState, bounds: AdaptiveBounds): AdaptiveState {
  return { ...state, limit: clampLimit(state.limit, bounds) };
}
