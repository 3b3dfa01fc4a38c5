// HAProxy as the peer in the configuration matrix: found (or installed from Debian's package),
// configured from the same limits as the guard's tenants, run as a child process in the
// foreground (-db) on a free loopback port, stopped after.
//
// How the guard's limits map onto HAProxy (2.6), one backend per tenant, routed by x-api-key:
//   maxInFlight -> `server ... maxconn N`: at most N requests at the origin at once;
//   maxWaitMs   -> `timeout queue`: a request that waited that long for a slot gets a 503;
//   maxQueue    -> `server ... maxqueue N` as asked, and `http-request deny if { queue() ge N }` in
//                  the backend. The second is what bounds the queue: with one server and no
//                  persistence HAProxy parks the excess in the backend's queue, which maxqueue does
//                  not bound (checked: 200 requests at once against maxconn 4 maxqueue 32 all
//                  waited for `timeout queue`). The deny sheds the newest arrival at once, as the
//                  guard's full queue does;
//   timeoutMs   -> `timeout server`: the origin's answer must start within it (504 otherwise);
//   x-priority  -> `http-request set-priority-class`: critical is dequeued before normal before low.
//                  HAProxy cannot evict a queued request for a more important one, so critical
//                  requests skip the queue-full deny instead (they wait at the head of the queue,
//                  so they add at most a few entries above the bound).
// Loopback only: it binds 127.0.0.1 and its only server is the lab's origin on 127.0.0.1.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnTracked, stopChild } from "./children.mjs";
import { freePort } from "./guard.mjs";
import { sleep } from "./http.mjs";

const CANDIDATES = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/bin/haproxy"];
const INSTALL_TIMEOUT_MS = 240_000;
const READY_TIMEOUT_MS = 10_000;
export const READY_PATH = "/__haproxy/ready";

/**
 * The haproxy binary, installing the Debian package when it is missing and we may (root with
 * apt-get). Never throws: `{ bin, version }`, or `{ note }` saying why the HAProxy column is empty.
 */
export async function ensureHaproxy(log = () => {}) {
  const found = await locate();
  if (found) return found;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (!root || !existsSync("/usr/bin/apt-get")) {
    return { note: "haproxy is not installed and cannot be installed here (needs root and apt-get)" };
  }
  log("  haproxy is missing: apt-get install -y haproxy ...");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => run("apt-get", ["install", "-y", "-q", "haproxy"], { env, timeout: INSTALL_TIMEOUT_MS });
  let r = await install();
  if (r.error) {
    log("  apt-get install failed; apt-get update and once more ...");
    await run("apt-get", ["update", "-q"], { env, timeout: INSTALL_TIMEOUT_MS });
    r = await install();
  }
  const after = await locate();
  if (after) return { ...after, installed: true };
  return { note: `haproxy could not be installed: ${firstLine(r.stderr || r.error?.message || "unknown error")}` };
}

async function locate() {
  for (const bin of CANDIDATES) {
    if (!existsSync(bin)) continue;
    const r = await run(bin, ["-v"], { timeout: 10_000 });
    const m = /HA-?Proxy version (\S+)/i.exec(r.stdout);
    if (m) return { bin, version: m[1] };
  }
  return undefined;
}

/**
 * @typedef {object} Backend
 * @property {string} name         backend name (letters, digits, _ and -)
 * @property {string} [apiKey]     requests with this x-api-key go here; one backend has none: the default
 * @property {number} maxconn      slots at the origin
 * @property {number} maxQueue     requests waiting at most (newer ones are denied with 503)
 * @property {number} queueTimeoutMs  `timeout queue`
 */

