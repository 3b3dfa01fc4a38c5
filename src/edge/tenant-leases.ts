/**
 * This isolate's side of the tenant stage: one lease per tenant object (src/lease/edge-lease.ts
 * holds the decisions), the promises of the requests waiting in its local queue, and the
 * renewals that keep it. State lives in the isolate, shared by its requests; every timer and
 * call runs in the context of a request that is still there (a waiting request drives its own
 * wake-ups; a renewal runs in the waitUntil of the request that started it), because a timer
 * set by a request that has ended never fires.
 */
import type { ReleaseOutcome } from "../admission/counters";
import { lingerMs } from "../admission/leases";
import type { AdmissionLimits, Arrival } from "../admission/limits";
import type { AdmissionShedReason } from "../admission/shed-reason";
import {
  type EdgeLease,
  applyAnswer,
  arrive,
  cancelWaiter,
  drainMs,
  finish,
  freeSlot,
  heldSlots,
  heldTokens,
  isValid,
  newEdgeLease,
  nextWakeAt,
  pump,
  reassess,
  refundToken,
  renewalDue,
  renewalFailed,
  startRenewal,
} from "../lease/edge-lease";
import type { LeaseAnswer, LeaseReport, Quota } from "../lease/lease-protocol";

/** Tenants this isolate holds leases for; past it the least recently used lease is dropped (its object reclaims it). */
export const MAX_EDGE_LEASES = 1_000;

export type StageVerdict =
  | { readonly kind: "admit"; readonly slot: LeasedSlot }
  | {
      readonly kind: "shed";
      readonly reason: AdmissionShedReason;
      readonly retryAfterMs: number;
      readonly waitedMs: number;
      readonly quota: Quota | null;
      readonly atEdge: boolean;
    }
  | { readonly kind: "unavailable" }
  | { readonly kind: "unconfigured" }
  /** The client went away while it waited: nothing to answer. */
  | { readonly kind: "gone" };

export interface LeasedSlot {
  readonly waitedMs: number;
  readonly quota: Quota | null;
  /** "edge" when admitted on the lease as it was, "object" when it waited for a renewal. */
  readonly decidedAt: "edge" | "object";
  /** Exactly once: the second call changes nothing. `servedUntil`: see `Admitted.release`. */
  readonly release: (outcome: ReleaseOutcome, servedUntil?: number) => void;
}

export interface LeasePorts {
  readonly call: (objectName: string, report: LeaseReport) => Promise<LeaseAnswer>;
  readonly now: () => number;
  readonly wait: (ms: number) => Promise<void>;
  readonly waitUntil: (work: Promise<unknown>) => void;
  /** See `waiterWake` in src/config.ts: false, a waiter checks its grant every POLL_MS instead. */
  readonly wakeByPromise: boolean;
}

/** How often a waiter checks for its grant when it cannot be woken by another request's promise. */
export const POLL_MS = 2;

export interface StageRequest {
  readonly objectName: string;
  readonly arrival: Arrival;
  /** The tenant's limits as the edge knows them, until its object has answered once. */
  readonly limits: AdmissionLimits;
  /** Sent for objects that have no limits of their own (anonymous per-IP buckets). */
  readonly carriedLimits: AdmissionLimits | undefined;
  /** The tenant's longest deadline budget: how long a leased slot may be in use. */
  readonly coverMs: number;
  readonly signal: AbortSignal | null;
}

type WaitEnd = Exclude<StageVerdict, { kind: "admit" }> | { readonly kind: "granted" };

class Holder {
  lease: EdgeLease;
  dropped = false;
  limits: AdmissionLimits;
  carriedLimits: AdmissionLimits | undefined;
  coverMs: number;
  /** One per queued request, so bounded by the lease's queue bound. */
  readonly waiters = new Map<string, (end: WaitEnd) => void>();

  constructor(
    readonly objectName: string,
    request: StageRequest,
    now: number,
  ) {
    this.lease = newEdgeLease(crypto.randomUUID(), now);
    this.limits = request.limits;
    this.carriedLimits = request.carriedLimits;
    this.coverMs = request.coverMs;
  }

  get effectiveLimits(): AdmissionLimits {
    return this.lease.view?.limits ?? this.limits;
  }

  settle(id: string, end: WaitEnd): void {
    const resolve = this.waiters.get(id);
    this.waiters.delete(id);
    resolve?.(end);
  }
}

export class TenantLeases {
  private readonly holders = new Map<string, Holder>();

  constructor(private readonly maxLeases = MAX_EDGE_LEASES) {}

