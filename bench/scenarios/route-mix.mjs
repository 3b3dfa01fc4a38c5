// Route mix: does the origin stage's adaptive limit recover when an API has routes of very
// different speeds? The limit compares the latency it sees with a baseline learned on the traffic
// it saw before: a flood of fast requests teaches it a low one, and slower requests after it read as
// overload. The origin (bench/origin.mjs) gives /v1/fast and /v1/slow service times of their own,
// on the same slots. Two parts, each through the guard and then through HAProxy (one backend:
// maxconn = the stage's ceiling, the stage's queue bound and `timeout queue`) on the same seeded
// arrivals:
//   a  the lab case: 3 slots; a low-priority flood of 100 ms requests at 3x for 8 s, 5 s quiet,
//      then 9 ordinary requests of 300 ms from three tenants at once, with 8 s to wait: how many
//      are admitted, and the stage's limits going into that phase and after it;
//   b  capacity recovery: 4 slots; a low flood of 50 ms requests at 3x for 8 s, 5 s quiet, then
//      normal traffic of 200 ms requests at 1.2x the slow route's capacity from three tenants for
//      10 s: goodput in its first 5 s, p50/p99, shed share, and how long until the stage's
//      effective limit is back at its ceiling.
// Tenants have roomy limits (timeoutMs 10 s, in-flight far above the stage's): only the stage sheds.
// GET /__guard/origin is polled every 250 ms from the flood's start to the end; the report shows
// the limits per second beside the latencies the limiter compares (bench/scenarios/stage-series.mjs).
// The flood and part b's last phase follow --scale; the quiet spell does not: it is the condition
// under test (a limit that nothing brings back while the origin is quiet), and a shorter one would
// judge a limit that recovers with time differently from run to run.
import { performance } from "node:perf_hooks";
import { ensureHaproxy, startHaproxy } from "../haproxy.mjs";
import { sleep } from "../http.mjs";
import {
  counterDelta,
  countersNote,
  okCompletions,
  ratePerS,
  recoveryTarget,
  roomyLimits,
  stageChecks,
  stagePoller,
  stageStats,
  withOriginStage,
} from "./origin-stage.mjs";
import { ms, pct, phaseRow, seedOf, target, warm } from "./shared.mjs";
import { atLevelForGoodMs, limitsAround, limitText, SERIES_INTRO, stageSeries } from "./stage-series.mjs";

export const name = "route-mix";
export const needsGuard = true;

const FAST = "/v1/fast";
const SLOW = "/v1/slow";
const FLOOD_MULTIPLE = 3; // the low flood, in multiples of the fast route's capacity
const FLOOD_MS = 8000;
const FLOOD_WARM_MS = 1000; // the flood's 2xx/s is counted from here
const QUIET_MS = 5000; // not scaled (see above)
const CALLERS = 3; // tenants of the ordinary (normal-priority) slow traffic
const TIMEOUT_MS = 10_000; // the tenants' timeoutMs and HAProxy's `timeout server`: nothing times out
const BURST_PHASE_MS = 1000; // part a sends its 9 at t=0; their answers come in the phase's drain
const DRAIN_MARGIN_MS = 2000; // beyond a full queue wait and two slow service times
const GOODPUT_WINDOW_MS = 5000;
const GOODPUT_GOAL = 0.95;
// Below its ceiling the stage cannot fill the origin's slots, so the goodput goal needs the limit
// back within the window it is measured in.
const CEILING_GOAL_MS = GOODPUT_WINDOW_MS;

const PARTS = [
  {
    id: "a",
    title: "lab case",
    slots: 3,
    fastMs: 100,
    slowMs: 300,
    stage: { maxInFlight: 3, minInFlight: 1, adaptive: true, maxQueue: 64, maxWaitMs: 8000 },
    burstPerCaller: 3,
  },
  {
    id: "b",
    title: "capacity recovery",
    slots: 4,
    fastMs: 50,
    slowMs: 200,
    // maxWaitMs: the stage's default; 1.2x has to shed its excess somewhere.
    stage: { maxInFlight: 4, minInFlight: 1, adaptive: true, maxQueue: 64, maxWaitMs: 1000 },
    slowMultiple: 1.2,
    phase3Ms: 10_000,
  },
  {
    // b with every class allowed the whole limit: the default shares keep 1 of 4 slots out of
    // `normal`'s reach (80% of 4, rounded down), which alone caps b at 75%. This part measures
    // what is left: the adaptive limit and the hand-offs.
    id: "c",
    title: "capacity recovery, no class reservations",
    slots: 4,
    fastMs: 50,
    slowMs: 200,
    stage: {
      maxInFlight: 4,
      minInFlight: 1,
      adaptive: true,
      maxQueue: 64,
      maxWaitMs: 1000,
      reservations: { low: 1, normal: 1, high: 1, critical: 1 },
    },
    slowMultiple: 1.2,
    phase3Ms: 10_000,
  },
];

