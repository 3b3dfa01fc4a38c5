import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Two tiers: fast unit tests of the pure core in Node, and integration tests inside workerd
 * (Miniflare) through the real Worker, its Durable Object and KV, with a stubbed origin.
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
                ORIGIN_URL: "http://origin.test",
                ADMIN_TOKEN: "test-admin-token-0123456789",
                UNKNOWN_KEYS: "anonymous",
                // The pool runs workerd with cross-request promise resolution off, so a queued
                // request must learn of its grant on its own timer (see WAITER_WAKE in src/config.ts).
                WAITER_WAKE: "poll",
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
    ],
  },
});
