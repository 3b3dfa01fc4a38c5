// The lab: origin sizing, the tenant limits derived from it, and one "phase" primitive that every
// scenario uses (reset origin -> run load -> read origin and guard counters -> summarize).
import { provisionTenant } from "./admin.mjs";
import { jsonOk, sleep } from "./http.mjs";
import { runLoad } from "./load.mjs";
import { cpuMsByPid, cpuSnapshot, otherCores } from "./procmem.mjs";
import { summarize } from "./stats.mjs";

// Why this size: on this 2-core machine `wrangler dev` forwards only ~200-400 req/s open-loop (with
// the load generator and the origin on the same cores) and collapses near 800. The worst scenario
// offers 10x the origin's capacity, so capacity must stay near 40 req/s: 10x = 400 req/s, most of
// it shed by the guard (the shed path makes no origin fetch, so it is cheaper than a forward).
// C=4 slots of S=100 ms give 40 req/s, and 100 ms leaves room for 150-300 ms deadline budgets.
export const DEFAULT_SIZING = { concurrency: 4, serviceMs: 100, jitter: 0.3 };

const LINGER_ALLOWANCE_MS = 1000;

export const capacityOf = (sizing) => (sizing.concurrency * 1000) / sizing.serviceMs;

/**
 * Default tenant limits: the guard protects the origin (maxInFlight = C), the rate sits a little
 * above capacity (so in overload the origin, not the bucket, is the bottleneck and goodput can
 * reach capacity), and the queue bound maps to the wait budget: drain rate x maxWait = 40/s x 1.5 s
 * = 60; anything deeper would only store lateness. The bucket holds 1.5 s of capacity.
 */
export function defaultLimits(sizing, share = 1) {
  const cap = capacityOf(sizing) * share;
  const maxWaitMs = 1500;
  return {
    rate: Math.round(cap * 1.1),
    burst: Math.round(cap * 1.5),
    maxInFlight: Math.max(1, Math.round(sizing.concurrency * share)),
    maxQueue: Math.max(1, Math.round((cap * maxWaitMs) / 1000)),
    maxWaitMs,
  };
}

export function originControl(originUrl) {
  const c = (p) => `${originUrl}/__origin/${p}`;
  return {
    stats: () => jsonOk(c("stats")),
    reset: () => jsonOk(c("reset"), { method: "POST", body: {} }),
    config: (patch) => jsonOk(c("config"), { method: "POST", body: patch }),
    /** Waits (bounded) until the origin has nothing active or queued. */
    async quiesce(maxMs = 5000) {
      const until = Date.now() + maxMs;
      while (Date.now() < until) {
        const s = await jsonOk(c("stats"));
        if (s.activeNow === 0 && s.queuedNow === 0) return true;
        await sleep(100);
      }
      return false;
    },
  };
}

/**
 * @param {{ originUrl: string, guard?: {url:string, workerdPids:()=>number[]}, admin?: any,
 *   startPassthrough?: () => Promise<{url:string, stop:()=>Promise<void>}>,
 *   sizing: typeof DEFAULT_SIZING, scale: number, runId: string, log: (m:string)=>void,
 *   quick?: boolean, seed?: number, matrixOrigins?: string[], budgetEndsAt?: number }} opts
 */
