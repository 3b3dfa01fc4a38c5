import { Hono } from "hono";
import { z } from "zod";
import type { Env } from "../env";
import type { ProblemError } from "../problem";
import { badRequest, guardError, notFound } from "../guard-errors";
import { tenantObjectName } from "../proxy/identity";
import type { KeyChange } from "../tenant-guard";
import { ANONYMOUS_TENANT, configWarnings, tenantConfigSchema, tenantNameSchema } from "../tenant/tenant-config";
import { apiKeySchema } from "../tenant/api-key-format";
import { keyRegistryName } from "../tenant/key-claim";
import type { KeyRecord } from "../tenant/tenant-store";
import { TenantDirectory, hashKey } from "../tenant/tenant-directory";
import { adminAuth } from "./admin-auth";
import { DASHBOARD_CSP, DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard-page";
import { mountOriginRoutes } from "./origin-routes";
import { overview } from "./overview";
import { renderPrometheus } from "./prometheus";
import { parseOrThrow, readJson } from "./json-body";
import { placement } from "../object-placement";

type AdminEnv = { Bindings: Env };

const registerKeySchema = z
  .strictObject({
    key: apiKeySchema.optional(),
  })
  .optional();

const listQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(1024).optional(),
});

function randomToken(bytes: number): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function tenantParam(raw: string | undefined): string {
  return parseOrThrow(tenantNameSchema, raw, "tenant name in the path");
}

function conflict(detail: string): ProblemError {
  return guardError("conflict", detail);
}

/**
 * Frees a key this tenant owned: its KV entry goes only if the registry agrees it was this
 * tenant's, so deleting one tenant's key can never revoke another's.
 */
async function releaseKey(env: Env, directory: TenantDirectory, tenant: string, key: KeyRecord): Promise<void> {
  const released = await env.KEY_REGISTRY.getByName(keyRegistryName(key.hash), placement(env)).release({
    tenant,
    id: key.id,
  });
  if (released.kind === "released") return directory.deleteKey(key.hash);
  // Registered before the registry: the KV entry itself says whose it is.
  const entry = released.kind === "unclaimed" ? await directory.getKey(key.hash) : null;
  if (entry?.tenant === tenant && entry.id === key.id) await directory.deleteKey(key.hash);
}

function stubFor(env: Env, tenant: string) {
  return env.TENANT_GUARD.getByName(tenantObjectName(tenant), placement(env));
}

function keyChangeError(change: Exclude<KeyChange, { kind: "ok" }>, tenant: string): ProblemError {
  switch (change.kind) {
    case "unconfigured":
      return notFound(`tenant '${tenant}' does not exist; PUT /__guard/tenants/${tenant} first`);
    case "too_many_keys":
      return conflict(`tenant '${tenant}' already has ${change.max} keys; delete one first`);
    case "not_found":
      return notFound(`tenant '${tenant}' has no such key`);
  }
}

