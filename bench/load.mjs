// Open-loop load generator.
//
// Arrivals follow a Poisson schedule at a fixed rate per stream, whatever the responses do: a slow
// server does not slow the arrivals down (closed-loop generators do, and hide overload). The one
// bound is on outstanding requests: an arrival past it is counted as "dropped by generator" and not
// sent, so a collapsing target cannot make the generator itself grow without limit.
//
// Results go into preallocated typed arrays sized from the expected arrival count (with a hard cap),
// so memory per phase is bounded; arrivals past the cap are still sent but only counted.
// With a `seed`, each stream draws its gaps and budgets from its own seeded generator, so two phases
// with the same seed and streams offer the same arrival schedule (the configuration matrix runs the
// guard and HAProxy on one schedule); without one, Math.random as before.
import http from "node:http";
import { performance } from "node:perf_hooks";

export const SIGNAL = {
  retryAfter: 1, // Retry-After: integer seconds >= 1
  rateLimit: 2, // RateLimit header present
  rateLimitPolicy: 4, // RateLimit-Policy header present
  problemJson: 8, // content-type application/problem+json
  bodyReason: 16, // JSON body with a string `reason`
};
export const ALL_SIGNALS = 31;

const RECORD_CAP = 400_000; // ~10 MB of typed arrays at most per phase
const REASON_CAP = 32; // distinct reason strings kept per phase; more become "(other)"
const ERROR_BODY_CAP = 8 * 1024; // bytes of an error body read for its `reason`
const TICK_MAX_MS = 20; // the scheduler never sleeps longer, so a late timer costs at most this
const MAX_ARRIVALS_PER_TICK = 2000; // bounds one tick's work if the event loop stalled

/**
 * @typedef {object} Stream
 * @property {string} name          label in the report
 * @property {number} rate          arrivals per second
 * @property {string} [path]        request path (default "/api/item")
 * @property {Record<string,string>} [headers]  static headers (x-api-key, x-priority, ...)
 * @property {number|[number,number]} [budgetMs] x-request-timeout-ms sent; a range draws uniformly
 * @property {string} [tenant]      label only
 * @property {string} [priority]    label only
 * @property {number} [burst]       requests sent all at once at the start, on top of `rate`
 */

/**
 * @param {{ baseUrl: string, streams: Stream[], durationMs: number, maxOutstanding?: number,
 *   drainMs?: number, defaultBudgetMs?: number, seed?: number, onTick?: (elapsedMs:number)=>void }} opts
 */
