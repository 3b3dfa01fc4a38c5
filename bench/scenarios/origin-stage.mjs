// Shared by the origin-stage scenarios (global-sum, global-slow, origin-503, global-priority): the
// guard's global origin stage (issue #4) caps what all tenants together send to the origin, with an
// adaptive limit under a configured ceiling. These scenarios give the origin more, slower slots than
// the rest of the lab (C x2.5, S x2.5: the same capacity, 10 x 250 ms = 40 req/s by default), so a
// limit of a few slots more or less is visible, and configure the stage with a ceiling well above
// C, so the adaptive limit has to find the origin's real capacity by itself.
//
// The key check comes from the origin: every forwarded request carries the total limit it was
// admitted under (`x-guard-origin-limit`), and the origin counts an arrival that finds it holding
// (served + queued, that request included) more than that limit as a violation.
import { performance } from "node:perf_hooks";
import { jsonRequest, sleep } from "../http.mjs";
import { ms, pct, target } from "./shared.mjs";

/** Origin slots and service time, as multiples of the lab's: same capacity, more slots. */
const SLOT_FACTOR = 2.5;
const CEILING_FACTOR = 1.6; // the stage's maxInFlight, in origin slots: a ceiling, not the answer
const POLL_MS = 250; // GET /__guard/origin period during a phase
const SAMPLE_CAP = 4000; // samples kept per phase (17 minutes at 250 ms)
const STAGE_WAIT_MS = 20_000; // how long the stage's config may take to reach (or leave) the edge
const PROBE_EVERY_MS = 500;

/** The origin for these scenarios: {concurrency, serviceMs, jitter, capacity}. */
export function globalSizing(lab) {
  const concurrency = Math.max(2, Math.round(lab.sizing.concurrency * SLOT_FACTOR));
  const serviceMs = lab.sizing.serviceMs * SLOT_FACTOR;
  return { concurrency, serviceMs, jitter: lab.sizing.jitter, capacity: (concurrency * 1000) / serviceMs };
}

/** The origin stage's config (PUT /__guard/origin): an adaptive limit between 2 and 1.6 x C. */
export function stageConfig(sizing, extra = {}) {
  return {
    maxInFlight: Math.ceil(sizing.concurrency * CEILING_FACTOR),
    minInFlight: 2,
    adaptive: true,
    maxQueue: 64,
    maxWaitMs: 1000,
    ...extra,
  };
}

/**
 * Tenant limits that let one tenant offer `rate` req/s on its own (its rate limit 25% above it, at
 * least 10/s, and as many slots as the stage's ceiling): whatever is shed is the origin stage's doing.
 */
export function roomyLimits(lab, rate, ceiling, extra = {}) {
  return lab.limits(1, {
    rate: Math.max(10, Math.round(rate * 1.25)),
    burst: Math.max(15, Math.round(rate * 1.5)),
    maxInFlight: ceiling,
    maxQueue: Math.max(1, Math.round(rate * 1.5)),
    maxWaitMs: 1500,
    ...extra,
  });
}

/**
 * Runs `fn(ctx)` with the origin resized (to `sizing`, globalSizing's by default) and the origin
 * stage on; afterwards the stage is deleted and the origin restored, per-route service times
 * cleared, whatever happened. ctx: {sizing, config, notes, probe}.
 */
export async function withOriginStage(lab, extra, fn, sizing = globalSizing(lab)) {
  const config = stageConfig(sizing, extra);
  const notes = [];
  const probe = await lab.tenant("stage-probe", lab.limits());
  await lab.origin.config({ concurrency: sizing.concurrency, serviceMs: sizing.serviceMs, failForMs: 0 });
  try {
    const put = await lab.admin.putOrigin(config);
    const tookMs = await waitForStage(lab, probe, true);
    lab.log(`  origin stage on (at the edge after ${(tookMs / 1000).toFixed(1)} s)`);
    notes.push(
      `origin C=${sizing.concurrency} x ${sizing.serviceMs} ms (±${Math.round(sizing.jitter * 100)}%) = ${sizing.capacity} req/s; ` +
        `stage ${JSON.stringify(put?.config ?? put ?? config)}`,
    );
    return await fn({ sizing, config, notes, probe });
  } finally {
    await lab.admin.deleteOrigin().catch((e) => lab.log(`  DELETE /__guard/origin failed: ${e.message}`));
    await lab.origin
      .config({
        concurrency: lab.sizing.concurrency,
        serviceMs: lab.sizing.serviceMs,
        failForMs: 0,
        capacityHeader: null,
        routes: null,
      })
      .catch((e) => lab.log(`  origin config failed: ${e.message}`));
    // The next scenario expects the stage off: wait until forwarded requests stop carrying its limit.
    await waitForStage(lab, probe, false).catch((e) => lab.log(`  ${e.message}`));
  }
}

