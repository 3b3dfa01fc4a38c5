// Memory: the guard's resident memory (the workerd processes under wrangler dev) sampled through a
// 10x overload. Locally, workerd's RSS climbs with the request count even for a Worker that keeps
// no state (measured here: a pass-through Worker grows by hundreds of MiB over a few thousand
// requests), so a flat line is not available as a yardstick. The baseline is that pass-through
// Worker at the same request rate, in the same run, against a fast origin; the guard is judged on
// its growth beyond that: bounded queues and maps mean no extra growth that tracks the load.
import { sampleRss } from "../procmem.mjs";
import { phaseRow, target } from "./shared.mjs";

export const name = "memory";
export const needsGuard = true;

const TOLERANCE_MIB = 20; // second-half growth beyond the baseline's that still counts as flat

export async function run(lab) {
  const durationMs = lab.dur(15_000);
  const rate = 10 * lab.capacity;
  const rows = [];
  const figures = {};

  const baseline = await passthroughBaseline(lab, rate, durationMs);
  if (baseline) {
    rows.push(phaseRow(name, "passthrough 10x, fast origin", baseline.p));
    figures.passthrough = baseline.mem;
  }

  const tenant = await lab.tenant("memory", lab.limits());
  const guard = await sampled(lab, lab.guard, () =>
    lab.phase({
      label: "guard 10x with RSS sampling",
      target: "guard",
      durationMs,
      streams: [{ name: "t", rate, tenant }],
    }),
  );
  rows.push(phaseRow(name, "guard 10x", guard.p));
  figures.guard = guard.mem;

  const g = guard.mem;
  const b = baseline?.mem;
  const excess = b ? g.secondHalfGrowthMiB - b.secondHalfGrowthMiB : NaN;
  const notes = [`guard workerd RSS: ${describe(g)}`];
  if (b) notes.push(`pass-through workerd RSS at the same rate: ${describe(b)}`);
  return {
    rows,
    figures,
    notes,
    targets: [
      target(
        name,
        "guard memory flat under 10x",
        `second-half growth <= pass-through's + ${TOLERANCE_MIB} MiB`,
        b ? `${signed(g.secondHalfGrowthMiB)} vs ${signed(b.secondHalfGrowthMiB)} MiB` : "no baseline",
        Number.isFinite(excess) ? excess <= TOLERANCE_MIB : null,
      ),
    ],
  };
}

/** The pass-through Worker at `rate` against the origin made fast (1000 slots x 5 ms), then restored. */
async function passthroughBaseline(lab, rate, durationMs) {
  const worker = await lab.startPassthrough().catch((e) => {
    lab.log(`  pass-through Worker did not start: ${e.message.split("\n")[0]}`);
    return undefined;
  });
  if (!worker) return undefined;
  await lab.origin.config({ concurrency: 1000, serviceMs: 5, jitter: 0 });
  try {
    return await sampled(lab, worker, () =>
      lab.phase({
        label: "pass-through 10x with RSS sampling",
        target: "passthrough",
        baseUrl: worker.url,
        cpuOf: worker,
        durationMs,
        streams: [{ name: "t", rate }],
      }),
    );
  } finally {
    const { concurrency, serviceMs, jitter } = lab.sizing;
    await lab.origin.config({ concurrency, serviceMs, jitter });
    await worker.stop();
  }
}

async function sampled(_lab, wrangler, runPhase) {
  const procs = wrangler.workerdProcs();
  const sampler = sampleRss(
    procs.map((p) => p.pid),
    500,
  );
  let p;
  try {
    p = await runPhase();
  } catch (e) {
    sampler.stop();
    throw e;
  }
  const raw = sampler.stop();
  const first = raw.samples[0]?.byPid ?? {};
  const last = raw.samples[raw.samples.length - 1]?.byPid ?? {};
  const mem = {
    ...raw,
    requests: p.all.sent,
    secondHalfGrowthMiB: raw.endMiB - raw.midMiB,
    byRole: Object.fromEntries(procs.map((pr) => [pr.role, { startMiB: first[pr.pid], endMiB: last[pr.pid] }])),
  };
  return { p, mem };
}

function describe(m) {
  const roles = Object.entries(m.byRole)
    .map(([role, v]) => `${role} ${v.startMiB} -> ${v.endMiB}`)
    .join(", ");
  return `start ${m.startMiB} MiB, mid ${m.midMiB}, max ${m.maxMiB}, end ${m.endMiB} over ${m.requests} requests (${roles})`;
}

const signed = (v) => `${v >= 0 ? "+" : ""}${v.toFixed(1)}`;
