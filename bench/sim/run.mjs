// Bundles the lease simulation (TypeScript, importing the project's pure modules from src/) with
// esbuild into a temporary .mjs and runs it with this Node. Arguments pass through (see main.ts).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dir = mkdtempSync(join(tmpdir(), "lease-sim-"));
const outfile = join(dir, "lease-sim.mjs");
let head = "unknown";
try {
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
  const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: root, encoding: "utf8" }).trim();
  head = `${commit}${dirty ? " with uncommitted changes in src/" : ""}`;
} catch {}
const started = performance.now();
try {
  await build({
    entryPoints: [join(root, "bench/sim/main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning",
  });
  const result = spawnSync(process.execPath, [outfile, "--head", head, ...process.argv.slice(2)], {
    cwd: root,
    stdio: "inherit",
  });
  console.error(`sim: ${((performance.now() - started) / 1000).toFixed(1)} s including the bundle`);
  process.exitCode = result.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
