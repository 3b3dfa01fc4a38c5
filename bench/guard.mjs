// The guard under `wrangler dev`, as a child process of the benchmark: start, wait until it
// answers, find its workerd processes (for memory), stop.
//
// wrangler is run with the project's Node 22 (node_modules/.bin/node), as `npx wrangler` would from
// the project root, but without the npx layer. Its output goes to a log file, not the terminal: at
// several hundred requests per second its per-request log lines would cost CPU and drown the table,
// so the log level is "warn".
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { spawnTracked, stopChild } from "./children.mjs";
import { sleep } from "./http.mjs";
import { cmdline, descendants } from "./procmem.mjs";

const READY_POLL_MS = 500;

/**
 * @param {{ root: string, originUrl: string, adminToken: string, logPath: string,
 *   port?: number, configPath?: string, readyTimeoutMs?: number }} opts
 */
export async function startGuard(opts) {
  const { root, originUrl, adminToken, logPath } = opts;
  const node = path.join(root, "node_modules/.bin/node");
  const wrangler = path.join(root, "node_modules/wrangler/bin/wrangler.js");
  for (const f of [node, wrangler]) if (!existsSync(f)) throw new Error(`${f} is missing: run npm ci in ${root}`);

  const port = opts.port ?? (await freePort());
  const inspectorPort = await freePort();
  const persistDir = mkdtempSync(path.join(os.tmpdir(), "guard-bench-"));
  const args = [
    wrangler,
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-ip",
    "127.0.0.1",
    "--inspector-port",
    String(inspectorPort),
    "--var",
    `ORIGIN_URL:${originUrl}`,
    "--var",
    `ADMIN_TOKEN:${adminToken}`,
    "--persist-to",
    persistDir,
    "--show-interactive-dev-session=false",
    "--log-level",
    process.env.BENCH_WRANGLER_LOG ?? "warn",
  ];
  if (opts.configPath) args.push("--config", opts.configPath);

  mkdirSync(path.dirname(logPath), { recursive: true });
  const log = createWriteStream(logPath);
  const child = spawnTracked(node, args, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${process.env.PATH}`,
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      WRANGLER_SEND_METRICS: "false",
      WRANGLER_LOG_PATH: persistDir, // keeps wrangler's debug log out of the home directory
      NO_COLOR: "1",
      FORCE_COLOR: "0",
    },
  });
  let tail = "";
  const keepTail = (chunk) => {
    tail = (tail + chunk.toString("utf8")).slice(-2000);
  };
  child.stdout.on("data", keepTail);
  child.stderr.on("data", keepTail);
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exitCode = null;
  child.once("exit", (code, signal) => {
    exitCode = code ?? signal;
  });

  const url = `http://127.0.0.1:${port}`;
  const guard = {
    url,
    port,
    pid: child.pid,
    logPath,
    /**
     * workerd processes under this wrangler: "proxy" is wrangler's proxy worker (it owns --port),
     * "worker" runs Miniflare's entry worker and the guard itself.
     */
    workerdProcs: () =>
      descendants(child.pid)
        .filter((p) => p.comm === "workerd")
        .map((p) => ({ pid: p.pid, role: cmdline(p.pid).includes(`entry=127.0.0.1:${port} `) ? "proxy" : "worker" })),
    alive: () => exitCode === null,
    async stop() {
      await stopChild(child);
      log.end();
      rmSync(persistDir, { recursive: true, force: true, maxRetries: 3 });
    },
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (exitCode !== null) {
      await guard.stop();
      throw new Error(`wrangler dev exited (${exitCode}) before answering; log ${logPath}:\n${tail}`);
    }
    if (await answers(url)) return guard;
    await sleep(READY_POLL_MS);
  }
  await guard.stop();
  throw new Error(
    `wrangler dev did not answer on ${url} within ${opts.readyTimeoutMs ?? 90_000} ms; log ${logPath}:\n${tail}`,
  );
}

/** Any HTTP answer (even 401/404/502) means the Worker is up. */
async function answers(url) {
  try {
    const res = await fetch(`${url}/__bench/ready`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** A port that was free a moment ago on loopback (small race accepted: nothing else runs here). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
