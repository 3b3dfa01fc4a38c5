import { describe, expect, it } from "vitest";
import { claim, publish, release } from "../../src/tenant/key-claim";

const A = { tenant: "acme", id: "key_a" };
const B = { tenant: "bravo", id: "key_b" };
const ownedByA = { ...A, published: true };

describe("key claims: one owner per key (issue 13, item 10)", () => {
  it("gives an unowned key to the first claim, unpublished, and refuses every other tenant", () => {
    const first = claim(null, A);
    expect(first).toEqual({ owner: { ...A, published: false }, result: { kind: "claimed" } });
    expect(claim(first.owner, B)).toEqual({ owner: first.owner, result: { kind: "taken" } });
  });

  it("answers a claim by the owning tenant with the id it holds the key under (an import run again)", () => {
    expect(claim(ownedByA, { tenant: "acme", id: "key_new" })).toEqual({
      owner: ownedByA,
      result: { kind: "held", id: "key_a" },
    });
  });

  it("frees a key only for its owner's own registration", () => {
    expect(release(ownedByA, B)).toEqual({ owner: ownedByA, result: { kind: "not_owner" } });
    expect(release(ownedByA, { tenant: "acme", id: "key_other" }).result.kind).toBe("not_owner");
    expect(release(ownedByA, A)).toEqual({ owner: null, result: { kind: "released" } });
    expect(release(null, A).result.kind).toBe("unclaimed");
  });
});

describe("key publication: the KV entry is written once, by its owner (issue 14, item 2)", () => {
  it("publishes a claimed key once and then reports it done", () => {
    const claimed = claim(null, A).owner;
    const first = publish(claimed, A);
    expect(first).toEqual({ owner: ownedByA, step: { kind: "publish" } });
    expect(publish(first.owner, A).step.kind).toBe("done");
  });

  it("never publishes for another tenant or another registration, nor an unowned key", () => {
    expect(publish(ownedByA, B).step.kind).toBe("not_owner");
    expect(publish({ ...A, published: false }, { tenant: "acme", id: "key_other" }).step.kind).toBe("not_owner");
    expect(publish(null, A).step.kind).toBe("not_owner");
  });
});
