// Child processes of the benchmark, and the guarantee that none outlives it.
//
// Every child is spawned in its own process group (detached) so that stopping it also stops what it
// spawned (npx -> wrangler -> two workerd). Only groups we created are signalled, by their id.
// Cleanup runs on normal exit, on SIGINT/SIGTERM and on uncaught errors.
import { spawn } from "node:child_process";

/** @type {Set<import("node:child_process").ChildProcess>} */
const live = new Set();
let hooked = false;

/** spawn() in a new process group, registered for cleanup. */
export function spawnTracked(command, args, options = {}) {
  hook();
  const child = spawn(command, args, { ...options, detached: true });
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** SIGTERM the child's group, SIGKILL it if it has not exited after graceMs. */
export async function stopChild(child, graceMs = 3000) {
  // A child that exited on its own may have left its group (workerd) behind: stop that too.
  if (!live.has(child) && !groupAlive(child)) return;
  signalGroup(child, "SIGTERM");
  const gone = child.exitCode !== null || child.signalCode !== null;
  const exited =
    gone ||
    (await Promise.race([
      new Promise((resolve) => child.once("exit", () => resolve(true))),
      new Promise((resolve) => setTimeout(resolve, graceMs, false)),
    ]));
  // workerd grandchildren may outlive their parent for a moment; the group kill reaches them too.
  signalGroup(child, "SIGKILL");
  if (!exited) live.delete(child);
  // Wait (bounded) until nothing in the group is left, so the caller can remove their files.
  for (let i = 0; i < 40 && groupAlive(child); i++) await new Promise((r) => setTimeout(r, 50));
}

function groupAlive(child) {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function stopAll() {
  await Promise.all([...live].map((c) => stopChild(c)));
}

function signalGroup(child, signal) {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // group already gone
  }
}

function killAllNow() {
  for (const child of live) signalGroup(child, "SIGKILL");
  live.clear();
}

function hook() {
  if (hooked) return;
  hooked = true;
  // "exit" handlers must be synchronous: last resort, kill without grace.
  process.on("exit", killAllNow);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping child processes`);
      stopAll().finally(() => process.exit(130));
    });
  }
}
