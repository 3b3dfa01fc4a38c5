import { z } from "zod";
import { PRIORITIES } from "./admission/priority";

/**
 * One data point per decided request, to Workers Analytics Engine (dataset `ingress_guard`).
 * Every request is written (sample interval 1 at write time); Analytics Engine samples on its
 * own above its limits and records that in `_sample_interval`, which queries must weight by.
 *
 * Layout (positional; never reorder, only append):
 *   index1  tenant
 *   blob1   outcome: "admitted" | "shed" | "error"
 *   blob2   reason: shed reason, or the admitted request's end ("completed", "cancelled",
 *           "deadline_exceeded", "origin_failed")
 *   blob3   priority
 *   blob4   route (the matching rule, or "default")
 *   blob5   method
 *   blob6   where it was decided: "edge" (an isolate, on its lease, without a round trip),
 *           "object" (after waiting for a Durable Object's answer: a cold lease, an origin
 *           shard) or "fail-open" (no object could be asked and FAIL_MODE=open let it through)
 *   blob7   the stage that decided: "tenant" (tenant limits), "origin" (origin stage), "forward"
 *           (admitted by every stage; blob2 says how forwarding ended) or "guard" (no object
 *           could be asked: fail-closed sheds and fail-open admissions)
 *   double1 queue wait ms
 *   double2 queue depth when decided
 *   double3 HTTP status sent to the client (0 when the client went away)
 *   double4 origin time ms (0 when not forwarded)
 *   double5 in-flight when decided
 *   double6 deadline budget ms
 *   double7 the origin stage's limit when the request was admitted there (0: stage off or not reached)
 */
export const decisionEventSchema = z.object({
  tenant: z.string().max(96),
  outcome: z.enum(["admitted", "shed", "error"]),
  reason: z.string().max(64),
  priority: z.enum(PRIORITIES),
  route: z.string().max(300),
  method: z.string().max(16),
  decidedAt: z.enum(["object", "edge", "fail-open"]),
  stage: z.enum(["tenant", "origin", "forward", "guard"]),
  queueWaitMs: z.number(),
  queueDepth: z.number(),
  status: z.number(),
  originMs: z.number(),
  inFlight: z.number(),
  budgetMs: z.number(),
  originLimit: z.number(),
});

export type DecisionEvent = z.infer<typeof decisionEventSchema>;

export interface DecisionSink {
  record(event: DecisionEvent): void;
}

/** Writes cannot fail the request: Analytics Engine's write is fire-and-forget by design. */
export function analyticsEngineSink(dataset: AnalyticsEngineDataset | undefined): DecisionSink {
  return {
    record(event) {
      if (!dataset) return;
      try {
        dataset.writeDataPoint(toDataPoint(event));
      } catch (error) {
        console.error("analytics write failed", error);
      }
    },
  };
}

export function toDataPoint(event: DecisionEvent): AnalyticsEngineDataPoint {
  return {
    indexes: [event.tenant],
    blobs: [event.outcome, event.reason, event.priority, event.route, event.method, event.decidedAt, event.stage],
    doubles: [
      event.queueWaitMs,
      event.queueDepth,
      event.status,
      event.originMs,
      event.inFlight,
      event.budgetMs,
      event.originLimit,
    ],
  };
}
