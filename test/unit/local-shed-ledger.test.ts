import { describe, expect, it } from "vitest";
import { FLUSH_AFTER_MS, FLUSH_AT_COUNT, ShedLedger } from "../../src/edge/local-shed-ledger";

const T0 = 1_700_000_000_000;
const OBJECT = "origin:shard-0";

describe("local shed ledger", () => {
  it("schedules one report for a new batch, and none for the sheds that follow", () => {
    const ledger = new ShedLedger<"queue_full">();
    expect(ledger.record(OBJECT, "queue_full", "low", T0)).toBe("schedule-flush");
    expect(ledger.record(OBJECT, "queue_full", "low", T0 + 1)).toBe("none");
    expect(ledger.take(OBJECT)).toEqual([{ reason: "queue_full", priority: "low", count: 2 }]);
  });

  it("keeps one count per reason and priority", () => {
    const ledger = new ShedLedger<"queue_full" | "rate_limited">();
    ledger.record(OBJECT, "queue_full", "low", T0);
    ledger.record(OBJECT, "rate_limited", "low", T0);
    ledger.record(OBJECT, "queue_full", "high", T0);
    ledger.record(OBJECT, "queue_full", "low", T0);
    expect(ledger.take(OBJECT)).toEqual([
      { reason: "queue_full", priority: "low", count: 2 },
      { reason: "rate_limited", priority: "low", count: 1 },
      { reason: "queue_full", priority: "high", count: 1 },
    ]);
  });

  it("does not schedule another report when a piggybacking call took the batch before the report fired", () => {
    const ledger = new ShedLedger<"rate_limited">();
    expect(ledger.record(OBJECT, "rate_limited", "normal", T0)).toBe("schedule-flush");
    ledger.take(OBJECT);
    expect(ledger.record(OBJECT, "rate_limited", "normal", T0 + 10)).toBe("none");
    expect(ledger.record(OBJECT, "rate_limited", "normal", T0 + FLUSH_AFTER_MS)).toBe("schedule-flush");
  });

  it("lets the next batch schedule again once the report has fired", () => {
    const ledger = new ShedLedger<"queue_full">();
    ledger.record(OBJECT, "queue_full", "high", T0);
    ledger.reportFired(OBJECT);
    ledger.take(OBJECT);
    expect(ledger.record(OBJECT, "queue_full", "high", T0 + 20)).toBe("schedule-flush");
  });

  it("asks for a report at once when a batch reaches its bound", () => {
    const ledger = new ShedLedger<"queue_full">();
    ledger.restore(OBJECT, [{ reason: "queue_full", priority: "low", count: FLUSH_AT_COUNT - 1 }], T0);
    expect(ledger.record(OBJECT, "queue_full", "low", T0 + 1)).toBe("flush-now");
    expect(ledger.take(OBJECT)?.[0]?.count).toBe(FLUSH_AT_COUNT);
    expect(ledger.take(OBJECT)).toBeUndefined();
  });

  it("merges a batch put back after a failed report with what was counted since", () => {
    const ledger = new ShedLedger<"queue_full">();
    ledger.record(OBJECT, "queue_full", "low", T0);
    const batch = ledger.take(OBJECT) ?? [];
    ledger.record(OBJECT, "queue_full", "low", T0 + 5);
    ledger.restore(OBJECT, batch, T0 + 6);
    expect(ledger.take(OBJECT)).toEqual([{ reason: "queue_full", priority: "low", count: 2 }]);
  });

  it("names the oldest object to report once more objects than its bound have batches", () => {
    const ledger = new ShedLedger<"queue_full">();
    for (let i = 0; i < 1_000; i += 1) ledger.record(`origin:shard-${i}`, "queue_full", "low", T0);
    expect(ledger.overflowing()).toBeUndefined();
    ledger.record("origin:shard-1000", "queue_full", "low", T0);
    expect(ledger.overflowing()).toBe("origin:shard-0");
  });
});
