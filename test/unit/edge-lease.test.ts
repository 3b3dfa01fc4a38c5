import { describe, expect, it } from "vitest";
import type { AdmissionLimits, Arrival } from "../../src/admission/limits";
import {
  ASK_WAIT_MS,
  type EdgeLease,
  RENEW_RETRY_MS,
  applyAnswer,
  arrive,
  cancelWaiter,
  drainMs,
  expectedWaitMs,
  finish,
  freeSlot,
  heldSlots,
  heldTokens,
  inUseTotal,
  isValid,
  newEdgeLease,
  nextWakeAt,
  pump,
  refundToken,
  renewalDue,
  renewalFailed,
  startRenewal,
} from "../../src/lease/edge-lease";
import { type LeaseBook, emptyBook } from "../../src/lease/lease-book";
import { LEASE_TIMING, type LeaseReport } from "../../src/lease/lease-protocol";
import { A, B, LIMITS, T0, arrival, counts, renew, report } from "./lease-fixtures";

/**
 * A lease that sent its first report at T0 and got the object's answer: the lone holder of a
 * real book, so it holds the whole in-flight limit and the tokens it asked for.
 */
function leased(over: Partial<LeaseReport> = {}, limits: AdmissionLimits = LIMITS) {
  const sent = startRenewal(newEdgeLease(A, T0), limits, 1_000, T0);
  const { book, answer } = renew(emptyBook(limits, T0), { ...sent.report, ...over }, T0, limits);
  return { lease: applyAnswer(sent.lease, answer), book };
}

/** Runs one arrival after a pump at the same instant, as the isolate does. */
function enter(l: EdgeLease, a: Arrival, now: number, limits: AdmissionLimits = LIMITS) {
  return arrive(pump(l, now).lease, limits, a, now);
}

/** Admits `n` arrivals of `priority` on a warm lease, at T0 + 1. */
function fill(l0: EdgeLease, n: number, limits: AdmissionLimits = LIMITS, priority: Arrival["priority"] = "normal") {
  let l = l0;
  for (let i = 0; i < n; i += 1) {
    const result = enter(l, arrival({ priority }), T0 + 1, limits);
    expect(result.outcome.kind).toBe("admit");
    l = result.lease;
  }
  return l;
}

describe("edge lease: admitting on the lease", () => {
  it("admits at once, without asking, while the lease is valid and holds a free slot and a token", () => {
    const { lease } = leased({ wantTokens: 2 });
    const result = enter(lease, arrival(), T0 + 1);
    expect(result.outcome).toEqual({ kind: "admit" });
    expect(inUseTotal(result.lease)).toBe(1);
    expect(heldTokens(result.lease)).toBe(1);
    expect(result.lease.tally).toMatchObject({ arrived: 1, admitted: { normal: 1 }, queuedEver: 0 });
    expect(renewalDue(result.lease, T0 + 1)).toBe(false);
  });

  it("admits only until ttlMs after the report that renewed it; then a request waits for the next answer", () => {
    const { lease } = leased({ wantTokens: 4 });
    expect(isValid(lease, T0 + LEASE_TIMING.ttlMs - 1)).toBe(true);
    const late = enter(lease, arrival({ deadline: T0 + 10_000 }), T0 + LEASE_TIMING.ttlMs);
    expect(late.outcome.kind).toBe("queued");
    expect(renewalDue(late.lease, T0 + LEASE_TIMING.ttlMs)).toBe(true);
  });

  it("never uses more slots than it holds, nor spends a token it does not hold", () => {
    const { lease } = leased({ wantTokens: 10 });
    const full = fill(lease, 4);
    expect(heldSlots(full)).toBe(4);
    const fifth = enter(full, arrival(), T0 + 1);
    expect(fifth.outcome.kind).toBe("queued");
    expect(inUseTotal(fifth.lease)).toBe(4);
    const { lease: poor } = leased({ wantTokens: 1 });
    const second = enter(fill(poor, 1), arrival(), T0 + 1);
    expect(second.outcome.kind).not.toBe("admit");
    expect(heldTokens(second.lease)).toBe(0);
  });
});

