import { describe, expect, it } from "vitest";
import { compileRoutes } from "../../src/tenant/route-rules";
import { tenantConfigSchema } from "../../src/tenant/tenant-config";

const config = tenantConfigSchema.parse({
  rate: 10,
  burst: 10,
  maxInFlight: 2,
  maxQueue: 2,
  maxWaitMs: 100,
  timeoutMs: 4000,
  routes: [
    { method: "post", path: "/v1/payments", priority: "critical", timeoutMs: 8000, fullBehaviour: "block" },
    { path: "/v1/users/:id", priority: "high" },
    { method: "GET", path: "/v1/reports/*", priority: "low", fullBehaviour: "shed-newest" },
  ],
});
const classify = compileRoutes(config);

describe("route rules", () => {
  it("match method and exact path; methods are case-insensitive in config", () => {
    expect(classify("POST", "/v1/payments")).toMatchObject({
      priority: "critical",
      timeoutMs: 8000,
      fullBehaviour: "block",
    });
    expect(classify("GET", "/v1/payments")).toMatchObject({ priority: "normal", route: "default" });
  });

  it("match one segment with :param and the rest with *", () => {
    expect(classify("DELETE", "/v1/users/42").priority).toBe("high");
    expect(classify("DELETE", "/v1/users/42/extra").priority).toBe("normal");
    expect(classify("GET", "/v1/reports/2026/q3.csv")).toMatchObject({ priority: "low", fullBehaviour: "shed-newest" });
  });

  it("fall back to normal priority, the tenant's timeout and evict-lowest", () => {
    expect(classify("GET", "/other")).toEqual({
      route: "default",
      priority: "normal",
      timeoutMs: 4000,
      fullBehaviour: "evict-lowest",
      maxStreamMs: null,
    });
  });

  it("give a streamed route its body limit (5 minutes unless set), and no other route one", () => {
    const streamed = compileRoutes(
      tenantConfigSchema.parse({
        ...config,
        routes: [
          { path: "/v1/events", stream: true, timeoutMs: 2000 },
          { path: "/v1/export", stream: true, maxStreamMs: 3_600_000 },
          { path: "/v1/plain", stream: false },
        ],
      }),
    );
    expect(streamed("GET", "/v1/events")).toMatchObject({ timeoutMs: 2000, maxStreamMs: 300_000 });
    expect(streamed("GET", "/v1/export")).toMatchObject({ timeoutMs: 4000, maxStreamMs: 3_600_000 });
    expect(streamed("GET", "/v1/plain").maxStreamMs).toBeNull();
  });

  it("treat regex characters in patterns literally", () => {
    const literal = compileRoutes(tenantConfigSchema.parse({ ...config, routes: [{ path: "/a.b", priority: "low" }] }));
    expect(literal("GET", "/a.b").priority).toBe("low");
    expect(literal("GET", "/axb").priority).toBe("normal");
  });
});
