import { z } from "zod";
import { PRIORITIES } from "../admission/priority";
import type { Saturation } from "../admission/saturation";
import { tenantNameSchema } from "../tenant/tenant-config";
import { ORIGIN_SHED_CAUSES, type OriginShedCause, type OriginShedReason } from "./origin-shed";

/** The origin shard's RPC payloads, checked by the object: its state's last line of defence. */
export const acquireRequestSchema = z.strictObject({
  tenant: tenantNameSchema,
  weight: z.number().positive().max(1_000),
  priority: z.enum(PRIORITIES),
  deadline: z.number().finite(),
  /** Sheds this isolate decided for the shard from a verdict or a hold, piggybacked. */
  localSheds: z
    .array(
      z.strictObject({
        cause: z.enum(ORIGIN_SHED_CAUSES),
        priority: z.enum(PRIORITIES),
        count: z.number().int().min(1).max(1_000_000),
      }),
    )
    .max(ORIGIN_SHED_CAUSES.length * PRIORITIES.length)
    .optional(),
});

export type AcquireRequest = z.infer<typeof acquireRequestSchema>;

export type AcquireDecision =
  | {
      readonly kind: "admit";
      readonly leaseId: string;
      readonly waitedMs: number;
      /** The shard's effective limit when it admitted; what `x-guard-origin-limit` carries. */
      readonly limit: number;
    }
  | {
      readonly kind: "shed";
      readonly reason: OriginShedReason;
      readonly cause: OriginShedCause;
      readonly retryAfterMs: number;
      readonly waitedMs: number;
      /** For the edge: which priorities the same answer covers, and for how long. */
      readonly saturation: Saturation<OriginShedReason> | null;
      /** Set when the answer is a hold of one tenant's traffic, not of the whole origin. */
      readonly tenantHold: boolean;
    }
  /** The stage is off (never configured, deleted, or this shard is past the shard count). */
  | { readonly kind: "disabled" };

export const originReleaseSchema = z.strictObject({
  /** How the request ended: forwarded and answered, or not. */
  outcome: z.enum(["completed", "cancelled", "deadline_exceeded", "origin_failed"]),
  /** The origin's status, 0 when none came. */
  status: z.number().int().min(0).max(999),
  /** Time to the origin's response headers; null when none came. */
  latencyMs: z.number().min(0).max(3_600_000).nullable(),
  /** The origin's Retry-After, when it sent one with a 503 or 429. */
  retryAfterMs: z
    .number()
    .min(0)
    .max(365 * 86_400_000)
    .nullable(),
  /** The origin's capacity header value, when configured and present. */
  capacity: z.number().int().min(0).max(1_000_000).nullable(),
});

export type OriginRelease = z.infer<typeof originReleaseSchema>;
