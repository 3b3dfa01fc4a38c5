import { describe, expect, it } from "vitest";
import { SHED_REASONS } from "../../src/admission/shed-reason";
import { rateLimitField, rateLimitPolicyField } from "../../src/ratelimit-fields";
import { pessimisticQuota, shedResponse, shedStatus } from "../../src/signals";
import type { Quota } from "../../src/lease/lease-protocol";

const quota: Quota = {
  rate: 10,
  burst: 100,
  tokens: 37.6,
  inFlight: 3,
  maxInFlight: 5,
  queued: 2,
  maxQueue: 10,
  msUntilFull: 6240,
};

describe("RateLimit fields (draft-ietf-httpapi-ratelimit-headers-11)", () => {
  it("announce the bucket and the concurrency limit as policies", () => {
    expect(rateLimitPolicyField(quota)).toBe(
      '"guard-rate";q=100;w=10, "guard-concurrency";q=5;qu="concurrent-requests"',
    );
  });

  it("report what is left and when the bucket is full again", () => {
    expect(rateLimitField(quota, null)).toBe('"guard-rate";r=37;t=7, "guard-concurrency";r=2');
  });

  it("report a violated policy as exhausted until Retry-After, and leave the other as it is", () => {
    expect(rateLimitField(quota, { policies: ["guard-rate"], retryAfterSeconds: 3 })).toBe(
      '"guard-rate";r=0;t=3, "guard-concurrency";r=2',
    );
    expect(rateLimitField(quota, { policies: ["guard-concurrency"], retryAfterSeconds: 4 })).toBe(
      '"guard-rate";r=37;t=7, "guard-concurrency";r=0;t=4',
    );
  });
});

describe("shed responses", () => {
  const signal = { retryAfterMs: 1500, quota, tenant: "acme", priority: "low" as const, waitedMs: 0, budgetMs: 1000 };

  it.each(SHED_REASONS)("%s carries every signal", async (reason) => {
    const response = shedResponse({ ...signal, reason }, () => 0.5);
    expect(response.status).toBe(shedStatus(reason));
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(2);
    expect(response.headers.get("ratelimit")).toMatch(/"guard-rate";r=\d+/);
    expect(response.headers.get("ratelimit-policy")).toContain('"guard-rate";q=100');
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: response.status, reason, tenant: "acme", priority: "low" });
    expect(typeof body.type).toBe("string");
    expect(typeof body.title).toBe("string");
    expect(typeof body.detail).toBe("string");
  });

  it("uses 429 for the rate, 503 for capacity and 504 for the deadline, with the draft's problem types", async () => {
    expect(shedStatus("rate_limited")).toBe(429);
    expect(shedStatus("queue_full")).toBe(503);
    expect(shedStatus("evicted")).toBe(503);
    expect(shedStatus("wait_exceeds_deadline")).toBe(503);
    expect(shedStatus("deadline_exceeded")).toBe(504);
    const body = (await shedResponse({ ...signal, reason: "rate_limited" }, () => 0).json()) as Record<string, unknown>;
    expect(body.type).toBe("https://iana.org/assignments/http-problem-types#quota-exceeded");
    expect(body["violated-policies"]).toEqual(["guard-rate"]);
  });

  it("spreads Retry-After across clients", () => {
    const values = new Set(
      [0, 0.25, 0.5, 0.75, 0.99].map((r) =>
        shedResponse({ ...signal, reason: "queue_full", retryAfterMs: 4000 }, () => r).headers.get("retry-after"),
      ),
    );
    expect(values.size).toBeGreaterThan(1);
  });

  it("reports nothing left when the object could not be asked", () => {
    expect(pessimisticQuota({ rate: 10, burst: 20, maxInFlight: 4, maxQueue: 8 })).toMatchObject({
      tokens: 0,
      inFlight: 4,
      msUntilFull: 2000,
    });
  });
});
