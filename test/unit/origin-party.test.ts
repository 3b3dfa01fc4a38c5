import { describe, expect, it } from "vitest";
import { ROUTE_PREFIX, routeMethod, routePrefix } from "../../src/origin/origin-party";

describe("route classes as the origin stage keys them", () => {
  it("keeps the first two segments of the path, so one resource's routes share a class", () => {
    expect(routePrefix("/v1/reports/42")).toBe("/v1/reports");
    expect(routePrefix("/v1/reports")).toBe("/v1/reports");
    expect(routePrefix("/")).toBe("/");
    expect(routePrefix("/health")).toBe("/health");
  });

  it("reads ids as :id, so that ids do not make every request a class of its own", () => {
    expect(routePrefix("/users/42/orders")).toBe("/users/:id");
    expect(routePrefix("/users/9f8e7d6c-1b2a-4c3d-8e9f-0a1b2c3d4e5f")).toBe("/users/:id");
    expect(routePrefix("/v2/items")).toBe("/v2/items");
  });

  it("bounds what a client can put in a class: cut segments, printable ASCII only", () => {
    const prefix = routePrefix(`/${"a".repeat(500)}/${"b".repeat(500)}/c`);
    expect(prefix.length).toBeLessThanOrEqual(128);
    expect(ROUTE_PREFIX.test(prefix)).toBe(true);
    expect(ROUTE_PREFIX.test(routePrefix("/caf\u00e9/x y"))).toBe(true);
  });

  it("keys methods as upper-case tokens, and anything else as OTHER", () => {
    expect(routeMethod("GET")).toBe("GET");
    expect(routeMethod("get")).toBe("OTHER");
    expect(routeMethod("X".repeat(40))).toBe("OTHER");
  });
});
