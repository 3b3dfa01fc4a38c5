import type { GuardConfig } from "../config";
import { guardError } from "../guard-errors";
import type { ProblemError } from "../problem";
import { isExpired } from "../tenant/key-ring";
import { compileRoutes } from "../tenant/route-rules";
import type { AdmissionLimits } from "../admission/limits";
import { KeyLookupBudget } from "../edge/key-lookup-budget";
import { type Credential, challenge, refusalDetail } from "../identity/credential";
import { verifierFor } from "../identity/jwt-verifier";
import {
  ANONYMOUS_TENANT,
  DEFAULT_ANONYMOUS_CONFIG,
  TENANT_NAME_PATTERN,
  aggregateLimitsOf,
  limitsOf,
} from "../tenant/tenant-config";
import type { EdgeTenant, TenantDirectory } from "../tenant/tenant-directory";

/** Who a request is charged to, and which object decides for it. */
export interface Identity {
  readonly tenant: EdgeTenant;
  readonly objectName: string;
  /** For anonymous per-IP objects, which have no config of their own. */
  readonly carriedLimits: AdmissionLimits | undefined;
  /** Anonymous requests also pass the bound over all anonymous traffic: its object and limits. */
  readonly aggregate?: { readonly objectName: string; readonly limits: AdmissionLimits };
}

/** The object that holds the bound over all anonymous traffic together. */
export const ANONYMOUS_AGGREGATE_OBJECT = `${ANONYMOUS_TENANT}:*all*`;

function anonymousOf(tenant: EdgeTenant, clientIp: string | null): Identity {
  return {
    tenant,
    objectName: `${ANONYMOUS_TENANT}:${clientBucket(clientIp)}`,
    carriedLimits: limitsOf(tenant.config),
    aggregate: { objectName: ANONYMOUS_AGGREGATE_OBJECT, limits: aggregateLimitsOf(tenant.config) },
  };
}

const defaultAnonymous: EdgeTenant = {
  name: ANONYMOUS_TENANT,
  config: DEFAULT_ANONYMOUS_CONFIG,
  classify: compileRoutes(DEFAULT_ANONYMOUS_CONFIG),
};

export const tenantObjectName = (tenant: string) => `tenant:${tenant}`;

/** Per isolate: KV lookups of keys this isolate has not cached, per client (see key-lookup-budget.ts). */
const keyLookups = new KeyLookupBudget();

/**
 * IPv6 clients usually hold a whole /64, so a per-address bucket would let one client rotate
 * through millions of buckets; they share one per /64.
 */
export function clientBucket(ip: string | null): string {
  if (!ip) return "unknown";
  if (!ip.includes(":")) return ip;
  const [head = "", tail = ""] = ip.toLowerCase().split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const missing = Math.max(0, 8 - headGroups.length - tailGroups.length);
  const groups = ip.includes("::") ? [...headGroups, ...Array(missing).fill("0"), ...tailGroups] : headGroups;
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/**
 * The tenant a request's credential names: an API key through the key directory, a JWT by its
 * tenant claim once verified (a refused token is a 401 saying why). No credential, or one that
 * names no configured tenant, is anonymous (or 401 with UNKNOWN_KEYS=reject).
 */
export async function resolveIdentity(
  credential: Credential,
  clientIp: string | null,
  directory: TenantDirectory,
  config: GuardConfig,
  now: number,
): Promise<Identity> {
  const name = await tenantNamed(credential, clientIp, directory, config, now);
  const tenant = name ? await directory.tenant(name, now) : null;
  if (tenant) return { tenant, objectName: tenantObjectName(tenant.name), carriedLimits: undefined };
  return anonymousIdentity(credential, clientIp, directory, config, now, name ?? undefined);
}

async function tenantNamed(
  credential: Credential,
  clientIp: string | null,
  directory: TenantDirectory,
  config: GuardConfig,
  now: number,
): Promise<string | null> {
  if (credential.kind === "key") {
    const entry = await directory.tenantForKey(credential.key, now, () => keyLookups.take(clientBucket(clientIp), now));
    if (entry && isExpired(entry.expiresAt, now)) throw keyExpired(config, entry.expiresAt ?? now);
    return entry?.tenant ?? null;
  }
  if (credential.kind === "none" || config.identity.kind !== "jwt") return null;
  const verdict = await verifierFor(config.identity.jwt, config.identity.keys, now).verify(credential.token, now);
  if (verdict.kind === "invalid") {
    throw guardError(
      "invalid_token",
      verdict.detail,
      { reason: verdict.reason },
      { "www-authenticate": challenge(config.identity, verdict.detail) },
    );
  }
  // `anonymous` has no credentials of its own: a token cannot claim the shared anonymous bucket.
  return TENANT_NAME_PATTERN.test(verdict.tenant) && verdict.tenant !== ANONYMOUS_TENANT ? verdict.tenant : "";
}

/** The 401 of an expired key: the edge's cached entry carries the expiry, so it is exact to the millisecond. */
function keyExpired(config: GuardConfig, expiresAt: number): ProblemError {
  const detail = `the API key expired at ${new Date(expiresAt).toISOString()}`;
  return guardError(
    "key_expired",
    detail,
    { expiredAt: expiresAt },
    { "www-authenticate": challenge(config.identity, detail) },
  );
}

/**
 * Who a request is charged to when the directory cannot be read: the built-in anonymous limits
 * for its client, decided without KV (the fail mode then says whether it is forwarded).
 */
export function fallbackIdentity(clientIp: string | null): Identity {
  return anonymousOf(defaultAnonymous, clientIp);
}

export async function anonymousIdentity(
  credential: Credential,
  clientIp: string | null,
  directory: TenantDirectory,
  config: GuardConfig,
  now: number,
  claimedTenant?: string,
): Promise<Identity> {
  if (config.unknownKeys === "reject") {
    const detail = refusalDetail(config.identity, credential, claimedTenant);
    throw guardError(
      "unauthorized",
      detail,
      {},
      { "www-authenticate": challenge(config.identity, credential.kind === "none" ? undefined : detail) },
    );
  }
  return anonymousOf((await directory.tenant(ANONYMOUS_TENANT, now)) ?? defaultAnonymous, clientIp);
}
