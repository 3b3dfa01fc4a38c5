/**
 * A stand-in for the tenant Durable Object (src/tenant-guard.ts) with the platform taken out, for
 * the property tests. It makes the same calls into the pure core in the same order: pump at `now`
 * before every arrive, pump after every release, reap expired leases on the alarm, answer every
 * waiter the core names, and keep leases and counters with the functions the object uses. Only
 * the clock is the test's: it advances (firing the wake timer and the reaping alarm on the way,
 * as workerd would) or jumps, backwards too, with nothing firing.
 *
 * It asserts nothing itself. It records what happened in each step, and the properties judge
 * the record, so a broken invariant is reported by the property that names it.
 */
import {
  type AdmissionState,
  type ArrivalOutcome,
  applyLimits,
  arrive,
  initialState,
  nextWakeAt,
  pump,
  release,
} from "../../src/admission/admission";
import {
  type Counters,
  type ReleaseOutcome,
  countAdmit,
  countArrival,
  countRelease,
  countShed,
  emptyCounters,
} from "../../src/admission/counters";
import { type Lease, earliestLeaseExpiry, expiredLeases, lingerLease, newLease } from "../../src/admission/leases";
import type { AdmissionLimits, Arrival, FullBehaviour } from "../../src/admission/limits";
import type { Priority } from "../../src/admission/priority";
import type { AdmissionShedReason } from "../../src/admission/shed-reason";
import type { WaitQueue, Waiter } from "../../src/admission/wait-queue";

export const T0 = 1_700_000_000_000;

export type Step =
  | {
      readonly kind: "arrive";
      readonly priority: Priority;
      /** Deadline relative to the clock at arrival; zero or less is already late. */
      readonly deadlineInMs: number;
      readonly fullBehaviour: FullBehaviour;
    }
  /** Releases the `pick`-th lease still held (modulo how many), if any. */
  | { readonly kind: "release"; readonly pick: number; readonly outcome: ReleaseOutcome }
  /** Time passes; the wake timer and the reaping alarm fire when due, in time order. */
  | { readonly kind: "advance"; readonly ms: number }
  /** The clock jumps (a new isolate on another machine); nothing fires. */
  | { readonly kind: "jump"; readonly ms: number }
  /** An admin `stats` call: a pump at `now` and nothing else. */
  | { readonly kind: "stats" }
  /** An admin `configure`: new limits, trimmed waiters answered `evicted`. */
  | { readonly kind: "configure"; readonly limits: AdmissionLimits }
  /**
   * An arrival at an anonymous per-IP object carrying limits that differ from the ones it
   * carried before (an admin changed the anonymous tenant): the path through `adoptLimits`.
   */
  | {
      readonly kind: "arrive-carrying";
      readonly limits: AdmissionLimits;
      readonly priority: Priority;
      readonly deadlineInMs: number;
      readonly fullBehaviour: FullBehaviour;
    };

export type Answer =
  | { readonly kind: "admit"; readonly at: number }
  | { readonly kind: "shed"; readonly reason: AdmissionShedReason; readonly at: number };

export interface GrantRecord {
  readonly id: string;
  readonly priority: Priority;
  readonly at: number;
  readonly deadline: number;
  /** The waiter's end of wait; null for an arrival admitted at once. */
  readonly expiresAt: number | null;
  /** In flight just before this admission, and the bound then in force. */
  readonly inFlightBefore: number;
  readonly maxInFlight: number;
  /**
   * The latest clock reading any pump has seen so far: a bucket that ignores clocks stepping
   * back has refilled up to here and no further.
   */
  readonly refilledUpTo: number;
}

export type EvictionCause =
  | { readonly kind: "arrival"; readonly arrival: Arrival; readonly queueBefore: WaitQueue }
  | { readonly kind: "limits"; readonly kept: WaitQueue };

export interface EvictionRecord {
  readonly victim: Waiter;
  readonly cause: EvictionCause;
}

export interface ArrivalRecord {
  readonly arrival: Arrival;
  readonly at: number;
  /** The queue the arrival met, after the pump that precedes it. */
  readonly queueBefore: WaitQueue;
  readonly inFlightBefore: number;
  /** The hold-time average the arrival met: the service time its wait must leave room for. */
  readonly holdMsEwmaBefore: number | null;
  /** In flight right after `arrive`, before anything else in the step. */
  readonly inFlightAfter: number;
  readonly outcome: ArrivalOutcome;
}

export interface WakeRecord {
  /** When the timer was due, and when it fired (later if the clock had already passed it). */
  readonly dueAt: number;
  readonly firedAt: number;
  readonly progressed: boolean;
  readonly nextWakeAt: number | null;
}

