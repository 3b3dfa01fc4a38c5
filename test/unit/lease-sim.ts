import { type ReleaseOutcome, RELEASE_OUTCOMES } from "../../src/admission/counters";
import { lingerMs } from "../../src/admission/leases";
import type { AdmissionLimits, FullBehaviour } from "../../src/admission/limits";
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
  reassess,
  refundToken,
  renewalDue,
  renewalFailed,
  startRenewal,
} from "../../src/lease/edge-lease";
import { type LeaseBook, emptyBook, slotsOut, tokensOut } from "../../src/lease/lease-book";
import { type DeskEffects, LeaseDesk } from "../../src/lease/lease-desk";
import { type LeaseAnswer, type LeaseGrant, type LeaseReport, leaseReportSchema } from "../../src/lease/lease-protocol";

/**
 * A tenant's lease book and N isolates' edge leases, driven the way the tenant object and the
 * isolates drive them (src/tenant-guard.ts, src/edge/tenant-leases.ts), over a simulated network
 * that can delay, lose, reorder and repeat renewals. It holds no admission logic of its own: every
 * decision is the production modules'; the simulator only routes messages, runs the clock and
 * keeps a ledger of what each request was told, for the properties to judge.
 *
 * Like the shell, an isolate pumps and sends a due renewal on each arrival, release and answer,
 * and at the lease's `nextWakeAt`. The object is the production LeaseDesk the tenant object runs
 * (src/lease/lease-desk.ts): the simulator hands it each report as it arrives and wakes it when
 * it asks, and routes its answers back; without `longPoll` the reports ask for no wait, so the
 * desk answers every one at once.
 */

/** What the network does with one renewal: each renewal takes the next fate, round robin. */
export interface Fate {
  readonly kind: "ok" | "lost-report" | "lost-answer" | "late-report" | "duplicate";
  /** Edge to object (ms). */
  readonly outMs: number;
  /** Object to edge (ms). */
  readonly backMs: number;
  /** For a late report, and a duplicate's second copy: it reaches the object this much after the failure/first copy. */
  readonly lagMs: number;
}

export const LOSSLESS: readonly Fate[] = [{ kind: "ok", outMs: 1, backMs: 1, lagMs: 0 }];

export interface SimOptions {
  readonly limits: AdmissionLimits;
  readonly edges: number;
  readonly coverMs: number;
  readonly fates: readonly Fate[];
  readonly longPoll: boolean;
  /** How long an edge waits on a renewal whose report or answer was lost before it counts it failed. */
  readonly failAfterMs: number;
  /** Intervals [from, to) (ms after start) in which the object cannot be reached at all. */
  readonly outages?: readonly (readonly [number, number])[];
}

export interface SimArrival {
  readonly edge: number;
  readonly priority: Priority;
  readonly budgetMs: number;
  readonly fullBehaviour: FullBehaviour;
  /** How long the origin works on it once admitted. */
  readonly serviceMs: number;
  /** not_forwarded: the origin stage refuses it at once (its token refunded if still unreported). */
  readonly outcome: "completed" | "not_forwarded";
  /** A closed-loop client: it sends again `thinkMs` after each answer ends, until `untilMs` after start. */
  readonly closedLoop?: { readonly thinkMs: number; readonly untilMs: number };
}

export type Answer = "admit" | "shed" | "unavailable";

export interface RequestRecord {
  readonly id: string;
  readonly edge: number;
  readonly priority: Priority;
  readonly arrivedAt: number;
  readonly deadline: number;
  answers: { readonly kind: Answer; readonly reason?: string; readonly at: number; readonly retryAfterMs?: number }[];
}

interface InService {
  readonly id: string;
  readonly priority: Priority;
  readonly lease: EdgeLease["holder"];
  /** When the origin is done (or the guard gives up at the deadline). */
  readonly endsAt: number;
  readonly outcome: ReleaseOutcome;
  readonly admittedAt: number;
  /** Set once finished: the slot is freed then (lingering after a deadline abort). */
  freeAt: number | null;
}

interface Call {
  readonly id: number;
  readonly edge: number;
  readonly holder: string;
  readonly backMs: number;
}

