/**
 * The adaptive origin limit: a concurrency window that follows what the origin can serve, in
 * the spirit of Netflix's Gradient2 and Envoy's adaptive concurrency, with AIMD on errors. Pure:
 * state in, state out, `now` passed in.
 *
 * Samples are gathered in windows (at least WINDOW_MIN_MS and `windowSamples(limit)` samples,
 * or WINDOW_MAX_MS with any sample), then weighed by party (see party-evidence.ts: latency
 * against each party's own per-route baseline, drops only when most recent parties saw them):
 * - drops agreed (5xx or 429 from the origin, a guard-budget deadline abort, a failed fetch):
 *   multiply by DROP_BACKOFF, as TCP halves its window on loss, but gentler;
 * - otherwise the latency gradient g = tolerance / ratio, clamped to [MIN_GRADIENT, 1]: below 1
 *   the origin is queueing more than tolerated, and the limit shrinks by half the gradient's
 *   shortfall; at 1 it grows by sqrt(limit) / 2 when demand met the limit in the window, or when
 *   latency is back at its baseline (within AT_BASELINE): a limit held low by reservations or
 *   by a lull must still find its way back;
 * - while nothing is in flight at all, the gap to the ceiling halves every IDLE_HALF_LIFE_MS:
 *   a quiet origin is not an overloaded one, and a limit must not stay at its floor for good.
 * The limit is a real number kept between floor and ceiling; `slotsOf` turns it into slots.
 */
import {
  type Evidence,
  MAX_PARTIES,
  MAX_ROUTES_PER_PARTY,
  NO_EVIDENCE,
  type WindowSum,
  weighWindow,
} from "./party-evidence";

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
  /**
   * Latency per party and route class, for the per-party weighing: every sample counts. At most
   * WINDOW_KEYS keys and MAX_ROUTES_PER_PARTY per party; a sample for a key past those only
   * counts towards closing the window (shed-newest).
   */
  readonly sums: readonly WindowSum[];
  /** Distinct parties with a drop in this window, at most MAX_PARTIES. */
  readonly dropParties: readonly string[];
}

export interface AdaptiveState {
  readonly limit: number;
  /** The last closed window's latency ratio (lower median over parties), for stats. */
  readonly lastRatio: number | null;
  /** The last closed window's mean latency, for stats. */
  readonly lastLatencyMs: number | null;
  readonly evidence: Evidence;
  readonly window: AdaptiveWindow;
  /** Since when nothing has been in flight, and the limit then; null while something is. */
  readonly idle: { readonly since: number; readonly limit: number } | null;
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
  return Math.max(WINDOW_FEWEST_SAMPLES, Math.min(WINDOW_MIN_SAMPLES, slotsOf(limit)));
}

/**
 * The slots a limit gives: the nearest whole number. Rounding down made one slightly slow
 * window (4 to 3.98, from jitter alone) cost a whole slot, a quarter of a small origin; to the
 * nearest, a small limit loses a slot on two such windows, or on one real rise.
 */
export function slotsOf(limit: number): number {
  return Math.round(limit);
}
export const WINDOW_MAX_MS = 1_000;
export const DROP_BACKOFF = 0.8;
export const MIN_GRADIENT = 0.5;
/** Latency at most this far over its baselines counts as back at them: the limit may grow. */
export const AT_BASELINE = 1.1;
/** Party and route keys a window weighs (every party its MAX_ROUTES_PER_PARTY). */
export const WINDOW_KEYS = 256;
/** With nothing in flight, the gap between the limit and the ceiling halves this often. */
export const IDLE_HALF_LIFE_MS = 1_000;

function emptyWindow(now: number): AdaptiveWindow {
  return {
    startedAt: now,
    samples: 0,
    latencySumMs: 0,
    drops: 0,
    peakInFlight: 0,
    limited: false,
    sums: [],
    dropParties: [],
  };
}

/** Starts at the ceiling: the operator's number is trusted until the origin shows strain. */
export function initialAdaptive(bounds: AdaptiveBounds, now: number): AdaptiveState {
  return {
    limit: bounds.ceiling,
    lastRatio: null,
    lastLatencyMs: null,
    evidence: NO_EVIDENCE,
    window: emptyWindow(now),
    idle: { since: now, limit: bounds.ceiling },
  };
}

export function clampLimit(limit: number, bounds: AdaptiveBounds): number {
  return Math.min(bounds.ceiling, Math.max(bounds.floor, limit));
}

/** Notes the in-flight count at an admission: the origin is busy, and was it filled. */
export function noteInFlight(state: AdaptiveState, inFlight: number): AdaptiveState {
  const idle = inFlight > 0 ? null : state.idle;
  if (inFlight <= state.window.peakInFlight && idle === state.idle) return state;
  return { ...state, idle, window: { ...state.window, peakInFlight: Math.max(inFlight, state.window.peakInFlight) } };
}

