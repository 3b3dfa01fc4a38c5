/**
 * Who owns an API key (by its hash): the rules of the key registry object, pure. One object per
 * key hash is the single writer of that key's owner and of its KV directory entry, so two
 * registrations of one key cannot both succeed (KV, eventually consistent, cannot decide that),
 * and only the owner's release frees the key or removes its entry.
 */
import { z } from "zod";

export const keyOwnerSchema = z.strictObject({ tenant: z.string(), id: z.string() });
export type KeyOwner = z.infer<typeof keyOwnerSchema>;

/**
 * What the registry stores: the owner, and whether the KV entry has been written for it. A
 * claim is published only after the tenant object recorded the key, so a key never resolves at
 * the edge before its tenant lists it; records of older versions had no flag and were published.
 */
export const ownerRecordSchema = keyOwnerSchema.extend({ published: z.boolean().default(true) });
export type OwnerRecord = z.infer<typeof ownerRecordSchema>;

/** `held`: this tenant already owns the key (an import run again), under `id`. */
export type ClaimResult =
  | { readonly kind: "claimed" }
  | { readonly kind: "held"; readonly id: string }
  | { readonly kind: "taken" };
/** `unclaimed`: no owner on record (a key registered before the registry existed). */
export type ReleaseResult =
  | { readonly kind: "released" }
  | { readonly kind: "not_owner" }
  | { readonly kind: "unclaimed" };
/** `publish`: write the KV entry now; `done`: it is already written; `not_owner`: write nothing. */
export type PublishStep = { readonly kind: "publish" } | { readonly kind: "done" } | { readonly kind: "not_owner" };

export const keyRegistryName = (hash: string) => `key:${hash}`;

const same = (a: KeyOwner, b: KeyOwner) => a.tenant === b.tenant && a.id === b.id;

export function claim(owner: OwnerRecord | null, by: KeyOwner): { owner: OwnerRecord | null; result: ClaimResult } {
  if (!owner) return { owner: { ...by, published: false }, result: { kind: "claimed" } };
  if (owner.tenant === by.tenant) return { owner, result: { kind: "held", id: owner.id } };
  return { owner, result: { kind: "taken" } };
}

export function publish(owner: OwnerRecord | null, by: KeyOwner): { owner: OwnerRecord | null; step: PublishStep } {
  if (!owner || !same(owner, by)) return { owner, step: { kind: "not_owner" } };
  if (owner.published) return { owner, step: { kind: "done" } };
  return { owner: { ...owner, published: true }, step: { kind: "publish" } };
}

export function release(owner: OwnerRecord | null, by: KeyOwner): { owner: OwnerRecord | null; result: ReleaseResult } {
  if (!owner) return { owner, result: { kind: "unclaimed" } };
  if (!same(owner, by)) return { owner, result: { kind: "not_owner" } };
  return { owner: null, result: { kind: "released" } };
}
