import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DecisionEvent } from "../../src/analytics";
import { createApp } from "../../src/app";
import { clearOriginVerdicts } from "../../src/edge/origin-verdicts";
import type { Env } from "../../src/env";
import { type FakeOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import { admin, createTenant, guardFetch, proxied, stats, statsWhen, uniqueTenant } from "./support";

/**
 * The origin stage in workerd: one config for the whole origin (this file's storage is its own),
 * so every test sets the stage up itself and turns it off afterwards.
 */
let origin: FakeOrigin | undefined;

/** No reservations: every class may fill the whole limit (tests of the limit itself). */
const ALL_CLASSES_EVERYTHING = { low: 1, normal: 1, high: 1, critical: 1 };

interface OriginView {
  config: Record<string, unknown> | null;
  stats: {
    inFlight: number;
    queued: number;
    limit: { effective: number; capacity: number | null };
    backoffMs: number;
    counters: { arrived: number; admitted: number; released: number; shedByCause: Record<string, number> };
  } | null;
}

async function putOrigin(config: Record<string, unknown>) {
  const response = await admin("PUT", "/origin", config);
  expect(response.status, await response.clone().text()).toBe(200);
}

async function originView(): Promise<OriginView> {
  return (await (await admin("GET", "/origin")).json()) as OriginView;
}

/**
 * For tests that poll the shard's stats (up to 200 turns of 10 ms plus an RPC each): on a loaded
 * machine the turns take longer, and vitest's default 5 s would cut a test that is still passing.
 */
const POLLING = { timeout: 20_000 };

async function originWhen(condition: (view: OriginView) => boolean, turns = 200): Promise<OriginView> {
  let view = await originView();
  for (let turn = 0; turn < turns && !condition(view); turn += 1) {
    await scheduler.wait(10);
    view = await originView();
  }
  return view;
}

beforeEach(() => {
  clearOriginVerdicts();
});

afterEach(async () => {
  origin?.restore();
  origin = undefined;
  await admin("DELETE", "/origin");
});

async function expectShed(response: Response, status: number, reason: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect(response.headers.get("ratelimit-policy")).toMatch(/^"guard-rate";q=\d+;w=\d+/);
  expect(await response.json()).toMatchObject({ status, reason });
}

describe("origin stage configuration", () => {
  it("is off until configured, and shows its config and stats once it is", async () => {
    expect(await originView()).toEqual({ config: null, stats: null });
    await putOrigin({ maxInFlight: 8 });
    const view = await originView();
    expect(view.config).toMatchObject({ maxInFlight: 8, minInFlight: 1, shards: 1, adaptive: true });
    expect(view.stats).toMatchObject({ inFlight: 0, queued: 0, limit: { effective: 8 } });
  });

  it("refuses a bad origin config with a problem naming the field, and keeps the one stored", async () => {
    await putOrigin({ maxInFlight: 8, minInFlight: 2 });
    const cases: Array<[unknown, string]> = [
      [{ maxInFlight: 4, minInFlight: 9 }, "minInFlight"],
      [{ maxInFlight: 4, minInFlight: 2, shards: 3 }, "shards"],
      [{ maxInFlight: 4, reservations: { low: 0.9, normal: 0.5, high: 1, critical: 1 } }, "reservations.normal"],
      [{ maxInFlight: 4, reservations: { low: 0.5, normal: 0.5, high: 0.5, critical: 0.9 } }, "reservations.critical"],
      [{ maxInFlight: 4, capacityHeader: "bad header" }, "capacityHeader"],
      [{ maxInFlight: 0 }, "maxInFlight"],
      [{ maxInFlight: 4, surprise: 1 }, "surprise"],
    ];
    for (const [body, field] of cases) {
      const response = await admin("PUT", "/origin", body);
      expect(response.status).toBe(400);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      const problem = (await response.json()) as { errors: Array<{ field: string }> };
      expect(problem.errors.map((error) => error.field)).toContain(field);
    }
    expect((await originView()).config).toMatchObject({ maxInFlight: 8, minInFlight: 2 });
  });
});

describe("origin stage on the request path", () => {
  it("holds the origin's in-flight to the global limit although each tenant is within its own", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    await putOrigin({ maxInFlight: 2, adaptive: false, maxQueue: 0, reservations: ALL_CLASSES_EVERYTHING });
    const a = await createTenant(uniqueTenant("ga"));
    const b = await createTenant(uniqueTenant("gb"));
    const first = proxied(a);
    const second = proxied(b);
    await originWhen((view) => view.stats?.inFlight === 2);
    const third = await proxied(a);
    await expectShed(third, 503, "origin_saturated");
    expect(origin.requests).toHaveLength(2);
    expect(origin.requests[0]?.headers.get("x-guard-origin-limit")).toBe("2");
    held.releaseNext();
    held.releaseNext();
    expect(await (await first).text()).toBe("done");
    expect(await (await second).text()).toBe("done");
    const view = await originWhen((v) => v.stats?.inFlight === 0);
    expect(view.stats?.counters).toMatchObject({ arrived: 3, admitted: 2, released: 2 });
  });

  it("gives the tenant its token back when the origin stage refuses its request", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    await putOrigin({ maxInFlight: 1, adaptive: false, maxQueue: 0 });
    const tenant = uniqueTenant("refund");
    const key = await createTenant(tenant, { rate: 0.001, burst: 3 });
    const first = proxied(key);
    await originWhen((view) => view.stats?.inFlight === 1);
    await expectShed(await proxied(key), 503, "origin_saturated");
    const s = await statsWhen(tenant, (x) => x.counters.notForwarded === 1);
    expect(s.counters.notForwarded).toBe(1);
    // Two admissions took two tokens; the refused one came back: one spent, two left.
    expect(Math.round(s.state.tokens)).toBe(2);
    held.releaseNext();
    await first;
  });

  it("keeps low priorities to their reserved share so critical traffic still gets through", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    await putOrigin({ maxInFlight: 10, adaptive: false, maxQueue: 0 });
    const key = await createTenant(uniqueTenant("resv"), { maxInFlight: 20, maxClientPriority: "critical" });
    const low = Array.from({ length: 6 }, () => proxied(key, "/api/thing", { headers: { "x-priority": "low" } }));
    await originWhen((view) => view.stats?.inFlight === 6);
    await expectShed(await proxied(key, "/api/thing", { headers: { "x-priority": "low" } }), 503, "origin_saturated");
    const critical = proxied(key, "/api/thing", { headers: { "x-priority": "critical" } });
    await originWhen((view) => view.stats?.inFlight === 7);
    expect(origin.requests.map((r) => r.headers.get("x-guard-priority"))).toEqual([
      ...Array(6).fill("low"),
      "critical",
    ]);
    for (let i = 0; i < 7; i += 1) held.releaseNext();
    expect((await critical).status).toBe(200);
    for (const response of await Promise.all(low)) expect(response.status).toBe(200);
  });

  it("holds all traffic back after an origin 503 with Retry-After and its whole-origin signal, then lets it through when the hold ends", async () => {
    let answer503 = true;
    origin = installFakeOrigin(() =>
      answer503
        ? new Response("busy", { status: 503, headers: { "retry-after": "1", "x-origin-overloaded": "1" } })
        : Response.json({ ok: true }),
    );
    await putOrigin({ maxInFlight: 4, globalHoldHeader: "X-Origin-Overloaded" });
    const a = await createTenant(uniqueTenant("hold-a"));
    const b = await createTenant(uniqueTenant("hold-b"));
    const first = await proxied(a);
    expect(first.status).toBe(503);
    expect(await first.text()).toBe("busy");
    answer503 = false;
    // Neither tenant's request reaches the origin while the hold lasts, whoever asks.
    await expectShed(await proxied(b), 503, "origin_backoff");
    await expectShed(await proxied(a, "/api/thing", { headers: { "x-priority": "normal" } }), 503, "origin_backoff");
    expect(origin.requests).toHaveLength(1);
    await scheduler.wait(1_050);
    expect((await proxied(b)).status).toBe(200);
    const view = await originView();
    expect(view.stats?.counters.shedByCause.backoff).toBeGreaterThanOrEqual(1);
  });

  it(
    "holds back only the tenant and route a 503 with Retry-After was for, without the whole-origin signal (issue 13, item 4)",
    POLLING,
    async () => {
      // A maintenance page on one route: its 503 + Retry-After must not stop every tenant and route.
      origin = installFakeOrigin((request) =>
        new URL(request.url).pathname.startsWith("/maint/")
          ? new Response("down for maintenance", { status: 503, headers: { "retry-after": "30" } })
          : Response.json({ ok: true }),
      );
      await putOrigin({ maxInFlight: 4, globalHoldHeader: "x-origin-overloaded" });
      const a = await createTenant(uniqueTenant("maint-a"));
      const b = await createTenant(uniqueTenant("maint-b"));
      const c = await createTenant(uniqueTenant("maint-c"));
      expect((await proxied(a, "/maint/job")).status).toBe(503);
      // Tenant a is held on /maint only; the rest of its API, and every other tenant, goes on.
      await expectShed(await proxied(a, "/maint/job"), 503, "origin_backoff");
      expect((await proxied(a, "/api/thing")).status).toBe(200);
      expect((await proxied(c, "/api/thing", { headers: { "x-priority": "critical" } })).status).toBe(200);
      expect((await proxied(b, "/maint/job")).status).toBe(503);
      // Two tenants heard the same on /maint: now the route is held for everyone, and only it.
      await originWhen((v) => v.stats?.counters.released === 5);
      await expectShed(
        await proxied(c, "/maint/job/7", { headers: { "x-priority": "critical" } }),
        503,
        "origin_backoff",
      );
      expect((await proxied(c, "/api/thing")).status).toBe(200);
      const view = (await originView()) as OriginView & { stats: { routesHeld: number } };
      expect(view.stats).toMatchObject({ backoffMs: 0, routesHeld: 1 });
      expect(origin.requests.map((r) => new URL(r.url).pathname)).toEqual([
        "/maint/job",
        "/api/thing",
        "/api/thing",
        "/maint/job",
        "/api/thing",
      ]);
    },
  );

  it("counts clients without a key as one party for fair shares, however many addresses they use (issue 13, item 3)", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    await putOrigin({
      maxInFlight: 2,
      adaptive: false,
      maxQueue: 8,
      maxWaitMs: 5_000,
      reservations: ALL_CLASSES_EVERYTHING,
    });
    const paid = uniqueTenant("paid");
    const key = await createTenant(paid);
    const anonymous = (ip: string) => guardFetch("/api/x", { headers: { "cf-connecting-ip": ip } });
    const running = [anonymous("203.0.113.1"), anonymous("203.0.113.2")];
    await originWhen((view) => view.stats?.inFlight === 2);
    const queued = [anonymous("203.0.113.3"), anonymous("203.0.113.4")];
    await originWhen((view) => view.stats?.queued === 2);
    const fromPaid = proxied(key);
    await originWhen((view) => view.stats?.queued === 3);
    // Anonymous traffic holds both slots: the paying tenant, holding none, is served next, not
    // the next address in the spray (each address its own party would tie with it at zero).
    held.releaseNext();
    await originWhen(() => origin?.requests.length === 3);
    expect(origin.requests[2]?.headers.get("x-guard-tenant")).toBe(paid);
    for (let i = 0; i < 4; i += 1) {
      await originWhen(() => held.waiting > 0);
      held.releaseNext();
    }
    for (const response of await Promise.all([...running, ...queued, fromPaid])) expect(response.status).toBe(200);
  });

  it("holds back only the tenant an origin 429 with Retry-After was for", async () => {
    origin = installFakeOrigin((request) =>
      request.headers.get("x-guard-tenant")?.startsWith("hot-")
        ? new Response("slow down", { status: 429, headers: { "retry-after": "30" } })
        : Response.json({ ok: true }),
    );
    await putOrigin({ maxInFlight: 4 });
    const hot = await createTenant(uniqueTenant("hot"));
    const calm = await createTenant(uniqueTenant("calm"));
    expect((await proxied(hot)).status).toBe(429);
    await expectShed(await proxied(hot), 429, "origin_rate_limited");
    expect((await proxied(calm)).status).toBe(200);
    expect(origin.requests.map((r) => r.headers.get("x-guard-tenant")?.split("-")[0])).toEqual(["hot", "calm"]);
  });

  it("never sends more than the origin's capacity header grants", async () => {
    const held = heldResponses();
    let grant = "1";
    origin = installFakeOrigin(async (request) => {
      if (request.headers.get("x-first") === "yes") {
        return Response.json({ ok: true }, { headers: { "x-origin-capacity": grant } });
      }
      return held.handler(request);
    });
    await putOrigin({ maxInFlight: 8, adaptive: false, maxQueue: 0, capacityHeader: "X-Origin-Capacity" });
    const key = await createTenant(uniqueTenant("cap"));
    expect(await (await proxied(key, "/api/thing", { headers: { "x-first": "yes" } })).json()).toEqual({ ok: true });
    const view = await originWhen((v) => v.stats?.limit.capacity === 1 && v.stats.inFlight === 0);
    expect(view.stats?.limit).toMatchObject({ capacity: 1, effective: 1 });
    const one = proxied(key);
    await originWhen((v) => v.stats?.inFlight === 1);
    await expectShed(await proxied(key), 503, "origin_saturated");
    expect(held.waiting).toBe(1);
    grant = "8";
    held.releaseNext();
    expect(await (await one).text()).toBe("done");
  });

  it("makes a request wait in the origin stage's queue for a slot another tenant frees", POLLING, async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    await putOrigin({ maxInFlight: 1, adaptive: false, maxQueue: 4, maxWaitMs: 5_000 });
    const a = await createTenant(uniqueTenant("qa"));
    const b = await createTenant(uniqueTenant("qb"));
    const first = proxied(a);
    await originWhen((v) => v.stats?.inFlight === 1);
    const second = proxied(b);
    await originWhen((v) => v.stats?.queued === 1);
    expect(origin.requests).toHaveLength(1);
    held.releaseNext();
    expect(await (await first).text()).toBe("done");
    await originWhen(() => held.waiting === 1);
    held.releaseNext();
    expect(await (await second).text()).toBe("done");
  });
});