/** Nothing is in flight any more, as of `now`: the idle recovery starts from the limit now. */
export function noteIdle(state: AdaptiveState, now: number): AdaptiveState {
  return state.idle ? state : { ...state, idle: { since: now, limit: state.limit } };
}

/**
 * The limit after the idle time so far: the gap to the ceiling halved per IDLE_HALF_LIFE_MS,
 * and closed once under one slot after a whole half-life (slots are whole numbers; a
 * mere hand-off between two requests must not undo what the last window learnt). Idempotent
 * for one `now`.
 */
export function recoverWhileIdle(state: AdaptiveState, bounds: AdaptiveBounds, now: number): AdaptiveState {
  if (!state.idle) return state;
  const idleMs = Math.max(0, now - state.idle.since);
  const gap = (bounds.ceiling - state.idle.limit) * 0.5 ** (idleMs / IDLE_HALF_LIFE_MS);
  const closed = gap < 1 && idleMs >= IDLE_HALF_LIFE_MS;
  const limit = clampLimit(closed ? bounds.ceiling : bounds.ceiling - gap, bounds);
  return limit > state.limit ? { ...state, limit } : state;
}

/** Notes that demand met the limit in this window (see `AdaptiveWindow.limited`). */
export function noteLimited(state: AdaptiveState): AdaptiveState {
  if (state.window.limited) return state;
  return { ...state, window: { ...state.window, limited: true } };
}

export type Sample =
  | { readonly kind: "latency"; readonly ms: number; readonly party: string; readonly route: string }
  | { readonly kind: "drop"; readonly party: string };

/** Adds one finished request and closes the window when it is due. */
export function recordSample(state: AdaptiveState, sample: Sample, bounds: AdaptiveBounds, now: number): AdaptiveState {
  const next = { ...state, window: withSample(state.window, sample) };
  return windowDue(next.window, now, state.limit) ? closeWindow(next, bounds, now) : next;
}

function withSample(w: AdaptiveWindow, sample: Sample): AdaptiveWindow {
  if (sample.kind === "drop") {
    const known = w.dropParties.includes(sample.party) || w.dropParties.length >= MAX_PARTIES;
    return { ...w, drops: w.drops + 1, dropParties: known ? w.dropParties : [...w.dropParties, sample.party] };
  }
  const ms = Math.max(0, sample.ms);
  return { ...w, samples: w.samples + 1, latencySumMs: w.latencySumMs + ms, sums: withSum(w.sums, sample, ms) };
}

function withSum(
  sums: readonly WindowSum[],
  sample: { party: string; route: string },
  ms: number,
): readonly WindowSum[] {
  const at = sums.findIndex((s) => s.party === sample.party && s.route === sample.route);
  const old = sums[at];
  if (old) {
    const next = [...sums];
    next[at] = { ...old, sumMs: old.sumMs + ms, count: old.count + 1 };
    return next;
  }
  const ofParty = sums.filter((s) => s.party === sample.party).length;
  if (sums.length >= WINDOW_KEYS || ofParty >= MAX_ROUTES_PER_PARTY) return sums;
  return [...sums, { party: sample.party, route: sample.route, sumMs: ms, count: 1 }];
}

function windowDue(window: AdaptiveWindow, now: number, limit: number): boolean {
  const age = now - window.startedAt;
  const seen = window.samples + window.drops;
  // A clock that stepped back makes the age negative: the window just runs longer.
  return (age >= WINDOW_MIN_MS && seen >= windowSamples(limit)) || (age >= WINDOW_MAX_MS && seen > 0);
}

function closeWindow(state: AdaptiveState, bounds: AdaptiveBounds, now: number): AdaptiveState {
  const w = state.window;
  const verdict = weighWindow(state.evidence, w.sums, w.dropParties, now);
  const closed = {
    ...state,
    evidence: verdict.evidence,
    lastRatio: verdict.ratio,
    lastLatencyMs: w.samples > 0 ? w.latencySumMs / w.samples : state.lastLatencyMs,
    window: emptyWindow(now),
  };
  if (verdict.dropsAgreed) return { ...closed, limit: clampLimit(state.limit * DROP_BACKOFF, bounds) };
  // A window of drops nobody else saw, and no answers: nothing to grow or shrink on.
  if (verdict.ratio === null || w.samples === 0) return closed;
  const gradient = Math.min(1, Math.max(MIN_GRADIENT, bounds.latencyTolerance / Math.max(verdict.ratio, 1e-3)));
  let limit = state.limit;
  if (gradient < 1) limit = state.limit * (1 - (1 - gradient) / 2);
  else if (w.limited || w.peakInFlight >= slotsOf(state.limit) || verdict.ratio <= AT_BASELINE) {
    limit = state.limit + Math.sqrt(state.limit) / 2;
  }
  return { ...closed, limit: clampLimit(limit, bounds) };
}

/** Bounds changed (a new config): the limit is carried over, clamped into the new range. */
export function rebound(state: AdaptiveState, bounds: AdaptiveBounds): AdaptiveState {
  return { ...state, limit: clampLimit(state.limit, bounds) };
}
