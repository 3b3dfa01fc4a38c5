import { describe, expect, it } from "vitest";
import { SeenRequests, verifyGuardRequest } from "../../examples/verify-signature.mjs";
import { canonicalString, importSigningKey, signatureOf } from "../../src/proxy/origin-signature";
import { VECTOR, VECTOR_FIELDS, vectorRequest } from "./signature-vector";

const secrets = [VECTOR.secret];
const now = VECTOR.now;

describe("the guard's signature over a forwarded request", () => {
  it("signs one field per line: version, timestamp, request id, tenant, priority, deadline, method, path", () => {
    expect(canonicalString(VECTOR_FIELDS).split("\n")).toEqual([
      "v1",
      "1764740000000",
      "6f1c2a4e-8b7d-4c3e-9a10-2f5b6d7e8c90",
      "acme",
      "high",
      "1764740002000",
      "POST",
      "/v1/reports?from=3&to=9",
    ]);
    expect(canonicalString(VECTOR_FIELDS)).toBe(VECTOR.canonical);
  });

  it("matches the known-answer vector (computed with openssl)", async () => {
    const signature = await signatureOf(await importSigningKey(VECTOR.secret), VECTOR_FIELDS);
    expect(signature).toBe(VECTOR.headers["x-guard-signature"]);
  });

  it.each([
    ["timestamp", { timestamp: VECTOR_FIELDS.timestamp + 1 }],
    ["request id", { requestId: "another" }],
    ["tenant", { tenant: "acme2" }],
    ["priority", { priority: "critical" }],
    ["deadline", { deadline: VECTOR_FIELDS.deadline + 60_000 }],
    ["method", { method: "GET" }],
    ["path", { pathAndQuery: "/v1/reports?from=3&to=10" }],
  ])("changes when the %s changes", async (_field, change) => {
    const key = await importSigningKey(VECTOR.secret);
    expect(await signatureOf(key, { ...VECTOR_FIELDS, ...change })).not.toBe(VECTOR.headers["x-guard-signature"]);
  });
});

describe("the Node verifier (examples/verify-signature.mjs)", () => {
  it("accepts the vector and returns the facts it vouches for", () => {
    expect(verifyGuardRequest(vectorRequest(), { secrets, now })).toEqual({
      ok: true,
      tenant: "acme",
      priority: "high",
      requestId: VECTOR.headers["x-guard-request-id"],
      deadline: 1764740002000,
    });
  });

  it.each([
    ["a forged tenant", { headers: { "x-guard-tenant": "other" } }],
    ["a forged priority", { headers: { "x-guard-priority": "critical" } }],
    ["a later deadline", { headers: { "x-request-deadline": "1764740092000" } }],
    ["another path", { path: "/v1/admin" }],
    ["another query", { path: "/v1/reports?from=3&to=9&all=1" }],
    ["another method", { method: "DELETE" }],
  ])("refuses %s as bad_signature", (_what, change) => {
    expect(verifyGuardRequest(vectorRequest(change), { secrets, now })).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("refuses a request without the guard's headers as unsigned", () => {
    const request = vectorRequest();
    const { "x-guard-signature": _dropped, ...headers } = request.headers;
    expect(verifyGuardRequest({ ...request, headers }, { secrets, now })).toEqual({ ok: false, reason: "unsigned" });
  });

  it("refuses a signature made with another secret, and accepts either secret during a rotation", () => {
    const other = "another-secret-0123456789abcdefghijklmn";
    expect(verifyGuardRequest(vectorRequest(), { secrets: [other], now }).ok).toBe(false);
    expect(verifyGuardRequest(vectorRequest(), { secrets: [other, VECTOR.secret], now }).ok).toBe(true);
  });

  it("refuses a timestamp outside the window, either way", () => {
    expect(verifyGuardRequest(vectorRequest(), { secrets, now: now + 61_000 })).toEqual({ ok: false, reason: "stale" });
    expect(verifyGuardRequest(vectorRequest(), { secrets, now: now - 62_000 })).toEqual({ ok: false, reason: "stale" });
  });

  it("refuses the same request id twice as replayed", () => {
    const seen = new SeenRequests();
    expect(verifyGuardRequest(vectorRequest(), { secrets, now, seen }).ok).toBe(true);
    expect(verifyGuardRequest(vectorRequest(), { secrets, now: now + 10, seen })).toEqual({
      ok: false,
      reason: "replayed",
    });
  });

  it("never remembers a forged request's id (a forger cannot fill the cache)", () => {
    const seen = new SeenRequests();
    verifyGuardRequest(vectorRequest({ headers: { "x-guard-tenant": "other" } }), { secrets, now, seen });
    expect(verifyGuardRequest(vectorRequest(), { secrets, now, seen }).ok).toBe(true);
  });
});

describe("the seen-request cache", () => {
  it("stays bounded and, once full, refuses every timestamp up to the oldest id it forgot", () => {
    const seen = new SeenRequests(2, 60_000);
    expect(seen.remember("a", 1_000, 1_000)).toBe(true);
    expect(seen.remember("b", 2_000, 2_000)).toBe(true);
    expect(seen.remember("c", 3_000, 3_000)).toBe(true); // forgets "a", floor 1 000
    expect(seen.remember("a", 1_000, 3_000)).toBe(false);
    expect(seen.remember("d", 900, 3_000)).toBe(false);
    expect(seen.remember("b", 2_000, 3_000)).toBe(false);
  });

  it("forgets ids older than the window, which the window refuses anyway", () => {
    const seen = new SeenRequests(2, 1_000);
    expect(seen.remember("a", 1_000, 1_000)).toBe(true);
    expect(seen.remember("b", 1_500, 1_500)).toBe(true);
    // "a" has left the window: room for "c" without raising the floor over "b".
    expect(seen.remember("c", 2_100, 2_100)).toBe(true);
    expect(seen.remember("d", 1_600, 2_100)).toBe(true);
  });
});