/** A namespace whose objects always fail as an overloaded Durable Object does. */
function overloadedNamespace(): unknown {
  const fail = () =>
    Promise.reject(
      Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true }),
    );
  return { getByName: () => new Proxy({}, { get: () => fail }) };
}

function guardWith(overrides: Partial<Record<keyof Env, unknown>>) {
  const events: DecisionEvent[] = [];
  const app = createApp({ sink: () => ({ record: (event) => events.push(event) }), random: () => 0 });
  const faulty = { ...env, ...overrides } as Env;
  const send = async (key: string) => {
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request("http://guard.test/api/thing", { headers: { "x-api-key": key } }),
      faulty,
      ctx,
    );
    const body = await response.text();
    await waitOnExecutionContext(ctx);
    return { response, body };
  };
  return { events, send };
}

describe("when a Durable Object cannot be asked", () => {
  it("fails closed by default: 503 guard_unavailable with every signal, nothing forwarded", async () => {
    origin = installFakeOrigin();
    const key = await createTenant(uniqueTenant("closed"));
    const guard = guardWith({ TENANT_GUARD: overloadedNamespace() });
    const { response, body } = await guard.send(key);
    expect(response.status).toBe(503);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(body)).toMatchObject({ reason: "guard_unavailable" });
    expect(origin.requests).toHaveLength(0);
    expect(guard.events.map((e) => [e.reason, e.stage])).toEqual([["guard_unavailable", "guard"]]);
  });

  it("fails open when configured: forwards within the local limiter, marked and counted as degraded", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const key = await createTenant(uniqueTenant("open"));
    const guard = guardWith({ TENANT_GUARD: overloadedNamespace(), FAIL_MODE: "open", FAIL_OPEN_MAX_IN_FLIGHT: "1" });
    const first = guard.send(key);
    for (let turn = 0; turn < 200 && held.waiting === 0; turn += 1) await scheduler.wait(5);
    // The local limiter is full: the next request is shed as if failing closed.
    const second = await guard.send(key);
    expect(second.response.status).toBe(503);
    expect(JSON.parse(second.body)).toMatchObject({ reason: "guard_unavailable" });
    held.releaseNext();
    const { response } = await first;
    expect(response.status).toBe(200);
    expect(response.headers.get("x-guard-degraded")).toBe("fail-open");
    expect(origin.requests).toHaveLength(1);
    expect(guard.events.map((e) => [e.outcome, e.decidedAt, e.stage])).toEqual([
      ["shed", "object", "guard"],
      ["admitted", "fail-open", "guard"],
    ]);
  });

  it("fails closed at the origin stage too, giving the tenant its slot and token back", POLLING, async () => {
    origin = installFakeOrigin();
    await putOrigin({ maxInFlight: 4 });
    const tenant = uniqueTenant("oclosed");
    const key = await createTenant(tenant);
    const guard = guardWith({ ORIGIN_GUARD: overloadedNamespace() });
    const { response, body } = await guard.send(key);
    expect(response.status).toBe(503);
    expect(JSON.parse(body)).toMatchObject({ reason: "guard_unavailable" });
    expect(origin.requests).toHaveLength(0);
    const s = await statsWhen(tenant, (x) => x.state.inFlight === 0 && x.counters.notForwarded === 1);
    expect(s.counters.notForwarded).toBe(1);
    expect((await stats(tenant)).state.inFlight).toBe(0);
  });
});