export async function runLoad(opts) {
  const { baseUrl, streams, durationMs } = opts;
  const maxOutstanding = opts.maxOutstanding ?? 1000;
  const drainMs = opts.drainMs ?? 3000;
  const defaultBudgetMs = opts.defaultBudgetMs ?? 10_000;
  const url = new URL(baseUrl);
  const random = streams.map((_, si) => (opts.seed === undefined ? Math.random : seededRandom(opts.seed, si)));
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxOutstanding, maxFreeSockets: maxOutstanding });

  const expected = streams.reduce((n, s) => n + (s.rate * durationMs) / 1000 + (s.burst ?? 0), 0);
  const cap = Math.min(RECORD_CAP, Math.ceil(expected * 1.3 + 6 * Math.sqrt(expected) + 100));
  const rec = {
    count: 0,
    tSend: new Float64Array(cap), // ms since phase start
    latency: new Float64Array(cap), // ms, from send to end of body
    status: new Uint16Array(cap), // 0 = no HTTP answer (see reason)
    stream: new Uint8Array(cap),
    signals: new Uint8Array(cap), // SIGNAL bits, for responses >= 400
    reason: new Uint8Array(cap), // index into reasons; 0 = none
    budget: new Uint32Array(cap), // ms sent in x-request-timeout-ms; 0 = none
  };
  const reasons = ["(none)"];
  const perStream = streams.map((s) => ({
    name: s.name,
    tenant: s.tenant,
    priority: s.priority,
    rate: s.rate,
    sent: 0,
    dropped: 0,
    unrecorded: 0,
  }));
  const inflight = new Set(); // live ClientRequests, so the phase end can abort stragglers
  let outstanding = 0;
  let cutting = false; // set at the phase end: errors from then on are our own aborts

  function reasonIndex(r) {
    if (r === undefined) return 0;
    let i = reasons.indexOf(r);
    if (i >= 0) return i;
    if (reasons.length >= REASON_CAP) r = "(other)";
    i = reasons.indexOf(r);
    if (i >= 0) return i;
    reasons.push(r);
    return reasons.length - 1;
  }

  const t0 = performance.now();

  function send(si) {
    const s = streams[si];
    const budget = Array.isArray(s.budgetMs)
      ? Math.round(s.budgetMs[0] + random[si]() * (s.budgetMs[1] - s.budgetMs[0]))
      : s.budgetMs;
    const headers = { ...s.headers };
    if (budget !== undefined) headers["x-request-timeout-ms"] = String(budget);
    const start = performance.now();
    perStream[si].sent++;
    outstanding++;
    let done = false;

    const finish = (status, signals, reason) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      inflight.delete(req);
      outstanding--;
      const i = rec.count;
      if (i >= cap) {
        perStream[si].unrecorded++;
        return;
      }
      rec.count++;
      rec.tSend[i] = start - t0;
      rec.latency[i] = performance.now() - start;
      rec.status[i] = status;
      rec.stream[i] = si;
      rec.signals[i] = signals;
      rec.reason[i] = reasonIndex(reason);
      rec.budget[i] = budget ?? 0;
    };

    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: s.path ?? "/api/item", method: "GET", headers },
      (res) => {
        const status = res.statusCode ?? 0;
        // "end" comes before "close" on a complete body, so this only records a body cut short.
        res.on("close", () => finish(0, 0, cutting ? "cut_at_phase_end" : "client_error"));
        if (status < 400) {
          res.resume();
          res.on("end", () => finish(status, 0, undefined));
          return;
        }
        let size = 0;
        const chunks = [];
        res.on("data", (c) => {
          size += c.length;
          if (size <= ERROR_BODY_CAP) chunks.push(c);
        });
        res.on("end", () => {
          const { signals, reason } = inspectError(res.headers, Buffer.concat(chunks).toString("utf8"));
          finish(status, signals, reason);
        });
      },
    );
    inflight.add(req);
    // The client gives up a little after its own budget: the guard must have answered by then.
    const timer = setTimeout(
      () => {
        finish(0, 0, "client_timeout");
        req.destroy();
      },
      (budget ?? defaultBudgetMs) + 2000,
    );
    req.on("error", () => finish(0, 0, cutting ? "cut_at_phase_end" : "client_error"));
    req.end();
  }

  // Poisson arrivals: exponential gaps, each stream independent.
  const gap = (rate, si) => (rate > 0 ? (-Math.log(1 - random[si]()) * 1000) / rate : Infinity);
  const next = streams.map((s, si) => gap(s.rate, si));
  streams.forEach((s, si) => {
    for (let n = 0; n < Math.min(s.burst ?? 0, maxOutstanding); n++) send(si);
  });
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now() - t0;
      for (let si = 0; si < streams.length; si++) {
        for (let n = 0; n < MAX_ARRIVALS_PER_TICK && next[si] <= now && next[si] < durationMs; n++) {
          if (outstanding >= maxOutstanding) perStream[si].dropped++;
          else send(si);
          next[si] += gap(streams[si].rate, si);
        }
      }
      opts.onTick?.(now);
      if (now >= durationMs) return resolve();
      const wake = Math.min(durationMs, ...next) - now;
      setTimeout(tick, Math.max(0, Math.min(TICK_MAX_MS, wake)));
    };
    tick();
  });

  // Let answers in flight arrive, for a bounded time, then cut the rest.
  const drainStart = performance.now();
  while (outstanding > 0 && performance.now() - drainStart < drainMs) await sleep(20);
  const cut = inflight.size;
  cutting = true;
  for (const req of inflight) req.destroy();
  await sleep(10); // let the error callbacks record the cut requests
  agent.destroy();

  return { durationMs, streams: perStream, rec, reasons, cut };
}

/** Which shed signals an error response carries, and its problem `reason`. */
export function inspectError(headers, bodyText) {
  let signals = 0;
  const ra = headers["retry-after"];
  if (typeof ra === "string" && /^\d+$/.test(ra.trim()) && Number(ra) >= 1) signals |= SIGNAL.retryAfter;
  if (headers.ratelimit !== undefined) signals |= SIGNAL.rateLimit;
  if (headers["ratelimit-policy"] !== undefined) signals |= SIGNAL.rateLimitPolicy;
  if (/^application\/problem\+json\b/i.test(headers["content-type"] ?? "")) signals |= SIGNAL.problemJson;
  let reason;
  try {
    const body = JSON.parse(bodyText);
    if (body && typeof body.reason === "string") {
      reason = body.reason;
      signals |= SIGNAL.bodyReason;
    }
  } catch {
    // not JSON: the bodyReason bit stays clear
  }
  return { signals, reason };
}

/** mulberry32 over a splitmix32 mix of (seed, stream): uniform in [0, 1), one sequence per stream. */
export function seededRandom(seed, stream = 0) {
  let h = (Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(stream + 1, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  let a = (h ^ (h >>> 16)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
