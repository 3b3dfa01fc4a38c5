import { describe, expect, it } from "vitest";
import { PRIORITIES, type Priority } from "../../src/admission/priority";
import {
  type OriginArrivalResult,
  type OriginFeedback,
  type OriginPumpResult,
  type OriginState,
  applyOriginLimits,
  arrive,
  effectiveLimit,
  holdBack,
  initialOriginState,
  learn,
  nextWakeAt,
  pump,
  releaseSlot,
} from "../../src/origin/origin-admission";
import { type OriginLimits, originConfigSchema, shardLimits } from "../../src/origin/origin-config";
import type { OriginArrival, OriginWaiter } from "../../src/origin/origin-waiter";
import { MAX_HOLDS, MAX_SIGHTINGS, SIGHTING_WINDOW_MS } from "../../src/origin/origin-holds";

const T0 = 1_700_000_000_000;
const EVERY_CLASS_ALL = { low: 1, normal: 1, high: 1, critical: 1 };

/** One shard's limits from a config, fixed (not adaptive) unless asked. */
function limitsOf(config: Record<string, unknown> = {}): OriginLimits {
  return shardLimits(originConfigSchema.parse({ maxInFlight: 10, adaptive: false, ...config }), 0);
}

let n = 0;
function arrival(
  tenant = "a",
  priority: Priority = "normal",
  options: { weight?: number; deadlineIn?: number; route?: string } = {},
): OriginArrival {
  n += 1;
  return {
    id: `r${n}`,
    tenant,
    holdParty: tenant,
    method: "GET",
    route: options.route ?? "/v1",
    weight: options.weight ?? 1,
    priority,
    deadline: T0 + (options.deadlineIn ?? 60_000),
  };
}

function feedback(change: Partial<OriginFeedback> = {}): OriginFeedback {
  return {
    tenant: "a",
    holdParty: change.tenant ?? "a",
    method: "GET",
    route: "/v1",
    latencyMs: null,
    drop: false,
    backoffMs: null,
    tenantBackoffMs: null,
    wholeOrigin: false,
    capacity: null,
    ...change,
  };
}

type Slot = Pick<OriginWaiter, "id" | "tenant" | "priority">;

/** Drives the core as an origin shard does: pump before each arrival, pump after each release. */
class Shard {
  state: OriginState;
  now = T0;
  /** Slots held, oldest first. */
  readonly slots: Slot[] = [];
  readonly granted: OriginWaiter[] = [];
  readonly shed: Array<{ waiter: OriginWaiter; cause: string }> = [];

  constructor(
    public limits: OriginLimits,
    state?: OriginState,
  ) {
    this.state = state ?? initialOriginState(limits, T0);
  }

  arrive(a: OriginArrival): OriginArrivalResult {
    this.pump();
    const result = arrive(this.state, this.limits, a, this.now);
    this.state = result.state;
    if (result.outcome.kind === "admit") this.slots.push(a);
    return result;
  }

  /** Arrivals that must each be admitted at once. */
  fill(count: number, tenant = "a", priority: Priority = "critical"): void {
    for (let i = 0; i < count; i += 1) expect(this.arrive(arrival(tenant, priority)).outcome.kind).toBe("admit");
  }

  pump(): OriginPumpResult {
    const result = pump(this.state, this.limits, this.now);
    this.state = result.state;
    this.slots.push(...result.granted);
    this.granted.push(...result.granted);
    this.shed.push(...result.shed);
    return result;
  }

  release(slot: Slot | undefined = this.slots[0], heldMs: number | null = null): OriginPumpResult {
    if (!slot) throw new Error("no slot to release");
    this.slots.splice(this.slots.indexOf(slot), 1);
    this.state = releaseSlot(this.state, slot, heldMs, this.now);
    return this.pump();
  }

  learn(change: Partial<OriginFeedback>): void {
    this.state = learn(this.state, this.limits, feedback(change), this.now);
  }

  at(ms: number): this {
    this.now = T0 + ms;
    return this;
  }

  get queued(): string[] {
    return this.state.queue.map((waiter) => waiter.id);
  }
}

