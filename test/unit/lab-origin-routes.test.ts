import { afterEach, describe, expect, it } from "vitest";
import { closeLabOrigins, createOrigin, labOrigin } from "./lab-origin";

afterEach(closeLabOrigins);

async function start(opts: Record<string, unknown>): Promise<string> {
  const origin = labOrigin({ jitter: 0, ...opts });
  return `http://127.0.0.1:${await origin.listen(0)}`;
}

/** The service time the origin reports for one request to `path`. */
async function originMs(base: string, path: string): Promise<number> {
  const res = await fetch(`${base}${path}`);
  return ((await res.json()) as { originMs: number }).originMs;
}

async function configure(base: string, patch: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/__origin/config`, { method: "POST", body: JSON.stringify(patch) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("the lab origin's per-route service times", () => {
  it("gives a path the time of the longest prefix it starts with, and others serviceMs", async () => {
    const base = await start({ serviceMs: 5, routes: { "/v1/slow": 120, "/v1/slow/cheap": 30 } });
    expect(await originMs(base, "/v1/slow/items?x=1")).toBeGreaterThanOrEqual(115);
    const cheap = await originMs(base, "/v1/slow/cheap/1");
    expect(cheap).toBeGreaterThanOrEqual(25);
    expect(cheap).toBeLessThan(100);
    expect(await originMs(base, "/v1/fast/1")).toBeLessThan(60);
  });

  it("keeps routes across a patch without them and a reset; null clears them", async () => {
    const base = await start({ serviceMs: 5 });
    expect((await configure(base, { routes: { "/slow": 80 } })).status).toBe(200);
    await configure(base, { serviceMs: 6 });
    await fetch(`${base}/__origin/reset`, { method: "POST", body: "{}" });
    expect(await originMs(base, "/slow/a")).toBeGreaterThanOrEqual(75);
    const stats = (await (await fetch(`${base}/__origin/stats`)).json()) as Record<string, unknown>;
    expect(stats.byRoute).toEqual({ "/slow": 1 });
    expect((await configure(base, { routes: null })).body.config).toMatchObject({ routes: null });
    expect(await originMs(base, "/slow/a")).toBeLessThan(60);
  });

  it("refuses routes that are not {path prefix: service time} at the endpoint and in the factory", async () => {
    const base = await start({});
    for (const routes of [[1], { slow: 10 }, { "/slow": -1 }, { "/slow": "10" }]) {
      const { status, body } = await configure(base, { routes });
      expect(status).toBe(400);
      expect(body.error).toMatch(/^bad routes/);
    }
    expect(() => createOrigin({ routes: { "/slow": Number.NaN } })).toThrow(/bad routes/);
  });
});
