import { afterEach, describe, expect, it } from "vitest";
import { runInDurableObject } from "cloudflare:test";
import type { ImportOutcome, ImportReport } from "../../src/admin/key-import";
import { type FakeOrigin, installFakeOrigin } from "./fake-origin";
import { LIMITS, admin, createTenant, proxied, stats, tenantStub, uniqueTenant } from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => {
  origin?.restore();
  origin = undefined;
});

const SLOW = { timeout: 120_000 };

interface Listed {
  id: string;
  hint: string;
  name: string | null;
  createdAt: number;
  expiresAt: number | null;
}

const keyFor = (tenant: string, i: number) => `imp-${tenant}-${i}-0123456789`;

async function importKeys(tenant: string, keys: unknown[]): Promise<ImportReport> {
  const response = await admin("POST", `/tenants/${tenant}/keys/import`, { keys });
  if (response.status !== 200) throw new Error(`import failed: ${response.status} ${await response.text()}`);
  return (await response.json()) as ImportReport;
}

async function listAll(tenant: string, limit: number, between?: (page: number) => Promise<void>): Promise<Listed[][]> {
  const pages: Listed[][] = [];
  let cursor: string | null = null;
  do {
    const query: string = `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const response = await admin("GET", `/tenants/${tenant}/keys${query}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { keys: Listed[]; cursor: string | null };
    pages.push(body.keys);
    cursor = body.cursor;
    await between?.(pages.length);
  } while (cursor && pages.length < 100);
  return pages;
}

async function tenantOf(key: string): Promise<string | null> {
  const response = await proxied(key, "/whoami");
  await response.text();
  return origin?.requests.at(-1)?.headers.get("x-guard-tenant") ?? null;
}

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  return (await response.json()) as { detail: string; errors?: Array<{ field: string; message: string }> };
}