type NetEvent =
  | {
      readonly at: number;
      readonly order: number;
      readonly kind: "report";
      readonly call: Call;
      readonly report: LeaseReport;
      readonly answer: boolean;
    }
  | {
      readonly at: number;
      readonly order: number;
      readonly kind: "answer";
      readonly call: Call;
      readonly answer: LeaseGrant;
    }
  | { readonly at: number; readonly order: number; readonly kind: "fail"; readonly call: Call };

interface Pending {
  readonly call: Call;
  /** This copy's answer is lost on the way back. */
  readonly lost: boolean;
}

/** A configured tenant's desk always grants (or refuses) with numbers; `unconfigured` would be a bug here. */
function grantOf(answer: LeaseAnswer): LeaseGrant {
  if (answer.kind === "unconfigured") throw new Error("a configured desk answered unconfigured");
  return answer;
}

interface SimEdge {
  lease: EdgeLease;
  leases: number;
  /** The renewal on its way, if any: only its answer or failure is taken in. */
  call: Call | null;
  readonly service: InService[];
  /** The most slots this lease's holder was ever seen granted by the book, for invariant (d). */
}

const T0 = 1_700_000_000_000;
export const SIM_T0 = T0;

const holderId = (edge: number, n: number) =>
  `00000000-0000-4000-8000-${edge.toString(16).padStart(4, "0")}${n.toString(16).padStart(8, "0")}`;

export class LeaseSim {
  now = T0;
  readonly desk: LeaseDesk;
  readonly edges: SimEdge[];
  readonly requests = new Map<string, RequestRecord>();
  /** Admissions less refunds: tokens spent on the origin's behalf. */
  tokensSpent = 0;
  admitted = 0;
  reportsSent = 0;
  /** Holders the book reclaimed (presumed gone) at some point. */
  readonly reclaimedHolders = new Set<string>();
  /** Requests answered a second time: none, if every arrival is answered exactly once. */
  readonly answeredTwice: string[] = [];
  private events: NetEvent[] = [];
  /** The network side of the renewals the desk holds, by holder: where to send its answer. */
  private pending = new Map<string, Pending>();
  private order = 0;
  private calls = 0;
  private fateIndex = 0;
  private nextRequest = 0;
  /** Checked after every time point the simulator processes. */
  onTick: ((sim: LeaseSim) => void) | null = null;

  constructor(readonly options: SimOptions) {
    this.desk = new LeaseDesk(options.limits, null);
    this.edges = Array.from({ length: options.edges }, (_, i) => ({
      lease: newEdgeLease(holderId(i, 0), T0),
      leases: 1,
      call: null,
      service: [],
    }));
  }

  /** The desk's book as it stands (read, not reclaimed: the desk reclaims when it is called). */
  get book(): LeaseBook {
    return this.desk.record().book ?? emptyBook(this.limits, T0);
  }

  get limits(): AdmissionLimits {
    return this.options.limits;
  }

  /** Slots in use across isolates: what the origin is serving now, lingering slots included. */
  inUseEverywhere(): number {
    return this.edges.reduce((n, e) => n + e.service.length, 0);
  }

  /** One request arrives at an isolate, now. */
  arrive(a: SimArrival): RequestRecord {
    const edge = this.edgeAt(a.edge);
    this.nextRequest += 1;
    const id = `r${this.nextRequest}`;
    const record: RequestRecord = {
      id,
      edge: a.edge,
      priority: a.priority,
      arrivedAt: this.now,
      deadline: this.now + a.budgetMs,
      answers: [],
    };
    this.requests.set(id, record);
    this.specs.set(id, a);
    // A lease that gave everything back is done; the next arrival starts another (shell: holderFor).
    if (edge.lease.left) {
      edge.lease = newEdgeLease(holderId(a.edge, edge.leases), this.now);
      edge.leases += 1;
      edge.call = null;
    }
    this.pumpEdge(a.edge);
    const result = arrive(
      edge.lease,
      edge.lease.view?.limits ?? this.limits,
      { id, priority: a.priority, deadline: record.deadline, fullBehaviour: a.fullBehaviour },
      this.now,
    );
    edge.lease = result.lease;
    for (const victim of result.evicted) this.answer(victim.id, "shed", "evicted");
    switch (result.outcome.kind) {
      case "admit":
        this.admit(a.edge, id);
        break;
      case "shed":
        this.answer(id, "shed", result.outcome.reason, result.outcome.retryAfterMs);
        break;
      case "unavailable":
        this.answer(id, "unavailable");
        break;
      case "queued":
        break;
    }
    this.kick(a.edge);
    this.onTick?.(this);
    return record;
  }

