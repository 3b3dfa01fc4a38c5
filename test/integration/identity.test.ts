/**
 * IDENTITY in workerd: a JWT names its tenant, a bearer key is looked up like an API key, a
 * forged or expired token is a 401 that says why and never reaches the origin. The JWKS is
 * served by the stubbed global fetch (the same one the origin is), at a URL of each test's own.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import type { Env } from "../../src/env";
import { AUDIENCE, ISSUER, type SigningKey, jwksOf, signingKey, tokenFor } from "../jwt-fixtures";
import { type FakeOrigin, installFakeOrigin } from "./fake-origin";
import { LIMITS, admin, createTenant, guardFetch, uniqueTenant } from "./support";

let origin: FakeOrigin | undefined;
/** Each request's waitUntil work (its release, its lease renewals), settled after the test. */
let pending: ExecutionContext[] = [];
afterEach(async () => {
  await Promise.all(pending.map((ctx) => waitOnExecutionContext(ctx)));
  pending = [];
  origin?.restore();
});

let rsa: SigningKey;
let ec: SigningKey;
let hmac: SigningKey;
let intruder: SigningKey;
beforeAll(async () => {
  [rsa, ec, hmac, intruder] = await Promise.all([
    signingKey("RS256", "rsa-1"),
    signingKey("ES256", "ec-1"),
    signingKey("HS256", "hmac-1"),
    signingKey("RS256", "rsa-1"),
  ]);
});

/** The fake origin, and a JWKS endpoint beside it that counts its fetches. */
function originWithJwks(jwks: unknown = jwksOf(rsa, ec)) {
  const url = `https://idp.test/${crypto.randomUUID()}/jwks.json`;
  const counts = { jwks: 0, origin: 0 };
  const state = { up: true };
  origin = installFakeOrigin((request) => {
    if (request.url !== url) {
      counts.origin += 1;
      return Response.json({ ok: true });
    }
    counts.jwks += 1;
    return state.up ? Response.json(jwks) : new Response("down", { status: 503 });
  });
  return { url, counts, state };
}

/** The real Worker on the test env with `overrides`; returns a sender that reads the body. */
function guardWith(overrides: Partial<Record<keyof Env, string>>) {
  const app = createApp({ random: () => 0 });
  const guardEnv = { ...env, ...overrides } as Env;
  return async (headers: Record<string, string>, path = "/api/thing") => {
    const ctx = createExecutionContext();
    const response = await app.fetch(new Request(`http://guard.test${path}`, { headers }), guardEnv, ctx);
    const body = await response.text();
    pending.push(ctx);
    return { response, body, json: () => JSON.parse(body) as Record<string, unknown> };
  };
}

