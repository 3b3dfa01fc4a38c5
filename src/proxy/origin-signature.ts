/**
 * The signature an origin checks to know a request came through the guard (ORIGIN_SIGNING_SECRET).
 * HMAC-SHA256 over a canonical string of the facts the guard asserts, one per line:
 *
 *   v1                      the scheme's version (also the prefix of the signature header)
 *   <timestamp>             x-guard-timestamp: unix epoch milliseconds when the guard forwarded it
 *   <request id>            x-guard-request-id
 *   <tenant>                x-guard-tenant
 *   <priority>              x-guard-priority
 *   <deadline>              x-request-deadline (unix epoch ms)
 *   <method>                the request method, as sent
 *   <path and query>        the request target the origin receives, e.g. /v1/reports?from=3
 *
 * joined by "\n", no trailing newline. No field can hold a newline (tenant names, UUIDs, numbers,
 * methods and a serialised URL path never do), so the lines cannot be shifted into one another.
 * Sent as `x-guard-signature: v1=<64 lowercase hex>`. Verifiers: examples/ (README "Signed origin").
 */
export const SIGNATURE_VERSION = "v1";
export const SIGNATURE_HEADER = "x-guard-signature";
export const TIMESTAMP_HEADER = "x-guard-timestamp";

export interface SignedFields {
  /** Unix epoch milliseconds. */
  readonly timestamp: number;
  readonly requestId: string;
  readonly tenant: string;
  readonly priority: string;
  /** Unix epoch milliseconds. */
  readonly deadline: number;
  readonly method: string;
  /** Path and query exactly as forwarded (`URL.pathname + URL.search`). */
  readonly pathAndQuery: string;
}

export function canonicalString(fields: SignedFields): string {
  return [
    SIGNATURE_VERSION,
    String(fields.timestamp),
    fields.requestId,
    fields.tenant,
    fields.priority,
    String(fields.deadline),
    fields.method,
    fields.pathAndQuery,
  ].join("\n");
}

/** An HMAC-SHA256 key for `secret` (its UTF-8 bytes), as every verifier in examples/ takes it. */
export function importSigningKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
}

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The value of `x-guard-signature` for `fields`. */
export async function signatureOf(key: CryptoKey, fields: SignedFields): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(canonicalString(fields)));
  return `${SIGNATURE_VERSION}=${hex(mac)}`;
}
