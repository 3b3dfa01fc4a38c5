import { describe, expect, it } from "vitest";
import { blocking, deployFindings, isLocalHost, isPlaceholderHost } from "../../scripts/deploy-checks.mjs";

/** A deployable environment as wrangler resolves it: every binding, a real origin and route. */
function ready(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "ingress-guard-production",
    workers_dev: false,
    preview_urls: false,
    routes: [{ pattern: "api.acme.dev/*", zone_name: "acme.dev" }],
    vars: { ORIGIN_URL: "https://api.acme.dev", DO_LOCATION_HINT: "weur" },
    secrets: { required: ["ADMIN_TOKEN"] },
    durable_objects: {
      bindings: [
        { name: "TENANT_GUARD", class_name: "TenantGuard" },
        { name: "ORIGIN_GUARD", class_name: "OriginGuard" },
        { name: "KEY_REGISTRY", class_name: "KeyRegistry" },
      ],
    },
    kv_namespaces: [{ binding: "TENANTS" }],
    analytics_engine_datasets: [{ binding: "ANALYTICS", dataset: "ingress_guard" }],
    ...overrides,
  };
}

const fields = (config: Record<string, unknown>, secrets: Record<string, string> | null = null) =>
  deployFindings(config, secrets).map((finding) => `${finding.level} ${finding.field}`);

describe("deploy checks", () => {
  it("finds nothing in a complete environment", () => {
    expect(deployFindings(ready())).toEqual([]);
  });

  it.each([
    "http://127.0.0.1:8788",
    "http://localhost:8080",
    "https://10.1.2.3",
    "http://[::1]:80",
    "http://192.168.0.9",
  ])("refuses a loopback or private ORIGIN_URL (%s)", (origin) => {
    expect(fields(ready({ vars: { ORIGIN_URL: origin, DO_LOCATION_HINT: "weur" } }))).toEqual(["error ORIGIN_URL"]);
  });

  it("refuses an environment with neither ORIGIN_URL nor an ORIGIN service binding", () => {
    expect(fields(ready({ vars: { ORIGIN_URL: "", DO_LOCATION_HINT: "weur" } }))).toEqual(["error ORIGIN_URL"]);
    expect(
      fields(ready({ vars: { DO_LOCATION_HINT: "weur" }, services: [{ binding: "ORIGIN", service: "api" }] })),
    ).toEqual([]);
  });

  it("refuses an ORIGIN_URL that is the guard's own custom domain", () => {
    const config = ready({ routes: [{ pattern: "api.acme.dev", custom_domain: true }] });
    expect(fields(config)).toEqual(["error ORIGIN_URL"]);
  });

  it("lists the template's example hosts and an unset location hint as to-dos: a dry run goes on, a deploy stops", () => {
    const config = ready({
      routes: [{ pattern: "api.example.com/*", zone_name: "example.com" }],
      vars: { ORIGIN_URL: "https://api.example.com", DO_LOCATION_HINT: "" },
    });
    const findings = deployFindings(config);
    expect(findings.map((finding) => `${finding.level} ${finding.field}`)).toEqual([
      "todo ORIGIN_URL",
      "todo routes",
      "todo DO_LOCATION_HINT",
    ]);
    expect(blocking(findings, true)).toEqual([]);
    expect(blocking(findings, false)).toHaveLength(3);
  });

  it("names each binding an environment forgot (they are not inherited)", () => {
    const config = ready({ durable_objects: { bindings: [] }, kv_namespaces: [], analytics_engine_datasets: [] });
    expect(fields(config)).toEqual([
      "error TENANT_GUARD",
      "error ORIGIN_GUARD",
      "error KEY_REGISTRY",
      "error TENANTS",
      "error ANALYTICS",
    ]);
  });

  it("refuses a placeholder KV id, a bypass through workers.dev, no route, and a bad location hint", () => {
    expect(fields(ready({ kv_namespaces: [{ binding: "TENANTS", id: "00000000000000000000000000000000" }] }))).toEqual([
      "error TENANTS",
    ]);
    expect(fields(ready({ workers_dev: true }))).toEqual(["error workers_dev"]);
    expect(fields(ready({ routes: [] }))).toEqual(["error routes"]);
    expect(fields(ready({ vars: { ORIGIN_URL: "https://api.acme.dev", DO_LOCATION_HINT: "mars" } }))).toEqual([
      "error DO_LOCATION_HINT",
    ]);
  });

  it("requires ADMIN_TOKEN among the declared secrets, and checks a secrets file against them", () => {
    expect(fields(ready({ secrets: { required: [] } }))).toEqual(["error secrets.required"]);
    expect(fields(ready(), {})).toEqual(["error ADMIN_TOKEN"]);
    expect(fields(ready(), { ADMIN_TOKEN: "short" })).toEqual(["error ADMIN_TOKEN"]);
    expect(fields(ready(), { ADMIN_TOKEN: "a-long-enough-admin-token-0123" })).toEqual([]);
  });

  it("warns that ORIGIN_URL is ignored beside an ORIGIN service binding", () => {
    const config = ready({ services: [{ binding: "ORIGIN", service: "api" }] });
    expect(fields(config)).toEqual(["warning ORIGIN_URL"]);
  });

  it("checks an ORIGIN_SIGNING_SECRET in the secrets file as the Worker does", () => {
    const token = "a-long-enough-admin-token-0123";
    expect(fields(ready(), { ADMIN_TOKEN: token, ORIGIN_SIGNING_SECRET: "too-short" })).toEqual([
      "error ORIGIN_SIGNING_SECRET",
    ]);
    expect(
      fields(ready(), { ADMIN_TOKEN: token, ORIGIN_SIGNING_SECRET: "with spaces 0123456789abcdef0123456789" }),
    ).toEqual(["error ORIGIN_SIGNING_SECRET"]);
    expect(fields(ready(), { ADMIN_TOKEN: token, ORIGIN_SIGNING_SECRET: "0123456789abcdef0123456789abcdef" })).toEqual(
      [],
    );
  });

  it("tells documentation and local hosts from real ones", () => {
    expect(isPlaceholderHost("api.example.com")).toBe(true);
    expect(isPlaceholderHost("origin.test")).toBe(true);
    expect(isPlaceholderHost("example.company.com")).toBe(false);
    expect(isLocalHost("172.20.0.1")).toBe(true);
    expect(isLocalHost("172.32.0.1")).toBe(false);
    expect(isLocalHost("api.acme.dev")).toBe(false);
  });
});