export async function run(lab) {
  const started = Date.now();
  const hx = await ensureHaproxy(lab.log);
  const out = { rows: [], notes: [], targets: [], tables: [], timelines: [], figures: {} };
  out.notes.push(
    hx.bin
      ? `HAProxy ${hx.version}${hx.installed ? " (installed for this run)" : ""}`
      : `HAProxy side empty: ${hx.note}`,
  );
  for (const part of PARTS) {
    const r = await runPart(lab, part, hx.bin);
    for (const k of ["rows", "notes", "targets", "tables", "timelines"]) out[k].push(...r[k]);
    out.figures[part.id] = r.figures;
  }
  out.notes.push(`the scenario took ${Math.round((Date.now() - started) / 1000)} s`);
  return out;
}

/** One part: the origin resized with its two routes, the stage on, the guard's side then HAProxy's. */
async function runPart(lab, part, haproxyBin) {
  const plan = planOf(lab, part);
  const sizing = { concurrency: part.slots, serviceMs: part.fastMs, jitter: lab.sizing.jitter, capacity: plan.fastCap };
  return withOriginStage(
    lab,
    part.stage,
    async ({ config, notes }) => {
      await lab.origin.config({ routes: { [FAST]: part.fastMs, [SLOW]: part.slowMs } });
      const tenants = await partTenants(lab, part, plan);
      const guard = await guardSide(lab, part, plan, tenants);
      const haproxy = haproxyBin
        ? await haproxySide(lab, part, plan, tenants, haproxyBin)
        : { skipped: "haproxy not available" };
      return partResult(part, plan, config, notes, guard, haproxy);
    },
    sizing,
  );
}

/** Rates, phase lengths and the streams of one part; the same for the guard and HAProxy. */
function planOf(lab, part) {
  const fastCap = (part.slots * 1000) / part.fastMs;
  const slowCap = (part.slots * 1000) / part.slowMs;
  const burst = part.burstPerCaller !== undefined;
  const wait = part.stage.maxWaitMs + 2 * part.slowMs * (1 + lab.sizing.jitter) + DRAIN_MARGIN_MS;
  return {
    fastCap,
    slowCap,
    floodRate: FLOOD_MULTIPLE * fastCap,
    floodMs: lab.dur(FLOOD_MS),
    // Wider than the 5 s goodput window, whatever --scale says.
    phase3Ms: burst ? BURST_PHASE_MS : Math.max(GOODPUT_WINDOW_MS + 1000, lab.dur(part.phase3Ms)),
    // The flood's queue and the slow requests drain by themselves: nothing is cut at the phase end.
    drainMs: wait,
    callerRate: burst ? 0 : (part.slowMultiple * slowCap) / CALLERS,
    slowLabel: burst
      ? `${CALLERS * part.burstPerCaller} x ${part.slowMs} ms at once`
      : `normal ${part.slowMultiple}x on ${SLOW}`,
  };
}

/** A flooding tenant and the callers, roomy enough that only the origin stage sheds. */
async function partTenants(lab, part, plan) {
  const inFlight = 2 * (part.stage.maxInFlight + part.stage.maxQueue);
  const limits = (rate) => roomyLimits(lab, rate, inFlight, { timeoutMs: TIMEOUT_MS });
  const flooder = await lab.tenant(`rmix-${part.id}-flood`, limits(plan.floodRate));
  const callers = [];
  for (let i = 0; i < CALLERS; i++) {
    callers.push(await lab.tenant(`rmix-${part.id}-t${i + 1}`, limits(plan.callerRate)));
  }
  for (const t of [flooder, ...callers]) await warm(lab.guard.url, t);
  return { flooder, callers };
}

function floodStreams(plan, tenants) {
  return [{ name: "low flood", rate: plan.floodRate, priority: "low", path: `${FAST}/items`, tenant: tenants.flooder }];
}