const jwtEnv = (url: string, extra: Partial<Record<keyof Env, string>> = {}) => ({
  IDENTITY: "jwt",
  JWT_ISSUER: ISSUER,
  JWT_AUDIENCE: AUDIENCE,
  JWKS_URL: url,
  ...extra,
});
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("IDENTITY=jwt", () => {
  it("charges a verified token to the tenant its sub claim names, forwarding Authorization", async () => {
    const { url, counts } = originWithJwks();
    const tenant = uniqueTenant("jwt");
    await createTenant(tenant);
    const send = guardWith(jwtEnv(url));
    const token = await tokenFor(rsa, { sub: tenant });
    const { response } = await send(bearer(token));
    expect(response.status).toBe(200);
    expect(origin?.requests.at(-1)?.headers.get("x-guard-tenant")).toBe(tenant);
    expect(origin?.requests.at(-1)?.headers.get("authorization")).toBe(`Bearer ${token}`);
    expect(counts.origin).toBe(1);
  });

  it("takes the tenant from the configured claim, verifies ES256, and strips Authorization when told", async () => {
    const { url } = originWithJwks();
    const tenant = uniqueTenant("claim");
    await createTenant(tenant);
    const send = guardWith(jwtEnv(url, { JWT_TENANT_CLAIM: "org", CREDENTIAL_TO_ORIGIN: "strip" }));
    const { response } = await send(bearer(await tokenFor(ec, { sub: "user-7", org: tenant })));
    expect(response.status).toBe(200);
    const forwarded = origin?.requests.at(-1);
    expect(forwarded?.headers.get("x-guard-tenant")).toBe(tenant);
    expect(forwarded?.headers.has("authorization")).toBe(false);
  });

  it("answers a forged token 401 invalid_token saying why, and the origin never sees it", async () => {
    const { url, counts } = originWithJwks();
    const tenant = uniqueTenant("forged");
    await createTenant(tenant);
    const { response, json } = await guardWith(jwtEnv(url))(bearer(await tokenFor(intruder, { sub: tenant })));
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="api", error="invalid_token"/);
    expect(json()).toMatchObject({
      type: "tag:ingress-guard,2026:problem:invalid-token",
      status: 401,
      reason: "bad_signature",
      detail: "the token's signature does not verify",
    });
    expect(counts.origin).toBe(0);
  });

  it("answers an expired token 401 with reason expired", async () => {
    const { url, counts } = originWithJwks();
    const tenant = uniqueTenant("expired");
    await createTenant(tenant);
    const nowS = Math.floor(Date.now() / 1000);
    const token = await tokenFor(rsa, { sub: tenant, exp: nowS - 120 }, nowS - 600);
    const { response, json } = await guardWith(jwtEnv(url))(bearer(token));
    expect(response.status).toBe(401);
    expect(json()).toMatchObject({ reason: "expired", detail: "the token has expired (exp)" });
    expect(response.headers.get("www-authenticate")).toContain('error_description="the token has expired (exp)"');
    expect(counts.origin).toBe(0);
  });

  it("answers a token for another audience or from another issuer 401, naming the claim", async () => {
    const { url } = originWithJwks();
    const send = guardWith(jwtEnv(url));
    const elsewhere = await send(bearer(await tokenFor(rsa, { sub: "x", aud: "https://other.test" })));
    const stranger = await send(bearer(await tokenFor(rsa, { sub: "x", iss: "https://evil.test/" })));
    expect(elsewhere.json()).toMatchObject({ status: 401, reason: "wrong_audience" });
    expect(stranger.json()).toMatchObject({ status: 401, reason: "wrong_issuer" });
  });

  it("treats a valid token naming no configured tenant like an unknown key: anonymous, or 401 with reject", async () => {
    const { url } = originWithJwks();
    const token = await tokenFor(rsa, { sub: uniqueTenant("nobody") });
    expect((await guardWith(jwtEnv(url))(bearer(token))).response.status).toBe(200);
    expect(origin?.requests.at(-1)?.headers.get("x-guard-tenant")).toBe("anonymous");
    const claimsAnonymous = await tokenFor(rsa, { sub: "anonymous" });
    await guardWith(jwtEnv(url))(bearer(claimsAnonymous));
    expect(origin?.requests.at(-1)?.headers.get("x-guard-tenant")).toBe("anonymous");
    const rejected = await guardWith(jwtEnv(url, { UNKNOWN_KEYS: "reject" }))(bearer(token));
    expect(rejected.response.status).toBe(401);
    expect(rejected.json()).toMatchObject({ status: 401, type: "about:blank" });
    expect(rejected.json().detail).toContain("sub claim names no configured tenant");
  });

  it("serves a request without a token as anonymous, and asks for one with reject", async () => {
    const { url } = originWithJwks();
    expect((await guardWith(jwtEnv(url))({})).response.status).toBe(200);
    const rejected = await guardWith(jwtEnv(url, { UNKNOWN_KEYS: "reject" }))({
      "x-api-key": "key-that-is-ignored-here",
    });
    expect(rejected.response.status).toBe(401);
    expect(rejected.response.headers.get("www-authenticate")).toBe('Bearer realm="api"');
  });

  it("fetches the JWKS once for many requests, and not again for tokens naming unknown kids", async () => {
    const { url, counts } = originWithJwks();
    const tenant = uniqueTenant("cached");
    await createTenant(tenant);
    const send = guardWith(jwtEnv(url));
    for (let i = 0; i < 5; i += 1) {
      expect((await send(bearer(await tokenFor(rsa, { sub: tenant, jti: `t${i}` })))).response.status).toBe(200);
    }
    for (let i = 0; i < 20; i += 1) {
      const unknown = await send(bearer(await tokenFor({ ...intruder, kid: `kid-${i}` }, { sub: tenant })));
      expect(unknown.json()).toMatchObject({ status: 401, reason: "unknown_key" });
    }
    expect(counts.jwks).toBe(1);
  });

  it("fails closed with 503 guard_unavailable while the JWKS cannot be fetched", async () => {
    const { url, counts, state } = originWithJwks();
    state.up = false;
    const { response, json } = await guardWith(jwtEnv(url))(bearer(await tokenFor(rsa, { sub: "someone" })));
    expect(response.status).toBe(503);
    expect(json()).toMatchObject({ reason: "guard_unavailable" });
    expect(counts.origin).toBe(0);
  });

  it("verifies HS256 against keys from the JWKS secret, without fetching anything", async () => {
    const { counts } = originWithJwks();
    const tenant = uniqueTenant("hs");
    await createTenant(tenant);
    const send = guardWith({
      IDENTITY: "jwt",
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_ALGORITHMS: "HS256",
      JWKS: JSON.stringify(jwksOf(hmac)),
    });
    expect((await send(bearer(await tokenFor(hmac, { sub: tenant })))).response.status).toBe(200);
    expect(origin?.requests.at(-1)?.headers.get("x-guard-tenant")).toBe(tenant);
    const rs = await send(bearer(await tokenFor(rsa, { sub: tenant })));
    expect(rs.json()).toMatchObject({ status: 401, reason: "algorithm_not_allowed" });
    expect(counts.jwks).toBe(0);
  });

  it("answers a bad JWT setting with a 500 naming it, never the JWKS secret", async () => {
    originWithJwks();
    const secret = JSON.stringify({ keys: [{ kty: "oct", k: "dG9vLXNob3J0" }] });
    const { response, body } = await guardWith({ IDENTITY: "jwt", JWT_ISSUER: ISSUER, JWKS: secret })({});
    expect(response.status).toBe(500);
    expect(body).toContain("JWT_AUDIENCE");
    expect(body).toContain("JWKS");
    expect(body).not.toContain("dG9vLXNob3J0");
  });
});

