import { describe, expect, it } from "vitest";
import type { FullBehaviour } from "../../src/admission/limits";
import type { Priority } from "../../src/admission/priority";
import {
  type Waiter,
  countAhead,
  countQueuedByPriority,
  earliestExpiry,
  enqueue,
  partitionExpired,
  removeWaiter,
  victimForFullQueue,
} from "../../src/admission/wait-queue";

const T0 = 1_700_000_000_000;
let seq = 0;
function waiter(priority: Priority, expiresAt = T0 + 1000): Waiter {
  seq += 1;
  return {
    id: `w${seq}`,
    priority,
    deadline: expiresAt,
    fullBehaviour: "evict-lowest",
    seq,
    enqueuedAt: T0,
    expiresAt,
  };
}

function build(...priorities: Priority[]) {
  return priorities.map((p) => waiter(p)).reduce((queue, w) => enqueue(queue, w), [] as readonly Waiter[]);
}

describe("wait queue", () => {
  it("serves the highest priority first and FIFO within a class", () => {
    const queue = build("low", "normal", "critical", "normal", "high", "low");
    expect(queue.map((w) => w.priority)).toEqual(["critical", "high", "normal", "normal", "low", "low"]);
    const normals = queue.filter((w) => w.priority === "normal");
    expect(normals[0]!.seq).toBeLessThan(normals[1]!.seq);
  });

  it("counts the waiters served before an arrival of a given priority", () => {
    const queue = build("low", "normal", "high", "normal");
    expect(countAhead(queue, "critical")).toBe(0);
    expect(countAhead(queue, "high")).toBe(1);
    expect(countAhead(queue, "normal")).toBe(3);
    expect(countAhead(queue, "low")).toBe(4);
  });

  it("counts queued requests by priority", () => {
    expect(countQueuedByPriority(build("low", "low", "critical"))).toEqual({ low: 2, normal: 0, high: 0, critical: 1 });
  });

  it("evict-lowest displaces the lowest-priority, newest waiter only for a higher arrival", () => {
    const queue = build("low", "normal", "low");
    const newestLow = queue[queue.length - 1]!;
    expect(victimForFullQueue(queue, { priority: "normal" }, "evict-lowest")).toBe(newestLow);
    expect(victimForFullQueue(queue, { priority: "low" }, "evict-lowest")).toBeNull();
    expect(victimForFullQueue(build("high", "high"), { priority: "normal" }, "evict-lowest")).toBeNull();
  });

  it("shed-oldest displaces the oldest waiter of the lowest class at or below the arrival", () => {
    const queue = build("low", "normal", "low");
    const oldestLow = queue.find((w) => w.priority === "low")!;
    expect(victimForFullQueue(queue, { priority: "low" }, "shed-oldest")).toBe(oldestLow);
    expect(victimForFullQueue(build("high"), { priority: "normal" }, "shed-oldest")).toBeNull();
  });

  it.each<FullBehaviour>(["shed-newest", "block"])("%s never displaces a waiter", (behaviour) => {
    expect(victimForFullQueue(build("low"), { priority: "critical" }, behaviour)).toBeNull();
  });

  it("splits off expired waiters and finds the earliest expiry", () => {
    const early = waiter("high", T0 + 10);
    const late = waiter("low", T0 + 500);
    const queue = enqueue(enqueue([], early), late);
    expect(earliestExpiry(queue)).toBe(T0 + 10);
    const { live, expired } = partitionExpired(queue, T0 + 10);
    expect(expired).toEqual([early]);
    expect(live).toEqual([late]);
    expect(earliestExpiry([])).toBeNull();
  });

  it("removes a waiter by id", () => {
    const queue = build("low", "high");
    expect(removeWaiter(queue, queue[0]!.id)).toHaveLength(1);
  });
});
