import { beforeAll, describe, expect, it } from "vitest";
import { type VerificationKey, parseJwks, selectKey } from "../../src/identity/jwks";
import type { KeySource } from "../../src/identity/jwks-source";
import { type JwtSettings, JwtVerifier, MAX_TOKEN_BYTES } from "../../src/identity/jwt-verifier";
import {
  AUDIENCE,
  ISSUER,
  type SigningKey,
  jwksOf,
  signingKey,
  tokenFor,
  withClaims,
  withHeader,
} from "../jwt-fixtures";

const NOW_S = 1_800_000_000;
const NOW = NOW_S * 1000;
const SETTINGS: JwtSettings = {
  issuer: ISSUER,
  audience: AUDIENCE,
  tenantClaim: "tenant",
  algorithms: ["HS256", "RS256", "ES256"],
  clockSkewS: 30,
};

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

/** The keys of `signing` as the verifier sees them, counting how often it asks for them. */
function countingSource(...signing: SigningKey[]) {
  const parsed = parseJwks(jwksOf(...signing), true);
  if (parsed.kind !== "keys") throw new Error(parsed.problem);
  const source = {
    asked: 0,
    keys: async (): Promise<readonly VerificationKey[]> => {
      source.asked += 1;
      return parsed.keys;
    },
  } satisfies KeySource & { asked: number };
  return source;
}

function verifier(settings: Partial<JwtSettings> = {}, source: KeySource = countingSource(rsa, ec, hmac)) {
  return new JwtVerifier({ ...SETTINGS, ...settings }, source);
}

describe("JWT verification", () => {
  it.each(["RS256", "ES256", "HS256"] as const)("accepts a %s token and names the tenant of its claim", async (alg) => {
    const key = { RS256: rsa, ES256: ec, HS256: hmac }[alg];
    const token = await tokenFor(key, { tenant: "acme" }, NOW_S);
    expect(await verifier().verify(token, NOW)).toEqual({ kind: "valid", tenant: "acme" });
  });

  it("refuses a token signed by another key under a known kid (forged)", async () => {
    const forged = await tokenFor(intruder, { tenant: "acme" }, NOW_S);
    expect(await verifier().verify(forged, NOW)).toMatchObject({ kind: "invalid", reason: "bad_signature" });
  });

  it("refuses a token whose claims were changed after signing", async () => {
    const token = await tokenFor(rsa, { tenant: "acme" }, NOW_S);
    const tampered = withClaims(token, { iss: ISSUER, aud: AUDIENCE, exp: NOW_S + 60, tenant: "victim" });
    expect(await verifier().verify(tampered, NOW)).toMatchObject({ reason: "bad_signature" });
  });

  it("refuses an expired token, within the clock skew only", async () => {
    const token = await tokenFor(rsa, { tenant: "acme", exp: NOW_S - 10 }, NOW_S - 100);
    expect(await verifier().verify(token, NOW)).toEqual({ kind: "valid", tenant: "acme" });
    expect(await verifier({ clockSkewS: 0 }).verify(token, NOW)).toMatchObject({
      kind: "invalid",
      reason: "expired",
      detail: "the token has expired (exp)",
    });
  });

  it("refuses a token that is not valid yet, a wrong issuer and a wrong audience, naming the check", async () => {
    const early = await tokenFor(rsa, { tenant: "acme", nbf: NOW_S + 120 }, NOW_S);
    const stranger = await tokenFor(rsa, { tenant: "acme", iss: "https://evil.test/" }, NOW_S);
    const elsewhere = await tokenFor(rsa, { tenant: "acme", aud: "https://other.test" }, NOW_S);
    const v = verifier();
    expect(await v.verify(early, NOW)).toMatchObject({ reason: "not_yet_valid" });
    expect(await v.verify(stranger, NOW)).toMatchObject({ reason: "wrong_issuer" });
    expect(await v.verify(elsewhere, NOW)).toMatchObject({ reason: "wrong_audience" });
  });

  it("requires exp and a string tenant claim", async () => {
    const forever = await tokenFor(rsa, { tenant: "acme", exp: undefined }, NOW_S);
    const nobody = await tokenFor(rsa, {}, NOW_S);
    const numeric = await tokenFor(rsa, { tenant: 42 }, NOW_S);
    const v = verifier();
    expect(await v.verify(forever, NOW)).toMatchObject({
      reason: "claim_missing",
      detail: "the token has no exp claim",
    });
    expect(await v.verify(nobody, NOW)).toMatchObject({ reason: "claim_missing" });
    expect(await v.verify(numeric, NOW)).toMatchObject({ reason: "claim_missing" });
  });

  it("refuses alg none, an algorithm off the list, and garbage before looking for any key", async () => {
    const source = countingSource(rsa, ec, hmac);
    const v = verifier({ algorithms: ["RS256"] }, source);
    const token = await tokenFor(rsa, { tenant: "acme" }, NOW_S);
    const hs = await tokenFor(hmac, { tenant: "acme" }, NOW_S);
    expect(await v.verify(withHeader(token, { alg: "none" }), NOW)).toMatchObject({ reason: "algorithm_not_allowed" });
    expect(await v.verify(hs, NOW)).toMatchObject({ reason: "algorithm_not_allowed" });
    expect(await v.verify("not.a-jwt", NOW)).toMatchObject({ reason: "token_malformed" });
    expect(await v.verify("a.b.c", NOW)).toMatchObject({ reason: "token_malformed" });
    expect(await v.verify(`${"a".repeat(MAX_TOKEN_BYTES)}.b.c`, NOW)).toMatchObject({ reason: "token_too_large" });
    expect(source.asked).toBe(0);
  });

  it("never verifies an RSA public key as an HMAC secret (algorithm confusion)", async () => {
    const rsaOnly = parseJwks(jwksOf(rsa), true);
    if (rsaOnly.kind !== "keys") throw new Error("bad fixture");
    const hs = await tokenFor({ ...hmac, kid: "rsa-1" }, { tenant: "acme" }, NOW_S);
    const v = verifier({}, { keys: async () => rsaOnly.keys });
    expect(await v.verify(hs, NOW)).toMatchObject({ reason: "unknown_key" });
  });

  it("refuses a kid that names no key", async () => {
    const token = await tokenFor({ ...rsa, kid: "rotated-away" }, { tenant: "acme" }, NOW_S);
    expect(await verifier().verify(token, NOW)).toMatchObject({ reason: "unknown_key" });
  });

  it("serves a verified token from its cache, but not past its exp", async () => {
    const source = countingSource(rsa);
    const v = verifier({ clockSkewS: 0 }, source);
    const token = await tokenFor(rsa, { tenant: "acme", exp: NOW_S + 20 }, NOW_S);
    expect(await v.verify(token, NOW)).toMatchObject({ kind: "valid" });
    expect(await v.verify(token, NOW + 10_000)).toMatchObject({ kind: "valid" });
    expect(source.asked).toBe(1);
    expect(await v.verify(token, NOW + 20_000)).toMatchObject({ reason: "expired" });
  });
});