export interface StepRecord {
  readonly grants: GrantRecord[];
  readonly timedOut: { readonly waiter: Waiter; readonly at: number }[];
  readonly evictions: EvictionRecord[];
  readonly arrivals: ArrivalRecord[];
  readonly wakes: WakeRecord[];
}

/** Timer firings one `advance` may run; far above what a 60-step sequence needs. */
const MAX_FIRINGS_PER_ADVANCE = 10_000;

function emptyRecord(): StepRecord {
  return { grants: [], timedOut: [], evictions: [], arrivals: [], wakes: [] };
}

export class GuardDriver {
  limits: AdmissionLimits;
  now: number;
  core: AdmissionState;
  counters: Counters = emptyCounters();
  readonly leases = new Map<string, Lease>();
  /** Every request that arrived, in arrival order. */
  readonly arrivals: Arrival[] = [];
  /** Every answer given, per request id: exactly one is the contract. */
  readonly answers = new Map<string, Answer[]>();
  private record: StepRecord = emptyRecord();
  private nextId = 0;
  private refilledUpTo: number;

  constructor(limits: AdmissionLimits, now: number = T0) {
    this.limits = limits;
    this.now = now;
    this.core = initialState(limits, now);
    this.refilledUpTo = now;
  }

  run(step: Step): StepRecord {
    this.record = emptyRecord();
    switch (step.kind) {
      case "arrive":
        this.admit(step.priority, step.deadlineInMs, step.fullBehaviour, null);
        break;
      case "arrive-carrying":
        this.admit(step.priority, step.deadlineInMs, step.fullBehaviour, step.limits);
        break;
      case "release":
        this.release(step.pick, step.outcome);
        break;
      case "advance":
        this.advance(step.ms);
        break;
      case "jump":
        this.now += step.ms;
        break;
      case "stats":
        this.pumpAt(this.now);
        break;
      case "configure":
        this.configure(step.limits);
        break;
    }
    return this.record;
  }

  /**
   * Lets everything finish: holders release what they hold and time runs on until every waiter
   * is admitted (and released) or has timed out, and every lingering slot has been reaped.
   */
  settle(): StepRecord {
    this.record = emptyRecord();
    for (let round = 0; round < 1_000; round += 1) {
      for (const lease of [...this.leases.values()]) {
        if (!lease.lingering) this.releaseLease(lease, "completed");
      }
      if (this.leases.size === 0 && this.core.queue.length === 0) break;
      this.advance(60_000);
    }
    return this.record;
  }

  heldLeases(): Lease[] {
    return [...this.leases.values()].filter((lease) => !lease.lingering);
  }

  /** TenantGuard.admit, with `carried` standing for the limits an anonymous request carries. */
  private admit(
    priority: Priority,
    deadlineInMs: number,
    fullBehaviour: FullBehaviour,
    carried: AdmissionLimits | null,
  ): void {
    const now = this.now;
    if (carried && JSON.stringify(carried) !== JSON.stringify(this.limits)) {
      // As in TenantGuard.adoptLimits: new limits apply as a configure would, trimmed waiters answered.
      this.applyNewLimits(carried);
    }
    this.pumpAt(now);
    this.nextId += 1;
    const arrival: Arrival = { id: `r${this.nextId}`, priority, deadline: now + deadlineInMs, fullBehaviour };
    this.arrivals.push(arrival);
    const queueBefore = this.core.queue;
    const inFlightBefore = this.core.inFlight;
    const holdMsEwmaBefore = this.core.holdMsEwma;
    const result = arrive(this.core, this.limits, arrival, now);
    this.core = result.state;
    for (const victim of result.evicted) {
      this.record.evictions.push({ victim, cause: { kind: "arrival", arrival, queueBefore } });
      this.answerShed(victim, "evicted", now);
    }
    const outcome = result.outcome;
    this.record.arrivals.push({
      arrival,
      at: now,
      queueBefore,
      inFlightBefore,
      holdMsEwmaBefore,
      inFlightAfter: this.core.inFlight,
      outcome,
    });
    this.counters = countArrival(this.counters, outcome.kind === "queued");
    switch (outcome.kind) {
      case "admit":
        this.grant(arrival, now, null, inFlightBefore);
        break;
      case "shed":
        this.answerShed(arrival, outcome.reason, now);
        break;
      case "queued":
        break;
    }
  }

  /** TenantGuard.release for the `pick`-th held lease. */
  private release(pick: number, outcome: ReleaseOutcome): void {
    const held = this.heldLeases();
    const lease = held[pick % Math.max(1, held.length)];
    if (lease) this.releaseLease(lease, outcome);
  }

