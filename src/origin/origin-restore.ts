/**
 * An origin shard's state after a restart, from what it stored. Pure. The leases come back with
 * their slots (a restarted shard must not forget requests still running); with nothing in flight
 * the quiet that lets the adaptive limit recover starts now.
 */
import { noteIdle } from "./adaptive-limit";
import { type OriginState, initialOriginState } from "./origin-admission";
import type { OriginLimits } from "./origin-config";
import type { OriginRuntime } from "./origin-store";
import { own } from "../own-keys";

export function restoreOriginState(limits: OriginLimits, runtime: OriginRuntime | null, now: number): OriginState {
  let core = initialOriginState(limits, now);
  if (runtime) {
    core = {
      ...core,
      adaptive: runtime.adaptive,
      capacity: runtime.capacity,
      holds: runtime.holds,
      serviceMsEwma: runtime.serviceMsEwma,
    };
    for (const lease of runtime.leases) {
      core = {
        ...core,
        inFlight: core.inFlight + 1,
        inFlightByPriority: {
          ...core.inFlightByPriority,
          [lease.priority]: core.inFlightByPriority[lease.priority] + 1,
        },
        inFlightByTenant: {
          ...core.inFlightByTenant,
          [lease.tenant]: (own(core.inFlightByTenant, lease.tenant) ?? 0) + 1,
        },
      };
    }
  }
  return core.inFlight === 0 ? { ...core, adaptive: noteIdle(core.adaptive, now) } : core;
}
