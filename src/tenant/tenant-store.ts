import { z } from "zod";
import type { Counters } from "../admission/counters";
import { emptyCounters } from "../admission/counters";
import { ADMISSION_SHED_REASONS, type AdmissionShedReason } from "../admission/shed-reason";
import { MAX_DEPARTED } from "../lease/lease-book";
import { leaseTallySchema, MAX_HOLDERS } from "../lease/lease-protocol";
import { type ConnectionBook, MAX_CONNECTION_HOLDERS } from "../connections/connection-book";
import { RecordTable } from "../storage/record-table";
import { admissionLimitsSchema, tenantConfigSchema, type TenantConfig } from "./tenant-config";

/**
 * The tenant object's storage: three records in one RecordTable (its keys are rows of their own,
 * in src/tenant/key-table.ts, so no request reads a list that grows with them).
 * - `config`: the limits and routes, written when an admin changes them (rare, synchronous).
 * - `runtime`: bucket, holders' leases and counters, written before a grant is answered and
 *   otherwise in batches (see FLUSH_INTERVAL_MS in tenant-guard.ts).
 * - `connections`: open WebSockets per isolate, written on every open, close and renewal (a
 *   socket is long-lived, so these are rare beside requests).
 * Every record is parsed with its schema on load: a record written by an older version, or
 * damaged, is dropped with a log line instead of poisoning the object.
 */
export interface KeyRecord {
  readonly id: string;
  readonly hash: string;
  readonly createdAt: number;
  /** First characters of the key, to tell keys apart in listings; never enough to use it. */
  readonly hint: string;
  /** The operator's label for the key (a customer's name, say). */
  readonly name?: string | null;
  /** Epoch ms after which the edge refuses the key; none: it never expires. */
  readonly expiresAt?: number | null;
}

export interface RuntimeRecord {
  readonly bucket: { readonly tokens: number; readonly updatedAt: number };
  readonly holders: readonly z.infer<typeof holderSchema>[];
  /** Holders that left or were reclaimed, by their last report (see DepartedHolder in lease-book.ts). */
  readonly departed?: readonly z.infer<typeof departedSchema>[];
  readonly counters: Counters;
  /** Limits carried by requests, for objects without a config (anonymous per-IP buckets). */
  readonly carriedLimits: z.infer<typeof admissionLimitsSchema> | null;
  readonly lastActiveAt: number;
}

const connectionBookSchema = z.strictObject({
  holders: z
    .array(
      z.strictObject({
        id: z.string(),
        open: z.number().int().min(1),
        changedAt: z.number(),
        expiresAt: z.number(),
      }),
    )
    .max(MAX_CONNECTION_HOLDERS),
});

export const keyRecordSchema = z.object({
  id: z.string().min(1).max(64),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.number().int().min(0),
  hint: z.string().max(16),
  name: z.string().max(256).nullable().optional(),
  expiresAt: z.number().int().nullable().optional(),
});

const count = z.number().int().min(0);
const byPriority = z.strictObject({ low: count, normal: count, high: count, critical: count });
const rate = z.number().min(0);

/** One holder's lease as the object keeps it (see src/lease/lease-book.ts). */
const holderSchema = z.strictObject({
  id: z.string(),
  seq: z.number().int(),
  slotsGranted: count,
  slotsReturned: count,
  tokensGranted: count,
  tokensSpent: count,
  tokensReturned: count,
  inUse: byPriority,
  waiting: byPriority,
  wantTokens: count,
  holdMs: z.number().nullable(),
  tally: leaseTallySchema,
  offered: z.strictObject({ low: rate, normal: rate, high: rate, critical: rate }).optional(),
  validUntil: z.number(),
  reclaimAt: z.number(),
});

const departedSchema = z.strictObject({
  id: z.string(),
  seq: z.number().int(),
  tally: leaseTallySchema,
  at: z.number(),
});

const runtimeSchema = z.object({
  bucket: z.object({ tokens: z.number(), updatedAt: z.number() }),
  holders: z.array(holderSchema).max(MAX_HOLDERS),
  departed: z.array(departedSchema).max(MAX_DEPARTED).optional(),
  /** Stored as written; fields added in later versions start at zero (see loadRuntime). */
  counters: z.record(z.string(), z.unknown()),
  carriedLimits: admissionLimitsSchema.nullable(),
  lastActiveAt: z.number(),
});

const countersSchema = z
  .object({
    arrived: count,
    admitted: count,
    admittedByPriority: byPriority,
    shed: count,
    shedByReason: z.strictObject(
      Object.fromEntries(ADMISSION_SHED_REASONS.map((r) => [r, count])) as Record<AdmissionShedReason, typeof count>,
    ),
    shedByPriority: byPriority,
    queuedEver: count,
    gone: count,
    released: count,
    reaped: count,
    deadlineExceeded: count,
    originFailed: count,
    notForwarded: count,
    shedAtEdge: count,
    holdersReaped: count,
    calls: z.strictObject({ lease: count }),
  })
  .partial();

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

  /**
   * The key list of older versions (one record of at most 20): handed over once to the key
   * table (src/tenant/key-table.ts), which holds each key as its own row, and then dropped.
   */
  takeLegacyKeys(): KeyRecord[] {
    const keys = this.table.parsed("keys", z.array(keyRecordSchema)) ?? [];
    this.table.remove("keys");
    return keys;
  }

  loadRuntime(): RuntimeRecord | null {
    const stored = this.table.parsed("runtime", runtimeSchema);
    if (!stored) return null;
    // Counters of older versions are dropped field by field, and new ones start at zero,
    // instead of failing the whole record (which holds the leases).
    const parsed = countersSchema.safeParse(stored.counters);
    const counters: Counters = { ...emptyCounters(), ...(parsed.success ? parsed.data : {}) };
    return { ...stored, counters };
  }

  saveRuntime(runtime: RuntimeRecord): void {
    this.table.write("runtime", runtime);
  }

  loadConnections(): ConnectionBook | null {
    return this.table.parsed("connections", connectionBookSchema);
  }

  saveConnections(book: ConnectionBook): void {
    this.table.write("connections", book);
  }

  deleteAll(): void {
    this.table.deleteAll();
  }
}
