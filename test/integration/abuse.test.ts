import { afterEach, describe, expect, it } from "vitest";
import { type FakeOrigin, installFakeOrigin } from "./fake-origin";
import { createTenant, expectReconciled, proxied, statsReported, uniqueTenant } from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => origin?.restore());

describe("proxy abuse", () => {
  it.each(["999999999999", "-1", "1e9", "0x10", "NaN", "100ms", " ", "10000000000000000000000"])(
    "ignores the absurd client budget %j and uses the tenant's",
    async (raw) => {
      origin = installFakeOrigin();
      const key = await createTenant(uniqueTenant("budget"), { timeoutMs: 2000 });
      await (await proxied(key, "/x", { headers: { "x-request-timeout-ms": raw } })).text();
      const timeout = Number(origin.requests[0]!.headers.get("x-request-timeout-ms"));
      expect(timeout).toBeGreaterThan(1900);
      expect(timeout).toBeLessThanOrEqual(2000);
    },
  );

  it("replaces forged deadline, tenant, priority and forwarding headers, even when Connection lists them", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("forged");
    const key = await createTenant(tenant);
    const before = Date.now();
    await (
      await proxied(key, "/x", {
        headers: {
          connection: "x-guard-tenant, x-request-deadline, x-forwarded-for, x-guard-priority",
          "x-request-deadline": String(before + 10 * 60_000),
          "x-guard-tenant": "someone-else",
          "x-guard-priority": "critical",
          "x-priority": "critical",
          "x-forwarded-for": "10.0.0.1",
          "x-forwarded-host": "evil.example",
          "x-real-ip": "10.0.0.2",
          forwarded: "for=10.0.0.3",
          "cf-connecting-ip": "203.0.113.50",
        },
      })
    ).text();
    const seen = origin.requests[0]!.headers;
    expect(seen.get("x-guard-tenant")).toBe(tenant);
    expect(seen.get("x-guard-priority")).toBe("normal");
    expect(Number(seen.get("x-request-deadline"))).toBeLessThanOrEqual(Date.now() + 10_000);
    expect(seen.get("x-forwarded-for")).toBe("203.0.113.50");
    expect(seen.get("x-forwarded-host")).toBe("guard.test");
    expect(seen.has("x-real-ip")).toBe(false);
    expect(seen.has("forwarded")).toBe(false);
    expect(seen.has("connection")).toBe(false);
  });

  it("streams a large upload to the origin without reading it whole", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const chunks = 256; // 16 MiB
    let received = 0;
    let largestRead = 0;
    origin = installFakeOrigin(async (request) => {
      const reader = request.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
        largestRead = Math.max(largestRead, value.byteLength);
      }
      return new Response(String(received));
    });
    const tenant = uniqueTenant("upload");
    const key = await createTenant(tenant);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === chunks) return controller.close();
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    const response = await proxied(key, "/upload", {
      method: "POST",
      body,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(await response.text()).toBe(String(chunk.byteLength * chunks));
    // Arrived in pieces, not as one buffered body.
    expect(largestRead).toBeLessThan(chunk.byteLength * chunks);
    expectReconciled(await statsReported(tenant, 1));
  });

  it("passes a huge request header through or refuses it, but never fails", async () => {
    origin = installFakeOrigin();
    const key = await createTenant(uniqueTenant("header"));
    const response = await proxied(key, "/x", { headers: { "x-big": "a".repeat(60_000) } });
    expect(response.status).toBeLessThan(500);
    await response.text();
  });

  it("answers an origin that sends garbage instead of bytes, and frees the slot", async () => {
    origin = installFakeOrigin(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue("not bytes" as unknown as Uint8Array);
              controller.close();
            },
          }),
          { status: 200, headers: { "content-type": "text/plain" } },
        ),
    );
    const tenant = uniqueTenant("garbage");
    const key = await createTenant(tenant);
    const response = await proxied(key);
    await response.text().catch(() => "body failed, as it should");
    const after = await statsReported(tenant, 1);
    expect(after.state.inFlight).toBe(0);
    expectReconciled(after);
  });
});
