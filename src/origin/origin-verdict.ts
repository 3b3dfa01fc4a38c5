import type { Priority } from "../admission/priority";
import { HOLD_SHARE_OF_DRAIN, type Saturation, clampHold } from "../admission/saturation";
import type { OriginOutcome } from "./origin-admission";
import { type OriginShedReason, reasonOf } from "./origin-shed";

/**
 * What an origin-stage shed lets an isolate repeat on its own (see admission/saturation.ts for
 * the tenant stage's verdicts, whose rules these follow). A hold the origin asked for covers
 * every priority until it ends (an isolate re-asks at least once a second); a saturation verdict
 * covers the shed request's class and below, for a quarter of the queue's drain time.
 */
export function originSaturation(
  outcome: Extract<OriginOutcome, { kind: "shed" }>,
  priority: Priority,
  drainMs: number,
  serviceMs: number | null,
): Saturation<OriginShedReason> | null {
  const reason = reasonOf(outcome.cause);
  if (outcome.cause === "backoff" || outcome.cause === "tenant_backoff") {
    return {
      reason,
      coversUpTo: "critical",
      noRoom: true,
      waitMs: outcome.retryAfterMs,
      holdForMs: clampHold(outcome.retryAfterMs),
      retryAfterMs: outcome.retryAfterMs,
      serviceMs: null,
    };
  }
  if (outcome.cause !== "queue_full" && outcome.cause !== "wait_exceeds_deadline") return null;
  // Refused for its own spent budget: says nothing about anyone else's chances.
  if (outcome.cause === "wait_exceeds_deadline" && outcome.expectedWaitMs <= 0) return null;
  return {
    reason,
    coversUpTo: priority,
    noRoom: outcome.noRoom,
    waitMs: outcome.noRoom ? drainMs : outcome.expectedWaitMs,
    holdForMs: clampHold(Math.max(outcome.noRoom ? outcome.retryAfterMs : 0, HOLD_SHARE_OF_DRAIN * drainMs)),
    retryAfterMs: outcome.retryAfterMs,
    serviceMs,
  };
}