/**
 * Sends single probe requests through the guard until the origin sees them with (on) or without
 * (off) the x-guard-origin-limit header: the stage's config reaches the edge through KV, in seconds.
 * Returns how long it took.
 */
async function waitForStage(lab, probe, on) {
  const started = Date.now();
  while (Date.now() - started < STAGE_WAIT_MS) {
    await lab.origin.reset();
    const r = await jsonRequest(`${lab.guard.url}/stage-probe`, { headers: { "x-api-key": probe.key } }).catch(
      () => undefined,
    );
    const s = await lab.origin.stats();
    if (r?.status === 200 && s.received > 0 && s.limit.checked > 0 === on) return Date.now() - started;
    await sleep(PROBE_EVERY_MS);
  }
  throw new Error(`the origin stage did not ${on ? "reach" : "leave"} the edge within ${STAGE_WAIT_MS / 1000} s`);
}

/**
 * Polls GET /__guard/origin every 250 ms from the phase's first tick (pass `start` the elapsed ms
 * the phase's `during` hook gets, so samples share the load's clock) until `stop`.
 */
export function stagePoller(lab) {
  const samples = [];
  let t0;
  let stopped = false;
  let loop;
  let errors = 0;
  let lastError;
  async function poll() {
    while (!stopped) {
      const sent = performance.now();
      try {
        const body = await lab.admin.origin(2000);
        if (samples.length < SAMPLE_CAP) samples.push(sampleOf((sent + performance.now()) / 2 - t0, body?.stats));
      } catch (e) {
        errors++;
        lastError = e.message;
      }
      const wait = POLL_MS - (performance.now() - sent);
      if (wait > 0 && !stopped) await sleep(wait);
    }
  }
  return {
    start(elapsedMs) {
      if (t0 !== undefined) return;
      t0 = performance.now() - elapsedMs;
      loop = poll();
    },
    async stop() {
      stopped = true;
      await loop;
      return { samples, errors, lastError };
    },
  };
}

function sampleOf(t, s) {
  return {
    t: Math.round(t),
    effective: s?.limit?.effective ?? NaN,
    adaptive: s?.limit?.adaptive ?? null,
    capacity: s?.limit?.capacity ?? null,
    inFlight: s?.inFlight ?? NaN,
    queued: s?.queued ?? NaN,
    backoffMs: s?.backoffMs ?? 0,
    inFlightByPriority: s?.inFlightByPriority,
    // Not in the contract; the implementation reports the origin latency its limiter sees.
    latencyMs: s?.latency?.lastMs ?? NaN,
    // The latest window's latency over the parties' own baselines (1 = at baseline).
    ratio: s?.latency?.ratio ?? NaN,
    serviceMs: s?.latency?.serviceMs ?? NaN,
    ...unknownFields(s),
  };
}

/** The limit and latency fields sampleOf reads; any others are kept as they come (unknownFields). */
const KNOWN_FIELDS = {
  limit: ["ceiling", "floor", "adaptive", "capacity", "effective"],
  latency: ["ratio", "lastMs", "serviceMs"],
};

/**
 * Limit and latency fields this bench does not know yet, and a top-level `classes`, as they come:
 * the adaptive limit is being reworked (per-route latencies, perhaps), and a report should show
 * what a newer guard says without the bench guessing its shape. `{extra}` only when there are any.
 */
function unknownFields(s) {
  const extra = {};
  for (const [part, known] of Object.entries(KNOWN_FIELDS)) {
    for (const [k, v] of Object.entries(s?.[part] ?? {})) if (!known.includes(k)) extra[`${part}.${k}`] = v;
  }
  if (s?.classes !== undefined) extra.classes = s.classes;
  return Object.keys(extra).length ? { extra } : {};
}

