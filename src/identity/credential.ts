/**
 * Where a request's credential is, per the `IDENTITY` setting, and how a refusal names it back
 * (`WWW-Authenticate`). Pure: headers in, plain values out.
 */
import type { JwtSettings } from "./jwt-verifier";
import type { VerificationKey } from "./jwks";

export type JwtKeys =
  | { readonly kind: "set"; readonly keys: readonly VerificationKey[] }
  | { readonly kind: "url"; readonly url: URL };

export type IdentitySetting =
  | { readonly kind: "header"; readonly header: string }
  | { readonly kind: "bearer" }
  | { readonly kind: "jwt"; readonly jwt: JwtSettings; readonly keys: JwtKeys };

/** What the request carries: nothing the guard reads, an API key, or a token to verify. */
export type Credential =
  | { readonly kind: "none" }
  | { readonly kind: "key"; readonly key: string }
  | { readonly kind: "token"; readonly token: string };

/** The header the credential is read from (and, with CREDENTIAL_TO_ORIGIN=strip, dropped). */
export function credentialHeader(setting: IdentitySetting): string {
  return setting.kind === "header" ? setting.header : "authorization";
}

/** RFC 6750 §2.1: `Bearer` (any case), one or more spaces, the token. Other schemes are not ours. */
const BEARER = /^bearer +(\S+) *$/i;

export function credentialOf(headers: Headers, setting: IdentitySetting): Credential {
  const value = headers.get(credentialHeader(setting));
  if (setting.kind === "header") return value ? { kind: "key", key: value } : { kind: "none" };
  const token = value ? BEARER.exec(value)?.[1] : undefined;
  if (!token) return { kind: "none" };
  return setting.kind === "bearer" ? { kind: "key", key: token } : { kind: "token", token };
}

/** The key to forget from the isolate's key caches, when the credential is one. */
export function apiKeyOf(credential: Credential): string | null {
  return credential.kind === "key" ? credential.key : null;
}

/**
 * The client's address, for the anonymous per-client buckets and `x-forwarded-for`: Cloudflare
 * sets `cf-connecting-ip` itself and overwrites a client's, while `x-forwarded-for`,
 * `x-real-ip` and the like are whatever the client wrote, so they are never read.
 */
export function clientIpOf(headers: Headers): string | null {
  return headers.get("cf-connecting-ip");
}

/** A quoted-string of RFC 9110 §5.6.4 for a challenge parameter: no quote, backslash or control. */
function quoted(text: string): string {
  return `"${text.replace(/[^\x20-\x7e]|["\\]/g, " ")}"`;
}

/** `WWW-Authenticate` for a 401: the scheme the setting expects; `error` once a credential was sent. */
export function challenge(setting: IdentitySetting, error?: string): string {
  if (setting.kind === "header") return `ApiKey header=${quoted(setting.header)}`;
  if (error === undefined) return `Bearer realm="api"`;
  return `Bearer realm="api", error="invalid_token", error_description=${quoted(error)}`;
}

/** What a 401 of UNKNOWN_KEYS=reject says: the credential expected, or why the one sent is not enough. */
export function refusalDetail(setting: IdentitySetting, credential: Credential, tenant?: string): string {
  if (setting.kind === "header") {
    return credential.kind === "none"
      ? `an API key is required in ${setting.header}`
      : `the API key in ${setting.header} is not registered`;
  }
  if (setting.kind === "bearer") {
    return credential.kind === "none"
      ? "an API key is required: Authorization: Bearer <key>"
      : "the bearer token is not a registered API key";
  }
  return credential.kind === "none"
    ? "a token is required: Authorization: Bearer <JWT>"
    : `the token's ${setting.jwt.tenantClaim} claim names no configured tenant${tenant ? ` (${JSON.stringify(tenant).slice(0, 80)})` : ""}`;
}
