import { Hono } from "hono";
import { z } from "zod";
import type { Env } from "../env";
import { badRequest, notFound } from "../guard-errors";
import { tenantObjectName } from "../proxy/identity";
import { ANONYMOUS_TENANT, configWarnings, tenantConfigSchema, tenantNameSchema } from "../tenant/tenant-config";
import { TenantDirectory } from "../tenant/tenant-directory";
import { adminAuth } from "./admin-auth";
import { mapBounded } from "./bounded-map";
import { REGISTRY_CONCURRENCY, releaseKey } from "./key-registration";
import { mountKeyRoutes } from "./key-routes";
import { DASHBOARD_CSP, DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard-page";
import { mountOriginRoutes } from "./origin-routes";
import { overview } from "./overview";
import { renderPrometheus } from "./prometheus";
import { parseOrThrow, readJson } from "./json-body";
import { placement } from "../object-placement";

type AdminEnv = { Bindings: Env };

const listQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(1024).optional(),
});

function tenantParam(raw: string | undefined): string {
  return parseOrThrow(tenantNameSchema, raw, "tenant name in the path");
}

function stubFor(env: Env, tenant: string) {
  return env.TENANT_GUARD.getByName(tenantObjectName(tenant), placement(env));
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
    await mapBounded(keys, REGISTRY_CONCURRENCY, (key) => releaseKey(c.env, tenant, key));
    await directory.deleteTenant(tenant);
    return c.body(null, 204);
  });

  mountKeyRoutes(admin);

  return admin;
}