/** after - before for every number in two counter records (nested objects too). */
export function counterDelta(before, after) {
  if (typeof after === "number") return after - (typeof before === "number" ? before : 0);
  if (!after || typeof after !== "object" || Array.isArray(after)) return after;
  const out = {};
  for (const [k, v] of Object.entries(after)) out[k] = counterDelta(before?.[k], v);
  return out;
}

/** Completion times (ms since phase start) of the 2xx answers of `which` streams (all if omitted), sorted. */
export function okCompletions(load, which) {
  const { rec } = load;
  const out = [];
  for (let i = 0; i < rec.count; i++) {
    if (which !== undefined && !which.includes(rec.stream[i])) continue;
    if (rec.status[i] >= 200 && rec.status[i] < 300) out.push(rec.tSend[i] + rec.latency[i]);
  }
  return Float64Array.from(out).sort();
}

/** Answers per second in [fromMs, toMs), from sorted completion times. */
export function ratePerS(done, fromMs, toMs) {
  return toMs > fromMs ? ((lowerBound(done, toMs) - lowerBound(done, fromMs)) * 1000) / (toMs - fromMs) : NaN;
}

/**
 * Time from `fromMs` to the end of the first one-second window (sliding in 100 ms steps) in which
 * at least `perSecond` 2xx answers completed; NaN if none before `toMs`.
 */
export function goodputRecoveryMs(done, fromMs, toMs, perSecond) {
  for (let w = fromMs; w + 1000 <= toMs; w += 100) {
    if (lowerBound(done, w + 1000) - lowerBound(done, w) >= perSecond) return w + 1000 - fromMs;
  }
  return NaN;
}

/** Median effective limit of the samples in [fromMs, toMs). */
export function limitLevel(samples, fromMs, toMs) {
  const v = samples
    .filter((s) => s.t >= fromMs && s.t < toMs && Number.isFinite(s.effective))
    .map((s) => s.effective)
    .sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : NaN;
}

/** Time from `fromMs` to the first sample whose effective limit is at least `level`; NaN if none. */
export function limitRecoveryMs(samples, fromMs, level) {
  const s = samples.find((x) => x.t >= fromMs && x.effective >= level);
  return s ? s.t - fromMs : NaN;
}

/** Jain's fairness index of non-negative shares: 1 when equal, 1/n when one takes everything. */
export function jain(xs) {
  let sum = 0;
  let sq = 0;
  for (const x of xs) {
    sum += x;
    sq += x * x;
  }
  return sq > 0 ? (sum * sum) / (xs.length * sq) : NaN;
}

/**
 * One row per second of the phase: 2xx and shed answers completed in it, the stage's effective
 * limit and in-flight count (min-max over the samples), queued and backoff at most, and events.
 */
export function timeline(load, samples, events = []) {
  const seconds = Math.ceil(load.durationMs / 1000);
  const bins = Array.from({ length: seconds }, () => ({ ok: 0, shed: 0, other: 0, s: [] }));
  const { rec } = load;
  for (let i = 0; i < rec.count; i++) {
    const b = bins[Math.floor((rec.tSend[i] + rec.latency[i]) / 1000)];
    if (!b) continue;
    const st = rec.status[i];
    if (st >= 200 && st < 300) b.ok++;
    else if (st === 429 || st === 503) b.shed++;
    else b.other++;
  }
  for (const s of samples) bins[Math.floor(s.t / 1000)]?.s.push(s);
  const head = [
    "s",
    "2xx",
    "shed",
    "other",
    "effective",
    "in flight",
    "queued max",
    "backoff ms",
    "origin ms",
    "event",
  ];
  const rows = bins.map((b, i) => [
    String(i),
    String(b.ok),
    String(b.shed),
    String(b.other),
    range(b.s.map((s) => s.effective)),
    range(b.s.map((s) => s.inFlight)),
    max(b.s.map((s) => s.queued)),
    max(b.s.map((s) => s.backoffMs)),
    range(b.s.map((s) => Math.round(s.latencyMs))),
    events
      .filter((e) => Math.floor(e.atMs / 1000) === i)
      .map((e) => e.label)
      .join("; "),
  ]);
  return { head, rows };
}

