// Overload lab: `npm run bench` (node bench/run.mjs [flags]).
//
// Starts the simulated origin (bench/origin.mjs, a child process so it does not share this event
// loop with the load generator) and the guard under `wrangler dev` in front of it, then runs the
// scenarios in bench/scenarios/ through the guard and, where a comparison is due, straight at the
// origin. Prints a table and writes bench/results/latest.json and latest.md.
// It is a benchmark, not a test: missed targets are reported, never fatal. The exit code is
// non-zero only when something did not run (the guard failed to start, a scenario crashed).
//
// Flags:
//   --quick              ~8 minute smoke run (phases at 25% length, 3 s at least; the matrix on
//                        origin a only, 4-5 s phases; route-mix keeps its 5 s quiet spells)
//   --only a,b           run only these scenarios: matrix, steady, burst, overload, noisy, flood,
//                        priority, slow-origin, deadlines, global-sum, global-shards, global-slow,
//                        origin-503, global-priority, route-mix, memory. Without it all run but
//                        overload, noisy and priority (the matrix covers them beside HAProxy); a
//                        full run takes about 14.5 minutes (13 before route-mix, which takes about
//                        1.5 beside HAProxy), the matrix alone (--only matrix) about 10.
//   --skip a,b           run all but these
//   --no-guard           origin only: the direct halves of steady, burst and overload, and the
//                        matrix's HAProxy column
//   --scale x            phase length factor of all but the matrix (default 0.75, cut from 1 so a
//                        full run with the matrix fits its budget; 0.25 with --quick)
//   --seed n             base seed of the matrix's arrival schedules (default 1)
//   --matrix-origins a,b the matrix's origins: a (4 x 80 ms), b (4 x 160 ms), c (4 x 20 ms);
//                        default all three, a alone with --quick
//   --concurrency n      origin slots C (default 4); tenants get maxInFlight = C
//   --service-ms n       origin service time S (default 100)
//   --out dir            results directory (default bench/results)
//   --help
// Environment: BENCH_WRANGLER_LOG=info|log|debug raises wrangler's log level (default warn) in
// bench/results/wrangler.log, e.g. to see the guard's console output while debugging.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { adminClient } from "./admin.mjs";
import { spawnTracked, stopAll, stopChild } from "./children.mjs";
import { startGuard } from "./guard.mjs";
import { capacityOf, createLab, DEFAULT_SIZING, defaultLimits } from "./lab.mjs";
import { renderTerminal, writeResults } from "./report.mjs";
import { onlyWhenNamed, scenarios } from "./scenarios/index.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const HARD_LIMIT_MS = { full: 17.5 * 60_000, quick: 10 * 60_000 }; // watchdog: never run unbounded
const BUSY_CORES = 0.25; // other programs' CPU in a phase above which its figures are flagged as noisy
// No new scenario starts past this: about a minute above a full run's usual length.
const SOFT_LIMIT_MS = { full: 15.5 * 60_000, quick: 8 * 60_000 };
const FULL_SCALE = 0.75; // older scenarios' phases, cut from 1 when the matrix joined the full run

