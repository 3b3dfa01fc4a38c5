import { describe, expect, it } from "vitest";
import { fieldErrors } from "../../src/admin/json-body";
import {
  DEFAULT_MAX_CONNECTIONS,
  configWarnings,
  maxConnectionsOf,
  tenantConfigSchema,
} from "../../src/tenant/tenant-config";

const valid = { rate: 100, burst: 200, maxInFlight: 20, maxQueue: 50, maxWaitMs: 2000 };

describe("tenant config", () => {
  it("accepts the README example and fills defaults", () => {
    expect(tenantConfigSchema.parse(valid)).toEqual({ ...valid, maxClientPriority: "normal", routes: [], weight: 1 });
  });

  it("leaves maxConnections unset to mean the default, and keeps 0 (WebSockets refused)", () => {
    expect(maxConnectionsOf(tenantConfigSchema.parse(valid))).toBe(DEFAULT_MAX_CONNECTIONS);
    expect(maxConnectionsOf(tenantConfigSchema.parse({ ...valid, maxConnections: 0 }))).toBe(0);
  });

  it.each([
    [{ rate: 0 }, "rate"],
    [{ rate: -1 }, "rate"],
    [{ rate: Number.POSITIVE_INFINITY }, "rate"],
    [{ burst: 0.5 }, "burst"],
    [{ maxInFlight: 0 }, "maxInFlight"],
    [{ maxQueue: -1 }, "maxQueue"],
    [{ maxQueue: 1_000_001 }, "maxQueue"],
    [{ maxWaitMs: "2000" }, "maxWaitMs"],
    [{ timeoutMs: 0 }, "timeoutMs"],
    [{ maxClientPriority: "urgent" }, "maxClientPriority"],
    [{ routes: [{ path: "no-slash" }] }, "routes.0.path"],
    [{ routes: [{ path: "/x", priority: "top" }] }, "routes.0.priority"],
    [{ routes: [{ path: "/x", method: "GE T" }] }, "routes.0.method"],
    [{ routes: [{ path: "/x", stream: "yes" }] }, "routes.0.stream"],
    [{ routes: [{ path: "/x", stream: true, maxStreamMs: 3_600_001 }] }, "routes.0.maxStreamMs"],
    [{ routes: [{ path: "/x", stream: true, maxStreamMs: 0 }] }, "routes.0.maxStreamMs"],
    [{ routes: [{ path: "/x", maxStreamMs: 60_000 }] }, "routes.0.maxStreamMs"],
    [{ maxConnections: -1 }, "maxConnections"],
    [{ maxConnections: 100_001 }, "maxConnections"],
    [{ maxConnections: 1.5 }, "maxConnections"],
    [{ surprise: true }, "surprise"],
  ])("rejects %j naming %s and echoing the value", (change, field) => {
    const input = { ...valid, ...change };
    const result = tenantConfigSchema.safeParse(input);
    expect(result.success).toBe(false);
    if (!result.success) {
      const errors = fieldErrors(result.error, input);
      expect(errors.map((e) => e.field)).toContain(field);
    }
  });

  it("loads a stored config written before streamed routes, and one that has them", () => {
    const stored = { ...valid, maxClientPriority: "normal", routes: [{ method: "GET", path: "/v1/x" }], weight: 1 };
    expect(tenantConfigSchema.parse(stored)).toEqual(stored);
    const streamed = { ...stored, routes: [{ method: "GET", path: "/v1/events", stream: true, maxStreamMs: 60_000 }] };
    expect(tenantConfigSchema.parse(streamed)).toEqual(streamed);
  });

  it("says why maxStreamMs without stream: true is refused", () => {
    const input = { ...valid, routes: [{ path: "/x", maxStreamMs: 60_000 }] };
    const result = tenantConfigSchema.safeParse(input);
    expect(!result.success && fieldErrors(result.error, input)).toEqual([
      { field: "routes.0.maxStreamMs", message: "applies only to a streamed route: set stream: true (got 60000)" },
    ]);
  });

  it("names a missing required field", () => {
    const { rate: _rate, ...missing } = valid;
    const result = tenantConfigSchema.safeParse(missing);
    expect(!result.success && fieldErrors(result.error, missing)).toEqual([
      { field: "rate", message: expect.stringContaining("(got nothing)") },
    ]);
  });

  it("warns when the queue is deeper than what drains within the wait budget", () => {
    const config = tenantConfigSchema.parse({ ...valid, rate: 10, maxWaitMs: 1000, maxQueue: 500 });
    expect(configWarnings(config)[0]).toContain("maxQueue 500 exceeds rate * maxWaitMs / 1000 = 10");
    expect(configWarnings(tenantConfigSchema.parse(valid))).toEqual([]);
  });
});

describe("field names in problems", () => {
  it("shows an unknown field whose name is empty or odd quoted, so it is never blank", () => {
    const input = { ...valid, "": 0, "a b": 1 };
    const result = tenantConfigSchema.safeParse(input);
    expect(!result.success && fieldErrors(result.error, input)[0]?.field).toBe('"", "a b"');
  });
});
