/**
 * Verifies a bearer JWT and names the tenant it speaks for, or says why it is refused.
 *
 * Cheapest refusal first, since a hostile client can send any number of garbage tokens: the
 * size bound (8 KiB) and the compact shape before anything is decoded; jose then parses the
 * header and checks `alg` against the allow-list before a key is looked for, and the key is
 * chosen by `alg` and `kid` before any signature check (one check per token at most). Claims
 * (`exp` required, `nbf`, `iss`, `aud`, with the configured clock skew) are checked by jose only
 * after the signature, so nothing is said about the claims of a token nobody signed.
 *
 * Verified tokens are cached per isolate by their SHA-256 (the token itself is not kept), until
 * the earlier of `exp` (+ skew) and VERIFIED_TTL_MS; so a key withdrawn from the JWKS still
 * admits a token it signed for at most that long after the set is refreshed.
 */
import { type JWTVerifyResult, errors, jwtVerify } from "jose";
import { LruCache } from "../lru-cache";
import { hashKey } from "../tenant/tenant-directory";
import type { JwtAlgorithm } from "./jwks";
import { importedKey, selectKey } from "./jwks";
import { type KeySource, fixedKeys, remoteJwks } from "./jwks-source";
import type { JwtKeys } from "./credential";

export const MAX_TOKEN_BYTES = 8 * 1024;
const VERIFIED_TTL_MS = 60_000;
/** 10 000 hashes and tenant names: about 2 MiB. Full-behaviour: least recently used evicted. */
const MAX_VERIFIED = 10_000;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface JwtSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly tenantClaim: string;
  readonly algorithms: readonly JwtAlgorithm[];
  readonly clockSkewS: number;
}

/** Why a token was refused: the `reason` of the 401 problem. */
export type TokenRejection =
  | "token_too_large"
  | "token_malformed"
  | "algorithm_not_allowed"
  | "unknown_key"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "wrong_issuer"
  | "wrong_audience"
  | "claim_missing"
  | "claim_invalid";

export type TokenVerdict =
  | { readonly kind: "valid"; readonly tenant: string }
  | { readonly kind: "invalid"; readonly reason: TokenRejection; readonly detail: string };

const invalid = (reason: TokenRejection, detail: string): TokenVerdict => ({ kind: "invalid", reason, detail });

/** Thrown from the key lookup inside jose's verification, to come out as its verdict. */
class KeyRefused extends Error {
  constructor(readonly verdict: TokenVerdict) {
    super(verdict.kind === "invalid" ? verdict.detail : "");
  }
}

const CLAIM_REASON: Record<string, TokenRejection> = {
  nbf: "not_yet_valid",
  iss: "wrong_issuer",
  aud: "wrong_audience",
};

/** jose's refusal, as a verdict; anything else (the JWKS unavailable, a bug) goes on up. */
function verdictOf(error: unknown, settings: JwtSettings): TokenVerdict {
  if (error instanceof KeyRefused) return error.verdict;
  if (error instanceof errors.JWTExpired) return invalid("expired", "the token has expired (exp)");
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") return invalid("claim_missing", `the token has no ${error.claim} claim`);
    const reason = CLAIM_REASON[error.claim] ?? "claim_invalid";
    if (reason === "wrong_issuer") return invalid(reason, `the token was not issued by ${settings.issuer} (iss)`);
    if (reason === "wrong_audience") return invalid(reason, `the token is not meant for ${settings.audience} (aud)`);
    if (reason === "not_yet_valid") return invalid(reason, "the token is not valid yet (nbf)");
    return invalid(reason, `the token's ${error.claim} claim is invalid`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return invalid("algorithm_not_allowed", `the token's alg is not one of ${settings.algorithms.join(", ")}`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return invalid("bad_signature", "the token's signature does not verify");
  }
  if (error instanceof errors.JOSEError) return invalid("token_malformed", "the token is not a well-formed signed JWT");
  throw error;
}

export class JwtVerifier {
  private readonly verified = new LruCache<string, { tenant: string; until: number }>(MAX_VERIFIED, VERIFIED_TTL_MS);

  constructor(
    private readonly settings: JwtSettings,
    private readonly source: KeySource,
  ) {}

  async verify(token: string, now: number): Promise<TokenVerdict> {
    if (token.length > MAX_TOKEN_BYTES) return invalid("token_too_large", `the token is over ${MAX_TOKEN_BYTES} bytes`);
    if (!COMPACT_JWS.test(token))
      return invalid("token_malformed", "the token is not a compact JWS (three base64url parts)");
    const hash = await hashKey(token);
    const hit = this.verified.get(hash, now);
    if (hit && now < hit.until) return { kind: "valid", tenant: hit.tenant };

    let result: JWTVerifyResult;
    try {
      result = await jwtVerify(token, (header) => this.keyFor(header.alg ?? "", header.kid, now), {
        algorithms: [...this.settings.algorithms],
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        requiredClaims: ["exp"],
        clockTolerance: this.settings.clockSkewS,
        currentDate: new Date(now),
      });
    } catch (error) {
      return verdictOf(error, this.settings);
    }
    const tenant = result.payload[this.settings.tenantClaim];
    if (typeof tenant !== "string" || tenant === "") {
      return invalid("claim_missing", `the token has no string ${this.settings.tenantClaim} claim naming its tenant`);
    }
    const expMs = ((result.payload.exp ?? 0) + this.settings.clockSkewS) * 1000;
    this.verified.set(hash, { tenant, until: Math.min(expMs, now + VERIFIED_TTL_MS) }, now);
    return { kind: "valid", tenant };
  }

  private async keyFor(alg: string, kid: string | undefined, now: number): Promise<CryptoKey | Uint8Array> {
    const choice = selectKey(await this.source.keys(now, kid), alg, kid);
    if (choice.kind === "one") return importedKey(choice.key);
    throw new KeyRefused(
      choice.kind === "none"
        ? invalid(
            "unknown_key",
            kid === undefined ? `no ${alg} key is configured` : "the token's kid names no known key",
          )
        : invalid("unknown_key", `the token names no kid and several ${alg} keys are configured`),
    );
  }
}

const verifiers = new WeakMap<JwtSettings, JwtVerifier>();

/**
 * The isolate's verifier for a parsed setting (its verified-token cache lives as long as the
 * setting). A JWKS URL's cache is shared per URL (jwks-source.ts), so its fetch bounds hold
 * however many settings name it. The JWKS is fetched with the global `fetch`, looked up at call
 * time.
 */
export function verifierFor(jwt: JwtSettings, keys: JwtKeys, now: number): JwtVerifier {
  const known = verifiers.get(jwt);
  if (known) return known;
  const source =
    keys.kind === "set"
      ? fixedKeys(keys.keys)
      : remoteJwks(
          keys.url,
          { fetch: (url, init) => fetch(url, init), pause: (ms) => scheduler.wait(ms), clock: Date.now },
          now,
        );
  const created = new JwtVerifier(jwt, source);
  verifiers.set(jwt, created);
  return created;
}