describe("edge lease: the local queue", () => {
  const ONE = { ...LIMITS, maxInFlight: 1 };

  it("serves a freed slot to the highest priority first, first come first served within a class", () => {
    const { lease } = leased({ wantTokens: 10 }, ONE);
    let l = fill(lease, 1, ONE);
    const ids: string[] = [];
    for (const priority of ["low", "normal", "critical", "normal"] as const) {
      const a = arrival({ priority });
      ids.push(a.id);
      const result = enter(l, a, T0 + 2, ONE);
      expect(result.outcome.kind).toBe("queued");
      l = result.lease;
    }
    const served: string[] = [];
    let running: Arrival["priority"] = "normal";
    for (let i = 0; i < 4; i += 1) {
      const result = pump(freeSlot(l, running), T0 + 3 + i);
      served.push(...result.granted.map((w) => w.id));
      running = result.granted[0]?.priority ?? running;
      l = result.lease;
    }
    expect(served).toEqual([ids[2], ids[1], ids[3], ids[0]]);
  });

  it("hands a freed slot straight to the next local waiter, with no report", () => {
    const { lease } = leased({ wantTokens: 10 }, ONE);
    const queued = enter(fill(lease, 1, ONE), arrival(), T0 + 2, ONE);
    const handed = pump(freeSlot(queued.lease, "normal"), T0 + 3);
    expect(handed.granted).toHaveLength(1);
    expect(renewalDue(handed.lease, T0 + 3)).toBe(false);
  });

  it("drops a waiter whose wait ended, as queue_timeout", () => {
    const { lease } = leased({ wantTokens: 10 }, ONE);
    const queued = enter(fill(lease, 1, ONE), arrival({ deadline: T0 + 300 }), T0 + 2, ONE);
    if (queued.outcome.kind !== "queued") throw new Error("not queued");
    const { expiresAt } = queued.outcome.waiter;
    expect(pump(queued.lease, expiresAt - 1).timedOut).toEqual([]);
    const timedOut = pump(queued.lease, expiresAt);
    expect(timedOut.timedOut.map((w) => w.id)).toEqual([queued.outcome.waiter.id]);
    expect(timedOut.lease.queue).toEqual([]);
    expect(timedOut.lease.tally.shed.queue_timeout.normal).toBe(1);
  });

  it("lets a cancelled waiter go, counted only when it is given a reason", () => {
    const { lease } = leased({ wantTokens: 10 }, ONE);
    const queued = enter(fill(lease, 1, ONE), arrival(), T0 + 2, ONE);
    if (queued.outcome.kind !== "queued") throw new Error("not queued");
    const gone = cancelWaiter(queued.lease, queued.outcome.waiter.id, null);
    expect(gone.lease.queue).toEqual([]);
    expect(gone.lease.tally.shed.queue_timeout.normal).toBe(0);
    const timedOut = cancelWaiter(queued.lease, queued.outcome.waiter.id, "queue_timeout");
    expect(timedOut.lease.tally.shed.queue_timeout.normal).toBe(1);
    expect(cancelWaiter(gone.lease, queued.outcome.waiter.id, null).waiter).toBeNull();
  });
});

