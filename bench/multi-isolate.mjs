// Multi-isolate run: `npm run bench:multi` (node bench/multi-isolate.mjs [--edges 3] [--seed 1]).
//
// Several edge Workers, each its own isolate, in front of one simulated origin and sharing one
// object worker, under open-loop load. What it shows:
//   1. the origin never holds more requests at once than the tenant's maxInFlight, whichever
//      isolates the load arrives at (bench/origin.mjs counts the most it held at once);
//   2. slots move to the isolate with demand: the load moves from edge 1 to the last edge mid-run,
//      and the tenant's stats (GET /__guard/tenants/{name}), every edge's own lease and the per-edge
//      goodput are sampled every 200-250 ms around the shift;
//   3. priority holds across isolates: critical traffic on edge 1 while edge 2 floods the same
//      tenant with low-priority traffic, once with the in-flight limit binding and once with the
//      rate (tokens) binding; the goal is >= 99% critical success.
// Around those: "spread" (equal load on every edge: is the limit shared evenly?), "ping-pong" (the
// shift five times over) and "small-burst" (one edge, a burst smaller than half a renewal's
// refill: does it get the tenant's rate?). `--only a,b` runs some of them.
//
// How: the Worker is bundled by `wrangler deploy --dry-run` (the same bundling as a deploy, into a
// temporary directory, so dist/ is left alone) from a generated entry that wraps src/index.ts and
// adds one read-only route, GET /__bench/lease/{tenant}: this isolate's id (drawn on its first
// request), how many requests it served, and its lease of that tenant (src/edge/tenant-leases.ts
// snapshot). Everything else goes to the guard unchanged. Miniflare (wrangler's own copy, driven
// through its programmatic API) runs one workerd with 1 + N Workers from that bundle: "objects"
// defines TenantGuard and OriginGuard and serves the admin calls; edge1..edgeN bind TENANT_GUARD
// and ORIGIN_GUARD to the classes in "objects" (durableObjects scriptName) and share its KV
// namespace; Miniflare dispatches by Host header (routes edgeN.test/*). workerd gives every
// Worker its own V8 isolate; the run checks that (distinct isolate ids and request counters,
// one lease holder per edge at the tenant's object) before it measures anything.
//
// The origin runs in a child process (this file with --origin-child) so that it does not share an
// event loop with the load generator; besides its own counters it tracks requests in progress by
// edge (the path names the edge) and samples them every 100 ms.
//
// Loopback only; bounded (a watchdog stops the run after 170 s; a run takes about 135 s on 2
// cores); every child (the origin, workerd) is stopped on exit. Results: bench/results/multi-isolate.md and .json.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { spawnTracked, stopAll, stopChild } from "./children.mjs";
import { runLoad } from "./load.mjs";
import { cpuMsByPid, cpuSnapshot, descendants, otherCores } from "./procmem.mjs";
import { summarize } from "./stats.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const thisFile = fileURLToPath(import.meta.url);

const HARD_LIMIT_MS = 170_000; // the watchdog: the run never goes past this
const ADMIN_TOKEN = "bench-multi-admin-token-0123456789";
// Origin: C slots of S ms. 8 slots so that their split between isolates is visible; 200 ms so
// the capacity (40 req/s) keeps a 4x flood (160 req/s) well inside what one workerd on 2 shared
// cores forwards and sheds.
const SIZING = { concurrency: 8, serviceMs: 200, jitter: 0.3 };
const CAPACITY = (SIZING.concurrency * 1000) / SIZING.serviceMs;
const SAMPLE_MS = 200; // tenant stats and every edge's lease
const ORIGIN_SAMPLE_MS = 100; // requests in progress at the origin, by edge
const BIN_MS = 250; // goodput bins
const SAMPLE_CAP = 2000; // samples kept per series and phase
const SETTLE_MS = 2500; // after the load: leases go idle (1 s) and are given back

// In-flight limit at the origin's concurrency (the design's rule); the queue bound maps to the
// wait budget (drain 40/s x 1 s); the rate sits above capacity so slots, not tokens, bind.
const SLOT_LIMITS = {
  rate: 1.5 * CAPACITY,
  burst: 1.5 * CAPACITY,
  maxInFlight: SIZING.concurrency,
  maxQueue: CAPACITY,
  maxWaitMs: 1000,
  timeoutMs: 3000,
  maxClientPriority: "critical",
};
// The overload lab's default shape: rate 1.1 x capacity, so a 4x flood makes the tokens bind too.
const TOKEN_LIMITS = { ...SLOT_LIMITS, rate: Math.round(1.1 * CAPACITY), burst: Math.round(1.5 * CAPACITY) };
// Tokens never bind: only the in-flight limit separates the flood from the critical traffic.
const WIDE_RATE_LIMITS = { ...SLOT_LIMITS, rate: 10 * CAPACITY, burst: 10 * CAPACITY };

// ---------------------------------------------------------------------------------------------
// The run

