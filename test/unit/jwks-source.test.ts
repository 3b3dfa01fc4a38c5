import { beforeAll, describe, expect, it } from "vitest";
import { JWKS_TIMING, JwksUnavailable, MAX_JWKS_BYTES, RemoteJwks } from "../../src/identity/jwks-source";
import { type SigningKey, jwksOf, signingKey } from "../jwt-fixtures";

const T0 = 1_800_000_000_000;
const URL_ = new URL("https://idp.example.test/.well-known/jwks.json");

let first: SigningKey;
let second: SigningKey;
beforeAll(async () => {
  [first, second] = await Promise.all([signingKey("ES256", "k1"), signingKey("ES256", "k2")]);
});

/** A JWKS endpoint whose answer the test sets, counting fetches. */
function endpoint() {
  const state = {
    fetches: 0,
    answer: (): Response => Response.json(jwksOf(first)),
  };
  const source = new RemoteJwks(URL_, {
    fetch: async () => {
      state.fetches += 1;
      return state.answer();
    },
    pause: async () => {},
    clock: () => T0,
  });
  return { state, source };
}

const kids = (keys: readonly { kid: string | undefined }[]) => keys.map((key) => key.kid);

describe("the JWKS fetched from a URL", () => {
  it("is fetched once and served from the cache while fresh", async () => {
    const { state, source } = endpoint();
    expect(kids(await source.keys(T0, "k1"))).toEqual(["k1"]);
    expect(kids(await source.keys(T0 + JWKS_TIMING.maxAgeMs - 1, "k1"))).toEqual(["k1"]);
    expect(state.fetches).toBe(1);
  });

  it("refetches for an unknown kid at most once per cooldown, however many tokens name one", async () => {
    const { state, source } = endpoint();
    await source.keys(T0, "k1");
    for (let i = 0; i < 100; i += 1) await source.keys(T0 + JWKS_TIMING.cooldownMs + i, `bogus-${i}`);
    expect(state.fetches).toBe(2);
  });

  it("picks up a rotated key on the first token naming it after the cooldown", async () => {
    const { state, source } = endpoint();
    await source.keys(T0, "k1");
    state.answer = () => Response.json(jwksOf(first, second));
    expect(kids(await source.keys(T0 + 1, "k2"))).toEqual(["k1"]);
    expect(kids(await source.keys(T0 + JWKS_TIMING.cooldownMs, "k2"))).toEqual(["k1", "k2"]);
  });

  it("refetches when the set is older than its max age", async () => {
    const { state, source } = endpoint();
    await source.keys(T0, "k1");
    state.answer = () => Response.json(jwksOf(second));
    expect(kids(await source.keys(T0 + JWKS_TIMING.maxAgeMs, "k1"))).toEqual(["k2"]);
    expect(state.fetches).toBe(2);
  });

  it("keeps the last good set through failed refetches until the staleness bound, then is unavailable", async () => {
    const { state, source } = endpoint();
    await source.keys(T0, "k1");
    state.answer = () => new Response("down", { status: 503 });
    expect(kids(await source.keys(T0 + JWKS_TIMING.maxAgeMs, "k1"))).toEqual(["k1"]);
    expect(kids(await source.keys(T0 + JWKS_TIMING.staleIfErrorMs - 1, "k1"))).toEqual(["k1"]);
    await expect(source.keys(T0 + JWKS_TIMING.staleIfErrorMs, "k1")).rejects.toBeInstanceOf(JwksUnavailable);
  });

  it("is unavailable with no set yet, and does not retry a failed endpoint before the cooldown", async () => {
    const { state, source } = endpoint();
    state.answer = () => {
      throw new TypeError("connection refused");
    };
    await expect(source.keys(T0, "k1")).rejects.toBeInstanceOf(JwksUnavailable);
    await expect(source.keys(T0 + 1_000, "k1")).rejects.toBeInstanceOf(JwksUnavailable);
    expect(state.fetches).toBe(1);
  });

  it("refuses a body over its size bound, and a set with no usable key, keeping the old one", async () => {
    const { state, source } = endpoint();
    await source.keys(T0, "k1");
    state.answer = () => new Response(`{"keys":[${" ".repeat(MAX_JWKS_BYTES)}]}`);
    expect(kids(await source.keys(T0 + JWKS_TIMING.maxAgeMs, "k1"))).toEqual(["k1"]);
    state.answer = () => Response.json({ keys: [{ kty: "oct", k: "x".repeat(64) }] });
    expect(kids(await source.keys(T0 + JWKS_TIMING.maxAgeMs + JWKS_TIMING.cooldownMs, "k1"))).toEqual(["k1"]);
    expect(state.fetches).toBe(3);
  });

  it("lets a request with no set wait for the fetch already in flight instead of starting another", async () => {
    let release = () => {};
    let fetches = 0;
    let clock = T0;
    const source = new RemoteJwks(URL_, {
      fetch: async () => {
        fetches += 1;
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return Response.json(jwksOf(first));
      },
      pause: async (ms) => {
        clock += ms;
        if (clock - T0 > 50) release();
        await Promise.resolve();
      },
      clock: () => clock,
    });
    const [a, b] = await Promise.all([source.keys(T0, "k1"), source.keys(T0, "k1")]);
    expect(kids(a)).toEqual(["k1"]);
    expect(kids(b)).toEqual(["k1"]);
    expect(fetches).toBe(1);
  });
});
