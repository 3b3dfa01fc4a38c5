import { describe, expect, it } from "vitest";
import { isDrop } from "../../src/origin/origin-drops";
import { acquireRequestSchema, holdRequestSchema, legacyHold, readOriginRelease } from "../../src/origin/origin-rpc";
import { holdsOfOlderVersions } from "../../src/origin/origin-store";

const answered = (status: number, retryAfterMs: number | null = null) => ({
  outcome: "completed",
  status,
  latencyMs: 10,
  retryAfterMs,
  clientBudget: false,
});

/** A deadline abort: no headers came (unless `latencyMs` says when they did). */
const aborted = (change: { latencyMs?: number | null; clientBudget?: boolean } = {}) => ({
  outcome: "deadline_exceeded",
  status: 0,
  latencyMs: null,
  retryAfterMs: null,
  clientBudget: false,
  ...change,
});

describe("what counts as a drop for the adaptive limit", () => {
  it("counts gateway errors, failed fetches and a 429 that holds nobody back", () => {
    for (const status of [502, 503, 504]) expect(isDrop(answered(status), 10, 0)).toBe(true);
    expect(isDrop({ ...aborted(), outcome: "origin_failed" }, 10, 0)).toBe(true);
    expect(isDrop(answered(429), 10, 0)).toBe(true);
  });

  it("does not count the application's own errors, nor a 429 that holds one tenant back", () => {
    for (const status of [200, 404, 500, 501]) expect(isDrop(answered(status), 10, 0)).toBe(false);
    expect(isDrop(answered(429, 5_000), 10, 0)).toBe(false);
  });

  it("counts a deadline abort only once the request ran past the tolerated latency", () => {
    expect(isDrop(aborted(), 20, 150)).toBe(false);
    expect(isDrop(aborted(), 150, 150)).toBe(true);
    expect(isDrop({ ...aborted(), outcome: "abandoned" }, 500, 150)).toBe(false);
  });

  it("does not count a deadline abort on the client's own shorter budget, however long it ran", () => {
    expect(isDrop(aborted({ clientBudget: true }), 10_000, 150)).toBe(false);
  });

  it("does not count a deadline that ran out after the headers came (a slow client reading the body)", () => {
    expect(isDrop(aborted({ latencyMs: 40 }), 10_000, 150)).toBe(false);
  });
});

describe("reading a release report", () => {
  it("keeps a valid report whole", () => {
    const report = { outcome: "completed", status: 200, latencyMs: 12, retryAfterMs: null, capacity: 4 };
    expect(readOriginRelease(report)).toEqual({ ...report, wholeOrigin: false, clientBudget: false, streamed: false });
    const flagged = { ...report, status: 503, wholeOrigin: true, clientBudget: true, streamed: true };
    expect(readOriginRelease(flagged)).toEqual(flagged);
  });

  it("drops feedback out of range but keeps the outcome, so the slot is still freed", () => {
    expect(
      readOriginRelease({ outcome: "deadline_exceeded", status: 503, latencyMs: 1, retryAfterMs: 1e20, capacity: 1e9 }),
    ).toEqual({
      outcome: "deadline_exceeded",
      status: 0,
      latencyMs: null,
      retryAfterMs: null,
      capacity: null,
      wholeOrigin: false,
      clientBudget: false,
      streamed: false,
    });
  });

  it("reads anything else as a plain cancellation", () => {
    for (const raw of [null, "x", { outcome: "exploded" }, []]) {
      expect(readOriginRelease(raw)).toMatchObject({ outcome: "cancelled", status: 0 });
    }
  });
});

describe("calls and records of the previous version, during a rolling deploy", () => {
  it("admits an acquire without method and route as OTHER on /", () => {
    const ask = { tenant: "acme", weight: 1, priority: "normal", deadline: 1 };
    expect(acquireRequestSchema.parse(ask)).toMatchObject({ method: "OTHER", route: "/" });
    expect(acquireRequestSchema.parse(ask).streamMs).toBeUndefined();
  });

  it("reads the old hold(tenant | null, untilMs) as a party or whole-origin hold", () => {
    expect(holdRequestSchema.parse(legacyHold("acme", 5))).toEqual({
      scope: { kind: "party", party: "acme" },
      untilMs: 5,
    });
    expect(holdRequestSchema.parse(legacyHold(null, 5))).toEqual({ scope: { kind: "all" }, untilMs: 5 });
  });

  it("keeps the holds of a stored record from before scoped holds", () => {
    const old = { backoffUntil: 9, tenantBackoff: { acme: 7, constructor: "x" } };
    expect(holdsOfOlderVersions(old)).toMatchObject({ holds: { allUntil: 9, scoped: { "p acme": 7 }, sightings: {} } });
    const current = { holds: { allUntil: 1, scoped: {}, sightings: {} } };
    expect(holdsOfOlderVersions(current)).toBe(current);
  });
});
