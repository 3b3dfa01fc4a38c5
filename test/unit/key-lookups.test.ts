import { describe, expect, it } from "vitest";
import { KeyLookupBudget } from "../../src/edge/key-lookup-budget";
import { TenantDirectory, hashKey, kvKeyName } from "../../src/tenant/tenant-directory";

const T0 = 1_700_000_000_000;

/** A KV stand-in that counts reads; `known` maps KV names to their JSON values. */
function countingKv(known: Record<string, unknown> = {}) {
  let reads = 0;
  const kv = {
    get: async (name: string) => {
      reads += 1;
      return Object.hasOwn(known, name) ? known[name] : null;
    },
  } as unknown as KVNamespace;
  return {
    kv,
    get reads() {
      return reads;
    },
  };
}

const freshKey = (n: number) => `unknownkey-${n.toString(36).padStart(12, "0")}`;

describe("unknown API keys are cheap and bounded (issue 13, item 1)", () => {
  it("never looks up a key longer or wider than any key the admin API can register", async () => {
    const store = countingKv();
    const directory = new TenantDirectory(store.kv);
    for (const key of ["x".repeat(8 * 1024), "short", "has spaces in it, sixteen+", "ünïcödé-key-0123456789"]) {
      expect(await directory.tenantForKey(key, T0)).toBeNull();
    }
    expect(store.reads).toBe(0);
  });

  it("keeps a real key cached however many unknown keys pass", async () => {
    const real = "real-key-0123456789abcdef";
    const store = countingKv({ [kvKeyName(await hashKey(real))]: { tenant: "acme", id: "key_1" } });
    const directory = new TenantDirectory(store.kv);
    expect(await directory.tenantForKey(real, T0)).toEqual({ tenant: "acme", id: "key_1" });
    for (let i = 0; i < 10_050; i++) await directory.tenantForKey(freshKey(i), T0 + 1);
    const readsBefore = store.reads;
    expect(await directory.tenantForKey(real, T0 + 2)).toEqual({ tenant: "acme", id: "key_1" });
    expect(store.reads).toBe(readsBefore);
  });

  it("does not look up a key the client's lookup budget has no room for, and does not cache it as unknown", async () => {
    const real = "another-real-key-0123456789";
    const store = countingKv({ [kvKeyName(await hashKey(real))]: { tenant: "acme", id: "key_2" } });
    const directory = new TenantDirectory(store.kv);
    expect(await directory.tenantForKey(real, T0, () => false)).toBeNull();
    expect(store.reads).toBe(0);
    expect(await directory.tenantForKey(real, T0, () => true)).toEqual({ tenant: "acme", id: "key_2" });
  });

  it("gives each client a few lookups a second: its burst at once, then its rate", () => {
    const budget = new KeyLookupBudget({ rate: 10, burst: 50 });
    let granted = 0;
    for (let i = 0; i < 1_000; i++) if (budget.take("198.51.100.7", T0)) granted += 1;
    expect(granted).toBe(50);
    expect(budget.take("203.0.113.1", T0)).toBe(true);
    let later = 0;
    for (let i = 0; i < 1_000; i++) if (budget.take("198.51.100.7", T0 + 1_000)) later += 1;
    expect(later).toBe(10);
  });
});
