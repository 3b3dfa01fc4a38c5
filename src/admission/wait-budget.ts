import type { AdmissionLimits, Arrival } from "./limits";

/**
 * How long `arrival` may wait in a queue, from `now`. The wait must leave the origin its
 * expected service time (`serviceMs`, the hold-time average) before the deadline: a request
 * admitted with less than that left would only come back as a 504 after using a slot.
 */
export function waitBudgetMs(
  limits: Pick<AdmissionLimits, "maxWaitMs">,
  arrival: Pick<Arrival, "deadline" | "fullBehaviour">,
  now: number,
  serviceMs: number | null = null,
): number {
  const untilDeadline = arrival.deadline - now - (serviceMs ?? 0);
  if (arrival.fullBehaviour === "block") return untilDeadline;
  return Math.min(limits.maxWaitMs, untilDeadline);
}
