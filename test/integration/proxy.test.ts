import { afterEach, describe, expect, it } from "vitest";
import { type FakeOrigin, hangingOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import { createTenant, expectReconciled, guardFetch, proxied, stats, statsWhen, uniqueTenant } from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => origin?.restore());

async function expectEverySignal(response: Response, status: number, reason: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect(response.headers.get("ratelimit")).toMatch(/^"guard-rate";r=\d+;t=\d+, "guard-concurrency";r=\d+/);
  expect(response.headers.get("ratelimit-policy")).toMatch(/^"guard-rate";q=\d+;w=\d+/);
  const body = (await response.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ status, reason });
  for (const member of ["type", "title", "detail"]) expect(typeof body[member]).toBe("string");
}

describe("forwarding", () => {
  it("forwards method, path, query, headers and body to the origin and streams the answer back", async () => {
    origin = installFakeOrigin(
      async (request) => new Response(`echo:${await request.text()}`, { status: 201, headers: { "x-origin": "yes" } }),
    );
    const key = await createTenant(uniqueTenant("fwd"));
    const response = await proxied(key, "/v1/items/a%2Fb?q=1", {
      method: "POST",
      body: "payload",
      headers: { "content-type": "text/plain" },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("x-origin")).toBe("yes");
    expect(response.headers.get("ratelimit")).toMatch(/"guard-rate";r=\d+/);
    expect(await response.text()).toBe("echo:payload");
    const seen = origin.requests[0]!;
    expect(seen.method).toBe("POST");
    expect(seen.url).toBe("http://origin.test/v1/items/a%2Fb?q=1");
    expect(seen.headers.get("content-type")).toBe("text/plain");
  });

  it("tells the origin the tenant, priority and deadline, replacing whatever the client sent", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("hdr");
    const key = await createTenant(tenant, { timeoutMs: 3000 });
    const before = Date.now();
    await (
      await proxied(key, "/x", {
        headers: {
          "x-guard-tenant": "victim",
          "x-request-deadline": "1",
          "x-request-timeout-ms": "60000",
          "x-priority": "critical",
        },
      })
    ).text();
    const seen = origin.requests[0]!.headers;
    expect(seen.get("x-guard-tenant")).toBe(tenant);
    expect(seen.get("x-guard-priority")).toBe("normal");
    const timeout = Number(seen.get("x-request-timeout-ms"));
    expect(timeout).toBeGreaterThan(0);
    expect(timeout).toBeLessThanOrEqual(3000);
    const deadline = Number(seen.get("x-request-deadline"));
    expect(deadline).toBeGreaterThanOrEqual(before + 3000 - 50);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 3000);
  });

  it("passes a compressed origin body through as it is, decoded once by the client", async () => {
    const gzipped = new Uint8Array(
      await new Response(
        new Blob(["hello hello hello"]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer(),
    );
    origin = installFakeOrigin(
      () => new Response(gzipped, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } }),
    );
    const key = await createTenant(uniqueTenant("gzip"));
    const response = await proxied(key);
    // Decoded by the guard without the header, or re-encoded twice, this would not read back.
    expect(response.headers.get("content-encoding")).toBe("gzip");
    expect(await response.text()).toBe("hello hello hello");
  });

  it("gives a client without a key the anonymous tenant's limits", async () => {
    origin = installFakeOrigin();
    const response = await guardFetch("/public", { headers: { "cf-connecting-ip": "198.51.100.77" } });
    expect(response.status).toBe(200);
    await response.text();
    expect(origin.requests[0]!.headers.get("x-guard-tenant")).toBe("anonymous");
  });
});

describe("shedding", () => {
  it("sheds 429 with every signal when the tenant is over its rate, and the origin sees nothing", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("rate");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1, maxQueue: 5, maxWaitMs: 500 });
    expect((await proxied(key)).status).toBe(200);
    const before = origin.requests.length;
    const shed = await proxied(key);
    await expectEverySignal(shed, 429, "rate_limited");
    expect(Number(shed.headers.get("retry-after"))).toBeGreaterThanOrEqual(100);
    expect(origin.requests.length).toBe(before);
    expect((await stats(tenant)).counters.shedByReason.rate_limited).toBe(1);
  });

  it("sheds 503 queue_full with every signal when slots and queue are full", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("full");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 1 });
    const first = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    const second = proxied(key);
    await statsWhen(tenant, (s) => s.state.queued === 1);
    const third = await proxied(key);
    await expectEverySignal(third, 503, "queue_full");
    expect(origin.requests.length).toBe(1);
    held.releaseNext();
    expect(await (await first).text()).toBe("done");
    await statsWhen(tenant, () => held.waiting === 1);
    held.releaseNext();
    expect(await (await second).text()).toBe("done");
  });

  it("holds a queued request until a slot frees, then forwards it", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("queue");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 4, maxWaitMs: 5000 });
    const first = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    const second = proxied(key);
    const queued = await statsWhen(tenant, (s) => s.state.queued === 1);
    expect(queued.state.queuedByPriority.normal).toBe(1);
    expect(origin.requests).toHaveLength(1);
    held.releaseNext();
    await (await first).text();
    await statsWhen(tenant, () => held.waiting === 1);
    expect(origin.requests).toHaveLength(2);
    held.releaseNext();
    expect(await (await second).text()).toBe("done");
    const after = await statsWhen(tenant, (s) => s.state.inFlight === 0);
    expect(after.counters).toMatchObject({ admitted: 2, shed: 0, queuedEver: 1, released: 2 });
  });

  it("evicts the lowest-priority queued request for a higher-priority arrival", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("evict");
    const key = await createTenant(tenant, {
      maxInFlight: 1,
      maxQueue: 1,
      maxWaitMs: 5000,
      maxClientPriority: "critical",
    });
    const running = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    const low = proxied(key, "/x", { headers: { "x-priority": "low" } });
    await statsWhen(tenant, (s) => s.state.queued === 1);
    const critical = proxied(key, "/x", { headers: { "x-priority": "critical" } });
    await expectEverySignal(await low, 503, "evicted");
    const s = await stats(tenant);
    expect(s.state.queuedByPriority).toMatchObject({ low: 0, critical: 1 });
    expect(s.counters.shedByPriority.low).toBe(1);
    held.releaseNext();
    await (await running).text();
    await statsWhen(tenant, () => held.waiting === 1);
    expect(origin.requests[1]!.headers.get("x-guard-priority")).toBe("critical");
    held.releaseNext();
    expect(await (await critical).text()).toBe("done");
  });

  it("refuses at once a request whose expected wait exceeds its deadline", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("estimate");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 5, maxWaitMs: 5000 });
    const running = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    const shed = await proxied(key, "/x", { headers: { "x-request-timeout-ms": "1" } });
    await expectEverySignal(shed, 503, "wait_exceeds_deadline");
    held.releaseNext();
    await (await running).text();
  });

  it("answers a waiter that waited its whole budget with queue_timeout", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("qtimeout");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 2, maxWaitMs: 50 });
    const running = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    await expectEverySignal(await proxied(key), 503, "queue_timeout");
    expect(origin.requests).toHaveLength(1);
    held.releaseNext();
    await (await running).text();
  });
});

