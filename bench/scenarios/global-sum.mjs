// Global sum: six tenants, each inside its own limits, together offer 3x what the origin can serve.
// Per-tenant limits alone would let all of it through (each tenant may hold as many requests as the
// stage's ceiling), so only the global origin stage keeps the origin from queueing without end. It
// should hold goodput near the origin's capacity, share it fairly (the tenants offer the same load,
// so Jain's index over their goodput should be near 1), and the origin should never hold more than
// the limit each request was admitted under, while the adaptive limit finds the origin's capacity.
import {
  counterDelta,
  countersNote,
  jain,
  limitLevel,
  perSecond,
  roomyLimits,
  stageChecks,
  stagePoller,
  stageStats,
  timeline,
  withOriginStage,
} from "./origin-stage.mjs";
import { ms, pct, phaseRow, target, when } from "./shared.mjs";

export const name = "global-sum";
export const needsGuard = true;

const TENANTS = 6;
const MULTIPLE = 3; // the tenants' sum, in multiples of the origin's capacity
const GOODPUT_GOAL = 0.9;
const JAIN_GOAL = 0.95;

export function run(lab) {
  return runSum(lab, name, {});
}

/**
 * The global-sum phase with `extra` stage config under scenario name `name` (global-shards runs
 * it with the stage split over shards, to set accuracy against round trips).
 */
export async function runSum(lab, name, extra) {
  return withOriginStage(lab, extra, async ({ sizing, config, notes }) => {
    const cap = sizing.capacity;
    const rate = (MULTIPLE * cap) / TENANTS;
    const tenants = [];
    for (let i = 0; i < TENANTS; i++) {
      tenants.push(await lab.tenant(`gsum-${i + 1}`, roomyLimits(lab, rate, config.maxInFlight)));
    }
    const durationMs = Math.max(8000, lab.dur(20_000));
    // Goodput is counted once the adaptive limit has had a few seconds to find the origin.
    const goodputFromMs = Math.round(Math.min(5000, durationMs / 3));
    const poller = stagePoller(lab);
    const before = await stageStats(lab);
    let p;
    let polled;
    try {
      p = await lab.phase({
        label: `${TENANTS} tenants x ${rate.toFixed(0)}/s (${MULTIPLE}x)`,
        target: "guard",
        durationMs,
        goodputFromMs,
        streams: tenants.map((tenant, i) => ({ name: `t${i + 1}`, rate, tenant })),
        during: (elapsed) => poller.start(elapsed),
      });
    } finally {
      polled = await poller.stop();
    }
    const after = await stageStats(lab);
    const delta = counterDelta(before?.counters, after?.counters);
    const pc = { ...p, capacity: cap };
    const per = p.byStream; // goodput from goodputFromMs, like the whole phase's
    const total = per.reduce((n, s) => n + s.goodputPerS, 0);
    const fairness = jain(per.map((s) => s.goodputPerS));
    const share = p.all.goodputPerS / cap;
    const level = limitLevel(polled.samples, goodputFromMs, durationMs);
    const o = p.originStats;

    const rows = [phaseRow(name, `${TENANTS} tenants, sum ${MULTIPLE}x`, pc)];
    per.forEach((s, i) => {
      rows.push(phaseRow(name, `t${i + 1} of ${TENANTS} (${rate.toFixed(0)}/s)`, pc, s));
    });
    notes.push(
      `goodput ${perSecond(p.all.goodputPerS, cap)} of capacity (from ${goodputFromMs / 1000} s); per-tenant shares of it ` +
        per.map((s, i) => `t${i + 1} ${pct(s.goodputPerS / total)}`).join(", ") +
        ` (fair ${pct(1 / TENANTS)}); Jain's index ${fairness.toFixed(3)}; min/max tenant goodput ` +
        `${Math.min(...per.map((s) => s.goodputPerS)).toFixed(1)}/${Math.max(...per.map((s) => s.goodputPerS)).toFixed(1)} per s`,
      `effective limit after warm-up: median ${level} (origin slots ${sizing.concurrency}, ceiling ${config.maxInFlight}, ` +
        `shards ${config.shards ?? 1}); stage calls per origin admission ` +
        `${delta?.admitted ? ((delta.calls.acquire + delta.calls.release) / delta.admitted).toFixed(2) : "-"}; ` +
        `origin held at most ${o.maxOutstanding} (served ${o.maxActive} at most); p99 of 2xx ${ms(p.all.okLatency.p99)}; ` +
        `stage polls ${polled.samples.length}, failed ${polled.errors}${polled.lastError ? ` (${polled.lastError})` : ""}`,
      countersNote(delta),
    );
    return {
      rows,
      figures: {
        sizing,
        stage: config,
        rate,
        perTenant: per,
        jain: fairness,
        limitLevel: level,
        origin: o,
        stageCounters: delta,
        stageAfter: after,
        samples: polled.samples,
        guardStats: p.guardStats,
      },
      notes,
      targets: [
        target(
          name,
          `goodput, ${TENANTS} tenants at ${MULTIPLE}x together`,
          `>= ${pct(GOODPUT_GOAL)} of origin capacity`,
          perSecond(p.all.goodputPerS, cap),
          when(share, (v) => v >= GOODPUT_GOAL),
        ),
        target(
          name,
          "fairness (Jain's index over tenant goodput)",
          `>= ${JAIN_GOAL}`,
          fairness.toFixed(3),
          when(fairness, (v) => v >= JAIN_GOAL),
        ),
        ...stageChecks(name, p, config, after),
      ],
      timelines: [
        {
          title: `${name}: ${TENANTS} tenants at ${MULTIPLE}x together, origin ${sizing.concurrency} slots`,
          ...timeline(p.load, polled.samples, [{ atMs: goodputFromMs, label: "goodput counted from here" }]),
        },
      ],
    };
  });
}
