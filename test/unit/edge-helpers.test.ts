import { describe, expect, it } from "vitest";
import { normalisePath } from "../../src/request-path";
import { LruCache } from "../../src/lru-cache";
import { clientResponseHeaders, originRequestHeaders } from "../../src/proxy/header-hygiene";
import { clientBucket } from "../../src/proxy/identity";
import { originTarget } from "../../src/proxy/forward";

describe("one normalised path: admin or proxy, decided once (issue 13, items 6 and 12)", () => {
  it.each([
    "/__guard",
    "/__guard/tenants",
    "/__GUARD/tenants",
    "/%5F%5Fguard/tenants",
    "/%5f%5fGuard",
    "//__guard/tenants",
  ])("treats %s as admin", (path) => {
    expect(normalisePath(path).kind).toBe("admin");
  });

  it.each([
    "/%255F%255Fguard/tenants",
    "/\\__guard/tenants",
    "/__guard;x/tenants",
    "/__guard./tenants",
    "/__guard%20/tenants",
    "/x/..%2F__guard/tenants",
    "/x/..%2f..%2f__guard",
    "/%2e%2e%5c__guard",
  ])("refuses %s: a spelling of the admin prefix that is not exactly it", (path) => {
    expect(normalisePath(path).kind).toBe("refused");
  });

  it.each([
    ["/", "/"],
    ["/api/__guard", "/api/__guard"],
    ["/__guardian", "/__guardian"],
    ["/v1/%72eports/x", "/v1/reports/x"],
    ["//v1/reports/x", "/v1/reports/x"],
    ["/v1/./reports/x", "/v1/reports/x"],
    ["/v1/x/../reports/x", "/v1/reports/x"],
    ["/v1/%2E%2E/v1/reports/x", "/v1/reports/x"],
    ["/../../etc", "/etc"],
    ["/a%20b/%c3%a9", "/a%20b/%C3%A9"],
    ["/dir/", "/dir/"],
  ])("forwards %s as %s", (raw, normalised) => {
    expect(normalisePath(raw)).toEqual({ kind: "proxy", path: normalised });
  });

  it.each(["/a%2Fb", "/a%5cb", "/a\\b", "/a%00b", "/%E0%A4%A", "/%zz"])(
    "refuses %s: encoded separators, NUL and malformed escapes",
    (path) => {
      expect(normalisePath(path).kind).toBe("refused");
    },
  );
});

describe("header hygiene", () => {
  const asserted = {
    tenant: "acme",
    priority: "high",
    deadline: 1_700_000_010_000,
    timeoutMs: 9000,
    clientIp: "203.0.113.9",
    publicUrl: new URL("https://api.example.com/x"),
    requestId: "lease-1",
    maxStreamMs: null,
  };

  it("replaces what the client must not control and drops hop-by-hop headers", () => {
    const client = new Headers({
      connection: "keep-alive, x-secret",
      "x-secret": "drop me",
      "keep-alive": "timeout=5",
      te: "trailers",
      upgrade: "websocket",
      "x-guard-tenant": "someone-else",
      "x-guard-priority": "critical",
      "x-request-deadline": "99999999999999",
      "x-request-timeout-ms": "999999",
      "x-stream-max-ms": "86400000",
      "x-forwarded-for": "1.2.3.4",
      "x-envoy-upstream-rq-timeout-ms": "100000",
      "x-api-key": "k",
      accept: "application/json",
    });
    const headers = originRequestHeaders(client, asserted);
    for (const gone of [
      "connection",
      "x-secret",
      "keep-alive",
      "te",
      "upgrade",
      "x-envoy-upstream-rq-timeout-ms",
      "x-stream-max-ms",
    ]) {
      expect(headers.has(gone)).toBe(false);
    }
    expect(headers.get("x-guard-tenant")).toBe("acme");
    expect(headers.get("x-guard-priority")).toBe("high");
    expect(headers.get("x-request-deadline")).toBe("1700000010000");
    expect(headers.get("x-request-timeout-ms")).toBe("9000");
    expect(headers.get("x-forwarded-for")).toBe("203.0.113.9");
    expect(headers.get("x-forwarded-proto")).toBe("https");
    expect(headers.get("x-forwarded-host")).toBe("api.example.com");
    expect(headers.get("x-api-key")).toBe("k");
    expect(headers.get("accept")).toBe("application/json");
  });

  it("drops the credential header the guard read when told to strip it, and only that one", () => {
    const client = new Headers({ authorization: "Bearer t", "x-api-key": "k" });
    const headers = originRequestHeaders(client, { ...asserted, stripCredential: "authorization" });
    expect(headers.has("authorization")).toBe(false);
    expect(headers.get("x-api-key")).toBe("k");
  });

  it("tells the origin of a streamed route how long its body may run after the headers", () => {
    const client = new Headers({ "x-stream-max-ms": "86400000" });
    const headers = originRequestHeaders(client, { ...asserted, maxStreamMs: 60_000 });
    expect(headers.get("x-stream-max-ms")).toBe("60000");
    expect(headers.get("x-request-timeout-ms")).toBe("9000");
  });

  it("keeps the origin's end-to-end response headers, including its encoding", () => {
    const origin = new Headers({
      "content-encoding": "gzip",
      "transfer-encoding": "chunked",
      "set-cookie": "a=1",
      connection: "close",
    });
    const headers = clientResponseHeaders(origin);
    expect(headers.get("content-encoding")).toBe("gzip");
    expect(headers.has("transfer-encoding")).toBe(false);
    expect(headers.has("connection")).toBe(false);
    expect(headers.get("set-cookie")).toBe("a=1");
  });
});

describe("origin target", () => {
  it("appends the client's path and query to the origin URL, escapes intact", () => {
    const origin = new URL("https://origin.internal/base/");
    expect(originTarget(origin, new URL("https://api.example.com/v1/a%2Fb?x=1&y=%20")).toString()).toBe(
      "https://origin.internal/base/v1/a%2Fb?x=1&y=%20",
    );
  });
});

describe("anonymous buckets", () => {
  it("are per IPv4 address and per IPv6 /64", () => {
    expect(clientBucket("198.51.100.7")).toBe("198.51.100.7");
    expect(clientBucket("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(clientBucket("2001:db8:1:2:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(clientBucket("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(clientBucket(null)).toBe("unknown");
  });
});

describe("LRU cache", () => {
  it("evicts the least recently used entry past its bound", () => {
    const cache = new LruCache<string, number>(2, 1000);
    cache.set("a", 1, 0);
    cache.set("b", 2, 0);
    cache.get("a", 1);
    cache.set("c", 3, 2);
    expect(cache.get("b", 3)).toBeUndefined();
    expect(cache.get("a", 3)).toBe(1);
    expect(cache.size).toBe(2);
  });

  it("treats entries older than its TTL as absent", () => {
    const cache = new LruCache<string, number>(10, 1000);
    cache.set("a", 1, 0);
    expect(cache.get("a", 999)).toBe(1);
    expect(cache.get("a", 1000)).toBeUndefined();
  });
});