describe("edge lease: a full queue", () => {
  const SMALL = { ...LIMITS, maxInFlight: 1, maxQueue: 2 };
  /** A warm lease with its one slot in use and two low waiters. */
  function fullQueue() {
    const { lease } = leased({ wantTokens: 10 }, SMALL);
    let l = fill(lease, 1, SMALL);
    const waiters: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      const a = arrival({ priority: "low" });
      waiters.push(a.id);
      l = enter(l, a, T0 + 2 + i, SMALL).lease;
    }
    expect(l.queue).toHaveLength(2);
    return { lease: l, waiters };
  }

  it("evict-lowest: a higher priority arrival displaces the newest of the lowest class", () => {
    const { lease, waiters } = fullQueue();
    const result = enter(lease, arrival({ priority: "high", fullBehaviour: "evict-lowest" }), T0 + 5, SMALL);
    expect(result.outcome.kind).toBe("queued");
    expect(result.evicted.map((w) => w.id)).toEqual([waiters[1]]);
    expect(result.lease.tally.shed.evicted.low).toBe(1);
    const same = enter(lease, arrival({ priority: "low", fullBehaviour: "evict-lowest" }), T0 + 5, SMALL);
    expect(same.outcome).toMatchObject({ kind: "shed", reason: "queue_full" });
    expect(same.evicted).toEqual([]);
  });

  it("shed-newest: the arrival is shed with a Retry-After of the queue's drain time", () => {
    const { lease } = fullQueue();
    const held = finish(lease, "completed", 120);
    const result = enter(held, arrival({ priority: "critical", fullBehaviour: "shed-newest" }), T0 + 5, SMALL);
    // Two ahead and itself, through one slot held 120 ms: the busy one frees after 60 ms on
    // average, the next two after 120 more each.
    expect(result.outcome).toEqual({ kind: "shed", reason: "queue_full", retryAfterMs: 300 });
    expect(result.lease.queue).toHaveLength(2);
    expect(result.lease.tally).toMatchObject({ shedAtEdge: 1, shed: { queue_full: { critical: 1 } } });
  });

  it("shed-oldest: the oldest waiter of the lowest class at or below the arrival's makes room", () => {
    const { lease, waiters } = fullQueue();
    const result = enter(lease, arrival({ priority: "low", fullBehaviour: "shed-oldest" }), T0 + 5, SMALL);
    expect(result.outcome.kind).toBe("queued");
    expect(result.evicted.map((w) => w.id)).toEqual([waiters[0]]);
  });

  it("block: waits its whole deadline budget instead of maxWaitMs, and at the bound is shed like shed-newest", () => {
    const { lease } = leased({ wantTokens: 10 }, SMALL);
    const busy = fill(lease, 1, SMALL);
    const blocking = enter(busy, arrival({ fullBehaviour: "block", deadline: T0 + 4_002 }), T0 + 2, SMALL);
    expect(blocking.outcome).toMatchObject({ kind: "queued", waiter: { expiresAt: T0 + 4_002 } });
    const bounded = enter(busy, arrival({ fullBehaviour: "evict-lowest", deadline: T0 + 4_002 }), T0 + 2, SMALL);
    expect(bounded.outcome).toMatchObject({ kind: "queued", waiter: { expiresAt: T0 + 2 + SMALL.maxWaitMs } });
    const { lease: full } = fullQueue();
    const shed = enter(full, arrival({ priority: "critical", fullBehaviour: "block" }), T0 + 5, SMALL);
    expect(shed.outcome).toMatchObject({ kind: "shed", reason: "queue_full" });
  });
});

describe("edge lease: refusals that carry their numbers", () => {
  const ONE = { ...LIMITS, maxInFlight: 1 };

  it("refuses at once a request whose deadline already passed", () => {
    const { lease } = leased({ wantTokens: 2 });
    expect(enter(lease, arrival({ deadline: T0 + 1 }), T0 + 1).outcome).toMatchObject({
      kind: "shed",
      reason: "wait_exceeds_deadline",
    });
  });

  it("refuses with wait_exceeds_deadline when the expected wait for a slot exceeds the budget left", () => {
    const { lease } = leased({ wantTokens: 10 }, ONE);
    const busy = finish(fill(lease, 1, ONE), "completed", 400);
    // Budget: min(maxWaitMs, deadline - now - hold) = 600. The busy slot frees after half a
    // hold on average (200 ms), each next one a hold later: the first waits 200, the second
    // 600, the third 1000.
    const first = enter(busy, arrival({ deadline: T0 + 1_001 }), T0 + 1, ONE);
    expect(first.outcome).toMatchObject({ kind: "queued", waiter: { expiresAt: T0 + 601 } });
    const second = enter(first.lease, arrival({ deadline: T0 + 1_001 }), T0 + 1, ONE);
    expect(second.outcome).toMatchObject({ kind: "queued" });
    const third = enter(second.lease, arrival({ deadline: T0 + 1_001 }), T0 + 1, ONE);
    expect(third.outcome).toEqual({ kind: "shed", reason: "wait_exceeds_deadline", retryAfterMs: 1000 });
  });

  it("refuses with rate_limited when no token comes before the budget ends, Retry-After when one does", () => {
    const limits = { ...LIMITS, burst: 2, maxWaitMs: 50 };
    const { lease } = leased({ wantTokens: 2 }, limits);
    const spent = fill(lease, 2, limits);
    expect(heldTokens(spent)).toBe(0);
    // The bucket is empty too, so asking cannot help; a token comes at the lease's 10/s share.
    const result = enter(spent, arrival(), T0 + 1, limits);
    expect(result.outcome).toEqual({ kind: "shed", reason: "rate_limited", retryAfterMs: 100 });
    expect(expectedWaitMs(spent, "normal", 2)).toMatchObject({ tokenMs: 300 });
  });

  it("estimates the wait of a lease with no slot from the tenant's waiters at or above the priority", () => {
    const ONE_SLOT = { ...LIMITS, maxInFlight: 2 };
    let book: LeaseBook = emptyBook(ONE_SLOT, T0);
    book = renew(book, report(B, 0, { waiting: counts({ high: 2 }), holdMs: 100 }), T0, ONE_SLOT).book;
    const sent = startRenewal(newEdgeLease(A, T0), ONE_SLOT, 1_000, T0);
    const { answer } = renew(book, { ...sent.report, wantTokens: 1 }, T0, ONE_SLOT);
    const l = applyAnswer(sent.lease, answer);
    expect(heldSlots(l)).toBe(0);
    // Two high waiters elsewhere and itself, through 2 slots held 100 ms.
    expect(expectedWaitMs(l, "normal", 0).slotMs).toBe(150);
    expect(expectedWaitMs(l, "critical", 0).slotMs).toBe(50);
  });

  it("gives a drain time of a second when no estimate is finite", () => {
    expect(drainMs(newEdgeLease(A, T0))).toBe(1_000);
  });
});

