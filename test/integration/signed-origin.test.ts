/**
 * ORIGIN_SIGNING_SECRET through the real Worker: the requests it forwards carry a signature the
 * Node verifier of examples/ accepts, over the path and query the origin receives; the same
 * request sent again, or one with a changed tenant or path, is refused; a client can neither
 * send its own signature through nor set a bad secret unnoticed.
 */
import { afterEach, describe, expect, it } from "vitest";
import { SeenRequests, verifyGuardRequest } from "../../examples/verify-signature.mjs";
import { type FakeOrigin, installFakeOrigin } from "./fake-origin";
import { createTenant, proxied, recordingGuard, uniqueTenant } from "./support";

const SECRET = "integration-signing-secret-0123456789abcdef";

let origin: FakeOrigin | undefined;
afterEach(() => origin?.restore());

/** What the origin saw, as the verifier takes it: the request target as received. */
function asReceived(request: Request) {
  const url = new URL(request.url);
  return { method: request.method, path: url.pathname + url.search, headers: request.headers };
}

async function signedRequest(path = "/v1/reports?from=3&to=9", headers: Record<string, string> = {}) {
  origin = installFakeOrigin();
  const tenant = uniqueTenant("signed");
  const key = await createTenant(tenant);
  const guard = recordingGuard({ ORIGIN_SIGNING_SECRET: SECRET, ORIGIN_URL: "http://origin.test/base" });
  const { response } = await guard.send(key, headers, { path });
  expect(response.status).toBe(200);
  expect(origin.requests).toHaveLength(1);
  return { tenant, seen: origin.requests[0]! };
}

describe("signed forwarding (ORIGIN_SIGNING_SECRET)", () => {
  it("signs the forwarded request so that the origin's verifier accepts it and learns its tenant", async () => {
    const { tenant, seen } = await signedRequest();
    expect(new URL(seen.url).pathname).toBe("/base/v1/reports");
    expect(seen.headers.get("x-guard-signature")).toMatch(/^v1=[0-9a-f]{64}$/);
    const timestamp = Number(seen.headers.get("x-guard-timestamp"));
    expect(Math.abs(Date.now() - timestamp)).toBeLessThan(5_000);
    const check = verifyGuardRequest(asReceived(seen), { secrets: [SECRET], seen: new SeenRequests() });
    expect(check).toMatchObject({ ok: true, tenant, priority: "normal" });
  });

  it("lets the verifier refuse the same forwarded request replayed", async () => {
    const { seen } = await signedRequest();
    const cache = new SeenRequests();
    expect(verifyGuardRequest(asReceived(seen), { secrets: [SECRET], seen: cache }).ok).toBe(true);
    expect(verifyGuardRequest(asReceived(seen), { secrets: [SECRET], seen: cache })).toEqual({
      ok: false,
      reason: "replayed",
    });
  });

  it("lets the verifier refuse it forged: another tenant, path, query or secret", async () => {
    const { seen } = await signedRequest();
    const received = asReceived(seen);
    const forgedTenant = new Headers(seen.headers);
    forgedTenant.set("x-guard-tenant", "someone-else");
    const refused = { ok: false, reason: "bad_signature" };
    expect(verifyGuardRequest({ ...received, headers: forgedTenant }, { secrets: [SECRET] })).toEqual(refused);
    expect(verifyGuardRequest({ ...received, path: "/base/v1/admin?from=3&to=9" }, { secrets: [SECRET] })).toEqual(
      refused,
    );
    expect(verifyGuardRequest({ ...received, path: "/base/v1/reports?from=0" }, { secrets: [SECRET] })).toEqual(
      refused,
    );
    const otherSecret = "another-secret-0123456789abcdefghijklmn";
    expect(verifyGuardRequest(received, { secrets: [otherSecret] })).toEqual(refused);
  });

  it("replaces a client's own signature and timestamp with the guard's", async () => {
    const forged = `v1=${"0".repeat(64)}`;
    const { seen } = await signedRequest("/x", { "x-guard-signature": forged, "x-guard-timestamp": "1" });
    expect(seen.headers.get("x-guard-signature")).not.toBe(forged);
    expect(seen.headers.get("x-guard-timestamp")).not.toBe("1");
    expect(verifyGuardRequest(asReceived(seen), { secrets: [SECRET] }).ok).toBe(true);
  });

  it("sends no signature when no secret is set, and drops a client's", async () => {
    origin = installFakeOrigin();
    const key = await createTenant(uniqueTenant("unsigned"));
    const response = await proxied(key, "/x", {
      headers: { "x-guard-signature": `v1=${"0".repeat(64)}`, "x-guard-timestamp": "1" },
    });
    await response.text();
    const seen = origin.requests[0]!;
    expect(seen.headers.has("x-guard-signature")).toBe(false);
    expect(seen.headers.has("x-guard-timestamp")).toBe(false);
  });

  it.each([
    ["too short", "short-secret"],
    ["with a space", "a secret with spaces in it 0123456789abcdef"],
  ])(
    "answers 500 misconfigured naming ORIGIN_SIGNING_SECRET (%s), never its value, and forwards nothing",
    async (_why, bad) => {
      origin = installFakeOrigin();
      const key = await createTenant(uniqueTenant("badsecret"));
      const { response, body } = await recordingGuard({ ORIGIN_SIGNING_SECRET: bad }).send(key, {}, { path: "/x" });
      expect(response.status).toBe(500);
      expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(body).toContain("ORIGIN_SIGNING_SECRET");
      expect(body).not.toContain(bad);
      expect(origin.requests).toHaveLength(0);
    },
  );

  it("answers 500 misconfigured naming ORIGIN when it is bound to something that is not a service", async () => {
    origin = installFakeOrigin();
    const key = await createTenant(uniqueTenant("badorigin"));
    const { response, body } = await recordingGuard({ ORIGIN: "https://not-a-binding" }).send(key, {}, { path: "/x" });
    expect(response.status).toBe(500);
    expect(body).toContain("ORIGIN");
    expect(body).not.toContain("not-a-binding");
    expect(origin.requests).toHaveLength(0);
  });
});
