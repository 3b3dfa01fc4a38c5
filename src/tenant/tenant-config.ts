import { z } from "zod";
import { FULL_BEHAVIOURS } from "../admission/limits";
import { PRIORITIES } from "../admission/priority";

/**
 * Upper bounds on every number. They keep one tenant's object small (its leases and queue are
 * held in memory and persisted as one record) and stop typos like `maxWaitMs: 2000000`.
 * The queue bound is 1000 because a deeper queue only stores lateness: at the highest drain
 * rates one object sustains (~1000/s, see docs) a second of queue is already ~1000 entries.
 */
export const BOUNDS = {
  rate: 100_000,
  burst: 1_000_000,
  maxInFlight: 5_000,
  maxQueue: 1_000,
  maxWaitMs: 60_000,
  timeoutMs: 300_000,
  /** A streamed body may run this long after its headers: an hour covers a long download or event feed. */
  maxStreamMs: 3_600_000,
  routes: 64,
  routePathLength: 256,
  weight: 1_000,
  /** Open WebSockets per tenant: the count lives in the tenant object as one row per isolate. */
  maxConnections: 100_000,
} as const;

/** Open WebSockets a tenant may hold when its config does not say. */
export const DEFAULT_MAX_CONNECTIONS = 100;

export const TENANT_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9._-]{0,62})$/;

export const tenantNameSchema = z
  .string()
  .regex(TENANT_NAME_PATTERN, "lowercase letters, digits, '.', '_' or '-', 1 to 63 characters");

const timeoutMsSchema = z.number().int().min(1).max(BOUNDS.timeoutMs);

/** A streamed route's body may run this long after its headers when the rule does not say. */
export const DEFAULT_MAX_STREAM_MS = 300_000;

/** `/v1/users/:id/*`: `:name` matches one path segment, `*` matches the rest (any characters). */
const ROUTE_PATH = /^\/[A-Za-z0-9._~!$&'()+,;=:@%*/-]*$/;

export const routeRuleSchema = z
  .strictObject({
    method: z
      .string()
      .regex(/^(\*|[A-Za-z]{1,16})$/, "an HTTP method or '*'")
      .transform((method) => method.toUpperCase())
      .default("*"),
    path: z.string().max(BOUNDS.routePathLength).regex(ROUTE_PATH, "a path pattern starting with '/'"),
    priority: z.enum(PRIORITIES).optional(),
    timeoutMs: timeoutMsSchema.optional(),
    fullBehaviour: z.enum(FULL_BEHAVIOURS).optional(),
    /**
     * A streamed route (server-sent events, downloads): the deadline bounds the time to the
     * origin's response headers, and the body may then run up to `maxStreamMs`, holding its slot.
     */
    stream: z.boolean().optional(),
    maxStreamMs: z.number().int().min(1).max(BOUNDS.maxStreamMs).optional(),
  })
  .refine((rule) => rule.maxStreamMs === undefined || rule.stream === true, {
    path: ["maxStreamMs"],
    message: "applies only to a streamed route: set stream: true",
  });

export const admissionLimitsSchema = z.strictObject({
  rate: z.number().positive().max(BOUNDS.rate),
  burst: z.number().int().min(1).max(BOUNDS.burst),
  maxInFlight: z.number().int().min(1).max(BOUNDS.maxInFlight),
  maxQueue: z.number().int().min(0).max(BOUNDS.maxQueue),
  maxWaitMs: z.number().int().min(0).max(BOUNDS.maxWaitMs),
});

export const tenantConfigSchema = admissionLimitsSchema.extend({
  /** Default deadline budget for this tenant's requests (ms). */
  timeoutMs: timeoutMsSchema.optional(),
  /** Highest priority a client may ask for with `x-priority`. */
  maxClientPriority: z.enum(PRIORITIES).default("normal"),
  /** First match wins; a request matching none gets priority `normal`. */
  routes: z.array(routeRuleSchema).max(BOUNDS.routes).default([]),
  /**
   * The tenant's share of the origin when tenants compete for it (origin stage): a tenant with
   * weight 2 gets twice the origin slots of a tenant with weight 1 while both are waiting.
   */
  weight: z.number().positive().max(BOUNDS.weight).default(1),
  /**
   * WebSockets open at once for this tenant (default DEFAULT_MAX_CONNECTIONS); 0 refuses them.
   * An open socket holds one of these, not an in-flight slot, for as long as it stays open.
   */
  maxConnections: z.number().int().min(0).max(BOUNDS.maxConnections).optional(),
  /**
   * The `anonymous` tenant only: limits over all anonymous traffic together, beside each client
   * address's own bucket, so a spray from many addresses cannot take more than this.
   */
  aggregate: admissionLimitsSchema.optional(),
});

export type RouteRule = z.infer<typeof routeRuleSchema>;
export type TenantConfig = z.infer<typeof tenantConfigSchema>;

export function limitsOf(config: TenantConfig) {
  const { rate, burst, maxInFlight, maxQueue, maxWaitMs } = config;
  return { rate, burst, maxInFlight, maxQueue, maxWaitMs };
}

export function maxConnectionsOf(config: TenantConfig): number {
  return config.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
}

/**
 * Advice, not errors: settings that are valid but make a bound meaningless. A queue deeper than
 * what drains within the wait budget (rate * maxWaitMs) only holds requests that the wait
 * estimate will shed anyway.
 */
export function configWarnings(config: TenantConfig): string[] {
  const warnings: string[] = [];
  const drainable = Math.floor((config.rate * config.maxWaitMs) / 1000);
  if (config.maxQueue > Math.max(1, drainable)) {
    warnings.push(
      `maxQueue ${config.maxQueue} exceeds rate * maxWaitMs / 1000 = ${drainable}: ` +
        "waiters past that depth cannot be admitted within maxWaitMs and will be shed on arrival",
    );
  }
  if (config.burst < config.maxInFlight && config.rate < config.maxInFlight) {
    warnings.push(
      `burst ${config.burst} and rate ${config.rate} are both below maxInFlight ${config.maxInFlight}: ` +
        "the in-flight limit can never be reached",
    );
  }
  return warnings;
}

/**
 * Limits for clients without a known key when no `anonymous` tenant has been configured:
 * small, so an unconfigured deployment cannot be used to flood the origin.
 */
export const DEFAULT_ANONYMOUS_CONFIG: TenantConfig = {
  rate: 5,
  burst: 10,
  maxInFlight: 4,
  maxQueue: 8,
  maxWaitMs: 1_000,
  maxClientPriority: "normal",
  routes: [],
  weight: 1,
};

export const ANONYMOUS_TENANT = "anonymous";

/** Over all anonymous traffic when the `anonymous` tenant sets no `aggregate`: ten clients' worth. */
export const DEFAULT_ANONYMOUS_AGGREGATE = {
  rate: 50,
  burst: 100,
  maxInFlight: 40,
  maxQueue: 80,
  maxWaitMs: 1_000,
} as const;

export function aggregateLimitsOf(config: TenantConfig) {
  return config.aggregate ?? DEFAULT_ANONYMOUS_AGGREGATE;
}
