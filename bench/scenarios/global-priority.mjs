// Global priority: a low-priority flood of 5x the origin's capacity, spread over four tenants (each
// inside its own limits), with steady critical traffic at 20% of capacity beside it: half from a
// tenant of its own, half mixed into the flooding tenants. Only the origin stage sees the global
// overload; its reservations (low may fill only part of the effective limit, critical all of it)
// must keep the critical requests going: >= 99% of them should succeed.
import { summarize } from "../stats.mjs";
import {
  counterDelta,
  countersNote,
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

export const name = "global-priority";
export const needsGuard = true;

const FLOOD_TENANTS = 4;
const MULTIPLE = 5; // the low flood, in multiples of the origin's capacity
const CRITICAL_SHARE = 0.2; // critical traffic, as a share of the origin's capacity
const CRITICAL_GOAL = 0.99;

export async function run(lab) {
  return withOriginStage(lab, {}, async ({ sizing, config, notes }) => {
    const cap = sizing.capacity;
    const lowRate = (MULTIPLE * cap) / FLOOD_TENANTS;
    const critRate = CRITICAL_SHARE * cap;
    const mixedCritRate = critRate / 2 / FLOOD_TENANTS; // per flooding tenant
    const ownCritRate = critRate / 2;
    const extra = { maxClientPriority: "critical" };
    const flooders = [];
    for (let i = 0; i < FLOOD_TENANTS; i++) {
      flooders.push(
        await lab.tenant(`gprio-${i + 1}`, roomyLimits(lab, lowRate + mixedCritRate, config.maxInFlight, extra)),
      );
    }
    const partner = await lab.tenant("gprio-critical", roomyLimits(lab, ownCritRate, config.maxInFlight, extra));
    const streams = [
      ...flooders.map((tenant, i) => ({ name: `low t${i + 1}`, rate: lowRate, priority: "low", tenant })),
      ...flooders.map((tenant, i) => ({
        name: `critical t${i + 1}`,
        rate: mixedCritRate,
        priority: "critical",
        tenant,
      })),
      { name: "critical own tenant", rate: ownCritRate, priority: "critical", tenant: partner },
    ];
    const low = flooders.map((_, i) => i);
    const critMixed = flooders.map((_, i) => FLOOD_TENANTS + i);
    const critOwn = [2 * FLOOD_TENANTS];
    const durationMs = Math.max(8000, lab.dur(20_000));
    const goodputFromMs = Math.round(Math.min(5000, durationMs / 3));
    const poller = stagePoller(lab);
    const before = await stageStats(lab);
    let p;
    let polled;
    try {
      p = await lab.phase({
        label: `low ${MULTIPLE}x over ${FLOOD_TENANTS} tenants + critical ${CRITICAL_SHARE * 100}%`,
        target: "guard",
        durationMs,
        goodputFromMs,
        streams,
        during: (elapsed) => poller.start(elapsed),
      });
    } finally {
      polled = await poller.stop();
    }
    const after = await stageStats(lab);
    const delta = counterDelta(before?.counters, after?.counters);
    const window = { fromMs: goodputFromMs, toMs: durationMs };
    const sLow = summarize(p.load, low, window);
    const sCrit = summarize(p.load, [...critMixed, ...critOwn], window);
    const sMixed = summarize(p.load, critMixed, window);
    const sOwn = summarize(p.load, critOwn, window);
    const level = limitLevel(polled.samples, goodputFromMs, durationMs);
    const peakCritInFlight = Math.max(0, ...polled.samples.map((s) => s.inFlightByPriority?.critical ?? 0));
    const o = p.originStats;
    const pc = { ...p, capacity: cap };
    notes.push(
      `critical: ${pct(sCrit.successRate)} 2xx (own tenant ${pct(sOwn.successRate)} of ${sOwn.sent}, ` +
        `inside the flooding tenants ${pct(sMixed.successRate)} of ${sMixed.sent}), p99 ${ms(sCrit.okLatency.p99)}, ` +
        `not 2xx by status ${JSON.stringify(notOk(sCrit.byStatus))}, shed reasons ${JSON.stringify(sCrit.shedByReason)}`,
      `goodput ${perSecond(p.all.goodputPerS, cap)} of capacity (low ${sLow.goodputPerS.toFixed(1)}/s, critical ${sCrit.goodputPerS.toFixed(1)}/s); ` +
        `effective limit after warm-up: median ${level} (origin slots ${sizing.concurrency}, reservations ${JSON.stringify(after?.config?.reservations ?? config.reservations ?? "default")}); ` +
        `critical in flight at the stage at most ${peakCritInFlight}; origin saw by priority ${JSON.stringify(o.byPriority)}`,
      countersNote(delta),
    );
    return {
      rows: [
        phaseRow(name, `low ${MULTIPLE}x (${FLOOD_TENANTS} tenants)`, pc, sLow),
        phaseRow(name, `critical ${CRITICAL_SHARE * 100}% (all)`, pc, sCrit),
        phaseRow(name, "critical, own tenant", pc, sOwn),
        phaseRow(name, "critical, in flooding tenants", pc, sMixed),
        phaseRow(name, "whole phase", pc),
      ],
      figures: {
        sizing,
        stage: config,
        low: sLow,
        critical: sCrit,
        criticalOwnTenant: sOwn,
        criticalMixed: sMixed,
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
          `critical success under a ${MULTIPLE}x low flood over ${FLOOD_TENANTS} tenants`,
          `>= ${pct(CRITICAL_GOAL)}`,
          `${pct(sCrit.successRate)} of ${sCrit.sent}`,
          when(sCrit.successRate, (v) => v >= CRITICAL_GOAL),
        ),
        ...stageChecks(name, p, config, after),
      ],
      timelines: [
        {
          title: `${name}: low ${MULTIPLE}x over ${FLOOD_TENANTS} tenants + critical ${CRITICAL_SHARE * 100}%`,
          ...timeline(p.load, polled.samples, [{ atMs: goodputFromMs, label: "goodput counted from here" }]),
        },
      ],
    };
  });
}

function notOk(byStatus) {
  return Object.fromEntries(Object.entries(byStatus).filter(([s]) => !(Number(s) >= 200 && Number(s) < 300)));
}
