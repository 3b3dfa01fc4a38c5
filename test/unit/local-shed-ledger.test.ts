import { describe, expect, it } from "vitest";
import {
  FLUSH_AFTER_MS,
  FLUSH_AT_COUNT,
  recordLocalShed,
  reportFired,
  restoreLocalSheds,
  takeLocalSheds,
} from "../../src/edge/local-shed-ledger";

const T0 = 1_700_000_000_000;
let n = 0;
const fresh = () => {
  n += 1;
  return `tenant:ledger-${n}`;
};

describe("local shed ledger", () => {
  it("schedules one report for a new batch, and none for the sheds that follow", () => {
    const object = fresh();
    expect(recordLocalShed(object, "queue_full", "low", T0)).toBe("schedule-flush");
    expect(recordLocalShed(object, "queue_full", "low", T0 + 1)).toBe("none");
    expect(takeLocalSheds(object)).toEqual([{ reason: "queue_full", priority: "low", count: 2 }]);
  });

  it("does not schedule another report when a piggybacking call took the batch before the report fired", () => {
    const object = fresh();
    expect(recordLocalShed(object, "rate_limited", "normal", T0)).toBe("schedule-flush");
    takeLocalSheds(object);
    expect(recordLocalShed(object, "rate_limited", "normal", T0 + 10)).toBe("none");
    expect(recordLocalShed(object, "rate_limited", "normal", T0 + FLUSH_AFTER_MS)).toBe("schedule-flush");
  });

  it("lets the next batch schedule again once the report has fired", () => {
    const object = fresh();
    recordLocalShed(object, "queue_full", "high", T0);
    reportFired(object);
    takeLocalSheds(object);
    expect(recordLocalShed(object, "queue_full", "high", T0 + 20)).toBe("schedule-flush");
  });

  it("asks for a report at once when a batch reaches its bound", () => {
    const object = fresh();
    restoreLocalSheds(object, [{ reason: "queue_full", priority: "low", count: FLUSH_AT_COUNT - 1 }], T0);
    expect(recordLocalShed(object, "queue_full", "low", T0 + 1)).toBe("flush-now");
    expect(takeLocalSheds(object)?.[0]?.count).toBe(FLUSH_AT_COUNT);
    expect(takeLocalSheds(object)).toBeUndefined();
  });
});
