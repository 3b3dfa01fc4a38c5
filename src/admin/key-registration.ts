import type { Env } from "../env";
import type { KeyRef } from "../key-registry";
import { placement } from "../object-placement";
import { type ClaimResult, keyRegistryName } from "../tenant/key-claim";
import { forgetKeys } from "../tenant/tenant-directory";
import type { KeyRecord } from "../tenant/tenant-store";

/**
 * The steps of registering a key, each one call to the key's registry object (src/key-registry.ts),
 * which also writes and deletes the key's KV entry: claim it, have the tenant object record it,
 * then publish it (only then does the edge resolve it). Every step can be repeated safely, so an
 * import interrupted anywhere is finished by running it again.
 */
/**
 * Registry calls in flight at once, when an admin call fans out over many keys (an import, a
 * tenant's deletion): enough to finish 1,000 keys in seconds, few enough to hold few promises.
 */
export const REGISTRY_CONCURRENCY = 32;

export function registry(env: Env, hash: string) {
  return env.KEY_REGISTRY.getByName(keyRegistryName(hash), placement(env));
}

const ref = (tenant: string, key: KeyRecord): KeyRef => ({ tenant, id: key.id, hash: key.hash });

export async function claimKey(env: Env, tenant: string, key: KeyRecord): Promise<ClaimResult> {
  const result = await registry(env, key.hash).claim(ref(tenant, key));
  return result.kind === "held" ? { kind: "held", id: result.id } : { kind: result.kind };
}

export async function publishKey(env: Env, tenant: string, key: KeyRecord): Promise<void> {
  await registry(env, key.hash).publish({ ...ref(tenant, key), expiresAt: key.expiresAt ?? null });
}

/**
 * Frees a key this tenant owned: its KV entry goes only if the registry agrees it was this
 * tenant's, so deleting one tenant's key can never revoke another's. This isolate forgets its
 * cached keys at once; others within the staleness bound.
 */
export async function releaseKey(env: Env, tenant: string, key: KeyRecord): Promise<void> {
  await registry(env, key.hash).release(ref(tenant, key));
  forgetKeys();
}

/** Undoes a claim whose tenant did not record the key (it is full, or was deleted meanwhile). */
export async function unclaimKey(env: Env, tenant: string, key: KeyRecord): Promise<void> {
  await registry(env, key.hash).release(ref(tenant, key));
}
