// Configuration matrix beside HAProxy: the guard and HAProxy, given the same limits, in front of the
// same origin, offered the same seeded arrivals, in the same run; a forward-only Worker under the
// same `wrangler dev` as the runtime's baseline. The figures are judged in their worst cell.
//
// Origins (bench/origin.mjs reconfigured between groups; 4 slots each, ±jitter as the lab's):
//   a  4 x  80 ms =  50 req/s   3x, 5x, 10x; quiet beside a flood; critical under a low flood
//   b  4 x 160 ms =  25 req/s   the same
//   c  4 x  20 ms = 200 req/s   80 req/s, where nothing should be shed, and 3x (600 req/s) only
//                               when the pass-through Worker carries that rate on this machine
// Tenant configs, the same numbers in HAProxy (see bench/haproxy.mjs for the mapping):
//   api   maxInFlight 4 (the origin's slots), maxQueue 32, maxWaitMs 250, timeoutMs 1000
//   long  maxInFlight 4, maxQueue = capacity x 1.5 s, maxWaitMs 1500, timeoutMs 2500 (the wait
//         plus the 1000 ms of the api config for the origin, so a full wait is not cut short)
//   rate and burst 50x the capacity in both: only capacity sheds. The quiet and the flooding tenant
//   split maxInFlight and maxQueue in halves (as noisy does); in HAProxy each has its own backend
//   and server maxconn, routed by x-api-key. HAProxy's `timeout server` is 1000 ms in both.
// Cells (one guard phase, then one HAProxy phase on the same seed; the pass-through at each rate):
//   load Nx      one tenant at N x capacity: goodput (2xx completed after the warm-up, per s) as a
//                share of capacity, p99 of the 2xx; for the guard also the share of its sheds decided
//                at the edge and its object calls per arrival (GET /__guard/tenants/{name} counters:
//                shedAtEdge / shed and sum(calls) / arrived), and CPU per request (workerd by pid;
//                haproxy by pid) against the pass-through's at the same rate
//   quiet        a tenant at 30% of capacity alone, then beside a tenant flooding at 5x
//   critical     x-priority: critical at 20% of capacity under x-priority: low at 4x, one tenant
// The pass-through phases run with the origin's slots opened wide (enough for the offered rate), so
// they measure what the runtime carries at that rate, not the origin: `carried` is its 2xx share of
// the offered requests, and "sustains" means >= 95% carried with a p99 under a second.
import { ensureHaproxy, startHaproxy } from "../haproxy.mjs";
import { cpuPerRequest, ms, pct, phaseRow, seedOf, target, times, warm } from "./shared.mjs";

export const name = "matrix";
export const needsGuard = false; // without the guard the HAProxy and pass-through columns still run

const SLOTS = 4;
const ORIGINS = [
  { id: "a", serviceMs: 80, loads: [3, 5, 10], isolation: true },
  { id: "b", serviceMs: 160, loads: [3, 5, 10], isolation: true },
  { id: "c", serviceMs: 20, loads: [80 / 200, 3], isolation: false, needsPassthrough: [3] },
];
const CONFIGS = [
  { id: "api", limits: () => ({ maxQueue: 32, maxWaitMs: 250, timeoutMs: 1000 }) },
  { id: "long", limits: (cap) => ({ maxQueue: Math.round(cap * 1.5), maxWaitMs: 1500, timeoutMs: 2500 }) },
];
const HAPROXY_SERVER_TIMEOUT_MS = 1000;
const RATE_FACTOR = 50; // rate and burst, in multiples of the capacity: far above any offered load
const QUIET_LOAD = 0.3;
const FLOOD_LOAD = 5;
const CRITICAL_LOAD = 0.2;
const LOW_LOAD = 4;
const REPORT_LAG_MS = 1500; // edge sheds reach the tenant object's counters in batches, within ~1 s
const SUSTAIN = { carried: 0.95, p99Ms: 1000 };
const TIMES = {
  full: { loadMs: 6000, warmMs: 1500, quietMs: 8000, criticalMs: 6000 },
  quick: { loadMs: 4000, warmMs: 1000, quietMs: 5000, criticalMs: 4000 },
};
const QUICK_ORIGINS = ["a"];
const GOALS = {
  goodput: 0.95,
  goodputVsHaproxy: 0.97,
  goodput10x: 0.9,
  p99VsHaproxy: 1.2,
  quietSuccess: 0.99,
  quietP99: 1.3,
  criticalSuccess: 0.99,
  edgeShare: 0.95,
  callsPerArrival: 0.05,
  cpuVsPassthrough: 0.6,
};
/** The pass-through Worker's fixed-429 path (bench/passthrough/worker.js). */
const FLOOR_PATH = "/__bench/floor";
const CELL_MARGIN_MS = 60_000; // no new cell starts this close to the run's watchdog

