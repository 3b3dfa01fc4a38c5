import { afterEach, describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import {
  createExecutionContext,
  evictDurableObject,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { createApp } from "../../src/app";
import { applyAnswer, arrive, finish, freeSlot, newEdgeLease, pump, startRenewal } from "../../src/lease/edge-lease";
import { LEASE_TIMING } from "../../src/lease/lease-protocol";
import { clearTenantLeases } from "../../src/proxy/tenant-stage";
import type { TenantGuard } from "../../src/tenant-guard";
import { type FakeOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import {
  LIMITS,
  admin,
  createTenant,
  expectReconciled,
  proxied,
  recordingGuard,
  stats,
  statsReturned,
  statsWhen,
  tenantStub,
  uniqueTenant,
} from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => origin?.restore());

async function flushed(tenant: string) {
  await runInDurableObject(tenantStub(tenant), (instance: TenantGuard) => instance.flush());
}

describe("persistence", () => {
  it("keeps limits, counters and the bucket across an eviction of the object", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("persist");
    const key = await createTenant(tenant, { rate: 0.01, burst: 2, maxWaitMs: 100 });
    await (await proxied(key)).text();
    await (await proxied(key)).text();
    // Given back: the counters are final and no token is out at the isolate.
    await statsReturned(tenant);
    await flushed(tenant);
    await evictDurableObject(tenantStub(tenant));
    const after = await stats(tenant);
    expect(after.limits).toMatchObject({ rate: 0.01, burst: 2 });
    expect(after.counters).toMatchObject({ arrived: 2, admitted: 2, released: 2 });
    // A restart must not hand out a fresh burst.
    expect(after.state.tokens).toBeLessThan(1);
    const refused = await proxied(key);
    expect(refused.status).toBeGreaterThanOrEqual(429);
    await refused.text();
    expect(origin.requests).toHaveLength(2);
  });

  it("refuses at once with 429 a request whose cold lease the object can give no token", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("coldrate");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1, maxWaitMs: 100 });
    await (await proxied(key)).text();
    // The isolate gives its lease back once idle: the next request finds it cold.
    await statsReturned(tenant);
    const sentAt = Date.now();
    const refused = await proxied(key);
    expect(((await refused.json()) as { reason: string }).reason).toBe("rate_limited");
    expect(Date.now() - sentAt).toBeLessThan(100);
  });

  it("keeps serving the isolate's queue when the object restarts mid-queue", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("restart");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 2, maxWaitMs: 5000 });
    const running = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    const queued = proxied(key);
    await statsWhen(tenant, (s) => s.state.queued === 1);
    await flushed(tenant);
    // abort() resets the object as a crash would; the call itself rejects with the reason.
    await runInDurableObject(tenantStub(tenant), (_instance, state) => state.abort("test restart")).catch(
      () => undefined,
    );
    // The queue and the slot are the isolate's: the waiter gets the slot the running request frees.
    held.releaseNext();
    await (await running).text();
    for (let turn = 0; turn < 200 && held.waiting < 1; turn += 1) await scheduler.wait(5);
    held.releaseNext();
    expect(await (await queued).text()).toBe("done");
    // The restored object takes the isolate's next cumulative report as if it had never stopped.
    const after = await statsReturned(tenant);
    expect(after.limits).toMatchObject({ maxInFlight: 1 });
    expect(after.counters).toMatchObject({ arrived: 2, admitted: 2, released: 2 });
    expectReconciled(after);
  });

  it("reconciles its counters after a restart that lost unwritten reports", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("books");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 2, maxWaitMs: 5000 });
    const running = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    // No flush first: whatever the object had not written is lost with it.
    await runInDurableObject(tenantStub(tenant), (_instance, state) => state.abort("test restart")).catch(
      () => undefined,
    );
    held.releaseNext();
    await (await running).text();
    const next = proxied(key);
    for (let turn = 0; turn < 200 && held.waiting < 1; turn += 1) await scheduler.wait(5);
    held.releaseNext();
    await (await next).text();
    const after = await statsReturned(tenant);
    expect(after.counters.arrived).toBe(2);
    expectReconciled(after);
  });
});

