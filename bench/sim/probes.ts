/**
 * Minimal, hand-driven reproductions of what the large simulation exposed, on the same pure
 * modules (two isolates, maxInFlight 2, no randomness). Each probe prints its trace and says
 * whether the defect it looks for is present in the code it was built from.
 */
import type { AdmissionLimits, Arrival } from "../../src/admission/limits";
import type { Priority } from "../../src/admission/priority";
import {
  type EdgeLease,
  applyAnswer,
  arrive,
  finish,
  freeSlot,
  heldSlots,
  heldTokens,
  inUseTotal,
  newEdgeLease,
  nextWakeAt,
  pump,
  renewalDue,
  startRenewal,
} from "../../src/lease/edge-lease";
import { type LeaseBook, applyReport, emptyBook, grant, reclaimExpired, slotsHeld } from "../../src/lease/lease-book";
import type { LeaseGrant } from "../../src/lease/lease-protocol";
import { countTally } from "../../src/lease/tally";
import { emptyCounters } from "../../src/admission/counters";
import { Isolate, type Stream, World } from "./world";
import { rngFor } from "./rng";

export interface Probe {
  readonly name: string;
  readonly defect: string;
  /** true: the defect showed; false: the code behaved as the design says. */
  readonly reproduced: boolean;
  readonly trace: readonly string[];
  readonly figures?: Record<string, number>;
}

const A = "aaaaaaaa-0000-4000-8000-00000000000a";
const B = "bbbbbbbb-0000-4000-8000-00000000000b";
const COVER_MS = 1_000;

function arrival(id: string, priority: Priority, now: number): Arrival {
  return { id, priority, deadline: now + 5_000, fullBehaviour: "evict-lowest" };
}

/** The object side of one call, as src/tenant-guard.ts does it (no long poll: answered at once). */
function call(
  book: LeaseBook,
  limits: AdmissionLimits,
  edge: EdgeLease,
  now: number,
  objectNow: number,
  log: string[],
  who: string,
) {
  const started = startRenewal(edge, limits, COVER_MS, now);
  const r = started.report;
  const applied = applyReport(reclaimExpired(book, limits, objectNow).book, limits, r, objectNow);
  const granted = grant(applied.book, limits, r.holder, objectNow);
  const answer = granted.answer as LeaseGrant;
  log.push(
    `${who} t=${now}: report seq ${r.seq} (returned ${r.slotsReturned}, spent ${r.tokensSpent}, in use ${r.inUse.normal + r.inUse.high}, waiting ${r.waiting.normal + r.waiting.high}) -> object ${applied.kind}: slotsGranted ${answer.slotsGranted}, target ${answer.targetSlots}, tokensGranted ${answer.tokensGranted}`,
  );
  return { book: granted.book, edge: applyAnswer(started.lease, answer), applied };
}

const held = (book: LeaseBook, id: string) => {
  const h = book.holders.find((x) => x.id === id);
  return h ? slotsHeld(h) : 0;
};

/**
 * A lease whose target dropped to 0 returns its last slot as its last request ends; holding no
 * token, it then has nothing it "holds", and if renewalDue looks only at what is held, the
 * return is never reported: the object counts the slot at it until it reclaims the holder.
 */
function returnedLastSlot(): Probe {
  const limits: AdmissionLimits = { rate: 1, burst: 1, maxInFlight: 2, maxQueue: 10, maxWaitMs: 1_000 };
  const log: string[] = [];
  let book = emptyBook(limits, 0);
  let a = newEdgeLease(A, 0);
  let b = newEdgeLease(B, 0);
  a = arrive(a, limits, arrival("a1", "normal", 0), 0).lease;
  ({ book, edge: a } = call(book, limits, a, 0, 5, log, "A"));
  a = pump(a, 10).lease;
  log.push(
    `A t=10: admits its waiter: in use ${inUseTotal(a)}, holds ${heldSlots(a)} slots and ${heldTokens(a)} tokens`,
  );
  b = arrive(b, limits, arrival("b1", "high", 20), 20).lease;
  b = arrive(b, limits, arrival("b2", "high", 21), 21).lease;
  ({ book, edge: b } = call(book, limits, b, 21, 25, log, "B"));
  ({ book, edge: a } = call(book, limits, a, 100, 105, log, "A"));
  a = pump(a, 110).lease;
  log.push(
    `A t=110: above its target, returns what is free: holds ${heldSlots(a)}, returned ${a.slotsReturned} (reported ${a.slotsReturnedSent})`,
  );
  ({ book, edge: a } = call(book, limits, a, 130, 135, log, "A"));
  a = pump(freeSlot(finish(a, "completed", 140), "normal"), 150).lease;
  log.push(
    `A t=150: its request ends: holds ${heldSlots(a)} slots, ${heldTokens(a)} tokens, returned ${a.slotsReturned}, reported ${a.slotsReturnedSent}; object counts A holding ${held(book, A)}`,
  );
  let due = false;
  let t = 150;
  for (; t <= 10_000; t += 10) {
    if (renewalDue(a, t)) {
      due = true;
      break;
    }
  }
  log.push(
    due
      ? `A t=${t}: renewalDue -> reports the return (nextWakeAt ${nextWakeAt(a)})`
      : `A t=150..10000: renewalDue false throughout (nextWakeAt ${nextWakeAt(a)}); B waits with ${b.queue.length} high waiters while the object counts 1 slot at A until it reclaims A`,
  );
  return {
    name: "returned-last-slot",
    defect:
      "a lease that returned its last slot while holding no token never reports the return (slot stranded until reclaim: ttl + coverMs + grace)",
    reproduced: !due,
    trace: log,
  };
}

