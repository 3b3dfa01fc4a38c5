/**
 * Clients cannot steer the guard: one test per item of the adversarial review (issue 13), each
 * tried as an attacker would, through the real Worker. The origin-stage items live beside the
 * stage's other tests, which set the stage up: origin-stage.test.ts has items 2 (a client's
 * short budgets), 3 (anonymous traffic as one party), 4 (a 503 held where it was said) and 5 (a
 * client that left while queued); item 7 is in origin-fair-share.test.ts and the tenant tests,
 * item 13 in lab-origin-control.test.ts; the bulk hunt is fuzz-proxy.test.ts.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { ANONYMOUS_AGGREGATE_OBJECT } from "../../src/proxy/identity";
import { tenantLeaseSnapshot } from "../../src/proxy/tenant-stage";
import type { Env } from "../../src/env";
import { type FakeOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import { hashKey } from "../../src/tenant/tenant-directory";
import { ADMIN_TOKEN, admin, createTenant, guardFetch, proxied, tenantStub, uniqueTenant } from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => origin?.restore());

/** The Worker on `env` with `overrides`, for settings a test breaks on purpose. */
async function fetchWith(overrides: Partial<Record<keyof Env, unknown>>, path: string, init: RequestInit = {}) {
  const app = createApp({ sink: () => ({ record: () => {} }), random: () => 0 });
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(`http://guard.test${path}`, init), { ...env, ...overrides } as Env, ctx);
  // Not waiting for its waitUntil work: a lease's renewals run on there until it goes idle.
  const body = await response.text();
  return { response, body };
}

/** env.TENANTS counting its reads of key records (`key:` names). */
function countingKeyReads(kv: KVNamespace) {
  const counter = { reads: 0 };
  const wrapped = new Proxy(kv, {
    get(target, prop, receiver) {
      if (prop !== "get") return Reflect.get(target, prop, receiver);
      return (name: string, options?: unknown) => {
        if (name.startsWith("key:")) counter.reads += 1;
        return target.get(name, options as KVNamespaceGetOptions<"json">);
      };
    },
  });
  return { kv: wrapped, counter };
}

describe("unknown keys are cheap and bounded (item 1)", () => {
  it("answers a flood of fresh 8 KB keys as anonymous without a single key lookup", async () => {
    origin = installFakeOrigin();
    const { kv, counter } = countingKeyReads(env.TENANTS);
    for (let i = 0; i < 40; i++) {
      const key = `${i}`.padStart(8 * 1024, "k");
      const { response } = await fetchWith({ TENANTS: kv }, "/x", {
        // A short budget: past the anonymous burst, refused at once instead of waiting for tokens.
        headers: { "x-api-key": key, "cf-connecting-ip": "198.51.100.40", "x-request-timeout-ms": "50" },
      });
      // Any answer the guard gives a 50 ms budget: served, shed, or a deadline answer (504).
      expect([200, 429, 503, 504]).toContain(response.status);
    }
    expect(counter.reads).toBe(0);
  });

  it("costs a few key lookups per client, not one per request, for fresh well-formed keys", async () => {
    origin = installFakeOrigin();
    const { kv, counter } = countingKeyReads(env.TENANTS);
    for (let i = 0; i < 120; i++) {
      await fetchWith({ TENANTS: kv }, "/x", {
        headers: {
          "x-api-key": `spray-${crypto.randomUUID()}`,
          "cf-connecting-ip": "198.51.100.41",
          "x-request-timeout-ms": "50",
        },
      });
    }
    expect(counter.reads).toBeGreaterThan(0);
    expect(counter.reads).toBeLessThanOrEqual(60);
  });
});

describe("identity headers are the guard's (item 9)", () => {
  const CLIENT_ADDRESS_HEADERS = [
    "true-client-ip",
    "x-client-ip",
    "client-ip",
    "x-cluster-client-ip",
    "fastly-client-ip",
    "x-original-forwarded-for",
    "x-real-ip",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-guard-tenant",
    "x-guard-anything",
  ];

  it("never lets a client-sent address, forwarding or x-guard-* header reach the origin", async () => {
    origin = installFakeOrigin();
    const key = await createTenant(uniqueTenant("identity"));
    const headers = Object.fromEntries(CLIENT_ADDRESS_HEADERS.map((name) => [name, "10.6.6.6"]));
    await (await proxied(key, "/x", { headers: { ...headers, "cf-connecting-ip": "203.0.113.9" } })).text();
    const seen = origin.requests[0]!.headers;
    for (const name of CLIENT_ADDRESS_HEADERS) expect(seen.get(name), name).not.toBe("10.6.6.6");
    // The guard's own assertions are there, with its values.
    expect(seen.get("x-forwarded-for")).toBe("203.0.113.9");
    expect(seen.get("x-forwarded-host")).toBe("guard.test");
  });

  it("never passes the origin's x-guard-* response headers on to the client", async () => {
    origin = installFakeOrigin(
      () => new Response("ok", { headers: { "x-guard-tenant": "admin", "x-guard-degraded": "no", "x-app": "kept" } }),
    );
    const key = await createTenant(uniqueTenant("respheaders"));
    const response = await proxied(key, "/x");
    await response.text();
    expect(response.headers.get("x-guard-tenant")).toBeNull();
    expect(response.headers.get("x-guard-degraded")).toBeNull();
    expect(response.headers.get("x-app")).toBe("kept");
  });
});

