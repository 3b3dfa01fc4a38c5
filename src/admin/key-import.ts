import { z } from "zod";
import type { Env } from "../env";
import { notFound } from "../guard-errors";
import { placement } from "../object-placement";
import { tenantObjectName } from "../proxy/identity";
import type { KeyAddition, KeyBatchChange } from "../tenant/key-ring";
import type { KeyRecord } from "../tenant/tenant-store";
import { forgetKeys, hashKey } from "../tenant/tenant-directory";
import { MAX_KEY_BATCH } from "../tenant-guard";
import { mapBounded } from "./bounded-map";
import { type ImportItem, importItemSchema } from "./key-fields";
import { REGISTRY_CONCURRENCY, claimKey, publishKey, unclaimKey } from "./key-registration";
import { type FieldError, fieldErrors, parseOrThrow } from "./json-body";
import { newKeyId, keyHint } from "./key-ids";

/**
 * Keys per import call. Each key costs the Worker two calls to its registry object (claim,
 * publish) and no KV operation (the registry writes KV in its own invocation): 1,000 keys are
 * about 2,000 subrequests, within the 10,000 a Workers Paid invocation may make, while KV's
 * 1,000 operations per invocation would not have fitted a thousand writes and their reads.
 */
export const MAX_IMPORT_KEYS = MAX_KEY_BATCH;
/** 1,000 keys of 256 characters with 128-character names and expiries fit with room to spare. */
export const MAX_IMPORT_BODY_BYTES = 1024 * 1024;

const importBodySchema = z.strictObject({
  keys: z
    .array(z.unknown())
    .min(1, "must list at least one key")
    .max(MAX_IMPORT_KEYS, `must list at most ${MAX_IMPORT_KEYS} keys per call`),
});

export type ImportStatus = "created" | "unchanged" | "conflict" | "invalid";

export interface ImportOutcome {
  readonly index: number;
  readonly status: ImportStatus;
  readonly id?: string;
  readonly hint?: string;
  readonly detail?: string;
  readonly errors?: readonly FieldError[];
}

export interface ImportReport {
  readonly tenant: string;
  readonly counts: Record<ImportStatus, number>;
  readonly results: readonly ImportOutcome[];
}

interface Candidate {
  readonly index: number;
  readonly record: KeyRecord;
}

type Checked =
  | { readonly kind: "valid"; readonly candidate: Candidate }
  | { readonly kind: "invalid"; readonly outcome: ImportOutcome };

const invalid = (index: number, errors: readonly FieldError[]): Checked => ({
  kind: "invalid",
  outcome: { index, status: "invalid", errors },
});

/** Validates every item on its own, so one bad item is reported and the rest still import. */
async function checkItems(items: readonly unknown[], now: number): Promise<Checked[]> {
  const schema = importItemSchema(now);
  const firstByHash = new Map<string, number>();
  const checked: Checked[] = [];
  for (const [index, item] of items.entries()) {
    const parsed = schema.safeParse(item);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error, item).map((e) => ({
        field: e.field === "(body)" ? `keys.${index}` : `keys.${index}.${e.field}`,
        message: e.message,
      }));
      checked.push(invalid(index, errors));
      continue;
    }
    const record = await toRecord(parsed.data, now);
    const first = firstByHash.get(record.hash);
    if (first !== undefined) {
      checked.push(invalid(index, [{ field: `keys.${index}.key`, message: `repeats keys.${first}.key` }]));
      continue;
    }
    firstByHash.set(record.hash, index);
    checked.push({ kind: "valid", candidate: { index, record } });
  }
  return checked;
}

async function toRecord(item: ImportItem, now: number): Promise<KeyRecord> {
  return {
    id: newKeyId(),
    hash: await hashKey(item.key),
    createdAt: now,
    hint: keyHint(item.key),
    name: item.name ?? null,
    expiresAt: item.expiresAt ?? null,
  };
}

/** What one claimed candidate came to once the tenant object answered. */
type Settled =
  | { readonly kind: "publish"; readonly candidate: Candidate; readonly status: "created" | "unchanged" }
  | { readonly kind: "refused"; readonly candidate: Candidate; readonly detail: string; readonly unclaim: boolean };

function settle(candidate: Candidate, claimed: boolean, addition: KeyAddition | undefined): Settled {
  if (addition?.kind === "added") return { kind: "publish", candidate, status: "created" };
  if (addition?.kind === "present" && addition.id === candidate.record.id) {
    return { kind: "publish", candidate, status: "unchanged" };
  }
  const detail =
    addition?.kind === "full"
      ? `the tenant already has ${addition.max} keys`
      : `the tenant holds an older record of this key (${addition?.id ?? "?"}); delete it and import again`;
  return { kind: "refused", candidate, detail, unclaim: claimed };
}

