import { describe, expect, it } from "vitest";
import {
  type AdmissionState,
  applyLimits,
  arrive,
  initialState,
  nextWakeAt,
  pump,
  release,
} from "../../src/admission/admission";
import { MAX_LINGER_MS, lingerLease, newLease } from "../../src/admission/leases";
import type { AdmissionLimits, Arrival, FullBehaviour } from "../../src/admission/limits";
import type { Priority } from "../../src/admission/priority";

const T0 = 1_700_000_000_000;
const LIMITS: AdmissionLimits = { rate: 10, burst: 2, maxInFlight: 2, maxQueue: 3, maxWaitMs: 1000 };

let n = 0;
function arrival(
  priority: Priority = "normal",
  deadlineIn = 5000,
  fullBehaviour: FullBehaviour = "evict-lowest",
): Arrival {
  n += 1;
  return { id: `r${n}`, priority, deadline: T0 + deadlineIn, fullBehaviour };
}

/** Runs arrivals at T0 through pump + arrive, as the Durable Object does. */
function arriveAll(state: AdmissionState, limits: AdmissionLimits, arrivals: Arrival[], now = T0) {
  return arrivals
    .map((a) => {
      state = pump(state, limits, now).state;
      const result = arrive(state, limits, a, now);
      state = result.state;
      return result;
    })
    .map((result, _i, all) => ({ ...result, final: all[all.length - 1]!.state }));
}

