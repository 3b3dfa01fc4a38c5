import { describe, expect, it } from "vitest";
import { capacityGrant, retryAfterMs } from "../../src/proxy/origin-feedback";
import { firstScope, holdKindOf } from "../../src/origin/origin-holds";

const NOW = Date.parse("2025-01-01T00:00:00Z");

describe("origin feedback headers", () => {
  describe("Retry-After", () => {
    it("reads delay-seconds as milliseconds", () => {
      expect(retryAfterMs("120", NOW)).toBe(120_000);
      expect(retryAfterMs("0", NOW)).toBe(0);
      expect(retryAfterMs(" 5 ", NOW)).toBe(5_000);
    });

    it("reads an HTTP-date as the time left until it", () => {
      expect(retryAfterMs("Wed, 01 Jan 2025 00:00:30 GMT", NOW)).toBe(30_000);
    });

    it("reads an HTTP-date in the past as 0", () => {
      expect(retryAfterMs("Tue, 31 Dec 2024 23:59:00 GMT", NOW)).toBe(0);
    });

    it.each([null, "", "soon", "-1 minutes", "12345678901", "1e3", "0x10"])("ignores %j", (value) => {
      expect(retryAfterMs(value, NOW)).toBeNull();
    });

    // Bug: anything that is neither digits nor NaN to Date.parse is taken as an HTTP-date, and
    // V8's Date.parse accepts far more than RFC 9110's HTTP-date. "foo 2099" parses as
    // 2099-01-01, so a broken header holds traffic for maxBackoffMs instead of being ignored
    // as the module promises. See origin-feedback.ts, retryAfterMs: `Date.parse(trimmed)`.
    it("ignores garbage that JavaScript's lenient date parser happens to accept", () => {
      expect(retryAfterMs("foo 2099", NOW)).toBeNull();
    });
  });

  describe("capacity header", () => {
    it("reads a whole number of requests", () => {
      expect(capacityGrant("25")).toBe(25);
      expect(capacityGrant(" 0 ")).toBe(0);
      expect(capacityGrant("9999999")).toBe(9_999_999);
    });

    it.each([null, "", "1.5", "-3", "ten", "1e3", "12345678", "5 6"])("ignores %j", (value) => {
      expect(capacityGrant(value)).toBeNull();
    });
  });

  describe("holds", () => {
    it("takes a hold only from a 503 (unavailable) or a 429 (the party's rate)", () => {
      expect(holdKindOf(503)).toBe("unavailable");
      expect(holdKindOf(429)).toBe("rate");
      for (const status of [200, 204, 301, 400, 404, 500, 502, 504]) expect(holdKindOf(status)).toBeNull();
    });

    it("holds on one answer alone only what the answer was for", () => {
      const who = { party: "acme", route: "/v1/reports" };
      expect(firstScope("rate", who, true)).toEqual({ kind: "party", party: "acme" });
      expect(firstScope("unavailable", who, false)).toEqual({ kind: "party-route", ...who });
      expect(firstScope("unavailable", who, true)).toEqual({ kind: "all" });
    });
  });
});
