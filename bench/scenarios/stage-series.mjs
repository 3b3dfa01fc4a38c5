// The origin stage's limits over several phases in a row, one row per second. timeline() in
// origin-stage.mjs covers one phase; a story that spans a flood, a quiet spell and what follows
// needs them on one clock: the poller's (from the first phase's start), each phase placed on it by
// its offset. Per second: the phase(s), the answers completed, the adaptive estimate and the
// effective limit (min-max over the polls), what the stage held and queued at most, the latencies
// its limiter compares, and any stats fields the bench does not know yet (see sampleOf).
import { isShed } from "../stats.mjs";
import { max } from "./origin-stage.mjs";

const EXTRA_CHARS = 160; // of the unknown fields' JSON per row: enough to see what they are

/** What the columns mean, for the report (a timeline's `intro`). */
export const SERIES_INTRO = [
  "Per second since the flood started, on one clock through all phases: `2xx` and `shed` (429/503) answers",
  "completed in it; the stage's `adaptive` estimate and `effective` limit (min-max over GET /__guard/origin",
  "polled every 250 ms), in flight and queued at most; `ratio`, the latest window's latency over the",
  "parties' own baselines (1 = at baseline); `last` (the latest window's mean) and `service` (average)",
  "latency in ms as the stage reports them.",
];

/**
 * @param {object[]} samples  stagePoller samples (t: ms on the poller's clock)
 * @param {{label: string, atMs: number, load?: object}[]} phases  in order, atMs on that clock; a
 *   phase's `load` (from lab.phase) adds its answers to the second they completed in
 * @param {number} endMs  where the series stops
 */
export function stageSeries(samples, phases, endMs) {
  const bins = Array.from({ length: Math.max(1, Math.ceil(endMs / 1000)) }, () => ({ ok: 0, shed: 0, s: [] }));
  for (const p of phases) if (p.load) addAnswers(bins, p.load, p.atMs);
  for (const s of samples) bins[Math.floor(s.t / 1000)]?.s.push(s);
  const withExtra = samples.some((s) => s.extra);
  const head = ["s", "phase", "2xx", "shed", "adaptive", "effective", "in flight", "queued", "ratio", "last"];
  head.push("service", ...(withExtra ? ["other fields (last poll)"] : []));
  const rows = bins.map((b, i) => [
    String(i),
    phasesIn(phases, i * 1000, (i + 1) * 1000),
    String(b.ok),
    String(b.shed),
    span(b.s.map((s) => s.adaptive)),
    span(b.s.map((s) => s.effective)),
    max(b.s.map((s) => s.inFlight)),
    max(b.s.map((s) => s.queued)),
    span(b.s.map((s) => s.ratio)),
    span(b.s.map((s) => Math.round(s.latencyMs))),
    span(b.s.map((s) => Math.round(s.serviceMs))),
    ...(withExtra ? [extraText(b.s)] : []),
  ]);
  return { head, rows };
}

/** The last sample before `atMs` and the last of all: the limits going into a phase and at the end. */
export function limitsAround(samples, atMs) {
  const before = samples.filter((s) => s.t < atMs).at(-1);
  const pick = (s) => s && { t: s.t, adaptive: s.adaptive, effective: s.effective, ratio: s.ratio };
  return { before: pick(before), end: pick(samples.at(-1)) };
}

/**
 * From `fromMs`, how long until the effective limit is at `level` for good (through `toMs`): 0 when
 * it never left it, NaN when it is below at the end. A limit that touches the level for one poll
 * and falls again has not recovered.
 */
export function atLevelForGoodMs(samples, fromMs, toMs, level) {
  const inWindow = samples.filter((s) => s.t >= fromMs && s.t <= toMs && Number.isFinite(s.effective));
  const lastBelow = inWindow.findLastIndex((s) => s.effective < level);
  if (lastBelow === -1) return inWindow.length ? 0 : NaN;
  const next = inWindow[lastBelow + 1];
  return next ? next.t - fromMs : NaN;
}

/** "adaptive 1.73, effective 1" for one limitsAround reading. */
export const limitText = (l) =>
  l ? `adaptive ${l.adaptive ?? "n/a"}, effective ${Number.isFinite(l.effective) ? l.effective : "n/a"}` : "n/a";

function addAnswers(bins, load, offsetMs) {
  const { rec } = load;
  for (let i = 0; i < rec.count; i++) {
    const b = bins[Math.floor((offsetMs + rec.tSend[i] + rec.latency[i]) / 1000)];
    if (!b) continue;
    if (rec.status[i] >= 200 && rec.status[i] < 300) b.ok++;
    else if (isShed(rec.status[i])) b.shed++;
  }
}

/** Labels of the phases that overlap [fromMs, toMs); a phase lasts until the next one starts. */
function phasesIn(phases, fromMs, toMs) {
  const labels = phases
    .filter((p, i) => p.atMs < toMs && (phases[i + 1]?.atMs ?? Infinity) > fromMs)
    .map((p) => p.label);
  return labels.join(" > ") || "-";
}

/** "1.73" or "1-3" over the finite values; two decimals, as the stage rounds its adaptive limit. */
function span(values) {
  const v = values.filter(Number.isFinite);
  if (!v.length) return "-";
  const f = (x) => String(Math.round(x * 100) / 100);
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return lo === hi ? f(lo) : `${f(lo)}-${f(hi)}`;
}

function extraText(samples) {
  const last = samples.filter((s) => s.extra).at(-1);
  if (!last) return "-";
  const text = JSON.stringify(last.extra);
  return text.length > EXTRA_CHARS ? `${text.slice(0, EXTRA_CHARS - 1)}…` : text;
}
