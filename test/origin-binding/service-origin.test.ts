/**
 * The origin as a service binding (`ORIGIN`, recipes/service-binding), with ORIGIN_SIGNING_SECRET
 * set: through the real Worker, requests reach the bound Worker (test/origin-binding/origin-worker.mjs,
 * which answers with what it received) with the deadline headers and a signature the Node
 * verifier accepts; ORIGIN_URL is unset here, and the deadline still aborts the call.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SeenRequests, verifyGuardRequest } from "../../examples/verify-signature.mjs";
import { SERVICE_BASE } from "../../src/origin-settings";

const ADMIN_TOKEN = "test-admin-token-0123456789";
const SECRET = "origin-binding-secret-0123456789abcdef";

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
}

function guardFetch(path: string, init: RequestInit = {}) {
  return exports.default.fetch(new Request(`https://guard.test${path}`, init));
}

async function tenantKey(tenant: string): Promise<string> {
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  const limits = { rate: 200, burst: 1000, maxInFlight: 10, maxQueue: 10, maxWaitMs: 2000 };
  const put = await guardFetch(`/__guard/tenants/${tenant}`, {
    method: "PUT",
    headers: auth,
    body: JSON.stringify(limits),
  });
  expect(put.status).toBe(200);
  const key = `key-${tenant}-0123456789abcdef`;
  const post = await guardFetch(`/__guard/tenants/${tenant}/keys`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ key }),
  });
  expect(post.status).toBe(201);
  return key;
}

function asReceived(received: Received) {
  const url = new URL(received.url);
  return { method: received.method, path: url.pathname + url.search, headers: received.headers };
}

describe("an origin behind a service binding", () => {
  it("has no ORIGIN_URL here: the binding is the origin", () => {
    expect(env.ORIGIN_URL).toBe("");
  });

  it("forwards to the bound Worker with the path, query, deadline headers and the guard's headers", async () => {
    const key = await tenantKey("bound-forward");
    const sent = Date.now();
    const response = await guardFetch("/v1/items?page=2", {
      method: "POST",
      headers: { "x-api-key": key, "x-request-timeout-ms": "3000", "content-type": "text/plain" },
      body: "hello",
    });
    expect(response.status).toBe(200);
    const received = (await response.json()) as Received;
    expect(received.method).toBe("POST");
    expect(received.url).toBe(`${SERVICE_BASE}/v1/items?page=2`);
    expect(received.headers["x-guard-tenant"]).toBe("bound-forward");
    const deadline = Number(received.headers["x-request-deadline"]);
    expect(deadline).toBeGreaterThanOrEqual(sent + 2_900);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 3_000);
    expect(Number(received.headers["x-request-timeout-ms"])).toBeLessThanOrEqual(3_000);
    expect(Number(received.headers["x-request-timeout-ms"])).toBeGreaterThan(2_000);
  });

  it("signs what it sends to the bound Worker; the verifier accepts it once and refuses it replayed or forged", async () => {
    const key = await tenantKey("bound-signed");
    const response = await guardFetch("/v1/reports?from=1", { headers: { "x-api-key": key } });
    const received = asReceived((await response.json()) as Received);
    const seen = new SeenRequests();
    expect(verifyGuardRequest(received, { secrets: [SECRET], seen })).toMatchObject({
      ok: true,
      tenant: "bound-signed",
    });
    expect(verifyGuardRequest(received, { secrets: [SECRET], seen })).toEqual({ ok: false, reason: "replayed" });
    const forged = { ...received, headers: { ...received.headers, "x-guard-tenant": "someone-else" } };
    expect(verifyGuardRequest(forged, { secrets: [SECRET] })).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("aborts the bound Worker's call at the deadline: 504 deadline_exceeded", async () => {
    const key = await tenantKey("bound-deadline");
    const started = Date.now();
    const response = await guardFetch("/slow/x", { headers: { "x-api-key": key, "x-request-timeout-ms": "200" } });
    expect(response.status).toBe(504);
    expect(((await response.json()) as { reason: string }).reason).toBe("deadline_exceeded");
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});