  /** Admits, queues or sheds one request against its tenant's lease in this isolate. */
  async enter(request: StageRequest, ports: LeasePorts): Promise<StageVerdict> {
    const now = ports.now();
    const holder = this.holderFor(request, now);
    this.pump(holder, ports, now);
    const wasValid = isValid(holder.lease, now);
    const result = arrive(holder.lease, holder.effectiveLimits, request.arrival, now);
    holder.lease = result.lease;
    for (const victim of result.evicted)
      holder.settle(victim.id, this.shedEnd(holder, "evicted", now - victim.enqueuedAt));
    this.kick(holder, ports);
    const outcome = result.outcome;
    switch (outcome.kind) {
      case "admit":
        return { kind: "admit", slot: this.slot(holder, request.arrival, now, 0, "edge", ports) };
      case "shed":
        return {
          kind: "shed",
          reason: outcome.reason,
          retryAfterMs: outcome.retryAfterMs,
          waitedMs: 0,
          quota: holder.lease.view?.quota ?? null,
          atEdge: true,
        };
      case "unavailable":
        return outcome;
      case "queued": {
        const end = await this.wait(holder, outcome.waiter.id, outcome.waiter.expiresAt, request.signal, ports);
        if (end.kind !== "granted") return end;
        const admittedAt = ports.now();
        return {
          kind: "admit",
          slot: this.slot(holder, request.arrival, admittedAt, admittedAt - now, wasValid ? "edge" : "object", ports),
        };
      }
    }
  }

  /** This isolate's lease for a tenant object, for stats and tests. */
  snapshot(objectName: string): EdgeLease | undefined {
    return this.holders.get(objectName)?.lease;
  }

  clear(): void {
    for (const holder of this.holders.values()) this.drop(holder, { kind: "unavailable" });
    this.holders.clear();
  }

  private holderFor(request: StageRequest, now: number): Holder {
    let holder = this.holders.get(request.objectName);
    // A lease that gave everything back is done; its leaving answer may still be on its way.
    if (holder?.lease.left) holder = undefined;
    if (holder) {
      this.holders.delete(request.objectName);
    } else {
      holder = new Holder(request.objectName, request, now);
    }
    holder.limits = request.limits;
    holder.carriedLimits = request.carriedLimits;
    holder.coverMs = request.coverMs;
    this.holders.set(request.objectName, holder);
    for (const [name, oldest] of this.holders) {
      if (this.holders.size <= this.maxLeases) break;
      this.holders.delete(name);
      this.drop(oldest, { kind: "unavailable" });
    }
    return holder;
  }

  /** Forgets a lease: its waiters get `end`, its object reclaims what it held. */
  private drop(holder: Holder, end: WaitEnd): void {
    holder.dropped = true;
    for (const id of [...holder.waiters.keys()]) holder.settle(id, end);
    if (this.holders.get(holder.objectName) === holder) this.holders.delete(holder.objectName);
  }

  private shedEnd(holder: Holder, reason: AdmissionShedReason, waitedMs: number): WaitEnd {
    return {
      kind: "shed",
      reason,
      retryAfterMs: drainMs(holder.lease),
      waitedMs,
      quota: holder.lease.view?.quota ?? null,
      atEdge: true,
    };
  }

  private pump(holder: Holder, _ports: LeasePorts, now: number): void {
    const result = pump(holder.lease, now);
    holder.lease = result.lease;
    for (const waiter of result.timedOut)
      holder.settle(waiter.id, this.shedEnd(holder, "queue_timeout", now - waiter.enqueuedAt));
    for (const waiter of result.granted) holder.settle(waiter.id, { kind: "granted" });
  }

