import { describe, expect, it } from "vitest";
import {
  DEPARTED_KEEP_MS,
  type LeaseBook,
  MAX_DEPARTED,
  applyLimits,
  applyReport,
  earliestReclaim,
  emptyBook,
  grant,
  quotaOf,
  reclaimExpired,
  slotsHeld,
  slotsOut,
  tokensHeld,
  tokensOut,
} from "../../src/lease/lease-book";
import { LEASE_TIMING, MAX_HOLDERS } from "../../src/lease/lease-protocol";
import { emptyTally } from "../../src/lease/tally";
import { A, B, LIMITS, T0, counts, holder, renew, report } from "./lease-fixtures";

const find = (book: LeaseBook, id: string) => {
  const found = book.holders.find((h) => h.id === id);
  if (!found) throw new Error(`no holder ${id}`);
  return found;
};

describe("lease book: grants", () => {
  it("grants a lone holder the whole in-flight limit and the tokens it wants, taken from the bucket", () => {
    const { book, answer, granted } = renew(
      emptyBook(LIMITS, T0),
      report(A, 0, { waiting: counts({ normal: 1 }), wantTokens: 3 }),
      T0,
    );
    expect(granted).toBe(true);
    expect(answer).toMatchObject({
      kind: "lease",
      slotsGranted: 4,
      tokensGranted: 3,
      targetSlots: 4,
      tokenRate: 10,
      renewInMs: LEASE_TIMING.renewEveryMs,
      freeSlots: 0,
      freeTokens: 17,
    });
    expect(book.bucket.tokens).toBe(17);
    expect(slotsOut(book)).toBe(4);
    expect(tokensOut(book)).toBe(3);
  });

  it("grants cumulatively: a renewal that wants nothing more keeps the same totals", () => {
    const first = renew(emptyBook(LIMITS, T0), report(A, 0, { wantTokens: 3 }), T0);
    const second = renew(first.book, report(A, 1, { wantTokens: 3 }), T0 + 100);
    expect(second.answer).toMatchObject({ slotsGranted: 4, tokensGranted: 3 });
    expect(second.granted).toBe(false);
  });

  it("never grants more tokens than the bucket holds", () => {
    const limits = { ...LIMITS, burst: 2 };
    const { answer } = renew(emptyBook(limits, T0), report(A, 0, { wantTokens: 2 }), T0, limits);
    expect(answer.tokensGranted).toBe(2);
    const b = renew(
      renew(emptyBook(limits, T0), report(A, 0, { wantTokens: 2 }), T0, limits).book,
      report(B, 0, { wantTokens: 2, waiting: counts({ normal: 2 }) }),
      T0,
      limits,
    );
    expect(b.answer.tokensGranted).toBe(0);
    expect(b.answer.freeTokens).toBe(0);
  });

  it("fills critical demand first: a holder queuing low work is told to give slots up", () => {
    const low = renew(emptyBook(LIMITS, T0), report(B, 0, { waiting: counts({ low: 4 }), wantTokens: 4 }), T0);
    expect(low.answer).toMatchObject({ slotsGranted: 4, targetSlots: 4 });
    const critical = renew(low.book, report(A, 0, { waiting: counts({ critical: 2 }), wantTokens: 2 }), T0 + 1);
    // Its target is its whole critical demand; nothing is free yet, in-use slots are never revoked.
    // It renews sooner, to collect the slots the other holder gives back.
    expect(critical.answer).toMatchObject({
      targetSlots: 2,
      slotsGranted: 0,
      renewInMs: LEASE_TIMING.contendedRenewMs,
    });
    const told = renew(critical.book, report(B, 1, { inUse: counts({ low: 4 }), wantTokens: 4 }), T0 + 2);
    expect(told.answer).toMatchObject({ targetSlots: 2, renewInMs: LEASE_TIMING.contendedRenewMs });
    const returned = renew(
      told.book,
      report(B, 2, { slotsReturned: 2, inUse: counts({ low: 2 }), tokensSpent: 4 }),
      T0 + 50,
    );
    expect(slotsHeld(find(returned.book, B))).toBe(2);
    const handedOn = renew(returned.book, report(A, 1, { waiting: counts({ critical: 2 }), wantTokens: 2 }), T0 + 60);
    expect(handedOn.answer).toMatchObject({ slotsGranted: 2, targetSlots: 2 });
  });

  it("calls an answer holdable (long poll) only when it grants nothing and takes nothing back", () => {
    const low = renew(emptyBook(LIMITS, T0), report(B, 0, { waiting: counts({ low: 4 }), wantTokens: 4 }), T0);
    expect(low.granted).toBe(true);
    const waiting = renew(low.book, report(A, 0, { waiting: counts({ low: 1 }) }), T0 + 1);
    expect(waiting).toMatchObject({ granted: false, holdable: true });
    // A critical waiter elsewhere lowers B's target below what it holds: B must hear it at once.
    const critical = renew(waiting.book, report(A, 1, { waiting: counts({ critical: 2 }) }), T0 + 2);
    const told = renew(critical.book, report(B, 1, { inUse: counts({ low: 4 }), waiting: counts({ low: 2 }) }), T0 + 3);
    expect(told.answer.targetSlots).toBe(2);
    expect(told).toMatchObject({ granted: false, holdable: false });
  });

  it("renews a holder sooner only while another holder's demand is unmet", () => {
    const alone = renew(emptyBook(LIMITS, T0), report(A, 0, { waiting: counts({ normal: 9 }), wantTokens: 9 }), T0);
    expect(alone.answer.renewInMs).toBe(LEASE_TIMING.renewEveryMs);
    const other = renew(alone.book, report(B, 0, { waiting: counts({ normal: 1 }), wantTokens: 1 }), T0 + 1);
    const again = renew(other.book, report(A, 1, { inUse: counts({ normal: 4 }), tokensSpent: 4 }), T0 + 2);
    expect(again.answer.renewInMs).toBe(LEASE_TIMING.contendedRenewMs);
  });

  it("leaves a holder whose lease ran out without renewal out of the split", () => {
    const b = renew(emptyBook(LIMITS, T0), report(B, 0, { waiting: counts({ low: 4 }) }), T0);
    const later = T0 + LEASE_TIMING.ttlMs;
    const a = renew(b.book, report(A, 0, { waiting: counts({ normal: 2 }) }), later);
    expect(a.answer.targetSlots).toBe(4);
    // Its slots are still out until it is reclaimed: nothing is granted beyond the limit.
    expect(a.answer.slotsGranted).toBe(0);
    expect(slotsOut(a.book)).toBe(4);
  });

  it("answers a holder it does not know with nothing granted", () => {
    const result = grant(emptyBook(LIMITS, T0), LIMITS, A, T0);
    expect(result.granted).toBe(false);
    expect(result.answer).toMatchObject({ slotsGranted: 0, tokensGranted: 0, targetSlots: 0 });
  });

  it("tells every holder how many wait at or above each priority, and the average hold time", () => {
    const a = renew(emptyBook(LIMITS, T0), report(A, 0, { waiting: counts({ low: 2, high: 1 }), holdMs: 40 }), T0);
    const b = renew(a.book, report(B, 0, { waiting: counts({ critical: 1, normal: 3 }), holdMs: 60 }), T0);
    expect(b.answer.waitingAtOrAbove).toEqual({ critical: 1, high: 2, normal: 5, low: 7 });
    expect(b.answer.holdMs).toBe(50);
  });
});

