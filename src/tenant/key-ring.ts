/** A tenant's API keys: the bound, the outcomes of changes, and the listing's cursor. Pure. */
import { z } from "zod";
import type { KeyRecord } from "./tenant-store";

/**
 * Keys per tenant: thousands, for a customer base moved in by bulk import. The bound is what
 * deleting the tenant can undo in one admin call: each key is one registry object call, and a
 * Worker may make 10,000 subrequests per invocation (Workers Paid), so 5,000 keys leave room.
 */
export const MAX_KEYS_PER_TENANT = 5_000;

export type KeyChange =
  | { readonly kind: "ok"; readonly key: KeyRecord }
  | { readonly kind: "unconfigured" }
  | { readonly kind: "too_many_keys"; readonly max: number }
  | { readonly kind: "not_found" };

/** One record of a batch: stored now, stored before (same hash, under `id`), or over the bound. */
export type KeyAddition =
  | { readonly kind: "added"; readonly id: string }
  | { readonly kind: "present"; readonly id: string }
  | { readonly kind: "full"; readonly max: number };

export type KeyBatchChange =
  | { readonly kind: "ok"; readonly additions: readonly KeyAddition[] }
  | { readonly kind: "unconfigured" };

/**
 * Where a listing page ends. Keys are listed by (createdAt, id), a key's position never changes
 * and a new key sorts after every existing one, so walking the pages from any cursor sees each
 * key present throughout the walk exactly once, whatever is added meanwhile.
 */
export interface KeyPosition {
  readonly createdAt: number;
  readonly id: string;
}

const positionSchema = z.tuple([z.number().int().min(0), z.string().min(1).max(64)]);

export function encodeCursor(position: KeyPosition): string {
  return btoa(JSON.stringify([position.createdAt, position.id]))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** The position a cursor names, or null for anything this module did not write. */
export function decodeCursor(cursor: string): KeyPosition | null {
  try {
    const parsed = positionSchema.safeParse(JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))));
    return parsed.success ? { createdAt: parsed.data[0], id: parsed.data[1] } : null;
  } catch {
    return null;
  }
}

/** Whether a key with this expiry is refused at `now`: from its expiry's millisecond on. */
export function isExpired(expiresAt: number | null | undefined, now: number): boolean {
  return expiresAt !== undefined && expiresAt !== null && now >= expiresAt;
}
