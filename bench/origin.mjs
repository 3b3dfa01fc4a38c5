// Simulated API origin for the overload lab and the README demo. Plain node:http, no dependencies.
//
// It serves at most `concurrency` requests at once, each taking `serviceMs` (± `jitter`), and queues
// the rest internally, FIFO, like a real server whose worker pool is busy: past capacity it does not
// refuse, it just gets slower. An API's routes rarely cost the same, so `routes` can give path
// prefixes service times of their own (longest prefix wins; a plain string prefix, so "/v1/slow"
// also matches "/v1/slowest"); other paths take `serviceMs`. All routes share the slots and the queue. The queue is still bounded (`maxQueue`, then 503) so that a runaway
// benchmark cannot exhaust memory. It is deliberately naive about deadlines: it never skips late
// work, it only counts it, because measuring wasted work is the point.
//
// For the guard's origin stage it can also fail on purpose (answer every arrival at once with 503,
// or 429, and `Retry-After`, for a set time), announce its capacity in a response header, and check
// every arrival against the limit the guard says it admitted it under (`x-guard-origin-limit`):
// the requests it holds (served + queued, this one included) must never exceed that limit.
//
// Standalone:  node bench/origin.mjs --port 8788 [--concurrency 4] [--service-ms 100] [--jitter 0.3]
//              [--max-queue 5000] [--capacity-header x-origin-capacity] [--route /v1/slow=300 ...]
// Control (loopback only; never through the guard: a request carrying the guard's
// x-guard-request-id, which the guard sets on everything it forwards and strips from clients, is
// refused 403, so a client of the demo cannot reset or reconfigure the origin):
//   GET /__origin/stats    counters since the last reset
//   POST /__origin/reset   zero counters, answer queued requests with 503 (next phase starts clean)
//   POST /__origin/config  {"serviceMs":500, "concurrency":4, "jitter":0.3} applies to new work;
//                          {"routes":{"/v1/slow":300,"/v1/fast":100}} sets per-route service times
//                          (replacing the whole map; null or {} clears it);
//                          {"failForMs":10000, "retryAfterSec":2} answers every arrival 503 with
//                          Retry-After: 2 for the next 10 s (or until epoch ms "failUntilMs"; 0 ends
//                          it; retryAfterSec null: the seconds left of the failure; "failStatus":
//                          429 for a rate-limit answer instead); {"capacityHeader":"x-origin-capacity",
//                          "capacityValue":null} sends that header on every answer, its value the
//                          slot count (or capacityValue); capacityHeader null stops it.
// A config patch changes only the fields it names (a patch without `routes` keeps them), and a reset
// zeroes counters but keeps the config, routes included.
// When started with an IPC channel (child_process.fork) it exits when the parent goes away, so a
// crashed benchmark never leaves an origin behind.
import http from "node:http";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const LABEL_CAP = 256; // distinct tenant/priority labels kept; the rest count as "(other)"
const BODY_CAP = 64 * 1024; // request bytes read and discarded; larger bodies are cut off
const LIMIT_HEADER = "x-guard-origin-limit"; // the guard's origin limit when it admitted the request
// Arrivals within this long after a failure answer left are not counted as ignoring its
// Retry-After: the guard may have admitted them before that answer reached it.
const HOLD_GRACE_MS = 250;
const FAIL_SECONDS_CAP = 600; // per-second arrival counts kept for one failure period
const ROUTES_CAP = 64; // route prefixes at most (each arrival scans them)
const PREFIX_CAP = 256; // characters in one route prefix
const DEFAULT_ROUTE = "(default)"; // label of arrivals no route prefix matched

/**
 * @param {{concurrency?:number, serviceMs?:number, jitter?:number, maxQueue?:number,
 *   capacityHeader?:string|null, capacityValue?:number|null, routes?:Record<string,number>|null}} opts
 */
