import { afterEach, describe, expect, it } from "vitest";
import { tenantLeaseSnapshot } from "../../src/proxy/tenant-stage";
import { type FakeOrigin, hangingOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import {
  createTenant,
  expectReconciled,
  guardFetch,
  proxied,
  recordingGuard,
  statsReported,
  statsWhen,
  switchableObjects,
  uniqueTenant,
} from "./support";

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
    const response = await proxied(key, "/v1/items/a%20b?q=1", {
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
    expect(seen.url).toBe("http://origin.test/v1/items/a%20b?q=1");
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
    const admitted = await proxied(key);
    expect(admitted.status).toBe(200);
    await admitted.text();
    const before = origin.requests.length;
    const shed = await proxied(key);
    await expectEverySignal(shed, 429, "rate_limited");
    expect(Number(shed.headers.get("retry-after"))).toBeGreaterThanOrEqual(100);
    expect(origin.requests.length).toBe(before);
    const s = await statsReported(tenant, 2);
    expect(s.counters.shedByReason.rate_limited).toBe(1);
    // Decided on the isolate's lease, which knew it held no token: no object call for it.
    expect(s.counters.shedAtEdge).toBe(1);
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
    const after = await statsReported(tenant, 2);
    // The first request waited too: for the cold isolate's first lease.
    expect(after.counters).toMatchObject({ arrived: 2, admitted: 2, shed: 0, queuedEver: 2, released: 2 });
  });

  it("hands a finished request's slot straight to the next local waiter, with no object call between", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("handoff");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 4, maxWaitMs: 5000 });
    const objects = switchableObjects();
    const guard = recordingGuard({ TENANT_GUARD: objects.namespace });
    const first = guard.send(key, {}, { read: false });
    for (let turn = 0; turn < 200 && held.waiting < 1; turn += 1) await scheduler.wait(5);
    const second = guard.send(key);
    const lease = () => tenantLeaseSnapshot(`tenant:${tenant}`);
    for (let turn = 0; turn < 200 && lease()?.queue.length !== 1; turn += 1) await scheduler.wait(5);
    expect(lease()?.queue).toHaveLength(1);
    // From here the object answers nothing: only the isolate can give the second request a slot.
    objects.set("freeze");
    const answeredBefore = objects.answered;
    held.releaseNext();
    expect(await (await first).response.text()).toBe("done");
    for (let turn = 0; turn < 200 && held.waiting < 1; turn += 1) await scheduler.wait(5);
    expect(held.waiting).toBe(1);
    expect(objects.answered).toBe(answeredBefore);
    objects.set("pass");
    held.releaseNext();
    expect((await second).response.status).toBe(200);
    expect(origin.requests).toHaveLength(2);
    expect(guard.events.map((e) => [e.outcome, e.decidedAt])).toEqual([
      ["admitted", "object"],
      ["admitted", "edge"],
    ]);
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
    const s = await statsWhen(tenant, (x) => x.state.queuedByPriority.critical === 1);
    expect(s.state.queuedByPriority).toMatchObject({ low: 0, critical: 1 });
    expect(s.counters.shedByPriority.low).toBe(1);
    held.releaseNext();
    await (await running).text();
    await statsWhen(tenant, () => held.waiting === 1);
    expect(origin.requests[1]!.headers.get("x-guard-priority")).toBe("critical");
    held.releaseNext();
    expect(await (await critical).text()).toBe("done");
  });

  /** An origin that takes ~100 ms on /slow (so the isolate learns a hold time) and holds everything else. */
  function slowThenHeld() {
    const held = heldResponses();
    const handler = async (request: Request) => {
      if (new URL(request.url).pathname !== "/slow") return held.handler(request);
      await scheduler.wait(100);
      return new Response("slow");
    };
    return { held, handler };
  }

  it("refuses at once a request whose budget cannot cover the origin's hold time", async () => {
    const { held, handler } = slowThenHeld();
    origin = installFakeOrigin(handler);
    const tenant = uniqueTenant("estimate");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 5, maxWaitMs: 5000 });
    for (let i = 0; i < 2; i += 1) await (await proxied(key, "/slow")).text();
    const running = proxied(key);
    for (let turn = 0; turn < 200 && held.waiting < 1; turn += 1) await scheduler.wait(5);
    const sentAt = Date.now();
    const shed = await proxied(key, "/x", { headers: { "x-request-timeout-ms": "60" } });
    await expectEverySignal(shed, 503, "wait_exceeds_deadline");
    // Refused before its own 60 ms ran out, not after waiting them in the queue.
    expect(Date.now() - sentAt).toBeLessThan(60);
    expect(origin.requests).toHaveLength(3);
    held.releaseNext();
    await (await running).text();
  });

  it("refuses at once a request that the busy slots cannot reach within its budget", async () => {
    const { held, handler } = slowThenHeld();
    origin = installFakeOrigin(handler);
    const tenant = uniqueTenant("estimate2");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 5, maxWaitMs: 5000 });
    for (let i = 0; i < 2; i += 1) await (await proxied(key, "/slow")).text();
    const running = proxied(key);
    for (let turn = 0; turn < 200 && held.waiting < 1; turn += 1) await scheduler.wait(5);
    try {
      // 150 ms leaves 50 ms to wait after ~100 ms of service; the slot frees in ~100 ms at best.
      const shed = await proxied(key, "/x", { headers: { "x-request-timeout-ms": "150" } });
      await expectEverySignal(shed, 503, "wait_exceeds_deadline");
    } finally {
      held.releaseNext();
      await (await running).text();
    }
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
  it("gives a HEAD request's slot back at once: its answer has no body to read", async () => {
    origin = installFakeOrigin(() => new Response("a body the origin sent anyway"));
    const tenant = uniqueTenant("head");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 1, maxWaitMs: 100 });
    for (let i = 0; i < 3; i++) {
      const response = await proxied(key, "/x", { method: "HEAD" });
      expect(response.status).toBe(200);
    }
    const lease = tenantLeaseSnapshot(`tenant:${tenant}`);
    expect(Object.values(lease?.inUse ?? {}).reduce((a, b) => a + b, 0)).toBe(0);
    expect(origin.requests).toHaveLength(3);
  });

  it("aborts a hanging origin at the deadline with 504 and holds the slot briefly for the origin", async () => {
    origin = installFakeOrigin(hangingOrigin);
    const tenant = uniqueTenant("hang");
    const key = await createTenant(tenant);
    const response = await proxied(key, "/slow", { headers: { "x-request-timeout-ms": "100" } });
    await expectEverySignal(response, 504, "deadline_exceeded");
    // The origin may still be working on it: released, yet the slot stays in use a typical hold time.
    const lingering = await statsWhen(tenant, (x) => x.counters.deadlineExceeded === 1);
    expect(lingering.counters).toMatchObject({ deadlineExceeded: 1, released: 1 });
    expect(lingering.state.inFlight).toBe(1);
    const freed = await statsReported(tenant, 1);
    expect(freed.state.inFlight).toBe(0);
    expect(freed.counters.reaped).toBe(0);
    expectReconciled(freed);
  });

  it("frees a lingering slot on the isolate's own timer, whatever the hold average's fraction", async () => {
    // Holds of ~120 ms make a fractional hold average, which a lingering slot's wait inherits.
    let served = 0;
    origin = installFakeOrigin(async (request) => {
      if (new URL(request.url).pathname === "/hang") return hangingOrigin(request);
      served += 1;
      await scheduler.wait(120 + served * 7);
      return new Response("ok");
    });
    const tenant = uniqueTenant("linger");
    const key = await createTenant(tenant, { maxInFlight: 1 });
    const guard = recordingGuard();
    for (let i = 0; i < 3; i += 1) await guard.send(key);
    const average = tenantLeaseSnapshot(`tenant:${tenant}`)?.holdMs ?? null;
    expect(Number.isInteger(average)).toBe(false);
    const aborted = await guard.send(key, { "x-request-timeout-ms": "40" }, { path: "/hang" });
    expect(aborted.response.status).toBe(504);
    // The only slot lingers about one hold time: the next request waits for it, then gets in.
    const next = await guard.send(key);
    expect(next.body).toBe("ok");
    const waited = guard.events.at(-1)?.queueWaitMs ?? 0;
    expect(waited).toBeGreaterThan((average ?? 0) / 2);
    expect(waited).toBeLessThan((average ?? 0) * 3);
    const freed = await statsReported(tenant, 5);
    expect(freed.counters).toMatchObject({ admitted: 5, released: 5, deadlineExceeded: 1, reaped: 0 });
    expectReconciled(freed);
  });

  it("releases the slot when the origin fails", async () => {
    origin = installFakeOrigin(() => Promise.reject(new TypeError("connection reset")));
    const tenant = uniqueTenant("reset");
    const key = await createTenant(tenant);
    const response = await proxied(key);
    expect(response.status).toBe(502);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const s = await statsReported(tenant, 1);
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
    const s = await statsReported(tenant, 1);
    expect(s.state.inFlight).toBe(0);
    expect(s.counters.released).toBe(1);
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
    const s = await statsReported(tenant, 1);
    expect(s.state.inFlight).toBe(0);
    expect(s.counters.released).toBe(1);
    expectReconciled(s);
  });
});