describe("a bad admin setting disables the admin API only (item 11)", () => {
  for (const [label, token] of [
    ["too short", "short"],
    ["with characters outside the allowed set", "a token with spaces and ; semicolons"],
  ] as const) {
    it(`keeps proxying with an ADMIN_TOKEN ${label}, and never shows the setting to a client`, async () => {
      origin = installFakeOrigin(() => new Response("from origin"));
      const key = await createTenant(uniqueTenant("badadmin"));
      const proxiedAnswer = await fetchWith({ ADMIN_TOKEN: token }, "/x", { headers: { "x-api-key": key } });
      expect(proxiedAnswer.response.status).toBe(200);
      expect(proxiedAnswer.body).toBe("from origin");

      const adminAnswer = await fetchWith({ ADMIN_TOKEN: token }, "/__guard/tenants", {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(adminAnswer.response.status).toBe(503);
      expect(adminAnswer.response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(adminAnswer.body).toContain("ADMIN_TOKEN");
      expect(adminAnswer.body).not.toContain(token);
    });
  }

  it("answers a client with no setting's value when the proxy itself is misconfigured", async () => {
    const secretish = "http://internal-origin.corp:8443/private";
    const { response, body } = await fetchWith({ ORIGIN_URL: `not a url ${secretish}` }, "/x");
    expect(response.status).toBe(500);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(body).not.toContain("internal-origin");
    expect(body).toContain("misconfigured");
  });

  it("still serves the admin API with a good token", async () => {
    const { response } = await fetchWith({ ADMIN_TOKEN }, "/__guard/tenants", {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
  });
});

describe("route rules cannot be evaded by spelling (item 6)", () => {
  it.each(["/v1/%72eports/x", "//v1/reports/x", "/v1/./reports/x", "/v1/x/../reports/x", "/v1/%2e/reports/x"])(
    "classifies %s by the /v1/reports/* rule and forwards the path it classified",
    async (path) => {
      origin = installFakeOrigin();
      const key = await createTenant(uniqueTenant("spelling"), {
        routes: [{ method: "*", path: "/v1/reports/*", priority: "low" }],
      });
      await (await proxied(key, path)).text();
      const seen = origin.requests[0]!;
      expect(seen.headers.get("x-guard-priority")).toBe("low");
      expect(new URL(seen.url).pathname).toBe("/v1/reports/x");
    },
  );

  it.each(["/v1%2Freports/x", "/v1/reports%2fx", "/v1%5Creports/x", "/v1/%00/x"])(
    "refuses %s with 400 problem+json and forwards nothing",
    async (path) => {
      origin = installFakeOrigin();
      const key = await createTenant(uniqueTenant("encoded"));
      const response = await proxied(key, path);
      expect(response.status).toBe(400);
      expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(await response.json()).toMatchObject({ reason: "bad_path", errors: [{ field: "path" }] });
      expect(origin.requests).toHaveLength(0);
    },
  );
});

describe("the admin prefix in any other spelling is refused, never forwarded (item 12)", () => {
  it.each([
    "/__guard;x/tenants",
    "/__guard./tenants",
    "/x/..%2F__guard/tenants",
    "/%255F%255Fguard/tenants",
    "/__GUARD%20/x",
  ])("refuses %s", async (path) => {
    origin = installFakeOrigin();
    const { response } = await fetchWith({}, path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(response.status).toBe(400);
    expect(origin.requests).toHaveLength(0);
  });

  it("serves /%5F%5Fguard/... as the admin API", async () => {
    const { response } = await fetchWith({}, "/%5F%5Fguard/tenants", {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
  });
});

describe("a KV failure takes the configured fail mode, never a bare 500 (item 8)", () => {
  const brokenKv = new Proxy(env.TENANTS, {
    get(target, prop, receiver) {
      if (prop === "get") return async () => Promise.reject(new Error("KV is down"));
      return Reflect.get(target, prop, receiver);
    },
  });

  it("sheds 503 guard_unavailable with every signal when failing closed, forwarding nothing", async () => {
    origin = installFakeOrigin();
    const key = await createTenant(uniqueTenant("kvdown"));
    const { response, body } = await fetchWith({ TENANTS: brokenKv, FAIL_MODE: "closed" }, "/x", {
      headers: { "x-api-key": key },
    });
    expect(response.status).toBe(503);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(response.headers.get("ratelimit-policy")).not.toBeNull();
    expect(JSON.parse(body)).toMatchObject({ reason: "guard_unavailable" });
    expect(origin.requests).toHaveLength(0);
  });

  it("forwards on the isolate's fail-open limiter, marked degraded, when failing open", async () => {
    origin = installFakeOrigin(() => new Response("from origin"));
    const key = await createTenant(uniqueTenant("kvdownopen"));
    const { response, body } = await fetchWith({ TENANTS: brokenKv, FAIL_MODE: "open" }, "/x", {
      headers: { "x-api-key": key },
    });
    expect(response.status).toBe(200);
    expect(body).toBe("from origin");
    expect(response.headers.get("x-guard-degraded")).toBe("fail-open");
    expect(origin.requests).toHaveLength(1);
  });
});

describe("a key belongs to one tenant (item 10)", () => {
  it("registers one key for two tenants at once exactly once", async () => {
    const a = uniqueTenant("racea");
    const b = uniqueTenant("raceb");
    await createTenant(a);
    await createTenant(b);
    const key = `race-${crypto.randomUUID()}`;
    const answers = await Promise.all([
      admin("POST", `/tenants/${a}/keys`, { key }),
      admin("POST", `/tenants/${b}/keys`, { key }),
    ]);
    for (const answer of answers) await answer.text();
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 409]);
  });

  it("never revokes another tenant's key when a tenant deletes a record of the same key", async () => {
    origin = installFakeOrigin();
    const owner = uniqueTenant("owner");
    const other = uniqueTenant("other");
    const key = await createTenant(owner);
    await createTenant(other);
    // What a registration race left behind before the registry: the other tenant holds a record
    // of the same key.
    const hash = await hashKey(key);
    await tenantStub(other).addKey({ id: "key_leftover", hash, createdAt: Date.now(), hint: "key-…" });
    const deleted = await admin("DELETE", `/tenants/${other}/keys/key_leftover`);
    expect(deleted.status).toBe(204);
    await (await proxied(key, "/x")).text();
    expect(origin.requests.at(-1)?.headers.get("x-guard-tenant")).toBe(owner);
  });
});

describe("anonymous traffic has an aggregate bound (item 3)", () => {
  afterEach(async () => {
    await (await admin("DELETE", "/tenants/anonymous")).text();
  });

  it("holds a spray from many addresses to the aggregate bound, shedding the rest anonymous_saturated", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const put = await admin("PUT", "/tenants/anonymous", {
      rate: 100,
      burst: 100,
      maxInFlight: 4,
      maxQueue: 4,
      maxWaitMs: 1000,
      aggregate: { rate: 100, burst: 100, maxInFlight: 2, maxQueue: 0, maxWaitMs: 0 },
    });
    expect(put.status).toBe(200);
    // A lease of the shared bound that this isolate took under the earlier limits gives what it
    // holds back only once idle: start from none.
    for (let turn = 0; turn < 600 && !(tenantLeaseSnapshot(ANONYMOUS_AGGREGATE_OBJECT)?.left ?? true); turn += 1) {
      await scheduler.wait(5);
    }
    const sprayed = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"].map((ip) =>
      guardFetch("/x", { headers: { "cf-connecting-ip": ip } }),
    );
    for (let turn = 0; turn < 400 && held.waiting < 2; turn += 1) await scheduler.wait(5);
    expect(held.waiting).toBe(2);
    // Each address is far within its own bucket; together they are at the shared bound.
    // The held two never settle before they are released: the first answer is a refusal.
    const answer = await Promise.race(sprayed);
    expect(answer.status).toBe(503);
    expect(answer.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await answer.json()).toMatchObject({ reason: "anonymous_saturated" });
    expect(Number(answer.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    held.releaseNext();
    held.releaseNext();
    const statuses = await Promise.all(sprayed.map(async (r) => (await r).status));
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    expect(held.waiting).toBe(0);
  }, 15_000);

  it("refuses an aggregate bound on any tenant but anonymous, naming the field, and stores nothing", async () => {
    const tenant = uniqueTenant("noaggregate");
    const put = await admin("PUT", `/tenants/${tenant}`, {
      rate: 10,
      burst: 10,
      maxInFlight: 2,
      maxQueue: 2,
      maxWaitMs: 100,
      aggregate: { rate: 1, burst: 1, maxInFlight: 1, maxQueue: 0, maxWaitMs: 0 },
    });
    expect(put.status).toBe(400);
    expect(JSON.stringify(await put.json())).toContain('"field":"aggregate"');
    expect((await admin("GET", `/tenants/${tenant}`)).status).toBe(404);
  });
});