const { values: flags } = parseFlags({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    skip: { type: "string" },
    "no-guard": { type: "boolean", default: false },
    scale: { type: "string" },
    concurrency: { type: "string", default: String(DEFAULT_SIZING.concurrency) },
    "service-ms": { type: "string", default: String(DEFAULT_SIZING.serviceMs) },
    out: { type: "string", default: path.join(here, "results") },
    seed: { type: "string", default: "1" },
    "matrix-origins": { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (flags.help) {
  const src = (await import("node:fs")).readFileSync(fileURLToPath(import.meta.url), "utf8");
  console.log(src.split("\nimport ")[0].replace(/^\/\/ ?/gm, ""));
  process.exit(0);
}

const mode = flags.quick ? "quick" : "full";
const scale = flags.scale !== undefined ? Number(flags.scale) : flags.quick ? 0.25 : FULL_SCALE;
const sizing = { ...DEFAULT_SIZING, concurrency: Number(flags.concurrency), serviceMs: Number(flags["service-ms"]) };
for (const [k, v] of Object.entries({ scale, concurrency: sizing.concurrency, "service-ms": sizing.serviceMs })) {
  if (!Number.isFinite(v) || v <= 0) fail(`--${k} must be a positive number, got ${JSON.stringify(v)}`);
}
const seed = Number(flags.seed);
if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
  fail(`--seed must be an integer 0..2^32-1, got ${flags.seed}`);
const matrixOrigins = flags["matrix-origins"]
  ?.split(",")
  .map((s) => s.trim())
  .filter(Boolean);
for (const o of matrixOrigins ?? [])
  if (!["a", "b", "c"].includes(o)) fail(`--matrix-origins takes a, b and c, got ${o}`);
const selected = pickScenarios(flags.only, flags.skip);
const log = (m) => console.error(m);

const started = Date.now();
const watchdog = setTimeout(() => {
  console.error(`\nwatchdog: the run passed ${HARD_LIMIT_MS[mode] / 1000} s; stopping`);
  stopAll().finally(() => process.exit(2));
}, HARD_LIMIT_MS[mode]);
watchdog.unref();

let exitCode = 0;
try {
  exitCode = await main();
} catch (e) {
  console.error(e?.stack ?? e);
  exitCode = 1;
} finally {
  await stopAll();
}
process.exit(exitCode);

async function main() {
  const origin = await startOriginChild();
  log(
    `origin on ${origin.url} (C=${sizing.concurrency}, S=${sizing.serviceMs} ms, capacity ${capacityOf(sizing)} req/s)`,
  );

  let guard = null;
  let guardNote = "not used (--no-guard)";
  let startFailed = false;
  const wantGuard = !flags["no-guard"];
  if (wantGuard) {
    const adminToken = `bench-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    log("starting the guard under wrangler dev ...");
    const t = Date.now();
    try {
      guard = await startGuard({
        root,
        originUrl: origin.url,
        adminToken,
        logPath: path.join(flags.out, "wrangler.log"),
      });
      guard.admin = adminClient(guard.url, adminToken);
      guardNote = `wrangler dev on ${guard.url}, ready in ${((Date.now() - t) / 1000).toFixed(1)} s (log ${path.relative(root, guard.logPath)})`;
      log(`guard: ${guardNote}`);
    } catch (e) {
      startFailed = true;
      guardNote = `failed to start: ${firstLine(e.message)}`;
      log(`guard ${guardNote}\n${e.message}\ncontinuing with the direct-only parts`);
    }
  }

  const lab = createLab({
    originUrl: origin.url,
    guard: guard ?? undefined,
    admin: guard?.admin,
    // Also when the guard failed to start: the matrix's pass-through and HAProxy columns still run.
    startPassthrough: wantGuard
      ? () =>
          startGuard({
            root,
            originUrl: origin.url,
            adminToken: "unused",
            configPath: path.join(here, "passthrough/wrangler.toml"),
            logPath: path.join(flags.out, "wrangler-passthrough.log"),
          })
      : undefined,
    sizing,
    scale,
    runId: Date.now().toString(36),
    log,
    quick: flags.quick,
    seed,
    matrixOrigins,
    budgetEndsAt: started + HARD_LIMIT_MS[mode],
  });

  const rows = [],
    notes = [],
    targets = [],
    errors = [],
    timelines = [],
    tables = [],
    figures = {};
  for (const sc of selected) {
    if (sc.needsGuard && !guard) {
      notes.push(`${sc.name}: skipped (needs the guard)`);
      continue;
    }
    if (Date.now() - started > SOFT_LIMIT_MS[mode]) {
      errors.push({ scenario: sc.name, error: "skipped: the run's time budget is spent" });
      continue;
    }
    log(`${sc.name}:`);
    try {
      const r = await sc.run(lab);
      rows.push(...r.rows);
      notes.push(...r.notes.map((n) => `${sc.name}: ${n}`));
      targets.push(...r.targets);
      for (const t of r.timelines ?? []) timelines.push({ scenario: sc.name, ...t });
      for (const t of r.tables ?? []) tables.push({ scenario: sc.name, ...t });
      figures[sc.name] = r.figures;
    } catch (e) {
      log(`  ${sc.name} failed: ${e?.stack ?? e}`);
      errors.push({ scenario: sc.name, error: firstLine(String(e?.message ?? e)) });
    }
    if (guard && !guard.alive()) {
      errors.push({ scenario: sc.name, error: `wrangler dev exited; see ${guard.logPath}` });
      break;
    }
  }

  if (guard) await guard.stop();
  await origin.stop();
  if (guard) {
    const errs = errorLines(guard.logPath);
    if (errs.count) {
      notes.push(
        `the guard logged ${errs.count} error(s) in ${path.relative(root, guard.logPath)}, most often: ${errs.top}`,
      );
    }
  }

  const leftOut = flags.only ? [] : onlyWhenNamed.filter((n) => !parseList(flags.skip).includes(n));
  if (leftOut.length) {
    notes.push(
      `not in this run: ${leftOut.join(", ")} (the matrix measures overload, a quiet tenant beside a flood and critical traffic beside HAProxy; --only ${leftOut.join(",")} runs them)` +
        (flags.scale === undefined && !flags.quick
          ? `; the other scenarios' phases cut to ${FULL_SCALE}x their length to fit the run's budget`
          : ""),
    );
  }
  const busy = rows.filter((r) => r.otherCpuCores > BUSY_CORES);
  if (busy.length) {
    notes.push(
      `noise: other programs used more than ${BUSY_CORES} of the ${os.cpus().length} cores during ${busy.length} phase(s) ` +
        `(${busy.map((r) => `${r.scenario} ${r.phase}`).join("; ")}): rerun on a quiet machine before trusting those figures`,
    );
  }

  const result = {
    meta: {
      startedAt: new Date(started).toISOString(),
      mode,
      scale,
      seed,
      scenarios: selected.map((sc) => sc.name),
      cpus: os.cpus().length,
      node: process.version,
      gitHead: gitHead(),
      // The guard runs from the working tree: uncommitted src/ changes mean HEAD is not what ran.
      srcChanges: srcChanges(),
      guard: guardNote,
      elapsedMs: Date.now() - started,
    },
    sizing: { ...sizing, capacity: capacityOf(sizing) },
    limits: defaultLimits(sizing),
    rows,
    notes,
    targets,
    errors,
    timelines,
    tables,
    figures,
  };
  writeResults(flags.out, result);
  console.log(`\n${renderTerminal(result)}`);
  console.log(`\nwrote ${path.relative(process.cwd(), path.join(flags.out, "latest.json"))} and latest.md`);
  return startFailed || errors.length > 0 ? 1 : 0;
}

/** The origin as a child process; it also exits by itself if this process dies (IPC disconnect). */
async function startOriginChild() {
  const child = spawnTracked(
    process.execPath,
    [
      path.join(here, "origin.mjs"),
      "--port",
      "0",
      "--concurrency",
      String(sizing.concurrency),
      "--service-ms",
      String(sizing.serviceMs),
      "--jitter",
      String(sizing.jitter),
    ],
    { stdio: ["ignore", "pipe", "pipe", "ipc"] },
  );
  child.stderr.on("data", (d) => process.stderr.write(`[origin] ${d}`));
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("origin did not start within 10 s")), 10_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`origin exited with ${code}`));
    });
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

function parseList(v) {
  return v
    ? v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

function pickScenarios(only, skip) {
  const names = scenarios.map((s) => s.name);
  const parse = parseList;
  for (const n of [...parse(only), ...parse(skip)]) {
    if (!names.includes(n)) fail(`unknown scenario "${n}"; known: ${names.join(", ")}`);
  }
  const o = parse(only);
  const s = parse(skip);
  return scenarios.filter(
    (sc) => (o.length === 0 ? !onlyWhenNamed.includes(sc.name) : o.includes(sc.name)) && !s.includes(sc.name),
  );
}

function gitHead() {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
}

/** ERROR lines in a wrangler log (ANSI colours stripped) and the commonest, so a reader sees the guard threw. */
function errorLines(file) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { count: 0 };
  }
  // Defined here, not at the top level: main() runs (top-level await) before later constants exist.
  const ansiColour = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
  const byText = new Map();
  let count = 0;
  for (const raw of text.split("\n")) {
    const line = raw.replace(ansiColour, "");
    if (!/\[ERROR\]/.test(line)) continue;
    count++;
    const key = line
      .replace(/.*\[ERROR\]\s*/, "")
      .replace(/'[^']*'/g, "'…'")
      .slice(0, 120);
    byText.set(key, (byText.get(key) ?? 0) + 1);
  }
  const top = [...byText.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([k, n]) => `${n}x ${k}`)
    .join("; ");
  return { count, top };
}

/** Files under src/ that differ from HEAD (the guard under wrangler dev runs the working tree). */
function srcChanges() {
  try {
    return execFileSync("git", ["status", "--porcelain", "--", "src"], {
      cwd: root,
      stdio: ["ignore", "pipe", "ignore"],
    })
      .toString()
      .split("\n")
      .filter(Boolean).length;
  } catch {
    return undefined;
  }
}

function firstLine(s) {
  return String(s).split("\n")[0].slice(0, 300);
}

function parseFlags(spec) {
  try {
    return parseArgs(spec);
  } catch (e) {
    return fail(e.message.split("\n")[0]);
  }
}

function fail(msg) {
  console.error(`bench: ${msg} (see --help)`);
  process.exit(64);
}