export async function run(lab) {
  const t = lab.quick ? TIMES.quick : TIMES.full;
  const origins = ORIGINS.filter((o) =>
    (lab.matrixOrigins ?? (lab.quick ? QUICK_ORIGINS : undefined) ?? [o.id]).includes(o.id),
  );
  const ctx = { lab, t, rows: [], notes: [], cells: [], pass: {}, haproxy: undefined, passthrough: undefined };
  const hx = await ensureHaproxy(lab.log);
  if (hx.bin) {
    ctx.haproxyBin = hx.bin;
    ctx.notes.push(`HAProxy ${hx.version}${hx.installed ? " (installed from the Debian package for this run)" : ""}`);
  } else {
    ctx.notes.push(`HAProxy column empty: ${hx.note}`);
  }
  if (!lab.guard) ctx.notes.push("guard column empty: the guard is not running");
  if (lab.startPassthrough) {
    ctx.passthrough = await lab.startPassthrough().catch((e) => {
      ctx.notes.push(`pass-through Worker did not start: ${firstLine(e.message)}`);
      return undefined;
    });
  } else {
    ctx.notes.push("pass-through column empty: no wrangler in this run (--no-guard)");
  }
  const started = Date.now();
  try {
    for (const origin of origins) {
      const t0 = Date.now();
      await runOrigin(ctx, origin);
      ctx.notes.push(`origin ${origin.id}: ${Math.round((Date.now() - t0) / 1000)} s`);
    }
    ctx.notes.push(`the matrix took ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    await lab.origin.config({ concurrency: lab.sizing.concurrency, serviceMs: lab.sizing.serviceMs }).catch(() => {});
    await ctx.passthrough?.stop();
  }
  const targets = judge(ctx.cells, ctx.pass);
  return {
    rows: ctx.rows,
    notes: ctx.notes,
    targets,
    tables: tables(ctx.cells, ctx.pass, targets, t, origins),
    figures: { times: t, origins, configs: CONFIGS.map((c) => c.id), cells: ctx.cells, passthrough: ctx.pass },
  };
}

async function runOrigin(ctx, origin) {
  const { lab } = ctx;
  const cap = (SLOTS * 1000) / origin.serviceMs;
  const o = { ...origin, capacity: cap };
  await lab.origin.config({ concurrency: SLOTS, serviceMs: origin.serviceMs });
  lab.log(`  origin ${o.id}: ${SLOTS} x ${o.serviceMs} ms = ${cap} req/s`);

  // The runtime's baseline first: it decides whether cells the machine may not carry are run.
  for (const m of o.loads) {
    if (!ctx.passthrough || outOfTime(lab)) break;
    const key = `${o.id}/${loadId(o, m)}`;
    ctx.pass[key] = await passthroughCell(ctx, o, m).catch((e) => ({ error: firstLine(e.message) }));
  }

  for (const config of CONFIGS) {
    if (outOfTime(lab)) {
      ctx.notes.push(`origin ${o.id}, config ${config.id}: skipped, the run's time budget is spent`);
      continue;
    }
    const limits = tenantLimits(o, config);
    let hx;
    if (ctx.haproxyBin) {
      hx = await startHaproxy({
        bin: ctx.haproxyBin,
        originUrl: lab.originUrl,
        serverTimeoutMs: HAPROXY_SERVER_TIMEOUT_MS,
        backends: [
          backend("api", undefined, limits.full),
          backend("quiet", "quiet", limits.half),
          backend("flood", "flood", limits.half),
        ],
      }).catch((e) => {
        ctx.notes.push(`HAProxy for ${o.id}/${config.id} did not start: ${firstLine(e.message)}`);
        return undefined;
      });
    }
    try {
      const group = { ctx, o, config, limits, hx };
      for (const m of o.loads) {
        if (outOfTime(lab)) break;
        const pass = ctx.pass[`${o.id}/${loadId(o, m)}`];
        if (o.needsPassthrough?.includes(m) && !(pass && sustains(pass))) {
          ctx.notes.push(
            `${o.id}/${config.id} ${loadId(o, m)}: skipped, the pass-through Worker ${pass?.error ? `failed (${pass.error})` : pass ? `carried ${pct(pass.carried)} with p99 ${ms(pass.p99)}` : "was not measured"} at ${Math.round(m * cap)} req/s`,
          );
          continue;
        }
        ctx.cells.push(await loadCell(group, m));
      }
      if (o.isolation && !outOfTime(lab)) ctx.cells.push(await quietCell(group));
      if (o.isolation && !outOfTime(lab)) ctx.cells.push(await criticalCell(group));
    } finally {
      await hx?.stop();
    }
  }
}

function tenantLimits(o, config) {
  const big = Math.round(RATE_FACTOR * o.capacity);
  const c = { rate: big, burst: big, maxInFlight: SLOTS, ...config.limits(o.capacity) };
  const half = {
    ...c,
    maxInFlight: Math.max(1, Math.floor(c.maxInFlight / 2)),
    maxQueue: Math.max(1, Math.floor(c.maxQueue / 2)),
  };
  return { full: c, half };
}

