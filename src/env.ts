import type { IdentityEnv } from "./identity/identity-config";
import type { KeyRegistry } from "./key-registry";
import type { OriginGuard } from "./origin-guard";
import type { TenantGuard } from "./tenant-guard";

/** The Worker's bindings, as declared in wrangler.toml. Parsed into `GuardConfig` by config.ts. */
export interface Env extends IdentityEnv {
  readonly TENANT_GUARD: DurableObjectNamespace<TenantGuard>;
  readonly ORIGIN_GUARD: DurableObjectNamespace<OriginGuard>;
  readonly KEY_REGISTRY: DurableObjectNamespace<KeyRegistry>;
  readonly TENANTS: KVNamespace;
  readonly ANALYTICS?: AnalyticsEngineDataset;
  readonly ORIGIN_URL?: string;
  readonly ADMIN_TOKEN?: string;
  readonly UNKNOWN_KEYS?: string;
  readonly FAIL_MODE?: string;
  readonly FAIL_OPEN_MAX_IN_FLIGHT?: string;
  readonly WAITER_WAKE?: string;
}
