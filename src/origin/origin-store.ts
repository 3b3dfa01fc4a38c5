import { z } from "zod";
import { PRIORITIES } from "../admission/priority";
import type { Lease } from "../admission/leases";
import { RecordTable } from "../storage/record-table";
import type { AdaptiveState } from "./adaptive-limit";
import { type OriginConfig, originConfigSchema } from "./origin-config";
import { type OriginCounters, emptyOriginCounters } from "./origin-counters";

/**
 * An origin shard's storage, like the tenant object's: `placement` (config and shard index)
 * written at once when an admin changes it; `runtime` (leases, adaptive limit, holds, counters)
 * written in batches.
 */
export interface OriginLease extends Lease {
  readonly tenant: string;
}

export interface Placement {
  readonly config: OriginConfig;
  readonly index: number;
}

export interface OriginRuntime {
  readonly leases: readonly OriginLease[];
  readonly adaptive: AdaptiveState;
  readonly capacity: { readonly limit: number; readonly until: number } | null;
  readonly backoffUntil: number;
  readonly tenantBackoff: Readonly<Record<string, number>>;
  readonly serviceMsEwma: number | null;
  readonly counters: OriginCounters;
}

const placementSchema = z.object({ config: originConfigSchema, index: z.number().int().min(0) });

const runtimeSchema = z.object({
  leases: z.array(
    z.object({
      id: z.string(),
      tenant: z.string(),
      priority: z.enum(PRIORITIES),
      admittedAt: z.number(),
      expiresAt: z.number(),
      lingering: z.boolean(),
    }),
  ),
  adaptive: z.object({
    limit: z.number(),
    baselineMs: z.number().nullable(),
    lastLatencyMs: z.number().nullable(),
    window: z.object({
      startedAt: z.number(),
      samples: z.number(),
      latencySumMs: z.number(),
      drops: z.number(),
      peakInFlight: z.number(),
      limited: z.boolean().default(false),
    }),
  }),
  capacity: z.object({ limit: z.number(), until: z.number() }).nullable(),
  backoffUntil: z.number(),
  tenantBackoff: z.record(z.string(), z.number()),
  serviceMsEwma: z.number().nullable(),
  counters: z.record(z.string(), z.unknown()),
});

export class OriginStore {
  private readonly table: RecordTable;

  constructor(sql: SqlStorage) {
    this.table = new RecordTable(sql, "origin");
  }

  loadPlacement(): Placement | null {
    return this.table.parsed("placement", placementSchema);
  }

  savePlacement(placement: Placement): void {
    this.table.write("placement", placement);
  }

  loadRuntime(): OriginRuntime | null {
    const stored = this.table.parsed("runtime", runtimeSchema);
    if (!stored) return null;
    // Counters added in later versions start at zero instead of failing the whole record.
    const counters = { ...emptyOriginCounters(), ...stored.counters } as OriginCounters;
    return { ...stored, counters };
  }

  saveRuntime(runtime: OriginRuntime): void {
    this.table.write("runtime", runtime);
  }

  deleteAll(): void {
    this.table.deleteAll();
  }
}