describe("origin admission", () => {
  describe("the limit and class reservations", () => {
    it("admits critical traffic while in flight is under the whole limit, then queues", () => {
      const shard = new Shard(limitsOf());
      shard.fill(10);
      expect(shard.arrive(arrival("a", "critical")).outcome.kind).toBe("queued");
      expect(shard.state.inFlight).toBe(10);
    });

    it.each([
      ["low", 6],
      ["normal", 8],
      ["high", 9],
      ["critical", 10],
    ] as const)("stops %s at %i of a limit of 10 with the default reservations", (priority, cap) => {
      const shard = new Shard(limitsOf());
      const outcomes = Array.from({ length: 12 }, () => shard.arrive(arrival("a", priority)).outcome.kind);
      expect(outcomes.filter((kind) => kind === "admit")).toHaveLength(cap);
      expect(outcomes.slice(cap).every((kind) => kind === "queued")).toBe(true);
      expect(shard.state.inFlightByPriority[priority]).toBe(cap);
    });

    it("admits a critical arrival while low waiters are queued", () => {
      const shard = new Shard(limitsOf());
      shard.fill(6, "a", "low");
      const lowWaiters = [shard.arrive(arrival("a", "low")), shard.arrive(arrival("b", "low"))];
      expect(lowWaiters.map((r) => r.outcome.kind)).toEqual(["queued", "queued"]);
      expect(shard.arrive(arrival("c", "critical")).outcome.kind).toBe("admit");
      expect(shard.state.queue).toHaveLength(2);
    });

    it("lets a higher class pass lower waiters held back by their share, up to its own share", () => {
      const shard = new Shard(limitsOf());
      shard.fill(6, "a", "low");
      shard.arrive(arrival("a", "low"));
      const normals = Array.from({ length: 3 }, () => shard.arrive(arrival("b", "normal")).outcome.kind);
      expect(normals).toEqual(["admit", "admit", "queued"]);
    });

    it("never lets an arrival overtake a queued waiter of its class or higher, even before a pump", () => {
      const limits = limitsOf({ maxInFlight: 1, reservations: EVERY_CLASS_ALL });
      const shard = new Shard(limits);
      shard.fill(1);
      shard.arrive(arrival("a", "high"));
      // A slot frees but nobody pumped yet: the arrival must not take it past the high waiter.
      const freed = releaseSlot(shard.state, shard.slots[0]!, null, shard.now);
      expect(arrive(freed, limits, arrival("b", "high"), T0).outcome.kind).toBe("queued");
      expect(arrive(freed, limits, arrival("b", "normal"), T0).outcome.kind).toBe("queued");
      expect(arrive(freed, limits, arrival("b", "critical"), T0).outcome.kind).toBe("admit");
    });
  });

  describe("serving the queue", () => {
    it("serves one tenant's waiters in arrival order", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 2, reservations: EVERY_CLASS_ALL }));
      shard.fill(2);
      const waiters = Array.from({ length: 5 }, () => arrival("a", "normal"));
      for (const w of waiters) expect(shard.arrive(w).outcome.kind).toBe("queued");
      for (let i = 0; i < 5; i += 1) shard.release();
      expect(shard.granted.map((w) => w.id)).toEqual(waiters.map((w) => w.id));
    });

    it("serves each tenant's waiters in its own arrival order when tenants interleave", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 2, maxQueue: 20, reservations: EVERY_CLASS_ALL }));
      shard.fill(2, "c");
      const waiters = Array.from({ length: 12 }, (_, i) => arrival(i % 3 === 0 ? "a" : "b", "normal"));
      for (const w of waiters) shard.arrive(w);
      for (let i = 0; i < 12; i += 1) shard.release();
      for (const tenant of ["a", "b"]) {
        expect(shard.granted.filter((w) => w.tenant === tenant).map((w) => w.id)).toEqual(
          waiters.filter((w) => w.tenant === tenant).map((w) => w.id),
        );
      }
    });

    it("serves the highest class first", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, reservations: EVERY_CLASS_ALL }));
      shard.fill(1);
      for (const priority of PRIORITIES) shard.arrive(arrival("a", priority));
      for (let i = 0; i < 4; i += 1) shard.release();
      expect(shard.granted.map((w) => w.priority)).toEqual(["critical", "high", "normal", "low"]);
    });

    it("within a class, serves the tenant holding the fewest slots for its weight", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 4, reservations: EVERY_CLASS_ALL }));
      shard.fill(3, "a");
      shard.fill(1, "b");
      const fromA = arrival("a", "normal");
      const fromB = arrival("b", "normal");
      shard.arrive(fromA);
      shard.arrive(fromB);
      // a holds 3 then 2, b holds 1: b first, although a came first.
      shard.release(shard.slots.find((s) => s.tenant === "a"));
      expect(shard.granted.map((w) => w.id)).toEqual([fromB.id]);
    });

    it("gives a tenant of weight 2 about twice the slots of a tenant of weight 1 while both always wait", () => {
      const limits = limitsOf({ maxInFlight: 6, maxQueue: 10, reservations: EVERY_CLASS_ALL });
      const shard = new Shard(limits);
      const weights: Record<string, number> = { light: 1, heavy: 2 };
      const topUp = () => {
        for (const tenant of ["light", "heavy"]) {
          while (shard.state.queue.filter((w) => w.tenant === tenant).length < 3) {
            shard.arrive(arrival(tenant, "normal", { weight: weights[tenant] ?? 1 }));
          }
        }
      };
      topUp();
      for (let cycle = 0; cycle < 600; cycle += 1) {
        shard.release();
        topUp();
      }
      const grants = (tenant: string) => shard.granted.filter((w) => w.tenant === tenant).length;
      expect(grants("heavy") / grants("light")).toBeGreaterThan(1.8);
      expect(grants("heavy") / grants("light")).toBeLessThan(2.2);
      expect(shard.state.inFlightByTenant).toEqual({ light: 2, heavy: 4 });
    });

    it("sheds waiters whose wait ended with queue_timeout", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, maxWaitMs: 1_000, reservations: EVERY_CLASS_ALL }));
      shard.fill(1);
      const waiter = arrival("a", "normal");
      expect(shard.arrive(waiter).outcome).toMatchObject({ waiter: { expiresAt: T0 + 1_000 } });
      expect(shard.at(999).pump().shed).toEqual([]);
      expect(shard.at(1_000).pump().shed).toEqual([
        { waiter: expect.objectContaining({ id: waiter.id }), cause: "queue_timeout" },
      ]);
      expect(shard.state.queue).toEqual([]);
    });

    it("ends a waiter's wait at its deadline when that comes before maxWaitMs", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, maxWaitMs: 5_000, reservations: EVERY_CLASS_ALL }));
      shard.fill(1);
      expect(shard.arrive(arrival("a", "normal", { deadlineIn: 800 })).outcome).toMatchObject({
        kind: "queued",
        waiter: { enqueuedAt: T0, expiresAt: T0 + 800 },
      });
    });
  });

  describe("a full queue", () => {
    const full = () => limitsOf({ maxInFlight: 2, maxQueue: 3, reservations: EVERY_CLASS_ALL });

    it("lets a higher-class arrival evict the lowest-class waiter of the most loaded tenant, its newest", () => {
      const shard = new Shard(full());
      shard.fill(2, "a");
      const aOld = arrival("a", "low");
      const b = arrival("b", "low");
      const aNew = arrival("a", "low");
      for (const w of [aOld, b, aNew]) shard.arrive(w);
      const result = shard.arrive(arrival("c", "normal"));
      expect(result.outcome.kind).toBe("queued");
      expect(result.evicted.map((w) => w.id)).toEqual([aNew.id]);
      expect(shard.queued).toEqual([aOld.id, b.id, expect.any(String)]);
    });

    it("evicts a lower class before a more loaded tenant's waiter of a higher class", () => {
      const shard = new Shard(full());
      shard.fill(2, "a");
      const aNormal = arrival("a", "normal");
      const bLow = arrival("b", "low");
      const aNormal2 = arrival("a", "normal");
      for (const w of [aNormal, bLow, aNormal2]) shard.arrive(w);
      const result = shard.arrive(arrival("c", "high"));
      expect(result.evicted.map((w) => w.id)).toEqual([bLow.id]);
    });

    it("lets a same-class arrival of a lighter tenant evict the heaviest tenant's newest waiter", () => {
      const shard = new Shard(full());
      shard.fill(2, "a");
      const waiters = [arrival("a"), arrival("a"), arrival("a")];
      for (const w of waiters) shard.arrive(w);
      const fromB = arrival("b");
      const result = shard.arrive(fromB);
      expect(result.outcome.kind).toBe("queued");
      expect(result.evicted.map((w) => w.id)).toEqual([waiters[2]?.id]);
      expect(shard.queued).toEqual([waiters[0]?.id, waiters[1]?.id, fromB.id]);
    });

    it("sheds a same-class arrival of the heaviest tenant with queue_full and no room", () => {
      const shard = new Shard(full());
      shard.fill(2, "a");
      for (let i = 0; i < 3; i += 1) shard.arrive(arrival("a"));
      const before = shard.queued;
      const result = shard.arrive(arrival("a"));
      expect(result.outcome).toMatchObject({ kind: "shed", cause: "queue_full", noRoom: true });
      expect(result.evicted).toEqual([]);
      expect(shard.queued).toEqual(before);
    });

    it("weighs tenants: a tenant of weight 3 holding 2 slots is lighter than one of weight 1 holding 1", () => {
      const shard = new Shard(full());
      shard.fill(2, "heavy");
      const waiters = [arrival("light"), arrival("light"), arrival("light")];
      for (const w of waiters) shard.arrive(w);
      // light: (0 + 3) / 1 = 3; the weighted arrival's tenant would hold (2 + 1) / 3 = 1.
      const result = shard.arrive(arrival("heavy", "normal", { weight: 3 }));
      expect(result.evicted.map((w) => w.id)).toEqual([waiters[2]?.id]);
    });

    it("never lets a lower-class arrival evict a higher-class waiter", () => {
      const shard = new Shard(full());
      shard.fill(2, "a");
      for (let i = 0; i < 3; i += 1) shard.arrive(arrival("a", "high"));
      expect(shard.arrive(arrival("b", "normal")).outcome).toMatchObject({ kind: "shed", cause: "queue_full" });
    });

    it("sheds with queue_full and no room when there is no queue at all", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, maxQueue: 0, reservations: EVERY_CLASS_ALL }));
      shard.fill(1);
      expect(shard.arrive(arrival("b")).outcome).toMatchObject({ kind: "shed", cause: "queue_full", noRoom: true });
    });
  });

  describe("waiting against the deadline", () => {
    /** One slot, held, after one release taught the core that a slot is held ~1 000 ms. */
    function busy(config: Record<string, unknown> = {}): Shard {
      const shard = new Shard(limitsOf({ maxInFlight: 1, maxWaitMs: 5_000, reservations: EVERY_CLASS_ALL, ...config }));
      shard.fill(1);
      shard.release(shard.slots[0], 1_000);
      shard.fill(1);
      expect(shard.state.serviceMsEwma).toBe(1_000);
      return shard;
    }

    it("sheds with wait_exceeds_deadline when the expected wait is longer than the budget", () => {
      // Wait 1 000 ms for the slot, then 1 000 ms of service: a deadline 1 900 ms away leaves 900.
      const result = busy().arrive(arrival("b", "normal", { deadlineIn: 1_900 }));
      expect(result.outcome).toEqual({
        kind: "shed",
        cause: "wait_exceeds_deadline",
        retryAfterMs: 1_000,
        expectedWaitMs: 1_000,
        noRoom: false,
        holdScope: null,
      });
    });

    it("queues when the budget covers the expected wait and the service after it", () => {
      const result = busy().arrive(arrival("b", "normal", { deadlineIn: 2_100 }));
      expect(result.outcome).toMatchObject({
        kind: "queued",
        expectedWaitMs: 1_000,
        waiter: { expiresAt: T0 + 1_100 },
      });
    });

    it("bounds the budget by maxWaitMs", () => {
      const result = busy({ maxWaitMs: 900 }).arrive(arrival("b", "normal", { deadlineIn: 60_000 }));
      expect(result.outcome).toMatchObject({ kind: "shed", cause: "wait_exceeds_deadline" });
    });

    it("counts every waiter ahead of the arrival in its expected wait", () => {
      const shard = busy();
      shard.arrive(arrival("b"));
      expect(shard.arrive(arrival("c", "normal", { deadlineIn: 10_000 })).outcome).toMatchObject({
        kind: "queued",
        expectedWaitMs: 2_000,
      });
    });

    it("sheds an arrival already past its deadline even with no service time known", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, reservations: EVERY_CLASS_ALL }));
      shard.fill(1);
      expect(shard.arrive(arrival("b", "normal", { deadlineIn: 0 })).outcome).toMatchObject({
        kind: "shed",
        cause: "wait_exceeds_deadline",
        expectedWaitMs: 0,
      });
    });
  });

  describe("the origin's 503 and 429 holds", () => {
    it("holds every tenant back after a 503 with Retry-After and the whole-origin signal, answering with the time left", () => {
      const shard = new Shard(limitsOf());
      shard.learn({ tenant: "a", backoffMs: 5_000, wholeOrigin: true });
      const result = shard.at(1_000).arrive(arrival("b", "critical"));
      expect(result.outcome).toEqual({
        kind: "shed",
        cause: "backoff",
        retryAfterMs: 4_000,
        expectedWaitMs: 4_000,
        noRoom: true,
        holdScope: { kind: "all" },
      });
      expect(shard.state.inFlight).toBe(0);
    });

    it("admits again once the hold ends", () => {
      const shard = new Shard(limitsOf());
      shard.learn({ backoffMs: 5_000 });
      expect(shard.at(4_999).arrive(arrival()).outcome.kind).toBe("shed");
      expect(shard.at(5_000).arrive(arrival()).outcome.kind).toBe("admit");
    });

    it("caps a hold at maxBackoffMs", () => {
      const shard = new Shard(limitsOf({ maxBackoffMs: 30_000 }));
      shard.learn({ backoffMs: 3_600_000 });
      expect(shard.arrive(arrival()).outcome).toMatchObject({ cause: "backoff", retryAfterMs: 30_000 });
    });

    it("keeps the later of two holds", () => {
      const shard = new Shard(limitsOf());
      shard.learn({ backoffMs: 10_000, wholeOrigin: true });
      shard.learn({ backoffMs: 2_000, wholeOrigin: true });
      expect(shard.state.holds.allUntil).toBe(T0 + 10_000);
    });

    it("ignores a Retry-After of 0", () => {
      const shard = new Shard(limitsOf());
      shard.learn({ backoffMs: 0, tenantBackoffMs: 0 });
      expect(shard.arrive(arrival()).outcome.kind).toBe("admit");
    });

    it("sheds the queued waiters with backoff at the next pump", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, reservations: EVERY_CLASS_ALL }));
      shard.fill(1);
      shard.arrive(arrival("a"));
      shard.arrive(arrival("b", "critical"));
      shard.learn({ tenant: "a", backoffMs: 5_000, wholeOrigin: true });
      const result = shard.release();
      expect(result.granted).toEqual([]);
      expect(result.shed.map((s) => s.cause)).toEqual(["backoff", "backoff"]);
      expect(shard.state.queue).toEqual([]);
    });

    it("holds only the tenant a 429 with Retry-After was for", () => {
      const shard = new Shard(limitsOf());
      shard.learn({ tenant: "a", tenantBackoffMs: 2_000 });
      expect(shard.arrive(arrival("a")).outcome).toMatchObject({
        kind: "shed",
        cause: "tenant_backoff",
        retryAfterMs: 2_000,
        noRoom: true,
      });
      expect(shard.arrive(arrival("b")).outcome.kind).toBe("admit");
      expect(shard.at(2_000).arrive(arrival("a")).outcome.kind).toBe("admit");
    });

    it("sheds only the held tenant's waiters with tenant_backoff", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, reservations: EVERY_CLASS_ALL }));
      shard.fill(1, "c");
      const fromA = arrival("a");
      const fromB = arrival("b");
      shard.arrive(fromA);
      shard.arrive(fromB);
      shard.learn({ tenant: "a", tenantBackoffMs: 2_000 });
      const result = shard.pump();
      expect(result.shed).toEqual([{ waiter: expect.objectContaining({ id: fromA.id }), cause: "tenant_backoff" }]);
      expect(shard.queued).toEqual([fromB.id]);
    });

    it("learns a hold from another shard in its scope, capped at maxBackoffMs", () => {
      const limits = limitsOf({ maxBackoffMs: 10_000 });
      const fresh = initialOriginState(limits, T0);
      const everyone = holdBack(fresh, limits, { scope: { kind: "all" }, untilMs: T0 + 3_000 }, T0);
      expect(everyone.holds.allUntil).toBe(T0 + 3_000);
      const one = holdBack(fresh, limits, { scope: { kind: "party", party: "a" }, untilMs: T0 + 60_000 }, T0);
      expect(one.holds.allUntil).toBe(0);
      expect(one.holds.scoped).toEqual({ "p a": T0 + 10_000 });
      expect(one.adaptive).toEqual(fresh.adaptive);
    });
  });

  describe("a 503 holds what the origin said it for", () => {
    it("holds only the party that got it, on that route class", () => {
      const shard = new Shard(limitsOf());
      shard.learn({ tenant: "a", route: "/v1", backoffMs: 5_000 });
      expect(shard.arrive(arrival("a", "normal", { route: "/v1" })).outcome).toMatchObject({
        kind: "shed",
        cause: "backoff",
        holdScope: { kind: "party-route", party: "a", route: "/v1" },
      });
      expect(shard.arrive(arrival("a", "normal", { route: "/v2" })).outcome.kind).toBe("admit");
      expect(shard.arrive(arrival("b", "critical", { route: "/v1" })).outcome.kind).toBe("admit");
    });

    it("does not widen a hold on one party's answers, however many", () => {
      const shard = new Shard(limitsOf());
      for (let i = 0; i < 20; i += 1) shard.learn({ tenant: "a", route: `/r${i % 3}`, backoffMs: 5_000 });
      expect(shard.arrive(arrival("b", "normal", { route: "/r0" })).outcome.kind).toBe("admit");
      expect(shard.state.holds.allUntil).toBe(0);
    });

    it("holds the route for everyone once ROUTE_QUORUM parties got it there", () => {
      const shard = new Shard(limitsOf());
      shard.learn({ tenant: "a", route: "/v1", backoffMs: 5_000 });
      shard.at(100).learn({ tenant: "b", route: "/v1", backoffMs: 5_000 });
      expect(shard.arrive(arrival("c", "critical", { route: "/v1" })).outcome).toMatchObject({
        cause: "backoff",
        holdScope: { kind: "route", route: "/v1" },
      });
      expect(shard.arrive(arrival("c", "normal", { route: "/v2" })).outcome.kind).toBe("admit");
    });

    it("holds the whole origin once GLOBAL_QUORUM parties got it, on any routes", () => {
      const shard = new Shard(limitsOf());
      shard.learn({ tenant: "a", route: "/v1", backoffMs: 5_000 });
      shard.learn({ tenant: "b", route: "/v2", backoffMs: 5_000 });
      expect(shard.arrive(arrival("d", "normal", { route: "/v9" })).outcome.kind).toBe("admit");
      shard.learn({ tenant: "c", route: "/v3", backoffMs: 5_000 });
      expect(shard.arrive(arrival("d", "normal", { route: "/v9" })).outcome).toMatchObject({
        cause: "backoff",
        holdScope: { kind: "all" },
      });
    });

    it("does not hold every route for one route's 503s, however many parties got them", () => {
      const shard = new Shard(limitsOf());
      for (const tenant of ["a", "b", "c", "d"]) shard.learn({ tenant, route: "/maint", backoffMs: 5_000 });
      expect(shard.arrive(arrival("e", "normal", { route: "/maint" })).outcome.kind).toBe("shed");
      expect(shard.arrive(arrival("e", "normal", { route: "/other" })).outcome.kind).toBe("admit");
      expect(shard.state.holds.allUntil).toBe(0);
    });

    it("counts every anonymous address as one voice in the agreement", () => {
      const shard = new Shard(limitsOf());
      for (const [ip, route] of [
        ["1.1.1.1", "/a"],
        ["2.2.2.2", "/b"],
        ["3.3.3.3", "/c"],
        ["4.4.4.4", "/a"],
      ]) {
        shard.learn({ tenant: "anonymous", holdParty: `anonymous:${ip}`, route, backoffMs: 5_000 });
      }
      expect(shard.state.holds.allUntil).toBe(0);
      expect(shard.arrive(arrival("acme", "normal", { route: "/a" })).outcome.kind).toBe("admit");
      // Each address is still held itself on the route it got the 503 for.
      const held = arrival("anonymous", "normal", { route: "/a" });
      expect(shard.arrive({ ...held, holdParty: "anonymous:1.1.1.1" }).outcome.kind).toBe("shed");
    });

    it("forms the agreement across shards from the 503s a sibling passes on", () => {
      const limits = limitsOf();
      let state = initialOriginState(limits, T0);
      const told = { who: { party: "a", route: "/v1" }, voter: "a", wholeOrigin: false };
      state = holdBack(state, limits, { unavailable: told, untilMs: T0 + 5_000 }, T0);
      state = learn(state, limits, feedback({ tenant: "b", route: "/v1", backoffMs: 5_000 }), T0);
      expect(arrive(state, limits, arrival("c", "critical", { route: "/v1" }), T0).outcome).toMatchObject({
        cause: "backoff",
        holdScope: { kind: "route", route: "/v1" },
      });
    });

    it("forgets answers older than SIGHTING_WINDOW_MS when counting parties", () => {
      const shard = new Shard(limitsOf({ maxBackoffMs: 1_000 }));
      shard.learn({ tenant: "a", route: "/v1", backoffMs: 1_000 });
      shard.at(SIGHTING_WINDOW_MS + 1).learn({ tenant: "b", route: "/v1", backoffMs: 1_000 });
      expect(shard.arrive(arrival("c", "normal", { route: "/v1" })).outcome.kind).toBe("admit");
    });

    it("keeps its maps bounded under a spray of parties and routes", () => {
      const shard = new Shard(limitsOf());
      for (let i = 0; i < MAX_HOLDS + 50; i += 1) {
        shard.learn({ tenant: `p${i}`, holdParty: `p${i}`, route: `/r${i}`, backoffMs: 5_000 });
      }
      expect(Object.keys(shard.state.holds.scoped).length).toBeLessThanOrEqual(MAX_HOLDS);
      expect(Object.keys(shard.state.holds.sightings).length).toBeLessThanOrEqual(MAX_SIGHTINGS);
    });
  });

  describe("the origin's capacity grant", () => {
    it("caps the effective limit until capacityTtlMs, then lapses", () => {
      const limits = limitsOf({ capacityTtlMs: 2_000 });
      const shard = new Shard(limits);
      shard.learn({ capacity: 3 });
      expect(effectiveLimit(shard.state, limits, T0)).toBe(3);
      expect(effectiveLimit(shard.state, limits, T0 + 1_999)).toBe(3);
      expect(effectiveLimit(shard.state, limits, T0 + 2_000)).toBe(10);
    });

    it("admits up to the grant, queues beyond it, and lets the waiters in when it lapses", () => {
      const shard = new Shard(limitsOf({ capacityTtlMs: 2_000, maxWaitMs: 5_000 }));
      shard.learn({ capacity: 3 });
      shard.fill(3);
      const waiter = arrival("a", "critical");
      expect(shard.arrive(waiter).outcome.kind).toBe("queued");
      expect(shard.at(1_999).pump().granted).toEqual([]);
      expect(
        shard
          .at(2_000)
          .pump()
          .granted.map((w) => w.id),
      ).toEqual([waiter.id]);
    });

    it("never raises the limit above the ceiling", () => {
      const limits = limitsOf();
      const state = learn(initialOriginState(limits, T0), limits, feedback({ capacity: 1_000 }), T0);
      expect(effectiveLimit(state, limits, T0)).toBe(10);
    });

    it("sheds every arrival with no room while the origin grants no capacity, until the grant lapses", () => {
      const shard = new Shard(limitsOf({ capacityTtlMs: 2_000 }));
      shard.learn({ capacity: 0 });
      expect(shard.at(500).arrive(arrival("a", "critical")).outcome).toEqual({
        kind: "shed",
        cause: "queue_full",
        retryAfterMs: 1_500,
        expectedWaitMs: 1_500,
        noRoom: true,
        holdScope: null,
      });
      expect(shard.at(2_000).arrive(arrival("a", "critical")).outcome.kind).toBe("admit");
    });

    it("sheds a class with a share of 0 with no room", () => {
      const shard = new Shard(limitsOf({ reservations: { low: 0, normal: 0.8, high: 0.9, critical: 1 } }));
      expect(shard.arrive(arrival("a", "low")).outcome).toMatchObject({
        kind: "shed",
        cause: "queue_full",
        noRoom: true,
      });
      expect(shard.state.inFlight).toBe(0);
    });
  });

  describe("the adaptive limit in force", () => {
    it("uses the adaptive limit's nearest whole number, so jitter's small cuts cost no slot", () => {
      const limits = limitsOf({ adaptive: true, minInFlight: 2 });
      const base = initialOriginState(limits, T0);
      const state: OriginState = { ...base, adaptive: { ...base.adaptive, limit: 4.4 } };
      expect(effectiveLimit(state, limits, T0)).toBe(4);
      expect(effectiveLimit({ ...state, adaptive: { ...base.adaptive, limit: 3.98 } }, limits, T0)).toBe(4);
      expect(effectiveLimit(state, { ...limits, adaptive: false }, T0)).toBe(10);
    });

    it("shrinks the limit after a window of drops", () => {
      const limits = limitsOf({ adaptive: true, minInFlight: 2 });
      const shard = new Shard(limits);
      for (let i = 0; i < 10; i += 1) shard.at(1_000).learn({ drop: true, latencyMs: 50 });
      expect(effectiveLimit(shard.state, limits, shard.now)).toBe(8);
    });
  });

  describe("releasing", () => {
    it("frees the slot and forgets a tenant that holds none", () => {
      const shard = new Shard(limitsOf());
      shard.fill(1, "a", "high");
      shard.fill(1, "b", "low");
      shard.release(shard.slots[0]);
      expect(shard.state.inFlight).toBe(1);
      expect(shard.state.inFlightByTenant).toEqual({ b: 1 });
      expect(shard.state.inFlightByPriority).toEqual({ low: 1, normal: 0, high: 0, critical: 0 });
    });

    it("averages hold times, ignoring releases that say nothing about the origin", () => {
      const shard = new Shard(limitsOf());
      shard.fill(3);
      shard.release(shard.slots[0], 100);
      shard.release(shard.slots[0], null);
      shard.release(shard.slots[0], 200);
      expect(shard.state.serviceMsEwma).toBeCloseTo(120, 9);
    });
  });

  describe("new limits", () => {
    it("trims the queue to the new maxQueue, evicting the newest waiters", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, maxQueue: 5, reservations: EVERY_CLASS_ALL }));
      shard.fill(1);
      const waiters = Array.from({ length: 5 }, () => arrival());
      for (const w of waiters) shard.arrive(w);
      const applied = applyOriginLimits(shard.state, limitsOf({ maxInFlight: 1, maxQueue: 2 }));
      expect(applied.state.queue.map((w) => w.id)).toEqual(waiters.slice(0, 2).map((w) => w.id));
      expect(applied.evicted.map((w) => w.id)).toEqual(waiters.slice(2).map((w) => w.id));
    });

    it("trims the lowest class first, as a full queue evicts, not the newest whatever its class", () => {
      const shard = new Shard(limitsOf({ maxInFlight: 1, maxQueue: 5, reservations: EVERY_CLASS_ALL }));
      shard.fill(1);
      const low = arrival("a", "low");
      const critical = arrival("b", "critical");
      const normal = arrival("c", "normal");
      for (const w of [low, critical, normal]) shard.arrive(w);
      const applied = applyOriginLimits(shard.state, limitsOf({ maxInFlight: 1, maxQueue: 2 }));
      expect(applied.state.queue.map((w) => w.id)).toEqual([critical.id, normal.id]);
      expect(applied.evicted.map((w) => w.id)).toEqual([low.id]);
    });

    it("clamps the adaptive limit into the new bounds", () => {
      const limits = limitsOf({ adaptive: true, maxInFlight: 20 });
      const applied = applyOriginLimits(initialOriginState(limits, T0), limitsOf({ adaptive: true, maxInFlight: 5 }));
      expect(applied.state.adaptive.limit).toBe(5);
      expect(applied.evicted).toEqual([]);
    });
  });

  describe("waking up with no call arriving", () => {
    const oneSlot = (config: Record<string, unknown> = {}) =>
      new Shard(limitsOf({ maxInFlight: 1, maxWaitMs: 5_000, reservations: EVERY_CLASS_ALL, ...config }));

    it("needs no wake-up while nothing waits, whatever holds are in force", () => {
      const shard = oneSlot();
      shard.learn({ backoffMs: 1_000, capacity: 1 });
      expect(nextWakeAt(shard.state, T0)).toBeNull();
    });

    it("wakes at the earliest waiter's expiry", () => {
      const shard = oneSlot();
      shard.fill(1);
      shard.arrive(arrival("a", "normal", { deadlineIn: 4_000 }));
      shard.at(100).arrive(arrival("b", "normal", { deadlineIn: 2_000 }));
      expect(nextWakeAt(shard.state, shard.now)).toBe(T0 + 2_000);
    });

    it("wakes at the end of a hold that ends before any expiry", () => {
      const shard = oneSlot();
      shard.fill(1);
      shard.arrive(arrival());
      shard.learn({ backoffMs: 1_000, wholeOrigin: true });
      expect(nextWakeAt(shard.state, T0)).toBe(T0 + 1_000);
    });

    it("wakes when a capacity grant lapses before any expiry, but not for one that has lapsed", () => {
      const shard = oneSlot({ capacityTtlMs: 500 });
      shard.fill(1);
      shard.learn({ capacity: 1 });
      shard.arrive(arrival());
      expect(nextWakeAt(shard.state, T0)).toBe(T0 + 500);
      expect(nextWakeAt(shard.state, T0 + 500)).toBe(T0 + 5_000);
    });
  });
});
