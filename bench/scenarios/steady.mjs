// Steady: one tenant at half its rate limit. Nothing should be shed; the figure of interest is the
// latency the guard adds over the same origin reached directly, at the same rate, in the same run.
// A pass-through Worker under the same `wrangler dev` splits that into what any local Worker pays
// (wrangler's proxy and Miniflare's entry worker) and what the guard itself costs. The same two
// phases give the guard's throughput relative to the pass-through: 2xx/s at the same offered
// rate (which only shows a loss if the guard refuses or fails requests it should forward), and
// the CPU each costs per request, whose inverse ratio is the throughput a CPU-bound host would get.
import { cpuPerRequest, ms, phaseRow, target, times, warm, when } from "./shared.mjs";

const THROUGHPUT_GOAL = 0.85; // guard / pass-through

export const name = "steady";
export const needsGuard = false; // the direct half runs without it

export async function run(lab) {
  // Without jitter the origin's time is the same constant on every path, so the p50 difference
  // is the added cost and not the noise of a ±30% service time over a few hundred samples.
  await lab.origin.config({ jitter: 0 });
  try {
    return await measure(lab);
  } finally {
    await lab.origin.config({ jitter: lab.sizing.jitter });
  }
}

async function measure(lab) {
  const limits = lab.limits();
  const rate = limits.rate / 2;
  const durationMs = lab.dur(15_000);
  const rows = [];
  const figures = { rate };
  const run = async (label, baseUrl, tenant, cpuOf) => {
    await warm(baseUrl, tenant);
    const p = await lab.phase({
      label,
      target: label,
      baseUrl,
      durationMs,
      cpuOf,
      streams: [{ name: "t", rate, tenant }],
    });
    rows.push(phaseRow(name, label, p));
    figures[label] = p.all;
    return p;
  };

  const direct = (await run("direct", lab.originUrl)).all.okLatency;
  if (!lab.guard) return { rows, figures, notes: [], targets: [] };

  let pass, passPhase;
  const passthrough = await lab.startPassthrough().catch((e) => {
    lab.log(`  pass-through Worker did not start: ${e.message.split("\n")[0]}`);
    return undefined;
  });
  if (passthrough) {
    try {
      passPhase = await run("passthrough", passthrough.url, undefined, passthrough);
      pass = passPhase.all.okLatency;
    } finally {
      await passthrough.stop();
    }
  }

  const tenant = await lab.tenant("steady", limits);
  const guard = await run("guard", lab.guard.url, tenant);
  const g = guard.all.okLatency;
  const addedP50 = g.p50 - direct.p50;
  const addedP99 = g.p99 - direct.p99;
  Object.assign(figures, { addedP50Ms: addedP50, addedP99Ms: addedP99, guardStats: guard.guardStats });
  const notes = [
    `guard adds p50 ${ms(addedP50)}, p99 ${ms(addedP99)} over direct at ${rate} req/s, origin without jitter (direct p50 ${ms(direct.p50)}, guard p50 ${ms(g.p50)})`,
  ];
  if (pass) {
    figures.passthroughAddedP50Ms = pass.p50 - direct.p50;
    figures.guardOverPassthroughP50Ms = g.p50 - pass.p50;
    notes.push(
      `of that, a pass-through Worker under the same wrangler dev adds p50 ${ms(pass.p50 - direct.p50)}, p99 ${ms(pass.p99 - direct.p99)}: the guard's own cost is p50 ${ms(g.p50 - pass.p50)}`,
    );
  }
  return {
    rows,
    figures,
    notes,
    targets: [
      target(
        name,
        "added p50 latency",
        "<= 3 ms over direct",
        ms(addedP50),
        when(addedP50, (v) => v <= 3),
      ),
      target(name, "nothing shed at half the limit", "0 shed", `${guard.all.shed} shed`, guard.all.shed === 0),
      ...throughputTargets(guard, passPhase, figures),
    ],
  };
}

/** Guard vs pass-through at the same offered rate: 2xx/s, and CPU per request (inverted, as throughput). */
function throughputTargets(guard, pass, figures) {
  // Each side's 2xx/s per request/s it was actually sent: Poisson arrivals at 22/s differ by ~5%
  // between two 15 s phases (more in --quick), which would otherwise read as a throughput gap.
  const sentPerS = (p) => p.all.sent / (p.load.durationMs / 1000);
  const delivered = (p) => p.all.goodputPerS / sentPerS(p);
  const okRatio = pass ? delivered(guard) / delivered(pass) : NaN;
  const guardCpu = cpuPerRequest(guard);
  const passCpu = pass ? cpuPerRequest(pass) : NaN;
  const cpuBound = passCpu / guardCpu;
  Object.assign(figures, {
    throughputRatio2xx: okRatio,
    guardCpuMsPerReq: guardCpu,
    passthroughCpuMsPerReq: passCpu,
    cpuBoundThroughputRatio: cpuBound,
    guardCpuByRole: guard.cpu?.byRole,
    passthroughCpuByRole: pass?.cpu?.byRole,
  });
  const goal = `>= ${THROUGHPUT_GOAL}x pass-through`;
  return [
    target(
      name,
      "throughput vs pass-through, 2xx/s per sent/s, same rate",
      goal,
      pass
        ? `${times(okRatio)} (2xx/s of sent/s: guard ${guard.all.goodputPerS.toFixed(1)} of ${sentPerS(guard).toFixed(1)}, pass-through ${pass.all.goodputPerS.toFixed(1)} of ${sentPerS(pass).toFixed(1)})`
        : "no pass-through",
      when(okRatio, (v) => v >= THROUGHPUT_GOAL),
    ),
    target(
      name,
      "throughput vs pass-through, CPU-bound (inverse CPU ms/req)",
      goal,
      pass
        ? `${times(cpuBound)} (guard ${guardCpu.toFixed(2)} vs pass-through ${passCpu.toFixed(2)} ms/req)`
        : "no pass-through",
      when(cpuBound, (v) => v >= THROUGHPUT_GOAL),
    ),
  ];
}
