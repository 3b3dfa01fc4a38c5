/**
 * The keys a JWT may be verified with, read from a JSON Web Key Set (RFC 7517): which members
 * of a set the guard can use, and which one key a token's header (`alg`, `kid`) selects. Pure:
 * no I/O, no clock. Importing a selected key into WebCrypto is jose's (`importJWK`), cached per
 * key object.
 *
 * Each usable key is bound to exactly one algorithm, taken from its type (RSA -> RS256, EC P-256
 * -> ES256, oct -> HS256) and checked against its own `alg`: a token can never pick how a key is
 * used (the classic confusion of an RSA public key used as an HMAC secret is impossible).
 */
import { type JWK, importJWK } from "jose";
import { z } from "zod";

export const JWT_ALGORITHMS = ["HS256", "RS256", "ES256"] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export interface VerificationKey {
  readonly kid: string | undefined;
  readonly alg: JwtAlgorithm;
  /** Only the public members (and `k` for an HMAC key): a private RSA/EC member is never imported. */
  readonly jwk: JWK;
}

/**
 * A set is at most this many members and each usable key at most MAX_KID_LENGTH of `kid`: a
 * fetched set is a bounded buffer too, and selection scans it per token.
 */
export const MAX_JWKS_MEMBERS = 64;
const MAX_KID_LENGTH = 256;
/** RFC 7518 §3.2: an HS256 key shorter than the hash (256 bits, 43 base64url characters) is refused. */
const MIN_HMAC_KEY_CHARS = 43;

const jwksSchema = z.object({
  keys: z.array(z.record(z.string(), z.unknown())).max(MAX_JWKS_MEMBERS, `must have at most ${MAX_JWKS_MEMBERS} keys`),
});

type Member = Record<string, unknown>;
const text = (value: unknown): value is string => typeof value === "string" && value.length > 0;

function algorithmOf(member: Member): JwtAlgorithm | string {
  switch (member.kty) {
    case "RSA":
      return text(member.n) && text(member.e) ? "RS256" : "an RSA key needs n and e";
    case "EC":
      if (member.crv !== "P-256") return "an EC key must be on P-256 (ES256)";
      return text(member.x) && text(member.y) ? "ES256" : "an EC key needs x and y";
    case "oct":
      if (!text(member.k)) return "an oct key needs k";
      return member.k.length >= MIN_HMAC_KEY_CHARS ? "HS256" : "an HS256 key must be at least 256 bits";
    default:
      return `key type ${JSON.stringify(member.kty)} is not supported (RSA, EC, oct)`;
  }
}

const PUBLIC_MEMBERS: Record<JwtAlgorithm, readonly string[]> = {
  RS256: ["kty", "n", "e"],
  ES256: ["kty", "crv", "x", "y"],
  HS256: ["kty", "k"],
};

/** The key `member` stands for, or why the guard cannot use it. */
export function usableKey(member: Member): VerificationKey | string {
  const alg = algorithmOf(member);
  if (!(JWT_ALGORITHMS as readonly string[]).includes(alg)) return alg;
  const algorithm = alg as JwtAlgorithm;
  if (member.alg !== undefined && member.alg !== algorithm)
    return `its alg ${JSON.stringify(member.alg)} does not fit its key type`;
  if (member.use !== undefined && member.use !== "sig") return "its use is not sig";
  const ops = member.key_ops;
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes("verify"))) return "its key_ops exclude verify";
  const kid = member.kid;
  if (kid !== undefined && !(typeof kid === "string" && kid.length <= MAX_KID_LENGTH))
    return "its kid is not a short string";
  const jwk = Object.fromEntries(PUBLIC_MEMBERS[algorithm].map((name) => [name, member[name]])) as JWK;
  return { kid, alg: algorithm, jwk };
}

export type ParsedJwks =
  | { readonly kind: "keys"; readonly keys: readonly VerificationKey[]; readonly refused: readonly string[] }
  | { readonly kind: "invalid"; readonly problem: string };

/**
 * The usable keys of a set; `refused` says why each other member was left out (a published set
 * often mixes key types the guard does not verify with). `allowSecret` false drops HMAC keys: a
 * secret has no business in a set fetched over the network.
 */
export function parseJwks(raw: unknown, allowSecret: boolean): ParsedJwks {
  const parsed = jwksSchema.safeParse(raw);
  if (!parsed.success)
    return { kind: "invalid", problem: parsed.error.issues.map((issue) => issue.message).join("; ") };
  const keys: VerificationKey[] = [];
  const refused: string[] = [];
  parsed.data.keys.forEach((member, index) => {
    const key = usableKey(member);
    if (typeof key === "string") refused.push(`keys[${index}]: ${key}`);
    else if (key.alg === "HS256" && !allowSecret)
      refused.push(`keys[${index}]: HMAC keys are only taken from the JWKS secret`);
    else keys.push(key);
  });
  if (keys.length === 0) return { kind: "invalid", problem: `no usable key (${refused.join("; ") || "empty"})` };
  return { kind: "keys", keys, refused };
}

export type KeyChoice =
  | { readonly kind: "one"; readonly key: VerificationKey }
  | { readonly kind: "none" }
  | { readonly kind: "ambiguous" };

/**
 * The one key a token's header selects. A token without `kid` is accepted only when a single
 * key of its algorithm exists: trying every candidate would let one forged token cost several
 * signature checks.
 */
export function selectKey(keys: readonly VerificationKey[], alg: string, kid: string | undefined): KeyChoice {
  const candidates = keys.filter((key) => key.alg === alg && (kid === undefined || key.kid === kid));
  const [only] = candidates;
  if (!only) return { kind: "none" };
  return candidates.length === 1 ? { kind: "one", key: only } : { kind: "ambiguous" };
}

/**
 * Imported keys, per key object (a refetched set makes new objects, so a rotated key is never
 * served from here). Only settled imports are kept: a pending one shared between requests
 * would cross request contexts.
 */
const imported = new WeakMap<VerificationKey, CryptoKey | Uint8Array>();

export async function importedKey(key: VerificationKey): Promise<CryptoKey | Uint8Array> {
  const cached = imported.get(key);
  if (cached) return cached;
  const result = await importJWK(key.jwk, key.alg);
  imported.set(key, result);
  return result;
}
