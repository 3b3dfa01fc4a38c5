import type { IdentityEnv } from "./identity/identity-config";

/**
 * The Worker's bindings. `Cloudflare.Env` is generated from wrangler.toml by `npm run types`
 * (worker-configuration.d.ts; CI fails when it is stale): to add a setting, declare it in
 * wrangler.toml ([vars], `secrets.required`, a binding) and rerun `npm run types`. Parsed into
 * `GuardConfig` by config.ts. The identity settings are typed by identity-config.ts, which
 * parses them: most are optional and not declared in wrangler.toml.
 */
export interface Env extends Omit<Cloudflare.Env, "ADMIN_TOKEN" | keyof IdentityEnv>, IdentityEnv {
  /** Declared required, yet a Worker can run without it: the admin API is then disabled. */
  readonly ADMIN_TOKEN?: string;
  /** Test runners only (see `waiterWake` in config.ts), so it is not declared in wrangler.toml. */
  readonly WAITER_WAKE?: string;
  /**
   * The origin as a service binding (recipes/service-binding): declared per deployment, not in
   * wrangler.toml, whose local and template environments forward to ORIGIN_URL.
   */
  readonly ORIGIN?: Fetcher;
  /**
   * Optional (unset: forwarded requests are not signed), so not in `secrets.required`, which
   * would make every deploy demand it; recipes/signed-origin declares it required.
   */
  readonly ORIGIN_SIGNING_SECRET?: string;
}