  /** A queued request waits here, driving the lease's timers from its own context. */
  private async wait(
    holder: Holder,
    id: string,
    expiresAt: number,
    signal: AbortSignal | null,
    ports: LeasePorts,
  ): Promise<WaitEnd> {
    let ended: WaitEnd | null = null;
    const done = new Promise<WaitEnd>((resolve) => {
      holder.waiters.set(id, (end) => {
        ended = end;
        resolve(end);
      });
    });
    const onAbort = () => {
      holder.lease = cancelWaiter(holder.lease, id, null).lease;
      holder.settle(id, { kind: "gone" });
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    try {
      while (ended === null) {
        const now = ports.now();
        // Only the queue's head wakes for the lease's own timers (a renewal due, the earliest
        // expiry); the others sleep until their own expiry, since a grant wakes them by promise.
        // With every waiter waking at every renewal, a deep queue (300 waiters) cost O(n) wake-ups
        // of O(n) work each per renewal period, and that CPU sat in every hand-off.
        const leads = !ports.wakeByPromise || holder.lease.queue[0]?.id === id;
        const wake = leads ? Math.min(expiresAt, nextWakeAt(holder.lease) ?? expiresAt) : expiresAt;
        const sleepMs = Math.max(1, wake - now);
        if (ports.wakeByPromise) await Promise.race([done, ports.wait(sleepMs)]);
        else await ports.wait(Math.min(sleepMs, POLL_MS));
        if (ended !== null) break;
        const later = ports.now();
        this.pump(holder, ports, later);
        if (ended === null && later >= expiresAt) {
          holder.lease = cancelWaiter(holder.lease, id, "queue_timeout").lease;
          holder.settle(id, this.shedEnd(holder, "queue_timeout", later - (expiresAt - 1)));
        }
        this.kick(holder, ports);
      }
      return ended;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  private slot(
    holder: Holder,
    arrival: Arrival,
    admittedAt: number,
    waitedMs: number,
    decidedAt: "edge" | "object",
    ports: LeasePorts,
  ): LeasedSlot {
    let released = false;
    return {
      waitedMs,
      quota: holder.lease.view?.quota ?? null,
      decidedAt,
      release: (outcome, servedUntil) => {
        if (released) return;
        released = true;
        const now = ports.now();
        const ranMs = now - admittedAt;
        holder.lease = finish(holder.lease, outcome, Math.min(now, servedUntil ?? now) - admittedAt);
        const free = () => {
          holder.lease = freeSlot(holder.lease, arrival.priority);
          if (outcome === "not_forwarded") holder.lease = refundToken(holder.lease);
          this.pump(holder, ports, ports.now());
          this.kick(holder, ports);
        };
        // The origin is probably still at work on a request given up on: its slot stays taken a while.
        if (outcome === "deadline_exceeded" || outcome === "abandoned") {
          ports.waitUntil(ports.wait(lingerMs(holder.lease.holdMs, ranMs)).then(free));
        } else {
          free();
        }
      },
    };
  }

  /** Sends a renewal when one is due; at most one is on its way per lease. */
  private kick(holder: Holder, ports: LeasePorts): void {
    if (holder.dropped) return;
    const now = ports.now();
    if (!renewalDue(holder.lease, now)) return;
    const started = startRenewal(holder.lease, holder.effectiveLimits, holder.coverMs, now);
    holder.lease = started.lease;
    const report: LeaseReport = holder.carriedLimits
      ? { ...started.report, limits: holder.carriedLimits }
      : started.report;
    ports.waitUntil(this.renew(holder, report, ports));
  }

  private async renew(holder: Holder, report: LeaseReport, ports: LeasePorts): Promise<void> {
    let answer: LeaseAnswer;
    try {
      answer = await ports.call(holder.objectName, report);
    } catch (error) {
      console.error(`renewing the lease of '${holder.objectName}' failed`, error);
      const failed = renewalFailed(holder.lease, ports.now());
      holder.lease = failed.lease;
      for (const waiter of failed.stranded) holder.settle(waiter.id, { kind: "unavailable" });
      return;
    }
    if (answer.kind === "unconfigured") {
      this.drop(holder, { kind: "unconfigured" });
      return;
    }
    holder.lease = applyAnswer(holder.lease, answer);
    if (holder.lease.left) {
      if (this.holders.get(holder.objectName) === holder) this.holders.delete(holder.objectName);
      return;
    }
    const now = ports.now();
    this.pump(holder, ports, now);
    const reassessed = reassess(holder.lease, now);
    holder.lease = reassessed.lease;
    for (const { waiter, reason, retryAfterMs } of reassessed.refused) {
      holder.settle(waiter.id, {
        kind: "shed",
        reason,
        retryAfterMs,
        waitedMs: now - waiter.enqueuedAt,
        quota: holder.lease.view?.quota ?? null,
        atEdge: false,
      });
    }
    this.kick(holder, ports);
    this.heartbeat(holder, ports);
  }

  /**
   * Keeps renewing while the lease holds or wants anything, and gives it back once idle, from
   * the context of the renewal that just landed (it lives on in waitUntil), so the object hears
   * of slots in use and returned within a renewal period even when no request arrives.
   */
  private heartbeat(holder: Holder, ports: LeasePorts): void {
    if (holder.dropped || holder.lease.renewing || holder.lease.left) return;
    const at = nextWakeAt(holder.lease);
    if (at === null) return;
    ports.waitUntil(
      ports.wait(Math.max(1, at - ports.now())).then(() => {
        this.pump(holder, ports, ports.now());
        this.kick(holder, ports);
        // Woken for something else (a waiter's expiry before the renewal was due): without
        // re-arming, the chain would end here and a lease whose requests run on would not renew
        // again until one of them ends, leaving the object's view stale (seen: a queue_timeout
        // never reported while the slot's request ran). A renewal started above re-arms itself.
        const l = holder.lease;
        if (heldSlots(l) > 0 || heldTokens(l) > 0 || l.queue.length > 0) this.heartbeat(holder, ports);
      }),
    );
  }
}
