import { describe, expect, it } from "vitest";
import { SERVICE_BASE, parseOriginSettings } from "../../src/origin-settings";

const service = { fetch: async () => new Response("ok") } as unknown as Fetcher;
const SECRET = "0123456789abcdef0123456789abcdef";

describe("origin settings", () => {
  it("forwards to ORIGIN_URL, unsigned, when nothing else is set", () => {
    const parsed = parseOriginSettings({ ORIGIN_URL: "https://api.acme.dev/base" });
    expect(parsed).toEqual({
      ok: true,
      config: { originUrl: new URL("https://api.acme.dev/base"), originService: null, signingSecret: null },
    });
  });

  it("lets an ORIGIN service binding win over ORIGIN_URL, even a bad one, with the fixed internal base", () => {
    const parsed = parseOriginSettings({ ORIGIN: service, ORIGIN_URL: "not a url" });
    expect(parsed).toEqual({
      ok: true,
      config: { originUrl: new URL(SERVICE_BASE), originService: service, signingSecret: null },
    });
  });

  it("requires one of them, naming ORIGIN_URL", () => {
    const parsed = parseOriginSettings({ ORIGIN_URL: "" });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problems.map((problem) => problem.setting)).toEqual(["ORIGIN_URL"]);
  });

  it("takes an empty ORIGIN_SIGNING_SECRET as unset, and a good one as it is", () => {
    expect(parseOriginSettings({ ORIGIN_URL: "https://a.dev", ORIGIN_SIGNING_SECRET: "" })).toMatchObject({
      ok: true,
      config: { signingSecret: null },
    });
    expect(parseOriginSettings({ ORIGIN_URL: "https://a.dev", ORIGIN_SIGNING_SECRET: SECRET })).toMatchObject({
      ok: true,
      config: { signingSecret: SECRET },
    });
  });

  it.each([
    ["31 characters", SECRET.slice(1)],
    ["a space", `${SECRET} x`],
    ["a newline", `${SECRET}\n`],
    ["non-ASCII", `${SECRET}é`],
  ])("refuses a signing secret with %s, never echoing it", (_why, secret) => {
    const parsed = parseOriginSettings({ ORIGIN_URL: "https://a.dev", ORIGIN_SIGNING_SECRET: secret });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok)
      expect(parsed.problems).toEqual([expect.objectContaining({ setting: "ORIGIN_SIGNING_SECRET", echo: false })]);
  });

  it("refuses an ORIGIN that is not a service binding", () => {
    const parsed = parseOriginSettings({ ORIGIN: "https://api.acme.dev" });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problems.map((problem) => problem.setting)).toEqual(["ORIGIN"]);
  });
});
