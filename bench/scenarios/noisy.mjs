// Noisy neighbour: tenant A floods at 5x the origin's capacity while tenant B sends a steady 30%.
// B's success and latency should not notice A. The two tenants split the origin's C slots (B gets
// half, A the rest) so their sum never exceeds what the origin can serve; otherwise A alone could
// fill the origin and B would queue behind A inside the origin, where no guard can help. What is
// left to measure is the guard's own isolation: A's shed traffic must not slow B down.
import { ms, pct, phaseRow, target, when } from "./shared.mjs";

export const name = "noisy";
export const needsGuard = true;

export async function run(lab) {
  const share = 0.5;
  const durationMs = lab.dur(15_000);
  const bRate = 0.3 * lab.capacity;
  const aRate = 5 * lab.capacity;
  const rows = [];

  const bAloneTenant = await lab.tenant("noisy-b-alone", lab.limits(share));
  const alone = await lab.phase({
    label: "B alone",
    target: "guard",
    durationMs,
    streams: [{ name: "B", rate: bRate, tenant: bAloneTenant }],
  });
  rows.push(phaseRow(name, "B alone", alone));

  const a = await lab.tenant("noisy-a", lab.limits(1 - share));
  const b = await lab.tenant("noisy-b", lab.limits(share));
  const both = await lab.phase({
    label: "A 5x + B",
    target: "guard",
    durationMs,
    streams: [
      { name: "A", rate: aRate, tenant: a },
      { name: "B", rate: bRate, tenant: b },
    ],
  });
  const [sa, sb] = both.byStream;
  rows.push(phaseRow(name, "A 5x (with B)", both, sa));
  rows.push(phaseRow(name, "B (with A 5x)", both, sb));

  const ratio = sb.okLatency.p99 / alone.all.okLatency.p99;
  return {
    rows,
    figures: {
      limitsA: a.limits,
      limitsB: b.limits,
      bAlone: alone.all,
      a: sa,
      b: sb,
      p99Ratio: ratio,
      origin: both.originStats,
      guardStats: both.guardStats,
    },
    notes: [
      `B p99 ${ms(sb.okLatency.p99)} with A flooding vs ${ms(alone.all.okLatency.p99)} alone (x${ratio.toFixed(2)}); A goodput ${sa.goodputPerS.toFixed(1)}/s`,
    ],
    targets: [
      target(
        name,
        "B success with A at 5x",
        ">= 99%",
        pct(sb.successRate),
        when(sb.successRate, (v) => v >= 0.99),
      ),
      target(
        name,
        "B p99 with A at 5x",
        "<= 1.5x B alone",
        `x${ratio.toFixed(2)}`,
        when(ratio, (v) => v <= 1.5),
      ),
    ],
  };
}