  private readonly specs = new Map<string, SimArrival>();
  private reissues: { readonly at: number; readonly spec: SimArrival }[] = [];

  /** Runs the clock forward by `ms`, delivering, serving and waking as it goes. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (let guard = 0; ; guard += 1) {
      if (guard > 100_000) throw new Error("the simulation stopped making progress");
      const next = this.nextTime();
      if (next === null || next > target) break;
      this.now = next;
      this.processAt();
      this.onTick?.(this);
    }
    this.now = target;
    this.processAt();
    this.onTick?.(this);
  }

  private nextTime(): number | null {
    // Messages sent at this instant (no delay) are still due now; everything else lies ahead.
    if (this.events.some((ev) => ev.at <= this.now) || this.reissues.some((r) => r.at <= this.now)) return this.now;
    const times: number[] = [];
    for (const ev of this.events) times.push(ev.at);
    for (const r of this.reissues) times.push(r.at);
    const wake = this.desk.wakeAt();
    if (wake !== null) times.push(wake);
    for (const e of this.edges) {
      for (const s of e.service) times.push(s.freeAt ?? s.endsAt);
      const wake = nextWakeAt(e.lease);
      if (wake !== null) times.push(wake);
      for (const w of e.lease.queue) times.push(w.expiresAt);
    }
    const later = times.filter((t) => t > this.now);
    return later.length > 0 ? Math.min(...later) : null;
  }

  private processAt(): void {
    // The isolates' clocks first (what they send now arrives now), then the network in send
    // order, then the object's long polls whose wait ended.
    this.edges.forEach((edge, i) => {
      for (const s of [...edge.service]) {
        if (s.freeAt === null && s.endsAt <= this.now) this.finishService(i, s);
        else if (s.freeAt !== null && s.freeAt <= this.now) this.freeService(i, s);
      }
      this.pumpEdge(i);
      this.kick(i);
    });
    for (;;) {
      const due = this.events.filter((ev) => ev.at <= this.now).sort((a, b) => a.at - b.at || a.order - b.order);
      const ev = due[0];
      if (!ev) break;
      this.events = this.events.filter((e) => e !== ev);
      this.deliver(ev);
    }
    this.servePending();
    const again = this.reissues.filter((r) => r.at <= this.now);
    this.reissues = this.reissues.filter((r) => r.at > this.now);
    for (const r of again) this.arrive(r.spec);
  }

  /** A closed-loop client's request ended: it sends the next one after its think time (a shed one backs off). */
  private ended(id: string, refused = false): void {
    const spec = this.specs.get(id);
    const loop = spec?.closedLoop;
    if (!spec || !loop) return;
    const at = this.now + Math.max(loop.thinkMs, refused ? 20 : 0);
    if (at - T0 < loop.untilMs) this.reissues.push({ at, spec });
  }

  private edgeAt(i: number): SimEdge {
    const edge = this.edges[i];
    if (!edge) throw new Error(`no edge ${i}`);
    return edge;
  }