/**
 * An isolate that fell silent while holding slots and tokens is reclaimed; when it speaks again
 * with the same holder id, the object starts it from zero, but the isolate keeps the larger of
 * the two cumulative counts, so it admits on slots the object has since given to another
 * isolate (overshoot), and the object counts its whole tally again.
 */
function reclaimedHolderReturns(): Probe {
  const limits: AdmissionLimits = { rate: 100, burst: 10, maxInFlight: 2, maxQueue: 10, maxWaitMs: 1_000 };
  const log: string[] = [];
  let book = emptyBook(limits, 0);
  let counters = emptyCounters();
  let a = newEdgeLease(A, 0);
  let b = newEdgeLease(B, 0);
  a = arrive(a, limits, arrival("a1", "normal", 0), 0).lease;
  let r = call(book, limits, a, 0, 5, log, "A");
  book = r.book;
  a = r.edge;
  if (r.applied.kind === "applied") counters = countTally(counters, r.applied.delta);
  a = pump(a, 10).lease;
  a = pump(freeSlot(finish(a, "completed", 20), "normal"), 30).lease;
  log.push(
    `A t=30: served one request; holds ${heldSlots(a)} slots and ${heldTokens(a)} tokens, then falls silent (no renewal: e.g. its heartbeat fired at a waiter's expiry and was not re-armed)`,
  );
  const reclaimAt = book.holders.find((h) => h.id === A)?.reclaimAt ?? 0;
  book = reclaimExpired(book, limits, reclaimAt).book;
  log.push(
    `object t=${reclaimAt}: reclaims A (validity + coverMs ${COVER_MS} + grace); A still believes it holds ${heldSlots(a)}`,
  );
  const t1 = reclaimAt + 100;
  b = arrive(b, limits, arrival("b1", "normal", t1), t1).lease;
  b = arrive(b, limits, arrival("b2", "normal", t1), t1).lease;
  r = call(book, limits, b, t1, t1 + 5, log, "B");
  book = r.book;
  b = pump(r.edge, t1 + 10).lease;
  log.push(`B t=${t1 + 10}: in use ${inUseTotal(b)} of maxInFlight ${limits.maxInFlight}`);
  const t2 = t1 + 50;
  a = arrive(a, limits, arrival("a2", "normal", t2), t2).lease;
  r = call(book, limits, a, t2, t2 + 5, log, "A");
  book = r.book;
  if (r.applied.kind === "applied") counters = countTally(counters, r.applied.delta);
  a = pump(r.edge, t2 + 10).lease;
  const total = inUseTotal(a) + inUseTotal(b);
  log.push(
    `A t=${t2 + 10}: edge slotsGranted ${a.slotsGranted} (object's count for A: ${book.holders.find((h) => h.id === A)?.slotsGranted}), in use ${inUseTotal(a)}; A + B in use ${total} of ${limits.maxInFlight}; object counters: arrived ${counters.arrived} (A saw 2 arrivals)`,
  );
  return {
    name: "reclaimed-holder-returns",
    defect:
      "a reclaimed holder that renews again keeps max(own, object's) cumulative grants: admits on slots/tokens the object gave away (overshoot) and its tally is counted twice",
    reproduced: total > limits.maxInFlight || counters.arrived > 2,
    trace: log,
    figures: { inUseTotal: total, maxInFlight: limits.maxInFlight, objectArrived: counters.arrived, actualArrivals: 2 },
  };
}

/**
 * One isolate, 10 ms from its object, offered 10x the tenant's rate: how many tokens a second
 * it gets, with a burst of 0.1 s of rate and with one of 1 s. The bucket refills only up to the
 * burst minus the tokens out at holders, and tokens spent but not yet reported count as out.
 */
function lonePathRate(seed: number): Probe {
  const log: string[] = [];
  const figures: Record<string, number> = {};
  let worst = 1;
  for (const burst of [10, 100]) {
    const world = new World({
      seed,
      durationMs: 10_000,
      binMs: 100,
      objectCallMs: 0.2,
      objectWakeMs: 0.05,
      objectSkewMs: 0,
      parseReports: false,
      verifyShortcut: false,
      phases: [{ name: "all", from: 0, to: 10_000 }],
      trace: null,
    });
    const tenant = world.addTenant({
      name: "lone",
      limits: { rate: 100, burst, maxInFlight: 50, maxQueue: 50, maxWaitMs: 1_000 },
      timeoutMs: 5_000,
      serviceMs: { mean: 5, jitter: 0 },
      mix: [["normal", 1]],
      fullBehaviour: "evict-lowest",
    });
    const lt = world.addLt(tenant, new Isolate(0, 10, 0, rngFor(seed, "lone")), false);
    const stream: Stream = { tenant, lts: [lt], rng: rngFor(seed, "lone-arrivals"), rate: 0, pick: null, gen: 0 };
    world.hook(0, () => world.setStream(stream, 1_000, () => 0));
    world.run();
    const admitted = tenant.admittedByPhase[0] ?? 0;
    const perS = admitted / 10;
    figures[`admittedPerS_burst${burst}`] = perS;
    worst = Math.min(worst, perS / 100);
    log.push(
      `rate 100/s, burst ${burst}, one isolate at 10 ms offered 1000/s: admitted ${perS.toFixed(1)}/s (${((perS / 100) * 100).toFixed(0)}% of the rate)`,
    );
  }
  return {
    name: "lone-isolate-rate",
    defect:
      "a token-bound tenant gets well below its rate when burst < rate x (renewal period + round trip): refill is capped by tokens spent but not yet reported",
    reproduced: worst < 0.9,
    trace: log,
    figures,
  };
}

export function runProbes(seed: number): Probe[] {
  return [returnedLastSlot(), reclaimedHolderReturns(), lonePathRate(seed)];
}
