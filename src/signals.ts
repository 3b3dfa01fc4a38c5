import type { Priority } from "./admission/priority";
import { retryAfterSeconds } from "./admission/retry-after";
import type { ShedReason } from "./admission/shed-reason";
import { GUARD_PROBLEM_BASE, problemResponse } from "./problem";
import { CONCURRENCY_POLICY, RATE_POLICY, setRateLimitFields } from "./ratelimit-fields";
import type { Quota } from "./lease/lease-protocol";

const IANA = "https://iana.org/assignments/http-problem-types#";

interface ShedMapping {
  readonly status: 429 | 503 | 504;
  readonly type: string;
  readonly title: string;
  readonly violated: readonly string[];
  readonly detail: (signal: ShedSignal) => string;
}

const quotaExceeded = { status: 429, type: `${IANA}quota-exceeded`, title: "Quota Exceeded" } as const;
const reducedCapacity = {
  status: 503,
  type: `${IANA}temporary-reduced-capacity`,
  title: "Temporary Reduced Capacity",
} as const;

/**
 * Every shed reason's response. Exhaustive: a new reason without an entry does not compile.
 * 429 means "you are over your rate"; 503 means "we are over capacity for you right now".
 */
const SHED_RESPONSES: Record<ShedReason, ShedMapping> = {
  rate_limited: {
    ...quotaExceeded,
    violated: [RATE_POLICY],
    detail: (s) => `tenant '${s.tenant}' is over its rate of ${s.quota.rate}/s (burst ${s.quota.burst})`,
  },
  queue_full: {
    ...reducedCapacity,
    violated: [CONCURRENCY_POLICY],
    detail: (s) =>
      `all ${s.quota.maxInFlight} slots are busy and the wait queue is full (${s.quota.queued}/${s.quota.maxQueue}) ` +
      `with requests of priority '${s.priority}' or higher`,
  },
  evicted: {
    ...reducedCapacity,
    violated: [CONCURRENCY_POLICY],
    detail: (s) => `a higher-priority request took this '${s.priority}' request's place in the full wait queue`,
  },
  wait_exceeds_deadline: {
    ...reducedCapacity,
    violated: [CONCURRENCY_POLICY],
    detail: () => `the expected wait for a slot exceeds what is left of this request's budget`,
  },
  queue_timeout: {
    ...reducedCapacity,
    violated: [CONCURRENCY_POLICY],
    detail: (s) => `waited ${s.waitedMs} ms in the queue without getting a slot`,
  },
  deadline_exceeded: {
    status: 504,
    type: `${GUARD_PROBLEM_BASE}deadline-exceeded`,
    title: "Deadline Exceeded",
    violated: [],
    detail: (s) => `the origin did not answer within the request's deadline budget of ${s.budgetMs} ms`,
  },
  guard_unavailable: {
    ...reducedCapacity,
    violated: [],
    detail: () => "admission control is unavailable; the guard fails closed",
  },
  anonymous_saturated: {
    ...reducedCapacity,
    violated: [CONCURRENCY_POLICY],
    detail: () =>
      "requests without a registered API key or token are at their shared bound; send your key or token, or retry later",
  },
  connections_full: {
    ...reducedCapacity,
    violated: [],
    detail: (s) => `tenant '${s.tenant}' has all the WebSocket connections it may hold open (maxConnections)`,
  },
  origin_saturated: {
    ...reducedCapacity,
    violated: [],
    detail: (s) =>
      `the origin is at its limit for priority '${s.priority}' and above, and no slot frees within this request's budget`,
  },
  origin_backoff: {
    ...reducedCapacity,
    violated: [],
    detail: () => "the origin asked for no traffic until Retry-After (it answered 503 with Retry-After)",
  },
  origin_rate_limited: {
    ...quotaExceeded,
    violated: [],
    detail: (s) => `the origin asked for none of tenant '${s.tenant}'s traffic until Retry-After (it answered 429)`,
  },
};

export interface ShedSignal {
  readonly reason: ShedReason;
  /** When capacity is expected back, before jitter. */
  readonly retryAfterMs: number;
  readonly quota: Quota;
  readonly tenant: string;
  readonly priority: Priority;
  readonly waitedMs: number;
  readonly budgetMs: number;
}

export function shedStatus(reason: ShedReason): number {
  return SHED_RESPONSES[reason].status;
}

/** The full shed answer: status, jittered Retry-After, RateLimit fields, problem+json. */
export function shedResponse(signal: ShedSignal, random: () => number = Math.random): Response {
  const mapping = SHED_RESPONSES[signal.reason];
  const retryAfter = retryAfterSeconds(signal.retryAfterMs, random);
  const headers = new Headers({ "retry-after": String(retryAfter) });
  setRateLimitFields(headers, signal.quota, { policies: mapping.violated, retryAfterSeconds: retryAfter });
  return problemResponse(
    {
      type: mapping.type,
      title: mapping.title,
      status: mapping.status,
      detail: mapping.detail(signal),
      reason: signal.reason,
      tenant: signal.tenant,
      priority: signal.priority,
      "retry-after-seconds": retryAfter,
      ...(mapping.violated.length > 0 ? { "violated-policies": mapping.violated } : {}),
    },
    headers,
  );
}

/** A quota to report when the object could not be asked: nothing left, limits as configured. */
export function pessimisticQuota(limits: Pick<Quota, "rate" | "burst" | "maxInFlight" | "maxQueue">): Quota {
  return {
    ...limits,
    tokens: 0,
    inFlight: limits.maxInFlight,
    queued: limits.maxQueue,
    msUntilFull: Math.ceil((limits.burst * 1000) / limits.rate),
  };
}