function range(values) {
  const v = values.filter(Number.isFinite);
  if (!v.length) return "-";
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  const f = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
  return lo === hi ? f(lo) : `${f(lo)}-${f(hi)}`;
}

export function max(values) {
  const v = values.filter(Number.isFinite);
  return v.length ? String(Math.max(...v)) : "-";
}

function lowerBound(sorted, x) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The checks every origin-stage scenario reports: the origin never held more than the limit each
 * request was admitted under, every forwarded request carried that limit, the origin never held
 * more than the stage's ceiling, and the stage holds nothing once the phase is over.
 */
export function stageChecks(name, p, config, stageAfter) {
  const o = p.originStats;
  const l = o.limit;
  const heldAfter = stageAfter?.inFlight;
  // With several shards the header carries the admitting shard's share, not the whole limit:
  // only the ceiling check below says something about the origin as a whole.
  const sharded = (config.shards ?? 1) > 1;
  return [
    target(
      name,
      "origin held <= x-guard-origin-limit at each arrival",
      "0 violations",
      sharded
        ? `n/a: ${config.shards} shards, the header is one shard's share (limits seen ${l.minSeen}-${l.maxSeen})`
        : `${l.violations} of ${l.checked} (max excess ${l.maxExcess}; held at most ${l.maxHolding}, limits seen ${l.minSeen}-${l.maxSeen})`,
      sharded || l.checked === 0 ? null : l.violations === 0,
    ),
    target(name, "forwarded without x-guard-origin-limit", "0", `${l.missing} of ${o.received}`, l.missing === 0),
    target(
      name,
      "origin max concurrency",
      `<= stage ceiling ${config.maxInFlight}`,
      `max ${o.maxOutstanding} (origin slots ${o.config?.concurrency})`,
      o.maxOutstanding <= config.maxInFlight,
    ),
    target(
      name,
      "origin stage in flight after the phase",
      "0",
      heldAfter === undefined ? "n/a" : String(heldAfter),
      heldAfter === undefined ? null : heldAfter === 0,
    ),
  ];
}

/** Reads the stage's stats after the phase, so its counters and leftovers can be reported. */
export async function stageStats(lab) {
  return (await lab.admin.origin().catch((e) => ({ error: e.message })))?.stats;
}

/** A one-line summary of the stage's counters over the phase. */
export function countersNote(delta) {
  if (!delta) return "origin stage counters: n/a";
  // The contract names `shed` a map of reasons; the implementation counts a total and its causes.
  const causes = typeof delta.shed === "number" ? delta.shedByCause : delta.shed;
  const shedTotal = typeof delta.shed === "number" ? delta.shed : sumValues(delta.shed);
  return (
    `origin stage over the phase: arrived ${delta.arrived}, admitted ${delta.admitted}, released ${delta.released}, ` +
    `shed ${shedTotal} (${Object.entries(causes ?? {})
      .filter(([, v]) => v)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}${delta.shedAtEdge !== undefined ? `; ${delta.shedAtEdge} of them at the edge` : ""}); ` +
    `drops seen ${delta.drops}, holds ${delta.holds ?? "n/a"}, reaped ${delta.reaped ?? "n/a"}; ` +
    `admitted by priority ${JSON.stringify(delta.admittedByPriority ?? {})}, shed by priority ${JSON.stringify(delta.shedByPriority ?? {})}`
  );
}

function sumValues(o) {
  return Object.values(o ?? {}).reduce((n, v) => n + (typeof v === "number" ? v : 0), 0);
}

/**
 * A recovery goal: `ms` is NaN when it did not happen before the phase ended, which is a miss
 * (reported with how long was left), not an unmeasurable figure.
 */
export function recoveryTarget(scenario, name, recoveredMs, leftMs, goalMs, detail = "") {
  const measured = Number.isFinite(recoveredMs)
    ? `${ms(recoveredMs)}${detail}`
    : `not within the ${(leftMs / 1000).toFixed(0)} s left${detail}`;
  return target(
    scenario,
    name,
    `<= ${goalMs / 1000} s`,
    measured,
    Number.isFinite(recoveredMs) && recoveredMs <= goalMs,
  );
}

/** "12.3/s = 31%" of capacity. */
export const perSecond = (v, capacity) => `${Number.isFinite(v) ? v.toFixed(1) : "n/a"}/s = ${pct(v / capacity)}`;
export { ms };
