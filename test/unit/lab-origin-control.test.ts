import { afterEach, describe, expect, it } from "vitest";
import { closeLabOrigins, labOrigin } from "./lab-origin";

afterEach(closeLabOrigins);

describe("the lab and demo origin's control paths (issue 13, item 13)", () => {
  it("refuses /__origin/* on a request the guard forwarded, and serves it on loopback", async () => {
    const origin = labOrigin({ serviceMs: 1 });
    const port = await origin.listen(0);
    const base = `http://127.0.0.1:${port}`;
    const through = await fetch(`${base}/__origin/reset`, {
      method: "POST",
      headers: { "x-guard-request-id": "3f1c", "x-guard-tenant": "anonymous" },
    });
    expect(through.status).toBe(403);
    await through.text();
    const direct = await fetch(`${base}/__origin/stats`);
    expect(direct.status).toBe(200);
    expect(await direct.json()).toMatchObject({ received: 0 });
  });
});
