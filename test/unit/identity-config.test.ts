import { describe, expect, it } from "vitest";
import { type Credential, challenge, credentialOf, refusalDetail } from "../../src/identity/credential";
import { type IdentityEnv, parseIdentityConfig } from "../../src/identity/identity-config";
import { AUDIENCE, ISSUER, jwksOf, signingKey } from "../jwt-fixtures";

function parsed(env: IdentityEnv) {
  const result = parseIdentityConfig(env);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

function problems(env: IdentityEnv) {
  const result = parseIdentityConfig(env);
  return result.ok ? [] : result.problems;
}

const JWT_ENV = {
  IDENTITY: "jwt",
  JWT_ISSUER: ISSUER,
  JWT_AUDIENCE: AUDIENCE,
  JWKS_URL: "https://idp.example.test/jwks",
};

describe("the IDENTITY setting", () => {
  it("defaults to the x-api-key header, forwarding the credential to the origin", () => {
    expect(parsed({})).toEqual({ identity: { kind: "header", header: "x-api-key" }, credentialToOrigin: "forward" });
    expect(parsed({ IDENTITY: "header:X-Tenant-Key", CREDENTIAL_TO_ORIGIN: "strip" })).toEqual({
      identity: { kind: "header", header: "x-tenant-key" },
      credentialToOrigin: "strip",
    });
    expect(parsed({ IDENTITY: "bearer" }).identity).toEqual({ kind: "bearer" });
  });

  it("takes jwt with its defaults: tenant from sub, RS256 and ES256, 30 s of clock skew", () => {
    expect(parsed(JWT_ENV).identity).toMatchObject({
      kind: "jwt",
      jwt: { issuer: ISSUER, audience: AUDIENCE, tenantClaim: "sub", algorithms: ["RS256", "ES256"], clockSkewS: 30 },
      keys: { kind: "url" },
    });
  });

  it.each([
    [{ IDENTITY: "cookie" }, "IDENTITY"],
    [{ IDENTITY: "header:" }, "IDENTITY"],
    [{ IDENTITY: "header:x-guard-tenant" }, "IDENTITY"],
    [{ IDENTITY: "header:bad name" }, "IDENTITY"],
    [{ CREDENTIAL_TO_ORIGIN: "maybe" }, "CREDENTIAL_TO_ORIGIN"],
    [{ ...JWT_ENV, JWT_ISSUER: undefined }, "JWT_ISSUER"],
    [{ ...JWT_ENV, JWT_AUDIENCE: "" }, "JWT_AUDIENCE"],
    [{ ...JWT_ENV, JWT_ALGORITHMS: "RS256,none" }, "JWT_ALGORITHMS"],
    [{ ...JWT_ENV, JWT_CLOCK_SKEW_S: "3600" }, "JWT_CLOCK_SKEW_S"],
    [{ ...JWT_ENV, JWKS_URL: "http://idp.example.test/jwks" }, "JWKS_URL"],
    [{ ...JWT_ENV, JWKS_URL: undefined }, "JWKS"],
    [{ ...JWT_ENV, JWKS: '{"keys":[]}' }, "JWKS"],
  ] as const)("refuses %j, naming %s", (env, setting) => {
    expect(problems(env).map((problem) => problem.setting)).toContain(setting);
  });

  it("reads a JWKS secret, never echoing it in a problem", async () => {
    const hmac = await signingKey("HS256", "h");
    const env = { ...JWT_ENV, JWKS_URL: undefined, JWKS: JSON.stringify(jwksOf(hmac)), JWT_ALGORITHMS: "HS256" };
    expect(parsed(env).identity).toMatchObject({ keys: { kind: "set", keys: [{ alg: "HS256", kid: "h" }] } });
    const short = problems({ ...env, JWKS: '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}' });
    expect(short).toEqual([expect.objectContaining({ setting: "JWKS", echo: false })]);
    expect(problems({ ...env, JWKS: "{not json" })).toEqual([
      expect.objectContaining({ setting: "JWKS", echo: false }),
    ]);
  });
});

describe("where the credential is read", () => {
  const headers = (init: Record<string, string>) => new Headers(init);
  const jwt = parsed(JWT_ENV).identity;

  it("reads the configured header, the bearer key, or the bearer token for jwt", () => {
    const h = headers({ "x-api-key": "k1", authorization: "Bearer  t0k.e.n" });
    expect(credentialOf(h, { kind: "header", header: "x-api-key" })).toEqual({ kind: "key", key: "k1" });
    expect(credentialOf(h, { kind: "bearer" })).toEqual({ kind: "key", key: "t0k.e.n" });
    expect(credentialOf(h, jwt)).toEqual({ kind: "token", token: "t0k.e.n" });
    expect(credentialOf(headers({ authorization: "bearer abc" }), { kind: "bearer" })).toEqual({
      kind: "key",
      key: "abc",
    });
  });

  it("finds no credential in another scheme, an empty bearer, or the other header", () => {
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearerabc"]) {
      expect(credentialOf(headers({ authorization }), { kind: "bearer" })).toEqual({ kind: "none" });
    }
    expect(credentialOf(headers({ authorization: "Bearer abc" }), { kind: "header", header: "x-api-key" })).toEqual({
      kind: "none",
    });
    expect(credentialOf(headers({ "x-api-key": "abc" }), jwt)).toEqual({ kind: "none" });
  });

  it("challenges with the scheme it expects, and an invalid_token error once a credential was sent", () => {
    const none: Credential = { kind: "none" };
    expect(challenge({ kind: "header", header: "x-api-key" })).toBe('ApiKey header="x-api-key"');
    expect(challenge(jwt)).toBe('Bearer realm="api"');
    expect(challenge(jwt, 'the "token" expired\n')).toBe(
      'Bearer realm="api", error="invalid_token", error_description="the  token  expired "',
    );
    expect(refusalDetail({ kind: "header", header: "x-key" }, none)).toBe("an API key is required in x-key");
    expect(refusalDetail(jwt, { kind: "token", token: "t" }, "acme")).toContain("sub claim names no configured tenant");
  });
});