describe("admission", () => {
  it("admits while a token and a slot are free", () => {
    const state = initialState(LIMITS, T0);
    const result = arrive(state, LIMITS, arrival(), T0);
    expect(result.outcome.kind).toBe("admit");
    expect(result.state.inFlight).toBe(1);
    expect(result.state.bucket.tokens).toBe(1);
  });

  it("queues when slots are busy and the expected wait fits the budget", () => {
    const results = arriveAll(initialState(LIMITS, T0), LIMITS, [arrival(), arrival(), arrival()]);
    const third = results[2]!.outcome;
    expect(third.kind).toBe("queued");
    if (third.kind === "queued") {
      expect(third.position).toBe(1);
      expect(third.waiter.expiresAt).toBe(T0 + 1000);
    }
  });

  it("sheds with rate_limited (and the time to a token) when no token can come within the budget", () => {
    const limits = { ...LIMITS, rate: 0.5, maxInFlight: 10 };
    const results = arriveAll(initialState(limits, T0), limits, [arrival(), arrival(), arrival()]);
    const third = results[2]!.outcome;
    expect(third).toMatchObject({ kind: "shed", reason: "rate_limited", retryAfterMs: 2000 });
  });

  it("sheds with wait_exceeds_deadline when the slot wait exceeds what is left of the deadline", () => {
    let state: AdmissionState = { ...initialState(LIMITS, T0), holdMsEwma: 400 };
    const results = arriveAll(state, LIMITS, [arrival(), arrival(), arrival("normal", 100)]);
    expect(results[2]!.outcome).toMatchObject({ kind: "shed", reason: "wait_exceeds_deadline" });
    state = results[2]!.final;
    expect(state.queue).toHaveLength(0);
  });

  it("leaves the origin its expected service time: a wait that would eat it is refused now", () => {
    const busy: AdmissionState = { ...initialState(LIMITS, T0), holdMsEwma: 300 };
    // Slot wait ~150 ms (300 ms hold / 2 slots) fits a 400 ms budget, but not with 300 ms of service after it.
    const results = arriveAll(busy, LIMITS, [arrival(), arrival(), arrival("normal", 400)]);
    expect(results[2]!.outcome).toMatchObject({ kind: "shed", reason: "wait_exceeds_deadline", waitBudgetMs: 100 });
    const patient = arriveAll(busy, LIMITS, [arrival(), arrival(), arrival("normal", 600)]);
    expect(patient[2]!.outcome.kind).toBe("queued");
  });

  it("sheds at once, not after waiting, when the deadline has already passed", () => {
    const results = arriveAll(initialState(LIMITS, T0), LIMITS, [arrival(), arrival(), arrival("normal", 0)]);
    expect(results[2]!.outcome).toMatchObject({ kind: "shed", reason: "wait_exceeds_deadline", waitBudgetMs: 0 });
  });

  it("sheds queue_full when the queue is at its bound and the arrival is not higher than anyone", () => {
    const results = arriveAll(
      initialState(LIMITS, T0),
      LIMITS,
      [1, 2, 3, 4, 5, 6].map(() => arrival()),
    );
    expect(results.map((r) => r.outcome.kind)).toEqual(["admit", "admit", "queued", "queued", "queued", "shed"]);
    expect(results[5]!.outcome).toMatchObject({ reason: "queue_full" });
    expect(results[5]!.final.queue).toHaveLength(3);
  });

  it("evicts the lowest-priority newest waiter for a higher-priority arrival in a full queue", () => {
    const arrivals = [arrival(), arrival(), arrival("low"), arrival("low"), arrival("normal"), arrival("high")];
    const results = arriveAll(initialState(LIMITS, T0), LIMITS, arrivals);
    const last = results[5]!;
    expect(last.outcome.kind).toBe("queued");
    expect(last.evicted.map((w) => w.id)).toEqual([arrivals[3]!.id]);
    expect(last.final.queue.map((w) => w.priority)).toEqual(["high", "normal", "low"]);
  });

  it("with shed-newest sheds the arrival even if it is higher than what is queued", () => {
    const arrivals = [
      arrival(),
      arrival(),
      arrival("low"),
      arrival("low"),
      arrival("low"),
      arrival("high", 5000, "shed-newest"),
    ];
    const last = arriveAll(initialState(LIMITS, T0), LIMITS, arrivals)[5]!;
    expect(last.outcome).toMatchObject({ kind: "shed", reason: "queue_full" });
    expect(last.evicted).toHaveLength(0);
  });

  it("with shed-oldest displaces the oldest waiter of the lowest class", () => {
    const arrivals = [
      arrival(),
      arrival(),
      arrival("low"),
      arrival("low"),
      arrival("low"),
      arrival("low", 5000, "shed-oldest"),
    ];
    const last = arriveAll(initialState(LIMITS, T0), LIMITS, arrivals)[5]!;
    expect(last.outcome.kind).toBe("queued");
    expect(last.evicted.map((w) => w.id)).toEqual([arrivals[2]!.id]);
  });

  it("with block waits for the whole deadline budget instead of maxWaitMs", () => {
    const results = arriveAll(initialState(LIMITS, T0), LIMITS, [
      arrival(),
      arrival(),
      arrival("normal", 4000, "block"),
    ]);
    const third = results[2]!.outcome;
    expect(third.kind === "queued" && third.waiter.expiresAt).toBe(T0 + 4000);
  });

  it("never queues when maxQueue is 0: queue_full when slots are busy, rate_limited when tokens ran out", () => {
    const slotsBusy = { ...LIMITS, burst: 10, maxQueue: 0 };
    const bySlots = arriveAll(initialState(slotsBusy, T0), slotsBusy, [arrival(), arrival(), arrival()]);
    expect(bySlots[2]!.outcome).toMatchObject({ kind: "shed", reason: "queue_full" });
    const noTokens = { ...LIMITS, maxInFlight: 10, maxQueue: 0 };
    const byTokens = arriveAll(initialState(noTokens, T0), noTokens, [arrival(), arrival(), arrival()]);
    expect(byTokens[2]!.outcome).toMatchObject({ kind: "shed", reason: "rate_limited", retryAfterMs: 100 });
  });

  it("hands a freed slot to the head of the queue at once", () => {
    const arrivals = [arrival(), arrival(), arrival("low"), arrival("high")];
    let state = arriveAll(initialState(LIMITS, T0), LIMITS, arrivals)[3]!.final;
    state = release(state, 100);
    const pumped = pump(state, LIMITS, T0 + 100);
    expect(pumped.granted.map((w) => w.id)).toEqual([arrivals[3]!.id]);
    expect(pumped.state.inFlight).toBe(2);
    expect(pumped.state.queue).toHaveLength(1);
  });

  it("admits waiters held back by tokens when the bucket refills", () => {
    const limits = { ...LIMITS, burst: 1, maxInFlight: 5 };
    const arrivals = [arrival(), arrival()];
    const state = arriveAll(initialState(limits, T0), limits, arrivals)[1]!.final;
    expect(nextWakeAt(state, limits)).toBe(T0 + 100);
    expect(pump(state, limits, T0 + 99).granted).toHaveLength(0);
    expect(pump(state, limits, T0 + 100).granted.map((w) => w.id)).toEqual([arrivals[1]!.id]);
  });

  it("times out waiters whose wait ended, and never admits them late", () => {
    const state = arriveAll(initialState(LIMITS, T0), LIMITS, [arrival(), arrival(), arrival()])[2]!.final;
    const pumped = pump(release(state, 10), LIMITS, T0 + 1000);
    expect(pumped.timedOut).toHaveLength(1);
    expect(pumped.granted).toHaveLength(0);
  });

  it("learns the hold time from releases as a moving average", () => {
    let state = { ...initialState(LIMITS, T0), inFlight: 2 };
    state = release(state, 100);
    expect(state.holdMsEwma).toBe(100);
    state = release(state, 200);
    expect(state.holdMsEwma).toBe(120);
    expect(release(state, null).holdMsEwma).toBe(120);
    expect(release({ ...state, inFlight: 0 }, 10).inFlight).toBe(0);
  });

  it("wakes for the earliest expiry when slots, not tokens, hold the queue", () => {
    const state = arriveAll(initialState(LIMITS, T0), LIMITS, [arrival(), arrival(), arrival()])[2]!.final;
    expect(nextWakeAt(state, LIMITS)).toBe(T0 + 1000);
    expect(nextWakeAt(initialState(LIMITS, T0), LIMITS)).toBeNull();
  });

  it("on a change of limits clamps tokens and trims the queue to the new bound", () => {
    const state = arriveAll(
      initialState(LIMITS, T0),
      LIMITS,
      [1, 2, 3, 4, 5].map(() => arrival()),
    )[4]!.final;
    const applied = applyLimits(state, { ...LIMITS, burst: 1, maxQueue: 1 });
    expect(applied.state.queue).toHaveLength(1);
    expect(applied.evicted).toHaveLength(2);
    expect(applied.state.bucket.tokens).toBeLessThanOrEqual(1);
  });
});

describe("lingering leases", () => {
  const lease = newLease("l1", "normal", T0 + 1000, T0);

  it("hold an abandoned slot at least a typical hold time", () => {
    expect(lingerLease(lease, 250, T0 + 100)).toMatchObject({ expiresAt: T0 + 350, lingering: true });
  });

  it("hold it as long again as the request already ran, when that is longer", () => {
    expect(lingerLease(lease, 50, T0 + 800).expiresAt).toBe(T0 + 1600);
  });

  it("expire on a whole millisecond, since alarms fire on whole milliseconds", () => {
    expect(lingerLease(lease, 250.4, T0 + 100).expiresAt).toBe(T0 + 351);
  });

  it("never hold it past the linger cap", () => {
    expect(lingerLease(lease, 10 ** 9, T0).expiresAt).toBe(T0 + MAX_LINGER_MS);
  });
});