async function main() {
  const { values: flags } = parseArgs({
    options: {
      edges: { type: "string", default: "3" },
      seed: { type: "string", default: "1" },
      out: { type: "string", default: path.join(here, "results") },
      only: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (flags.help) {
    console.log(
      "node bench/multi-isolate.mjs [--edges 3..6] [--seed n] [--out dir] [--only spread,shift,ping-pong,small-burst,priority-slots,priority-tokens]",
    );
    return;
  }
  const edgeCount = Number(flags.edges);
  if (!Number.isInteger(edgeCount) || edgeCount < 3 || edgeCount > 6)
    throw new Error(`--edges must be 3..6, got ${flags.edges}`);
  const seed = Number(flags.seed);
  const started = Date.now();
  const runId = started.toString(36);
  const log = (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${m}`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "guard-multi-"));
  let mf;
  let originProc;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await mf?.dispose().catch(() => {});
    if (originProc) await stopChild(originProc);
    await stopAll();
    rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
  };
  const watchdog = setTimeout(() => {
    console.error(`watchdog: the run passed ${HARD_LIMIT_MS / 1000} s, stopping`);
    cleanup().finally(() => process.exit(2));
  }, HARD_LIMIT_MS);
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.once(sig, () => {
      console.error(`${sig}: stopping`);
      cleanup().finally(() => process.exit(130));
    });
  }

  try {
    log("bundling the Worker (wrangler deploy --dry-run, wrapped entry)");
    const bundle = await bundleWorker(tmp);
    log(`bundle ${path.basename(bundle.file)}: ${(bundle.bytes / 1024).toFixed(0)} KiB in ${bundle.ms} ms`);

    const origin = await startOriginChild();
    originProc = origin.proc;
    log(
      `origin on ${origin.url}: C=${SIZING.concurrency} x ${SIZING.serviceMs} ms (±${SIZING.jitter * 100}%) = ${CAPACITY} req/s`,
    );

    const edges = Array.from({ length: edgeCount }, (_, i) => `edge${i + 1}`);
    const workerLogs = { errors: 0, warnings: 0, first: [] };
    const t = Date.now();
    mf = await startMiniflare(bundle, origin.url, edges, workerLogs);
    const port = Number(new URL(mf.url).port);
    log(
      `miniflare ${mf.url}: workers objects, ${edges.join(", ")} in ${Date.now() - t} ms (workerd pid ${mf.workerdPids.join(", ")})`,
    );

    const ctl = controlClient(port);
    const ctx = { ctl, origin, edges, runId, seed, log, mf };

    const isolation = await checkIsolation(ctx);
    log(`isolation: ${isolation.verdict}`);
    if (!isolation.separate) throw new Error(`edges are not separate isolates: ${JSON.stringify(isolation)}`);

    const specs = phaseSpecs(edges);
    const only = flags.only ? new Set(flags.only.split(",")) : null;
    const unknown = only ? [...only].filter((name) => !specs.some((sp) => sp.name === name)) : [];
    if (unknown.length)
      throw new Error(`--only: no phase ${unknown.join(", ")} (phases: ${specs.map((sp) => sp.name).join(", ")})`);
    const phases = [];
    for (const spec of specs) if (!only || only.has(spec.name)) phases.push(await runPhase(ctx, spec));

    const result = {
      meta: {
        startedAt: new Date(started).toISOString(),
        elapsedMs: Date.now() - started,
        cpus: os.cpus().length,
        node: process.version,
        gitHead: git(["rev-parse", "--short", "HEAD"]),
        srcChanges: git(["status", "--porcelain", "--", "src"])?.split("\n").filter(Boolean).length,
        miniflare: mf.version,
        runner: "Miniflare programmatic API (wrangler's copy), one workerd, 1 + N Workers",
        bundle: { bytes: bundle.bytes, ms: bundle.ms, how: bundle.how },
        edges,
        seed,
      },
      sizing: { ...SIZING, capacity: CAPACITY },
      isolation,
      phases,
      workerLogs,
    };
    result.findings = findings(result);
    mkdirSync(flags.out, { recursive: true });
    writeFileSync(path.join(flags.out, "multi-isolate.json"), `${JSON.stringify(result)}\n`);
    writeFileSync(path.join(flags.out, "multi-isolate.md"), renderMarkdown(result));
    log(`wrote ${path.relative(root, path.join(flags.out, "multi-isolate.md"))} and .json`);
    for (const f of result.findings) console.log(`  ${f.ok === null ? "-" : f.ok ? "ok  " : "MISS"} ${f.text}`);
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
}

/** The phases, in order. `edge1StopsAtMs`: edge1's load ends there while another edge's goes on. */
function phaseSpecs(edges) {
  const n = edges.length;
  const last = edges[n - 1];
  const SHIFT_AT = 8000;
  const SHIFT_END = 20_000; // 12 s after the shift: the object reclaims a vanished holder about 10 s after its last report
  const TURN_MS = 4000;
  const TURNS = 5;
  const priority = (name, limits, what) => ({
    name,
    title: `critical 0.2x on edge1, low 4x flood on edge2; ${what}`,
    limits,
    durationMs: 15_000,
    streams: [
      { edge: "edge1", priority: "critical", rate: 0.2 * CAPACITY, fromMs: 0, toMs: 15_000 },
      { edge: "edge2", priority: "low", rate: 4 * CAPACITY, fromMs: 0, toMs: 15_000 },
    ],
  });
  return [
    {
      name: "spread",
      title: `every edge at 1x capacity (${n}x in all)`,
      limits: SLOT_LIMITS,
      durationMs: 8000,
      streams: edges.map((edge) => ({ edge, priority: "normal", rate: CAPACITY, fromMs: 0, toMs: 8000 })),
    },
    {
      name: "shift",
      title: `2x capacity on edge1, moved to ${last} at ${SHIFT_AT / 1000} s; the edges between at 0.25x throughout`,
      limits: SLOT_LIMITS,
      durationMs: SHIFT_END,
      shiftAtMs: SHIFT_AT,
      edge1StopsAtMs: SHIFT_AT,
      streams: [
        { edge: "edge1", priority: "normal", rate: 2 * CAPACITY, fromMs: 0, toMs: SHIFT_AT },
        ...edges
          .slice(1, -1)
          .map((edge) => ({ edge, priority: "normal", rate: 0.25 * CAPACITY, fromMs: 0, toMs: SHIFT_END })),
        { edge: last, priority: "normal", rate: 2 * CAPACITY, fromMs: SHIFT_AT, toMs: SHIFT_END },
      ],
    },
    {
      // The shift, again and again: every hand-off is a chance for the edge that lost its demand
      // to keep slots it no longer uses, or to give them back without saying so.
      name: "ping-pong",
      title: `2x capacity alternating between edge1 and ${last} every ${TURN_MS / 1000} s (${TURNS} turns)`,
      limits: SLOT_LIMITS,
      durationMs: TURN_MS * TURNS,
      streams: Array.from({ length: TURNS }, (_, k) => ({
        edge: k % 2 === 0 ? "edge1" : last,
        priority: "normal",
        rate: 2 * CAPACITY,
        fromMs: k * TURN_MS,
        toMs: (k + 1) * TURN_MS,
      })),
    },
    {
      // A valid config whose burst is smaller than what refills in one long poll (250 ms x rate):
      // one edge with plenty of demand, the in-flight limit far from binding.
      name: "small-burst",
      title: `${last} alone at 1.5x capacity; rate ${CAPACITY}/s (= capacity), burst 8`,
      limits: { ...SLOT_LIMITS, rate: CAPACITY, burst: 8 },
      durationMs: 8000,
      streams: [{ edge: last, priority: "normal", rate: 1.5 * CAPACITY, fromMs: 0, toMs: 8000 }],
    },
    priority("priority-slots", WIDE_RATE_LIMITS, "in-flight limit binding (rate 10x capacity)"),
    priority("priority-tokens", TOKEN_LIMITS, `rate binding too (rate ${TOKEN_LIMITS.rate}/s = 1.1x capacity)`),
  ];
}

function git(args) {
  try {
    return execFileSync("git", args, { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Bundle, origin, Miniflare

/** The entry: the guard as it is, plus GET /__bench/lease/{tenant} answered by this isolate. */
function benchEntry() {
  const src = (p) => JSON.stringify(path.join(root, "src", p));
  return `// Generated by bench/multi-isolate.mjs: the guard, plus a read-only view of this isolate's lease.
import guard from ${src("index.ts")};
import { tenantObjectName } from ${src("proxy/identity.ts")};
import { tenantLeaseSnapshot } from ${src("proxy/tenant-stage.ts")};
export { KeyRegistry, OriginGuard, TenantGuard } from ${src("index.ts")};

let isolateId = null; // drawn on the first request: module state, one per isolate
let served = 0;

function leaseView(lease) {
  if (!lease) return null;
  const inUse = Object.values(lease.inUse).reduce((a, b) => a + b, 0);
  return {
    holder: lease.holder,
    held: lease.slotsGranted - lease.slotsReturned,
    target: lease.targetSlots,
    inUse,
    queued: lease.queue.length,
    tokens: lease.tokensGranted - lease.tokensSpent - lease.tokensReturned,
    left: lease.left,
  };
}

export default {
  fetch(request, env, ctx) {
    isolateId ??= crypto.randomUUID();
    served++;
    const url = new URL(request.url);
    if (!url.pathname.startsWith("/__bench/")) return guard.fetch(request, env, ctx);
    if (request.headers.get("authorization") !== "Bearer " + env.ADMIN_TOKEN) return new Response("no", { status: 401 });
    const m = /^\\/__bench\\/lease\\/([a-z0-9._-]{1,63})$/.exec(url.pathname);
    return Response.json({ isolateId, served, lease: m ? leaseView(tenantLeaseSnapshot(tenantObjectName(m[1]))) : null });
  },
};
`;
}

async function bundleWorker(tmp) {
  const entry = path.join(tmp, "bench-entry.js");
  writeFileSync(entry, benchEntry());
  const outdir = path.join(tmp, "bundle");
  const begin = Date.now();
  const args = [
    path.join(root, "node_modules/wrangler/bin/wrangler.js"),
    "deploy",
    "--config",
    path.join(root, "wrangler.toml"),
    "--dry-run",
    "--outdir",
    outdir,
    entry,
  ];
  const { code, output } = await runTracked(path.join(root, "node_modules/.bin/node"), args, {
    cwd: root,
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      WRANGLER_LOG_PATH: tmp,
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      NO_COLOR: "1",
      FORCE_COLOR: "0",
    },
    timeoutMs: 90_000,
  });
  if (code !== 0) throw new Error(`wrangler deploy --dry-run failed (${code}):\n${output.slice(-2000)}`);
  const file = path.join(outdir, "bench-entry.js");
  const { size } = statSync(file);
  return {
    dir: outdir,
    file,
    bytes: size,
    ms: Date.now() - begin,
    how: "wrangler deploy --dry-run --outdir <tmp> <generated entry wrapping src/index.ts>",
  };
}

function runTracked(command, args, { timeoutMs, ...options }) {
  return new Promise((resolve) => {
    const child = spawnTracked(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (c) => {
      output = (output + c.toString("utf8")).slice(-20_000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => stopChild(child), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, output });
    });
  });
}

/** The origin in a child process, with an IPC channel for its per-edge timeline. */
async function startOriginChild() {
  const proc = spawnTracked(process.execPath, [thisFile, "--origin-child"], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map();
  let nextId = 1;
  let onReady;
  const ready = new Promise((resolve, reject) => {
    onReady = resolve;
    proc.once("exit", (code) => reject(new Error(`origin child exited (${code}) before it listened`)));
  });
  proc.on("message", (m) => {
    if (m?.kind === "listening") onReady(m.port);
    else if (m?.kind === "reply") {
      pending.get(m.id)?.(m.body);
      pending.delete(m.id);
    }
  });
  const port = await ready;
  const ask = (cmd) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`origin child did not answer ${cmd}`));
      }, 5000);
      pending.set(id, (body) => {
        clearTimeout(timer);
        resolve(body);
      });
      proc.send({ id, cmd });
    });
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    url,
    /** Zeroes the origin's counters (503 to what it still queues) and the per-edge tracker. */
    async reset() {
      await ask("reset-edges");
      return jsonCall(`${url}/__origin/reset`, { method: "POST", body: {} });
    },
    stats: () => jsonCall(`${url}/__origin/stats`),
    edges: () => ask("edges"),
    async quiesce(maxMs = 5000) {
      const until = Date.now() + maxMs;
      while (Date.now() < until) {
        const s = await jsonCall(`${url}/__origin/stats`);
        if (s.activeNow === 0 && s.queuedNow === 0) return true;
        await sleep(100);
      }
      return false;
    },
  };
}

async function startMiniflare(bundle, originUrl, edges, workerLogs) {
  // wrangler's own Miniflare, so the runtime is the one `wrangler dev` runs.
  const requireFromWrangler = createRequire(path.join(root, "node_modules/wrangler/package.json"));
  const mfPath = requireFromWrangler.resolve("miniflare");
  const mfPkg = requireFromWrangler("miniflare/package.json");
  const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = await import(pathToFileURL(mfPath).href);
  const bindings = {
    ORIGIN_URL: originUrl,
    ADMIN_TOKEN,
    UNKNOWN_KEYS: "reject",
    FAIL_MODE: "closed",
  };
  const worker = (name, durableObjects) => ({
    name,
    rootPath: bundle.dir,
    scriptPath: path.basename(bundle.file),
    modules: true,
    compatibilityDate: "2026-11-01",
    compatibilityFlags: ["enable_request_signal"],
    routes: [`${name}.test/*`],
    bindings,
    kvNamespaces: { TENANTS: "tenants-shared" },
    durableObjects,
  });
  const own = { className: "TenantGuard", useSQLite: true };
  const ownOrigin = { className: "OriginGuard", useSQLite: true };
  const ownKeys = { className: "KeyRegistry", useSQLite: true };
  const remote = (d) => ({ ...d, scriptName: "objects" });
  const noteLog = (level, message) => {
    if (level === "error") workerLogs.errors++;
    else if (level === "warn") workerLogs.warnings++;
    else return;
    if (workerLogs.first.length < 20) workerLogs.first.push(`${level}: ${String(message).slice(0, 300)}`);
  };
  const options = convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0,
    cf: {}, // no fetch of the real Request.cf from the network
    log: new Log(LogLevel.WARN),
    handleStructuredLogs: ({ level, message }) => noteLog(level, message),
    workers: [
      worker("objects", { TENANT_GUARD: own, ORIGIN_GUARD: ownOrigin, KEY_REGISTRY: ownKeys }),
      ...edges.map((edge) =>
        worker(edge, { TENANT_GUARD: remote(own), ORIGIN_GUARD: remote(ownOrigin), KEY_REGISTRY: remote(ownKeys) }),
      ),
    ],
  });
  const before = new Set(descendants(process.pid).map((p) => p.pid));
  const instance = new Miniflare(options);
  const url = await instance.ready;
  const workerdPids = descendants(process.pid)
    .filter((p) => p.comm === "workerd" && !before.has(p.pid))
    .map((p) => p.pid);
  return { url: url.href.replace(/\/$/, ""), version: mfPkg.version, workerdPids, dispose: () => instance.dispose() };
}

// ---------------------------------------------------------------------------------------------
// Control plane over loopback, addressed by Host header

function controlClient(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const call = (host, p, opts = {}) =>
    hostRequest(agent, port, host, p, { ...opts, headers: { ...auth, ...opts.headers } });
  const ok = async (host, p, opts) => {
    const r = await call(host, p, opts);
    if (r.status < 200 || r.status >= 300)
      throw new Error(`${opts?.method ?? "GET"} ${host}${p} -> ${r.status}: ${r.text.slice(0, 300)}`);
    return r.body;
  };
  const tenantPath = (t) => `/__guard/tenants/${encodeURIComponent(t)}`;
  return {
    port,
    putTenant: (t, limits) => ok("objects.test", tenantPath(t), { method: "PUT", body: limits }),
    addKey: (t, key) => ok("objects.test", `${tenantPath(t)}/keys`, { method: "POST", body: { key } }),
    stats: (t) => ok("objects.test", tenantPath(t)),
    lease: (edge, t) => ok(`${edge}.test`, `/__bench/lease/${t}`),
    /** One guarded request through an edge, as a client sends it. */
    proxied: (edge, key, p, priority) =>
      hostRequest(agent, port, `${edge}.test`, p, {
        headers: { "x-api-key": key, ...(priority ? { "x-priority": priority } : {}) },
      }),
    close: () => agent.destroy(),
  };
}

function hostRequest(agent, port, host, p, { method = "GET", headers = {}, body, timeoutMs = 10_000 } = {}) {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        agent,
        host: "127.0.0.1",
        port,
        path: p,
        method,
        headers: {
          host,
          ...(text ? { "content-type": "application/json", "content-length": Buffer.byteLength(text) } : {}),
          ...headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const t = Buffer.concat(chunks).toString("utf8");
          let parsed;
          try {
            parsed = JSON.parse(t);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text: t });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${host}${p}: no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(text);
  });
}

async function jsonCall(url, { method = "GET", body } = {}) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} -> ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function provision(ctx, label, limits) {
  const name = `${label}-${ctx.runId}`;
  await ctx.ctl.putTenant(name, limits);
  const key = `bench_${label.replace(/[^a-z0-9]/g, "")}_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  await ctx.ctl.addKey(name, key);
  return { name, key, limits };
}

// ---------------------------------------------------------------------------------------------
// Step 0: are the edges separate isolates?

async function checkIsolation(ctx) {
  const { ctl, edges } = ctx;
  const tenant = await provision(ctx, "isolation", SLOT_LIMITS);
  const sentPerEdge = edges.map((_, i) => i + 2); // edge1: 2 requests, edge2: 3, ...
  // All at once, and the leases read right after: an idle lease is given back after 1 s.
  const answers = await Promise.all(
    edges.flatMap((edge, i) =>
      Array.from({ length: sentPerEdge[i] }, () => ctl.proxied(edge, tenant.key, `/${edge}/isolation`)),
    ),
  );
  const statuses = answers.map((a) => a.status);
  const views = await Promise.all(edges.map(async (edge) => ({ edge, ...(await ctl.lease(edge, tenant.name)) })));
  const stats = await ctl.stats(tenant.name);
  const isolateIds = new Set(views.map((v) => v.isolateId));
  const holderIds = new Set(views.map((v) => v.lease?.holder).filter(Boolean));
  // Each edge counts only its own requests (the ones sent above, its lease read, and none of the others').
  const countsOwn = views.every((v, i) => v.served === sentPerEdge[i] + 1);
  const separate =
    isolateIds.size === edges.length &&
    holderIds.size === edges.length &&
    stats.state.leases.holders === edges.length &&
    countsOwn;
  return {
    separate,
    verdict: separate
      ? `${edges.length} isolate ids, ${holderIds.size} lease holders at the object (stats.leases.holders = ${stats.state.leases.holders}), each edge's request counter counts only its own requests`
      : "NOT separate",
    sentPerEdge,
    statuses,
    views: views.map((v) => ({
      edge: v.edge,
      isolateId: v.isolateId,
      served: v.served,
      holder: v.lease?.holder ?? null,
    })),
    objectLeases: stats.state.leases,
  };
}