function slowStreams(part, plan, tenants) {
  return tenants.callers.map((tenant, i) => ({
    name: `t${i + 1}`,
    rate: plan.callerRate,
    burst: part.burstPerCaller,
    path: `${SLOW}/report`,
    tenant,
  }));
}

async function guardSide(lab, part, plan, tenants) {
  const poller = stagePoller(lab);
  const before = await stageStats(lab);
  let s;
  let polled;
  try {
    s = await phases(lab, part, plan, tenants, { target: "guard", onFlood: (e) => poller.start(e) });
  } finally {
    polled = await poller.stop();
  }
  const after = await stageStats(lab);
  return { ...s, polled, stageAfter: after, counters: counterDelta(before?.counters, after?.counters) };
}

async function haproxySide(lab, part, plan, tenants, bin) {
  let hx;
  try {
    hx = await startHaproxy({
      bin,
      originUrl: lab.originUrl,
      serverTimeoutMs: TIMEOUT_MS,
      backends: [
        {
          name: "stage",
          maxconn: part.stage.maxInFlight,
          maxQueue: part.stage.maxQueue,
          queueTimeoutMs: part.stage.maxWaitMs,
        },
      ],
    });
  } catch (e) {
    return { skipped: `haproxy did not start: ${String(e.message).split("\n")[0]}` };
  }
  try {
    await warm(hx.url);
    return await phases(lab, part, plan, tenants, { target: "haproxy", baseUrl: hx.url, cpuOf: hx });
  } finally {
    await hx.stop();
  }
}

/**
 * The flood, the quiet spell (from the flood's last answer: its queue drains first), and phase 3.
 * Times are on the flood's clock (its first tick is 0), which the stage poller shares.
 */
async function phases(lab, part, plan, tenants, t) {
  const base = { target: t.target, baseUrl: t.baseUrl, cpuOf: t.cpuOf, drainMs: plan.drainMs };
  let floodT0;
  const flood = await lab.phase({
    ...base,
    label: `${part.id} ${t.target}: low flood ${FLOOD_MULTIPLE}x on ${FAST}`,
    durationMs: plan.floodMs,
    goodputFromMs: FLOOD_WARM_MS,
    seed: seedOf(lab, name, part.id, "flood"),
    streams: floodStreams(plan, tenants),
    during: (elapsed) => {
      floodT0 ??= performance.now() - elapsed;
      t.onFlood?.(elapsed);
    },
  });
  const floodEndMs = lastAnswerMs(flood.load);
  await sleep(Math.max(0, floodT0 + floodEndMs + QUIET_MS - performance.now()));
  let slowT0;
  const slow = await lab.phase({
    ...base,
    label: `${part.id} ${t.target}: ${plan.slowLabel}`,
    durationMs: plan.phase3Ms,
    seed: seedOf(lab, name, part.id, "slow"),
    streams: slowStreams(part, plan, tenants),
    during: (elapsed) => {
      slowT0 ??= performance.now() - elapsed;
    },
  });
  const slowAtMs = slowT0 - floodT0;
  return { flood, slow, floodEndMs, slowAtMs, quietMs: slowAtMs - floodEndMs, slowEndMs: lastAnswerMs(slow.load) };
}

/** When the phase's last answer (or error) came, ms after its start. */
function lastAnswerMs(load) {
  let last = 0;
  for (let i = 0; i < load.rec.count; i++) last = Math.max(last, load.rec.tSend[i] + load.rec.latency[i]);
  return last;
}

/** Figures of one side; part a counts its 9, part b its goodput. */
function sideFigures(part, plan, s) {
  if (s.skipped) return s;
  const all = s.slow.all;
  const fig = {
    quietMs: s.quietMs,
    floodGoodputShare: s.flood.all.goodputPerS / plan.fastCap,
    floodShedShare: s.flood.all.shed / s.flood.all.sent,
    sent: all.sent,
    ok: all.ok,
    okByCaller: s.slow.byStream.map((x) => x.ok),
    p50: all.okLatency.p50,
    p99: all.okLatency.p99,
    max: all.okLatency.max,
    shedShare: all.sent ? all.shed / all.sent : NaN,
    shedByReason: all.shedByReason,
    noAnswer: all.errors,
    originByRoute: { flood: s.flood.originStats.byRoute, slow: s.slow.originStats.byRoute },
  };
  if (part.burstPerCaller === undefined) {
    fig.goodputShare = ratePerS(okCompletions(s.slow.load), 0, GOODPUT_WINDOW_MS) / plan.slowCap;
  }
  if (s.polled) Object.assign(fig, stageFigures(part, plan, s));
  return fig;
}

