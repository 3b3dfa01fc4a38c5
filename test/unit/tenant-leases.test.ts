import { describe, expect, it } from "vitest";
import type { AdmissionLimits } from "../../src/admission/limits";
import { type LeasePorts, type StageVerdict, TenantLeases } from "../../src/edge/tenant-leases";
import { type LeaseBook, emptyBook } from "../../src/lease/lease-book";
import type { LeaseAnswer, LeaseReport } from "../../src/lease/lease-protocol";
import { T0, arrival, renew } from "./lease-fixtures";

const LIMITS: AdmissionLimits = { rate: 1_000, burst: 1_000, maxInFlight: 1, maxQueue: 50, maxWaitMs: 5_000 };

/**
 * The isolate's shell (src/edge/tenant-leases.ts) on a manual clock, in the deployed wake mode
 * (a grant wakes its waiter by promise), against a real lease book answering at once.
 */
function harness() {
  let now = T0;
  let book: LeaseBook = emptyBook(LIMITS, T0);
  const timers: Array<{ at: number; resolve: () => void }> = [];
  let timersSet = 0;
  const ports: LeasePorts = {
    call: async (_name: string, report: LeaseReport): Promise<LeaseAnswer> => {
      const result = renew(book, report, now, LIMITS);
      book = result.book;
      return result.answer;
    },
    now: () => now,
    wait: (ms: number) =>
      new Promise<void>((resolve) => {
        timersSet += 1;
        timers.push({ at: now + ms, resolve });
      }),
    waitUntil: () => {},
    wakeByPromise: true,
  };
  const settle = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  return {
    leases: new TenantLeases(),
    ports,
    settle,
    get timersSet() {
      return timersSet;
    },
    /** Moves the clock on in steps, firing the timers that are due. */
    async advance(ms: number, step = 10) {
      for (const end = now + ms; now < end; ) {
        now += step;
        for (const timer of timers.filter((t) => t.at <= now)) {
          timers.splice(timers.indexOf(timer), 1);
          timer.resolve();
        }
        await settle();
      }
    },
    request: (id: string) => ({
      objectName: "tenant:wakes",
      arrival: arrival({ id, deadline: now + 60_000, fullBehaviour: "block" }, now),
      limits: LIMITS,
      carriedLimits: undefined,
      coverMs: 60_000,
      signal: null,
    }),
  };
}

describe("tenant leases in an isolate: waking the queue", () => {
  it("wakes only the queue's head for the lease's timers, not every waiter at every renewal", async () => {
    const h = harness();
    const first = h.leases.enter(h.request("first"), h.ports);
    await h.settle();
    await h.advance(20);
    const admitted = (await first) as Extract<StageVerdict, { kind: "admit" }>;
    expect(admitted.kind).toBe("admit");
    // The only slot stays in use: 30 requests queue behind it.
    const queued = Array.from({ length: 30 }, (_, i) => h.leases.enter(h.request(`w${i}`), h.ports));
    await h.settle();
    const before = h.timersSet;
    await h.advance(2_000);
    // Renewals fall due every 100-250 ms; 30 waiters each re-arming at each of them set over 240.
    expect(h.timersSet - before).toBeLessThan(60);
    // Every waiter is still served in turn once the slot frees.
    admitted.slot.release("completed");
    await h.advance(50);
    const next = (await Promise.race([queued[0], Promise.resolve(null)])) as StageVerdict | null;
    expect(next?.kind).toBe("admit");
  });
});

describe("tenant leases in an isolate: the hold-time sample", () => {
  it("ends a streamed response's sample at its headers, so a long stream does not lengthen every wait estimate", async () => {
    const h = harness();
    const admit = async (id: string) => {
      const entered = h.leases.enter(h.request(id), h.ports);
      await h.settle();
      await h.advance(20);
      return (await entered) as Extract<StageVerdict, { kind: "admit" }>;
    };
    const plain = await admit("plain");
    await h.advance(100);
    plain.slot.release("completed");
    const afterPlain = h.leases.snapshot("tenant:wakes")?.holdMs ?? 0;
    expect(afterPlain).toBeGreaterThanOrEqual(100);
    const streamed = await admit("streamed");
    const headersAt = h.ports.now() + 100;
    await h.advance(60_000, 1_000);
    streamed.slot.release("completed", headersAt);
    const afterStream = h.leases.snapshot("tenant:wakes")?.holdMs ?? 0;
    // A minute of stream would have moved the average by thousands of ms; its headers, by little.
    expect(afterStream).toBeLessThan(afterPlain + 100);
  });
});