describe("lease book: the token bucket", () => {
  it("keeps the bucket plus the tokens out at holders within the burst, however long they sit", () => {
    const all = renew(emptyBook(LIMITS, T0), report(A, 0, { wantTokens: 20 }), T0);
    expect(all.answer.tokensGranted).toBe(20);
    const later = renew(all.book, report(A, 1, { wantTokens: 20 }), T0 + 60_000);
    expect(later.book.bucket.tokens).toBe(0);
    expect(quotaOf(later.book, LIMITS).tokens).toBe(20);
  });

  it("refills the room that spending made since the last report, at the rate, never past the burst", () => {
    const all = renew(emptyBook(LIMITS, T0), report(A, 0, { wantTokens: 20 }), T0);
    expect(all.book.bucket.tokens).toBe(0);
    // 5 spent some time in the last 200 ms: their room refills over that interval at 10/s (2 tokens).
    const spent = renew(all.book, report(A, 1, { tokensSpent: 5, wantTokens: 0 }), T0 + 200);
    expect(spent.book.bucket.tokens).toBeCloseTo(2);
    const later = renew(spent.book, report(A, 2, { tokensSpent: 5 }), T0 + 450);
    expect(later.book.bucket.tokens).toBeCloseTo(4.5);
    const full = renew(later.book, report(A, 3, { tokensSpent: 5 }), T0 + 5_000);
    expect(full.book.bucket.tokens).toBe(5);
    expect(full.book.bucket.tokens + tokensOut(full.book)).toBe(LIMITS.burst);
  });

  it("takes unspent tokens back, never past what the bucket may hold beside those still out", () => {
    const all = renew(emptyBook(LIMITS, T0), report(A, 0, { wantTokens: 20 }), T0);
    const back = applyReport(all.book, LIMITS, report(A, 1, { tokensSpent: 2, tokensReturned: 8 }), T0);
    expect(back.book.bucket.tokens).toBe(8);
    expect(tokensOut(back.book)).toBe(10);
  });

  it("clamps the bucket to new limits, less what is out", () => {
    const some = renew(emptyBook(LIMITS, T0), report(A, 0, { wantTokens: 6 }), T0);
    const smaller = applyLimits(some.book, { ...LIMITS, burst: 10 });
    expect(smaller.bucket.tokens).toBe(4);
  });
});

