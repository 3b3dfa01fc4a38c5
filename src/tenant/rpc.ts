import { z } from "zod";
import type { ReleaseOutcome } from "../admission/counters";
import { FULL_BEHAVIOURS } from "../admission/limits";
import { PRIORITIES } from "../admission/priority";
import type { AdmissionShedReason } from "../admission/shed-reason";
import { admissionLimitsSchema } from "./tenant-config";

/**
 * The tenant object's RPC payloads. The Worker builds them, but the object checks them anyway:
 * it is the state's last line of defence and a bad payload must not corrupt a tenant.
 */
export const admitRequestSchema = z.strictObject({
  priority: z.enum(PRIORITIES),
  deadline: z.number().finite(),
  fullBehaviour: z.enum(FULL_BEHAVIOURS),
  /**
   * Limits carried by the request, for objects that have none of their own: the per-client-IP
   * buckets of the anonymous tenant. Named tenants' objects ignore it and use their stored config.
   */
  limits: admissionLimitsSchema.optional(),
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
    }
  | {
      readonly kind: "shed";
      readonly reason: AdmissionShedReason;
      /** When capacity is expected for this request, before jitter. */
      readonly retryAfterMs: number;
      readonly waitedMs: number;
      readonly quota: Quota;
    }
  /** The object has no limits: the tenant was deleted (or never configured). */
  | { readonly kind: "unconfigured" };

export type { ReleaseOutcome };
