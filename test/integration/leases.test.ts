import { afterEach, describe, expect, it } from "vitest";
import { lingerMs } from "../../src/admission/leases";
import { LEASE_TIMING } from "../../src/lease/lease-protocol";
import { tenantLeaseSnapshot } from "../../src/proxy/tenant-stage";
import { type FakeOrigin, hangingOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import {
  createTenant,
  expectReconciled,
  proxied,
  recordingGuard,
  stats,
  statsReturned,
  statsWhen,
  switchableObjects,
  tenantStub,
  uniqueTenant,
} from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => origin?.restore());

const HOT = { rate: 1000, burst: 1000, maxInFlight: 100, maxQueue: 10, maxWaitMs: 500 };

const leaseOf = (tenant: string) => tenantLeaseSnapshot(`tenant:${tenant}`);

async function until(condition: () => boolean, turns = 400): Promise<void> {
  for (let turn = 0; turn < turns && !condition(); turn += 1) await scheduler.wait(5);
}

/** An origin that counts the requests it is serving at once and remembers the most. */
function concurrencyOrigin(serviceMs: number) {
  let now = 0;
  let most = 0;
  const handler = async () => {
    now += 1;
    most = Math.max(most, now);
    await scheduler.wait(serviceMs);
    now -= 1;
    return new Response("ok");
  };
  return {
    handler,
    get most() {
      return most;
    },
  };
}

describe("the tenant's lease at the edge", () => {
  it("admits a busy tenant's requests on the isolate's lease, with a few object calls instead of one per request", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("busy");
    const key = await createTenant(tenant, HOT);
    const guard = recordingGuard();
    const arrivals = 60;
    for (let i = 0; i < arrivals; i += 1) expect((await guard.send(key)).response.status).toBe(200);
    // Only the cold lease's first request waited for the object.
    expect(guard.events.filter((e) => e.decidedAt === "object")).toHaveLength(1);
    const s = await statsReturned(tenant);
    expect(s.counters).toMatchObject({ arrived: arrivals, admitted: arrivals, released: arrivals, shed: 0 });
    expect(s.counters.calls.lease).toBeLessThan(arrivals / 5);
    expectReconciled(s);
  });

  it("sheds an over-rate tenant at the edge with every signal, and the object counts it with the next renewal", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("edgeshed");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1, maxQueue: 0 });
    const guard = recordingGuard();
    expect((await guard.send(key)).response.status).toBe(200);
    const sheds = [];
    for (let i = 0; i < 8; i += 1) sheds.push(await guard.send(key));
    for (const { response, body } of sheds) {
      expect(response.status).toBe(429);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(response.headers.get("ratelimit")).toMatch(/^"guard-rate";r=0;t=\d+/);
      expect(response.headers.get("ratelimit-policy")).toMatch(/^"guard-rate";q=1;w=\d+/);
      expect(JSON.parse(body)).toMatchObject({ status: 429, reason: "rate_limited", tenant });
    }
    expect(guard.events.slice(1).every((e) => e.outcome === "shed" && e.decidedAt === "edge")).toBe(true);
    expect(origin.requests).toHaveLength(1);
    const s = await statsReturned(tenant);
    expect(s.counters).toMatchObject({ arrived: 9, admitted: 1, shed: 8, shedAtEdge: 8 });
    expect(s.counters.shedByReason.rate_limited).toBe(8);
    expect(s.counters.shedByPriority.normal).toBe(8);
    // Fewer calls than sheds: none of them was a round trip of its own.
    expect(s.counters.calls.lease).toBeLessThan(8);
    expectReconciled(s);
  });

  it("counts, once the lease is given back, exactly what its clients were answered", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("books");
    const key = await createTenant(tenant, { maxInFlight: 2, maxQueue: 1, maxWaitMs: 5000 });
    const guard = recordingGuard();
    // Each reads its body as it comes: a slot is released when its response body ends.
    const first = guard.send(key);
    await until(() => held.waiting === 1);
    const rest = Array.from({ length: 5 }, () => guard.send(key));
    // Two at the origin, one in the local queue, three refused.
    await until(() => held.waiting === 2 && guard.events.length === 3);
    expect(guard.events.map((e) => e.reason)).toEqual(["queue_full", "queue_full", "queue_full"]);
    for (let served = 0; served < 3; served += 1) {
      await until(() => held.waiting > 0);
      held.releaseNext();
    }
    const statuses = (await Promise.all([first, ...rest])).map(({ response }) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(3);
    expect(statuses.filter((status) => status === 503)).toHaveLength(3);
    const s = await statsReturned(tenant);
    expect(s.counters).toMatchObject({ arrived: 6, admitted: 3, released: 3, shed: 3, shedAtEdge: 3 });
    expect(s.counters.shedByReason.queue_full).toBe(3);
    expect(s.state.leases).toEqual({ holders: 0, slots: 0, tokens: 0 });
    expectReconciled(s);
  });

  it("reports a waiter's timeout with the next renewal while a long request still holds the slot", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("quiet");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 2, maxWaitMs: 300 });
    const running = proxied(key);
    await until(() => held.waiting === 1);
    const timedOut = await proxied(key);
    expect(((await timedOut.json()) as { reason: string }).reason).toBe("queue_timeout");
    // No request arrives now: only the lease's own heartbeat can carry the shed to the object.
    const s = await statsWhen(tenant, (x) => x.counters.shedByReason.queue_timeout === 1);
    expect(s.counters).toMatchObject({ arrived: 2, admitted: 1, shed: 1 });
    expect(s.state).toMatchObject({ inFlight: 1, queued: 0 });
    held.releaseNext();
    await (await running).text();
  });

  it("keeps renewing while short-budget requests wait under a fractional hold average", async () => {
    const held = heldResponses();
    let slow = 0;
    origin = installFakeOrigin(async (request) => {
      if (new URL(request.url).pathname !== "/slow") return held.handler(request);
      // Unequal holds, so their moving average is sure to carry a fraction.
      slow += 1;
      await scheduler.wait(96 + slow);
      return new Response("slow");
    });
    const tenant = uniqueTenant("fraction");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 2, maxWaitMs: 5000 });
    const objects = switchableObjects();
    const guard = recordingGuard({ TENANT_GUARD: objects.namespace });
    for (let i = 0; i < 3; i += 1) await guard.send(key, {}, { path: "/slow" });
    expect(Number.isInteger(leaseOf(tenant)?.holdMs)).toBe(false);
    const running = guard.send(key);
    await until(() => held.waiting === 1);
    // Each waits its budget less the hold average: a fractional expiry under the long poll's
    // 250 ms, which the renewals sent meanwhile inherit. Back to back for over a second, so
    // renewals (at least every 250 ms while the lease holds anything) go out while one waits.
    for (let i = 0; i < 5; i += 1) {
      const { response, body } = await guard.send(key, { "x-request-timeout-ms": "300" });
      expect(response.status).toBe(503);
      expect(JSON.parse(body).reason).not.toBe("guard_unavailable");
    }
    // No report refused by the object's schema (a fractional waitMs was), whether or not the
    // lease asked for a long poll (a lone isolate holding the whole limit does not).
    expect(objects.refused).toBe(0);
    expect(leaseOf(tenant)?.failedAt).toBeNull();
    held.releaseNext();
    expect((await running).response.status).toBe(200);
  });
});

