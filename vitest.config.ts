import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Bindings both workerd projects give the Worker. */
const TEST_BINDINGS = {
  ADMIN_TOKEN: "test-admin-token-0123456789",
  UNKNOWN_KEYS: "anonymous",
  // The pool runs workerd with cross-request promise resolution off, so a queued request must
  // learn of its grant on its own timer (see WAITER_WAKE in src/config.ts).
  WAITER_WAKE: "poll",
};

/**
 * Two tiers: fast unit tests of the pure core in Node, and integration tests inside workerd
 * (Miniflare) through the real Worker, its Durable Object and KV, with a stubbed origin; and the
 * origin-binding project, the same Worker with its origin a bound Worker instead.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        plugins: [
          cloudflareTest({
            main: "./src/index.ts",
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                ...TEST_BINDINGS,
                ORIGIN_URL: "http://origin.test",
                // Test-only: how many inputs each fuzz property tries (see test/integration/fuzz-*.test.ts).
                FUZZ_RUNS: process.env.FUZZ_RUNS ?? "",
              },
            },
          }),
        ],
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
        },
      },
      {
        // The origin as a service binding to another Worker (recipes/service-binding), signing on:
        // its own project, so the integration project's stubbed-fetch origin stays as it is.
        plugins: [
          cloudflareTest({
            main: "./src/index.ts",
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: { ...TEST_BINDINGS, ORIGIN_SIGNING_SECRET: "origin-binding-secret-0123456789abcdef" },
              serviceBindings: { ORIGIN: "origin-worker" },
              workers: [
                {
                  name: "origin-worker",
                  modules: true,
                  scriptPath: "./test/origin-binding/origin-worker.mjs",
                  compatibilityDate: "2026-11-01",
                },
              ],
            },
          }),
        ],
        test: {
          name: "origin-binding",
          include: ["test/origin-binding/**/*.test.ts"],
        },
      },
    ],
  },
});
