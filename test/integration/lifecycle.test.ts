import { afterEach, describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import {
  createExecutionContext,
  evictDurableObject,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import type { DecisionEvent } from "../../src/analytics";
import { createApp } from "../../src/app";
import { LEASE_GRACE_MS } from "../../src/admission/leases";
import type { TenantGuard } from "../../src/tenant-guard";
import { type FakeOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import {
  LIMITS,
  admin,
  createTenant,
  expectReconciled,
  proxied,
  stats,
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
    const key = await createTenant(tenant, { rate: 0.01, burst: 2 });
    await (await proxied(key)).text();
    await (await proxied(key)).text();
    await statsWhen(tenant, (s) => s.state.inFlight === 0);
    await flushed(tenant);
    await evictDurableObject(tenantStub(tenant));
    const after = await stats(tenant);
    expect(after.limits).toMatchObject({ rate: 0.01, burst: 2 });
    expect(after.counters).toMatchObject({ admitted: 2, released: 2 });
    // A restart must not hand out a fresh burst.
    expect(after.state.tokens).toBeLessThan(1);
    expect((await proxied(key)).status).toBe(429);
  });

  it("answers queued requests when the object restarts mid-queue, instead of losing them", async () => {
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
    const answer = await queued;
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { reason: string }).reason).toBe("guard_unavailable");
    held.releaseNext();
    await (await running).text();
    // The running request's lease was restored from storage and is released as usual.
    const after = await statsWhen(tenant, (s) => s.state.inFlight === 0);
    expect(after.state.inFlight).toBe(0);
    expect(after.limits).toMatchObject({ maxInFlight: 1 });
  });

  it("reconciles its counters after a restart mid-queue once the lost waiter's sheds are known", async () => {
    // The restart loses the in-memory queue: the waiter counted in `arrived` was answered by the
    // Worker (guard_unavailable), not by the object, so the object's books show it as neither.
    // What must hold is the slot side: every admission released, reaped or still held.
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("books");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 2, maxWaitMs: 5000 });
    const running = proxied(key);
    await statsWhen(tenant, (s) => s.state.inFlight === 1);
    await flushed(tenant);
    await runInDurableObject(tenantStub(tenant), (_instance, state) => state.abort("test restart")).catch(
      () => undefined,
    );
    held.releaseNext();
    await (await running).text();
    const after = await statsWhen(tenant, (s) => s.state.inFlight === 0);
    expectReconciled(after);
  });
});

describe("lease reaping", () => {
  it("reclaims a slot whose holder vanished without releasing it", async () => {
    const tenant = uniqueTenant("reap");
    await createTenant(tenant, { maxInFlight: 1 });
    const stub = tenantStub(tenant);
    const deadline = Date.now() + 1000;
    const decision = await stub.admit({ priority: "normal", deadline, fullBehaviour: "evict-lowest" });
    expect(decision.kind).toBe("admit");
    expect((await stats(tenant)).state.inFlight).toBe(1);
    await runInDurableObject(stub, (instance: TenantGuard) => instance.reapAt(deadline + LEASE_GRACE_MS - 1));
    expect((await stats(tenant)).state.inFlight).toBe(1);
    await runInDurableObject(stub, (instance: TenantGuard) => instance.reapAt(deadline + LEASE_GRACE_MS));
    const after = await stats(tenant);
    expect(after.state.inFlight).toBe(0);
    expect(after.counters.reaped).toBe(1);
    expectReconciled(after);
  });

  it("ignores a late or repeated release", async () => {
    const tenant = uniqueTenant("twice");
    await createTenant(tenant);
    const stub = tenantStub(tenant);
    const decision = await stub.admit({
      priority: "normal",
      deadline: Date.now() + 1000,
      fullBehaviour: "evict-lowest",
    });
    if (decision.kind !== "admit") throw new Error("expected admission");
    await stub.release(decision.leaseId, "completed");
    await stub.release(decision.leaseId, "completed");
    await stub.release("no-such-lease", "completed");
    expect((await stats(tenant)).counters.released).toBe(1);
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
    const events: DecisionEvent[] = [];
    const app = createApp({ sink: () => ({ record: (event) => events.push(event) }), random: () => 0 });
    for (let i = 0; i < 2; i += 1) {
      const ctx = createExecutionContext();
      const response = await app.fetch(new Request("http://guard.test/r", { headers: { "x-api-key": key } }), env, ctx);
      await response.text();
      await waitOnExecutionContext(ctx);
    }
    expect(events).toEqual([
      expect.objectContaining({
        tenant,
        outcome: "admitted",
        reason: "completed",
        status: 200,
        priority: "normal",
        route: "default",
        method: "GET",
      }),
      expect.objectContaining({ tenant, outcome: "shed", reason: "rate_limited", status: 429 }),
    ]);
  });
});
