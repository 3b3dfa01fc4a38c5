import { z } from "zod";
import type { Counters } from "../admission/counters";
import { emptyCounters } from "../admission/counters";
import type { Lease } from "../admission/leases";
import type { BucketState } from "../admission/token-bucket";
import { RecordTable } from "../storage/record-table";
import { admissionLimitsSchema, tenantConfigSchema, type TenantConfig } from "./tenant-config";

/**
 * The tenant object's storage: three records in one RecordTable.
 * - `config`: the limits and routes, written when an admin changes them (rare, synchronous).
 * - `keys`: the API key records (hashes only), written on key changes.
 * - `runtime`: bucket, counters and leases, written in batches (see FLUSH_INTERVAL_MS in
 *   tenant-guard.ts) so the hot path does not wait on a storage write per request.
 * Every record is parsed with its schema on load: a record written by an older version, or
 * damaged, is dropped with a log line instead of poisoning the object.
 */
/** A credit handed to an isolate: its tokens and slots are out of the object's hands until returned. */
export interface CreditLease {
  readonly id: string;
  readonly tokens: number;
  readonly grantedAt: number;
  readonly reclaimAt: number;
}

export interface KeyRecord {
  readonly id: string;
  readonly hash: string;
  readonly createdAt: number;
  /** First characters of the key, to tell keys apart in listings; never enough to use it. */
  readonly hint: string;
}

export interface RuntimeRecord {
  readonly bucket: BucketState;
  readonly holdMsEwma: number | null;
  readonly counters: Counters;
  readonly leases: readonly Lease[];
  readonly credits: readonly CreditLease[];
  /** Limits carried by requests, for objects without a config (anonymous per-IP buckets). */
  readonly carriedLimits: z.infer<typeof admissionLimitsSchema> | null;
  readonly lastActiveAt: number;
}

const keyRecordSchema = z.object({
  id: z.string(),
  hash: z.string(),
  createdAt: z.number(),
  hint: z.string(),
});

const countMap = z.record(z.string(), z.number());
const runtimeSchema = z.object({
  bucket: z.object({ tokens: z.number(), updatedAt: z.number() }),
  holdMsEwma: z.number().nullable(),
  counters: z
    .object({
      arrived: z.number(),
      admitted: z.number(),
      admittedByPriority: countMap,
      shed: z.number(),
      shedByReason: countMap,
      shedByPriority: countMap,
      queuedEver: z.number(),
      released: z.number(),
      reaped: z.number(),
      deadlineExceeded: z.number(),
      originFailed: z.number(),
      notForwarded: z.number(),
      shedAtEdge: z.number(),
      admittedOnCredit: z.number(),
      creditsReaped: z.number(),
      calls: z.object({ admit: z.number(), release: z.number(), reportSheds: z.number(), returnCredit: z.number() }),
    })
    .partial(),
  leases: z.array(
    z.object({
      id: z.string(),
      priority: z.enum(["low", "normal", "high", "critical"]),
      admittedAt: z.number(),
      expiresAt: z.number(),
      lingering: z.boolean(),
    }),
  ),
  credits: z
    .array(z.object({ id: z.string(), tokens: z.number(), grantedAt: z.number(), reclaimAt: z.number() }))
    .default([]),
  carriedLimits: admissionLimitsSchema.nullable(),
  lastActiveAt: z.number(),
});

export class TenantStore {
  private readonly table: RecordTable;

  constructor(sql: SqlStorage) {
    this.table = new RecordTable(sql, "tenant");
  }

  loadConfig(): TenantConfig | null {
    return this.table.parsed("config", tenantConfigSchema);
  }

  saveConfig(config: TenantConfig): void {
    this.table.write("config", config);
  }

  loadKeys(): KeyRecord[] {
    return this.table.parsed("keys", z.array(keyRecordSchema)) ?? [];
  }

  saveKeys(keys: readonly KeyRecord[]): void {
    this.table.write("keys", keys);
  }

  loadRuntime(): RuntimeRecord | null {
    const stored = this.table.parsed("runtime", runtimeSchema);
    if (!stored) return null;
    // Counters added in later versions start at zero instead of failing the whole record.
    const counters = { ...emptyCounters(), ...stored.counters } as Counters;
    return { ...stored, counters };
  }

  saveRuntime(runtime: RuntimeRecord): void {
    this.table.write("runtime", runtime);
  }

  deleteAll(): void {
    this.table.deleteAll();
  }
}
