// Flood: the evidence for "cheap rejection". Tenant A offers 10x its rate limit beside a quiet
// tenant B (30% of the origin's capacity, i.e. 60% of its own half of the origin's slots: the
// same B as in noisy, so the two scenarios' B figures compare). The guard should shed most of A's
// requests inside the Worker isolate, from a cached saturation verdict, without calling A's
// Durable Object, so that a flood costs little: few object calls and little CPU per shed request,
// and B does not notice.
// Phases, each with fresh tenants so the objects' counters are the phase's own:
//   forwarded only  the steady scenario's tenant limits and rate (half the limit), nothing shed:
//                   the guard's CPU per forwarded request, the yardstick for a shed's cost;
//   B alone         B's latency without A (its p99 over ~120 answers is close to its maximum, so
//                   the "B p99 vs alone" ratio moves by tens of percent between runs);
//   A 10x + B       the flood.
// Object calls come from A's admin counters (analytics are not observable locally), read once the
// phase has drained plus REPORT_LAG_MS, so the batched edge-shed reports have arrived.
import { latencySummary } from "../stats.mjs";
import { cpuPerRequest, ms, pct, phaseRow, target, times, warm, when } from "./shared.mjs";

export const name = "flood";
export const needsGuard = true;

const MULTIPLE = 10; // A's offered rate, in multiples of its own rate limit
const SHARE = 0.5; // each tenant's share of the origin's slots
const B_LOAD = 0.3; // B's rate, as a share of the origin's capacity (as in noisy)
const REPORT_LAG_MS = 1500; // an isolate reports its edge sheds within ~1 s
const LOCAL_SHARE_GOAL = 0.9;
const B_P99_GOAL = 1.5; // x B alone
const SHED_COST_GOAL = 0.3; // CPU per shed request / CPU per forwarded request

export async function run(lab) {
  const rows = [];
  const bRate = B_LOAD * lab.capacity;

  const fwdLimits = lab.limits();
  const fwdTenant = await lab.tenant("flood-fwd", fwdLimits);
  await warm(lab.guard.url, fwdTenant);
  const fwd = await lab.phase({
    label: "forwarded only",
    target: "guard",
    durationMs: lab.dur(6000),
    streams: [{ name: "fwd", rate: fwdLimits.rate / 2, tenant: fwdTenant }],
  });
  rows.push(phaseRow(name, "forwarded only", fwd));

  const bAlone = await lab.tenant("flood-b-alone", lab.limits(SHARE));
  const alone = await lab.phase({
    label: "B alone",
    target: "guard",
    durationMs: lab.dur(10_000),
    streams: [{ name: "B", rate: bRate, tenant: bAlone }],
  });
  rows.push(phaseRow(name, "B alone", alone));

  const a = await lab.tenant("flood-a", lab.limits(1 - SHARE));
  const b = await lab.tenant("flood-b", lab.limits(SHARE));
  const durationMs = lab.dur(15_000);
  const label = `A ${MULTIPLE}x + B`;
  const flood = await lab.phase({
    label,
    target: "guard",
    durationMs,
    // A's goodput is counted once its initial bucket burst has gone through.
    goodputFromMs: Math.min(3000, durationMs / 3),
    statsAfterMs: REPORT_LAG_MS,
    streams: [
      { name: "A", rate: MULTIPLE * a.limits.rate, tenant: a },
      { name: "B", rate: bRate, tenant: b },
    ],
  });
  const [sa, sb] = flood.byStream;
  rows.push(phaseRow(name, `A ${MULTIPLE}x (with B)`, flood, sa));
  rows.push(phaseRow(name, `B (with A ${MULTIPLE}x)`, flood, sb));
  rows.push(phaseRow(name, `${label}, whole phase`, flood));

  const calls = objectCalls(flood.guardStats[a.name]);
  const cpu = shedCpu(fwd, flood);
  const bRatio = sb.okLatency.p99 / alone.all.okLatency.p99;
  const figures = {
    limitsA: a.limits,
    limitsB: b.limits,
    a: sa,
    b: sb,
    bAlone: alone.all,
    bP99Ratio: bRatio,
    calls,
    cpu,
    // When in the phase B was slow, and how fast the guard answered A then (sheds and admissions).
    bySecond: { B: latencyByBin(flood.load, 1, 1000), A: latencyByBin(flood.load, 0, 1000) },
    guardStats: flood.guardStats,
    origin: flood.originStats,
  };
  return { rows, figures, notes: notes(sa, sb, alone, bRatio, calls, cpu), targets: targets(sb, bRatio, calls, cpu) };
}

