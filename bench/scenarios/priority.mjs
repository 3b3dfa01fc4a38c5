// Priority: one tenant floods at 4x capacity with low priority while its critical traffic runs at
// 20% of capacity. Critical requests should still get through: the guard sheds the low ones first.
import { ms, pct, phaseRow, target, when } from "./shared.mjs";

export const name = "priority";
export const needsGuard = true;

export async function run(lab) {
  const durationMs = lab.dur(15_000);
  const criticalShare = 0.2;
  const tenant = await lab.tenant("priority", lab.limits(1, { maxClientPriority: "critical" }));
  const p = await lab.phase({
    label: "low 4x + critical 20%",
    target: "guard",
    durationMs,
    streams: [
      { name: "low", rate: 4 * lab.capacity, priority: "low", tenant },
      { name: "critical", rate: criticalShare * lab.capacity, priority: "critical", tenant },
    ],
  });
  const [low, crit] = p.byStream;
  return {
    rows: [phaseRow(name, "low 4x", p, low), phaseRow(name, "critical 20%", p, crit)],
    figures: { low, critical: crit, origin: p.originStats, guardStats: p.guardStats },
    notes: [
      `critical: ${pct(crit.successRate)} success, p99 ${ms(crit.okLatency.p99)}; low: ${low.goodputPerS.toFixed(1)}/s goodput; origin saw by priority ${JSON.stringify(p.originStats.byPriority)}`,
    ],
    targets: [
      target(
        name,
        `critical success at ${criticalShare * 100}% of capacity`,
        ">= 99%",
        pct(crit.successRate),
        when(crit.successRate, (v) => v >= 0.99),
      ),
    ],
  };
}