describe("lease reaping", () => {
  it("reclaims the lease of an isolate that vanished, once its lease and longest request ran out", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("reap");
    const key = await createTenant(tenant, { maxInFlight: 4, maxQueue: 2, maxWaitMs: 5000, timeoutMs: 3000 });
    const running = proxied(key);
    const s = await statsWhen(tenant, (x) => x.state.inFlight === 1);
    // The lone isolate holds the whole limit, one slot of it in use.
    expect(s.state.leases).toMatchObject({ holders: 1, slots: 4 });
    // The isolate vanishes: it never reports again, and nothing it held comes back on its own.
    clearTenantLeases();
    const stub = tenantStub(tenant);
    const now = Date.now();
    await runInDurableObject(stub, (instance: TenantGuard) => instance.reapAt(now + LEASE_TIMING.ttlMs + 3000));
    expect((await stats(tenant)).state.leases).toMatchObject({ holders: 1, slots: 4 });
    // Past its lease's validity, its longest request (timeoutMs) and the grace, it is presumed gone.
    await runInDurableObject(stub, (instance: TenantGuard) =>
      instance.reapAt(now + LEASE_TIMING.ttlMs + 3000 + LEASE_TIMING.graceMs + 1),
    );
    const after = await stats(tenant);
    expect(after.state).toMatchObject({ inFlight: 0, leases: { holders: 0, slots: 0 } });
    expect(after.counters).toMatchObject({ holdersReaped: 1, reaped: 1, admitted: 1, released: 0 });
    expectReconciled(after);
    // The reclaimed slots serve the next isolate.
    held.releaseNext();
    await (await running).text();
    const next = proxied(key);
    for (let turn = 0; turn < 200 && held.waiting < 1; turn += 1) await scheduler.wait(5);
    held.releaseNext();
    expect((await next).status).toBe(200);
  });

  it("applies a repeated or overtaken lease report once", async () => {
    const tenant = uniqueTenant("twice");
    await createTenant(tenant);
    const stub = tenantStub(tenant);
    const arrival = {
      id: "a",
      priority: "normal",
      deadline: Date.now() + 1000,
      fullBehaviour: "evict-lowest",
    } as const;
    // A stand-in isolate on the pure lease: ask, get a grant, admit, report.
    let lease = newEdgeLease(crypto.randomUUID(), Date.now());
    lease = arrive(lease, LIMITS, arrival, Date.now()).lease;
    const renewal = startRenewal(lease, LIMITS, 1000, Date.now());
    const granted = await stub.lease(renewal.report);
    if (granted.kind !== "lease") throw new Error("expected a lease");
    lease = pump(applyAnswer(renewal.lease, granted), Date.now()).lease;
    lease = finish(lease, "completed", 5);
    lease = freeSlot(lease, "normal");
    const first = startRenewal(lease, LIMITS, 1000, Date.now());
    await stub.lease(first.report);
    await stub.lease(first.report);
    await stub.lease(renewal.report);
    const after = await stats(tenant);
    expect(after.counters).toMatchObject({ arrived: 1, admitted: 1, released: 1, calls: { lease: 4 } });
    expectReconciled(after);
  });
});

describe("keys and unknown clients", () => {
  it("stops honouring a deleted key: its requests fall back to the anonymous tenant", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("revoke");
    const key = await createTenant(tenant);
    await (await proxied(key)).text();
    const { keys } = (await (await admin("GET", `/tenants/${tenant}/keys`)).json()) as { keys: Array<{ id: string }> };
    expect((await admin("DELETE", `/tenants/${tenant}/keys/${keys[0]!.id}`)).status).toBe(204);
    await (await proxied(key)).text();
    expect(origin.requests.map((r) => r.headers.get("x-guard-tenant"))).toEqual([tenant, "anonymous"]);
  });

  it("refuses unknown keys with 401 when the deployment rejects them", async () => {
    origin = installFakeOrigin();
    const app = createApp();
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request("http://guard.test/x", { headers: { "x-api-key": "nobody-knows-this-key" } }),
      { ...env, UNKNOWN_KEYS: "reject" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(origin.requests).toHaveLength(0);
  });

  it("gives each anonymous client IP its own bucket", async () => {
    origin = installFakeOrigin();
    await admin("PUT", "/tenants/anonymous", { ...LIMITS, rate: 0.01, burst: 1 });
    const from = (ip: string) => proxied("unregistered-key-0000000000", "/x", { headers: { "cf-connecting-ip": ip } });
    expect((await from("192.0.2.10")).status).toBe(200);
    expect((await from("192.0.2.10")).status).toBe(429);
    expect((await from("192.0.2.11")).status).toBe(200);
  });
});

describe("analytics", () => {
  it("records one data point per decision, for admitted and shed requests", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("analytics");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1 });
    const guard = recordingGuard();
    const sent = [await guard.send(key, {}, { path: "/r" }), await guard.send(key, {}, { path: "/r" })];
    await Promise.all(sent.map((s) => s.settled()));
    expect(guard.events).toEqual([
      expect.objectContaining({
        tenant,
        outcome: "admitted",
        reason: "completed",
        status: 200,
        priority: "normal",
        route: "default",
        method: "GET",
      }),
      expect.objectContaining({ tenant, outcome: "shed", reason: "rate_limited", status: 429, decidedAt: "edge" }),
    ]);
  });
});