/**
 * A's Durable Object calls per arrival: with leases every call is a renewal (`calls.lease`), shared
 * by all the requests the isolate decided in between, so there is no per-admission split.
 */
function objectCalls(stats) {
  const c = stats?.counters;
  if (!c) return { error: stats?.error ?? "no counters" };
  const calls = Object.values(c.calls ?? {}).reduce((n, v) => n + v, 0);
  return {
    raw: {
      arrived: c.arrived,
      admitted: c.admitted,
      shed: c.shed,
      shedAtEdge: c.shedAtEdge,
      released: c.released,
      calls: c.calls,
      shedByReason: nonZero(c.shedByReason),
    },
    perArrival: calls / Math.max(1, c.arrived),
    calls,
    localShedShare: c.shedAtEdge / Math.max(1, c.shed),
  };
}

/**
 * The guard's CPU per shed request in the flood. The flood's CPU pays for its forwarded requests
 * too; each is charged what a forwarded request cost in the forwarded-only phase, and the rest is
 * spread over the shed requests (edge- and object-decided alike).
 */
function shedCpu(fwd, flood) {
  const perForwarded = cpuPerRequest(fwd);
  const shed = flood.all.shed;
  const forwarded = flood.all.sent - shed; // admitted, and the odd 504 or unanswered request
  const perShed = flood.cpu && shed > 0 ? (flood.cpu.ms - forwarded * perForwarded) / shed : NaN;
  // The same split for the "worker" process alone (the guard's isolate and its objects), without
  // the proxy that `wrangler dev` puts in front of any Worker and production does not have.
  const workerPerForwarded = (fwd.cpu?.byRole.worker ?? NaN) / fwd.all.sent;
  const workerPerShed = shed > 0 ? ((flood.cpu?.byRole.worker ?? NaN) - forwarded * workerPerForwarded) / shed : NaN;
  return {
    perForwardedMs: perForwarded,
    forwardedPhaseMs: fwd.cpu?.ms,
    forwardedPhaseByRole: fwd.cpu?.byRole,
    floodPerRequestMs: cpuPerRequest(flood),
    floodMs: flood.cpu?.ms,
    floodByRole: flood.cpu?.byRole,
    floodSent: flood.all.sent,
    floodShed: shed,
    perShedMs: perShed,
    shedCost: perShed / perForwarded,
    workerPerForwardedMs: workerPerForwarded,
    workerPerShedMs: workerPerShed,
    workerShedCost: workerPerShed / workerPerForwarded,
  };
}