export function adminRoutes(): Hono<AdminEnv> {
  const admin = new Hono<AdminEnv>().basePath("/__guard");

  // The dashboard's page and script hold no data, so they are served before the auth check;
  // everything they show comes from /__guard/overview, which needs the token.
  const pageHeaders = {
    "content-security-policy": DASHBOARD_CSP,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
  admin.get("/dashboard", (c) => c.html(DASHBOARD_HTML, 200, pageHeaders));
  admin.get("/dashboard.js", (c) =>
    c.body(DASHBOARD_JS, 200, { ...pageHeaders, "content-type": "text/javascript; charset=utf-8" }),
  );

  admin.use("*", adminAuth);

  admin.get("/overview", async (c) => c.json(await overview(c.env), 200, { "cache-control": "no-store" }));

  admin.get("/metrics", async (c) =>
    c.body(renderPrometheus(await overview(c.env)), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    }),
  );

  mountOriginRoutes(admin);

  admin.get("/tenants", async (c) => {
    const query = parseOrThrow(listQuerySchema, c.req.query(), "query");
    return c.json(await new TenantDirectory(c.env.TENANTS).listTenants(query.cursor, query.limit));
  });

  admin.put("/tenants/:tenant", async (c) => {
    const tenant = tenantParam(c.req.param("tenant"));
    const body = await readJson(c.req.raw);
    const config = parseOrThrow(tenantConfigSchema, body, "tenant config");
    if (config.aggregate && tenant !== ANONYMOUS_TENANT) {
      throw badRequest("invalid tenant config: aggregate: only the anonymous tenant has an aggregate bound", {
        errors: [{ field: "aggregate", message: "only the anonymous tenant has an aggregate bound" }],
      });
    }
    // The object is the authority: limits apply there first, then the edge copy follows.
    const stored = await stubFor(c.env, tenant).configure(config);
    await new TenantDirectory(c.env.TENANTS).putTenant(tenant, stored);
    return c.json({ tenant, limits: stored, warnings: configWarnings(stored) });
  });

  admin.get("/tenants/:tenant", async (c) => {
    const tenant = tenantParam(c.req.param("tenant"));
    const stats = await stubFor(c.env, tenant).stats();
    if (!stats.limits) throw notFound(`tenant '${tenant}' does not exist`);
    return c.json({ tenant, ...stats });
  });

  admin.delete("/tenants/:tenant", async (c) => {
    const tenant = tenantParam(c.req.param("tenant"));
    const stub = stubFor(c.env, tenant);
    const directory = new TenantDirectory(c.env.TENANTS);
    const existed = (await stub.stats()).limits !== null || (await directory.tenant(tenant, Date.now())) !== null;
    if (!existed) throw notFound(`tenant '${tenant}' does not exist`);
    const keys = await stub.destroy();
    for (const key of keys) await releaseKey(c.env, directory, tenant, key);
    await directory.deleteTenant(tenant);
    return c.body(null, 204);
  });

  admin.get("/tenants/:tenant/keys", async (c) => {
    const tenant = tenantParam(c.req.param("tenant"));
    const keys = await stubFor(c.env, tenant).listKeys();
    return c.json({ tenant, keys: keys.map(({ id, hint, createdAt }) => ({ id, hint, createdAt })) });
  });

  admin.post("/tenants/:tenant/keys", async (c) => {
    const tenant = tenantParam(c.req.param("tenant"));
    if (tenant === ANONYMOUS_TENANT)
      throw badRequest("the anonymous tenant cannot have keys", { errors: [{ field: "tenant", message: "reserved" }] });
    const body = parseOrThrow(registerKeySchema, await readJson(c.req.raw, { optional: true }), "key request");
    const key = body?.key ?? `gk_${randomToken(32)}`;
    const hash = await hashKey(key);
    const directory = new TenantDirectory(c.env.TENANTS);
    const record = { id: `key_${randomToken(9)}`, hash, createdAt: Date.now(), hint: `${key.slice(0, 6)}…` };
    // A key registered before the registry existed is known to KV only.
    if (await directory.getKey(hash)) throw conflict("that key is already registered");
    // The registry, not KV (eventually consistent), decides: one owner per key, ever at once.
    const registry = c.env.KEY_REGISTRY.getByName(keyRegistryName(hash), placement(c.env));
    if ((await registry.claim({ tenant, id: record.id })).kind === "taken") {
      throw conflict("that key is already registered");
    }
    const change = await stubFor(c.env, tenant)
      .addKey(record)
      .catch(async (error: unknown) => {
        await registry.release({ tenant, id: record.id });
        throw error;
      });
    if (change.kind !== "ok") {
      await registry.release({ tenant, id: record.id });
      throw keyChangeError(change, tenant);
    }
    await directory.putKey(hash, { tenant, id: record.id });
    return c.json({ id: record.id, key, tenant }, 201);
  });

  admin.delete("/tenants/:tenant/keys/:id", async (c) => {
    const tenant = tenantParam(c.req.param("tenant"));
    const id = c.req.param("id");
    const change = await stubFor(c.env, tenant).removeKey(id);
    if (change.kind !== "ok") throw keyChangeError(change, tenant);
    await releaseKey(c.env, new TenantDirectory(c.env.TENANTS), tenant, change.key);
    return c.body(null, 204);
  });

  return admin;
}