describe("key selection", () => {
  it("selects by alg and kid, and refuses to guess between several keys without a kid", async () => {
    const other = await signingKey("RS256", "rsa-2");
    const parsed = parseJwks(jwksOf(rsa, other, ec), false);
    if (parsed.kind !== "keys") throw new Error(parsed.problem);
    expect(selectKey(parsed.keys, "RS256", "rsa-2")).toMatchObject({ kind: "one", key: { kid: "rsa-2" } });
    expect(selectKey(parsed.keys, "ES256", undefined)).toMatchObject({ kind: "one", key: { kid: "ec-1" } });
    expect(selectKey(parsed.keys, "RS256", undefined)).toEqual({ kind: "ambiguous" });
    expect(selectKey(parsed.keys, "ES256", "rsa-1")).toEqual({ kind: "none" });
  });

  it("keeps only public members, and takes HMAC keys from the secret only", () => {
    const set = { keys: [{ ...rsa.jwk, d: "private" }, hmac.jwk, { kty: "OKP", crv: "Ed25519", x: "abc" }] };
    const fetched = parseJwks(set, false);
    expect(fetched.kind === "keys" && fetched.keys.map((key) => key.alg)).toEqual(["RS256"]);
    expect(fetched.kind === "keys" && fetched.keys[0]?.jwk).not.toHaveProperty("d");
    expect(fetched.kind === "keys" && fetched.refused).toHaveLength(2);
    const secret = parseJwks(set, true);
    expect(secret.kind === "keys" && secret.keys.map((key) => key.alg)).toEqual(["RS256", "HS256"]);
  });

  it("refuses a short HMAC key, a key whose alg contradicts its type, and an empty set", () => {
    expect(parseJwks({ keys: [{ kty: "oct", k: "c2hvcnQ" }] }, true)).toMatchObject({ kind: "invalid" });
    expect(parseJwks({ keys: [{ ...rsa.jwk, alg: "HS256" }] }, true)).toMatchObject({ kind: "invalid" });
    expect(parseJwks({ keys: [] }, true)).toMatchObject({ kind: "invalid" });
    expect(parseJwks({ nokeys: 1 }, true)).toMatchObject({ kind: "invalid" });
  });
});