describe("lease book: cumulative reports", () => {
  const started = () =>
    renew(emptyBook(LIMITS, T0), report(A, 0, { waiting: counts({ normal: 2 }), wantTokens: 5 }), T0);

  it("applies a repeated report once: the copy is stale and changes nothing", () => {
    const first = started();
    const r = report(A, 1, { slotsReturned: 1, tokensSpent: 2, tally: { ...emptyTally(), arrived: 2 } });
    const once = applyReport(first.book, LIMITS, r, T0 + 10);
    const twice = applyReport(once.book, LIMITS, r, T0 + 20);
    expect(once.kind).toBe("applied");
    expect(twice).toEqual({ kind: "stale", book: once.book });
  });

  it("answers but does not apply a report overtaken by a newer one", () => {
    const first = started();
    const newer = applyReport(first.book, LIMITS, report(A, 2, { slotsReturned: 2, tokensSpent: 3 }), T0 + 10);
    const older = applyReport(newer.book, LIMITS, report(A, 1, { slotsReturned: 1, tokensSpent: 1 }), T0 + 20);
    expect(older).toEqual({ kind: "stale", book: newer.book });
    expect(find(older.book, A)).toMatchObject({ slotsReturned: 2, tokensSpent: 3 });
  });

  it("counts the decisions a report adds once, and nothing for counts that went backwards", () => {
    const first = started();
    const three = applyReport(first.book, LIMITS, report(A, 1, { tally: { ...emptyTally(), arrived: 3 } }), T0);
    const five = applyReport(three.book, LIMITS, report(A, 2, { tally: { ...emptyTally(), arrived: 5 } }), T0);
    const back = applyReport(five.book, LIMITS, report(A, 3, { tally: { ...emptyTally(), arrived: 1 } }), T0);
    expect(three.kind === "applied" && three.delta.arrived).toBe(3);
    expect(five.kind === "applied" && five.delta.arrived).toBe(2);
    expect(back.kind === "applied" && back.delta.arrived).toBe(0);
  });

  it("clamps a hostile report: slots returned beyond those granted free no more than were granted", () => {
    const first = started();
    const hostile = renew(first.book, report(A, 1, { slotsReturned: 99 }), T0 + 10);
    expect(find(hostile.book, A).slotsReturned).toBe(4);
    expect(slotsOut(hostile.book)).toBe(4);
    expect(slotsOut(hostile.book)).toBeLessThanOrEqual(LIMITS.maxInFlight);
  });

  it("clamps a hostile report: tokens never go back to unspent, nor return more than were granted", () => {
    const first = started();
    const spent = applyReport(first.book, LIMITS, report(A, 1, { tokensSpent: 4 }), T0 + 10);
    const backwards = applyReport(spent.book, LIMITS, report(A, 2, { tokensSpent: 1, tokensReturned: 1_000 }), T0 + 20);
    expect(find(backwards.book, A)).toMatchObject({ tokensSpent: 4, tokensReturned: 1 });
    expect(backwards.book.bucket.tokens + tokensOut(backwards.book)).toBeLessThanOrEqual(LIMITS.burst);
    const overspent = applyReport(first.book, LIMITS, report(A, 1, { tokensSpent: 1_000 }), T0 + 10);
    expect(find(overspent.book, A)).toMatchObject({ tokensSpent: 5 });
    expect(tokensHeld(find(overspent.book, A))).toBe(0);
  });

  it("forgets a leaving holder that settled everything, and takes its unspent tokens back", () => {
    const first = started();
    const left = applyReport(
      first.book,
      LIMITS,
      report(A, 1, { leaving: true, slotsReturned: 4, tokensSpent: 2, tokensReturned: 3 }),
      T0 + 10,
    );
    expect(left.book.holders).toEqual([]);
    // 15 in the bucket, 3 back, and the 2 spent tokens' room refilling for 10 ms at 10/s.
    expect(left.book.bucket.tokens).toBeCloseTo(18.1);
  });

  it("takes back, from a leaving holder, what it was granted in an answer it never received", () => {
    const lost = started(); // The answer (4 slots, 5 tokens) was lost: the isolate saw nothing granted.
    const left = renew(lost.book, report(A, 1, { leaving: true }), T0 + 1_000);
    expect(left.granted).toBe(false);
    expect(slotsOut(left.book)).toBe(0);
    expect(tokensOut(left.book)).toBe(0);
    const other = renew(left.book, report(B, 0, { waiting: counts({ normal: 2 }), wantTokens: 2 }), T0 + 1_001);
    expect(other.answer.slotsGranted).toBe(4);
  });

  it("grants nothing on a late report from a holder that already left", () => {
    const first = started();
    const left = applyReport(
      first.book,
      LIMITS,
      report(A, 2, { leaving: true, slotsReturned: 4, tokensReturned: 5 }),
      T0 + 10,
    );
    const late = renew(left.book, report(A, 1, { waiting: counts({ normal: 2 }), wantTokens: 5 }), T0 + 20);
    expect(late.granted).toBe(false);
    expect(slotsOut(late.book)).toBe(0);
    expect(tokensOut(late.book)).toBe(0);
    const other = renew(late.book, report(B, 0, { waiting: counts({ normal: 1 }) }), T0 + 30);
    expect(other.answer).toMatchObject({ slotsGranted: 4, targetSlots: 4 });
  });

  it("applies a leaving report retried after its answer was lost once: the holder is gone, the copy is stale", () => {
    const first = started();
    const leaving = report(A, 1, {
      leaving: true,
      slotsReturned: 4,
      tokensReturned: 5,
      tally: { ...emptyTally(), arrived: 7 },
    });
    const once = applyReport(first.book, LIMITS, leaving, T0 + 10);
    expect(once.kind === "applied" && once.delta.arrived).toBe(7);
    expect(once.book.holders).toEqual([]);
    const again = applyReport(once.book, LIMITS, leaving, T0 + 20);
    expect(again.kind).toBe("stale");
  });

  it("counts a reclaimed holder's late report only for what it decided since its last report, and grants it nothing", () => {
    const first = started();
    const seen = applyReport(first.book, LIMITS, report(A, 1, { tally: { ...emptyTally(), arrived: 5 } }), T0 + 10);
    const reclaimAt = find(seen.book, A).reclaimAt;
    const reclaimed = reclaimExpired(seen.book, LIMITS, reclaimAt);
    expect(reclaimed.reclaimed.map((h) => h.id)).toEqual([A]);
    const late = applyReport(
      reclaimed.book,
      LIMITS,
      report(A, 2, { waiting: counts({ normal: 1 }), tally: { ...emptyTally(), arrived: 8 } }),
      reclaimAt + 10,
    );
    expect(late.kind === "applied" && late.delta.arrived).toBe(3);
    expect(slotsOut(late.book)).toBe(0);
    expect(grant(late.book, LIMITS, A, reclaimAt + 10).granted).toBe(false);
    // Back among the holders, it is no longer remembered as departed.
    expect(late.book.departed?.some((d) => d.id === A)).toBe(false);
  });

  it(`remembers at most ${MAX_DEPARTED} departed holders, and none past ${DEPARTED_KEEP_MS} ms`, () => {
    let book = emptyBook({ ...LIMITS, maxInFlight: 1 }, T0);
    for (let i = 0; i < MAX_DEPARTED + 5; i++) {
      book = applyReport(book, LIMITS, report(holder(i), 0, { leaving: true }), T0 + i).book;
    }
    expect(book.departed).toHaveLength(MAX_DEPARTED);
    expect(book.departed?.[0]?.id).toBe(holder(5));
    const later = applyReport(
      book,
      LIMITS,
      report(holder(100_000), 0, { leaving: true }),
      T0 + DEPARTED_KEEP_MS + MAX_DEPARTED + 5,
    );
    expect(later.book.departed?.map((d) => d.id)).toEqual([holder(100_000)]);
  });

  it("learns a holder's offered load, by priority, from its tally's growth between reports", () => {
    const first = started();
    const tally = { ...emptyTally(), admitted: counts({ normal: 6 }) };
    tally.shed = { ...tally.shed, queue_full: counts({ normal: 4, low: 5 }) };
    const next = applyReport(first.book, LIMITS, report(A, 1, { tally }), T0 + 250);
    // 10 normal and 5 low decisions in 250 ms.
    expect(find(next.book, A).offered).toMatchObject({ normal: 40, low: 20, high: 0 });
  });

  it("grants a holder first heard of in the middle of its reports from its next report on", () => {
    const first = renew(emptyBook(LIMITS, T0), report(A, 3, { waiting: counts({ normal: 1 }), wantTokens: 1 }), T0);
    expect(first.granted).toBe(false);
    const next = renew(first.book, report(A, 4, { waiting: counts({ normal: 1 }), wantTokens: 1 }), T0 + 20);
    expect(next.answer).toMatchObject({ slotsGranted: 4, tokensGranted: 1 });
  });
});