describe("edge lease: asking the object", () => {
  it("queues a cold arrival for the first answer, giving it at least ASK_WAIT_MS whatever maxWaitMs says", () => {
    const limits = { ...LIMITS, maxWaitMs: 50, maxQueue: 0 };
    const cold = arrive(newEdgeLease(A, T0), limits, arrival({ deadline: T0 + 5_000 }), T0);
    expect(cold.outcome).toMatchObject({ kind: "queued", waiter: { expiresAt: T0 + ASK_WAIT_MS } });
    expect(renewalDue(cold.lease, T0)).toBe(true);
    const sent = startRenewal(cold.lease, limits, 1_000, T0);
    expect(sent.report).toMatchObject({
      seq: 0,
      waiting: { normal: 1 },
      waitMs: LEASE_TIMING.longPollMs,
      leaving: false,
    });
    expect(renewalDue(sent.lease, T0)).toBe(false);
  });

  it("admits the waiter that queued for the answer once the answer has come", () => {
    const cold = arrive(newEdgeLease(A, T0), LIMITS, arrival(), T0);
    const sent = startRenewal(cold.lease, LIMITS, 1_000, T0);
    const { answer } = renew(emptyBook(LIMITS, T0), sent.report, T0 + 5);
    const served = pump(applyAnswer(sent.lease, answer), T0 + 6);
    expect(served.granted).toHaveLength(1);
    expect(served.lease.validUntil).toBe(T0 + LEASE_TIMING.ttlMs);
  });

  it("asks for the tokens its queue and recent arrivals need, never more than the burst", () => {
    const limits = { ...LIMITS, burst: 3 };
    let l = newEdgeLease(A, T0);
    for (let i = 0; i < 5; i += 1) l = arrive(l, limits, arrival(), T0).lease;
    expect(startRenewal(l, limits, 1_000, T0).report.wantTokens).toBe(3);
  });

  it("asks for a long-poll wait in whole ms, however fractional its waiters' expiries", () => {
    const { lease } = leased({ wantTokens: 2 }, { ...LIMITS, maxInFlight: 1 });
    const ONE = { ...LIMITS, maxInFlight: 1 };
    const busy = finish(fill(lease, 1, ONE), "completed", 33.3);
    const queued = enter(busy, arrival({ deadline: T0 + 150 }), T0 + 1, ONE);
    if (queued.outcome.kind !== "queued") throw new Error("not queued");
    expect(Number.isInteger(queued.outcome.waiter.expiresAt)).toBe(false);
    const { waitMs } = startRenewal(queued.lease, ONE, 1_000, T0 + 2).report;
    expect(Number.isInteger(waitMs)).toBe(true);
    expect(waitMs).toBeLessThanOrEqual(LEASE_TIMING.longPollMs);
  });

  it("renews at the time the answer named, counted from when the report was sent", () => {
    const { lease } = leased({ wantTokens: 2 });
    const busy = fill(lease, 1);
    expect(renewalDue(busy, T0 + LEASE_TIMING.renewEveryMs - 1)).toBe(false);
    expect(renewalDue(busy, T0 + LEASE_TIMING.renewEveryMs)).toBe(true);
    expect(nextWakeAt(busy)).toBe(T0 + LEASE_TIMING.renewEveryMs);
  });

  it("sends one renewal at a time", () => {
    const cold = arrive(newEdgeLease(A, T0), LIMITS, arrival(), T0);
    const sent = startRenewal(cold.lease, LIMITS, 1_000, T0);
    expect(renewalDue(sent.lease, T0 + 5_000)).toBe(false);
  });
});