describe("origin stage under hostile or odd input", () => {
  it("frees the slot and starts the hold however outsized the origin's headers are", async () => {
    let calls = 0;
    origin = installFakeOrigin(() => {
      calls += 1;
      return calls === 1
        ? new Response("busy", {
            status: 503,
            headers: { "retry-after": "40000000", "x-origin-capacity": "9999999", "x-origin-overloaded": "yes" },
          })
        : Response.json({ ok: true });
    });
    await putOrigin({
      maxInFlight: 1,
      adaptive: false,
      maxQueue: 0,
      capacityHeader: "x-origin-capacity",
      globalHoldHeader: "x-origin-overloaded",
      maxBackoffMs: 2_000,
    });
    const key = await createTenant(uniqueTenant("huge"));
    expect(await (await proxied(key)).text()).toBe("busy");
    const view = await originWhen((v) => v.stats?.counters.released === 1);
    expect(view.stats).toMatchObject({ inFlight: 0, counters: { released: 1 } });
    // The hold is the stage's cap, not the origin's 463 days.
    expect(view.stats?.backoffMs).toBeGreaterThan(1_000);
    expect(view.stats?.backoffMs).toBeLessThanOrEqual(2_000);
  });

  it("keeps the origin slot taken when the client goes away before the origin answered", async () => {
    let finishWork: () => void = () => {};
    // Like a real server: the fetch fails when the guard aborts it, the work goes on regardless.
    origin = installFakeOrigin((request) =>
      Promise.race([
        new Promise<Response>((resolve) => {
          finishWork = () => resolve(new Response("done"));
        }),
        new Promise<Response>((_, reject) =>
          request.signal.addEventListener("abort", () => reject(new Error("aborted"))),
        ),
      ]),
    );
    await putOrigin({ maxInFlight: 1, adaptive: false, maxQueue: 0, reservations: ALL_CLASSES_EVERYTHING });
    const key = await createTenant(uniqueTenant("gone"));
    const app = createApp({ sink: () => ({ record: () => {} }), random: () => 0 });
    const controller = new AbortController();
    const ctx = createExecutionContext();
    const pending = app.fetch(
      new Request("http://guard.test/a", { headers: { "x-api-key": key }, signal: controller.signal }),
      env,
      ctx,
    );
    await originWhen((v) => v.stats?.inFlight === 1);
    controller.abort();
    expect((await pending).status).toBe(499);
    // Not waitOnExecutionContext: its renewals run on until the tenant lease is given back, past the linger.
    // The origin is still working on it: the slot lingers, and the next request is refused.
    const view = await originWhen((v) => v.stats?.counters.released === 1);
    expect(view.stats).toMatchObject({ inFlight: 1, counters: { released: 1 } });
    await expectShed(await proxied(key), 503, "origin_saturated");
    expect(origin.requests).toHaveLength(1);
    finishWork();
  });

  it("leaves nothing behind of a client that left while queued at the origin stage (issue 13, item 5)", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    await putOrigin({
      maxInFlight: 1,
      adaptive: false,
      maxQueue: 4,
      maxWaitMs: 5_000,
      reservations: ALL_CLASSES_EVERYTHING,
    });
    const key = await createTenant(uniqueTenant("leftqueue"));
    const first = proxied(key, "/first");
    await originWhen((v) => v.stats?.inFlight === 1);
    const app = createApp({ sink: () => ({ record: () => {} }), random: () => 0 });
    const controller = new AbortController();
    const leaving = app.fetch(
      new Request("http://guard.test/second", { headers: { "x-api-key": key }, signal: controller.signal }),
      env,
      createExecutionContext(),
    );
    await originWhen((v) => v.stats?.queued === 1);
    controller.abort();
    expect((await leaving).status).toBe(499);
    held.releaseNext();
    expect(await (await first).text()).toBe("done");
    // The slot went to nobody: the origin never saw the request that left, and no phantom
    // slot lingers for it, so the next request gets in at once.
    const view = await originWhen((v) => v.stats?.inFlight === 0 && v.stats?.queued === 0);
    expect(view.stats).toMatchObject({ inFlight: 0, queued: 0 });
    const next = proxied(key, "/third");
    for (let turn = 0; turn < 200 && held.waiting === 0; turn += 1) await scheduler.wait(5);
    held.releaseNext();
    expect((await next).status).toBe(200);
    expect(origin.requests.map((r) => new URL(r.url).pathname)).toEqual(["/first", "/third"]);
  });

  it("holds back only the one anonymous client an origin 429 was for", async () => {
    origin = installFakeOrigin((request) =>
      request.headers.get("x-forwarded-for") === "203.0.113.1"
        ? new Response("slow down", { status: 429, headers: { "retry-after": "30" } })
        : Response.json({ ok: true }),
    );
    await putOrigin({ maxInFlight: 4 });
    const from = (ip: string) => guardFetch("/api/x", { headers: { "cf-connecting-ip": ip } });
    expect((await from("203.0.113.1")).status).toBe(429);
    await expectShed(await from("203.0.113.1"), 429, "origin_rate_limited");
    expect((await from("198.51.100.7")).status).toBe(200);
    expect(origin.requests).toHaveLength(2);
  });

  it("sends isolates that still pick a retired shard to the remaining ones", async () => {
    await putOrigin({ maxInFlight: 2, minInFlight: 2, shards: 2, adaptive: false, maxQueue: 0 });
    const ask = {
      tenant: "someone",
      method: "GET",
      route: "/api",
      weight: 1,
      priority: "normal" as const,
      deadline: Date.now() + 9_000,
    };
    expect((await env.ORIGIN_GUARD.getByName("origin:1").acquire(ask)).kind).toBe("admit");
    await putOrigin({ maxInFlight: 2, minInFlight: 2, shards: 1, adaptive: false, maxQueue: 0 });
    expect(await env.ORIGIN_GUARD.getByName("origin:1").acquire(ask)).toEqual({ kind: "moved", shards: 1 });
    const view = await originView();
    expect(view.stats?.limit.effective).toBe(2);
  });

  it("does not cut everyone's limit for aborts a client's own tiny budget caused", async () => {
    origin = installFakeOrigin((request) =>
      Promise.race([
        scheduler.wait(40).then(() => Response.json({ ok: true })),
        new Promise<Response>((_, reject) =>
          request.signal.addEventListener("abort", () => reject(new Error("aborted"))),
        ),
      ]),
    );
    await putOrigin({ maxInFlight: 20, minInFlight: 1 });
    const key = await createTenant(uniqueTenant("tiny"), { rate: 1000, burst: 1000, maxInFlight: 200 });
    // Teach the stage the origin's normal latency first.
    for (let i = 0; i < 12; i += 1) await (await proxied(key)).text();
    const statuses = new Set<number>();
    for (let i = 0; i < 20; i += 1) {
      const response = await proxied(key, "/api/x", { headers: { "x-request-timeout-ms": "20" } });
      statuses.add(response.status);
      await response.text();
      await scheduler.wait(60);
    }
    expect(statuses).toEqual(new Set([504]));
    const view = await originView();
    expect(view.stats?.limit.effective).toBe(20);
  });

  it("does not cut everyone's limit for a client's short budgets on a slower route (issue 13, item 2)", async () => {
    // The attack from the review: a few requests a second, each with a budget shorter than a
    // slower route takes but longer than the tolerated latency of the fast one.
    origin = installFakeOrigin((request) => {
      const slow = new URL(request.url).pathname.startsWith("/reports/");
      return Promise.race([
        scheduler.wait(slow ? 400 : 20).then(() => Response.json({ ok: true })),
        new Promise<Response>((_, reject) =>
          request.signal.addEventListener("abort", () => reject(new Error("aborted"))),
        ),
      ]);
    });
    await putOrigin({ maxInFlight: 20, minInFlight: 1 });
    const key = await createTenant(uniqueTenant("short"), { rate: 1000, burst: 1000, maxInFlight: 200 });
    for (let i = 0; i < 12; i += 1) await (await proxied(key)).text();
    const statuses = new Set<number>();
    for (let i = 0; i < 10; i += 1) {
      const response = await proxied(key, "/reports/annual", { headers: { "x-request-timeout-ms": "150" } });
      statuses.add(response.status);
      await response.text();
    }
    expect(statuses).toEqual(new Set([504]));
    const view = (await originWhen((v) => v.stats?.counters.released === 22)) as OriginView & {
      stats: { counters: { drops: number } };
    };
    expect(view.stats.counters.drops).toBe(0);
    expect(view.stats.limit.effective).toBe(20);
  });
});
