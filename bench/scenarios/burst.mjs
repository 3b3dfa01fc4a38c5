// Burst: requests all at once that fit the bucket (and the queue, and the wait budget). The token
// bucket exists to absorb exactly this, so nothing should be shed, and the origin still never sees
// more than C at once. The same burst straight at the origin shows what it does unguarded.
import { ms, phaseRow, target } from "./shared.mjs";

export const name = "burst";
export const needsGuard = false;

export async function run(lab) {
  const limits = lab.limits();
  // Two thirds of the bucket; the queue holds burst - C, and the last one waits about
  // (burst - C) / capacity = 0.9 s, inside maxWaitMs = 1.5 s.
  const size = Math.round((limits.burst * 2) / 3);
  const durationMs = 3000; // the burst is at t=0; the rest is time for it to drain
  const rows = [];

  const direct = await lab.phase({
    label: "direct",
    target: "direct",
    durationMs,
    streams: [{ name: "b", rate: 0, burst: size }],
  });
  rows.push(phaseRow(name, `direct ${size} at once`, direct));
  if (!lab.guard) return { rows, figures: { size, direct: direct.all }, notes: [], targets: [] };

  const tenant = await lab.tenant("burst", limits);
  const guard = await lab.phase({
    label: "guard",
    target: "guard",
    durationMs,
    streams: [{ name: "b", rate: 0, burst: size, tenant }],
  });
  rows.push(phaseRow(name, `guard ${size} at once`, guard));
  const failed = guard.all.sent - guard.all.ok;
  return {
    rows,
    figures: { size, limits, direct: direct.all, guard: guard.all, guardStats: guard.guardStats },
    notes: [
      `burst of ${size} (bucket ${limits.burst}, queue ${limits.maxQueue}): guard max ${ms(guard.all.okLatency.max)}, origin saw at most ${guard.originStats.maxOutstanding} at once (direct: ${direct.originStats.maxOutstanding})`,
    ],
    targets: [
      target(
        name,
        "burst within the bucket",
        "0 shed or failed",
        `${failed} of ${guard.all.sent} not 2xx`,
        failed === 0,
      ),
    ],
  };
}
