// Global slow: four tenants offer 1.5x the origin's capacity through the origin stage; a third of
// the way in, the origin's service time rises 5x (its capacity falls 5x, its slots stay), and at
// 60% it recovers. The adaptive limit should come down while the origin is slow (the origin must
// never hold more than the limit it was admitted under) and go back up when it recovers: how long
// until goodput is back at 80% of capacity, and the effective limit near its earlier level.
import {
  counterDelta,
  countersNote,
  goodputRecoveryMs,
  limitLevel,
  limitRecoveryMs,
  okCompletions,
  perSecond,
  ratePerS,
  recoveryTarget,
  roomyLimits,
  stageChecks,
  stagePoller,
  stageStats,
  timeline,
  withOriginStage,
} from "./origin-stage.mjs";
import { ms, phaseRow } from "./shared.mjs";

export const name = "global-slow";
export const needsGuard = true;

const TENANTS = 4;
const MULTIPLE = 1.5;
const SLOWDOWN = 5;
const BUDGET_MS = 3000; // room for a slowed request (S x5 +30%) after a full stage wait
const RECOVERED_SHARE = 0.8; // of capacity (goodput), and of the earlier level (effective limit)
const RECOVERY_GOAL_MS = 5000;

export async function run(lab) {
  return withOriginStage(lab, {}, async ({ sizing, config, notes }) => {
    const cap = sizing.capacity;
    const rate = (MULTIPLE * cap) / TENANTS;
    const tenants = [];
    for (let i = 0; i < TENANTS; i++) {
      tenants.push(await lab.tenant(`gslow-${i + 1}`, roomyLimits(lab, rate, config.maxInFlight)));
    }
    const durationMs = Math.max(12_000, lab.dur(30_000));
    const slowAtMs = Math.round(durationMs / 3000) * 1000;
    const recoverAtMs = Math.round((durationMs * 0.6) / 1000) * 1000;
    const warmMs = Math.min(4000, slowAtMs / 2);
    const slowMs = sizing.serviceMs * SLOWDOWN;
    const events = [];
    const poller = stagePoller(lab);
    const before = await stageStats(lab);
    let p;
    let polled;
    try {
      p = await lab.phase({
        label: `${MULTIPLE}x, service x${SLOWDOWN} from ${slowAtMs / 1000} to ${recoverAtMs / 1000} s`,
        target: "guard",
        durationMs,
        goodputFromMs: warmMs,
        streams: tenants.map((tenant, i) => ({ name: `t${i + 1}`, rate, tenant, budgetMs: BUDGET_MS })),
        during: (elapsed) => {
          poller.start(elapsed);
          const change = (label, serviceMs) => {
            events.push({ atMs: elapsed, label });
            lab.origin.config({ serviceMs }).catch((e) => lab.log(`  origin config failed: ${e.message}`));
          };
          if (events.length === 0 && elapsed >= slowAtMs) change(`origin slows x${SLOWDOWN}`, slowMs);
          if (events.length === 1 && elapsed >= recoverAtMs) change("origin recovers", sizing.serviceMs);
        },
      });
    } finally {
      polled = await poller.stop();
      await lab.origin.config({ serviceMs: sizing.serviceMs }).catch(() => {});
    }
    const after = await stageStats(lab);
    const delta = counterDelta(before?.counters, after?.counters);
    const slowAt = events[0]?.atMs ?? slowAtMs;
    const recoverAt = events[1]?.atMs ?? recoverAtMs;
    const { samples } = polled;
    const done = okCompletions(p.load);
    const goodput = {
      before: ratePerS(done, warmMs, slowAt),
      // From one slowed service time in: the answers admitted before the slowdown are out of it.
      slow: ratePerS(done, Math.min(recoverAt, slowAt + slowMs), recoverAt),
      after: ratePerS(done, Math.min(durationMs, recoverAt + 3000), durationMs),
    };
    const level = {
      before: limitLevel(samples, warmMs, slowAt),
      slow: limitLevel(samples, Math.min(recoverAt, slowAt + slowMs), recoverAt),
      after: limitLevel(samples, Math.min(durationMs, recoverAt + 3000), durationMs),
    };
    const recoveryMs = goodputRecoveryMs(done, recoverAt, durationMs, RECOVERED_SHARE * cap);
    const limitBackMs = limitRecoveryMs(samples, recoverAt, RECOVERED_SHARE * level.before);
    const o = p.originStats;
    const pc = { ...p, capacity: cap };
    notes.push(
      `goodput before ${perSecond(goodput.before, cap)}, while slow ${perSecond(goodput.slow, cap)} ` +
        `(the slowed origin serves ${(cap / SLOWDOWN).toFixed(0)}/s), after ${perSecond(goodput.after, cap)}; ` +
        `effective limit (median) before ${level.before}, while slow ${level.slow}, after ${level.after} (origin slots ${sizing.concurrency})`,
      `after the origin recovered: goodput >= ${RECOVERED_SHARE * 100}% of capacity in ${ms(recoveryMs)}, ` +
        `effective limit back to ${RECOVERED_SHARE * 100}% of its level before (${level.before}) in ${ms(limitBackMs)}; ` +
        `${p.all.timeouts504} x 504 (client budget ${BUDGET_MS} ms); origin: ${o.finishedAfterDeadline} finished after their deadline`,
      countersNote(delta),
    );
    return {
      rows: [phaseRow(name, `${MULTIPLE}x, service x${SLOWDOWN} then back`, pc)],
      figures: {
        sizing,
        stage: config,
        slowAtMs: slowAt,
        recoverAtMs: recoverAt,
        goodput,
        level,
        recoveryMs,
        limitBackMs,
        origin: o,
        stageCounters: delta,
        stageAfter: after,
        samples,
        guardStats: p.guardStats,
      },
      notes,
      targets: [
        recoveryTarget(
          name,
          `goodput back to ${RECOVERED_SHARE * 100}% of capacity after the origin recovers`,
          recoveryMs,
          durationMs - recoverAt,
          RECOVERY_GOAL_MS,
        ),
        recoveryTarget(
          name,
          `effective limit back to ${RECOVERED_SHARE * 100}% of its level before`,
          limitBackMs,
          durationMs - recoverAt,
          RECOVERY_GOAL_MS,
          ` (level ${level.before})`,
        ),
        ...stageChecks(name, p, config, after),
      ],
      timelines: [
        {
          title: `${name}: ${MULTIPLE}x over ${TENANTS} tenants, origin ${sizing.concurrency} slots, service x${SLOWDOWN} for a while`,
          ...timeline(p.load, samples, events),
        },
      ],
    };
  });
}