  private answer(id: string, kind: Answer, reason?: string, retryAfterMs?: number): void {
    const record = this.requests.get(id);
    if (!record) throw new Error(`unknown request ${id}`);
    if (record.answers.length > 0) this.answeredTwice.push(id);
    record.answers.push({
      kind,
      at: this.now,
      ...(reason ? { reason } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
    if (kind !== "admit") this.ended(id, true);
  }

  private admit(i: number, id: string): void {
    const edge = this.edgeAt(i);
    const spec = this.specs.get(id);
    const record = this.requests.get(id);
    if (!spec || !record) throw new Error(`unknown request ${id}`);
    this.answer(id, "admit");
    this.admitted += 1;
    this.tokensSpent += 1;
    const notForwarded = spec.outcome === "not_forwarded";
    const overrun = this.now + spec.serviceMs > record.deadline;
    edge.service.push({
      id,
      priority: spec.priority,
      lease: edge.lease.holder,
      endsAt: notForwarded ? this.now : Math.min(this.now + spec.serviceMs, record.deadline),
      outcome: notForwarded ? "not_forwarded" : overrun ? "deadline_exceeded" : "completed",
      admittedAt: this.now,
      freeAt: null,
    });
  }

  /** The request ended (shell: `release`); its slot frees now, or after lingering. */
  private finishService(i: number, s: InService): void {
    const edge = this.edgeAt(i);
    const ranMs = this.now - s.admittedAt;
    if (s.lease === edge.lease.holder) edge.lease = finish(edge.lease, s.outcome, ranMs);
    s.freeAt = s.outcome === "deadline_exceeded" ? this.now + lingerMs(edge.lease.holdMs, ranMs) : this.now;
    if (s.freeAt <= this.now) this.freeService(i, s);
  }

  private freeService(i: number, s: InService): void {
    const edge = this.edgeAt(i);
    const index = edge.service.indexOf(s);
    if (index < 0) throw new Error(`${s.id} freed twice`);
    edge.service.splice(index, 1);
    if (s.lease !== edge.lease.holder) throw new Error("a request outlived the lease it was admitted on");
    edge.lease = freeSlot(edge.lease, s.priority);
    if (s.outcome === "not_forwarded") {
      const before = edge.lease.tokensSpent;
      edge.lease = refundToken(edge.lease);
      if (edge.lease.tokensSpent < before) this.tokensSpent -= 1;
    }
    this.ended(s.id);
    this.pumpEdge(i);
    this.kick(i);
  }

  private pumpEdge(i: number): void {
    const edge = this.edgeAt(i);
    const result = pump(edge.lease, this.now);
    edge.lease = result.lease;
    for (const w of result.timedOut) this.answer(w.id, "shed", "queue_timeout");
    for (const w of result.granted) this.admit(i, w.id);
  }

  private kick(i: number): void {
    const edge = this.edgeAt(i);
    if (!renewalDue(edge.lease, this.now)) return;
    const started = startRenewal(edge.lease, edge.lease.view?.limits ?? this.limits, this.options.coverMs, this.now);
    edge.lease = started.lease;
    const report = leaseReportSchema.parse(started.report);
    this.calls += 1;
    const fate = this.nextFate();
    const call: Call = { id: this.calls, edge: i, holder: edge.lease.holder, backMs: fate.backMs };
    edge.call = call;
    this.reportsSent += 1;
    const unreachable = this.inOutage(this.now) || this.inOutage(this.now + fate.outMs);
    const kind = unreachable ? "lost-report" : fate.kind;
    const failAt = this.now + this.options.failAfterMs;
    switch (kind) {
      case "ok":
      case "duplicate":
        this.push({ at: this.now + fate.outMs, kind: "report", call, report, answer: true });
        if (kind === "duplicate")
          this.push({ at: this.now + fate.outMs + fate.lagMs, kind: "report", call, report, answer: false });
        break;
      case "lost-answer":
        this.push({ at: this.now + fate.outMs, kind: "report", call, report, answer: false });
        this.push({ at: failAt, kind: "fail", call });
        break;
      case "lost-report":
        this.push({ at: failAt, kind: "fail", call });
        break;
      case "late-report":
        this.push({ at: failAt, kind: "fail", call });
        this.push({ at: failAt + fate.lagMs, kind: "report", call, report, answer: false });
        break;
    }
  }

  private nextFate(): Fate {
    const fates = this.options.fates.length > 0 ? this.options.fates : LOSSLESS;
    const fate = fates[this.fateIndex % fates.length] as Fate;
    this.fateIndex += 1;
    return fate;
  }

  private inOutage(at: number): boolean {
    const t = at - T0;
    return (this.options.outages ?? []).some(([from, to]) => t >= from && t < to);
  }

  private push(ev: NetEvent extends infer E ? (E extends NetEvent ? Omit<E, "order"> : never) : never): void {
    this.order += 1;
    this.events.push({ ...ev, order: this.order } as NetEvent);
  }

  private deliver(ev: NetEvent): void {
    if (ev.kind === "report") {
      this.object(ev.call, ev.report, ev.answer);
      return;
    }
    const edge = this.edgeAt(ev.call.edge);
    // An answer or failure for a call the isolate no longer waits on (a lease it replaced) is dropped.
    if (edge.call?.id !== ev.call.id || edge.lease.holder !== ev.call.holder) return;
    edge.call = null;
    if (ev.kind === "fail") {
      const failed = renewalFailed(edge.lease, this.now);
      edge.lease = failed.lease;
      for (const w of failed.stranded) this.answer(w.id, "unavailable");
      return;
    }
    edge.lease = applyAnswer(edge.lease, ev.answer);
    if (edge.lease.left) return;
    this.pumpEdge(ev.call.edge);
    const reassessed = reassess(edge.lease, this.now);
    edge.lease = reassessed.lease;
    for (const { waiter, reason, retryAfterMs } of reassessed.refused)
      this.answer(waiter.id, "shed", reason, retryAfterMs);
    this.kick(ev.call.edge);
  }

  /** The tenant object's `lease` call (src/tenant-guard.ts), answering through the network. */
  private object(call: Call, report: LeaseReport, answered: boolean): void {
    const before = this.book.holders.map((h) => h.id);
    const asked = this.options.longPoll ? report : { ...report, waitMs: 0 };
    const { reply, effects } = this.desk.lease(leaseReportSchema.parse(asked), this.now);
    const after = new Set(this.book.holders.map((h) => h.id));
    // Gone from the book without leaving: reclaimed before the report was applied.
    for (const id of before) if (!after.has(id) && id !== report.holder) this.reclaimedHolders.add(id);
    // A held renewal of the same holder is answered first, on its own call.
    this.answerHeld(effects);
    if (reply.kind === "answer") this.respond(call, grantOf(reply.answer), !answered);
    else this.pending.set(report.holder, { call, lost: !answered });
  }

  /** The desk let go of renewals it held: each answer goes back on the call that sent it. */
  private answerHeld(effects: DeskEffects): void {
    for (const { to, answer } of effects.answers) {
      const held = this.pending.get(to);
      if (!held) throw new Error(`the desk answered ${to}, which it was not holding`);
      this.pending.delete(to);
      this.respond(held.call, grantOf(answer), held.lost);
    }
  }

  private servePending(): void {
    this.answerHeld(this.desk.wake(this.now));
  }

  private respond(call: Call, answer: LeaseGrant, lost: boolean): void {
    if (lost) return;
    if (this.inOutage(this.now + call.backMs)) {
      this.push({ at: this.now + this.options.failAfterMs, kind: "fail", call });
      return;
    }
    this.push({ at: this.now + call.backMs, kind: "answer", call, answer });
  }

  /** Everything still waiting in a queue or at the origin. */
  queued(): number {
    return this.edges.reduce((n, e) => n + e.lease.queue.length, 0);
  }

  /** Runs long enough for every wait, service, linger and renewal to end. */
  drain(): void {
    const busy = () =>
      this.queued() > 0 || this.inUseEverywhere() > 0 || this.events.length > 0 || this.reissues.length > 0;
    for (let i = 0; i < 200 && busy(); i += 1) {
      this.advance(1_000);
    }
  }

  /** Edge-side numbers for invariants. */
  static edgeNumbers(lease: EdgeLease) {
    return { inUse: inUseTotal(lease), held: heldSlots(lease), tokens: heldTokens(lease) };
  }

  static bookNumbers(book: LeaseBook) {
    return { slots: slotsOut(book), tokensOut: tokensOut(book), bucket: book.bucket.tokens };
  }

  specOf(id: string): SimArrival | undefined {
    return this.specs.get(id);
  }
}

export const OUTCOMES = RELEASE_OUTCOMES;