const backend = (name, apiKey, l) => ({
  name,
  apiKey,
  maxconn: l.maxInFlight,
  maxQueue: l.maxQueue,
  queueTimeoutMs: l.maxWaitMs,
});
const loadId = (o, m) => (m < 1 ? `${Math.round(m * o.capacity)}/s` : `${m}x`);
const outOfTime = (lab) => lab.budgetEndsAt !== undefined && Date.now() > lab.budgetEndsAt - CELL_MARGIN_MS;

/**
 * Runs one side of a cell. `streams` name their tenant by role ("load", "quiet", ...): for the guard
 * each role gets a fresh tenant with its limits, for HAProxy its x-api-key routes it to its backend.
 */
async function side(group, kind, { cellId, streams, durationMs, goodputFromMs }) {
  const { ctx, o, config, hx } = group;
  const { lab } = ctx;
  const seed = seedOf(lab, o.id, cellId);
  const label = `${o.id}/${config.id} ${cellId} ${kind}`;
  try {
    let p;
    if (kind === "guard") {
      if (!lab.guard) return { skipped: "guard not running" };
      if (!lab.guard.alive()) return { error: "wrangler dev exited" };
      const tenants = {};
      for (const s of streams) {
        if (tenants[s.role]) continue;
        tenants[s.role] = await lab.tenant(
          `mx-${o.id}-${config.id}-${cellId.replace(/[^a-z0-9]/g, "")}-${s.role}`,
          s.limits,
        );
        await warm(lab.guard.url, tenants[s.role]);
      }
      p = await lab.phase({
        label,
        target: "guard",
        durationMs,
        goodputFromMs,
        seed,
        statsAfterMs: REPORT_LAG_MS,
        streams: streams.map((s) => ({ name: s.name, rate: s.rate, priority: s.priority, tenant: tenants[s.role] })),
      });
      p.tenantNames = Object.fromEntries(Object.entries(tenants).map(([role, tn]) => [role, tn.name]));
    } else {
      if (!hx) return { skipped: ctx.haproxyBin ? "haproxy did not start" : "no haproxy" };
      for (const s of streams) if (s.apiKey) await warm(hx.url, { key: s.apiKey });
      p = await lab.phase({
        label,
        target: "haproxy",
        baseUrl: hx.url,
        cpuOf: hx,
        durationMs,
        goodputFromMs,
        seed,
        streams: streams.map((s) => ({
          name: s.name,
          rate: s.rate,
          priority: s.priority,
          headers: s.apiKey ? { "x-api-key": s.apiKey } : {},
        })),
      });
    }
    ctx.rows.push(phaseRow("matrix", label, { ...p, capacity: o.capacity }));
    return p;
  } catch (e) {
    lab.log(`    ${label} failed: ${firstLine(e?.stack ?? e)}`);
    return { error: firstLine(e?.message ?? e) };
  }
}

async function loadCell(group, m) {
  const { ctx, o, config, limits } = group;
  const cellId = loadId(o, m);
  const spec = {
    cellId,
    durationMs: ctx.t.loadMs,
    goodputFromMs: ctx.t.warmMs,
    streams: [{ name: cellId, role: "load", rate: m * o.capacity, limits: limits.full }],
  };
  const g = await side(group, "guard", spec);
  const h = await side(group, "haproxy", spec);
  return {
    kind: "load",
    origin: o.id,
    config: config.id,
    cell: cellId,
    multiple: m,
    offered: m * o.capacity,
    capacity: o.capacity,
    limits: limits.full,
    guard: sideFigures(g, o.capacity, 0, ["load"]),
    haproxy: sideFigures(h, o.capacity, 0),
  };
}

async function quietCell(group) {
  const { ctx, o, config, limits } = group;
  const quiet = { name: "quiet", role: "quiet", rate: QUIET_LOAD * o.capacity, limits: limits.half, apiKey: "quiet" };
  const flood = { name: "flood", role: "flood", rate: FLOOD_LOAD * o.capacity, limits: limits.half, apiKey: "flood" };
  const alone = { cellId: "quiet-alone", durationMs: ctx.t.quietMs, goodputFromMs: ctx.t.warmMs, streams: [quiet] };
  const both = {
    cellId: "quiet+flood",
    durationMs: ctx.t.quietMs,
    goodputFromMs: ctx.t.warmMs,
    streams: [flood, quiet],
  };
  const cell = { kind: "quiet", origin: o.id, config: config.id, cell: "quiet 30% + flood 5x", capacity: o.capacity };
  for (const kind of ["guard", "haproxy"]) {
    const a = await side(group, kind, alone);
    const b = await side(group, kind, both);
    const q = sideFigures(b, o.capacity / 2, 1, ["quiet"]);
    const qa = sideFigures(a, o.capacity / 2, 0, ["quiet"]);
    cell[kind] = {
      quiet: q,
      alone: qa,
      flood: sideFigures(b, o.capacity / 2, 0, ["flood"]),
      p99Ratio: q.p99 / qa.p99,
      error: q.error ?? qa.error,
      skipped: q.skipped ?? qa.skipped,
    };
  }
  return cell;
}