export function createOrigin(opts = {}) {
  const config = {
    concurrency: opts.concurrency ?? 4,
    serviceMs: opts.serviceMs ?? 100,
    jitter: opts.jitter ?? 0.3,
    maxQueue: opts.maxQueue ?? 5000,
    capacityHeader: opts.capacityHeader ?? null,
    capacityValue: opts.capacityValue ?? null,
    routes: opts.routes ?? null, // {prefix: serviceMs}; null: every path takes serviceMs
    failUntilMs: 0, // epoch ms: until then every arrival is answered failStatus at once
    failStatus: 503,
    retryAfterSec: null, // null: the whole seconds left of the failure
  };
  const error = configError(config);
  if (error) throw new Error(`origin: ${error}`);
  let stats = freshStats();
  let epoch = 0; // work from before a reset still completes, but is not counted in the new phase
  let active = 0;
  /** @type {Array<Job|undefined>} FIFO with a moving head; compacted when half is dead space */
  let queue = [];
  let head = 0;
  // The Retry-After the origin has announced: arrivals in [holdFromMs, holdUntilMs) ignored it.
  let holdFromMs = 0;
  let holdUntilMs = 0;
  // When each currently free slot was freed (oldest first): the gap a freed slot sits idle before
  // the next request reaches it is the hand-off cost of whatever stands in front of the origin.
  let freedAt = [];

  const queued = () => queue.length - head;
  const outstanding = () => active + queued();

  /** The longest route prefix the path starts with, or undefined. */
  function routeOf(path) {
    let best;
    for (const prefix of Object.keys(config.routes ?? {})) {
      if (path.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
    }
    return best;
  }

  function serviceTime(route) {
    const j = config.jitter;
    const base = route === undefined ? config.serviceMs : config.routes[route];
    return Math.max(1, base * (1 - j + 2 * j * Math.random()));
  }

  function start(job) {
    active++;
    stats.maxActive = Math.max(stats.maxActive, active);
    const now = Date.now();
    if (job.epoch === epoch && job.deadline !== undefined && now > job.deadline) stats.startedAfterDeadline++;
    // The route is read now, not at arrival: a config change applies to work not yet started.
    setTimeout(() => finish(job), serviceTime(routeOf(job.path.split("?")[0])));
  }

  function finish(job) {
    active--;
    const now = Date.now();
    if (queued() === 0) freedAt.push(now);
    if (job.epoch === epoch) {
      stats.completed++;
      if (job.deadline !== undefined && now > job.deadline) stats.finishedAfterDeadline++;
      if (job.res.destroyed) stats.clientGone++;
      stats.serviceMsTotal += now - job.receivedAt;
    }
    respond(job, 200, {
      ok: true,
      path: job.path,
      tenant: job.tenant ?? null,
      priority: job.priority ?? null,
      timeoutMs: job.timeoutMs ?? null,
      deadline: job.deadline ?? null,
      originMs: now - job.receivedAt,
    });
    pump();
  }

  function pump() {
    while (active < config.concurrency && queued() > 0) {
      const job = queue[head];
      queue[head++] = undefined;
      if (job) start(job);
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  }

  function countLabel(map, label) {
    const key = label === undefined ? "(none)" : map.has(label) || map.size < LABEL_CAP ? label : "(other)";
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  function accept(req, res) {
    const now = Date.now();
    const h = req.headers;
    const tenant = one(h["x-guard-tenant"]);
    const priority = one(h["x-guard-priority"]);
    const deadlineRaw = one(h["x-request-deadline"]);
    const timeoutRaw = one(h["x-request-timeout-ms"]);
    const deadline = deadlineRaw !== undefined && /^\d+$/.test(deadlineRaw) ? Number(deadlineRaw) : undefined;
    const timeoutMs = timeoutRaw !== undefined && /^\d+$/.test(timeoutRaw) ? Number(timeoutRaw) : undefined;

    stats.received++;
    countLabel(stats.byRoute, routeOf(req.url.split("?")[0]) ?? DEFAULT_ROUTE);
    countLabel(stats.byTenant, tenant);
    countLabel(stats.byPriority, priority);
    if (deadlineRaw !== undefined) stats.deadlineHeader++;
    if (timeoutRaw !== undefined) stats.timeoutHeader++;
    if (deadline !== undefined && now > deadline) {
      stats.receivedAfterDeadline++;
      stats.receivedLateMaxMs = Math.max(stats.receivedLateMaxMs, now - deadline);
    }
    checkLimit(one(h[LIMIT_HEADER]), outstanding() + 1);

    if (now < config.failUntilMs) {
      fail(res, now);
      return;
    }
    if (queued() >= config.maxQueue) {
      stats.rejectedQueueFull++;
      respond({ res, epoch }, 503, { ok: false, reason: "origin_queue_full" });
      return;
    }
    const job = { res, epoch, receivedAt: now, path: req.url, tenant, priority, deadline, timeoutMs };
    if (active < config.concurrency) {
      const freed = freedAt.shift();
      if (freed !== undefined && now - freed < HANDOFF_WINDOW_MS) {
        stats.handoffs++;
        stats.handoffMsTotal += now - freed;
      }
      start(job);
    } else queue.push(job);
    stats.maxOutstanding = Math.max(stats.maxOutstanding, outstanding());
  }

  /**
   * The guard admitted this request under a total origin limit (its header); what the origin holds
   * at its arrival, this request included, must not exceed it.
   */
  function checkLimit(raw, holding) {
    const l = stats.limit;
    if (raw === undefined) {
      l.missing++;
      return;
    }
    if (!/^\d+$/.test(raw.trim())) {
      l.malformed++;
      return;
    }
    const limit = Number(raw);
    l.checked++;
    l.minSeen = l.checked === 1 ? limit : Math.min(l.minSeen, limit);
    l.maxSeen = Math.max(l.maxSeen, limit);
    l.maxHolding = Math.max(l.maxHolding, holding);
    if (holding > limit) {
      l.violations++;
      l.maxExcess = Math.max(l.maxExcess, holding - limit);
    }
  }

  /** Failure mode: answered at once, with Retry-After, and the announced hold remembered. */
  function fail(res, now) {
    const f = stats.fail;
    if (f.firstAt === null) f.firstAt = now;
    f.received++;
    if (now >= holdFromMs && now < holdUntilMs) f.receivedInHold++;
    const second = Math.floor((now - f.firstAt) / 1000);
    if (second < FAIL_SECONDS_CAP) f.bySecond[second] = (f.bySecond[second] ?? 0) + 1;
    const retryAfterSec = config.retryAfterSec ?? Math.max(1, Math.ceil((config.failUntilMs - now) / 1000));
    // A new hold starts with this answer; one inside a hold only extends it.
    if (now >= holdUntilMs) holdFromMs = now + HOLD_GRACE_MS;
    holdUntilMs = Math.max(holdUntilMs, now + retryAfterSec * 1000);
    f.lastAt = now;
    respond(
      { res },
      config.failStatus,
      { ok: false, reason: "origin_unavailable", retryAfterSec },
      {
        "retry-after": String(retryAfterSec),
      },
    );
  }

  function capacityHeaders() {
    if (!config.capacityHeader) return undefined;
    return { [config.capacityHeader]: String(config.capacityValue ?? config.concurrency) };
  }

  function respond(job, status, body, headers) {
    const extra = capacityHeaders();
    return send(job, status, body, extra || headers ? { ...extra, ...headers } : undefined);
  }

  function control(req, res, body) {
    const path = req.url.split("?")[0];
    if (req.method === "GET" && path === "/__origin/stats") return send({ res }, 200, snapshot());
    if (req.method === "POST" && path === "/__origin/reset") {
      epoch++;
      const dropped = queue.slice(head);
      queue = [];
      head = 0;
      for (const job of dropped) if (job) respond(job, 503, { ok: false, reason: "origin_reset" });
      stats = freshStats();
      freedAt = [];
      holdFromMs = holdUntilMs = 0;
      return send({ res }, 200, { ok: true, droppedQueued: dropped.length });
    }
    if (req.method === "POST" && path === "/__origin/config") {
      let patch;
      try {
        patch = JSON.parse(body || "{}");
      } catch {
        return send({ res }, 400, { ok: false, error: "body is not JSON" });
      }
      const error = configError(patch, CONTROL_RULES);
      if (error) return send({ res }, 400, { ok: false, error });
      for (const key of Object.keys(CONFIG_RULES)) if (patch[key] !== undefined) config[key] = patch[key];
      if (patch.failForMs !== undefined) config.failUntilMs = patch.failForMs > 0 ? Date.now() + patch.failForMs : 0;
      pump(); // a raised concurrency takes queued work at once
      return send({ res }, 200, { ok: true, config });
    }
    return send({ res }, 404, { ok: false, error: `unknown control path ${path}` });
  }

  function snapshot() {
    const now = Date.now();
    return {
      ...stats,
      byRoute: Object.fromEntries(stats.byRoute),
      byTenant: Object.fromEntries(stats.byTenant),
      byPriority: Object.fromEntries(stats.byPriority),
      limit: { ...stats.limit },
      fail: { ...stats.fail, bySecond: Array.from(stats.fail.bySecond, (n) => n ?? 0) },
      activeNow: active,
      queuedNow: queued(),
      failingNow: now < config.failUntilMs,
      config: { ...config, routes: config.routes && { ...config.routes } },
    };
  }

  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    let size = 0;
    const chunks = [];
    req.on("data", (c) => {
      size += c.length;
      if (size <= BODY_CAP) chunks.push(c);
    });
    req.on("end", () => {
      if (req.url.startsWith("/stream/")) streamDemo(req, res);
      else if (!req.url.startsWith("/__origin/")) accept(req, res);
      else if (req.headers[FORWARDED_BY_GUARD] !== undefined) {
        send({ res }, 403, { ok: false, reason: "origin control is not reachable through the guard" });
      } else control(req, res, Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", () => {});
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // queued requests may legitimately wait long; the client decides

  return {
    server,
    config,
    snapshot,
    /** @returns {Promise<number>} the bound port */
    listen(port = 0, host = "127.0.0.1") {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve(server.address().port));
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * The demo of a streamed route (README, `npm run dev`): `/stream/text` writes `text/plain` lines,
 * `/stream/events` server-sent events, `chunks` of them (default 10, at most 1 000) `everyMs`
 * apart (default 200, at most 10 000), each stamped with the origin's clock. Served beside the
 * slots and the queue (a stream is not the lab's unit of work) and never counted in the stats.
 */
function streamDemo(req, res) {
  const url = new URL(req.url, "http://origin");
  const bounded = (name, fallback, max) => {
    const v = Number(url.searchParams.get(name) ?? fallback);
    return Number.isInteger(v) && v >= 1 ? Math.min(v, max) : fallback;
  };
  const chunks = bounded("chunks", 10, 1_000);
  const everyMs = bounded("everyMs", 200, 10_000);
  const events = url.pathname === "/stream/events";
  if (!events && url.pathname !== "/stream/text") return send({ res }, 404, { ok: false, error: "no such stream" });
  res.writeHead(200, {
    "content-type": events ? "text/event-stream" : "text/plain; charset=utf-8",
    "cache-control": "no-cache",
  });
  let sent = 0;
  const timer = setInterval(() => {
    sent++;
    const line = `chunk ${sent}/${chunks} at ${new Date().toISOString()}`;
    res.write(events ? `id: ${sent}\ndata: ${line}\n\n` : `${line}\n`);
    if (sent >= chunks) {
      clearInterval(timer);
      res.end();
    }
  }, everyMs);
  res.on("close", () => clearInterval(timer));
}

const isCount = (v) => Number.isInteger(v) && v >= 0;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/i;

/** What each config value must be; the same rules for the CLI, the factory and POST /__origin/config. */
const CONFIG_RULES = {
  concurrency: (v) => Number.isInteger(v) && v >= 1,
  serviceMs: (v) => Number.isFinite(v) && v >= 0,
  jitter: (v) => Number.isFinite(v) && v >= 0 && v <= 1,
  maxQueue: isCount,
  capacityHeader: (v) => v === null || (typeof v === "string" && HEADER_NAME.test(v)),
  capacityValue: (v) => v === null || isCount(v),
  failUntilMs: isCount,
  failStatus: (v) => v === 503 || v === 429,
  retryAfterSec: (v) => v === null || (Number.isInteger(v) && v >= 1 && v <= 86_400),
  routes: (v) => v === null || isRoutes(v),
};
/** {prefix: serviceMs}: at most ROUTES_CAP prefixes, each a path, each time valid as serviceMs is. */
function isRoutes(v) {
  if (typeof v !== "object" || Array.isArray(v)) return false;
  const entries = Object.entries(v);
  return (
    entries.length <= ROUTES_CAP &&
    entries.every(([prefix, ms]) => prefix.startsWith("/") && prefix.length <= PREFIX_CAP && CONFIG_RULES.serviceMs(ms))
  );
}
/** POST /__origin/config also takes failForMs, a failure starting now (0 ends one). */
const CONTROL_RULES = { ...CONFIG_RULES, failForMs: isCount };

/** The first invalid or unknown field, named with its value, or undefined when all are valid. */
function configError(patch, rules = CONFIG_RULES) {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return "config must be a JSON object";
  for (const [key, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    const ok = rules[key];
    if (!ok) return `unknown field ${key}`;
    if (!ok(v)) return `bad ${key}: ${JSON.stringify(v)}`;
  }
  return undefined;
}

/** @typedef {{res: http.ServerResponse, epoch: number, receivedAt: number, path: string,
 *   tenant?: string, priority?: string, deadline?: number, timeoutMs?: number}} Job */

/** Set by the guard on every request it forwards (and never passed on from a client). */
const FORWARDED_BY_GUARD = "x-guard-request-id";

/** A slot idle longer than this had no demand: not a hand-off. */
const HANDOFF_WINDOW_MS = 100;

function freshStats() {
  return {
    received: 0,
    completed: 0,
    maxOutstanding: 0, // requests received and not yet answered: the concurrency the origin sees
    maxActive: 0, // requests being served (never above config.concurrency)
    byRoute: new Map(), // arrivals by the route prefix they matched (DEFAULT_ROUTE: none)
    byTenant: new Map(),
    byPriority: new Map(),
    deadlineHeader: 0,
    timeoutHeader: 0,
    receivedAfterDeadline: 0, // forwarded too late: the guard should never do this
    receivedLateMaxMs: 0, // ... and by how much, at worst
    startedAfterDeadline: 0, // waited in the origin's own queue past the deadline
    finishedAfterDeadline: 0, // wasted work: the answer came too late to be of use
    clientGone: 0,
    rejectedQueueFull: 0,
    serviceMsTotal: 0,
    /** Slots freed with nothing queued and taken again within HANDOFF_WINDOW_MS, and their idle ms. */
    handoffs: 0,
    handoffMsTotal: 0,
    // The guard's x-guard-origin-limit against what the origin held at each arrival (this one
    // included): a violation is an arrival that found the origin holding more than that limit.
    limit: {
      checked: 0,
      missing: 0, // arrivals without the header (the guard's origin stage off, or a bug)
      malformed: 0,
      violations: 0,
      maxExcess: 0, // the most requests held above the limit at one arrival
      maxHolding: 0, // the most held at an arrival that carried the header
      minSeen: 0,
      maxSeen: 0,
    },
    // Failure mode (failForMs/failUntilMs): arrivals answered 503/429, from the first such answer.
    fail: {
      firstAt: null, // epoch ms of the first failure answer since the reset
      lastAt: null,
      received: 0,
      receivedInHold: 0, // arrived while an earlier answer's Retry-After still held (after a grace)
      /** @type {number[]} arrivals per second since firstAt (sparse until snapshot) */
      bySecond: [],
    },
  };
}

function one(v) {
  return Array.isArray(v) ? v[0] : v;
}

/** @param {Record<string,string>} [headers] */
function send(job, status, body, headers) {
  const { res } = job;
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

export async function main(argv = process.argv.slice(2), defaults = {}) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: String(defaults.port ?? 8788) },
      concurrency: { type: "string", default: "4" },
      "service-ms": { type: "string", default: "100" },
      jitter: { type: "string", default: "0.3" },
      "max-queue": { type: "string", default: "5000" },
      "capacity-header": { type: "string" },
      route: { type: "string", multiple: true }, // PREFIX=MS, repeatable
    },
  });
  const origin = createOrigin({
    concurrency: Number(values.concurrency),
    serviceMs: Number(values["service-ms"]),
    jitter: Number(values.jitter),
    maxQueue: Number(values["max-queue"]),
    capacityHeader: values["capacity-header"] ?? null,
    routes: values.route ? routesFromFlags(values.route) : null,
  });
  const port = await origin.listen(Number(values.port));
  const c = origin.config;
  // run.mjs parses this line to learn the port; keep its shape.
  console.log(
    `origin listening on http://127.0.0.1:${port} (concurrency ${c.concurrency}, service ${c.serviceMs} ms ±${Math.round(c.jitter * 100)}%` +
      `${c.routes ? `, routes ${JSON.stringify(c.routes)}` : ""})`,
  );
  const stop = () => origin.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  if (process.connected) process.on("disconnect", stop);
  return origin;
}

/** `--route /v1/slow=300` flags as a routes map; createOrigin validates it like any config. */
function routesFromFlags(flags) {
  const routes = {};
  for (const flag of flags) {
    // Number("") is 0, a valid service time: a missing or blank value must not pass as one.
    const m = /^(.*)=(\d+(?:\.\d+)?)$/.exec(flag);
    routes[m ? m[1] : flag] = m ? Number(m[2]) : NaN;
  }
  return routes;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