interface Owned {
  readonly candidate: Candidate;
  /** Claimed by this import (undone if the tenant does not record it), not held from before. */
  readonly claimed: boolean;
}

/** Claims every candidate in its registry; another tenant's key is a `conflict` right away. */
async function claimAll(
  env: Env,
  tenant: string,
  candidates: readonly Candidate[],
  outcomes: Map<number, ImportOutcome>,
): Promise<Owned[]> {
  const claims = await mapBounded(candidates, REGISTRY_CONCURRENCY, (c) => claimKey(env, tenant, c.record));
  return candidates.flatMap((candidate, i): Owned[] => {
    const claim = claims[i];
    if (!claim || claim.kind === "taken") {
      outcomes.set(candidate.index, {
        index: candidate.index,
        status: "conflict",
        detail: "another tenant has this key",
      });
      return [];
    }
    const record = claim.kind === "held" ? { ...candidate.record, id: claim.id } : candidate.record;
    return [{ candidate: { ...candidate, record }, claimed: claim.kind === "claimed" }];
  });
}

/** Records the batch in the tenant object in one call; on failure no claim of this import is left behind. */
async function recordAll(env: Env, tenant: string, owned: readonly Owned[]): Promise<readonly KeyAddition[]> {
  const undo = () =>
    mapBounded(
      owned.filter((o) => o.claimed),
      REGISTRY_CONCURRENCY,
      (o) => unclaimKey(env, tenant, o.candidate.record),
    );
  let change: KeyBatchChange;
  try {
    change = await tenantStub(env, tenant).addKeys(owned.map((o) => o.candidate.record));
  } catch (error) {
    await undo();
    throw error;
  }
  if (change.kind === "ok") return change.additions;
  await undo();
  throw notFound(`tenant '${tenant}' was deleted during the import`);
}

/** Publishes what the tenant recorded; what it refused is unclaimed again and reported `conflict`. */
async function publishAll(env: Env, tenant: string, settled: readonly Settled[], outcomes: Map<number, ImportOutcome>) {
  await mapBounded(settled, REGISTRY_CONCURRENCY, async (s) => {
    const { index, record } = s.candidate;
    if (s.kind === "refused") {
      if (s.unclaim) await unclaimKey(env, tenant, record);
      outcomes.set(index, { index, status: "conflict", detail: s.detail });
      return;
    }
    await publishKey(env, tenant, record);
    outcomes.set(index, { index, status: s.status, id: record.id, hint: record.hint });
  });
  forgetKeys();
}

const tenantStub = (env: Env, tenant: string) => env.TENANT_GUARD.getByName(tenantObjectName(tenant), placement(env));

/**
 * POST /__guard/tenants/:tenant/keys/import. Per key: claim it in its registry (another tenant's
 * key is `conflict` and stays where it is), record the batch in the tenant object in one call,
 * then publish each recorded key to KV. A key this tenant already owns is `unchanged` (its
 * stored name and expiry are kept), so running an import again is harmless.
 */
export async function importKeys(env: Env, tenant: string, body: unknown, now: number): Promise<ImportReport> {
  const { keys } = parseOrThrow(importBodySchema, body, "key import");
  if (!(await tenantStub(env, tenant).stats()).limits) {
    throw notFound(`tenant '${tenant}' does not exist; PUT /__guard/tenants/${tenant} first`);
  }
  const checked = await checkItems(keys, now);
  const outcomes = new Map<number, ImportOutcome>();
  for (const item of checked) if (item.kind === "invalid") outcomes.set(item.outcome.index, item.outcome);
  const candidates = checked.flatMap((item) => (item.kind === "valid" ? [item.candidate] : []));
  const owned = await claimAll(env, tenant, candidates, outcomes);
  const additions = await recordAll(env, tenant, owned);
  const settled = owned.map((o, i) => settle(o.candidate, o.claimed, additions[i]));
  await publishAll(env, tenant, settled, outcomes);
  return report(tenant, keys.length, outcomes);
}

function report(tenant: string, total: number, outcomes: ReadonlyMap<number, ImportOutcome>): ImportReport {
  const counts: Record<ImportStatus, number> = { created: 0, unchanged: 0, conflict: 0, invalid: 0 };
  const results: ImportOutcome[] = [];
  for (let index = 0; index < total; index += 1) {
    const outcome = outcomes.get(index);
    if (!outcome) continue;
    counts[outcome.status] += 1;
    results.push(outcome);
  }
  return { tenant, counts, results };
}
