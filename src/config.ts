import { z } from "zod";
import type { Env } from "./env";

/**
 * The Worker's settings, parsed from its bindings once per isolate. A bad value is reported by
 * name with the value it had, on the first request, instead of failing obscurely later.
 */
export interface GuardConfig {
  readonly originUrl: URL;
  /** null disables the admin API: it fails closed, never open. */
  readonly adminToken: string | null;
  readonly unknownKeys: "anonymous" | "reject";
  /**
   * When a Durable Object cannot be reached or is overloaded: "closed" sheds with 503
   * `guard_unavailable`; "open" forwards, at most `failOpenMaxInFlight` requests at once per isolate.
   */
  readonly failMode: "open" | "closed";
  readonly failOpenMaxInFlight: number;
  /**
   * How a request queued in this isolate learns that another request handed it a slot:
   * "promise" (the platform resumes it in its own context: cross-request promise resolution, on
   * by default since compatibility date 2024-10-14), or "poll" (it checks every 2 ms on its own
   * timer). Only the vitest pool needs "poll": it turns cross-request resolution off.
   */
  readonly waiterWake: "promise" | "poll";
}

const envSchema = z.object({
  ORIGIN_URL: z
    .string({ error: "is required: the origin that admitted requests are forwarded to" })
    .url("must be an absolute http(s) URL")
    .refine((value) => /^https?:/i.test(value), "must use http or https"),
  ADMIN_TOKEN: z
    .string()
    .min(16, "must be at least 16 characters")
    .regex(/^[A-Za-z0-9._~+/=-]+$/, "may only contain A-Z a-z 0-9 . _ ~ + / = -")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  UNKNOWN_KEYS: z.enum(["anonymous", "reject"]).default("anonymous"),
  FAIL_MODE: z.enum(["open", "closed"]).default("closed"),
  FAIL_OPEN_MAX_IN_FLIGHT: z.coerce
    .number({ error: "must be a whole number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(1_000, "must be at most 1000")
    .default(4),
  WAITER_WAKE: z.enum(["promise", "poll"]).default("promise"),
});

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const parsed = new WeakMap<object, GuardConfig | ConfigError>();

export function guardConfig(env: Env): GuardConfig {
  let config = parsed.get(env);
  if (!config) {
    config = parseEnv(env);
    parsed.set(env, config);
  }
  if (config instanceof ConfigError) throw config;
  return config;
}

function parseEnv(env: Env): GuardConfig | ConfigError {
  const result = envSchema.safeParse({
    ORIGIN_URL: env.ORIGIN_URL,
    ADMIN_TOKEN: env.ADMIN_TOKEN,
    UNKNOWN_KEYS: env.UNKNOWN_KEYS,
    FAIL_MODE: env.FAIL_MODE || undefined,
    FAIL_OPEN_MAX_IN_FLIGHT: env.FAIL_OPEN_MAX_IN_FLIGHT || undefined,
    WAITER_WAKE: env.WAITER_WAKE || undefined,
  });
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const field = issue.path.join(".");
      const value =
        field === "ADMIN_TOKEN" ? "(hidden)" : JSON.stringify((env as unknown as Record<string, unknown>)[field]);
      return `${field} ${issue.message} (got ${value})`;
    });
    return new ConfigError(`guard misconfigured: ${problems.join("; ")}`);
  }
  const data = result.data;
  return {
    originUrl: new URL(data.ORIGIN_URL),
    adminToken: data.ADMIN_TOKEN ?? null,
    unknownKeys: data.UNKNOWN_KEYS,
    failMode: data.FAIL_MODE,
    failOpenMaxInFlight: data.FAIL_OPEN_MAX_IN_FLIGHT,
    waiterWake: data.WAITER_WAKE,
  };
}
