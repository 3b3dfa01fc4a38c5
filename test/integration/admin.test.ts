import { afterEach, describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { createApp } from "../../src/app";
import { type FakeOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import {
  ADMIN_TOKEN,
  LIMITS,
  admin,
  createTenant,
  guardFetch,
  proxied,
  statsReturned,
  statsWhen,
  uniqueTenant,
} from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => {
  origin?.restore();
  origin = undefined;
});

/** Every admin route, for the shared security suite. */
const ROUTES: Array<[string, string, unknown?]> = [
  ["GET", "/tenants"],
  ["PUT", "/tenants/sec", LIMITS],
  ["GET", "/tenants/sec"],
  ["DELETE", "/tenants/sec"],
  ["GET", "/tenants/sec/keys"],
  ["POST", "/tenants/sec/keys", {}],
  ["POST", "/tenants/sec/keys/import", { keys: [{ key: "sec-key-0123456789abcdef" }] }],
  ["DELETE", "/tenants/sec/keys/key_x"],
  ["GET", "/overview"],
  ["GET", "/metrics"],
  ["GET", "/nope"],
];

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  return (await response.json()) as { detail: string; errors?: Array<{ field: string; message: string }> };
}

describe("admin security", () => {
  describe.each(ROUTES)("%s %s", (method, path, body) => {
    const init = (authorization?: string): RequestInit => ({
      method,
      headers: { ...(authorization ? { authorization } : {}), "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

    it("refuses a request without a token", async () => {
      await expectProblem(await guardFetch(`/__guard${path}`, init()), 401);
    });

    it("refuses a wrong token, and one that only shares a prefix", async () => {
      await expectProblem(await guardFetch(`/__guard${path}`, init("Bearer wrong-token-0123456789")), 401);
      await expectProblem(await guardFetch(`/__guard${path}`, init(`Bearer ${ADMIN_TOKEN}x`)), 401);
      await expectProblem(await guardFetch(`/__guard${path}`, init(`Basic ${btoa(`admin:${ADMIN_TOKEN}`)}`)), 401);
    });

    it("is disabled, not open, when no ADMIN_TOKEN is configured", async () => {
      const app = createApp();
      const request = new Request(`http://guard.test/__guard${path}`, init(`Bearer ${ADMIN_TOKEN}`));
      const response = await app.fetch(request, { ...env, ADMIN_TOKEN: undefined }, {
        waitUntil() {},
        passThroughOnException() {},
        props: {},
      } as unknown as ExecutionContext);
      const problem = await expectProblem(response, 401);
      expect(problem.detail).toContain("disabled");
    });
  });

  it.each(["/__GUARD/tenants", "/%5F%5Fguard/tenants", "//__guard/tenants", "/__guard/../__guard/tenants"])(
    "never forwards %s to the origin",
    async (path) => {
      const response = await guardFetch(path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect([200, 401, 404]).toContain(response.status);
      expect(response.headers.get("x-guard-tenant")).toBeNull();
      expect(response.headers.get("ratelimit")).toBeNull();
    },
  );
});

describe("tenant limits", () => {
  it("stores valid limits and returns them with defaults and warnings", async () => {
    const tenant = uniqueTenant("put");
    const response = await admin("PUT", `/tenants/${tenant}`, { ...LIMITS, maxQueue: 500, rate: 10, maxWaitMs: 1000 });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { limits: Record<string, unknown>; warnings: string[] };
    expect(body.limits).toMatchObject({ rate: 10, maxQueue: 500, maxClientPriority: "normal", routes: [] });
    expect(body.warnings[0]).toContain("maxQueue 500");
    const listed = (await (await admin("GET", "/tenants?limit=1000")).json()) as { tenants: string[] };
    expect(listed.tenants).toContain(tenant);
  });

  it("rejects bad input naming each field, and keeps the previous limits in force", async () => {
    const tenant = uniqueTenant("bad");
    await admin("PUT", `/tenants/${tenant}`, LIMITS);
    const problem = await expectProblem(
      await admin("PUT", `/tenants/${tenant}`, { ...LIMITS, rate: -1, maxQueue: "lots", extra: 1 }),
      400,
    );
    expect(problem.errors?.map((e) => e.field).sort()).toEqual(["extra", "maxQueue", "rate"]);
    expect(problem.detail).toContain("rate");
    expect(problem.detail).toContain("(got -1)");
    const stored = (await (await admin("GET", `/tenants/${tenant}`)).json()) as { limits: typeof LIMITS };
    expect(stored.limits).toMatchObject(LIMITS);
  });

  it.each([
    ["not JSON", "{rate:", "application/json", 400],
    ["an empty body", "", "application/json", 400],
    ["the wrong media type", JSON.stringify(LIMITS), "text/plain", 415],
    ["an array", "[]", "application/json", 400],
    ["a body over 64 KiB", JSON.stringify({ ...LIMITS, pad: "x".repeat(70_000) }), "application/json", 413],
  ])("answers %s with a problem", async (_label, body, type, status) => {
    const tenant = uniqueTenant("body");
    await expectProblem(await admin("PUT", `/tenants/${tenant}`, body, { "content-type": type }), status);
    await expectProblem(await admin("GET", `/tenants/${tenant}`), 404);
  });

  it.each(["UPPER", "a b", "..", "x".repeat(64), "%2e%2e", "tenant/evil"])(
    "rejects the tenant name %j",
    async (name) => {
      const response = await admin("PUT", `/tenants/${encodeURIComponent(name)}`, LIMITS);
      expect([400, 404]).toContain(response.status);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
    },
  );

  it("answers 404 for an unknown tenant and deletes a known one", async () => {
    const tenant = uniqueTenant("del");
    await expectProblem(await admin("GET", `/tenants/${tenant}`), 404);
    await expectProblem(await admin("DELETE", `/tenants/${tenant}`), 404);
    await admin("PUT", `/tenants/${tenant}`, LIMITS);
    expect((await admin("DELETE", `/tenants/${tenant}`)).status).toBe(204);
    await expectProblem(await admin("GET", `/tenants/${tenant}`), 404);
  });
});

describe("keys", () => {
  it("generates a key shown once and stores only its hash", async () => {
    const tenant = uniqueTenant("keys");
    await admin("PUT", `/tenants/${tenant}`, LIMITS);
    const created = await admin("POST", `/tenants/${tenant}/keys`);
    expect(created.status).toBe(201);
    const { id, key } = (await created.json()) as { id: string; key: string };
    expect(key).toMatch(/^gk_[A-Za-z0-9_-]{40,}$/);
    const listed = await (await admin("GET", `/tenants/${tenant}/keys`)).text();
    expect(listed).toContain(id);
    expect(listed).not.toContain(key);
  });

  it("registers an existing key, refuses it twice, and refuses keys for unknown tenants", async () => {
    const tenant = uniqueTenant("reg");
    const key = `existing-key-${tenant}`;
    await expectProblem(await admin("POST", `/tenants/${tenant}/keys`, { key }), 404);
    await admin("PUT", `/tenants/${tenant}`, LIMITS);
    expect((await admin("POST", `/tenants/${tenant}/keys`, { key })).status).toBe(201);
    await expectProblem(await admin("POST", `/tenants/${tenant}/keys`, { key }), 409);
    const bad = await expectProblem(await admin("POST", `/tenants/${tenant}/keys`, { key: "short" }), 400);
    expect(bad.errors?.[0]?.field).toBe("key");
  });
});

describe("operations endpoints", () => {
  it("serves the dashboard page and script without the token, holding no data and locked down by CSP", async () => {
    const page = await guardFetch("/__guard/dashboard");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script src="/__guard/dashboard.js"></script>');
    expect(html).not.toMatch(/https?:\/\//);
    const script = await guardFetch("/__guard/dashboard.js");
    expect(script.headers.get("content-type")).toContain("text/javascript");
    expect(await script.text()).toContain("/__guard/overview");
  });

  it("reports every tenant's live state in the overview and as Prometheus metrics", async () => {
    const tenant = uniqueTenant("ops");
    await admin("PUT", `/tenants/${tenant}`, { ...LIMITS, maxQueue: 7 });
    const data = (await (await admin("GET", "/overview")).json()) as {
      tenants: Array<{ tenant: string; limits: { maxQueue: number } }>;
    };
    expect(data.tenants.find((t) => t.tenant === tenant)?.limits.maxQueue).toBe(7);
    const metrics = await admin("GET", "/metrics");
    expect(metrics.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    expect(await metrics.text()).toContain(`guard_limit_queue{tenant="${tenant}"} 7`);
  });

  it("shows the isolates' leases in a tenant's stats and metrics, as they last reported", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("leasestats");
    const key = await createTenant(tenant, { maxInFlight: 3 });
    const running = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    const view = (await (await admin("GET", `/tenants/${tenant}`)).json()) as {
      state: { inFlight: number; leases: { holders: number; slots: number } };
      counters: { admitted: number; calls: { lease: number } };
    };
    // This isolate, alone, holds the whole limit: one slot in use, two free for its next waiters.
    expect(view.state).toMatchObject({ inFlight: 1, leases: { holders: 1, slots: 3 } });
    expect(view.counters.admitted).toBe(1);
    expect(view.counters.calls.lease).toBeGreaterThanOrEqual(1);
    const metrics = await (await admin("GET", "/metrics")).text();
    expect(metrics).toContain(`guard_lease_holders{tenant="${tenant}"} 1`);
    expect(metrics).toContain(`guard_leased_slots{tenant="${tenant}"} 3`);
    expect(metrics).toMatch(new RegExp(`guard_object_calls_total\\{tenant="${tenant}",call="lease"\\} [1-9]`));
    held.releaseNext();
    await (await running).text();
    // Given back once idle: nothing is out at any isolate.
    expect((await statsReturned(tenant)).state.leases).toEqual({ holders: 0, slots: 0, tokens: 0 });
  });
});