describe("IDENTITY=bearer and header:<name>", () => {
  it("looks up the bearer key like an API key, and ignores x-api-key", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("bearer");
    const key = await createTenant(tenant);
    const send = guardWith({ IDENTITY: "bearer" });
    expect((await send(bearer(key))).response.status).toBe(200);
    expect(origin.requests.at(-1)?.headers.get("x-guard-tenant")).toBe(tenant);
    expect(origin.requests.at(-1)?.headers.get("authorization")).toBe(`Bearer ${key}`);
    await send({ "x-api-key": key });
    expect(origin.requests.at(-1)?.headers.get("x-guard-tenant")).toBe("anonymous");
  });

  it("refuses an unregistered bearer key with reject, challenging for a Bearer key", async () => {
    origin = installFakeOrigin();
    const { response, json } = await guardWith({ IDENTITY: "bearer", UNKNOWN_KEYS: "reject" })(
      bearer("not-registered-key-0123456789"),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="api", error="invalid_token"/);
    expect(json().detail).toBe("the bearer token is not a registered API key");
    expect(origin.requests).toHaveLength(0);
  });

  it("reads the key from the configured header, and strips it from the origin request when told", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("hdr");
    const key = await createTenant(tenant);
    const send = guardWith({ IDENTITY: "header:X-Tenant-Key", CREDENTIAL_TO_ORIGIN: "strip" });
    expect((await send({ "x-tenant-key": key })).response.status).toBe(200);
    expect(origin.requests.at(-1)?.headers.get("x-guard-tenant")).toBe(tenant);
    expect(origin.requests.at(-1)?.headers.has("x-tenant-key")).toBe(false);
    const rejected = await guardWith({ IDENTITY: "header:x-tenant-key", UNKNOWN_KEYS: "reject" })({ "x-api-key": key });
    expect(rejected.response.headers.get("www-authenticate")).toBe('ApiKey header="x-tenant-key"');
  });
});

describe("the client address of anonymous traffic", () => {
  it("comes from cf-connecting-ip alone: a spoofed x-forwarded-for gets no bucket of its own", async () => {
    origin = installFakeOrigin();
    await admin("PUT", "/tenants/anonymous", { ...LIMITS, rate: 0.01, burst: 1 });
    try {
      const from = (ip: string, spoofed: string) =>
        guardFetch("/x", { headers: { "cf-connecting-ip": ip, "x-forwarded-for": spoofed, "x-real-ip": spoofed } });
      expect((await from("198.51.100.20", "203.0.113.1")).status).toBe(200);
      expect((await from("198.51.100.20", "203.0.113.2")).status).toBe(429);
      expect(origin.requests.at(-1)?.headers.get("x-forwarded-for")).toBe("198.51.100.20");
      expect(origin.requests.at(-1)?.headers.has("x-real-ip")).toBe(false);
    } finally {
      await admin("DELETE", "/tenants/anonymous");
    }
  });
});
