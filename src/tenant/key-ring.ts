/** A tenant's API key records (hashes only), bounded so the record stays small. Pure. */
import type { KeyRecord } from "./tenant-store";

/** Keys per tenant: enough for rotation. */
export const MAX_KEYS_PER_TENANT = 20;

export type KeyChange =
  | { readonly kind: "ok"; readonly key: KeyRecord }
  | { readonly kind: "unconfigured" }
  | { readonly kind: "too_many_keys"; readonly max: number }
  | { readonly kind: "not_found" };

export function addKey(keys: readonly KeyRecord[], key: KeyRecord): { keys: readonly KeyRecord[]; change: KeyChange } {
  if (keys.length >= MAX_KEYS_PER_TENANT) return { keys, change: { kind: "too_many_keys", max: MAX_KEYS_PER_TENANT } };
  return { keys: [...keys, key], change: { kind: "ok", key } };
}

export function removeKey(keys: readonly KeyRecord[], id: string): { keys: readonly KeyRecord[]; change: KeyChange } {
  const key = keys.find((candidate) => candidate.id === id);
  if (!key) return { keys, change: { kind: "not_found" } };
  return { keys: keys.filter((candidate) => candidate.id !== id), change: { kind: "ok", key } };
}
