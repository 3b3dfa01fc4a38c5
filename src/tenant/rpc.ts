import { z } from "zod";
import type { ReleaseOutcome } from "../admission/counters";
import { FULL_BEHAVIOURS } from "../admission/limits";
import { PRIORITIES } from "../admission/priority";
import type { CreditGrant } from "../admission/credit";
import type { Saturation } from "../admission/saturation";
import { ADMISSION_SHED_REASONS, type AdmissionShedReason } from "../admission/shed-reason";
import { admissionLimitsSchema } from "./tenant-config";

/**
 * The tenant object's RPC payloads. The Worker builds them, but the object checks them anyway:
 * it is the state's last line of defence and a bad payload must not corrupt a tenant.
 */
/** At most one entry per reason and priority: 5 x 4. */
export const localShedBatchSchema = z
  .array(
    z.strictObject({
      reason: z.enum(ADMISSION_SHED_REASONS),
      priority: z.enum(PRIORITIES),
      count: z.number().int().min(1).max(1_000_000),
    }),
  )
  .max(ADMISSION_SHED_REASONS.length * PRIORITIES.length);

export const admitRequestSchema = z.strictObject({
  priority: z.enum(PRIORITIES),
  deadline: z.number().finite(),
  fullBehaviour: z.enum(FULL_BEHAVIOURS),
  /**
   * Limits carried by the request, for objects that have none of their own: the per-client-IP
   * buckets of the anonymous tenant. Named tenants' objects ignore it and use their stored config.
   */
  limits: admissionLimitsSchema.optional(),
  /** Hot tenants: the isolate would take a credit with this admission (one request at a time asks). */
  wantCredit: z.boolean().optional(),
  /** Sheds this isolate decided for the object since it last reported, piggybacked. */
  localSheds: localShedBatchSchema.optional(),
});

export type AdmitRequest = z.infer<typeof admitRequestSchema>;

/** The numbers behind the RateLimit fields, read at the same `now` as the decision. */
export interface Quota {
  readonly rate: number;
  readonly burst: number;
  readonly tokens: number;
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly queued: number;
  readonly maxQueue: number;
  /** Until the bucket is full again. */
  readonly msUntilFull: number;
}

export type AdmitDecision =
  | {
      readonly kind: "admit";
      readonly leaseId: string;
      readonly waitedMs: number;
      readonly quota: Quota;
      /** Hot tenants: tokens and slots this isolate may spend itself before asking again. */
      readonly credit: CreditGrant | null;
    }
  | {
      readonly kind: "shed";
      readonly reason: AdmissionShedReason;
      /** When capacity is expected for this request, before jitter. */
      readonly retryAfterMs: number;
      readonly waitedMs: number;
      readonly quota: Quota;
      /** How long, and for which priorities, the edge may give the same answer itself. */
      readonly saturation: Saturation | null;
    }
  /** The object has no limits: the tenant was deleted (or never configured). */
  | { readonly kind: "unconfigured" };

export type { ReleaseOutcome };

const countsByPriority = z.strictObject(
  Object.fromEntries(PRIORITIES.map((p) => [p, z.number().int().min(0).max(1_000)])) as Record<
    (typeof PRIORITIES)[number],
    z.ZodNumber
  >,
);

export const creditReportSchema = z.strictObject({
  used: z.number().int().min(0).max(1_000),
  byPriority: countsByPriority,
  outcomes: z.strictObject({
    completed: z.number().int().min(0).max(1_000),
    cancelled: z.number().int().min(0).max(1_000),
    deadline_exceeded: z.number().int().min(0).max(1_000),
    origin_failed: z.number().int().min(0).max(1_000),
    not_forwarded: z.number().int().min(0).max(1_000),
    abandoned: z.number().int().min(0).max(1_000),
  }),
});