describe("bulk key import (issue 14, item 2)", () => {
  it("imports 1 000 keys in one call, reporting each item: created, unchanged, conflict, invalid", SLOW, async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("bulk");
    const other = uniqueTenant("bulkother");
    const existing = await createTenant(tenant);
    const othersKey = await createTenant(other);
    const expiresAt = Date.now() + 86_400_000;
    const items: unknown[] = Array.from({ length: 1_000 }, (_, i) => ({
      key: keyFor(tenant, i),
      name: `customer ${i}`,
    }));
    items[1] = { key: keyFor(tenant, 1), expiresAt };
    items[10] = { key: existing };
    items[20] = { key: othersKey, name: "stolen" };
    items[30] = { key: "short" };
    items[40] = { key: keyFor(tenant, 40), expiresAt: Date.now() - 1_000 };
    items[50] = { key: keyFor(tenant, 50), owner: "x" };
    items[60] = { key: keyFor(tenant, 0) };
    items[70] = "not an object";

    const report = await importKeys(tenant, items);

    expect(report.counts).toEqual({ created: 993, unchanged: 1, conflict: 1, invalid: 5 });
    expect(report.results).toHaveLength(1_000);
    const at = (index: number) => report.results[index] as ImportOutcome;
    expect(report.results.map((r) => r.index)).toEqual(items.map((_, i) => i));
    expect(at(0)).toMatchObject({ status: "created", id: expect.stringMatching(/^key_/), hint: "imp-bu…" });
    expect(at(10).status).toBe("unchanged");
    expect(at(20)).toMatchObject({ status: "conflict", detail: "another tenant has this key" });
    expect(at(30)).toMatchObject({ status: "invalid", errors: [{ field: "keys.30.key" }] });
    expect(at(40).errors?.[0]?.field).toBe("keys.40.expiresAt");
    expect(at(50).errors?.[0]).toEqual({ field: "keys.50.owner", message: "unknown field" });
    expect(at(60).errors?.[0]).toEqual({ field: "keys.60.key", message: "repeats keys.0.key" });
    expect(at(70).errors?.[0]?.field).toBe("keys.70");
    expect(JSON.stringify(report)).not.toContain(keyFor(tenant, 2));

    expect((await stats(tenant)).keys).toBe(994);
    expect(await tenantOf(keyFor(tenant, 999))).toBe(tenant);
    expect(await tenantOf(othersKey)).toBe(other);
    expect(await tenantOf(keyFor(tenant, 40))).toBe("anonymous");
    const listed = (await listAll(tenant, 1_000)).flat();
    expect(listed.find((k) => k.id === at(1).id)).toMatchObject({ name: null, expiresAt });
    expect(listed.find((k) => k.id === at(2).id)).toMatchObject({ name: "customer 2", expiresAt: null });
  });

  it("is idempotent: importing the same keys again changes nothing and reports them unchanged", SLOW, async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("again");
    const other = uniqueTenant("againother");
    await createTenant(tenant);
    const othersKey = await createTenant(other);
    const items = [...Array.from({ length: 300 }, (_, i) => ({ key: keyFor(tenant, i) })), { key: othersKey }];
    const first = await importKeys(tenant, items);
    expect(first.counts).toEqual({ created: 300, unchanged: 0, conflict: 1, invalid: 0 });
    const second = await importKeys(
      tenant,
      items.map((item) => ({ ...item, name: "renamed" })),
    );
    expect(second.counts).toEqual({ created: 0, unchanged: 300, conflict: 1, invalid: 0 });
    expect(second.results.map((r) => r.id)).toEqual(first.results.map((r) => r.id));
    expect((await stats(tenant)).keys).toBe(301);
    expect((await stats(other)).keys).toBe(1);
    expect(await tenantOf(othersKey)).toBe(other);
    expect(await tenantOf(keyFor(tenant, 299))).toBe(tenant);
  });

  it("refuses a bad call with the field named and changes nothing", async () => {
    const tenant = uniqueTenant("badimport");
    await createTenant(tenant);
    const tooMany = Array.from({ length: 1_001 }, (_, i) => ({ key: keyFor(tenant, i) }));
    const cases: Array<[unknown, number, string]> = [
      [{ keys: tooMany }, 400, "keys"],
      [{ keys: [] }, 400, "keys"],
      [{ keys: "abc" }, 400, "keys"],
      [{ keys: [{ key: keyFor(tenant, 1) }], dryRun: true }, 400, "dryRun"],
    ];
    for (const [body, status, field] of cases) {
      const problem = await expectProblem(await admin("POST", `/tenants/${tenant}/keys/import`, body), status);
      expect(problem.errors?.[0]?.field).toBe(field);
    }
    const huge = JSON.stringify({ keys: [{ key: "k".repeat(2 * 1024 * 1024) }] });
    await expectProblem(await admin("POST", `/tenants/${tenant}/keys/import`, huge), 413);
    await expectProblem(
      await admin("POST", `/tenants/${uniqueTenant("nobody")}/keys/import`, { keys: [{ key: keyFor(tenant, 1) }] }),
      404,
    );
    const anonymous = await expectProblem(await admin("POST", "/tenants/anonymous/keys/import", { keys: [] }), 400);
    expect(anonymous.errors?.[0]?.field).toBe("tenant");
    expect((await stats(tenant)).keys).toBe(1);
  });
});

