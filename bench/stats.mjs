// Figures from a load phase's records: percentiles, goodput, shed breakdown, time series.
// Pure functions over the typed arrays that load.mjs fills.
import { ALL_SIGNALS, SIGNAL } from "./load.mjs";

export const LATE_SLACK_MS = 50; // an answer later than budget + this is "late"

/** Nearest-rank percentile of an ascending-sorted typed array; NaN when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function latencySummary(values) {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    mean: sorted.length ? sum / sorted.length : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

const isOk = (s) => s >= 200 && s < 300;
export const isShed = (s) => s === 429 || s === 503;

/**
 * Summary of one stream (or several: `which` is a stream index, an array of them, or undefined for all).
 * `fromMs`/`toMs` bound the goodput window by completion time, so a warm-up or the initial bucket
 * burst can be left out; every other figure covers all requests sent in the phase.
 */
export function summarize(load, which, { fromMs = 0, toMs = load.durationMs } = {}) {
  const pick = which === undefined ? () => true : Array.isArray(which) ? (s) => which.includes(s) : (s) => s === which;
  const { rec, reasons } = load;
  const streams = load.streams.filter((_, i) => pick(i));
  const sent = sum(streams.map((s) => s.sent));
  const dropped = sum(streams.map((s) => s.dropped));
  const byStatus = {};
  const shedByReason = {};
  const errors = {};
  const missing = Object.fromEntries(Object.keys(SIGNAL).map((k) => [k, 0]));
  const okLat = [];
  const shedLat = [];
  let ok = 0,
    shed = 0,
    shedAllSignals = 0,
    lateOk = 0,
    lateAny = 0,
    withBudget = 0,
    goodputCount = 0;
  let overBudgetMaxMs = -Infinity; // answered requests: latency minus budget, at worst

  for (let i = 0; i < rec.count; i++) {
    if (!pick(rec.stream[i])) continue;
    const status = rec.status[i];
    const lat = rec.latency[i];
    const reason = reasons[rec.reason[i]];
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const budget = rec.budget[i];
    if (budget > 0) {
      withBudget++;
      if (status !== 0) overBudgetMaxMs = Math.max(overBudgetMaxMs, lat - budget);
    }
    const late = budget > 0 && lat > budget + LATE_SLACK_MS;
    if (late && status !== 0) lateAny++;
    if (isOk(status)) {
      ok++;
      okLat.push(lat);
      if (late) lateOk++;
      const doneAt = rec.tSend[i] + lat;
      if (doneAt >= fromMs && doneAt < toMs) goodputCount++;
    } else if (isShed(status)) {
      shed++;
      shedLat.push(lat);
      shedByReason[reason] = (shedByReason[reason] ?? 0) + 1;
      if (rec.signals[i] === ALL_SIGNALS) shedAllSignals++;
      for (const [k, bit] of Object.entries(SIGNAL)) if (!(rec.signals[i] & bit)) missing[k]++;
    } else if (status === 0) {
      errors[reason] = (errors[reason] ?? 0) + 1;
    }
  }
  const windowS = Math.max(0.001, (toMs - fromMs) / 1000);
  return {
    offeredRate: sum(streams.map((s) => s.rate)),
    sent,
    droppedByGenerator: dropped,
    unrecorded: sum(streams.map((s) => s.unrecorded)),
    byStatus,
    ok,
    successRate: sent + dropped > 0 ? ok / (sent + dropped) : NaN,
    goodputPerS: goodputCount / windowS,
    okLatency: latencySummary(okLat),
    shed,
    shedLatency: latencySummary(shedLat),
    shedByReason,
    shedAllSignalsShare: shed > 0 ? shedAllSignals / shed : NaN,
    shedMissingSignal: shed > 0 ? missing : {},
    timeouts504: byStatus[504] ?? 0,
    withBudget,
    lateOk,
    lateAny,
    overBudgetMaxMs: withBudget > 0 ? overBudgetMaxMs : NaN,
    errors,
  };
}

/** Per-bin counts by send time: total, ok, shed (429/503), 504, other. */
export function timeSeries(load, binMs, which) {
  const bins = Math.ceil(load.durationMs / binMs);
  const out = Array.from({ length: bins }, (_, b) => ({ t: b * binMs, total: 0, ok: 0, shed: 0, s504: 0, other: 0 }));
  const { rec } = load;
  for (let i = 0; i < rec.count; i++) {
    if (which !== undefined && rec.stream[i] !== which) continue;
    const bin = out[Math.min(bins - 1, Math.floor(rec.tSend[i] / binMs))];
    const s = rec.status[i];
    bin.total++;
    if (isOk(s)) bin.ok++;
    else if (isShed(s)) bin.shed++;
    else if (s === 504) bin.s504++;
    else bin.other++;
  }
  return out;
}

/**
 * Time after `fromMs` until the shed share settles: the start of the first bin from which every
 * later bin stays within `tolerance` of the share over the last `tailShare` of the phase.
 */
export function settleTime(series, fromMs, { tolerance = 0.15, tailShare = 0.3 } = {}) {
  const after = series.filter((b) => b.t >= fromMs && b.total > 0);
  if (after.length < 3) return { settleMs: NaN, finalShedShare: NaN };
  const tail = after.slice(Math.floor(after.length * (1 - tailShare)));
  const finalShedShare = sum(tail.map((b) => b.shed)) / Math.max(1, sum(tail.map((b) => b.total)));
  let settledAt = after[after.length - 1].t;
  for (let i = after.length - 1; i >= 0; i--) {
    if (Math.abs(after[i].shed / after[i].total - finalShedShare) > tolerance) break;
    settledAt = after[i].t;
  }
  return { settleMs: settledAt - fromMs, finalShedShare };
}

function sum(xs) {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
