// Overload: one tenant at 2x, 5x and 10x the origin's capacity through the guard, and 5x straight
// at the origin for contrast. Graceful degradation means goodput stays near capacity, admitted
// requests keep a bounded latency, the origin never sees more than the in-flight limit, and every
// refused request is told why and when to come back.
import { ms, pct, phaseRow, target, when } from "./shared.mjs";

export const name = "overload";
export const needsGuard = false;

const MULTIPLES = [2, 5, 10];

export async function run(lab) {
  const limits = lab.limits();
  const durationMs = lab.dur(15_000);
  // Goodput is counted from the moment the bucket's initial burst and the queue have settled.
  const goodputFromMs = Math.min(3000, durationMs / 3);
  const rows = [];
  const figures = { limits, steps: {} };
  const targets = [];
  const notes = [];

  if (lab.guard) {
    for (const m of MULTIPLES) {
      const tenant = await lab.tenant(`overload-${m}x`, limits);
      const p = await lab.phase({
        label: `${m}x`,
        target: "guard",
        durationMs,
        goodputFromMs,
        streams: [{ name: `${m}x`, rate: m * lab.capacity, tenant }],
      });
      rows.push(phaseRow(name, `guard ${m}x`, p));
      figures.steps[`guard${m}x`] = { summary: p.all, origin: p.originStats, guardStats: p.guardStats };
      if (m === 5) targets.push(...fiveX(p, lab, limits));
    }
  }

  const direct = await lab.phase({
    label: "direct 5x",
    target: "direct",
    durationMs,
    goodputFromMs,
    streams: [{ name: "5x", rate: 5 * lab.capacity }],
  });
  rows.push(phaseRow(name, "direct 5x", direct));
  figures.steps.direct5x = { summary: direct.all, origin: direct.originStats };
  notes.push(
    `direct 5x: origin queue reached ${direct.originStats.maxOutstanding}, p99 of answered ${ms(direct.all.okLatency.p99)}, ` +
      `${direct.all.droppedByGenerator} dropped by the generator, ${Object.values(direct.all.errors).reduce((a, b) => a + b, 0)} without an answer`,
  );
  return { rows, figures, notes, targets };
}

function fiveX(p, lab, limits) {
  const s = p.all;
  const share = s.goodputPerS / lab.capacity;
  // "Service time" is the origin's longest (S plus jitter): an admitted request may wait up to
  // maxWaitMs and then be served; anything beyond is waiting the guard did not bound.
  const longestServiceMs = Math.round(lab.sizing.serviceMs * (1 + lab.sizing.jitter));
  const p99Goal = longestServiceMs + limits.maxWaitMs;
  const conc = p.originStats.maxOutstanding;
  return [
    target(
      name,
      "5x goodput",
      ">= 90% of origin capacity",
      `${s.goodputPerS.toFixed(1)}/s = ${pct(share)}`,
      when(share, (v) => v >= 0.9),
    ),
    target(
      name,
      "5x origin concurrency",
      `<= maxInFlight ${limits.maxInFlight}`,
      `max ${conc}`,
      conc <= limits.maxInFlight,
    ),
    target(
      name,
      "5x p99 of admitted",
      `<= service ${longestServiceMs} + maxWait ${limits.maxWaitMs} ms`,
      ms(s.okLatency.p99),
      when(s.okLatency.p99, (v) => v <= p99Goal),
    ),
    target(
      name,
      "5x shed responses carry all signals",
      "100%",
      `${pct(s.shedAllSignalsShare)} of ${s.shed}`,
      when(s.shedAllSignalsShare, (v) => v === 1),
    ),
  ];
}