describe("the tenant stage's invariants through the Worker", () => {
  it("never has more than maxInFlight requests at the origin under a concurrent burst", async () => {
    const counting = concurrencyOrigin(20);
    origin = installFakeOrigin(counting.handler);
    const tenant = uniqueTenant("burst");
    const maxInFlight = 4;
    const key = await createTenant(tenant, { rate: 1000, burst: 1000, maxInFlight, maxQueue: 40, maxWaitMs: 5000 });
    // Each client reads its body as it comes: a slot is released when its response body ends.
    const answers = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const response = await proxied(key);
        return `${response.status} ${await response.text()}`;
      }),
    );
    expect(answers).toEqual(Array(40).fill("200 ok"));
    expect(counting.most).toBeLessThanOrEqual(maxInFlight);
    // And the guard kept the origin busy: the whole limit was in use at once.
    expect(counting.most).toBe(maxInFlight);
    const s = await statsReturned(tenant);
    expect(s.counters).toMatchObject({ arrived: 40, admitted: 40, released: 40 });
    expectReconciled(s);
  });

  it("cancels a queued request whose client went away: the origin never sees it, and the next one gets in at once", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("gone");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 4, maxWaitMs: 5000 });
    const guard = recordingGuard();
    const first = guard.send(key, {}, { read: false });
    await until(() => held.waiting === 1);
    const client = new AbortController();
    const leaving = guard.send(key, {}, { signal: client.signal, path: "/left" });
    await until(() => leaseOf(tenant)?.queue.length === 1);
    client.abort();
    expect((await leaving).response.status).toBe(499);
    expect(leaseOf(tenant)?.queue).toHaveLength(0);
    held.releaseNext();
    await (await first).response.text();
    // The slot the first request freed is free, not handed to the request that left.
    const next = guard.send(key);
    await until(() => held.waiting === 1);
    held.releaseNext();
    expect((await next).response.status).toBe(200);
    // Its decision record is written when its body ends, after the first's.
    expect(guard.events).toHaveLength(2);
    expect(guard.events.at(-1)).toMatchObject({ outcome: "admitted", decidedAt: "edge", queueWaitMs: 0 });
    expect(origin.requests.map((r) => new URL(r.url).pathname)).toEqual(["/flood", "/flood"]);
    const s = await statsWhen(tenant, (x) => x.counters.released === 2 && x.state.inFlight === 0);
    expect(s.counters).toMatchObject({ arrived: 3, admitted: 2, released: 2, shed: 0 });
  });

  it("counts a queued request whose client went away as gone, so arrivals still add up", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("gonebooks");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 4, maxWaitMs: 5000 });
    const guard = recordingGuard();
    const first = guard.send(key, {}, { read: false });
    await until(() => held.waiting === 1);
    const client = new AbortController();
    const leaving = guard.send(key, {}, { signal: client.signal });
    await until(() => leaseOf(tenant)?.queue.length === 1);
    client.abort();
    await leaving;
    held.releaseNext();
    await (await first).response.text();
    const s = await statsReturned(tenant);
    expect(s.counters).toMatchObject({ arrived: 2, admitted: 1, shed: 0, gone: 1 });
    expectReconciled(s);
  });

  it("keeps a slot the deadline aborted in use while the origin likely still works: the next request waits, then gets in", async () => {
    origin = installFakeOrigin((request) =>
      new URL(request.url).pathname === "/hang" ? hangingOrigin(request) : new Response("ok"),
    );
    const tenant = uniqueTenant("linger");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 2, maxWaitMs: 5000 });
    const guard = recordingGuard();
    const aborted = await guard.send(key, { "x-request-timeout-ms": "100" }, { path: "/hang" });
    expect(aborted.response.status).toBe(504);
    // No hold time known yet: the slot lingers the default, at least as long as the request ran.
    const linger = lingerMs(null, 100);
    const next = await guard.send(key);
    expect(next.body).toBe("ok");
    const waited = guard.events.at(-1)?.queueWaitMs ?? 0;
    expect(waited).toBeGreaterThan(linger - 200);
    expect(waited).toBeLessThan(linger + 200);
    const s = await statsReturned(tenant);
    expect(s.counters).toMatchObject({ admitted: 2, released: 2, deadlineExceeded: 1, reaped: 0 });
    expectReconciled(s);
  });

  it("drops a deleted tenant's lease when its object answers unconfigured, and serves its requests as anonymous", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("deleted");
    const key = await createTenant(tenant);
    await (await proxied(key)).text();
    expect(leaseOf(tenant)).toBeDefined();
    // Deleted as another isolate's admin call would: this isolate still has the key cached.
    await tenantStub(tenant).destroy();
    await until(() => leaseOf(tenant) === undefined, 200);
    expect(leaseOf(tenant)).toBeUndefined();
    const response = await proxied(key);
    expect(response.status).toBe(200);
    await response.text();
    expect(origin.requests.map((r) => r.headers.get("x-guard-tenant"))).toEqual([tenant, "anonymous"]);
    const s = await stats(tenant);
    expect(s.limits).toBeNull();
    expect(s.state.leases.holders).toBe(0);
  });

  it("fails closed when the tenant object throws: 503 guard_unavailable, nothing forwarded", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("broken");
    const key = await createTenant(tenant);
    const objects = switchableObjects();
    objects.set("throw");
    const guard = recordingGuard({ TENANT_GUARD: objects.namespace });
    for (let i = 0; i < 2; i += 1) {
      const { response, body } = await guard.send(key);
      expect(response.status).toBe(503);
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(body)).toMatchObject({ reason: "guard_unavailable" });
    }
    expect(origin.requests).toHaveLength(0);
    expect(guard.events.map((e) => [e.reason, e.stage])).toEqual([
      ["guard_unavailable", "guard"],
      ["guard_unavailable", "guard"],
    ]);
  });

  it("admits on a lease it still holds while the object throws, and fails closed once the lease ran out", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("outage");
    const key = await createTenant(tenant);
    const objects = switchableObjects();
    const guard = recordingGuard({ TENANT_GUARD: objects.namespace });
    expect((await guard.send(key)).response.status).toBe(200);
    objects.set("throw");
    expect((await guard.send(key)).response.status).toBe(200);
    const validUntil = leaseOf(tenant)?.validUntil ?? 0;
    expect(validUntil).toBeLessThanOrEqual(Date.now() + LEASE_TIMING.ttlMs);
    await until(() => Date.now() > validUntil, 1000);
    const { response, body } = await guard.send(key);
    expect(response.status).toBe(503);
    expect(JSON.parse(body)).toMatchObject({ reason: "guard_unavailable" });
    expect(origin.requests).toHaveLength(2);
  });
});