  private releaseLease(lease: Lease, outcome: ReleaseOutcome): void {
    const now = this.now;
    this.counters = countRelease(this.counters, outcome);
    if (outcome === "deadline_exceeded") {
      this.leases.set(lease.id, lingerLease(lease, this.core.holdMsEwma, now));
    } else {
      this.freeSlot(lease, outcome === "completed" ? now - lease.admittedAt : null);
    }
    this.pumpAt(now);
  }

  /** TenantGuard.configure on an object that already has state. */
  private configure(limits: AdmissionLimits): void {
    this.applyNewLimits(limits);
    this.pumpAt(this.now);
  }

  /** TenantGuard.applyNewLimits: waiters past a lowered queue bound are answered `evicted`. */
  private applyNewLimits(limits: AdmissionLimits): void {
    const applied = applyLimits(this.core, limits);
    this.limits = limits;
    this.core = applied.state;
    for (const victim of applied.evicted) {
      this.record.evictions.push({ victim, cause: { kind: "limits", kept: applied.state.queue } });
      this.answerShed(victim, "evicted", this.now);
    }
  }

  /** Moves the clock on by `ms`, firing the wake timer and the alarm when they fall due. */
  private advance(ms: number): void {
    const target = this.now + ms;
    for (let firing = 0; firing < MAX_FIRINGS_PER_ADVANCE; firing += 1) {
      const wakeAt = nextWakeAt(this.core, this.limits);
      const alarmAt = earliestLeaseExpiry(this.leases.values());
      const dueAt = Math.min(wakeAt ?? Number.POSITIVE_INFINITY, alarmAt ?? Number.POSITIVE_INFINITY);
      if (dueAt > target) break;
      this.now = Math.max(this.now, dueAt);
      if (alarmAt !== null && alarmAt <= dueAt) {
        this.reapAt(this.now);
        continue;
      }
      const grantsBefore = this.record.grants.length;
      const timeoutsBefore = this.record.timedOut.length;
      this.pumpAt(this.now);
      const progressed = this.record.grants.length > grantsBefore || this.record.timedOut.length > timeoutsBefore;
      const next = nextWakeAt(this.core, this.limits);
      this.record.wakes.push({ dueAt, firedAt: this.now, progressed, nextWakeAt: next });
      // A wake that changes nothing and re-arms for the same moment would spin forever; the
      // property on wakes reports it, this only stops the loop.
      if (!progressed && next !== null && next <= this.now) break;
    }
    this.now = Math.max(this.now, target);
  }

  /** TenantGuard.reapAt without the idle clean-up of anonymous objects. */
  private reapAt(now: number): void {
    for (const lease of expiredLeases(this.leases.values(), now)) {
      if (!lease.lingering) this.counters = countRelease(this.counters, "reaped");
      this.freeSlot(lease, null);
    }
    this.pumpAt(now);
  }

  private pumpAt(now: number): void {
    this.refilledUpTo = Math.max(this.refilledUpTo, now);
    const result = pump(this.core, this.limits, now);
    const inFlightBefore = this.core.inFlight;
    this.core = result.state;
    for (const waiter of result.timedOut) {
      this.record.timedOut.push({ waiter, at: now });
      this.answerShed(waiter, "queue_timeout", now);
    }
    result.granted.forEach((waiter, index) => {
      this.grant(waiter, now, waiter.expiresAt, inFlightBefore + index);
    });
  }

  private grant(
    request: Pick<Arrival, "id" | "priority" | "deadline">,
    now: number,
    expiresAt: number | null,
    inFlightBefore: number,
  ): void {
    const lease = newLease(request.id, request.priority, request.deadline, now);
    this.leases.set(lease.id, lease);
    this.counters = countAdmit(this.counters, request.priority);
    this.answer(request.id, { kind: "admit", at: now });
    this.record.grants.push({
      id: request.id,
      priority: request.priority,
      at: now,
      deadline: request.deadline,
      expiresAt,
      inFlightBefore,
      maxInFlight: this.limits.maxInFlight,
      refilledUpTo: this.refilledUpTo,
    });
  }

  private answerShed(request: Pick<Arrival, "id" | "priority">, reason: AdmissionShedReason, now: number): void {
    this.counters = countShed(this.counters, reason, request.priority);
    this.answer(request.id, { kind: "shed", reason, at: now });
  }

  private answer(id: string, answer: Answer): void {
    const given = this.answers.get(id);
    if (given) given.push(answer);
    else this.answers.set(id, [answer]);
  }

  private freeSlot(lease: Lease, heldMs: number | null): void {
    this.leases.delete(lease.id);
    this.core = release(this.core, heldMs);
  }
}