export function createLab(opts) {
  const { originUrl, guard, admin, sizing, scale, runId, log, startPassthrough } = opts;
  const origin = originControl(originUrl);
  const capacity = capacityOf(sizing);
  return {
    originUrl,
    /** Starts the pass-through baseline Worker under wrangler dev (undefined with --no-guard). */
    startPassthrough,
    sizing,
    capacity,
    origin,
    guard,
    admin,
    log,
    /** --quick: scenarios with their own phase lengths (the matrix) pick their short set. */
    quick: Boolean(opts.quick),
    /** Base seed of the arrival schedules that must repeat between targets (the matrix). */
    seed: opts.seed,
    /** --matrix-origins: the matrix's origins to run (undefined: its default set). */
    matrixOrigins: opts.matrixOrigins,
    /** Epoch ms of the run's watchdog: a long scenario stops starting cells before it. */
    budgetEndsAt: opts.budgetEndsAt,
    /** Phase length: full-run milliseconds scaled for --quick, never under 3 s. */
    dur: (fullMs) => Math.max(3000, Math.round(fullMs * scale)),
    limits: (share = 1, extra = {}) => ({ ...defaultLimits(sizing, share), ...extra }),

    /** A fresh tenant with its own key, so no state carries over between phases. */
    async tenant(label, limits) {
      if (!admin) throw new Error("this scenario needs the guard");
      const name = `${label}-${runId}`;
      const key = await provisionTenant(admin, name, limits);
      return { name, key, limits };
    },

    /**
     * One measured phase. `target` is "guard" or "direct" (or a label, with `baseUrl`). Streams
     * carry their own headers; for the guard, `tenant` (from lab.tenant) adds x-api-key.
     * `during(elapsedMs)` is called from the scheduler tick (keep it cheap; used for mid-run changes).
     * `cpuOf` (a wrangler handle with workerdProcs; default: the guard for target "guard") has the
     * CPU time of its workerd processes measured over the phase. `statsAfterMs` is how long the
     * guard is left to settle before its counters are read (batched edge-shed reports lag ~1 s).
     * `seed` makes the arrival schedule reproducible (the same seed, the same arrivals).
     */
    async phase({
      label,
      target,
      baseUrl,
      streams,
      durationMs,
      goodputFromMs = 0,
      maxOutstanding = 1000,
      drainMs = 3000,
      during,
      cpuOf,
      statsAfterMs = LINGER_ALLOWANCE_MS,
      seed,
    }) {
      if (target === "guard" && !guard) throw new Error("this phase needs the guard");
      // Drop what the last phase left queued, let active work finish, then zero the counters.
      await origin.reset();
      await origin.quiesce();
      await origin.reset();
      const prepared = streams.map((s) => ({
        ...s,
        tenant: s.tenant?.name,
        headers: {
          ...(s.tenant && target === "guard" ? { "x-api-key": s.tenant.key } : {}),
          ...(s.priority ? { "x-priority": s.priority } : {}),
          ...s.headers,
        },
      }));
      const total = prepared.reduce((n, s) => n + s.rate, 0);
      log(`  ${label}: ${target}, ${total.toFixed(0)} req/s for ${(durationMs / 1000).toFixed(0)} s`);
      const procs = (cpuOf ?? (target === "guard" ? guard : undefined))?.workerdProcs() ?? [];
      const procCpuBefore = cpuMsByPid(procs.map((p) => p.pid));
      const cpuBefore = cpuSnapshot();
      const load = await runLoad({
        baseUrl: baseUrl ?? (target === "guard" ? guard.url : originUrl),
        streams: prepared,
        durationMs,
        maxOutstanding,
        drainMs,
        seed,
        onTick: during,
      });
      const cpuAfter = cpuSnapshot();
      const originStats = await origin.stats();
      const guardStats = {};
      if (target === "guard") {
        // Let the origin finish and any lingering lease (held about one service time after a
        // deadline abort) run out, so what the guard still holds below is really held too long.
        await origin.quiesce(3000);
        await sleep(statsAfterMs);
      }
      // After the settle time, so releases and shed reports the phase caused are counted; before
      // the admin reads below, which are not the phase's work.
      const cpu = procCpu(procs, procCpuBefore, cpuMsByPid(procs.map((p) => p.pid)));
      if (target === "guard") {
        for (const s of streams) {
          if (!s.tenant || guardStats[s.tenant.name]) continue;
          guardStats[s.tenant.name] = await admin.stats(s.tenant.name).catch((e) => ({ error: String(e.message) }));
        }
      }
      // Slots the guard still counts as taken once the phase is over and the origin idle.
      const states = Object.values(guardStats)
        .map((g) => g.state)
        .filter(Boolean);
      const slotsHeldAfter =
        target === "guard"
          ? {
              inFlight: states.reduce((n, st) => n + (st.inFlight ?? 0), 0),
              lingering: states.reduce((n, st) => n + (st.lingering ?? 0), 0),
            }
          : undefined;
      const window = { fromMs: goodputFromMs, toMs: durationMs };
      return {
        label,
        target,
        capacity,
        // CPU (in cores) that programs outside the benchmark used during the phase: noise.
        otherCores: otherCores(cpuBefore, cpuAfter),
        cpu,
        load,
        originStats,
        guardStats,
        slotsHeldAfter,
        all: summarize(load, undefined, window),
        byStream: prepared.map((_, i) => summarize(load, i, window)),
      };
    },
  };
}

/** CPU ms the processes used between two cpuMsByPid readings: total and by role; undefined if none. */
function procCpu(procs, before, after) {
  if (procs.length === 0) return undefined;
  const byRole = {};
  let ms = 0;
  for (const { pid, role } of procs) {
    const used = Math.max(0, after[pid] - before[pid]);
    byRole[role] = (byRole[role] ?? 0) + used;
    ms += used;
  }
  return { ms, byRole };
}