function notes(sa, sb, alone, bRatio, calls, cpu) {
  const out = [
    `A (${sa.offeredRate.toFixed(0)} req/s): ${pct(sa.successRate)} 2xx, goodput ${sa.goodputPerS.toFixed(1)}/s, p99 of admitted ${ms(sa.okLatency.p99)}, ${sa.shed} shed as the client saw it`,
    `B (${sb.offeredRate.toFixed(0)} req/s): ${pct(sb.successRate)} 2xx, goodput ${sb.goodputPerS.toFixed(1)}/s, p99 ${ms(sb.okLatency.p99)} vs ${ms(alone.all.okLatency.p99)} alone (${times(bRatio)})`,
  ];
  if (calls.error) {
    out.push(`A's counters could not be read: ${calls.error}`);
  } else {
    out.push(
      `A's object calls per arrival ${calls.perArrival.toFixed(3)} (${calls.calls} lease calls over ${calls.raw.arrived} arrivals); ` +
        `sheds decided at the edge ${pct(calls.localShedShare)}`,
      `A's counters: ${JSON.stringify(calls.raw)}`,
    );
    if (calls.raw.shed !== sa.shed)
      out.push(
        `A's object counted ${calls.raw.shed} sheds, its clients got ${sa.shed} shed answers (batched reports late or lost?)`,
      );
  }
  out.push(
    `guard CPU: ${cpu.perForwardedMs.toFixed(2)} ms per forwarded request (forwarded only); flood ${cpu.floodPerRequestMs.toFixed(2)} ms per request sent, ` +
      `${cpu.perShedMs.toFixed(3)} ms per shed request once each of the ${cpu.floodSent - cpu.floodShed} forwarded is charged ${cpu.perForwardedMs.toFixed(2)} ms ` +
      `(${times(cpu.shedCost)}); by process, forwarded only ${roles(cpu.forwardedPhaseByRole)}, flood ${roles(cpu.floodByRole)}`,
    `the same split for the worker process alone (without wrangler's dev proxy): ${cpu.workerPerShedMs.toFixed(3)} ms per shed vs ` +
      `${cpu.workerPerForwardedMs.toFixed(2)} ms per forwarded request (${times(cpu.workerShedCost)})`,
  );
  return out;
}

function targets(sb, bRatio, calls, cpu) {
  const share = calls.localShedShare;
  return [
    target(
      name,
      "sheds decided at the edge (A)",
      `>= ${pct(LOCAL_SHARE_GOAL)} of A's sheds`,
      calls.raw ? `${pct(share)} (${calls.raw.shedAtEdge} of ${calls.raw.shed})` : "n/a",
      when(share, (v) => v >= LOCAL_SHARE_GOAL),
    ),
    target(
      name,
      `B success with A at ${MULTIPLE}x`,
      ">= 99%",
      pct(sb.successRate),
      when(sb.successRate, (v) => v >= 0.99),
    ),
    target(
      name,
      `B p99 with A at ${MULTIPLE}x`,
      `<= ${B_P99_GOAL}x B alone`,
      times(bRatio),
      when(bRatio, (v) => v <= B_P99_GOAL),
    ),
    target(
      name,
      "guard CPU per shed request",
      `<= ${SHED_COST_GOAL}x a forwarded request`,
      `${times(cpu.shedCost)} (${cpu.perShedMs.toFixed(3)} vs ${cpu.perForwardedMs.toFixed(2)} ms)`,
      when(cpu.shedCost, (v) => v <= SHED_COST_GOAL),
    ),
  ];
}

/** Per bin of send time: answers of one stream, and the p50 / max latency of its 2xx and of its sheds. */
function latencyByBin(load, stream, binMs) {
  const bins = Math.ceil(load.durationMs / binMs);
  const ok = Array.from({ length: bins }, () => []);
  const shed = Array.from({ length: bins }, () => []);
  const { rec } = load;
  for (let i = 0; i < rec.count; i++) {
    if (rec.stream[i] !== stream) continue;
    const b = Math.min(bins - 1, Math.floor(rec.tSend[i] / binMs));
    const s = rec.status[i];
    if (s >= 200 && s < 300) ok[b].push(rec.latency[i]);
    else if (s === 429 || s === 503) shed[b].push(rec.latency[i]);
  }
  const brief = (xs) => {
    const l = latencySummary(xs);
    return { n: l.n, p50: Math.round(l.p50), max: Math.round(l.max) };
  };
  return ok.map((_, b) => ({ t: b * binMs, ok: brief(ok[b]), shed: brief(shed[b]) }));
}

const nonZero = (record) => Object.fromEntries(Object.entries(record ?? {}).filter(([, v]) => v));
const roles = (byRole) =>
  Object.entries(byRole ?? {})
    .map(([role, v]) => `${role} ${Math.round(v)} ms`)
    .join(", ") || "n/a";
