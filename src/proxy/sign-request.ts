/**
 * Signs a forwarded request's headers (ORIGIN_SIGNING_SECRET set). The key is imported once per
 * isolate: importing costs more than the HMAC itself. One entry only, for the one secret an
 * isolate has; a changed secret (a new deploy) replaces it.
 */
import {
  SIGNATURE_HEADER,
  type SignedFields,
  TIMESTAMP_HEADER,
  importSigningKey,
  signatureOf,
} from "./origin-signature";

let cached: { readonly secret: string; readonly key: CryptoKey } | null = null;

/**
 * The resolved key is cached, never the import's promise: a promise made in one request's
 * context and awaited in another's is what workerd refuses without cross-request resolution.
 */
async function signingKey(secret: string): Promise<CryptoKey> {
  if (cached?.secret === secret) return cached.key;
  const key = await importSigningKey(secret);
  cached = { secret, key };
  return key;
}

/**
 * Sets `x-guard-timestamp` and `x-guard-signature` on `headers`, over the values they already
 * carry. Any client-sent `x-guard-*` header was dropped before (header-hygiene.ts), so these are
 * the guard's own.
 */
export async function signForwarded(headers: Headers, secret: string, fields: SignedFields): Promise<void> {
  const signature = await signatureOf(await signingKey(secret), fields);
  headers.set(TIMESTAMP_HEADER, String(fields.timestamp));
  headers.set(SIGNATURE_HEADER, signature);
}