describe("edge lease: giving slots back", () => {
  /** A holds all 4 slots in use and one waiter; B then queues critical work, so A's target falls to 2. */
  function overTarget() {
    const { lease, book } = leased({ wantTokens: 10 });
    const busy = enter(fill(lease, 4), arrival(), T0 + 2);
    const b = renew(book, report(B, 0, { waiting: counts({ critical: 2 }), wantTokens: 2 }), T0 + 3);
    const sent = startRenewal(busy.lease, LIMITS, 1_000, T0 + 4);
    const { answer } = renew(b.book, sent.report, T0 + 4);
    expect(answer.targetSlots).toBe(2);
    return pump(applyAnswer(sent.lease, answer), T0 + 5).lease;
  }

  it("keeps slots in use above its target (never revoked), and returns them as they free, before local waiters", () => {
    const l = overTarget();
    expect(heldSlots(l)).toBe(4);
    const freed = pump(freeSlot(l, "normal"), T0 + 6);
    expect(freed.granted).toEqual([]);
    expect(heldSlots(freed.lease)).toBe(3);
    expect(freed.lease.queue).toHaveLength(1);
  });

  it("reports a returned slot at once, so the object can hand it on", () => {
    const freed = pump(freeSlot(overTarget(), "normal"), T0 + 6).lease;
    expect(renewalDue(freed, T0 + 6)).toBe(true);
    expect(startRenewal(freed, LIMITS, 1_000, T0 + 6).report.slotsReturned).toBe(1);
  });

  it("still reports a return when the slot it gave back was the last thing it held", () => {
    const ONE = { ...LIMITS, maxInFlight: 1 };
    const { lease, book } = leased({ wantTokens: 1 }, ONE);
    const used = fill(lease, 1, ONE);
    const b = renew(book, report(B, 0, { waiting: counts({ critical: 1 }) }), T0 + 2, ONE);
    const sent = startRenewal(used, ONE, 1_000, T0 + 3);
    const { answer } = renew(b.book, { ...sent.report, wantTokens: 0 }, T0 + 3, ONE);
    const gaveBack = pump(freeSlot(applyAnswer(sent.lease, answer), "normal"), T0 + 4).lease;
    expect(heldSlots(gaveBack)).toBe(0);
    expect(heldTokens(gaveBack)).toBe(0);
    expect(renewalDue(gaveBack, T0 + 4)).toBe(true);
  });
});

