// Resident memory and CPU time of a process tree, from /proc (Linux only; elsewhere the figures are absent).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const MAX_SAMPLES = 2000; // a sampler keeps at most this many points

/** All processes below `rootPid` (not the root itself): [{pid, ppid, comm}]. */
export function descendants(rootPid) {
  const all = listProcs();
  const out = [];
  const frontier = [rootPid];
  const seen = new Set(frontier);
  while (frontier.length > 0 && out.length < 1000) {
    const parent = frontier.pop();
    for (const p of all) {
      if (p.ppid !== parent || seen.has(p.pid)) continue;
      seen.add(p.pid);
      out.push(p);
      frontier.push(p.pid);
    }
  }
  return out;
}

function listProcs() {
  let entries;
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const procs = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // comm may contain spaces and parentheses: fields after the last ")" are fixed.
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      procs.push({ pid: Number(name), ppid, comm });
    } catch {
      // process exited while we looked
    }
  }
  return procs;
}

/** A process's command line, arguments joined by spaces ("" if it is gone). */
export function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** VmRSS of one process in MiB, or NaN if it is gone. */
export function rssMiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Samples the RSS of `pids` (summed, and per pid) every `everyMs` until stopped.
 * @param {number[]} pids
 * @returns {{ stop: () => {samples: {t:number, mib:number, byPid:Record<number,number>}[],
 *   startMiB:number, midMiB:number, maxMiB:number, endMiB:number} }}
 */
export function sampleRss(pids, everyMs = 500) {
  const samples = [];
  const t0 = Date.now();
  const round = (v) => Math.round(v * 10) / 10;
  const take = () => {
    if (pids.length === 0 || samples.length >= MAX_SAMPLES) return;
    const byPid = {};
    for (const pid of pids) byPid[pid] = round(rssMiB(pid) || 0);
    const mib = round(Object.values(byPid).reduce((a, b) => a + b, 0));
    samples.push({ t: Date.now() - t0, mib, byPid });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      const mibs = samples.map((s) => s.mib);
      return {
        samples,
        startMiB: mibs[0] ?? NaN,
        midMiB: mibs[Math.floor(mibs.length / 2)] ?? NaN,
        maxMiB: mibs.length ? Math.max(...mibs) : NaN,
        endMiB: mibs[mibs.length - 1] ?? NaN,
      };
    },
  };
}

/** Jiffies per second (USER_HZ) of /proc's CPU times: `getconf CLK_TCK`, else Linux's usual 100. */
const CLK_TCK = (() => {
  try {
    const v = Number(
      execFileSync("getconf", ["CLK_TCK"], { stdio: ["ignore", "pipe", "ignore"], timeout: 2000 })
        .toString()
        .trim(),
    );
    return Number.isFinite(v) && v > 0 ? v : 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time (user + system) each pid has used so far, in ms; a pid that is gone reads 0.
 * Resolution is one jiffy (10 ms at USER_HZ 100) per process, so compare phases of hundreds of
 * requests, not a handful.
 * @param {number[]} pids
 * @returns {Record<number, number>}
 */
export function cpuMsByPid(pids) {
  return Object.fromEntries(pids.map((pid) => [pid, (procJiffies(pid) * 1000) / CLK_TCK]));
}

/**
 * CPU time so far, machine-wide (busy jiffies from /proc/stat) and for this process's tree.
 * Two snapshots give the CPU other programs used in between: on a shared machine that is the
 * noise behind a surprising figure. NaN where /proc is not available.
 */
export function cpuSnapshot() {
  const at = Date.now();
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
    const busy = fields.slice(0, 8).reduce((a, b) => a + b, 0) - idle; // up to steal; guest is inside user
    let ours = 0;
    for (const pid of [process.pid, ...descendants(process.pid).map((p) => p.pid)]) ours += procJiffies(pid);
    return { at, busy, ours };
  } catch {
    return { at, busy: NaN, ours: NaN };
  }
}

/** Cores' worth of CPU used by programs outside this benchmark between two snapshots. */
export function otherCores(before, after) {
  const seconds = (after.at - before.at) / 1000;
  if (!(seconds > 0)) return NaN;
  return Math.max(0, (after.busy - before.busy - (after.ours - before.ours)) / CLK_TCK / seconds);
}

function procJiffies(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields after comm start at index 3 (state); utime and stime are fields 14 and 15
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}