async function criticalCell(group) {
  const { ctx, o, config, limits } = group;
  const l = { ...limits.full, maxClientPriority: "critical" };
  const spec = {
    cellId: "critical",
    durationMs: ctx.t.criticalMs,
    goodputFromMs: ctx.t.warmMs,
    streams: [
      { name: "low", role: "mixed", rate: LOW_LOAD * o.capacity, priority: "low", limits: l },
      { name: "critical", role: "mixed", rate: CRITICAL_LOAD * o.capacity, priority: "critical", limits: l },
    ],
  };
  const cell = {
    kind: "critical",
    origin: o.id,
    config: config.id,
    cell: "critical 20% + low 4x",
    capacity: o.capacity,
  };
  for (const kind of ["guard", "haproxy"]) {
    const p = await side(group, kind, spec);
    cell[kind] = { critical: sideFigures(p, o.capacity, 1, ["mixed"]), low: sideFigures(p, o.capacity, 0) };
  }
  return cell;
}

async function passthroughCell(ctx, o, m) {
  const { lab } = ctx;
  const rate = m * o.capacity;
  // Enough slots that the origin never queues at this rate: the runtime is what is measured.
  const slots = Math.ceil((rate * o.serviceMs * (1 + lab.sizing.jitter) * 2) / 1000) + SLOTS;
  await lab.origin.config({ concurrency: slots });
  try {
    await warm(ctx.passthrough.url);
    const p = await passthroughPhase(ctx, o, m, "pass-through");
    ctx.rows.push(
      phaseRow("matrix", `${o.id} ${loadId(o, m)} pass-through (${slots} origin slots)`, {
        ...p,
        capacity: o.capacity,
      }),
    );
    const s = p.all;
    const floor = await floorPhase(ctx, o, m);
    return {
      origin: o.id,
      cell: loadId(o, m),
      offered: rate,
      slots,
      carried: s.successRate,
      okPerS: s.goodputPerS,
      p99: s.okLatency.p99,
      cpuMsPerReq: cpuPerRequest(p),
      cpuByRole: p.cpu?.byRole,
      floorCpuMsPerReq: cpuPerRequest(floor),
      floorCpuByRole: floor.cpu?.byRole,
      noAnswer: sumValues(s.errors),
      otherCores: p.otherCores,
    };
  } finally {
    await lab.origin.config({ concurrency: SLOTS });
  }
}

/** One phase of the cell's seeded arrivals against the pass-through Worker (its floor path when given). */
function passthroughPhase(ctx, o, m, what, path) {
  const { lab, t } = ctx;
  return lab.phase({
    label: `${o.id} ${loadId(o, m)} ${what}`,
    target: "passthrough",
    baseUrl: ctx.passthrough.url,
    cpuOf: ctx.passthrough,
    durationMs: t.loadMs,
    goodputFromMs: t.warmMs,
    seed: seedOf(lab, o.id, loadId(o, m)),
    streams: [{ name: loadId(o, m), rate: m * o.capacity, ...(path ? { path } : {}) }],
  });
}

/**
 * The same arrivals answered at once by the pass-through Worker with a fixed 429 (its floor path):
 * the CPU the runtime charges for a request that reaches a Worker at all, under `wrangler dev`.
 * A shed can cost no less; the guard's shed path is judged against it as well as against forwarding.
 */
async function floorPhase(ctx, o, m) {
  const p = await passthroughPhase(ctx, o, m, "answer-at-once floor", FLOOR_PATH);
  ctx.rows.push(phaseRow("matrix", `${o.id} ${loadId(o, m)} answer-at-once floor`, { ...p, capacity: o.capacity }));
  return p;
}

const sustains = (pass) => pass && !pass.error && pass.carried >= SUSTAIN.carried && pass.p99 <= SUSTAIN.p99Ms;

/**
 * The figures of one side of a cell for one stream (`index`), with the guard's counters summed over
 * the tenants of `roles` (its admin API; a field it does not return is NaN, shown "n/a").
 */
function sideFigures(p, capacity, index, roles = []) {
  if (!p || p.error || p.skipped) return { error: p?.error, skipped: p?.skipped };
  const s = p.byStream[index] ?? p.all;
  const fig = {
    offered: s.offeredRate,
    sent: s.sent,
    droppedByGenerator: s.droppedByGenerator,
    ok: s.ok,
    successRate: s.successRate,
    goodputPerS: s.goodputPerS,
    goodputShare: s.goodputPerS / capacity,
    p50: s.okLatency.p50,
    p99: s.okLatency.p99,
    okN: s.okLatency.n,
    shed: s.shed,
    timeouts504: s.timeouts504,
    noAnswer: sumValues(s.errors),
    shedByReason: s.shedByReason,
    // CPU covers the whole phase (all its streams): per request sent in it.
    cpuMsPerReq: cpuPerRequest(p),
    cpuByRole: p.cpu?.byRole,
    otherCores: p.otherCores,
    originMaxOutstanding: p.originStats?.maxOutstanding,
  };
  if (p.target === "guard") fig.counters = guardCounters(roles.map((r) => p.guardStats?.[p.tenantNames?.[r]]));
  return fig;
}

