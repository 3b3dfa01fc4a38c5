// Slow origin: mid-run the origin's service time rises 5x, so its capacity falls 5x under a load
// that was comfortable (80% of capacity). Clients send a 1 s budget. A guard that adapts notices
// the slower drain and refuses early (503 with Retry-After) instead of admitting work that ends
// in a 504 at the deadline and burns origin time on answers nobody waits for.
import { isShed, settleTime, timeSeries } from "../stats.mjs";
import { ms, phaseRow } from "./shared.mjs";

export const name = "slow-origin";
export const needsGuard = true;

const BIN_MS = 1000;
const SLOWDOWN = 5;
const BUDGET_MS = 1000;

export async function run(lab) {
  const durationMs = Math.max(6000, lab.dur(24_000));
  const switchAtMs = Math.round((durationMs * 0.4) / BIN_MS) * BIN_MS;
  const slowMs = lab.sizing.serviceMs * SLOWDOWN;
  const tenant = await lab.tenant("slow-origin", lab.limits());
  let switched = false;
  let p;
  try {
    p = await lab.phase({
      label: `service x${SLOWDOWN} at ${switchAtMs / 1000} s`,
      target: "guard",
      durationMs,
      streams: [{ name: "t", rate: 0.8 * lab.capacity, budgetMs: BUDGET_MS, tenant }],
      during: (elapsed) => {
        if (switched || elapsed < switchAtMs) return;
        switched = true;
        lab.origin.config({ serviceMs: slowMs }).catch((e) => lab.log(`  origin config failed: ${e.message}`));
      },
    });
  } finally {
    await lab.origin.config({ serviceMs: lab.sizing.serviceMs });
  }

  const series = timeSeries(p.load, BIN_MS);
  const { settleMs, finalShedShare } = settleTime(series, switchAtMs);
  const after = countAfter(p.load, switchAtMs);
  const o = p.originStats;
  return {
    rows: [phaseRow(name, `0.8x, then service x${SLOWDOWN}`, p)],
    figures: {
      switchAtMs,
      slowMs,
      budgetMs: BUDGET_MS,
      series,
      settleMs,
      finalShedShare,
      after,
      origin: o,
      guardStats: p.guardStats,
    },
    notes: [
      `after the slowdown: shed share settled in ${ms(settleMs)} at ${(finalShedShare * 100).toFixed(0)}%; ` +
        `${after.s503} x 503 and ${after.s429} x 429 vs ${after.s504} x 504, ${after.ok} x 2xx; ` +
        `origin: ${o.finishedAfterDeadline} finished after their deadline (wasted), ${o.startedAfterDeadline} started after it`,
    ],
    targets: [],
  };
}

function countAfter(load, fromMs) {
  const out = { ok: 0, s429: 0, s503: 0, s504: 0, other: 0 };
  const { rec } = load;
  for (let i = 0; i < rec.count; i++) {
    if (rec.tSend[i] < fromMs) continue;
    const s = rec.status[i];
    if (s >= 200 && s < 300) out.ok++;
    else if (s === 429) out.s429++;
    else if (s === 503) out.s503++;
    else if (s === 504) out.s504++;
    else if (!isShed(s)) out.other++;
  }
  return out;
}
