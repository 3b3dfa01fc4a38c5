import type { Hono } from "hono";
import { z } from "zod";
import type { Env } from "../env";
import { badRequest, guardError, notFound } from "../guard-errors";
import { placement } from "../object-placement";
import type { ProblemError } from "../problem";
import { tenantObjectName } from "../proxy/identity";
import { type KeyChange, decodeCursor, encodeCursor } from "../tenant/key-ring";
import { ANONYMOUS_TENANT, tenantNameSchema } from "../tenant/tenant-config";
import { forgetKeys, hashKey } from "../tenant/tenant-directory";
import type { KeyRecord } from "../tenant/tenant-store";
import { MAX_KEY_BATCH } from "../tenant-guard";
import { MAX_IMPORT_BODY_BYTES, importKeys } from "./key-import";
import { registerKeySchema } from "./key-fields";
import { keyHint, newKeyId, randomToken } from "./key-ids";
import { claimKey, publishKey, releaseKey, unclaimKey } from "./key-registration";
import { parseOrThrow, readJson } from "./json-body";

type AdminEnv = { Bindings: Env };

const keyListQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_KEY_BATCH).default(100),
  cursor: z.string().max(256).optional(),
});

function tenantParam(raw: string | undefined): string {
  return parseOrThrow(tenantNameSchema, raw, "tenant name in the path");
}

function keyedTenantParam(raw: string | undefined): string {
  const tenant = tenantParam(raw);
  if (tenant === ANONYMOUS_TENANT)
    throw badRequest("the anonymous tenant cannot have keys", { errors: [{ field: "tenant", message: "reserved" }] });
  return tenant;
}

function stubFor(env: Env, tenant: string) {
  return env.TENANT_GUARD.getByName(tenantObjectName(tenant), placement(env));
}

function keyChangeError(change: Exclude<KeyChange, { kind: "ok" }>, tenant: string): ProblemError {
  switch (change.kind) {
    case "unconfigured":
      return notFound(`tenant '${tenant}' does not exist; PUT /__guard/tenants/${tenant} first`);
    case "too_many_keys":
      return guardError("conflict", `tenant '${tenant}' already has ${change.max} keys; delete one first`);
    case "not_found":
      return notFound(`tenant '${tenant}' has no such key`);
  }
}

/** What a listing shows of a key: never the key, nor its hash. */
const listed = ({ id, hint, name, createdAt, expiresAt }: KeyRecord) => ({
  id,
  hint,
  name: name ?? null,
  createdAt,
  expiresAt: expiresAt ?? null,
});

/** Registers one key: claim, record, publish (see key-registration.ts); 409 if any tenant has it. */
async function registerKey(env: Env, tenant: string, record: KeyRecord): Promise<void> {
  const claim = await claimKey(env, tenant, record);
  if (claim.kind !== "claimed") throw guardError("conflict", "that key is already registered");
  const change = await stubFor(env, tenant)
    .addKey(record)
    .catch(async (error: unknown) => {
      await unclaimKey(env, tenant, record);
      throw error;
    });
  if (change.kind !== "ok") {
    await unclaimKey(env, tenant, record);
    throw keyChangeError(change, tenant);
  }
  await publishKey(env, tenant, record);
  forgetKeys();
}

export function mountKeyRoutes(admin: Hono<AdminEnv>): void {
  admin.get("/tenants/:tenant/keys", async (c) => {
    const tenant = tenantParam(c.req.param("tenant"));
    const query = parseOrThrow(keyListQuerySchema, c.req.query(), "query");
    const after = query.cursor === undefined ? null : decodeCursor(query.cursor);
    if (query.cursor !== undefined && !after) {
      throw badRequest("invalid query: cursor: not a cursor this listing gave", {
        errors: [{ field: "cursor", message: "not a cursor this listing gave" }],
      });
    }
    const page = await stubFor(c.env, tenant).listKeys({ after, limit: query.limit + 1 });
    const keys = page.slice(0, query.limit);
    const last = keys.at(-1);
    const cursor = page.length > query.limit && last ? encodeCursor(last) : null;
    return c.json({ tenant, keys: keys.map(listed), cursor });
  });

  admin.post("/tenants/:tenant/keys", async (c) => {
    const tenant = keyedTenantParam(c.req.param("tenant"));
    const now = Date.now();
    const body = parseOrThrow(registerKeySchema(now), await readJson(c.req.raw, { optional: true }), "key request");
    const key = body?.key ?? `gk_${randomToken(32)}`;
    const record: KeyRecord = {
      id: newKeyId(),
      hash: await hashKey(key),
      createdAt: now,
      hint: keyHint(key),
      name: body?.name ?? null,
      expiresAt: body?.expiresAt ?? null,
    };
    await registerKey(c.env, tenant, record);
    return c.json({ ...listed(record), key, tenant }, 201);
  });

  admin.post("/tenants/:tenant/keys/import", async (c) => {
    const tenant = keyedTenantParam(c.req.param("tenant"));
    const body = await readJson(c.req.raw, { maxBytes: MAX_IMPORT_BODY_BYTES });
    return c.json(await importKeys(c.env, tenant, body, Date.now()));
  });

  admin.delete("/tenants/:tenant/keys/:id", async (c) => {
    const tenant = tenantParam(c.req.param("tenant"));
    const id = c.req.param("id");
    const change = await stubFor(c.env, tenant).removeKey(id);
    if (change.kind !== "ok") throw keyChangeError(change, tenant);
    await releaseKey(c.env, tenant, change.key);
    return c.body(null, 204);
  });
}