describe("lease book: reclaim and bounds", () => {
  it("reclaims a vanished holder at validUntil + coverMs + grace, not a moment before", () => {
    const { book } = renew(emptyBook(LIMITS, T0), report(A, 0, { wantTokens: 5, coverMs: 3_000 }), T0);
    const reclaimAt = T0 + LEASE_TIMING.ttlMs + 3_000 + LEASE_TIMING.graceMs;
    expect(earliestReclaim(book)).toBe(reclaimAt);
    expect(reclaimExpired(book, LIMITS, reclaimAt - 1).reclaimed).toEqual([]);
    const reclaimed = reclaimExpired(book, LIMITS, reclaimAt);
    expect(reclaimed.reclaimed.map((h) => h.id)).toEqual([A]);
    expect(slotsOut(reclaimed.book)).toBe(0);
    // Its tokens count as spent: none come back; the room they leave refills at the rate from now.
    expect(reclaimed.book.bucket.tokens).toBe(15);
    const after = renew(reclaimed.book, report(B, 0), reclaimAt + 500);
    expect(after.book.bucket.tokens).toBe(LIMITS.burst);
    expect(earliestReclaim(reclaimed.book)).toBeNull();
  });

  it("moves the reclaim time on with every renewal", () => {
    const first = renew(emptyBook(LIMITS, T0), report(A, 0), T0);
    const second = renew(first.book, report(A, 1), T0 + 4_000);
    expect(earliestReclaim(second.book)).toBe(T0 + 4_000 + LEASE_TIMING.ttlMs + 1_000 + LEASE_TIMING.graceMs);
  });

  it(`holds at most MAX_HOLDERS (${MAX_HOLDERS}); a new holder beyond is answered with nothing`, () => {
    let book = emptyBook(LIMITS, T0);
    for (let i = 0; i < MAX_HOLDERS; i += 1) book = applyReport(book, LIMITS, report(holder(i + 1), 0), T0).book;
    const extra = holder(MAX_HOLDERS + 1);
    const full = applyReport(book, LIMITS, report(extra, 0, { waiting: counts({ critical: 1 }) }), T0);
    expect(full.kind).toBe("full");
    expect(full.book.holders).toHaveLength(MAX_HOLDERS);
    const answer = grant(full.book, LIMITS, extra, T0);
    expect(answer).toMatchObject({ granted: false, answer: { slotsGranted: 0, targetSlots: 0 } });
    expect(applyReport(book, LIMITS, report(holder(1), 1), T0).kind).toBe("applied");
  });

  it("reports the tenant as a whole: tokens unspent, in flight and queued as the holders last said", () => {
    const a = renew(emptyBook(LIMITS, T0), report(A, 0, { wantTokens: 3, waiting: counts({ low: 1 }) }), T0);
    const b = renew(
      a.book,
      report(A, 1, { inUse: counts({ normal: 2 }), waiting: counts({ low: 1 }), tokensSpent: 2 }),
      T0,
    );
    expect(quotaOf(b.book, LIMITS)).toEqual({
      rate: 10,
      burst: 20,
      tokens: 18,
      inFlight: 2,
      maxInFlight: 4,
      queued: 1,
      maxQueue: 4,
      msUntilFull: 200,
    });
  });
});