describe("deadlines and releases", () => {
  it("aborts a hanging origin at the deadline with 504 and holds the slot briefly for the origin", async () => {
    origin = installFakeOrigin(hangingOrigin);
    const tenant = uniqueTenant("hang");
    const key = await createTenant(tenant);
    const response = await proxied(key, "/slow", { headers: { "x-request-timeout-ms": "100" } });
    await expectEverySignal(response, 504, "deadline_exceeded");
    // The origin may still be working on it: the slot stays taken for a typical hold time.
    const lingering = await statsWhen(tenant, (x) => x.counters.deadlineExceeded === 1);
    expect(lingering.counters.deadlineExceeded).toBe(1);
    expect(lingering.state).toMatchObject({ inFlight: 1, lingering: 1 });
    const freed = await statsWhen(tenant, (x) => x.state.inFlight === 0, 300);
    expect(freed.state).toMatchObject({ inFlight: 0, lingering: 0 });
    expect(freed.counters.reaped).toBe(0);
    expectReconciled(freed);
  });

  it("frees a lingering slot through the object's own alarm, whatever the hold average's fraction", async () => {
    // Holds of ~120 ms make a fractional hold average, which a lingering slot's expiry inherits.
    let served = 0;
    origin = installFakeOrigin(async (request) => {
      if (new URL(request.url).pathname === "/hang") return hangingOrigin(request);
      served += 1;
      await scheduler.wait(120 + served * 7);
      return new Response("ok");
    });
    const tenant = uniqueTenant("alarm");
    const key = await createTenant(tenant, { maxInFlight: 1 });
    for (let i = 0; i < 3; i += 1) await (await proxied(key)).text();
    const average = (await statsWhen(tenant, (s) => s.counters.released === 3)).state.holdMsEwma;
    expect(Number.isInteger(average)).toBe(false);
    expect((await proxied(key, "/hang", { headers: { "x-request-timeout-ms": "40" } })).status).toBe(504);
    expect((await statsWhen(tenant, (s) => s.state.lingering === 1)).state.lingering).toBe(1);
    // No reapAt here: only the alarm the object set for itself can free the slot.
    const freed = await statsWhen(tenant, (s) => s.state.inFlight === 0, 200);
    expect(freed.state).toMatchObject({ inFlight: 0, lingering: 0 });
    expect(await (await proxied(key)).text()).toBe("ok");
  });

  it("releases the slot when the origin fails", async () => {
    origin = installFakeOrigin(() => Promise.reject(new TypeError("connection reset")));
    const tenant = uniqueTenant("reset");
    const key = await createTenant(tenant);
    const response = await proxied(key);
    expect(response.status).toBe(502);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const s = await statsWhen(tenant, (x) => x.state.inFlight === 0 && x.counters.originFailed === 1);
    expect(s.state.inFlight).toBe(0);
    expect(s.counters.originFailed).toBe(1);
    expectReconciled(s);
  });

  it("releases the slot when the origin body fails mid-stream", async () => {
    origin = installFakeOrigin(() => {
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent) return controller.error(new Error("origin reset mid-body"));
          sent = true;
          controller.enqueue(new TextEncoder().encode("partial"));
        },
      });
      return new Response(body);
    });
    const tenant = uniqueTenant("midbody");
    const key = await createTenant(tenant);
    const response = await proxied(key);
    await expect(response.text()).rejects.toThrow();
    const s = await statsWhen(tenant, (x) => x.state.inFlight === 0);
    expect(s.state.inFlight).toBe(0);
    expectReconciled(s);
  });

  it("releases the slot when the client cancels the body", async () => {
    origin = installFakeOrigin(
      () => new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(1024)) })),
    );
    const tenant = uniqueTenant("cancel");
    const key = await createTenant(tenant);
    const response = await proxied(key);
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    const s = await statsWhen(tenant, (x) => x.state.inFlight === 0);
    expect(s.state.inFlight).toBe(0);
    expect(s.counters.released).toBe(1);
    expectReconciled(s);
  });
});