describe("key listing at scale (issue 14, item 2)", () => {
  it("pages through a thousand keys with no duplicates or gaps, while keys are added", SLOW, async () => {
    const tenant = uniqueTenant("pages");
    await admin("PUT", `/tenants/${tenant}`, LIMITS);
    const report = await importKeys(
      tenant,
      Array.from({ length: 1_000 }, (_, i) => ({ key: keyFor(tenant, i) })),
    );
    const ids = new Set(report.results.flatMap((r) => (r.id ? [r.id] : [])));
    expect(ids.size).toBe(1_000);
    const added: string[] = [];
    const pages = await listAll(tenant, 150, async (page) => {
      if (page > 2) return;
      const response = await admin("POST", `/tenants/${tenant}/keys`, { key: `late-${tenant}-${page}-0123456789` });
      added.push(((await response.json()) as { id: string }).id);
    });
    const listed = pages.flat().map((k) => k.id);
    expect(new Set(listed).size).toBe(listed.length);
    expect(listed.filter((id) => ids.has(id)).sort()).toEqual([...ids].sort());
    expect(listed.filter((id) => !ids.has(id)).sort()).toEqual(added.sort());
    expect(pages).toHaveLength(7);
    expect(pages.slice(0, -1).every((page) => page.length === 150)).toBe(true);
  });

  it("refuses a limit past the bound and a cursor it did not give, naming the field", async () => {
    const tenant = uniqueTenant("pagebad");
    await createTenant(tenant);
    const limit = await expectProblem(await admin("GET", `/tenants/${tenant}/keys?limit=1001`), 400);
    expect(limit.errors?.[0]?.field).toBe("limit");
    const cursor = await expectProblem(await admin("GET", `/tenants/${tenant}/keys?cursor=bogus`), 400);
    expect(cursor.errors?.[0]?.field).toBe("cursor");
  });
});

describe("key metadata and expiry at the edge (issue 14, item 2)", () => {
  it("refuses a key with 401 key_expired from its expiry on, though the isolate cached it moments before", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("expiry");
    await admin("PUT", `/tenants/${tenant}`, LIMITS);
    const key = keyFor(tenant, 1);
    const expiresAt = Date.now() + 400;
    expect((await importKeys(tenant, [{ key, expiresAt }])).counts.created).toBe(1);
    expect(await tenantOf(key)).toBe(tenant);
    await scheduler.wait(Math.max(0, expiresAt - Date.now()) + 20);
    const refused = await proxied(key, "/whoami");
    const problem = await expectProblem(refused, 401);
    expect(problem).toMatchObject({ type: expect.stringContaining("key-expired"), expiredAt: expiresAt });
    expect(problem.detail).toContain(new Date(expiresAt).toISOString());
    expect(refused.headers.get("www-authenticate")).toContain("ApiKey");
    expect(origin.requests).toHaveLength(1);
  });

  it("gives a single registered key its name and expiry, shown in the listing", async () => {
    const tenant = uniqueTenant("meta");
    await admin("PUT", `/tenants/${tenant}`, LIMITS);
    const expiresAt = Date.now() + 60_000;
    const created = await admin("POST", `/tenants/${tenant}/keys`, { name: "ci robot", expiresAt });
    expect(created.status).toBe(201);
    const body = (await created.json()) as Listed & { key: string };
    expect(body).toMatchObject({ name: "ci robot", expiresAt });
    const [page] = await listAll(tenant, 10);
    expect(page).toEqual([{ id: body.id, hint: body.hint, name: "ci robot", createdAt: body.createdAt, expiresAt }]);
    const bad = await expectProblem(await admin("POST", `/tenants/${tenant}/keys`, { expiresAt: 5 }), 400);
    expect(bad.errors?.[0]?.field).toBe("expiresAt");
    expect((await stats(tenant)).keys).toBe(1);
  });
});

describe("keys stored by older versions (issue 14, item 2)", () => {
  it("moves a tenant's old one-record key list into its key table when the object starts", async () => {
    const tenant = uniqueTenant("legacy");
    await admin("PUT", `/tenants/${tenant}`, LIMITS);
    const legacy = [{ id: "key_old", hash: "a".repeat(64), createdAt: 1_000, hint: "old-ke…" }];
    await runInDurableObject(tenantStub(tenant), (_instance, state) => {
      state.storage.sql.exec("INSERT INTO record (name, value) VALUES ('keys', ?)", JSON.stringify(legacy));
    });
    await runInDurableObject(tenantStub(tenant), (_instance, state) => state.abort("test restart")).catch(
      () => undefined,
    );
    const [page] = await listAll(tenant, 10);
    expect(page).toEqual([{ id: "key_old", hint: "old-ke…", name: null, createdAt: 1_000, expiresAt: null }]);
    await runInDurableObject(tenantStub(tenant), (_instance, state) => {
      expect(state.storage.sql.exec("SELECT name FROM record WHERE name = 'keys'").toArray()).toEqual([]);
    });
  });
});