/** shedAtEdge/shed and object calls per arrival from the tenants' admin counters, summed. */
function guardCounters(statsList) {
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : NaN);
  const total = { arrived: 0, shed: 0, shedAtEdge: 0, calls: 0, callsByKind: {} };
  const errors = [];
  for (const st of statsList) {
    const c = st?.counters;
    if (!c) {
      errors.push(st?.error ?? "no counters");
      for (const k of ["arrived", "shed", "shedAtEdge", "calls"]) total[k] = NaN;
      continue;
    }
    total.arrived += num(c.arrived);
    total.shed += num(c.shed);
    total.shedAtEdge += num(c.shedAtEdge);
    if (c.calls && typeof c.calls === "object") {
      for (const [k, v] of Object.entries(c.calls)) {
        total.calls += num(v);
        total.callsByKind[k] = (total.callsByKind[k] ?? 0) + num(v);
      }
    } else total.calls = NaN;
  }
  return {
    ...total,
    edgeShare: total.shed > 0 ? total.shedAtEdge / total.shed : NaN,
    callsPerArrival: total.arrived > 0 ? total.calls / total.arrived : NaN,
    error: errors.length ? errors.join("; ") : undefined,
  };
}

// ---- targets: each judged on its worst cell ----

const cellName = (c) => `${c.origin}/${c.config} ${c.cell}`;
const ok = (f) => f && !f.error && !f.skipped;
const failedSide = (f) => (f?.error ? `failed: ${f.error}` : f?.skipped ? `skipped: ${f.skipped}` : "n/a");

/**
 * The cell with the lowest (or, with `highest`, highest) value of `value(cell)`. A cell whose guard
 * side failed counts as the worst of all: a goal is not met by a phase that did not run.
 */
function worst(cells, value, highest = false) {
  let pick;
  for (const c of cells) {
    const v = value(c);
    const bad = !Number.isFinite(v);
    const worse = !pick || (bad && !pick.bad) || (!bad && !pick.bad && (highest ? v > pick.v : v < pick.v));
    if (worse) pick = { cell: c, v, bad };
  }
  return pick;
}

const guardSkipped = (c) => Boolean(c.guard?.skipped ?? c.guard?.quiet?.skipped ?? c.guard?.critical?.skipped);