/**
 * The guard only: its limits going into phase 3 and at the end, the lowest in phase 3, and how long
 * into phase 3's arrivals the effective limit was back at its ceiling for good.
 */
function stageFigures(part, plan, s) {
  const { samples } = s.polled;
  const during = samples.filter((x) => x.t >= s.slowAtMs && x.t <= s.slowAtMs + s.slowEndMs);
  return {
    limits: limitsAround(samples, s.slowAtMs),
    minEffectiveInPhase3: lowest(during.map((x) => x.effective)),
    backAtCeilingMs: atLevelForGoodMs(samples, s.slowAtMs, s.slowAtMs + plan.phase3Ms, part.stage.maxInFlight),
    seriesEndMs: samples.at(-1)?.t ?? NaN,
    pollErrors: s.polled.errors,
  };
}

function lowest(values) {
  const v = values.filter(Number.isFinite);
  return v.length ? Math.min(...v) : NaN;
}

function partResult(part, plan, config, notes, guard, haproxy) {
  const g = sideFigures(part, plan, guard);
  const h = sideFigures(part, plan, haproxy);
  const label = `${part.id} (${part.title})`;
  const rows = [...sideRows(part, plan, guard), ...(haproxy.skipped ? [] : sideRows(part, plan, haproxy))];
  const partNotes = [
    ...notes.map((n) => `${part.id}: ${n}`),
    `${part.id}: routes ${FAST} ${part.fastMs} ms (capacity ${plan.fastCap}/s), ${SLOW} ${part.slowMs} ms (${plan.slowCap}/s); ` +
      `quiet spell guard ${ms(g.quietMs)}, HAProxy ${h.skipped ? "n/a" : ms(h.quietMs)}; origin saw by route: guard ${JSON.stringify(g.originByRoute)}`,
    `${part.id}: ${countersNote(guard.counters)}`,
    `${part.id}: the low flood may fill only its reserved share of the stage's limit (reservations in the stage config ` +
      "above); HAProxy keeps no such reserve, so the flood's 2xx/s differ by design, not by a fault",
  ];
  if (h.skipped) partNotes.push(`${part.id}: HAProxy side skipped: ${h.skipped}`);
  const series = stageSeries(guard.polled.samples, seriesPhases(plan, guard), g.seriesEndMs);
  return {
    rows,
    notes: partNotes,
    targets: partTargets(part, plan, config, guard, g, h),
    tables: [comparisonTable(part, plan, label, g, h)],
    timelines: [
      {
        title: `${name} ${label}: the origin stage's limits, flood to end (guard)`,
        intro: SERIES_INTRO,
        ...series,
      },
    ],
    figures: { plan, stage: config, guard: { ...g, samples: guard.polled.samples }, haproxy: h },
  };
}

function seriesPhases(plan, s) {
  return [
    { label: "flood", atMs: 0, load: s.flood.load },
    { label: "drain", atMs: plan.floodMs },
    { label: "quiet", atMs: Math.max(plan.floodMs, s.floodEndMs) },
    { label: "phase 3", atMs: s.slowAtMs, load: s.slow.load },
    { label: "after", atMs: s.slowAtMs + s.slowEndMs },
  ];
}

function sideRows(part, plan, s) {
  const who = `${part.id} ${s.flood.target}`;
  const slowRow = phaseRow(name, `${who}: ${plan.slowLabel}`, { ...s.slow, capacity: plan.slowCap });
  // Part a's 9 all arrive at once: a rate over its 1 s phase would mean nothing.
  if (part.burstPerCaller !== undefined) Object.assign(slowRow, { goodputPerS: NaN, goodputShareOfCapacity: NaN });
  return [
    phaseRow(name, `${who}: low flood ${FLOOD_MULTIPLE}x on ${FAST}`, { ...s.flood, capacity: plan.fastCap }),
    slowRow,
  ];
}

