// Verifies that a request came through the ingress guard (ORIGIN_SIGNING_SECRET; README "Signed
// origin"). Node >= 18, no dependencies. Copy this file into the origin and call
// `verifyGuardRequest` before trusting any x-guard-* or x-request-* header:
//
//   import { SeenRequests, verifyGuardRequest } from "./verify-signature.mjs";
//   const seen = new SeenRequests();
//   http.createServer((req, res) => {
//     const check = verifyGuardRequest({ method: req.method, path: req.url, headers: req.headers },
//       { secrets: [process.env.ORIGIN_SIGNING_SECRET], seen });
//     if (!check.ok) { res.writeHead(401).end(check.reason); return; }
//     ...
//   });
import { createHmac, timingSafeEqual } from "node:crypto";

/** How far a signature's timestamp may be from the origin's clock, either way. */
export const DEFAULT_WINDOW_MS = 60_000;
const SIGNATURE = /^v1=([0-9a-f]{64})$/;
const TIMESTAMP = /^[0-9]{1,16}$/;

/**
 * Request ids seen inside the window, so a captured request cannot be sent again. Bounded: when
 * full, the oldest id is forgotten and every timestamp up to its own is refused from then on
 * (`floor`), so a forgotten id can still never be replayed; ids older than the window go first,
 * since the window refuses them anyway.
 */
export class SeenRequests {
  #ids = new Map();
  #floor = 0;
  constructor(maxEntries = 100_000, windowMs = DEFAULT_WINDOW_MS) {
    this.maxEntries = maxEntries;
    this.windowMs = windowMs;
  }

  /** false when `id` was seen (or may have been); otherwise remembers it. */
  remember(id, timestamp, now) {
    for (const [seenId, seenAt] of this.#ids) {
      if (seenAt >= now - this.windowMs) break;
      this.#ids.delete(seenId);
    }
    if (timestamp <= this.#floor || this.#ids.has(id)) return false;
    if (this.#ids.size >= this.maxEntries) {
      const [oldestId, oldestAt] = this.#ids.entries().next().value;
      this.#ids.delete(oldestId);
      this.#floor = Math.max(this.#floor, oldestAt);
      if (timestamp <= this.#floor) return false;
    }
    this.#ids.set(id, timestamp);
    return true;
  }
}

function header(headers, name) {
  const value = typeof headers.get === "function" ? headers.get(name) : headers[name];
  return typeof value === "string" ? value : null;
}

/** The string the guard signed (src/proxy/origin-signature.ts): one field per line. */
export function canonicalString({ timestamp, requestId, tenant, priority, deadline, method, path }) {
  return ["v1", timestamp, requestId, tenant, priority, deadline, method, path].join("\n");
}

/**
 * `request`: { method, path (path and query as received, e.g. Node's req.url), headers (Node's
 * req.headers or a fetch Headers) }. `options`: { secrets (one or more: during a rotation both),
 * now (ms, default Date.now()), windowMs, seen (a SeenRequests; without it replays are not caught) }.
 * Returns { ok: true, tenant, priority, requestId, deadline } or { ok: false, reason }.
 */
export function verifyGuardRequest(request, options) {
  const { secrets, now = Date.now(), windowMs = DEFAULT_WINDOW_MS, seen } = options;
  const signature = SIGNATURE.exec(header(request.headers, "x-guard-signature") ?? "");
  const timestamp = header(request.headers, "x-guard-timestamp");
  const fields = {
    timestamp,
    requestId: header(request.headers, "x-guard-request-id"),
    tenant: header(request.headers, "x-guard-tenant"),
    priority: header(request.headers, "x-guard-priority"),
    deadline: header(request.headers, "x-request-deadline"),
    method: request.method,
    path: request.path,
  };
  if (!signature || !timestamp || Object.values(fields).some((value) => typeof value !== "string"))
    return { ok: false, reason: "unsigned" };
  if (!TIMESTAMP.test(timestamp)) return { ok: false, reason: "bad_timestamp" };
  const given = Buffer.from(signature[1], "hex");
  const payload = canonicalString(fields);
  const valid = secrets.some((secret) => timingSafeEqual(createHmac("sha256", secret).update(payload).digest(), given));
  if (!valid) return { ok: false, reason: "bad_signature" };
  const at = Number(timestamp);
  if (Math.abs(now - at) > windowMs) return { ok: false, reason: "stale" };
  if (seen && !seen.remember(fields.requestId, at, now)) return { ok: false, reason: "replayed" };
  const { tenant, priority, requestId, deadline } = fields;
  return { ok: true, tenant, priority, requestId, deadline: Number(deadline) };
}
