/**
 * Keys and tokens for the identity tests, made with WebCrypto in the test itself (no key
 * material is checked in). Shared by the unit tests (Node) and the integration tests (workerd).
 */
import { type JWK, type JWTPayload, SignJWT, exportJWK } from "jose";

export const ISSUER = "https://idp.example.test/";
export const AUDIENCE = "https://api.example.test";

export interface SigningKey {
  readonly kid: string;
  readonly alg: "RS256" | "ES256" | "HS256";
  readonly privateKey: CryptoKey;
  /** What a JWKS publishes: the public half (the secret itself for HS256). */
  readonly jwk: JWK;
}

export async function signingKey(alg: SigningKey["alg"], kid: string): Promise<SigningKey> {
  if (alg === "HS256") {
    const key = (await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256", length: 256 }, true, [
      "sign",
      "verify",
    ])) as CryptoKey;
    return { kid, alg, privateKey: key, jwk: { ...(await exportJWK(key)), kid } };
  }
  const params =
    alg === "RS256"
      ? { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }
      : { name: "ECDSA", namedCurve: "P-256" };
  const pair = (await crypto.subtle.generateKey(params, true, ["sign", "verify"])) as CryptoKeyPair;
  return { kid, alg, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" } };
}

export const jwksOf = (...keys: SigningKey[]) => ({ keys: keys.map((key) => key.jwk) });

/** A token signed by `key`, valid for an hour from `nowS` unless `claims` say otherwise. */
export function tokenFor(key: SigningKey, claims: JWTPayload, nowS = Math.floor(Date.now() / 1000)): Promise<string> {
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, iat: nowS, exp: nowS + 3600, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .sign(key.privateKey);
}

/** `token` with its header replaced (signature kept): what a client forging the header sends. */
export function withHeader(token: string, header: Record<string, unknown>): string {
  const [, payload, signature] = token.split(".");
  const encoded = btoa(JSON.stringify(header)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${encoded}.${payload}.${signature}`;
}

/** `token` with its claims replaced (signature kept). */
export function withClaims(token: string, claims: Record<string, unknown>): string {
  const [header, , signature] = token.split(".");
  const encoded = btoa(JSON.stringify(claims)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${header}.${encoded}.${signature}`;
}
