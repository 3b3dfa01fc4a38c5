import { describe, expect, it } from "vitest";
import { claim, release } from "../../src/tenant/key-claim";

const A = { tenant: "acme", id: "key_a" };
const B = { tenant: "bravo", id: "key_b" };

describe("key claims: one owner per key (issue 13, item 10)", () => {
  it("gives an unowned key to the first claim and refuses every other", () => {
    const first = claim(null, A);
    expect(first).toEqual({ owner: A, result: { kind: "claimed" } });
    expect(claim(first.owner, B)).toEqual({ owner: A, result: { kind: "taken" } });
    expect(claim(first.owner, A).result.kind).toBe("taken");
  });

  it("frees a key only for its owner's own registration", () => {
    expect(release(A, B)).toEqual({ owner: A, result: { kind: "not_owner" } });
    expect(release(A, { tenant: "acme", id: "key_other" }).result.kind).toBe("not_owner");
    expect(release(A, A)).toEqual({ owner: null, result: { kind: "released" } });
    expect(release(null, A).result.kind).toBe("unclaimed");
  });
});
