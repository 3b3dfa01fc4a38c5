import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { admin } from "./support";
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS } from "./fuzz-runs";

/**
 * PUT /__guard/origin under random and malformed input, through the real Worker: never a 500,
 * a refusal is problem+json naming the field, and the stored config is unchanged by it.
 */
const REFERENCE = { maxInFlight: 12, minInFlight: 3, maxQueue: 20, shards: 3 };

beforeAll(async () => {
  expect((await admin("PUT", "/origin", REFERENCE)).status).toBe(200);
});

const FIELDS = [
  "maxInFlight",
  "minInFlight",
  "maxQueue",
  "maxWaitMs",
  "reservations",
  "adaptive",
  "latencyTolerance",
  "capacityHeader",
  "capacityTtlMs",
  "maxBackoffMs",
  "shards",
] as const;

const mutatedConfig = fc.oneof(
  fc
    .record({ field: fc.constantFrom(...FIELDS), value: fc.jsonValue() })
    .map(({ field, value }) => ({ ...REFERENCE, [field]: value })),
  fc
    .record({
      field: fc.constantFrom(...FIELDS),
      value: fc.oneof(fc.double({ noNaN: true }), fc.integer(), fc.constant(1e308), fc.constant(2 ** 53 + 1)),
    })
    .map(({ field, value }) => ({ ...REFERENCE, [field]: value })),
  fc
    .record({ low: fc.double(), normal: fc.double(), high: fc.double(), critical: fc.double() })
    .map((reservations) => ({ ...REFERENCE, reservations })),
  fc.dictionary(fc.string(), fc.jsonValue()).map((extra) => ({ ...extra, ...REFERENCE, x: 1 })),
);

async function storedConfig(): Promise<Record<string, unknown>> {
  return ((await (await admin("GET", "/origin")).json()) as { config: Record<string, unknown> }).config;
}

describe("origin config fuzzing", () => {
  it(
    "refuses mutated configs with a problem naming a field, or stores them whole",
    async () => {
      const before = await storedConfig();
      await fc.assert(
        fc.asyncProperty(mutatedConfig, async (body) => {
          const response = await admin("PUT", "/origin", body);
          expect(response.status).not.toBe(500);
          if (response.status === 200) {
            await response.body?.cancel();
            expect((await admin("PUT", "/origin", REFERENCE)).status).toBe(200);
            return;
          }
          expect(response.status).toBe(400);
          expect(response.headers.get("content-type")).toBe("application/problem+json");
          const problem = (await response.json()) as { errors?: Array<{ field: string; message: string }> };
          expect(problem.errors?.length).toBeGreaterThan(0);
          for (const error of problem.errors ?? []) {
            expect(error.field.length).toBeGreaterThan(0);
            expect(error.message.length).toBeGreaterThan(0);
          }
        }),
        { numRuns: Math.ceil(FUZZ_RUNS / 4) },
      );
      expect(await storedConfig()).toEqual(before);
    },
    FUZZ_TIMEOUT_MS,
  );
});
