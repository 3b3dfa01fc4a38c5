/**
 * Which headers cross the guard. Hop-by-hop headers (RFC 9110 §7.6.1) and any header the
 * `Connection` field names are dropped both ways. Headers the guard itself asserts to the origin
 * (tenant, priority, deadline, forwarding) are dropped from the client's request and set anew:
 * a client must never be able to choose its own tenant, priority or deadline by sending them.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Set by the guard only. The client-address headers are the ones origins and their frameworks
 * are known to trust for "who is this" (rate limits, audit logs, allow lists): a client that
 * could send one would choose its own address. `x-envoy-*` carries timeouts an Envoy origin
 * would trust.
 */
const GUARD_ASSERTED = new Set([
  "x-request-timeout-ms",
  "x-request-deadline",
  "x-stream-max-ms",
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "client-ip",
  "x-cluster-client-ip",
  "fastly-client-ip",
  "x-original-forwarded-for",
  "forwarded",
  "host",
]);
const GUARD_ASSERTED_PREFIXES = ["x-guard-", "x-envoy-", "x-forwarded-"];

function connectionListed(headers: Headers): Set<string> {
  const listed = headers.get("connection") ?? "";
  return new Set(
    listed
      .split(",")
      .map((token) => token.trim().toLowerCase())
      .filter(Boolean),
  );
}

export function withoutHopByHop(headers: Headers, dropAlso: (name: string) => boolean = () => false): Headers {
  const listed = connectionListed(headers);
  const kept = new Headers();
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || listed.has(name) || dropAlso(name)) continue;
    kept.append(name, value);
  }
  return kept;
}

function isGuardAsserted(name: string): boolean {
  return GUARD_ASSERTED.has(name) || GUARD_ASSERTED_PREFIXES.some((prefix) => name.startsWith(prefix));
}

export interface OriginAssertions {
  readonly tenant: string;
  readonly priority: string;
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly clientIp: string | null;
  readonly publicUrl: URL;
  readonly requestId: string;
  /**
   * The credential header the guard read (CREDENTIAL_TO_ORIGIN=strip), never forwarded; absent,
   * it is forwarded: an origin behind the guard usually authenticates the request itself.
   */
  readonly stripCredential?: string;
  /** A streamed route: the deadline is for the headers, and the body may run this long after them. */
  readonly maxStreamMs: number | null;
}

export function originRequestHeaders(client: Headers, asserted: OriginAssertions): Headers {
  const headers = withoutHopByHop(client, (name) => isGuardAsserted(name) || name === asserted.stripCredential);
  if (asserted.clientIp) headers.set("x-forwarded-for", asserted.clientIp);
  headers.set("x-forwarded-proto", asserted.publicUrl.protocol.replace(":", ""));
  headers.set("x-forwarded-host", asserted.publicUrl.host);
  headers.set("x-guard-tenant", asserted.tenant);
  headers.set("x-guard-priority", asserted.priority);
  headers.set("x-guard-request-id", asserted.requestId);
  headers.set("x-request-timeout-ms", String(asserted.timeoutMs));
  headers.set("x-request-deadline", String(asserted.deadline));
  if (asserted.maxStreamMs !== null) headers.set("x-stream-max-ms", String(asserted.maxStreamMs));
  return headers;
}

/** The origin's `x-guard-*` headers are the guard's vocabulary: never passed on to a client. */
export function clientResponseHeaders(origin: Headers): Headers {
  return withoutHopByHop(origin, (name) => name.startsWith("x-guard-"));
}