describe("edge lease: leaving, failing, refunding", () => {
  it("gives everything back and stops renewing once idle for idleReturnMs", () => {
    const { lease } = leased({ wantTokens: 5 });
    const used = pump(freeSlot(fill(lease, 1), "normal"), T0 + 2).lease;
    const idleAt = T0 + 1 + LEASE_TIMING.idleReturnMs;
    expect(nextWakeAt(used)).toBeLessThanOrEqual(idleAt);
    const sent = startRenewal(used, LIMITS, 1_000, idleAt);
    expect(renewalDue(used, idleAt)).toBe(true);
    expect(sent.report).toMatchObject({
      leaving: true,
      slotsReturned: 4,
      tokensSpent: 1,
      tokensReturned: 4,
      wantTokens: 0,
    });
    expect(heldSlots(sent.lease)).toBe(0);
    expect(heldTokens(sent.lease)).toBe(0);
    expect(isValid(sent.lease, idleAt)).toBe(false);
    expect(renewalDue({ ...sent.lease, renewing: false }, idleAt + 10_000)).toBe(false);
  });

  it("leaves when idle even holding nothing, so its next arrival starts a new lease", () => {
    const cold = arrive(newEdgeLease(A, T0), LIMITS, arrival({ deadline: T0 + 2 }), T0);
    const sent = startRenewal(cold.lease, LIMITS, 1_000, T0);
    const nothing = pump(
      applyAnswer(sent.lease, {
        ...renew(emptyBook(LIMITS, T0), sent.report, T0).answer,
        slotsGranted: 0,
        tokensGranted: 0,
      }),
      T0 + 10,
    ).lease;
    expect(heldSlots(nothing) + heldTokens(nothing)).toBe(0);
    expect(renewalDue(nothing, T0 + LEASE_TIMING.idleReturnMs)).toBe(true);
    expect(startRenewal(nothing, LIMITS, 1_000, T0 + LEASE_TIMING.idleReturnMs).lease.left).toBe(true);
  });

  it("keeps admitting on a valid lease after a failed renewal, and retries after RENEW_RETRY_MS", () => {
    const { lease } = leased({ wantTokens: 5 });
    const busy = fill(lease, 1);
    const sent = startRenewal(busy, LIMITS, 1_000, T0 + LEASE_TIMING.renewEveryMs);
    const failed = renewalFailed(sent.lease, T0 + 300);
    expect(failed.stranded).toEqual([]);
    expect(enter(failed.lease, arrival(), T0 + 301).outcome.kind).toBe("admit");
    expect(renewalDue(failed.lease, T0 + 300 + RENEW_RETRY_MS - 1)).toBe(false);
    expect(renewalDue(failed.lease, T0 + 300 + RENEW_RETRY_MS)).toBe(true);
  });

  it("hands waiters only the object could serve to the fail mode, and answers `unavailable` meanwhile", () => {
    const cold = arrive(newEdgeLease(A, T0), LIMITS, arrival(), T0);
    const sent = startRenewal(cold.lease, LIMITS, 1_000, T0);
    const failed = renewalFailed(sent.lease, T0 + 50);
    expect(failed.stranded).toHaveLength(1);
    expect(failed.lease.queue).toEqual([]);
    expect(arrive(failed.lease, LIMITS, arrival(), T0 + 60).outcome).toEqual({ kind: "unavailable" });
    expect(arrive(failed.lease, LIMITS, arrival(), T0 + 50 + RENEW_RETRY_MS).outcome.kind).toBe("queued");
  });

  it("refunds the token of a request never sent only while its spending is unreported", () => {
    const { lease } = leased({ wantTokens: 3 });
    const spent = fill(lease, 1);
    expect(heldTokens(refundToken(spent))).toBe(3);
    const reported = startRenewal(spent, LIMITS, 1_000, T0 + 2).lease;
    expect(heldTokens(refundToken(reported))).toBe(heldTokens(reported));
  });

  it("feeds the hold-time average only from requests that completed", () => {
    const l = newEdgeLease(A, T0);
    expect(finish(l, "completed", 100).holdMs).toBe(100);
    expect(finish(finish(l, "completed", 100), "completed", 200).holdMs).toBe(120);
    expect(finish(l, "deadline_exceeded", 5_000).holdMs).toBeNull();
    expect(finish(l, "not_forwarded", 0).tally.released.not_forwarded).toBe(1);
  });
});

describe("edge lease: an object that forgot the lease", () => {
  it("starts over from the object's new record instead of admitting on slots it gave to others", () => {
    const { lease } = leased({ wantTokens: 5 });
    const busy = fill(lease, 1);
    // The object reclaimed the holder and answers from a new record that has granted nothing yet.
    const sent = startRenewal(busy, LIMITS, 1_000, T0 + 20_000);
    const fresh = renew(emptyBook(LIMITS, T0 + 20_000), sent.report, T0 + 20_000);
    expect(fresh.answer.slotsGranted).toBe(0);
    const over = applyAnswer(sent.lease, fresh.answer);
    expect(heldSlots(over)).toBe(0);
    expect(heldTokens(over)).toBe(0);
    const waiting = enter(over, arrival({ deadline: T0 + 30_000 }), T0 + 20_001);
    expect(waiting.outcome.kind).toBe("queued");
    // Its next report tells the object nothing it does not know, and the new record grants afresh.
    const next = startRenewal(freeSlot(waiting.lease, "normal"), LIMITS, 1_000, T0 + 20_030);
    const granted = renew(fresh.book, next.report, T0 + 20_030);
    expect(granted.answer.slotsGranted).toBe(4);
    const resumed = pump(applyAnswer(next.lease, granted.answer), T0 + 20_031);
    expect(heldSlots(resumed.lease)).toBe(4);
    expect(resumed.granted).toHaveLength(1);
  });
});