function judge(cells, pass) {
  const load = cells.filter((c) => c.kind === "load");
  const overload = (ms_) => load.filter((c) => ms_.includes(c.multiple));
  const passOf = (c) => pass[`${c.origin}/${c.cell}`];
  const out = [];
  const add = (name, goal, cellsIn, value, describe, test, highest = false) => {
    if (cellsIn.length === 0) {
      out.push(target("matrix", name, goal, "no cell ran", null));
      return;
    }
    // Without the guard (not started, --no-guard) there is nothing to judge: n/a, not missed.
    if (cellsIn.every(guardSkipped)) {
      out.push(target("matrix", name, goal, "the guard did not run", null));
      return;
    }
    const w = worst(cellsIn, value, highest);
    out.push(
      target(
        "matrix",
        name,
        goal,
        `worst ${cellName(w.cell)}: ${describe(w.cell)} (${cellsIn.length} cells)`,
        w.bad ? false : test(w.v),
      ),
    );
    out[out.length - 1].worstCell = cellName(w.cell);
  };
  const g = (c) => c.guard;
  const h = (c) => c.haproxy;
  const gp = (f) => (ok(f) ? `${pct(f.goodputShare)} of capacity (${f.goodputPerS.toFixed(1)}/s)` : failedSide(f));

  const mid = overload([3, 5]);
  add(
    "goodput at 3x and 5x",
    `>= ${pct(GOALS.goodput)} of capacity`,
    mid,
    (c) => g(c).goodputShare,
    (c) => `guard ${gp(g(c))}, HAProxy ${gp(h(c))}`,
    (v) => v >= GOALS.goodput,
  );
  add(
    "goodput at 3x and 5x vs HAProxy",
    `>= ${GOALS.goodputVsHaproxy}x HAProxy`,
    mid.filter((c) => ok(h(c))),
    (c) => g(c).goodputShare / h(c).goodputShare,
    (c) => `${times(g(c).goodputShare / h(c).goodputShare)} (guard ${gp(g(c))}, HAProxy ${gp(h(c))})`,
    (v) => v >= GOALS.goodputVsHaproxy,
  );
  const tenX = overload([10]);
  const carried = tenX.filter((c) => sustains(passOf(c)));
  const notCarried = tenX.filter((c) => !sustains(passOf(c))).map(cellName);
  add(
    "goodput at 10x, where the pass-through carries the rate",
    `>= ${pct(GOALS.goodput10x)} of capacity${notCarried.length ? `; left out (pass-through does not carry it): ${notCarried.join(", ")}` : ""}`,
    carried,
    (c) => g(c).goodputShare,
    (c) => `guard ${gp(g(c))}, HAProxy ${gp(h(c))}`,
    (v) => v >= GOALS.goodput10x,
  );
  add(
    "p99 of admitted requests vs HAProxy",
    `<= HAProxy p99 + ${Math.round((GOALS.p99VsHaproxy - 1) * 100)}%`,
    load.filter((c) => ok(h(c)) && h(c).okN > 0),
    (c) => g(c).p99 / h(c).p99,
    (c) => `${times(g(c).p99 / h(c).p99)} (guard ${ms(g(c).p99)}, HAProxy ${ms(h(c).p99)})`,
    (v) => v <= GOALS.p99VsHaproxy,
    true,
  );
  const quiet = cells.filter((c) => c.kind === "quiet");
  const qs = (f) => (ok(f?.quiet) ? `${pct(f.quiet.successRate)}` : failedSide(f?.quiet));
  add(
    "quiet tenant success beside a 5x flood",
    `>= ${pct(GOALS.quietSuccess)}`,
    quiet,
    (c) => g(c).quiet.successRate,
    (c) => `guard ${qs(g(c))}, HAProxy ${qs(h(c))}`,
    (v) => v >= GOALS.quietSuccess,
  );
  const qr = (f) =>
    ok(f?.quiet) ? `${times(f.p99Ratio)} (${ms(f.quiet.p99)} vs ${ms(f.alone.p99)} alone)` : failedSide(f?.quiet);
  add(
    "quiet tenant p99 beside a 5x flood",
    `<= ${GOALS.quietP99}x its p99 alone`,
    quiet,
    (c) => g(c).p99Ratio,
    (c) => `guard ${qr(g(c))}, HAProxy ${qr(h(c))}`,
    (v) => v <= GOALS.quietP99,
    true,
  );
  const crit = cells.filter((c) => c.kind === "critical");
  const cs = (f) => (ok(f?.critical) ? pct(f.critical.successRate) : failedSide(f?.critical));
  add(
    "critical success under a 4x low-priority flood",
    `>= ${pct(GOALS.criticalSuccess)}`,
    crit,
    (c) => g(c).critical.successRate,
    (c) => `guard ${cs(g(c))}, HAProxy ${cs(h(c))}`,
    (v) => v >= GOALS.criticalSuccess,
  );
  const cnt = (c) => g(c).counters ?? {};
  add(
    "sheds decided at the edge under 10x",
    `>= ${pct(GOALS.edgeShare)}`,
    tenX.filter((c) => g(c).counters),
    (c) => cnt(c).edgeShare,
    (c) => `${pct(cnt(c).edgeShare)} (${fmt(cnt(c).shedAtEdge)} of ${fmt(cnt(c).shed)} sheds)`,
    (v) => v >= GOALS.edgeShare,
  );
  add(
    "object calls per arrival under 10x",
    `<= ${GOALS.callsPerArrival}`,
    tenX.filter((c) => g(c).counters),
    (c) => cnt(c).callsPerArrival,
    (c) => `${fix(cnt(c).callsPerArrival, 3)} (${fmt(cnt(c).calls)} calls, ${fmt(cnt(c).arrived)} arrivals)`,
    (v) => v <= GOALS.callsPerArrival,
    true,
  );
  const fiveX = overload([5]).filter((c) => passOf(c) && !passOf(c).error);
  add(
    "guard CPU per request vs the pass-through under 5x",
    `<= ${GOALS.cpuVsPassthrough}x the pass-through's`,
    fiveX,
    (c) => g(c).cpuMsPerReq / passOf(c).cpuMsPerReq,
    (c) =>
      `${times(g(c).cpuMsPerReq / passOf(c).cpuMsPerReq)} (guard ${fix(g(c).cpuMsPerReq, 2)} ms, pass-through ${fix(passOf(c).cpuMsPerReq, 2)} ms, a Worker answering 429 at once ${fix(passOf(c).floorCpuMsPerReq, 2)} ms = ${times(passOf(c).floorCpuMsPerReq / passOf(c).cpuMsPerReq)} of the pass-through, HAProxy ${fix(h(c).cpuMsPerReq, 2)} ms)`,
    (v) => v <= GOALS.cpuVsPassthrough,
    true,
  );
  const steady = load.filter((c) => c.multiple < 1);
  add(
    "nothing shed well below capacity",
    "0 shed, 0 504, >= 99.9% success",
    steady,
    (c) => (ok(g(c)) ? (g(c).shed + g(c).timeouts504 === 0 ? g(c).successRate : 0) : NaN),
    (c) =>
      ok(g(c))
        ? `guard ${g(c).shed} shed, ${g(c).timeouts504} 504, ${pct(g(c).successRate)} success; HAProxy ${ok(h(c)) ? `${h(c).shed} shed, ${pct(h(c).successRate)}` : failedSide(h(c))}`
        : `guard ${failedSide(g(c))}`,
    (v) => v >= 0.999,
  );
  return out;
}

