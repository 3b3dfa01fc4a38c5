import { z } from "zod";
import { PRIORITIES } from "../admission/priority";
import type { Lease } from "../admission/leases";
import { RecordTable } from "../storage/record-table";
import type { AdaptiveState } from "./adaptive-limit";
import { NO_HOLDS, type OriginHolds, originHoldsSchema } from "./origin-holds";
import { NO_EVIDENCE } from "./party-evidence";
import { type OriginConfig, originConfigSchema } from "./origin-config";
import { type OriginCounters, emptyOriginCounters, originCountersSchema } from "./origin-counters";

/**
 * An origin shard's storage, like the tenant object's: `placement` (config and shard index)
 * written at once when an admin changes it; `runtime` (leases, adaptive limit, holds, counters)
 * written in batches.
 */
export interface OriginLease extends Lease {
  readonly tenant: string;
  readonly holdParty: string;
  readonly method: string;
  readonly route: string;
}

export interface Placement {
  readonly config: OriginConfig;
  readonly index: number;
}

export interface OriginRuntime {
  readonly leases: readonly OriginLease[];
  readonly adaptive: AdaptiveState;
  readonly capacity: { readonly limit: number; readonly until: number } | null;
  readonly holds: OriginHolds;
  readonly serviceMsEwma: number | null;
  readonly counters: OriginCounters;
}

const placementSchema = z.object({ config: originConfigSchema, index: z.number().int().min(0) });

/**
 * Fields added in later versions default, so that a record written by an older version still
 * loads (its leases above all: a restarted shard must not forget requests still running).
 */
const leaseSchema = z
  .object({
    id: z.string(),
    tenant: z.string(),
    holdParty: z.string().optional(),
    method: z.string().default("OTHER"),
    route: z.string().default("/"),
    priority: z.enum(PRIORITIES),
    admittedAt: z.number(),
    expiresAt: z.number(),
    lingering: z.boolean(),
  })
  .transform((lease) => ({ ...lease, holdParty: lease.holdParty ?? lease.tenant }));

const adaptiveSchema = z.object({
  limit: z.number(),
  lastRatio: z.number().nullable().default(null),
  lastLatencyMs: z.number().nullable(),
  evidence: z
    .object({
      baselines: z.record(z.string(), z.object({ ms: z.number(), seenAt: z.number() })),
      parties: z.record(
        z.string(),
        z.object({ seenAt: z.number(), ratio: z.number().nullable(), dropped: z.boolean().default(false) }),
      ),
    })
    .default(NO_EVIDENCE),
  window: z.object({
    startedAt: z.number(),
    samples: z.number(),
    latencySumMs: z.number(),
    drops: z.number(),
    peakInFlight: z.number(),
    limited: z.boolean().default(false),
    sums: z.array(z.object({ party: z.string(), route: z.string(), sumMs: z.number(), count: z.number() })).default([]),
    dropParties: z.array(z.string()).default([]),
  }),
  idle: z.object({ since: z.number(), limit: z.number() }).nullable().default(null),
});

/**
 * A record of the version before scoped holds kept `backoffUntil` (the whole origin) and
 * `tenantBackoff` (per party): read as today's holds, so a hold in force survives the deploy.
 */
export function holdsOfOlderVersions(stored: unknown): unknown {
  if (typeof stored !== "object" || stored === null || "holds" in stored) return stored;
  const old = stored as { backoffUntil?: unknown; tenantBackoff?: unknown };
  const parties = typeof old.tenantBackoff === "object" && old.tenantBackoff !== null ? old.tenantBackoff : {};
  const scoped = Object.fromEntries(
    Object.entries(parties).flatMap(([party, until]) => (typeof until === "number" ? [[`p ${party}`, until]] : [])),
  );
  const allUntil = typeof old.backoffUntil === "number" ? old.backoffUntil : 0;
  return { ...stored, holds: { allUntil, scoped, sightings: {} } };
}

const runtimeSchema = z.preprocess(
  holdsOfOlderVersions,
  z.object({
    leases: z.array(leaseSchema),
    adaptive: adaptiveSchema,
    capacity: z.object({ limit: z.number(), until: z.number() }).nullable(),
    holds: originHoldsSchema.default(NO_HOLDS),
    serviceMsEwma: z.number().nullable(),
    counters: originCountersSchema.catch(emptyOriginCounters),
  }),
);

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
    // Counters added in later versions read as zero instead of failing the whole record.
    return this.table.parsed("runtime", runtimeSchema);
  }

  saveRuntime(runtime: OriginRuntime): void {
    this.table.write("runtime", runtime);
  }

  deleteAll(): void {
    this.table.deleteAll();
  }
}
