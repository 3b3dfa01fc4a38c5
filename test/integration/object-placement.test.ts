import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import type { Env } from "../../src/env";
import { ADMIN_TOKEN, uniqueTenant } from "./support";

/** env.TENANT_GUARD recording the options of each `getByName`. */
function recordingNamespace(namespace: Env["TENANT_GUARD"]) {
  const options: unknown[] = [];
  const wrapped = new Proxy(namespace, {
    get(target, prop, receiver) {
      if (prop !== "getByName") return Reflect.get(target, prop, receiver);
      return (name: string, given?: DurableObjectNamespaceGetDurableObjectOptions) => {
        options.push(given);
        return target.getByName(name, given);
      };
    },
  });
  return { wrapped, options };
}

async function adminPut(overrides: Partial<Record<keyof Env, unknown>>, tenant: string) {
  const app = createApp({ sink: () => ({ record: () => {} }), random: () => 0 });
  const request = new Request(`http://guard.test/__guard/tenants/${tenant}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ rate: 5, burst: 10, maxInFlight: 4, maxQueue: 8, maxWaitMs: 1000 }),
  });
  const response = await app.fetch(request, { ...env, ...overrides } as Env, createExecutionContext());
  return { response, body: await response.text() };
}

describe("DO_LOCATION_HINT (object placement)", () => {
  it("creates the tenant's object with the configured location hint", async () => {
    const { wrapped, options } = recordingNamespace(env.TENANT_GUARD);
    const { response } = await adminPut({ TENANT_GUARD: wrapped, DO_LOCATION_HINT: "weur" }, uniqueTenant("placed"));
    expect(response.status).toBe(200);
    expect(options.length).toBeGreaterThan(0);
    for (const given of options) expect(given).toEqual({ locationHint: "weur" });
  });

  it("passes no hint when none is set", async () => {
    const { wrapped, options } = recordingNamespace(env.TENANT_GUARD);
    const { response } = await adminPut({ TENANT_GUARD: wrapped, DO_LOCATION_HINT: "" }, uniqueTenant("unplaced"));
    expect(response.status).toBe(200);
    expect(options).toEqual(options.map(() => undefined));
  });

  it("refuses a hint that is not a region, naming the setting", async () => {
    const { response, body } = await adminPut({ DO_LOCATION_HINT: "mars" }, uniqueTenant("misplaced"));
    expect(response.status).toBe(500);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(body).toContain("DO_LOCATION_HINT");
  });
});
