import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { normalisePath } from "../../src/request-path";
import { ADMIN_TOKEN, LIMITS, admin, guardFetch, uniqueTenant } from "./support";
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS } from "./fuzz-runs";

/**
 * The admin API under random and malformed input, through the real Worker: never a 500, always
 * problem+json that says what is wrong, and the stored limits unchanged by anything refused.
 */
const tenant = uniqueTenant("fuzz");
// Random paths may well PUT or DELETE the tenants they name: they get one of their own, so the
// reference tenant's limits are only ever touched by the properties that check them.
const pathTenant = uniqueTenant("fuzz-paths");
const stored = { ...LIMITS, maxClientPriority: "normal", routes: [], weight: 1 };

beforeAll(async () => {
  expect((await admin("PUT", `/tenants/${tenant}`, LIMITS)).status).toBe(200);
});

async function expectProblemOrSuccess(response: Response, allowed: number[]) {
  expect(response.status).not.toBe(500);
  expect(allowed).toContain(response.status);
  if (response.status >= 400) {
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const problem = (await response.json()) as {
      status: number;
      title: string;
      detail: string;
      errors?: Array<{ field: string; message: string }>;
    };
    expect(problem.status).toBe(response.status);
    expect(problem.detail.length).toBeGreaterThan(0);
    if (response.status === 400 && problem.errors) {
      for (const error of problem.errors) {
        expect(error.field.length).toBeGreaterThan(0);
        expect(error.message.length).toBeGreaterThan(0);
      }
    }
  } else {
    await response.body?.cancel();
  }
}

async function expectLimitsUnchanged() {
  const body = (await (await admin("GET", `/tenants/${tenant}`)).json()) as { limits: unknown };
  expect(body.limits).toEqual(stored);
}

/** Valid limits with one field replaced by anything at all, or a field added. */
const mutatedLimits = fc.oneof(
  fc
    .record({
      field: fc.constantFrom(...Object.keys(LIMITS), "timeoutMs", "maxClientPriority", "routes"),
      value: fc.jsonValue(),
    })
    .map(({ field, value }) => ({ ...LIMITS, [field]: value })),
  fc
    .record({
      field: fc.constantFrom("rate", "burst", "maxInFlight", "maxQueue", "maxWaitMs", "timeoutMs"),
      value: fc.oneof(
        fc.double({ noNaN: true }),
        fc.integer(),
        fc.constant(1e308),
        fc.constant(-0),
        fc.constant(2 ** 53 + 1),
      ),
    })
    .map(({ field, value }) => ({ ...LIMITS, [field]: value })),
  fc
    .record({
      routes: fc.array(
        fc.record({ method: fc.string(), path: fc.string(), priority: fc.string(), fullBehaviour: fc.string() }),
        { maxLength: 70 },
      ),
    })
    .map(({ routes }) => ({ ...LIMITS, routes })),
  fc
    .dictionary(fc.string(), fc.jsonValue())
    .map((extra) => ({ ...extra, ...LIMITS, [`x${Object.keys(extra).length}`]: 1 })),
);

/** Raw bodies: random JSON, text that is not JSON, deep nesting, huge numbers. */
const rawBody = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.string({ unit: "binary" }),
  fc.integer({ min: 1, max: 20_000 }).map((depth) => "[".repeat(depth) + "]".repeat(depth)),
  fc.integer({ min: 1, max: 5_000 }).map((depth) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`),
  fc.constantFrom(
    "{",
    "NaN",
    '{"rate":NaN}',
    '{"rate":1e999}',
    "\u0000",
    '{"__proto__":{"rate":1}}',
    '{"constructor":{"prototype":{}}}',
  ),
);

describe("admin API fuzzing", () => {
  it(
    "refuses mutated limits with a problem naming a field, or stores them whole",
    async () => {
      await fc.assert(
        fc.asyncProperty(mutatedLimits, async (body) => {
          const response = await admin("PUT", `/tenants/${tenant}`, body);
          if (response.status === 200) {
            // A mutation that is still valid: store it, then put the reference limits back.
            await response.body?.cancel();
            expect((await admin("PUT", `/tenants/${tenant}`, LIMITS)).status).toBe(200);
            return;
          }
          await expectProblemOrSuccess(response, [400]);
        }),
        { numRuns: FUZZ_RUNS },
      );
      await expectLimitsUnchanged();
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    "answers raw and malformed bodies with 400, 413 or 415 problems and changes nothing",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          rawBody,
          fc.constantFrom("application/json", "text/plain", "application/json; charset=utf-8", ""),
          async (body, type) => {
            const response = await admin("PUT", `/tenants/${tenant}`, body, { "content-type": type });
            await expectProblemOrSuccess(response, [200, 400, 413, 415]);
            if (response.status === 200) expect((await admin("PUT", `/tenants/${tenant}`, LIMITS)).status).toBe(200);
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
      await expectLimitsUnchanged();
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    "answers random paths, unicode and encoded tenant names and traversal with problems, never forwarding",
    async () => {
      const segment = fc.oneof(
        fc.string({ unit: "grapheme" }),
        fc.constantFrom("..", ".", "%2e%2e", "%2F", "%00", "%ff", "%", "tenants", pathTenant, "keys", "a".repeat(300)),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(segment, { minLength: 0, maxLength: 5 }),
          fc.constantFrom("GET", "PUT", "POST", "DELETE", "PATCH"),
          async (segments, method) => {
            const path = segments.map((s) => encodeURIComponent(s).replace(/%25/g, "%")).join("/");
            // `/__guard/..` is resolved to `/` before the Worker sees it: an ordinary request then.
            if (normalisePath(new URL(`http://guard.test/__guard/${path}`).pathname).kind === "proxy") return;
            const response = await guardFetch(`/__guard/${path}`, {
              method,
              headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
              ...(method === "GET" || method === "DELETE" ? {} : { body: JSON.stringify(LIMITS) }),
            });
            expect(response.headers.get("x-guard-tenant")).toBeNull();
            await expectProblemOrSuccess(response, [200, 201, 204, 400, 404, 409]);
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    "refuses random authorization headers without a hint of the token",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.string(),
            fc.string().map((s) => `Bearer ${s}`),
            fc.constantFrom(
              `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
              `bearer  ${ADMIN_TOKEN}x`,
              `Bearer ${ADMIN_TOKEN} extra`,
              `Token ${ADMIN_TOKEN}`,
            ),
          ),
          async (authorization) => {
            let headers: Headers;
            try {
              headers = new Headers({ authorization });
            } catch {
              return; // not a header value any client could send
            }
            const response = await guardFetch(`/__guard/tenants/${tenant}`, {
              method: "PUT",
              headers,
              body: JSON.stringify({ ...LIMITS, rate: 1 }),
            });
            expect(await response.clone().text()).not.toContain(ADMIN_TOKEN);
            await expectProblemOrSuccess(response, [401]);
          },
        ),
        { numRuns: Math.ceil(FUZZ_RUNS / 2) },
      );
      await expectLimitsUnchanged();
    },
    FUZZ_TIMEOUT_MS,
  );
});
