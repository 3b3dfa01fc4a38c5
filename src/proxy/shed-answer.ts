import { CLIENT_GONE_STATUS } from "../guard-errors";
import type { ShedReason } from "../admission/shed-reason";
import type { DecisionEvent, DecisionSink } from "../analytics";
import { pessimisticQuota, shedResponse } from "../signals";
import type { Quota } from "../lease/lease-protocol";
import type { Admitted, Plan } from "./plan";

/** The fields every decision record takes from the request and its plan. */
export function planEvent(request: Request, plan: Plan) {
  return {
    tenant: plan.identity.tenant.name,
    priority: plan.priority,
    route: plan.route,
    method: request.method,
    budgetMs: plan.budgetMs,
  };
}

export interface ShedContext {
  readonly sink: DecisionSink;
  readonly random: () => number;
}

export interface ShedFacts {
  readonly reason: ShedReason;
  readonly retryAfterMs: number;
  /** The tenant's quota when decided; null when no object was asked (a pessimistic one is sent). */
  readonly quota: Quota | null;
  readonly waitedMs: number;
  readonly stage: DecisionEvent["stage"];
  readonly decidedAt?: Admitted["decidedAt"];
  readonly originMs?: number;
  readonly originLimit?: number;
}

/** The shed answer, with its decision record. */
export function shed(ports: ShedContext, request: Request, plan: Plan, facts: ShedFacts): Response {
  const quota = facts.quota ?? pessimisticQuota(plan.identity.tenant.config);
  const response = shedResponse(
    {
      reason: facts.reason,
      retryAfterMs: facts.retryAfterMs,
      quota,
      tenant: plan.identity.tenant.name,
      priority: plan.priority,
      waitedMs: facts.waitedMs,
      budgetMs: plan.budgetMs,
    },
    ports.random,
  );
  ports.sink.record({
    ...planEvent(request, plan),
    outcome: facts.reason === "deadline_exceeded" ? "error" : "shed",
    reason: facts.reason,
    decidedAt: facts.decidedAt ?? "object",
    stage: facts.stage,
    queueWaitMs: facts.waitedMs,
    queueDepth: quota.queued,
    status: response.status,
    originMs: facts.originMs ?? 0,
    inFlight: quota.inFlight,
    originLimit: facts.originLimit ?? 0,
  });
  return response;
}

/** The client went away: nobody is there to read an answer, so the status is for the logs only. */
export function clientGone(): Response {
  return new Response(null, { status: CLIENT_GONE_STATUS });
}
