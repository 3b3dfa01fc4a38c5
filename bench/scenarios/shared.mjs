// What every scenario hands to the report: table rows built the same way, and targets.
import { jsonRequest } from "../http.mjs";

/** One row of the main table: a phase (from lab.phase), whole or one stream's summary `s`. */
export function phaseRow(scenario, phase, p, s = p.all) {
  const { capacity, originStats } = p;
  return {
    scenario,
    phase,
    target: p.target,
    offeredPerS: s.offeredRate,
    sent: s.sent,
    droppedByGenerator: s.droppedByGenerator,
    ok: s.ok,
    successRate: s.successRate,
    goodputPerS: s.goodputPerS,
    goodputShareOfCapacity: s.goodputPerS / capacity,
    okP50Ms: s.okLatency.p50,
    okP99Ms: s.okLatency.p99,
    shed: s.shed,
    shedP50Ms: s.shedLatency.p50,
    shedByReason: s.shedByReason,
    shedAllSignalsShare: s.shedAllSignalsShare,
    timeouts504: s.timeouts504,
    clientErrors: Object.values(s.errors).reduce((a, b) => a + b, 0),
    originMaxConcurrency: originStats?.maxOutstanding,
    // How long a slot the origin freed (with nothing queued) sat idle before the next request came.
    originHandoffMs: originStats?.handoffs > 0 ? originStats.handoffMsTotal / originStats.handoffs : undefined,
    otherCpuCores: p.otherCores,
    // The phase's CPU covers all its streams, so a one-stream row of a mixed phase leaves it out.
    cpuMsPerReq: s === p.all ? cpuPerRequest(p) : undefined,
    slotsHeldAfter: p.slotsHeldAfter,
  };
}

/** CPU ms of the measured wrangler's workerd processes per request sent in the phase (NaN if unmeasured). */
export function cpuPerRequest(p) {
  return p.cpu && p.all.sent > 0 ? p.cpu.ms / p.all.sent : NaN;
}

/**
 * A goal, not an assertion: `met` is true/false, or null when the figure could not be measured
 * (for instance a share of zero shed responses).
 */
export function target(scenario, name, goal, measured, met) {
  return { scenario, name, goal, measured, met: met === null || met === undefined ? null : Boolean(met) };
}

export const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(v < 10 ? 1 : 0)} ms` : "n/a");
/** "x1.23" for a ratio, "n/a" when it is not a number. */
export const times = (v) => (Number.isFinite(v) ? `x${v.toFixed(2)}` : "n/a");
export const pct = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : "n/a");
/** null when the value is not a number, so the target reads "n/a" instead of "missed". */
export const when = (v, test) => (Number.isFinite(v) ? test(v) : null);

/**
 * FNV-1a of a phase's name and the run's seed (--seed): the guard and its peers (HAProxy, the
 * pass-through) get the same arrival schedule for the same name.
 */
export function seedOf(lab, ...parts) {
  let h = 0x811c9dc5;
  for (const ch of `${lab.seed ?? 1}/${parts.join("/")}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** A few sequential requests first, so first-call costs (JIT, key lookup, Durable Object start) stay out. */
export async function warm(baseUrl, tenant) {
  const headers = tenant ? { "x-api-key": tenant.key } : {};
  for (let i = 0; i < 5; i++) await jsonRequest(`${baseUrl}/warm`, { headers }).catch(() => {});
}