// ---------------------------------------------------------------------------------------------
// One phase: fresh tenant, warm edges, timed streams per edge, samplers, figures

async function runPhase(ctx, spec) {
  const { ctl, origin, log } = ctx;
  const tenant = await provision(ctx, spec.name, spec.limits);
  const used = [...new Set(spec.streams.map((s) => s.edge))];
  // Warm every edge the phase uses (key lookup cached, code hot), then let those leases go idle
  // and be given back, so the phase starts from no lease anywhere.
  for (const edge of used) for (let k = 0; k < 3; k++) await ctl.proxied(edge, tenant.key, `/${edge}/warm`);
  await sleep(1800);
  await origin.quiesce();
  await origin.reset();
  log(`${spec.name}: ${spec.title}`);

  const cpuBefore = cpuSnapshot();
  const workerdBefore = cpuMsByPid(ctx.mf.workerdPids);
  const T0 = Date.now();
  const sampler = startSampler(ctx, tenant.name, T0);
  const loads = await Promise.all(
    spec.streams.map(async (s, i) => {
      await sleep(Math.max(0, T0 + s.fromMs - Date.now()));
      const startedAt = Date.now() - T0;
      const load = await runLoad({
        baseUrl: `http://127.0.0.1:${ctl.port}`,
        streams: [
          {
            name: `${s.edge} ${s.priority}`,
            rate: s.rate,
            path: `/${s.edge}/item`,
            priority: s.priority,
            tenant: tenant.name,
            headers: { host: `${s.edge}.test`, "x-api-key": tenant.key, "x-priority": s.priority },
          },
        ],
        durationMs: s.toMs - s.fromMs,
        maxOutstanding: 1000,
        drainMs: 4000,
        defaultBudgetMs: 5000,
        seed: ctx.seed * 100 + i,
      });
      return { spec: s, startedAt, load };
    }),
  );
  const loadEnd = Date.now() - T0;
  const originStats = await origin.stats();
  const workerdAfter = cpuMsByPid(ctx.mf.workerdPids);
  const cpuAfter = cpuSnapshot();
  await sleep(SETTLE_MS); // sampled too: leases going idle and coming back
  const samples = await sampler.stop();
  const edgeTrack = await origin.edges();
  const finalStats = await ctl.stats(tenant.name);

  const streams = loads.map(({ spec: s, startedAt, load }) => ({
    edge: s.edge,
    priority: s.priority,
    rate: s.rate,
    fromMs: s.fromMs,
    toMs: s.toMs,
    startedAt,
    summary: trimSummary(summarize(load, 0)),
  }));
  const workerdCpuMs = ctx.mf.workerdPids.reduce(
    (n, pid) => n + Math.max(0, workerdAfter[pid] - workerdBefore[pid]),
    0,
  );
  const sent = streams.reduce((n, s) => n + s.summary.sent, 0);
  const phase = {
    name: spec.name,
    title: spec.title,
    tenant: tenant.name,
    limits: spec.limits,
    durationMs: spec.durationMs,
    shiftAtMs: spec.shiftAtMs,
    edge1StopsAtMs: spec.edge1StopsAtMs,
    loadEndMs: loadEnd,
    streams,
    origin: {
      maxOutstanding: originStats.maxOutstanding,
      maxActive: originStats.maxActive,
      received: originStats.received,
      completed: originStats.completed,
      byPriority: originStats.byPriority,
      receivedAfterDeadline: originStats.receivedAfterDeadline,
      finishedAfterDeadline: originStats.finishedAfterDeadline,
      clientGone: originStats.clientGone,
      trackedMax: edgeTrack.max,
      trackedMaxByEdge: edgeTrack.maxByEdge,
    },
    cpu: {
      workerdCores: workerdCpuMs / Math.max(1, loadEnd),
      workerdMsPerRequest: sent > 0 ? workerdCpuMs / sent : NaN,
      otherCores: otherCores(cpuBefore, cpuAfter),
    },
    finalState: { ...finalStats.state, afterMs: SETTLE_MS },
    counters: finalStats.counters,
    // The origin child's clock starts at its reset; the same machine clock, so shift to phase time.
    samples: {
      stats: samples.stats,
      leases: samples.leases,
      originByEdge: edgeTrack.samples.map((s) => ({ ...s, t: s.t + edgeTrack.t0 - T0 })),
    },
    goodputBins: goodputBins(loads, spec.durationMs + SETTLE_MS, ctx.edges),
  };
  phase.utilisation = utilisation(phase, ctx.edges);
  phase.checks = phaseChecks(phase, ctx.edges);
  const lim = spec.limits.maxInFlight;
  log(
    `  origin max concurrency ${phase.origin.maxOutstanding} (limit ${lim}); ` +
      streams
        .map(
          (s) => `${s.edge} ${s.priority}: ${s.summary.ok}/${s.summary.sent} ok, ${s.summary.goodputPerS.toFixed(1)}/s`,
        )
        .join("; ") +
      `; after ${SETTLE_MS / 1000} s: holders ${finalStats.state.leases.holders}, slots ${finalStats.state.leases.slots}`,
  );
  return phase;
}

