import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearVerdicts } from "../../src/edge/verdict-cache";
import { type FakeOrigin, installFakeOrigin } from "./fake-origin";
import { createTenant, recordingGuard, stats, uniqueTenant } from "./support";

let origin: FakeOrigin | undefined;
beforeEach(() => clearVerdicts());
afterEach(() => origin?.restore());

describe("shedding at the edge", () => {
  it("sheds a saturated tenant's further requests locally with exactly the same signals", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("edge");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1, maxQueue: 0 });
    const guard = recordingGuard();
    expect((await guard.send(key)).response.status).toBe(200);
    const byObject = await guard.send(key);
    const atEdge = await guard.send(key);
    expect(guard.events.map((e) => [e.reason, e.decidedAt])).toEqual([
      ["completed", "object"],
      ["rate_limited", "object"],
      ["rate_limited", "edge"],
    ]);
    for (const { response } of [byObject, atEdge]) {
      expect(response.status).toBe(429);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    expect(atEdge.response.headers.get("ratelimit-policy")).toBe(byObject.response.headers.get("ratelimit-policy"));
    expect(atEdge.response.headers.get("ratelimit")).toMatch(/^"guard-rate";r=0;t=\d+/);
    expect(JSON.parse(atEdge.body)).toMatchObject({ status: 429, reason: "rate_limited", tenant });
    expect(origin.requests).toHaveLength(1);
    // The object has not heard of the local shed yet: no round trip was made for it.
    const { counters } = await stats(tenant);
    expect(counters.arrived).toBe(2);
    expect(counters.calls.admit).toBe(2);
  });

  it("reports local sheds to the object in a batch, so its counters add up", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("batch");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1, maxQueue: 0 });
    const guard = recordingGuard();
    await guard.send(key);
    await guard.send(key);
    const local = [];
    for (let i = 0; i < 5; i += 1) local.push(await guard.send(key));
    expect(guard.events.filter((e) => e.decidedAt === "edge")).toHaveLength(5);
    await Promise.all(local.map((l) => l.settled()));
    const { counters } = await stats(tenant);
    expect(counters).toMatchObject({ arrived: 7, admitted: 1, shed: 6, shedAtEdge: 5 });
    // Two decisions and one batch report for seven requests.
    expect(counters.calls).toMatchObject({ admit: 2, reportSheds: 1 });
    expect(counters.shedByReason.rate_limited).toBe(6);
    expect(counters.shedByPriority.normal).toBe(6);
  });

  it("sends a request of a higher priority than the verdict covers to the object, with the pending batch", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("bypass");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1, maxQueue: 0, maxClientPriority: "critical" });
    const guard = recordingGuard();
    await guard.send(key);
    await guard.send(key, { "x-priority": "low" });
    await guard.send(key, { "x-priority": "low" });
    await guard.send(key, { "x-priority": "high" });
    expect(guard.events.map((e) => [e.priority, e.decidedAt])).toEqual([
      ["normal", "object"],
      ["low", "object"],
      ["low", "edge"],
      ["high", "object"],
    ]);
    // The local shed travelled with the high-priority admit call.
    const { counters } = await stats(tenant);
    expect(counters).toMatchObject({ arrived: 4, shedAtEdge: 1 });
  });

  it("asks the object again once the verdict no longer covers the request's budget", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("budget");
    const key = await createTenant(tenant, { rate: 1, burst: 1, maxQueue: 5, maxWaitMs: 5000 });
    const guard = recordingGuard();
    await guard.send(key);
    // Waiting ~1 s for a token exceeds a 100 ms budget: shed by the object, then at the edge.
    await guard.send(key, { "x-request-timeout-ms": "100" });
    await guard.send(key, { "x-request-timeout-ms": "100" });
    // A 5 s budget would be queued: the verdict does not cover it.
    const patient = guard.send(key, { "x-request-timeout-ms": "5000" });
    expect((await patient).response.status).toBe(200);
    expect(guard.events.map((e) => [e.reason, e.decidedAt])).toEqual([
      ["completed", "object"],
      ["rate_limited", "object"],
      ["rate_limited", "edge"],
      ["completed", "object"],
    ]);
  });
});

describe("edge shedding under a flood", () => {
  it("reports local sheds at most about once a second, however many batches piggybacked admit calls took", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("reports");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1, maxQueue: 0, maxClientPriority: "critical" });
    const guard = recordingGuard();
    await guard.send(key);
    const sent = [];
    // Each class's first request goes to the object (taking the pending batch along) and is shed
    // there; its second is shed at the edge and starts a new batch.
    for (const priority of ["low", "low", "high", "high", "critical", "critical"]) {
      sent.push(await guard.send(key, { "x-priority": priority }));
    }
    expect(guard.events.slice(1).map((e) => e.decidedAt)).toEqual([
      "object",
      "edge",
      "object",
      "edge",
      "object",
      "edge",
    ]);
    await Promise.all(sent.map((s) => s.settled()));
    const { counters } = await stats(tenant);
    expect(counters).toMatchObject({ arrived: 7, shed: 6, shedAtEdge: 3 });
    expect(counters.calls.admit).toBe(4);
    expect(counters.calls.reportSheds).toBeLessThanOrEqual(1);
  });
});