/** The generated haproxy.cfg text. Pure, so the mapping above can be read in one place. */
export function haproxyConfig({ port, originUrl, backends, serverTimeoutMs }) {
  const o = new URL(originUrl);
  if (o.hostname !== "127.0.0.1") throw new Error(`haproxy: origin must be on 127.0.0.1, got ${o.hostname}`);
  const fallback = backends.filter((b) => !b.apiKey);
  if (fallback.length !== 1) throw new Error("haproxy: exactly one backend without apiKey (the default) is needed");
  for (const b of backends) {
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(b.name)) throw new Error(`haproxy: bad backend name ${JSON.stringify(b.name)}`);
    if (b.apiKey !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(b.apiKey))
      throw new Error(`haproxy: bad apiKey ${JSON.stringify(b.apiKey)}`);
  }
  const lines = [
    "global",
    "  maxconn 4096",
    // One thread, like the one isolate thread that serves the guard, and the machine has 2 cores.
    "  nbthread 1",
    "defaults",
    "  mode http",
    "  timeout connect 1s",
    "  timeout client 30s",
    `  timeout server ${serverTimeoutMs}ms`,
    "  timeout http-keep-alive 60s",
    "frontend fe",
    `  bind 127.0.0.1:${port}`,
    "  maxconn 4000",
    `  http-request return status 200 content-type text/plain string ready if { path ${READY_PATH} }`,
    ...backends
      .filter((b) => b.apiKey)
      .map((b) => `  use_backend ${b.name} if { req.hdr(x-api-key) -m str ${b.apiKey} }`),
    `  default_backend ${fallback[0].name}`,
  ];
  for (const b of backends) {
    lines.push(
      `backend ${b.name}`,
      `  timeout queue ${b.queueTimeoutMs}ms`,
      "  acl critical req.hdr(x-priority) -m str critical",
      "  acl low req.hdr(x-priority) -m str low",
      // Lower class is dequeued first; the default class is 0.
      "  http-request set-priority-class int(-1) if critical",
      "  http-request set-priority-class int(1) if low",
      `  http-request deny deny_status 503 if { queue() ge ${b.maxQueue} } !critical`,
      `  server origin ${o.hostname}:${o.port} maxconn ${b.maxconn} maxqueue ${b.maxQueue}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Starts haproxy with the generated config; resolves once it answers on its ready path.
 * @param {{ bin: string, originUrl: string, backends: Backend[], serverTimeoutMs: number }} opts
 * @returns {Promise<{ url: string, pid: number, config: string, workerdProcs: () => {pid:number, role:string}[],
 *   alive: () => boolean, stop: () => Promise<void> }>}
 */
export async function startHaproxy(opts) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-haproxy-"));
  const config = haproxyConfig({ ...opts, port });
  const cfgPath = path.join(dir, "haproxy.cfg");
  writeFileSync(cfgPath, config);
  const check = await run(opts.bin, ["-c", "-q", "-f", cfgPath], { timeout: 10_000 });
  if (check.error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`haproxy rejected its config: ${firstLine(check.stderr || check.stdout || check.error.message)}`);
  }
  const child = spawnTracked(opts.bin, ["-db", "-f", cfgPath], { stdio: ["ignore", "ignore", "pipe"] });
  let tail = "";
  child.stderr.on("data", (d) => {
    tail = (tail + d.toString("utf8")).slice(-2000);
  });
  let exited = null;
  child.once("exit", (code, signal) => {
    exited = code ?? signal;
  });
  const url = `http://127.0.0.1:${port}`;
  const handle = {
    url,
    pid: child.pid,
    config,
    // The lab measures a target's CPU through this (named for the wrangler handles it also takes).
    workerdProcs: () => (exited === null ? [{ pid: child.pid, role: "haproxy" }] : []),
    alive: () => exited === null,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const until = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < until) {
    if (exited !== null) break;
    try {
      const res = await fetch(`${url}${READY_PATH}`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return handle;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await handle.stop();
  throw new Error(`haproxy did not answer on ${url} (exit ${exited}): ${firstLine(tail)}`);
}

/** execFile as a promise that never rejects: { stdout, stderr, error }. */
function run(cmd, args, options) {
  return new Promise((resolve) => {
    execFile(cmd, args, { ...options, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ error, stdout: String(stdout ?? ""), stderr: String(stderr ?? "") }),
    );
  });
}

function firstLine(s) {
  return (
    String(s)
      .split("\n")
      .find((l) => l.trim()) ?? ""
  ).slice(0, 300);
}