function trimSummary(s) {
  const round = (v) => (Number.isFinite(v) ? Math.round(v * 10) / 10 : null);
  return {
    offeredRate: s.offeredRate,
    sent: s.sent,
    droppedByGenerator: s.droppedByGenerator,
    ok: s.ok,
    successRate: s.successRate,
    goodputPerS: s.goodputPerS,
    byStatus: s.byStatus,
    okP50Ms: round(s.okLatency.p50),
    okP99Ms: round(s.okLatency.p99),
    okMaxMs: round(s.okLatency.max),
    shed: s.shed,
    shedP50Ms: round(s.shedLatency.p50),
    shedByReason: s.shedByReason,
    shedAllSignalsShare: s.shedAllSignalsShare,
    errors: s.errors,
  };
}

/** Samples the tenant's stats and every edge's lease every SAMPLE_MS until stopped. */
function startSampler(ctx, tenantName, T0) {
  const stats = [];
  const leases = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const began = Date.now();
      const [s, views] = await Promise.all([
        ctx.ctl.stats(tenantName).catch((e) => ({ error: String(e.message) })),
        Promise.all(ctx.edges.map((edge) => ctx.ctl.lease(edge, tenantName).catch(() => null))),
      ]);
      const t = Math.round((began + Date.now()) / 2) - T0;
      let edgesHeld = 0;
      for (const v of views) if (v?.lease && !v.lease.left) edgesHeld += v.lease.held;
      if (stats.length < SAMPLE_CAP && s.state) {
        stats.push({
          t,
          holders: s.state.leases.holders,
          slots: s.state.leases.slots,
          tokensOut: s.state.leases.tokens,
          inFlight: s.state.inFlight,
          queued: s.state.queued,
          queuedByPriority: s.state.queuedByPriority,
          tokens: s.state.tokens,
          // Slots the object counts as out that no edge holds: in transit for a renewal at most,
          // unless a return was never reported.
          edgesHeld,
          unheld: s.state.leases.slots - edgesHeld,
        });
      }
      if (leases.length < SAMPLE_CAP) {
        const byEdge = {};
        ctx.edges.forEach((edge, i) => {
          byEdge[edge] = views[i]?.lease ?? null;
        });
        leases.push({ t, byEdge });
      }
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - began)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { stats, leases };
    },
  };
}

