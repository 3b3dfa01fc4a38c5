import { describe, expect, it } from "vitest";
import { mapBounded } from "../../src/admin/bounded-map";
import { decodeCursor, encodeCursor, isExpired } from "../../src/tenant/key-ring";

describe("key listing cursors (issue 14, item 2)", () => {
  it("round-trips a position through an opaque URL-safe cursor", () => {
    const cursor = encodeCursor({ createdAt: 1_700_000_000_000, id: "key_a+/b" });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual({ createdAt: 1_700_000_000_000, id: "key_a+/b" });
  });

  it("refuses cursors it did not write", () => {
    for (const bad of ["", "%%%", btoa("[1]"), btoa('["x","key"]'), btoa('[-1,"key"]'), btoa("{}"), "bm90IGpzb24"]) {
      expect(decodeCursor(bad), bad).toBeNull();
    }
  });
});

describe("key expiry (issue 14, item 2)", () => {
  const at = 1_700_000_000_000;
  it("refuses a key from its expiry's millisecond on, and never one without an expiry", () => {
    expect(isExpired(at, at - 1)).toBe(false);
    expect(isExpired(at, at)).toBe(true);
    expect(isExpired(at, at + 1)).toBe(true);
    expect(isExpired(undefined, at)).toBe(false);
    expect(isExpired(null, at)).toBe(false);
  });
});

describe("bounded fan-out", () => {
  it("keeps at most `limit` calls in flight and returns results in input order", async () => {
    let running = 0;
    let peak = 0;
    const results = await mapBounded([5, 1, 4, 2, 3, 0, 6], 3, async (n, i) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, n));
      running -= 1;
      return n * 10 + i;
    });
    expect(results).toEqual([50, 11, 42, 23, 34, 5, 66]);
    expect(peak).toBe(3);
  });

  it("stops handing out items after a failure and rethrows it", async () => {
    const seen: number[] = [];
    await expect(
      mapBounded([1, 2, 3, 4, 5], 1, async (n) => {
        seen.push(n);
        if (n === 2) throw new Error("boom");
        return n;
      }),
    ).rejects.toThrow("boom");
    expect(seen).toEqual([1, 2]);
  });
});
