import { deadlineBudgetMs, parseClientTimeoutMs } from "../admission/deadline";
import type { FullBehaviour } from "../admission/limits";
import type { Priority } from "../admission/priority";
import { effectivePriority } from "../admission/priority-hint";
import type { ReleaseOutcome } from "../admission/counters";
import type { Quota } from "../lease/lease-protocol";
import type { Identity } from "./identity";
import { routeMethod, routePrefix } from "../origin/origin-party";

/** What the edge decided about a request before asking for admission. */
export interface Plan {
  readonly identity: Identity;
  /** The tenant's route rule that matched (`default` when none did). */
  readonly route: string;
  /** The request's route class as the origin stage keys it: method and path prefix. */
  readonly originRoute: { readonly method: string; readonly prefix: string };
  readonly priority: Priority;
  readonly fullBehaviour: FullBehaviour;
  readonly budgetMs: number;
  /** The client's `x-request-timeout-ms` cut the route's budget: its deadline is its own. */
  readonly clientBudget: boolean;
  readonly deadline: number;
  /**
   * A streamed route: `deadline` bounds the time to the origin's response headers, and the body
   * may run this long after them (ms). Null: the deadline bounds the whole response.
   */
  readonly maxStreamMs: number | null;
}

/** A request's hold on a tenant slot, however it was admitted. */
export interface Admitted {
  readonly requestId: string;
  readonly waitedMs: number;
  readonly quota: Quota;
  /** Where it was decided, for analytics: read `failOpen` to act on it. */
  readonly decidedAt: "object" | "edge" | "fail-open";
  /** Admitted on this isolate's fail-open limiter, no object asked: that one slot covers every stage. */
  readonly failOpen: boolean;
  /**
   * Gives the slot back; never blocks the response. `servedUntil` (epoch ms) ends the hold-time
   * sample earlier than now: a streamed response's headers, since the hold estimate is what the
   * queue's wait is judged by, and one long stream must not make every short request look late.
   */
  readonly release: (outcome: ReleaseOutcome, servedUntil?: number) => void;
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
    originRoute: { method: routeMethod(request.method), prefix: routePrefix(url.pathname) },
    priority,
    fullBehaviour: routeClass.fullBehaviour,
    budgetMs,
    clientBudget: clientBudget !== null && budgetMs < deadlineBudgetMs(null, routeClass.timeoutMs),
    deadline: now + budgetMs,
    maxStreamMs: routeClass.maxStreamMs,
  };
}
