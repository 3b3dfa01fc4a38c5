// Origin 503: four tenants offer 1.25x the origin's capacity through the origin stage; a quarter of
// the way in, the origin answers every request 503 with `Retry-After: 2` for 10 s, then serves again.
// The guard should pass the first 503s on and then hold all traffic back for as long as the origin
// asked (answering 503 origin_backoff itself), so the origin receives nearly nothing while it is
// down: only the probes after each Retry-After runs out. The origin counts arrivals that came while
// a Retry-After it had sent (more than 250 ms earlier) still held: they should be 0. Then: how long
// after the origin is back until goodput reaches 80% of capacity and the effective limit its level.
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
import { ms, phaseRow, target } from "./shared.mjs";

export const name = "origin-503";
export const needsGuard = true;

const TENANTS = 4;
const MULTIPLE = 1.25;
const RETRY_AFTER_S = 2;
const RECOVERED_SHARE = 0.8;
const RECOVERY_GOAL_MS = (RETRY_AFTER_S + 3) * 1000; // a Retry-After that began just before, and a ramp

export async function run(lab) {
  return withOriginStage(lab, {}, async ({ sizing, config, notes }) => {
    const cap = sizing.capacity;
    const rate = (MULTIPLE * cap) / TENANTS;
    const tenants = [];
    for (let i = 0; i < TENANTS; i++) {
      tenants.push(await lab.tenant(`g503-${i + 1}`, roomyLimits(lab, rate, config.maxInFlight)));
    }
    const durationMs = Math.max(12_000, lab.dur(30_000));
    const failAtMs = Math.round((durationMs * 0.27) / 1000) * 1000;
    const failMs = Math.max(3000, Math.round(lab.dur(10_000) / 1000) * 1000);
    const warmMs = Math.min(4000, failAtMs / 2);
    const events = [];
    const poller = stagePoller(lab);
    const before = await stageStats(lab);
    let p;
    let polled;
    try {
      p = await lab.phase({
        label: `${MULTIPLE}x, origin 503 for ${failMs / 1000} s from ${failAtMs / 1000} s`,
        target: "guard",
        durationMs,
        goodputFromMs: warmMs,
        streams: tenants.map((tenant, i) => ({ name: `t${i + 1}`, rate, tenant })),
        during: (elapsed) => {
          poller.start(elapsed);
          if (events.length > 0 || elapsed < failAtMs) return;
          events.push({ atMs: elapsed, label: `origin 503, Retry-After ${RETRY_AFTER_S}` });
          events.push({ atMs: elapsed + failMs, label: "origin recovers" });
          lab.origin
            .config({ failForMs: failMs, retryAfterSec: RETRY_AFTER_S })
            .catch((e) => lab.log(`  origin config failed: ${e.message}`));
        },
      });
    } finally {
      polled = await poller.stop();
      await lab.origin.config({ failForMs: 0 }).catch(() => {});
    }
    const after = await stageStats(lab);
    const delta = counterDelta(before?.counters, after?.counters);
    const failAt = events[0]?.atMs ?? failAtMs;
    const recoverAt = failAt + failMs;
    const { samples } = polled;
    const done = okCompletions(p.load);
    const level = limitLevel(samples, warmMs, failAt);
    const recoveryMs = goodputRecoveryMs(done, recoverAt, durationMs, RECOVERED_SHARE * cap);
    const limitBackMs = limitRecoveryMs(samples, recoverAt, RECOVERED_SHARE * level);
    const goodput = {
      before: ratePerS(done, warmMs, failAt),
      after: ratePerS(done, Math.min(durationMs, recoverAt + 3000), durationMs),
    };
    const o = p.originStats;
    const f = o.fail;
    const reasons = p.all.shedByReason;
    const pc = { ...p, capacity: cap };
    notes.push(
      `during the ${failMs / 1000} s failure the origin received ${f.received} requests ` +
        `(by second ${JSON.stringify(f.bySecond)}), ${f.receivedInHold} of them while a Retry-After it had sent still held; ` +
        `clients got ${reasons.origin_unavailable ?? 0} origin 503s passed on and ${reasons.origin_backoff ?? 0} x 503 origin_backoff from the guard`,
      `goodput before ${perSecond(goodput.before, cap)}, after (from 3 s after recovery) ${perSecond(goodput.after, cap)}; ` +
        `after the origin recovered: goodput >= ${RECOVERED_SHARE * 100}% of capacity in ${ms(recoveryMs)}, ` +
        `effective limit back to ${RECOVERED_SHARE * 100}% of its level before (${level}) in ${ms(limitBackMs)}`,
      countersNote(delta),
    );
    return {
      rows: [phaseRow(name, `${MULTIPLE}x, origin 503 for ${failMs / 1000} s`, pc)],
      figures: {
        sizing,
        stage: config,
        failAtMs: failAt,
        failMs,
        retryAfterS: RETRY_AFTER_S,
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
        target(
          name,
          "forwarded while the origin's Retry-After held",
          "0",
          `${f.receivedInHold} (of ${f.received} received during the failure)`,
          f.firstAt === null ? null : f.receivedInHold === 0,
        ),
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
          ` (level ${level})`,
        ),
        ...stageChecks(name, p, config, after),
      ],
      timelines: [
        {
          title: `${name}: ${MULTIPLE}x over ${TENANTS} tenants, origin 503 (Retry-After ${RETRY_AFTER_S}) for ${failMs / 1000} s`,
          ...timeline(p.load, samples, events),
        },
      ],
    };
  });
}
