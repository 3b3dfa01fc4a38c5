/**
 * Who owns an API key (by its hash): the rules of the key registry object, pure. One object per
 * key hash is the single writer of that key's owner, so two registrations of one key cannot
 * both succeed (KV, read before, is eventually consistent), and only the owner's release frees
 * the key or removes its KV entry.
 */
import { z } from "zod";

export const keyOwnerSchema = z.strictObject({ tenant: z.string(), id: z.string() });
export type KeyOwner = z.infer<typeof keyOwnerSchema>;

export type ClaimResult = { readonly kind: "claimed" } | { readonly kind: "taken" };
/** `unclaimed`: no owner on record (a key registered before the registry existed). */
export type ReleaseResult =
  | { readonly kind: "released" }
  | { readonly kind: "not_owner" }
  | { readonly kind: "unclaimed" };

export const keyRegistryName = (hash: string) => `key:${hash}`;

export function claim(owner: KeyOwner | null, by: KeyOwner): { owner: KeyOwner | null; result: ClaimResult } {
  if (owner) return { owner, result: { kind: "taken" } };
  return { owner: by, result: { kind: "claimed" } };
}

export function release(owner: KeyOwner | null, by: KeyOwner): { owner: KeyOwner | null; result: ReleaseResult } {
  if (!owner) return { owner, result: { kind: "unclaimed" } };
  if (owner.tenant !== by.tenant || owner.id !== by.id) return { owner, result: { kind: "not_owner" } };
  return { owner: null, result: { kind: "released" } };
}
