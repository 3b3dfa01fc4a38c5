import { describe, expect, it } from "vitest";
import { initialOriginState } from "../../src/origin/origin-admission";
import { DEFAULT_RESERVATIONS, type OriginLimits } from "../../src/origin/origin-config";
import { emptyOriginCounters } from "../../src/origin/origin-counters";
import { NO_HOLDS } from "../../src/origin/origin-holds";
import { restoreOriginState } from "../../src/origin/origin-restore";
import type { OriginLease, OriginRuntime } from "../../src/origin/origin-store";

const T0 = 1_700_000_000_000;
const LIMITS: OriginLimits = {
  ceiling: 8,
  floor: 1,
  maxQueue: 8,
  maxWaitMs: 1_000,
  reservations: { ...DEFAULT_RESERVATIONS },
  adaptive: true,
  latencyTolerance: 1.5,
  capacityTtlMs: 10_000,
  maxBackoffMs: 30_000,
};

function lease(id: string, tenant: string): OriginLease {
  return {
    id,
    tenant,
    holdParty: tenant,
    method: "GET",
    route: "/v1",
    priority: "normal",
    admittedAt: T0 - 100,
    expiresAt: T0 + 5_000,
    lingering: false,
  };
}

function runtime(leases: OriginLease[], limit: number): OriginRuntime {
  const adaptive = { ...initialOriginState(LIMITS, T0).adaptive, limit, idle: null };
  return { leases, adaptive, capacity: null, holds: NO_HOLDS, serviceMsEwma: 80, counters: emptyOriginCounters() };
}

describe("an origin shard after a restart", () => {
  it("takes back the slots of the requests still running, by tenant and class", () => {
    const core = restoreOriginState(
      LIMITS,
      runtime([lease("a", "acme"), lease("b", "acme"), lease("c", "zed")], 3),
      T0,
    );
    expect(core).toMatchObject({ inFlight: 3, inFlightByTenant: { acme: 2, zed: 1 }, serviceMsEwma: 80 });
    expect(core.inFlightByPriority.normal).toBe(3);
    expect(core.adaptive.idle).toBeNull();
  });

  it("starts the idle recovery now when nothing is in flight, so a low limit comes back", () => {
    const core = restoreOriginState(LIMITS, runtime([], 2), T0);
    expect(core.adaptive.idle).toEqual({ since: T0, limit: 2 });
  });

  it("starts fresh without a stored record", () => {
    expect(restoreOriginState(LIMITS, null, T0)).toMatchObject({ inFlight: 0, adaptive: { limit: 8 } });
  });
});
