/**
 * Why the origin stage refused a request. The cause is what the stage's counters keep; the
 * reason is what the client is told (src/signals.ts maps each to a response).
 */
export const ORIGIN_SHED_CAUSES = [
  /** The class is at its reserved share of the limit and the stage's queue has no place for it. */
  "queue_full",
  /** Its wait for an origin slot would outlast its budget. */
  "wait_exceeds_deadline",
  /** Waited its whole budget in the stage's queue. */
  "queue_timeout",
  /** Gave its queue place to a higher class, or to a tenant under its fair share. */
  "evicted",
  /** The origin answered 503 with Retry-After: everything is held back until then. */
  "backoff",
  /** The origin answered 429 with Retry-After for this tenant: its traffic is held back until then. */
  "tenant_backoff",
] as const;

export type OriginShedCause = (typeof ORIGIN_SHED_CAUSES)[number];

export const ORIGIN_SHED_REASONS = ["origin_saturated", "origin_backoff", "origin_rate_limited"] as const;
export type OriginShedReason = (typeof ORIGIN_SHED_REASONS)[number];

export function reasonOf(cause: OriginShedCause): OriginShedReason {
  switch (cause) {
    case "backoff":
      return "origin_backoff";
    case "tenant_backoff":
      return "origin_rate_limited";
    case "queue_full":
    case "wait_exceeds_deadline":
    case "queue_timeout":
    case "evicted":
      return "origin_saturated";
  }
}
