import { afterEach, describe, expect, it } from "vitest";
import { createTenant, proxied, statsWhen, uniqueTenant } from "./support";
import { type FakeOrigin, installFakeOrigin } from "./fake-origin";

let origin: FakeOrigin | undefined;
afterEach(() => origin?.restore());

describe("proxy", () => {
  it("forwards an admitted request to the origin and releases its slot", async () => {
    origin = installFakeOrigin();
    const tenant = uniqueTenant("smoke");
    const key = await createTenant(tenant);
    const response = await proxied(key);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
    expect(origin.requests).toHaveLength(1);
    const s = await statsWhen(tenant, (x) => x.state.inFlight === 0);
    expect(s.state.inFlight).toBe(0);
    expect(s.counters.admitted).toBe(1);
  });
});
