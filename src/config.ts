import { z } from "zod";
import type { Env } from "./env";
import { type IdentityConfig, parseIdentityConfig } from "./identity/identity-config";
import { type OriginSettings, parseOriginSettings } from "./origin-settings";
import { TOKEN_CHARS, TOKEN_CHARS_MESSAGE } from "./tenant/api-key-format";

/**
 * The Worker's settings, parsed from its bindings once per isolate. A bad value is reported by
 * name with the value it had, on the first request, instead of failing obscurely later.
 */
export interface GuardConfig extends IdentityConfig, OriginSettings {
  /** null disables the admin API: it fails closed, never open. */
  readonly adminToken: string | null;
  /**
   * Why a configured ADMIN_TOKEN was refused (its value never shown): the admin API answers 503
   * with this, while the proxy serves on. A bad admin setting must not take the API traffic down.
   */
  readonly adminTokenProblem: string | null;
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
  /**
   * Where new Durable Objects are created (null: near the first request that asks for each).
   * Objects never move, so this is best set before the first deploy (README "Object placement").
   */
  readonly locationHint: DurableObjectLocationHint | null;
}

export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;

const adminTokenSchema = z
  .string()
  .min(16, "must be at least 16 characters")
  .regex(TOKEN_CHARS, TOKEN_CHARS_MESSAGE)
  .optional()
  .or(z.literal("").transform(() => undefined));

const envSchema = z.object({
  UNKNOWN_KEYS: z.enum(["anonymous", "reject"]).default("anonymous"),
  FAIL_MODE: z.enum(["open", "closed"]).default("closed"),
  FAIL_OPEN_MAX_IN_FLIGHT: z.coerce
    .number({ error: "must be a whole number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(1_000, "must be at most 1000")
    .default(4),
  WAITER_WAKE: z.enum(["promise", "poll"]).default("promise"),
  DO_LOCATION_HINT: z.enum(LOCATION_HINTS).optional(),
});

/**
 * A setting the proxy needs is bad. `message` names each setting with its value, for the log;
 * `publicDetail` names the settings only, for a client's answer.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    message: string,
    readonly publicDetail: string,
  ) {
    super(message);
  }
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
    UNKNOWN_KEYS: env.UNKNOWN_KEYS,
    FAIL_MODE: env.FAIL_MODE || undefined,
    FAIL_OPEN_MAX_IN_FLIGHT: env.FAIL_OPEN_MAX_IN_FLIGHT || undefined,
    WAITER_WAKE: env.WAITER_WAKE || undefined,
    DO_LOCATION_HINT: env.DO_LOCATION_HINT || undefined,
  });
  const identity = parseIdentityConfig(env);
  const origin = parseOriginSettings(env);
  if (!result.success || !identity.ok || !origin.ok) {
    const issues = [
      ...(result.success
        ? []
        : result.error.issues.map((issue) => ({ setting: issue.path.join("."), ...issue, echo: true }))),
      ...(origin.ok ? [] : origin.problems),
      ...(identity.ok ? [] : identity.problems),
    ];
    const fields = [...new Set(issues.map((issue) => issue.setting))];
    const problems = issues.map((issue) => {
      const value = issue.echo
        ? JSON.stringify((env as unknown as Record<string, unknown>)[issue.setting])
        : "a secret, not shown";
      return `${issue.setting} ${issue.message} (got ${value})`;
    });
    return new ConfigError(
      `guard misconfigured: ${problems.join("; ")}`,
      `the guard is misconfigured (${fields.join(", ")}); the Worker's log names the problem`,
    );
  }
  const data = result.data;
  const admin = adminTokenSchema.safeParse(env.ADMIN_TOKEN);
  const adminTokenProblem = admin.success
    ? null
    : `ADMIN_TOKEN ${admin.error.issues.map((issue) => issue.message).join("; ")}`;
  if (adminTokenProblem) console.error(`admin API disabled: ${adminTokenProblem}`);
  return {
    ...origin.config,
    adminToken: admin.success ? (admin.data ?? null) : null,
    adminTokenProblem,
    unknownKeys: data.UNKNOWN_KEYS,
    failMode: data.FAIL_MODE,
    failOpenMaxInFlight: data.FAIL_OPEN_MAX_IN_FLIGHT,
    waiterWake: data.WAITER_WAKE,
    ...identity.config,
    locationHint: data.DO_LOCATION_HINT ?? null,
  };
}