// ---- tables for the report ----

function tables(cells, pass, targets, t, origins) {
  const out = [];
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN);
  const show = (f, fn) => (ok(f) ? fn(f) : f?.skipped ? "skipped" : f?.error ? "failed" : "-");
  const load = cells.filter((c) => c.kind === "load");
  const passOf = (c) => pass[`${c.origin}/${c.cell}`];
  out.push({
    title: "Goodput and p99 of admitted requests",
    intro: [
      "Goodput: 2xx completed per second after the warm-up, as a share of the origin's capacity.",
      "p99 over all 2xx of the phase. Pass-through: its 2xx share of the same offered load with the",
      "origin's slots opened wide (what the runtime carries at that rate; * = it does not sustain it).",
    ],
    head: [
      "origin",
      "config",
      "load",
      "offered/s",
      "guard",
      "HAProxy",
      "guard/HAProxy",
      "pass-through carried",
      "guard p99",
      "HAProxy p99",
      "guard/HAProxy p99",
      "guard shed",
      "HAProxy shed",
      "guard 504",
      "HAProxy 504",
    ],
    rows: load.map((c) => {
      const p = passOf(c);
      return [
        originLabel(c),
        c.config,
        c.cell,
        fix(c.offered, 0),
        show(c.guard, (f) => pct(f.goodputShare)),
        show(c.haproxy, (f) => pct(f.goodputShare)),
        times(ratio(c.guard.goodputShare, c.haproxy.goodputShare)),
        p ? (p.error ? "failed" : `${pct(p.carried)}${sustains(p) ? "" : " *"}`) : "-",
        show(c.guard, (f) => ms(f.p99)),
        show(c.haproxy, (f) => ms(f.p99)),
        times(ratio(c.guard.p99, c.haproxy.p99)),
        show(c.guard, (f) => String(f.shed)),
        show(c.haproxy, (f) => String(f.shed)),
        show(c.guard, (f) => String(f.timeouts504)),
        show(c.haproxy, (f) => String(f.timeouts504)),
      ];
    }),
  });
  out.push({
    title: "Guard cost: edge sheds, object calls, CPU",
    intro: [
      "From GET /__guard/tenants/{name} after each guard phase: shedAtEdge / shed, and the sum of",
      "`calls` over `arrived` (`sent`: what the generator sent the guard; 5 warm-up requests per tenant",
      "are counted in `arrived` too; a gap beyond that is arrivals the counters did not see). CPU: ms of user+system time per request sent, of the guard's workerd",
      "processes, of haproxy, and of the pass-through's workerd processes at the same offered rate, forwarding",
      "everything and (answer-at-once) answering every request with a fixed 429 without reading it: the",
      "least any Worker costs per request under `wrangler dev`, which a shed path cannot go below.",
    ],
    head: [
      "origin",
      "config",
      "load",
      "sent",
      "arrived",
      "shed",
      "at edge",
      "edge share",
      "object calls",
      "calls/arrival",
      "guard cpu ms/req",
      "HAProxy cpu ms/req",
      "pass-through cpu ms/req",
      "answer-at-once cpu ms/req",
      "guard/pass-through",
      "guard/answer-at-once",
      "guard/HAProxy",
    ],
    rows: load.map((c) => {
      const k = c.guard.counters ?? {};
      const p = passOf(c);
      return [
        originLabel(c),
        c.config,
        c.cell,
        show(c.guard, (f) => String(f.sent)),
        fmt(k.arrived),
        fmt(k.shed),
        fmt(k.shedAtEdge),
        pct(k.edgeShare),
        fmt(k.calls),
        fix(k.callsPerArrival, 3),
        show(c.guard, (f) => fix(f.cpuMsPerReq, 2)),
        show(c.haproxy, (f) => fix(f.cpuMsPerReq, 2)),
        p && !p.error ? fix(p.cpuMsPerReq, 2) : "-",
        p && !p.error ? fix(p.floorCpuMsPerReq, 2) : "-",
        times(ratio(c.guard.cpuMsPerReq, p?.cpuMsPerReq)),
        times(ratio(c.guard.cpuMsPerReq, p?.floorCpuMsPerReq)),
        times(ratio(c.guard.cpuMsPerReq, c.haproxy.cpuMsPerReq)),
      ];
    }),
  });
  const quiet = cells.filter((c) => c.kind === "quiet");
  if (quiet.length) {
    out.push({
      title: "Quiet tenant (30% of capacity) beside a tenant flooding at 5x",
      intro: [
        "Each tenant has half the slots and half the queue (HAProxy: a backend each, by x-api-key).",
        "Success over every quiet request sent; p99 of its 2xx with the flood and alone (n = 2xx).",
        "Flood goodput as a share of its half of the capacity.",
      ],
      head: [
        "origin",
        "config",
        "guard success",
        "HAProxy success",
        "guard p99 with / alone",
        "HAProxy p99 with / alone",
        "guard/HAProxy p99 with",
        "guard flood goodput",
        "HAProxy flood goodput",
        "flood edge share",
      ],
      rows: quiet.map((c) => [
        originLabel(c),
        c.config,
        show(c.guard.quiet, (f) => pct(f.successRate)),
        show(c.haproxy.quiet, (f) => pct(f.successRate)),
        ok(c.guard.quiet)
          ? `${ms(c.guard.quiet.p99)} / ${ms(c.guard.alone.p99)} = ${times(c.guard.p99Ratio)} (n ${c.guard.quiet.okN})`
          : "-",
        ok(c.haproxy.quiet)
          ? `${ms(c.haproxy.quiet.p99)} / ${ms(c.haproxy.alone.p99)} = ${times(c.haproxy.p99Ratio)}`
          : "-",
        times(ratio(c.guard.quiet?.p99, c.haproxy.quiet?.p99)),
        show(c.guard.flood, (f) => pct(f.goodputShare)),
        show(c.haproxy.flood, (f) => pct(f.goodputShare)),
        pct(guardCountersOf(c)?.edgeShare),
      ]),
    });
  }
  const crit = cells.filter((c) => c.kind === "critical");
  if (crit.length) {
    out.push({
      title: "Critical requests (20% of capacity) under a 4x low-priority flood, one tenant",
      intro: ["x-priority: critical and low; HAProxy: set-priority-class from the header (critical first)."],
      head: [
        "origin",
        "config",
        "guard critical success",
        "HAProxy critical success",
        "guard critical p99",
        "HAProxy critical p99",
        "guard low goodput",
        "HAProxy low goodput",
      ],
      rows: crit.map((c) => [
        originLabel(c),
        c.config,
        show(c.guard.critical, (f) => pct(f.successRate)),
        show(c.haproxy.critical, (f) => pct(f.successRate)),
        show(c.guard.critical, (f) => ms(f.p99)),
        show(c.haproxy.critical, (f) => ms(f.p99)),
        show(c.guard.low, (f) => pct(f.goodputShare)),
        show(c.haproxy.low, (f) => pct(f.goodputShare)),
      ]),
    });
  }
  const passRows = Object.values(pass);
  if (passRows.length) {
    out.push({
      title: "Pass-through Worker (runtime baseline), origin slots opened wide",
      intro: [`Sustains: >= ${pct(SUSTAIN.carried)} of offered requests answered 2xx, p99 <= ${SUSTAIN.p99Ms} ms.`],
      head: [
        "origin",
        "load",
        "offered/s",
        "origin slots",
        "carried",
        "2xx/s",
        "p99",
        "no answer",
        "cpu ms/req",
        "sustains",
      ],
      rows: passRows.map((p) =>
        p.error
          ? [p.origin ?? "-", p.cell ?? "-", "-", "-", "failed", "-", "-", "-", "-", p.error]
          : [
              originLabel({ origin: p.origin }, origins),
              p.cell,
              fix(p.offered, 0),
              String(p.slots),
              pct(p.carried),
              fix(p.okPerS, 1),
              ms(p.p99),
              String(p.noAnswer),
              fix(p.cpuMsPerReq, 2),
              sustains(p) ? "yes" : "NO",
            ],
      ),
    });
  }
  out.push({
    title: "Worst cell per target",
    intro: [
      `Phases: ${t.loadMs / 1000} s per load and critical cell, ${t.quietMs / 1000} s per quiet cell, goodput counted after ${t.warmMs / 1000} s;`,
      "the same seeded arrivals for the guard, HAProxy and the pass-through in a cell. Goals, not assertions.",
    ],
    head: ["", "target", "goal", "worst cell", "measured"],
    rows: targets.map((tg) => [
      tg.met === null ? "n/a" : tg.met ? "met" : "MISSED",
      tg.name,
      tg.goal,
      tg.worstCell ?? "-",
      tg.measured,
    ]),
  });
  return out;
}

function guardCountersOf(c) {
  return c.guard?.flood?.counters;
}

function originLabel(c) {
  const o = ORIGINS.find((x) => x.id === c.origin);
  return o ? `${o.id} (${SLOTS}x${o.serviceMs} ms)` : String(c.origin);
}

const sumValues = (r) => Object.values(r ?? {}).reduce((a, b) => a + b, 0);
const fix = (v, d) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
const fmt = (v) => (Number.isFinite(v) ? String(Math.round(v)) : "n/a");
function firstLine(s) {
  return String(s).split("\n")[0].slice(0, 300);
}
