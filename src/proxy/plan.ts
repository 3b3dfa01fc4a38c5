import { deadlineBudgetMs, parseClientTimeoutMs } from "../admission/deadline";
import type { FullBehaviour } from "../admission/limits";
import type { Priority } from "../admission/priority";
import { effectivePriority } from "../admission/priority-hint";
import type { ReleaseOutcome } from "../admission/counters";
import type { Quota } from "../lease/lease-protocol";
import type { Identity } from "./identity";

/** What the edge decided about a request before asking for admission. */
export interface Plan {
  readonly identity: Identity;
  readonly route: string;
  readonly priority: Priority;
  readonly fullBehaviour: FullBehaviour;
  readonly budgetMs: number;
  readonly deadline: number;
}

/** A request's hold on a tenant slot, however it was admitted. */
export interface Admitted {
  readonly requestId: string;
  readonly waitedMs: number;
  readonly quota: Quota;
  readonly decidedAt: "object" | "edge" | "fail-open";
  /** Gives the slot back; never blocks the response. */
  readonly release: (outcome: ReleaseOutcome) => void;
}

export function plan(request: Request, url: URL, identity: Identity, now: number): Plan {
  const { config, classify } = identity.tenant;
  const routeClass = classify(request.method, url.pathname);
  const priority = effectivePriority(routeClass.priority, request.headers.get("x-priority"), config.maxClientPriority);
  const clientBudget = parseClientTimeoutMs(request.headers.get("x-request-timeout-ms"));
  const budgetMs = deadlineBudgetMs(clientBudget, routeClass.timeoutMs);
  return {
    identity,
    route: routeClass.route,
    priority,
    fullBehaviour: routeClass.fullBehaviour,
    budgetMs,
    deadline: now + budgetMs,
  };
}
