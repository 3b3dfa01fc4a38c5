import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantLeaseSnapshot } from "../../src/proxy/tenant-stage";
import { type FakeOrigin, installFakeOrigin } from "./fake-origin";
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS } from "./fuzz-runs";
import { createTenant, expectReconciled, guardFetch, statsReturned, uniqueTenant } from "./support";

/**
 * A bounded hunt of hostile requests through the real Worker (issue 13): random paths (escapes,
 * dot segments, separators, unicode, the admin prefix in disguise), keys (the real one, garbage,
 * 8 KB), budgets, priorities, forged identity headers, client addresses and methods, sent in
 * concurrent batches against a tenant with small limits and route rules. After every batch:
 * nothing answered 500 or 502, every refusal is problem+json with a reason, nothing reached the
 * origin with a client's identity headers, and no slot is left in use once the batch has been
 * read. After the hunt: the tenant's counters reconcile and nothing is out.
 */
const BATCHES = Math.max(20, Math.round(FUZZ_RUNS / 20));

let origin: FakeOrigin;
let tenant: string;
let key: string;

beforeAll(async () => {
  origin = installFakeOrigin((request) => new Response(`ok ${new URL(request.url).pathname}`));
  tenant = uniqueTenant("hunt");
  key = await createTenant(tenant, {
    rate: 200,
    burst: 40,
    maxInFlight: 2,
    maxQueue: 4,
    maxWaitMs: 200,
    routes: [
      { method: "*", path: "/v1/reports/*", priority: "low", fullBehaviour: "shed-newest" },
      { method: "POST", path: "/v1/pay", priority: "critical", timeoutMs: 3000 },
    ],
  });
});

afterAll(() => origin.restore());

const segment = fc.oneof(
  fc.constantFrom("v1", "reports", "pay", "x", "..", ".", "", "%2e%2e", "%2F", "%5c", "%00", "%zz", "%72eports"),
  fc.constantFrom("__guard", "__GUARD", "%5F%5Fguard", "%255F%255Fguard", "__guard;x", "__guard.", "__origin"),
  fc.string({ unit: "grapheme", maxLength: 12 }).map((s) => encodeURIComponent(s)),
);
const path = fc.array(segment, { minLength: 1, maxLength: 5 }).map((segments) => `/${segments.join("/")}`);

const keyHeader = fc.oneof(
  fc.constant("REAL"),
  fc.constant(""),
  fc.string({ maxLength: 40 }),
  fc.constant("k".repeat(8 * 1024)),
  fc.stringMatching(/^[A-Za-z0-9._~+/=-]{16,64}$/),
);
const budget = fc.oneof(
  fc.constantFrom("1", "10", "50", "0", "-1", "1e9", "NaN", "999999999999", " 100 ", "0x10"),
  fc.integer({ min: 1, max: 5000 }).map(String),
);
const priority = fc.constantFrom("low", "normal", "high", "critical", "CRITICAL", "urgent", "", "critical, low");
const forged = fc.constantFrom(
  "x-guard-tenant",
  "x-guard-priority",
  "x-forwarded-for",
  "x-real-ip",
  "true-client-ip",
  "forwarded",
  "x-request-deadline",
);
const clientIp = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom("", "garbage", "::", "999.1.1.1"));

const hostileRequest = fc.record({
  path,
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"),
  key: fc.option(keyHeader, { nil: undefined }),
  budget: fc.option(budget, { nil: undefined }),
  priority: fc.option(priority, { nil: undefined }),
  forged: fc.array(forged, { maxLength: 4 }),
  ip: clientIp,
});

type HostileRequest = typeof hostileRequest extends fc.Arbitrary<infer T> ? T : never;

function toRequest(r: HostileRequest): [string, RequestInit] {
  const headers: Record<string, string> = { "cf-connecting-ip": r.ip };
  if (r.key !== undefined) headers["x-api-key"] = r.key === "REAL" ? key : r.key;
  if (r.budget !== undefined) headers["x-request-timeout-ms"] = r.budget;
  if (r.priority !== undefined) headers["x-priority"] = r.priority;
  for (const name of r.forged) headers[name] = "forged-by-client";
  return [r.path, { method: r.method, headers }];
}

const FORGEABLE = ["x-guard-tenant", "x-guard-priority", "x-forwarded-for", "x-real-ip", "true-client-ip", "forwarded"];

async function sendOne(r: HostileRequest): Promise<void> {
  const [target, init] = toRequest(r);
  const response = await guardFetch(target, init);
  const body = r.method === "HEAD" ? "" : await response.text();
  expect(response.status, `${r.method} ${target}`).not.toBe(500);
  expect(response.status, `${r.method} ${target}`).not.toBe(502);
  if (response.status >= 400 && r.method !== "HEAD") {
    expect(response.headers.get("content-type"), `${response.status} ${target}`).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(body) as { status?: number; detail?: string };
    expect(problem.status).toBe(response.status);
  }
  if (response.status === 429 || (response.status === 503 && r.method !== "HEAD")) {
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  }
}

describe("hostile requests in bulk change nothing they should not", () => {
  it(
    "never answers 500 or 502, refuses with problem+json, forwards no client identity, and leaves no slot in use",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(hostileRequest, { minLength: 1, maxLength: 8 }), async (batch) => {
          const seenBefore = origin.requests.length;
          await Promise.all(batch.map(sendOne));
          for (const forwarded of origin.requests.slice(seenBefore)) {
            for (const name of FORGEABLE) expect(forwarded.headers.get(name), name).not.toBe("forged-by-client");
            expect(new URL(forwarded.url).pathname).not.toMatch(/%2f|%5c|\/\/|\/\.\.?(\/|$)|^\/__guard/i);
          }
          // Every body was read: every slot of this isolate's lease is back (none lingers: the
          // fake origin answers at once, well within every budget that was forwarded).
          const lease = tenantLeaseSnapshot(`tenant:${tenant}`);
          if (lease) expect(Object.values(lease.inUse).reduce((a, b) => a + b, 0)).toBe(0);
        }),
        { numRuns: BATCHES },
      );
      const s = await statsReturned(tenant);
      expectReconciled(s);
      expect(s.state.inFlight).toBe(0);
      expect(s.state.leases.slots).toBe(0);
    },
    FUZZ_TIMEOUT_MS,
  );
});