function partTargets(part, plan, config, guard, g, h) {
  const vsH = (text) => (h.skipped ? "" : ` (HAProxy ${text})`);
  const t = [];
  if (part.burstPerCaller !== undefined) {
    t.push(
      target(
        name,
        `a: ordinary ${SLOW} requests admitted after a low ${FAST} flood and ${QUIET_MS / 1000} s quiet`,
        `${g.sent} of ${g.sent}`,
        `${g.ok} of ${g.sent}; limits before ${limitText(g.limits.before)}, at the end ${limitText(g.limits.end)}${vsH(`${h.ok} of ${h.sent}`)}`,
        g.ok === g.sent,
      ),
    );
  } else {
    t.push(
      target(
        name,
        `${part.id}: goodput in the first ${GOODPUT_WINDOW_MS / 1000} s of ${SLOW} traffic at ${part.slowMultiple}x`,
        `>= ${pct(GOODPUT_GOAL)} of ${plan.slowCap}/s`,
        `${pct(g.goodputShare)}${vsH(pct(h.goodputShare))}`,
        Number.isFinite(g.goodputShare) ? g.goodputShare >= GOODPUT_GOAL : null,
      ),
      recoveryTarget(
        name,
        `${part.id}: effective limit back at its ceiling (${config.maxInFlight}) for the rest of phase 3`,
        g.backAtCeilingMs,
        plan.phase3Ms,
        CEILING_GOAL_MS,
        ` (going in: ${limitText(g.limits.before)})`,
      ),
    );
  }
  const checks = stageChecks(name, { originStats: mergedOrigin(guard) }, config, guard.stageAfter);
  return [...t, ...checks.map((c) => ({ ...c, name: `${part.id}: ${c.name} (flood and phase 3)` }))];
}

/** The origin's limit checks over both of the guard's phases, for one set of stageChecks. */
function mergedOrigin(s) {
  const a = s.flood.originStats;
  const b = s.slow.originStats;
  const limit = {};
  for (const k of ["checked", "missing", "violations", "malformed"]) limit[k] = a.limit[k] + b.limit[k];
  for (const k of ["maxExcess", "maxHolding", "maxSeen"]) limit[k] = Math.max(a.limit[k], b.limit[k]);
  const seen = [a, b].filter((o) => o.limit.checked > 0).map((o) => o.limit.minSeen);
  limit.minSeen = seen.length ? Math.min(...seen) : 0;
  return {
    limit,
    received: a.received + b.received,
    maxOutstanding: Math.max(a.maxOutstanding, b.maxOutstanding),
    config: b.config,
  };
}

function comparisonTable(part, plan, label, g, h) {
  const both = (f) => [f(g), h.skipped ? "n/a" : f(h)];
  const rows = [
    ["flood 2xx/s (share of the fast route's capacity)", ...both((x) => pct(x.floodGoodputShare))],
    ["flood shed", ...both((x) => pct(x.floodShedShare))],
    ["quiet spell (flood's last answer to phase 3)", ...both((x) => ms(x.quietMs))],
  ];
  if (part.burstPerCaller !== undefined) {
    rows.push(
      [`admitted of ${g.sent} (by tenant)`, ...both((x) => `${x.ok} (${x.okByCaller.join("/")})`)],
      ["2xx latency p50 / max", ...both((x) => `${ms(x.p50)} / ${ms(x.max)}`)],
      ["not admitted, by reason", ...both((x) => JSON.stringify({ ...x.shedByReason, ...x.noAnswer }))],
    );
  } else {
    rows.push(
      [`goodput, first ${GOODPUT_WINDOW_MS / 1000} s (of ${plan.slowCap}/s)`, ...both((x) => pct(x.goodputShare))],
      ["2xx p50 / p99", ...both((x) => `${ms(x.p50)} / ${ms(x.p99)}`)],
      ["shed", ...both((x) => pct(x.shedShare))],
      [
        "effective limit at its ceiling for good from (0: never left it)",
        Number.isFinite(g.backAtCeilingMs) ? ms(g.backAtCeilingMs) : `not within phase 3 (${plan.phase3Ms / 1000} s)`,
        "fixed maxconn",
      ],
    );
  }
  rows.push(
    ["stage limits going into phase 3", limitText(g.limits.before), "-"],
    ["lowest effective limit in phase 3", String(g.minEffectiveInPhase3), "-"],
    ["stage limits at the end", limitText(g.limits.end), "-"],
  );
  return {
    section: "Route mix beside HAProxy",
    title: `${label}: ${part.slots} slots, stage ${JSON.stringify(part.stage)}; phase 3: ${plan.slowLabel}`,
    head: ["figure", "guard", "HAProxy"],
    rows,
  };
}
