/**
 * Entry of the lease simulation (bundled and run by bench/sim/run.mjs). Arguments:
 *   --seed N          the run's seed (default 1)
 *   --cells a,b       which cells (default: all; see scenario.ts)
 *   --scale X         phase lengths x X (default 1)
 *   --jobs N          cells run in N processes at once (default 2)
 *   --trace k1,k2     trace these isolate-tenants (e.g. flood:17) to <out>/sim-trace-<cell>.txt
 *   --trace-from MS, --trace-to MS   the traced window (simulated ms)
 *   --out DIR         where sim.md and sim.json go (default bench/results); --no-write: print only
 *   --head TEXT       what source the run used (the runner passes the git commit)
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runProbes } from "./probes";
import { type CellFigures, markdown, summarise } from "./report";
import { CELLS, LAYOUT, build, phasesFor } from "./scenario";

function args(argv: readonly string[]) {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i] as string;
    if (!a.startsWith("--")) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) out.set(a.slice(2), "true");
    else {
      out.set(a.slice(2), next);
      i += 1;
    }
  }
  return out;
}

const opts = args(process.argv.slice(2));
const seed = Number(opts.get("seed") ?? 1);
const scale = Number(opts.get("scale") ?? 1);
const outDir = opts.get("out") ?? "bench/results";
const write = opts.get("no-write") !== "true";
const wanted = (opts.get("cells") ?? CELLS.map((c) => c.name).join(",")).split(",");
const cells = CELLS.filter((c) => wanted.includes(c.name));
if (!Number.isInteger(seed) || !(scale > 0) || cells.length === 0) {
  console.error(
    `bad arguments: seed ${opts.get("seed")}, scale ${opts.get("scale")}, cells ${opts.get("cells")} (known: ${CELLS.map((c) => c.name).join(", ")})`,
  );
  process.exit(2);
}
const traceKeys = opts.get("trace");
const traceLines: string[] = [];
const phases = phasesFor(scale);
const durationMs = (phases[phases.length - 1] as { to: number }).to;
const base = {
  seed,
  durationMs,
  binMs: 100,
  objectCallMs: 0.2,
  objectWakeMs: 0.05,
  objectSkewMs: 1_234,
  parseReports: opts.get("no-parse") !== "true",
  verifyShortcut: opts.get("verify") === "true",
  phases,
};

/** Runs one cell in this process. */
function runCell(cell: (typeof CELLS)[number]): CellFigures {
  const t0 = performance.now();
  const trace = traceKeys
    ? {
        keys: new Set(traceKeys.split(",")),
        from: Number(opts.get("trace-from") ?? 0),
        to: Number(opts.get("trace-to") ?? durationMs),
        sink: (line: string) => traceLines.push(`[${cell.name}] ${line}`),
      }
    : null;
  const built = build(cell, LAYOUT, { ...base, trace });
  built.world.run();
  const figures = summarise(cell, built, phases, base.binMs, durationMs, performance.now() - t0, built.world.events);
  console.error(
    `cell ${cell.name}: ${built.world.events.toLocaleString("en-US")} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  if (traceKeys) {
    mkdirSync(outDir, { recursive: true });
    const path = join(outDir, `sim-trace-${cell.name}.txt`);
    writeFileSync(path, `${traceLines.join("\n")}\n`);
    console.error(`trace: ${traceLines.length} lines in ${path}`);
  }
  return figures;
}

/** Each cell in its own Node process, `jobs` at a time (the cells are independent). */
async function runCells(jobs: number): Promise<CellFigures[]> {
  if (jobs <= 1 || cells.length <= 1) return cells.map(runCell);
  const dir = mkdtempSync(join(tmpdir(), "lease-sim-cells-"));
  const passOn = process.argv.slice(2).filter((_, i, all) => all[i] !== "--cells" && all[i - 1] !== "--cells");
  const queue = [...cells];
  const out = new Map<string, CellFigures>();
  const worker = async () => {
    for (let cell = queue.shift(); cell; cell = queue.shift()) {
      const file = join(dir, `${cell.name}.json`);
      const name = cell.name;
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(
          process.execPath,
          [process.argv[1] as string, ...passOn, "--cells", name, "--child-out", file],
          { stdio: ["ignore", "ignore", "inherit"] },
        );
        child.on("exit", (c) => resolve(c));
      });
      if (code !== 0 && code !== 1) throw new Error(`cell ${name} exited with ${code}`);
      out.set(name, JSON.parse(readFileSync(file, "utf8")) as CellFigures);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, cells.length) }, worker));
  rmSync(dir, { recursive: true, force: true });
  return cells.map((c) => out.get(c.name) as CellFigures);
}

const childOut = opts.get("child-out");
if (childOut) {
  const [only] = cells;
  writeFileSync(childOut, JSON.stringify(runCell(only as (typeof CELLS)[number])));
  process.exit(0);
}

const started = performance.now();
const results = await runCells(Number(opts.get("jobs") ?? 2));
const probes = runProbes(seed);
const wallMs = performance.now() - started;
const md = markdown(results, probes, {
  seed,
  wallMs,
  layout: LAYOUT,
  phases,
  config: base,
  head: opts.get("head") ?? "unknown",
});
console.log(md);
if (write) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "sim.md"), `${md}\n`);
  writeFileSync(
    join(outDir, "sim.json"),
    `${JSON.stringify({ seed, head: opts.get("head") ?? "unknown", wallMs: Math.round(wallMs), layout: LAYOUT, phases, config: base, probes, cells: results }, null, 1)}\n`,
  );
  console.error(`wrote ${join(outDir, "sim.md")} and ${join(outDir, "sim.json")}`);
}
const failed = results.flatMap((c) =>
  c.checks.filter((k) => !k.ok && k.safety).map((k) => `${c.cell}: ${k.name}: ${k.detail}`),
);
if (failed.length > 0) {
  console.error(`FAIL\n${failed.join("\n")}`);
  process.exitCode = 1;
}