/** Goodput (2xx by completion time) and sheds per edge in BIN_MS bins, phase time. */
function goodputBins(loads, spanMs, edges) {
  const bins = Math.ceil(spanMs / BIN_MS);
  const zero = () => Object.fromEntries(edges.map((e) => [e, 0]));
  const out = Array.from({ length: bins }, (_, b) => ({ t: b * BIN_MS, ok: zero(), shed: zero(), byPriority: {} }));
  for (const { spec, startedAt, load } of loads) {
    const { rec } = load;
    for (let i = 0; i < rec.count; i++) {
      const status = rec.status[i];
      const done = startedAt + rec.tSend[i] + rec.latency[i];
      const bin = out[Math.min(bins - 1, Math.max(0, Math.floor(done / BIN_MS)))];
      if (status >= 200 && status < 300) {
        bin.ok[spec.edge]++;
        bin.byPriority[spec.priority] = (bin.byPriority[spec.priority] ?? 0) + 1;
      } else if (status === 429 || status === 503) bin.shed[spec.edge]++;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks and figures

function phaseChecks(phase, edges) {
  const lim = phase.limits.maxInFlight;
  const leaseSums = phase.samples.leases.map((s) => {
    let held = 0;
    let inUse = 0;
    for (const e of edges) {
      held += Math.max(0, s.byEdge[e]?.left ? 0 : (s.byEdge[e]?.held ?? 0));
      inUse += s.byEdge[e]?.inUse ?? 0;
    }
    return { t: s.t, held, inUse };
  });
  const checks = {
    originWithinLimit: phase.origin.maxOutstanding <= lim,
    maxHeldAcrossEdges: Math.max(0, ...leaseSums.map((s) => s.held)),
    maxInUseAcrossEdges: Math.max(0, ...leaseSums.map((s) => s.inUse)),
    maxStatsSlots: Math.max(0, ...phase.samples.stats.map((s) => s.slots)),
    maxStatsHolders: Math.max(0, ...phase.samples.stats.map((s) => s.holders)),
    slotsBackAfterSettle: phase.finalState.leases.slots === 0 && phase.finalState.inFlight === 0,
  };
  if (phase.shiftAtMs !== undefined) checks.follow = followFigures(phase, edges);
  if (phase.edge1StopsAtMs !== undefined) checks.unheld = unheldFigures(phase, edges);
  const critical = phase.streams.find((s) => s.priority === "critical");
  if (critical) {
    checks.criticalSuccess = critical.summary.successRate;
    checks.criticalShedByReason = critical.summary.shedByReason;
    checks.criticalShedP50Ms = critical.summary.shedP50Ms;
    // The critical edge's lease in the last sample before each bin that holds a critical shed.
    checks.criticalShedLeases = phase.goodputBins
      .filter((b) => b.shed[critical.edge] > 0)
      .slice(0, 10)
      .map((b) => {
        const before = phase.samples.leases.filter((x) => x.t <= b.t + BIN_MS).at(-1);
        return {
          binMs: b.t,
          sheds: b.shed[critical.edge],
          leaseAtMs: before?.t ?? null,
          lease: before?.byEdge[critical.edge] ?? null,
        };
      });
    const low = phase.streams.find((s) => s.priority === "low");
    checks.lowGoodputPerS = low?.summary.goodputPerS;
  }
  return checks;
}

const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Means over the loaded part of the phase (from 1 s in): where the in-flight limit went. */
function utilisation(phase, edges) {
  const within = (x) => x.t >= 1000 && x.t < phase.durationMs;
  const leases = phase.samples.leases.filter(within);
  const sumOver = (s, f) => edges.reduce((n, e) => n + (s.byEdge[e] && !s.byEdge[e].left ? f(s.byEdge[e]) : 0), 0);
  const stats = phase.samples.stats.filter(within);
  return {
    limit: phase.limits.maxInFlight,
    originConcurrency: mean(phase.samples.originByEdge.filter(within).map((s) => s.total)),
    objectSlotsOut: mean(stats.map((s) => s.slots)),
    heldByEdges: mean(leases.map((s) => sumOver(s, (v) => v.held))),
    inUseAtEdges: mean(leases.map((s) => sumOver(s, (v) => v.inUse))),
    heldNotInUse: mean(leases.map((s) => sumOver(s, (v) => Math.max(0, v.held - v.inUse)))),
    unheld: mean(stats.map((s) => s.unheld)),
    heldByEdge: Object.fromEntries(
      edges.map((e) => [e, mean(leases.map((s) => (s.byEdge[e] && !s.byEdge[e].left ? s.byEdge[e].held : 0)))]),
    ),
    longestUnheldMs: longestRun(
      phase.samples.stats.filter((x) => x.t < phase.durationMs),
      (s) => s.unheld >= 1,
    ),
  };
}

/** The longest stretch of consecutive samples meeting `pred`, in ms (first to last such sample, plus one interval). */
function longestRun(samples, pred) {
  let best = 0;
  let from = null;
  for (let i = 0; i < samples.length; i++) {
    if (pred(samples[i])) {
      from ??= samples[i].t;
      const end = samples[i + 1]?.t ?? samples[i].t + SAMPLE_MS;
      best = Math.max(best, end - from);
    } else from = null;
  }
  return best;
}

/** How long after the shift capacity followed the demand to the last edge. */
function followFigures(phase, edges) {
  const shift = phase.shiftAtMs;
  const first = edges[0];
  const last = edges[edges.length - 1];
  const lim = phase.limits.maxInFlight;
  const after = phase.samples.leases.filter((s) => s.t >= shift);
  const heldOf = (s, e) => (s.byEdge[e] && !s.byEdge[e].left ? s.byEdge[e].held : 0);
  const firstWhen = (pred) => {
    const hit = after.find(pred);
    return hit ? hit.t - shift : null;
  };
  // Goodput of edge1 over the last 5 s before the shift: what the last edge should reach.
  const bins = phase.goodputBins;
  const perS = (b, e) => (b.ok[e] * 1000) / BIN_MS;
  const before = bins.filter((b) => b.t >= shift - 5000 && b.t < shift);
  const steadyFirst = before.reduce((n, b) => n + perS(b, first), 0) / Math.max(1, before.length);
  const afterBins = bins.filter((b) => b.t >= shift && b.t < phase.durationMs);
  // The first bin from which the last edge's goodput, averaged over 1 s (4 bins), stays >= 80% of that.
  let goodputAt = null;
  for (let i = 0; i + 4 <= afterBins.length; i++) {
    const mean = afterBins.slice(i, i + 4).reduce((n, b) => n + perS(b, last), 0) / 4;
    if (mean >= 0.8 * steadyFirst) {
      goodputAt = afterBins[i].t - shift;
      break;
    }
  }
  const originAfter = phase.samples.originByEdge.filter((s) => s.t >= shift);
  const originFirstWhen = (pred) => {
    const hit = originAfter.find(pred);
    return hit ? hit.t - shift : null;
  };
  const steadyAfter = afterBins.filter((b) => b.t >= shift + 3000);
  return {
    lastEdgeFirstSlotMs: firstWhen((s) => heldOf(s, last) >= 1),
    lastEdgeHalfSlotsMs: firstWhen((s) => heldOf(s, last) >= lim / 2),
    firstEdgeNoSlotsMs: firstWhen((s) => heldOf(s, first) === 0),
    originLastEdgeHalfMs: originFirstWhen((s) => (s.byEdge[last] ?? 0) >= lim / 2),
    originFirstEdgeZeroMs: originFirstWhen((s) => (s.byEdge[first] ?? 0) === 0),
    firstEdgeGoodputBeforePerS: steadyFirst,
    lastEdgeGoodputAfterPerS: steadyAfter.reduce((n, b) => n + perS(b, last), 0) / Math.max(1, steadyAfter.length),
    lastEdgeGoodput80pctMs: goodputAt,
  };
}

/**
 * After edge1's load stopped and its queue drained (bounded by maxWaitMs): slots the object
 * counts as out that no edge holds. A renewal in flight explains a sample or two; a stretch of
 * seconds is a return the object was never told about.
 */
function unheldFigures(phase, edges) {
  const stop = phase.edge1StopsAtMs;
  const last = edges[edges.length - 1];
  const bins = phase.goodputBins;
  const drained = phase.samples.stats.filter(
    (x) => x.t >= stop + phase.limits.maxWaitMs + 1000 && x.t < phase.durationMs,
  );
  const from = drained.find((x) => x.unheld >= 1);
  const until = from ? drained.find((x) => x.t > from.t && x.unheld < 1) : undefined;
  const edge1At = (t) => phase.samples.leases.find((x) => x.t >= t)?.byEdge[edges[0]] ?? null;
  return {
    afterMs: stop,
    mean: mean(drained.map((x) => x.unheld)),
    longestMs: longestRun(drained, (x) => x.unheld >= 1),
    sinceMs: from ? from.t - stop : null,
    untilMs: until ? until.t - stop : null,
    holdersWhile: from?.holders,
    edge1LeaseWhile: from ? edge1At(from.t) : null,
    lastEdgeGoodputWhilePerS: from ? goodputBetween(bins, last, from.t, until ? until.t : phase.durationMs) : null,
    lastEdgeGoodputAfterPerS: until ? goodputBetween(bins, last, until.t + 500, phase.durationMs) : null,
  };
}

function goodputBetween(bins, edge, fromMs, toMs) {
  const inside = bins.filter((b) => b.t >= fromMs && b.t + BIN_MS <= toMs);
  return inside.length ? (inside.reduce((n, b) => n + b.ok[edge], 0) * 1000) / (inside.length * BIN_MS) : null;
}

function findings(result) {
  const out = [];
  const fmtMs = (v) => (v === null || v === undefined ? "never" : `${v} ms`);
  out.push({ ok: result.isolation.separate, text: `edges are separate isolates: ${result.isolation.verdict}` });
  for (const p of result.phases) {
    const lim = p.limits.maxInFlight;
    out.push({
      ok: p.origin.maxOutstanding <= lim,
      text: `${p.name}: origin max concurrency ${p.origin.maxOutstanding} <= maxInFlight ${lim} (sum of leases held by the edges at most ${p.checks.maxHeldAcrossEdges}, object's slots out at most ${p.checks.maxStatsSlots})`,
    });
    out.push({
      ok: p.checks.slotsBackAfterSettle,
      text: `${p.name}: ${SETTLE_MS / 1000} s after the load, the object has ${p.finalState.leases.slots} slots out, ${p.finalState.leases.holders} holders, inFlight ${p.finalState.inFlight}`,
    });
    if (p.checks.unheld) {
      const u = p.checks.unheld;
      out.push({
        ok: u.longestMs < 1000,
        text:
          `${p.name}: once edge1 had stopped and drained, the object counted slots out that no edge held for ${u.longestMs} ms at most (mean ${u.mean.toFixed(2)} slots)` +
          (u.sinceMs !== null
            ? `, from ${u.sinceMs} ms to ${u.untilMs === null ? "the end of the load" : `${u.untilMs} ms`} after edge1 stopped (edge1's lease then: ${JSON.stringify(u.edge1LeaseWhile)}); ${edgesOf(result).at(-1)} meanwhile ${fmtRate(u.lastEdgeGoodputWhilePerS)}, after ${fmtRate(u.lastEdgeGoodputAfterPerS)}`
            : ""),
      });
    }
    if (p.checks.follow) {
      const f = p.checks.follow;
      out.push({
        ok: f.lastEdgeGoodput80pctMs !== null && f.lastEdgeGoodput80pctMs <= 3000,
        text: `${p.name}: after the shift the last edge held its first slot at ${fmtMs(f.lastEdgeFirstSlotMs)}, half the slots at ${fmtMs(f.lastEdgeHalfSlotsMs)}; edge1 held none at ${fmtMs(f.firstEdgeNoSlotsMs)}; the last edge's goodput reached 80% of edge1's before the shift (${f.firstEdgeGoodputBeforePerS.toFixed(1)}/s) at ${fmtMs(f.lastEdgeGoodput80pctMs)} (goal <= 3000 ms)`,
      });
    }
    if (p.checks.criticalSuccess !== undefined) {
      out.push({
        ok: p.checks.criticalSuccess >= 0.99,
        text: `${p.name}: critical success ${(p.checks.criticalSuccess * 100).toFixed(1)}% (goal >= 99%), shed ${JSON.stringify(p.checks.criticalShedByReason)}; low goodput ${p.checks.lowGoodputPerS?.toFixed(1)}/s`,
      });
    }
  }
  const spread = result.phases.find((p) => p.name === "spread");
  if (spread) {
    const rates = spread.streams.map((s) => s.summary.goodputPerS);
    const ratio = Math.max(...rates) / Math.max(0.001, Math.min(...rates));
    out.push({
      ok: ratio <= 1.5,
      text: `spread: equal load on every edge, goodput by edge ${spread.streams.map((s) => `${s.edge} ${s.summary.goodputPerS.toFixed(1)}/s (${(s.summary.successRate * 100).toFixed(0)}%)`).join(", ")}, max/min ${ratio.toFixed(2)} (goal <= 1.5); mean slots held ${Object.entries(
        spread.utilisation.heldByEdge,
      )
        .map(([e, v]) => `${e} ${v.toFixed(1)}`)
        .join(", ")}`,
    });
  }
  for (const p of result.phases) {
    const u = p.utilisation;
    if (!p.checks.unheld) {
      out.push({
        ok: u.longestUnheldMs < 1000,
        text: `${p.name}: slots the object counted out and no edge held: ${u.unheld.toFixed(2)} on average, for ${u.longestUnheldMs} ms in a row at most (goal < 1000 ms: one renewal in flight)`,
      });
    }
    if (p.name === "small-burst") {
      const s = p.streams[0].summary;
      const goal = 0.9 * Math.min(p.limits.rate, CAPACITY);
      out.push({
        ok: s.goodputPerS >= goal,
        text: `${p.name}: goodput ${s.goodputPerS.toFixed(1)}/s with ${s.offeredRate}/s offered, rate ${p.limits.rate}/s, burst ${p.limits.burst} (goal >= ${goal.toFixed(0)}/s); rate_limited sheds ${s.shedByReason.rate_limited ?? 0}; mean slots in use ${u.inUseAtEdges.toFixed(2)} of ${u.heldByEdges.toFixed(2)} held`,
      });
    }
    out.push({
      ok: null,
      text: `${p.name}: of ${u.limit} slots, the origin had ${u.originConcurrency.toFixed(2)} busy on average; the object counted ${u.objectSlotsOut.toFixed(2)} out, the edges held ${u.heldByEdges.toFixed(2)} (${u.heldNotInUse.toFixed(2)} of them idle), ${u.unheld.toFixed(2)} were held by no edge`,
    });
  }
  if (result.workerLogs.errors > 0)
    out.push({
      ok: null,
      text: `workers logged ${result.workerLogs.errors} error line(s), e.g. ${result.workerLogs.first[0]}`,
    });
  return out;
}

const edgesOf = (result) => result.meta.edges;
const fmtRate = (v) => (v === null || v === undefined || !Number.isFinite(v) ? "n/a" : `${v.toFixed(1)}/s`);

// ---------------------------------------------------------------------------------------------
// Report

function renderMarkdown(r) {
  const L = [];
  const m = r.meta;
  const pct = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : "n/a");
  const num = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
  const fmtMs = (v) => (v === null || v === undefined ? "never" : `${v} ms`);
  L.push("# Multi-isolate run: one tenant's leases across several edge isolates", "");
  L.push(
    `${m.startedAt}, ${m.cpus} CPUs, node ${m.node}, ${(m.elapsedMs / 1000).toFixed(0)} s, git ${m.gitHead ?? "?"}` +
      (m.srcChanges
        ? ` + ${m.srcChanges} uncommitted file(s) in src/ (the bundle was built from the working tree)`
        : ""),
  );
  L.push(
    `runner: ${m.runner}, miniflare ${m.miniflare}; workers: objects (TenantGuard, OriginGuard, admin calls), ${m.edges.join(", ")} (TENANT_GUARD/ORIGIN_GUARD -> objects, one KV namespace); bundle: ${m.bundle.how}`,
  );
  L.push(
    `origin: C=${r.sizing.concurrency} x ${r.sizing.serviceMs} ms (±${r.sizing.jitter * 100}%) = ${r.sizing.capacity} req/s, in a child process; origin stage off. Reproduce: \`npm run bench:multi\` (seed ${m.seed}).`,
    "",
  );
  L.push("## Findings", "");
  for (const f of r.findings) L.push(`- ${f.ok === null ? "note" : f.ok ? "**met**" : "**missed**"}: ${f.text}`);
  L.push("");

  L.push("## Isolation check", "");
  L.push(
    `Requests sent per edge: ${r.isolation.sentPerEdge.join(", ")} (statuses ${[...new Set(r.isolation.statuses)].join(", ")}); then each edge's GET /__bench/lease.`,
    "",
  );
  L.push("| edge | isolate id | requests it counted | its lease holder |", "|---|---|---|---|");
  for (const v of r.isolation.views)
    L.push(`| ${v.edge} | ${v.isolateId.slice(0, 8)} | ${v.served} | ${v.holder?.slice(0, 8) ?? "-"} |`);
  L.push("", `The tenant's object: ${JSON.stringify(r.isolation.objectLeases)}.`, "");

  L.push("## Phases", "");
  L.push(
    "| phase | limits | edge | priority | offered/s | sent | 2xx | success | 2xx/s | 2xx p50 | 2xx p99 | shed | shed reasons | origin max (limit) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const p of r.phases) {
    const l = p.limits;
    p.streams.forEach((s, i) => {
      const S = s.summary;
      L.push(
        `| ${i === 0 ? p.name : ""} | ${i === 0 ? `rate ${l.rate}, burst ${l.burst}, inFlight ${l.maxInFlight}, queue ${l.maxQueue}, wait ${l.maxWaitMs} ms` : ""} | ${s.edge} (${s.fromMs / 1000}-${s.toMs / 1000} s) | ${s.priority} | ${num(s.rate, 0)} | ${S.sent} | ${S.ok} | ${pct(S.successRate)} | ${num(S.goodputPerS)} | ${num(S.okP50Ms, 0)} ms | ${num(S.okP99Ms, 0)} ms | ${S.shed} | ${fmtReasons(S.shedByReason)} | ${i === 0 ? `**${p.origin.maxOutstanding}** (${l.maxInFlight})` : ""} |`,
      );
    });
  }
  L.push("");
  L.push(
    "| phase | origin received | by priority | arrived after deadline | origin max (tracked by edge) | object: max slots out / holders | edges: max held / in use (sum) | slots out after settle | workerd cores | workerd CPU ms/req | other CPU |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const p of r.phases) {
    const c = p.checks;
    L.push(
      `| ${p.name} | ${p.origin.received} | ${JSON.stringify(p.origin.byPriority)} | ${p.origin.receivedAfterDeadline} | ${p.origin.maxOutstanding} (${p.origin.trackedMax}; ${Object.entries(
        p.origin.trackedMaxByEdge,
      )
        .map(([e, v]) => `${e} ${v}`)
        .join(
          ", ",
        )}) | ${c.maxStatsSlots} / ${c.maxStatsHolders} | ${c.maxHeldAcrossEdges} / ${c.maxInUseAcrossEdges} | ${p.finalState.leases.slots} (holders ${p.finalState.leases.holders}) | ${num(p.cpu.workerdCores, 2)} | ${num(p.cpu.workerdMsPerRequest, 2)} | ${num(p.cpu.otherCores, 2)} |`,
    );
  }
  L.push("");
  L.push(
    "Where the in-flight limit went (means from 1 s into the load to its end): busy at the origin, counted out by the object, held by the edges (and of those, held but not in use), and counted out by the object but held by no edge.",
    "",
    "| phase | limit | origin busy | object: out | edges: held | edges: held, idle | held by no edge | longest stretch with >= 1 held by no edge |",
    "|---|---|---|---|---|---|---|---|",
  );
  for (const p of r.phases) {
    const u = p.utilisation;
    L.push(
      `| ${p.name} | ${u.limit} | ${num(u.originConcurrency, 2)} | ${num(u.objectSlotsOut, 2)} | ${num(u.heldByEdges, 2)} | ${num(u.heldNotInUse, 2)} | ${num(u.unheld, 2)} | ${u.longestUnheldMs} ms |`,
    );
  }
  L.push("");

  const shift = r.phases.find((p) => p.shiftAtMs !== undefined);
  if (shift) {
    const f = shift.checks.follow;
    const edges = m.edges;
    const last = edges[edges.length - 1];
    L.push(`## The shift: ${shift.title}`, "");
    L.push(
      `Time after the shift (${shift.shiftAtMs / 1000} s) until: ${last} held its first slot ${fmtMs(f.lastEdgeFirstSlotMs)}, ` +
        `half the slots (${shift.limits.maxInFlight / 2}) ${fmtMs(f.lastEdgeHalfSlotsMs)}; ` +
        `edge1 held none ${fmtMs(f.firstEdgeNoSlotsMs)}. At the origin: ${last} had ${shift.limits.maxInFlight / 2}+ requests in progress ${fmtMs(f.originLastEdgeHalfMs)}, edge1 none ${fmtMs(f.originFirstEdgeZeroMs)}. ` +
        `Goodput: edge1 ${num(f.firstEdgeGoodputBeforePerS)}/s over the 5 s before; ${last} reached 80% of that (1 s mean) ${fmtMs(f.lastEdgeGoodput80pctMs)} after and averaged ${num(f.lastEdgeGoodputAfterPerS)}/s from 3 s after.`,
      "",
    );
    unheldNote(L, shift, last);
    L.push(
      `Every ${BIN_MS} ms from ${(shift.shiftAtMs - 2000) / 1000} s to ${(shift.shiftAtMs + 4000) / 1000} s. "object" columns: the last GET /__guard/tenants sample in the bin; "held/target (in use, queued)" per edge: the last /__bench/lease sample of that edge (- = no lease, left = given back); "origin" per edge: requests in progress at the origin (mean of the 100 ms samples in the bin); "2xx/s": completions in the bin.`,
      "",
    );
    L.push(timelineTable(shift, edges, shift.shiftAtMs - 2000, shift.shiftAtMs + 4000, BIN_MS));
    L.push("", "The whole phase, 1 s bins:", "");
    L.push(timelineTable(shift, edges, 0, shift.durationMs + SETTLE_MS, 1000));
    L.push("");
  }
  const pp = r.phases.find((p) => p.name === "ping-pong");
  if (pp) {
    const last = m.edges[m.edges.length - 1];
    const u = pp.utilisation;
    L.push(`## ping-pong: ${pp.title}`, "");
    L.push(
      `Slots the object counted out and no edge held: ${num(u.unheld, 2)} on average, at most ${Math.max(0, ...pp.samples.stats.map((x) => x.unheld))} at once, ${u.longestUnheldMs} ms in a row at most. Origin busy ${num(u.originConcurrency, 2)} of ${u.limit} on average. Per turn (2xx/s of the edge whose turn it is):`,
      "",
    );
    const turns = pp.streams.map(
      (st) =>
        `${st.edge} ${st.fromMs / 1000}-${st.toMs / 1000} s: ${num(st.summary.goodputPerS)}/s (${pct(st.summary.successRate)})`,
    );
    L.push(turns.join("; "), "");
    L.push(timelineTable(pp, [m.edges[0], last], 0, pp.durationMs + SETTLE_MS, 500));
    L.push("");
  }
  const sb = r.phases.find((p) => p.name === "small-burst");
  if (sb) {
    const last = m.edges[m.edges.length - 1];
    const S = sb.streams[0].summary;
    const st = sb.samples.stats.filter((x) => x.t >= 1000 && x.t < sb.durationMs);
    L.push(`## small-burst: ${sb.title}`, "");
    L.push(
      `Goodput ${num(S.goodputPerS)}/s of a ${sb.limits.rate}/s rate with ${S.offeredRate}/s offered (origin capacity ${CAPACITY}/s); shed ${JSON.stringify(S.shedByReason)}. ` +
        `The edge held ${num(sb.utilisation.heldByEdges, 2)} slots and used ${num(sb.utilisation.inUseAtEdges, 2)}; the object's bucket + tokens out averaged ${num(mean(st.map((x) => x.tokens)), 2)}, of which out at the edge ${num(mean(st.map((x) => x.tokensOut)), 2)}. ` +
        `Lease calls: ${sb.counters.calls?.lease ?? "?"} in ${((sb.durationMs + SETTLE_MS) / 1000).toFixed(1)} s.`,
      "",
      `For comparison, a model of the lease book in which each report is taken in with the bucket refilled only up to burst minus the tokens granted last time (still counted out, though the holder has spent them): a lone holder renewing every 250 ms gets burst / 2 per renewal, ${((sb.limits.burst / 2) * 4).toFixed(0)}/s here, against min(rate, capacity) = ${Math.min(sb.limits.rate, CAPACITY)}/s.`,
      "",
    );
    L.push(timelineTable(sb, [last], 0, sb.durationMs + SETTLE_MS, 1000));
    L.push("");
  }
  for (const p of r.phases.filter((x) => x.checks.criticalSuccess !== undefined)) {
    L.push(`## ${p.name}: ${p.title}`, "");
    const crit = p.streams.find((s) => s.priority === "critical").summary;
    const low = p.streams.find((s) => s.priority === "low").summary;
    L.push(
      `Critical: ${crit.ok}/${crit.sent} ok (${pct(crit.successRate)}), p50 ${num(crit.okP50Ms, 0)} ms, p99 ${num(crit.okP99Ms, 0)} ms, max ${num(crit.okMaxMs, 0)} ms, shed ${JSON.stringify(crit.shedByReason)}. ` +
        `Low: ${num(low.goodputPerS)}/s goodput of ${num(low.offeredRate, 0)}/s offered, shed ${JSON.stringify(low.shedByReason)}. Origin by priority ${JSON.stringify(p.origin.byPriority)}, max concurrency ${p.origin.maxOutstanding} (limit ${p.limits.maxInFlight}).`,
      "",
    );
    if (p.checks.criticalShedLeases.length) {
      L.push(
        `Critical sheds answered after ${num(p.checks.criticalShedP50Ms, 1)} ms (p50); edge1's lease (held/target, in use, queued) in the sample before each: ` +
          p.checks.criticalShedLeases
            .map(
              (x) =>
                `${x.sheds} shed in ${x.binMs / 1000}-${(x.binMs + BIN_MS) / 1000} s, lease at ${x.leaseAtMs} ms: ${x.lease ? `${x.lease.held}/${x.lease.target} (${x.lease.inUse}, ${x.lease.queued})` : "none"}`,
            )
            .join("; ") +
          ". A critical arrival at an edge holding few slots, with critical requests queued ahead of it, has its wait estimated from that edge's own slots, although the object would give critical demand slots from the low-priority edge at the next renewal.",
        "",
      );
    }
    L.push(timelineTable(p, m.edges.slice(0, 2), 0, p.durationMs + SETTLE_MS, 1000));
    L.push("");
  }
  if (r.workerLogs.errors || r.workerLogs.warnings) {
    L.push(
      "## Worker log",
      "",
      `${r.workerLogs.errors} error and ${r.workerLogs.warnings} warning line(s); the first:`,
      "",
    );
    for (const line of r.workerLogs.first) L.push(`    ${line}`);
    L.push("");
  }
  return `${L.join("\n")}\n`;
}

/** When a phase shows slots counted out at the object and held by no edge for a second or more, what and why. */
function unheldNote(L, phase, last) {
  const u = phase.checks.unheld;
  if (!u) return;
  const ms = (v) => (v === null || v === undefined ? "never" : `${v} ms`);
  if (u.longestMs < 1000) {
    L.push(
      `After edge1 stopped and drained, slots counted out by the object and held by no edge: ${u.mean.toFixed(2)} on average, ${u.longestMs} ms at most in a row (renewals in flight).`,
      "",
    );
    return;
  }
  L.push(
    `After edge1 stopped (${u.afterMs / 1000} s) and drained, the object went on counting ${u.mean.toFixed(2)} slot(s) on average as out that no edge held, from ${ms(u.sinceMs)} to ${u.untilMs === null ? "the end of the load" : ms(u.untilMs)} after the stop (${u.longestMs} ms in a row; holders at the object: ${u.holdersWhile}, edge1's among them). ` +
      `${last} ran below its share meanwhile: ${fmtRate(u.lastEdgeGoodputWhilePerS)}, then ${fmtRate(u.lastEdgeGoodputAfterPerS)} once the object reclaimed edge1's holder. ` +
      `edge1's lease at that time: ${JSON.stringify(u.edge1LeaseWhile)}. Its last slots came back to it (held 0, target 0) after its last renewal had been sent, with no token left and nothing queued; ` +
      "a lease in that state sends no further report (renewalDue() in src/lease/edge-lease.ts returns false when nothing is held or queued, before it looks at unreported returns or at going idle), " +
      "so the object learns of the return only when it reclaims the holder: lease ttl (2 s) + the tenant's longest deadline (coverMs) + grace (5 s) after the last report.",
    "",
  );
}

function fmtReasons(byReason) {
  const entries = Object.entries(byReason ?? {});
  return entries.length ? entries.map(([k, v]) => `${k} ${v}`).join(", ") : "-";
}

function timelineTable(phase, edges, fromMs, toMs, binMs) {
  const head = [
    "t (s)",
    "object holders",
    "slots out",
    "inFlight",
    "queued",
    "held by no edge",
    "tokens (out)",
    ...edges.map((e) => `${e} held/target (in use, queued)`),
    ...edges.map((e) => `origin ${e}`),
    ...edges.map((e) => `2xx/s ${e}`),
  ];
  const rows = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  const inBin = (t, b) => t >= b && t < b + binMs;
  const lastIn = (xs, b) => {
    let hit;
    for (const x of xs) if (inBin(x.t, b)) hit = x;
    return hit;
  };
  for (let b = Math.max(0, fromMs); b < toMs; b += binMs) {
    const st = lastIn(phase.samples.stats, b);
    const ls = lastIn(phase.samples.leases, b);
    const os = phase.samples.originByEdge.filter((x) => inBin(x.t, b));
    const ok = {};
    for (const e of edges) ok[e] = 0;
    for (const g of phase.goodputBins) if (g.t >= b && g.t < b + binMs) for (const e of edges) ok[e] += g.ok[e];
    const leaseCell = (e) => {
      const v = ls?.byEdge[e];
      if (!v) return "-";
      if (v.left) return "left";
      return `${v.held}/${v.target} (${v.inUse}, ${v.queued})`;
    };
    const originCell = (e) =>
      os.length ? (os.reduce((n, x) => n + (x.byEdge[e] ?? 0), 0) / os.length).toFixed(1) : "";
    rows.push(
      `| ${(b / 1000).toFixed(binMs < 1000 ? 2 : 0)} | ${st?.holders ?? ""} | ${st?.slots ?? ""} | ${st?.inFlight ?? ""} | ${st?.queued ?? ""} | ${st?.unheld ?? ""} | ${st ? `${Math.floor(st.tokens)} (${st.tokensOut})` : ""} | ${edges.map(leaseCell).join(" | ")} | ${edges.map(originCell).join(" | ")} | ${edges.map((e) => ((ok[e] * 1000) / binMs).toFixed(0)).join(" | ")} |`,
    );
  }
  return rows.join("\n");
}

// ---------------------------------------------------------------------------------------------
// The origin child: bench/origin.mjs plus requests in progress by edge

async function originChild() {
  const { createOrigin } = await import("./origin.mjs");
  const origin = createOrigin({ ...SIZING, maxQueue: 5000 });
  let active = new Map();
  let max = 0;
  let maxByEdge = {};
  let samples = [];
  let epoch = 0;
  let t0 = Date.now();
  const totalActive = () => {
    let n = 0;
    for (const v of active.values()) n += v;
    return n;
  };
  origin.server.on("request", (req, res) => {
    if (req.url.startsWith("/__origin/")) return;
    const edge = /^\/(edge\d+)\//.exec(req.url)?.[1] ?? "(other)";
    const mine = epoch;
    active.set(edge, (active.get(edge) ?? 0) + 1);
    max = Math.max(max, totalActive());
    maxByEdge[edge] = Math.max(maxByEdge[edge] ?? 0, active.get(edge));
    res.once("close", () => {
      if (mine !== epoch) return;
      active.set(edge, (active.get(edge) ?? 1) - 1);
    });
  });
  const timer = setInterval(() => {
    if (samples.length >= 4 * SAMPLE_CAP) return;
    samples.push({ t: Date.now() - t0, byEdge: Object.fromEntries(active), total: totalActive() });
  }, ORIGIN_SAMPLE_MS);
  const port = await origin.listen(0, "127.0.0.1");
  process.on("message", (m) => {
    if (m?.cmd === "reset-edges") {
      epoch++;
      active = new Map();
      max = 0;
      maxByEdge = {};
      samples = [];
      t0 = Date.now();
      process.send({ kind: "reply", id: m.id, body: { ok: true, t0 } });
    } else if (m?.cmd === "edges") {
      process.send({ kind: "reply", id: m.id, body: { t0, max, maxByEdge, samples } });
    }
  });
  const stop = () => {
    clearInterval(timer);
    origin.close().then(() => process.exit(0));
  };
  process.on("disconnect", stop);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.send({ kind: "listening", port });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Last, so every module-level constant above is initialised before the run starts.
if (process.argv.includes("--origin-child")) await originChild();
else await main();
