import { afterEach, describe, expect, it } from "vitest";
import { runInDurableObject } from "cloudflare:test";
import { CREDIT_MAX_BUDGET_MS, CREDIT_USABLE_MS } from "../../src/admission/credit";
import { LEASE_GRACE_MS } from "../../src/admission/leases";
import type { TenantGuard } from "../../src/tenant-guard";
import { type FakeOrigin, heldResponses, installFakeOrigin } from "./fake-origin";
import { createTenant, recordingGuard, stats, statsWhen, tenantStub, uniqueTenant } from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => origin?.restore());

const HOT = { rate: 1000, burst: 1000, maxInFlight: 100, maxQueue: 10, maxWaitMs: 500 };

describe("credit leases for hot tenants", () => {
  it("admit a hot tenant's requests on the isolate's credit, then count them when it goes back", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("hot");
    const key = await createTenant(tenant, HOT);
    const guard = recordingGuard();
    const first = await guard.send(key);
    const rest = [];
    for (let i = 0; i < 10; i += 1) {
      const sent = await guard.send(key);
      expect(sent.response.status).toBe(200);
      rest.push(sent);
    }
    expect(guard.events.map((e) => e.decidedAt)).toEqual(["object", ...Array(10).fill("edge")]);
    expect(origin.requests).toHaveLength(11);
    // Until the credit goes back, the object knows only of the call it answered.
    expect((await stats(tenant)).counters.arrived).toBe(1);
    await first.settled();
    await Promise.all(rest.map((sent) => sent.settled()));
    const after = await statsWhen(tenant, (s) => s.state.creditSlots === 0 && s.state.inFlight === 0);
    expect(after.state).toMatchObject({ inFlight: 0, creditSlots: 0 });
    expect(after.counters).toMatchObject({ arrived: 11, admitted: 11, admittedOnCredit: 10, released: 11 });
  });

  it("never let credits push the origin past maxInFlight", async () => {
    const held = heldResponses();
    origin = installFakeOrigin(held.handler);
    const tenant = uniqueTenant("overshoot");
    const maxInFlight = 16;
    const key = await createTenant(tenant, { ...HOT, maxInFlight, maxQueue: 0 });
    const guard = recordingGuard();
    // One admission first, so the isolate holds a credit when the burst comes.
    const opener = guard.send(key, {}, { read: false });
    for (let turn = 0; turn < 200 && held.waiting < 1; turn += 1) await scheduler.wait(5);
    const sending = [opener, ...Array.from({ length: 39 }, () => guard.send(key, {}, { read: false }))];
    let answered: Array<Awaited<(typeof sending)[number]>> = [];
    const track = sending.map((p) => p.then((s) => answered.push(s)));
    // Sheds answer at once; admissions wait at the origin. Settle when every request is one or the other.
    for (let turn = 0; turn < 500 && answered.length + held.waiting < 40; turn += 1) await scheduler.wait(5);
    expect(answered.length + held.waiting).toBe(40);
    expect(held.waiting).toBeLessThanOrEqual(maxInFlight);
    expect(answered.every((s) => s.response.status === 503)).toBe(true);
    expect((await stats(tenant)).state.inFlight).toBeLessThanOrEqual(maxInFlight);
    while (held.waiting > 0) held.releaseNext();
    await Promise.all(track);
    answered = await Promise.all(sending);
    expect(answered.filter((s) => s.response.status === 200).length).toBeLessThanOrEqual(maxInFlight);
    for (const s of answered) await s.response.text();
    await Promise.all(answered.map((s) => s.settled()));
    expect((await statsWhen(tenant, (s) => s.state.inFlight === 0)).state.inFlight).toBe(0);
    // Some of those admissions were made on credit, without asking the object.
    expect(guard.events.filter((e) => e.outcome === "admitted" && e.decidedAt === "edge").length).toBeGreaterThan(0);
  });

  it("reclaim a credit whose isolate never returned it", async () => {
    const tenant = uniqueTenant("lost");
    await createTenant(tenant, HOT);
    const stub = tenantStub(tenant);
    const grantedAt = Date.now();
    const decision = await stub.admit({
      priority: "normal",
      deadline: grantedAt + 1000,
      fullBehaviour: "evict-lowest",
      wantCredit: true,
    });
    if (decision.kind !== "admit" || !decision.credit) throw new Error("expected an admission with a credit");
    await stub.release(decision.leaseId, "completed");
    const holding = await stats(tenant);
    expect(holding.state).toMatchObject({ inFlight: decision.credit.tokens, creditSlots: decision.credit.tokens });
    const reclaimAt = grantedAt + CREDIT_USABLE_MS + CREDIT_MAX_BUDGET_MS + LEASE_GRACE_MS;
    await runInDurableObject(stub, (instance: TenantGuard) => instance.reapAt(reclaimAt - 1_000));
    expect((await stats(tenant)).state.creditSlots).toBe(decision.credit.tokens);
    await runInDurableObject(stub, (instance: TenantGuard) => instance.reapAt(reclaimAt + 1_000));
    const after = await stats(tenant);
    expect(after.state).toMatchObject({ inFlight: 0, creditSlots: 0 });
    expect(after.counters.creditsReaped).toBe(1);
  });
});
