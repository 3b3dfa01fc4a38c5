/**
 * The simulated world: isolates, one Durable Object per tenant, an origin with fixed capacity,
 * and the network between them, on one simulated clock driven by an event heap. The decisions
 * are the project's own pure modules (src/lease/*): this file only reproduces what the two
 * shells do around them, as src/tenant-guard.ts (the object) and src/edge/tenant-leases.ts (an
 * isolate) do it, and measures. Each side passes its own clock (simulated time + its skew) to
 * the pure functions.
 */
import { type Counters, countCall, emptyCounters } from "../../src/admission/counters";
import type { AdmissionLimits, Arrival, FullBehaviour } from "../../src/admission/limits";
import { PRIORITIES, type Priority } from "../../src/admission/priority";
import { ADMISSION_SHED_REASONS } from "../../src/admission/shed-reason";
import { refill } from "../../src/admission/token-bucket";
import { earliestExpiry } from "../../src/admission/wait-queue";
import {
  type EdgeLease,
  applyAnswer,
  arrive,
  finish,
  freeSlot,
  heldSlots,
  heldTokens,
  inUseTotal,
  isValid,
  newEdgeLease,
  nextWakeAt,
  pump,
  reassess,
  renewalDue,
  renewalFailed,
  startRenewal,
} from "../../src/lease/edge-lease";
import {
  type HolderLease,
  type LeaseBook,
  applyReport,
  emptyBook,
  grant,
  reclaimExpired,
  slotsHeld,
  slotsOut,
  tokensHeld,
  tokensOut,
} from "../../src/lease/lease-book";
import { slotTargets } from "../../src/lease/slot-allocation";
import { LEASE_TIMING, type LeaseAnswer, type LeaseReport, leaseReportSchema } from "../../src/lease/lease-protocol";
import { countTally } from "../../src/lease/tally";
import { Heap } from "./heap";
import { type Rng, exponential, rngFor, uniform, uuidLike } from "./rng";

/**
 * Where a slot of the tenant is: in use at an isolate; free at an isolate (with no local demand,
 * with waiters but no token, with waiters but an expired lease, otherwise); held at an isolate
 * but not usable (above its target or lease state); granted by the object and on its way to the
 * isolate; returned by the isolate and on its way to the object; free at the object.
 */
export const SLOT_STATES = [
  "inUse",
  "freeNoDemand",
  "freeNoToken",
  "freeExpired",
  "freeOther",
  "heldUnusable",
  "toIsolate",
  "toObject",
  "atObject",
] as const;
export type SlotState = (typeof SLOT_STATES)[number];

/**
 * Where the tokens of the burst are: in the bucket; unspent at an isolate (with no waiters, with
 * waiters but no usable slot, otherwise); spent there but not yet reported; granted and on the
 * way; returned and on the way.
 */
export const TOKEN_STATES = [
  "bucket",
  "atIsolateNoDemand",
  "atIsolateNoSlot",
  "atIsolateOther",
  "spentUnreported",
  "toIsolate",
  "returnedUnreported",
] as const;
export type TokenState = (typeof TOKEN_STATES)[number];

export const SHED_KINDS = [...ADMISSION_SHED_REASONS, "unavailable"] as const;
export type ShedKind = (typeof SHED_KINDS)[number];

export interface TenantSpec {
  readonly name: string;
  readonly limits: AdmissionLimits;
  /** The tenant's deadline budget, also its coverMs (longest a slot may be in use). */
  readonly timeoutMs: number;
  /** Origin service time: uniform in mean x (1 +- jitter). */
  readonly serviceMs: { readonly mean: number; readonly jitter: number };
  readonly mix: readonly (readonly [Priority, number])[];
  readonly fullBehaviour: FullBehaviour;
}

export interface WorldConfig {
  readonly seed: number;
  readonly durationMs: number;
  readonly binMs: number;
  /** Object CPU per lease call and per long-poll wake-up: the object is single-threaded. */
  readonly objectCallMs: number;
  readonly objectWakeMs: number;
  readonly objectSkewMs: number;
  /** Validate every report with the protocol's zod schema, as the object does. */
  readonly parseReports: boolean;
  /** Also run the grant() calls the shortcut in servePending skips, and fail if one would grant. */
  readonly verifyShortcut: boolean;
  readonly phases: readonly { readonly name: string; readonly from: number; readonly to: number }[];
  readonly trace: TraceSpec | null;
}

export interface TraceSpec {
  readonly keys: ReadonlySet<string>;
  readonly from: number;
  readonly to: number;
  readonly sink: (line: string) => void;
}

export class Isolate {
  /** Upper bound of one message's one-way latency to the object (for the stranding bound). */
  readonly maxOneWayMs: number;

  constructor(
    readonly index: number,
    readonly latencyMs: number,
    readonly skewMs: number,
    private readonly rng: Rng,
  ) {
    this.maxOneWayMs = latencyMs * 1.1 + 8;
  }

  clock(simNow: number): number {
    return Math.floor(simNow) + this.skewMs;
  }

  /** Base latency with +-10% jitter and a small exponential tail (capped, so maxOneWayMs holds). */
  oneWay(): number {
    return this.latencyMs * uniform(this.rng, 0.9, 1.1) + Math.min(8, exponential(this.rng, 1));
  }
}

export interface Req {
  readonly id: string;
  readonly lt: Lt;
  readonly priority: Priority;
  readonly arrivedAt: number;
  readonly phase: number;
  holder: Holder | null;
  /** Queued while the lease was not valid: its admission waited for an object call. */
  asked: boolean;
  admittedClock: number;
}

export class Holder {
  lease: EdgeLease;
  readonly waiters = new Map<string, Req>();
  wakeGen = 0;
  wakeAt = Number.POSITIVE_INFINITY;
  /** Slots granted in the last answer the object sent it (cumulative). */
  answeredGranted = 0;
  /** The object's cumulative slots granted to it, as of the object's last task (0 once forgotten). */
  objGranted = 0;
  seenEpoch = -1;
  constructor(
    readonly id: string,
    readonly lt: Lt,
    now: number,
  ) {
    this.lease = newEdgeLease(id, now);
  }
}

/** Per-bin series of one isolate-tenant, kept for the isolates whose demand moves. */
export interface LtSeries {
  readonly held: Int16Array;
  readonly objHeld: Int16Array;
  readonly inUse: Int16Array;
  readonly waiting: Int16Array;
  readonly arrivals: Int32Array;
  readonly admitted: Int32Array;
}

/** One isolate's side of one tenant. */
export class Lt {
  holder: Holder | null = null;
  /** Its holders the object may still count (the current one, and older ones until forgotten). */
  holders: Holder[] = [];
  objHeld = 0;
  nextObjHeld = 0;
  inUse = 0;
  free = 0;
  starved = false;
  readonly stampT: number[] = [];
  readonly stampS: number[] = [];
  readonly calls: number[];
  readonly arrivals: number[];
  readonly admitted: number[];
  /** Simulated time of the first admission in each phase (NaN: none). */
  readonly firstAdmit: number[];
  maxStrandedMs = 0;
  series: LtSeries | null = null;

  constructor(
    readonly key: string,
    readonly iso: Isolate,
    readonly tenant: TenantRun,
    phases: number,
  ) {
    this.calls = new Array(phases).fill(0);
    this.arrivals = new Array(phases).fill(0);
    this.admitted = new Array(phases).fill(0);
    this.firstAdmit = new Array(phases).fill(Number.NaN);
  }
}

interface Pending {
  readonly holder: Holder;
  readonly until: number;
  readonly priority: number;
  readonly since: number;
}

type ObjectTask =
  | { readonly kind: "lease"; readonly report: LeaseReport; readonly from: Holder; readonly at: number }
  | { readonly kind: "wake"; readonly at: number };

export class ObjectSim {
  book: LeaseBook;
  counters: Counters = emptyCounters();
  readonly pending = new Map<string, Pending>();
  readonly byId = new Map<string, Holder>();
  readonly inbox: ObjectTask[] = [];
  inboxHead = 0;
  busy = false;
  taskEnd = 0;
  wakeGen = 0;
  // measurements
  busyMs = 0;
  maxQueueDelayMs = 0;
  queueDelaySum = 0;
  tasks = 0;
  cpuMs = 0;
  calls = 0;
  invalidReports = 0;
  firstInvalid: string | null = null;
  longPolls = 0;
  /** grant() calls the adapter makes (one per pending renewal at every servePending), and those run here. */
  adapterGrants = 0;
  shortcuts = 0;
  shortcutDrift = 0;
  grants = 0;
  grantMs = 0;
  longPollGranted = 0;
  longPollEmpty = 0;
  longPollMsSum = 0;
  reclaimedHolders = 0;
  reclaimedSlots = 0;
  maxSlotsOut = 0;
  maxTokensOverBurst = Number.NEGATIVE_INFINITY;
  slotsOverLimit = 0;
  tokensOverBurst = 0;

  constructor(
    readonly tenant: TenantRun,
    readonly skewMs: number,
  ) {
    this.book = emptyBook(tenant.spec.limits, this.clock(0));
  }

  clock(simNow: number): number {
    return Math.floor(simNow) + this.skewMs;
  }
}

export interface Failure {
  readonly what: string;
  readonly at: number;
  readonly key: string;
  readonly detail: string;
}

/** One tenant's run: its object, its isolate-tenants and what was measured. */
export class TenantRun {
  readonly object: ObjectSim;
  readonly lts: Lt[] = [];
  inUseSum = 0;
  maxInUseSum = 0;
  overshootMax = Number.NEGATIVE_INFINITY;
  starvedCount = 0;
  starvedIntegral = 0;
  starvedLastT = 0;
  areaInUse = 0;
  areaLastT = 0;
  edgeOverObject = 0;
  readonly failures: Failure[] = [];
  /** Slots' stranded durations (ms, while another isolate was starved), 1 ms buckets. */
  readonly strandedHist = new Int32Array(60_001);
  strandedWorst: { ms: number; key: string; at: number; boundMs: number } | null = null;
  strandedOverBound = 0;
  /** Over renewEveryMs + 3 one-way latencies: the period, the answer that lowers its target, the report that returns it. */
  strandedOverRoundTripBound = 0;
  strandedOverBoundWorst: { ms: number; key: string; at: number; boundMs: number } | null = null;
  strandedTotal = 0;
  readonly waits: number[][];
  readonly sheds: Record<ShedKind, number>[];
  readonly shedAtArrival: number[];
  readonly shedAfterWait: number[];
  readonly shedAfterAsking: number[];
  readonly arrivalsByPhase: number[];
  readonly admittedByPhase: number[];
  readonly askedByPhase: number[];
  spinWakes = 0;
  // per-bin series
  readonly binArrivals: Int32Array;
  readonly binAdmitted: Int32Array;
  readonly binCompleted: Int32Array;
  readonly binCalls: Int32Array;
  readonly binUtil: Float64Array;
  readonly binSlotsOut: Int16Array;
  readonly binTokens: Float64Array;
  readonly binWaiting: Int32Array;
  readonly binStarved: Int16Array;
  readonly binShed: Int32Array;
  readonly binBucket: Float64Array;
  /** Slots granted by the object per bin: how much capacity moves between isolates. */
  readonly binGrantedSlots: Int32Array;
  /** Where each of maxInFlight slots is at the end of each bin (see SLOT_STATES). */
  readonly binSlotStates: Record<SlotState, Int16Array>;
  readonly binTokenStates: Record<TokenState, Float64Array>;

  constructor(
    readonly spec: TenantSpec,
    bins: number,
    phases: number,
    objectSkewMs: number,
  ) {
    this.object = new ObjectSim(this, objectSkewMs);
    this.waits = Array.from({ length: phases }, () => []);
    this.sheds = Array.from(
      { length: phases },
      () => Object.fromEntries(SHED_KINDS.map((k) => [k, 0])) as Record<ShedKind, number>,
    );
    this.shedAtArrival = new Array(phases).fill(0);
    this.shedAfterWait = new Array(phases).fill(0);
    this.shedAfterAsking = new Array(phases).fill(0);
    this.arrivalsByPhase = new Array(phases).fill(0);
    this.admittedByPhase = new Array(phases).fill(0);
    this.askedByPhase = new Array(phases).fill(0);
    this.binArrivals = new Int32Array(bins);
    this.binAdmitted = new Int32Array(bins);
    this.binCompleted = new Int32Array(bins);
    this.binCalls = new Int32Array(bins);
    this.binUtil = new Float64Array(bins);
    this.binSlotsOut = new Int16Array(bins);
    this.binTokens = new Float64Array(bins);
    this.binWaiting = new Int32Array(bins);
    this.binStarved = new Int16Array(bins);
    this.binShed = new Int32Array(bins);
    this.binBucket = new Float64Array(bins);
    this.binGrantedSlots = new Int32Array(bins);
    this.binSlotStates = Object.fromEntries(SLOT_STATES.map((k) => [k, new Int16Array(bins)])) as Record<
      SlotState,
      Int16Array
    >;
    this.binTokenStates = Object.fromEntries(TOKEN_STATES.map((k) => [k, new Float64Array(bins)])) as Record<
      TokenState,
      Float64Array
    >;
  }

  strandedNow(t: number): number {
    return this.starvedIntegral + (this.starvedCount > 0 ? t - this.starvedLastT : 0);
  }
}

export interface Stream {
  readonly tenant: TenantRun;
  readonly lts: readonly Lt[];
  readonly rng: Rng;
  rate: number;
  pick: (() => number) | null;
  gen: number;
}

type Event =
  | { readonly kind: "arrive"; readonly stream: Stream; readonly gen: number }
  | { readonly kind: "done"; readonly req: Req }
  | { readonly kind: "report"; readonly object: ObjectSim; readonly holder: Holder; readonly report: LeaseReport }
  | { readonly kind: "objectFree"; readonly object: ObjectSim }
  | { readonly kind: "objectWake"; readonly object: ObjectSim; readonly gen: number }
  | { readonly kind: "answer"; readonly holder: Holder; readonly answer: LeaseAnswer | null }
  | { readonly kind: "leaseWake"; readonly holder: Holder; readonly gen: number }
  | { readonly kind: "heartbeat"; readonly holder: Holder }
  | { readonly kind: "sample" }
  | { readonly kind: "hook"; readonly run: () => void };

interface Scheduled {
  readonly t: number;
  readonly seq: number;
  readonly ev: Event;
}

const sumCounts = (counts: Readonly<Record<Priority, number>>) => PRIORITIES.reduce((n, p) => n + counts[p], 0);

export class World {
  now = 0;
  phase = 0;
  events = 0;
  private seq = 0;
  private readonly heap = new Heap<Scheduled>();
  readonly tenants: TenantRun[] = [];
  readonly bins: number;
  private readonly idRng: Rng;
  private readonly serviceRng: Rng;
  private reqSeq = 0;

  constructor(readonly config: WorldConfig) {
    this.bins = Math.ceil(config.durationMs / config.binMs) + 1;
    this.idRng = rngFor(config.seed, "ids");
    this.serviceRng = rngFor(config.seed, "service");
  }

  addTenant(spec: TenantSpec): TenantRun {
    const tenant = new TenantRun(spec, this.bins, this.config.phases.length, this.config.objectSkewMs);
    this.tenants.push(tenant);
    return tenant;
  }

  addLt(tenant: TenantRun, iso: Isolate, tracked: boolean): Lt {
    const lt = new Lt(`${tenant.spec.name}:${iso.index}`, iso, tenant, this.config.phases.length);
    if (tracked) {
      lt.series = {
        held: new Int16Array(this.bins),
        objHeld: new Int16Array(this.bins),
        inUse: new Int16Array(this.bins),
        waiting: new Int16Array(this.bins),
        arrivals: new Int32Array(this.bins),
        admitted: new Int32Array(this.bins),
      };
    }
    tenant.lts.push(lt);
    return lt;
  }

  at(t: number, ev: Event): void {
    this.heap.push({ t, seq: this.seq++, ev });
  }

  hook(t: number, run: () => void): void {
    this.at(t, { kind: "hook", run });
  }

  /** Sets a stream's rate and isolate weights from now on (arrivals are Poisson, so restarting is exact). */
  setStream(stream: Stream, rate: number, pick: (() => number) | null): void {
    stream.rate = rate;
    stream.pick = pick;
    stream.gen += 1;
    if (rate > 0 && pick)
      this.at(this.now + exponential(stream.rng, 1000 / rate), { kind: "arrive", stream, gen: stream.gen });
  }

  private bin(t = this.now): number {
    return Math.min(this.bins - 1, Math.floor(t / this.config.binMs));
  }

  private tracing(lt: Lt): boolean {
    const trace = this.config.trace;
    return trace !== null && this.now >= trace.from && this.now <= trace.to && trace.keys.has(lt.key);
  }

  private trace(lt: Lt, line: () => string): void {
    if (this.tracing(lt)) this.config.trace?.sink(`${this.now.toFixed(2).padStart(9)} ${lt.key.padEnd(10)} ${line()}`);
  }

  run(): void {
    this.at(this.config.binMs, { kind: "sample" });
    const end = this.config.durationMs;
    for (;;) {
      const next = this.heap.peek();
      if (!next || next.t > end) break;
      this.heap.pop();
      this.now = next.t;
      this.events += 1;
      this.dispatch(next.ev);
    }
    this.now = end;
    for (const tenant of this.tenants) for (const lt of tenant.lts) this.closeStamps(lt);
  }

  private dispatch(ev: Event): void {
    switch (ev.kind) {
      case "arrive":
        this.onArrive(ev.stream, ev.gen);
        return;
      case "done":
        this.onDone(ev.req);
        return;
      case "report":
        this.deliver(ev.object, { kind: "lease", report: ev.report, from: ev.holder, at: this.now });
        return;
      case "objectFree":
        ev.object.busy = false;
        this.runObject(ev.object);
        return;
      case "objectWake":
        if (ev.gen === ev.object.wakeGen) this.deliver(ev.object, { kind: "wake", at: this.now });
        return;
      case "answer":
        this.onAnswer(ev.holder, ev.answer);
        return;
      case "leaseWake":
        this.onLeaseWake(ev.holder, ev.gen);
        return;
      case "heartbeat":
        this.onHeartbeat(ev.holder);
        return;
      case "sample":
        this.onSample();
        return;
      case "hook":
        ev.run();
        return;
    }
  }

  // ---------------------------------------------------------------- traffic and origin

  private onArrive(stream: Stream, gen: number): void {
    if (gen !== stream.gen || !stream.pick) return;
    const lt = stream.lts[stream.pick()] as Lt;
    const priority = pickPriority(stream.tenant.spec.mix, stream.rng());
    this.at(this.now + exponential(stream.rng, 1000 / stream.rate), { kind: "arrive", stream, gen });
    const req: Req = {
      id: `r${this.reqSeq++}`,
      lt,
      priority,
      arrivedAt: this.now,
      phase: this.phase,
      holder: null,
      asked: false,
      admittedClock: 0,
    };
    const tenant = lt.tenant;
    tenant.arrivalsByPhase[this.phase] = (tenant.arrivalsByPhase[this.phase] ?? 0) + 1;
    tenant.binArrivals[this.bin()] = (tenant.binArrivals[this.bin()] ?? 0) + 1;
    lt.arrivals[this.phase] = (lt.arrivals[this.phase] ?? 0) + 1;
    if (lt.series) lt.series.arrivals[this.bin()] = (lt.series.arrivals[this.bin()] ?? 0) + 1;
    this.enter(lt, req);
  }

  private serviceMs(spec: TenantSpec): number {
    const { mean, jitter } = spec.serviceMs;
    return mean * uniform(this.serviceRng, 1 - jitter, 1 + jitter);
  }

  private admit(holder: Holder, req: Req): void {
    const lt = holder.lt;
    const tenant = lt.tenant;
    req.holder = holder;
    req.admittedClock = lt.iso.clock(this.now);
    const b = this.bin();
    tenant.binAdmitted[b] = (tenant.binAdmitted[b] ?? 0) + 1;
    tenant.admittedByPhase[req.phase] = (tenant.admittedByPhase[req.phase] ?? 0) + 1;
    if (req.asked) tenant.askedByPhase[req.phase] = (tenant.askedByPhase[req.phase] ?? 0) + 1;
    tenant.waits[req.phase]?.push(this.now - req.arrivedAt);
    lt.admitted[this.phase] = (lt.admitted[this.phase] ?? 0) + 1;
    if (Number.isNaN(lt.firstAdmit[this.phase])) lt.firstAdmit[this.phase] = this.now;
    if (lt.series) lt.series.admitted[b] = (lt.series.admitted[b] ?? 0) + 1;
    this.at(this.now + this.serviceMs(tenant.spec), { kind: "done", req });
  }

  private shed(req: Req, kind: ShedKind, atArrival: boolean): void {
    const tenant = req.lt.tenant;
    const sheds = tenant.sheds[req.phase];
    if (sheds) sheds[kind] += 1;
    if (atArrival) tenant.shedAtArrival[req.phase] = (tenant.shedAtArrival[req.phase] ?? 0) + 1;
    else if (req.asked) tenant.shedAfterAsking[req.phase] = (tenant.shedAfterAsking[req.phase] ?? 0) + 1;
    else tenant.shedAfterWait[req.phase] = (tenant.shedAfterWait[req.phase] ?? 0) + 1;
    tenant.binShed[this.bin()] = (tenant.binShed[this.bin()] ?? 0) + 1;
  }

  private onDone(req: Req): void {
    const holder = req.holder as Holder;
    const lt = holder.lt;
    const tenant = lt.tenant;
    tenant.binCompleted[this.bin()] = (tenant.binCompleted[this.bin()] ?? 0) + 1;
    const now = lt.iso.clock(this.now);
    holder.lease = finish(holder.lease, "completed", now - req.admittedClock);
    holder.lease = freeSlot(holder.lease, req.priority);
    this.pumpHolder(holder, now);
    this.kick(holder);
    this.afterEdge(holder);
  }

  // ---------------------------------------------------------------- the isolate's shell (src/edge/tenant-leases.ts)

  private limitsOf(holder: Holder): AdmissionLimits {
    return holder.lease.view?.limits ?? holder.lt.tenant.spec.limits;
  }

  private holderFor(lt: Lt, now: number): Holder {
    // A lease that gave everything back is done; its leaving answer may still be on its way.
    if (lt.holder && !lt.holder.lease.left) return lt.holder;
    const holder = new Holder(uuidLike(this.idRng), lt, now);
    lt.tenant.object.byId.set(holder.id, holder);
    lt.holder = holder;
    lt.holders.push(holder);
    this.trace(lt, () => `new holder ${holder.id.slice(0, 8)}`);
    return holder;
  }

  private enter(lt: Lt, req: Req): void {
    const tenant = lt.tenant;
    const spec = tenant.spec;
    const now = lt.iso.clock(this.now);
    const holder = this.holderFor(lt, now);
    this.pumpHolder(holder, now);
    const wasValid = isValid(holder.lease, now);
    const arrival: Arrival = {
      id: req.id,
      priority: req.priority,
      deadline: now + spec.timeoutMs,
      fullBehaviour: spec.fullBehaviour,
    };
    const result = arrive(holder.lease, this.limitsOf(holder), arrival, now);
    holder.lease = result.lease;
    for (const victim of result.evicted) {
      const waiter = holder.waiters.get(victim.id);
      holder.waiters.delete(victim.id);
      if (waiter) this.shed(waiter, "evicted", false);
    }
    this.kick(holder);
    const outcome = result.outcome;
    switch (outcome.kind) {
      case "admit":
        this.admit(holder, req);
        break;
      case "shed":
        this.shed(req, outcome.reason, true);
        break;
      case "unavailable":
        this.shed(req, "unavailable", true);
        break;
      case "queued":
        req.holder = holder;
        req.asked = !wasValid;
        holder.waiters.set(req.id, req);
        break;
    }
    this.afterEdge(holder);
  }

  private pumpHolder(holder: Holder, now: number): void {
    const result = pump(holder.lease, now);
    holder.lease = result.lease;
    for (const waiter of result.timedOut) {
      const req = holder.waiters.get(waiter.id);
      holder.waiters.delete(waiter.id);
      if (req) this.shed(req, "queue_timeout", false);
    }
    for (const waiter of result.granted) {
      const req = holder.waiters.get(waiter.id);
      holder.waiters.delete(waiter.id);
      if (req) this.admit(holder, req);
    }
  }

  /** Sends a renewal when one is due; at most one is on its way per lease. */
  private kick(holder: Holder): void {
    const lt = holder.lt;
    const now = lt.iso.clock(this.now);
    if (!renewalDue(holder.lease, now)) return;
    const started = startRenewal(holder.lease, this.limitsOf(holder), lt.tenant.spec.timeoutMs, now);
    holder.lease = started.lease;
    lt.calls[this.phase] = (lt.calls[this.phase] ?? 0) + 1;
    const b = this.bin();
    lt.tenant.binCalls[b] = (lt.tenant.binCalls[b] ?? 0) + 1;
    const r = started.report;
    this.trace(
      lt,
      () =>
        `send seq=${r.seq} ret=${r.slotsReturned} inUse=${sumCounts(r.inUse)} wait=${sumCounts(r.waiting)} wantT=${r.wantTokens} waitMs=${r.waitMs} leaving=${r.leaving} | edge granted=${holder.lease.slotsGranted} held=${heldSlots(holder.lease)} tok=${heldTokens(holder.lease)}`,
    );
    this.at(this.now + lt.iso.oneWay(), { kind: "report", object: lt.tenant.object, holder, report: started.report });
  }

  private onAnswer(holder: Holder, answer: LeaseAnswer | null): void {
    const lt = holder.lt;
    const now = lt.iso.clock(this.now);
    if (answer === null || answer.kind !== "lease") {
      const failed = renewalFailed(holder.lease, now);
      holder.lease = failed.lease;
      for (const waiter of failed.stranded) {
        const req = holder.waiters.get(waiter.id);
        holder.waiters.delete(waiter.id);
        if (req) this.shed(req, "unavailable", false);
      }
      this.trace(lt, () => "renewal failed");
      this.afterEdge(holder);
      return;
    }
    // While a renewal is out past renewAt, nextWakeAt is in the past: each waiter of the shell
    // sleeps max(1, wake - now) = 1 ms and wakes to find nothing to do.
    const spinFrom = Math.max(holder.lease.renewAt, holder.lease.sentAt);
    if (now > spinFrom) lt.tenant.spinWakes += (now - spinFrom) * holder.waiters.size;
    holder.lease = applyAnswer(holder.lease, answer);
    this.trace(
      lt,
      () =>
        `answer granted=${answer.slotsGranted} target=${answer.targetSlots} tokG=${answer.tokensGranted} renewIn=${answer.renewInMs} free=${answer.freeSlots}/${answer.freeTokens} | edge held=${heldSlots(holder.lease)} inUse=${inUseTotal(holder.lease)} q=${holder.lease.queue.length} left=${holder.lease.left}`,
    );
    if (holder.lease.left) {
      if (lt.holder === holder) lt.holder = null;
      this.afterEdge(holder);
      return;
    }
    this.pumpHolder(holder, now);
    const reassessed = reassess(holder.lease, now);
    holder.lease = reassessed.lease;
    for (const { waiter, reason } of reassessed.refused) {
      const req = holder.waiters.get(waiter.id);
      holder.waiters.delete(waiter.id);
      if (req) this.shed(req, reason, false);
    }
    this.kick(holder);
    this.heartbeat(holder);
    this.afterEdge(holder);
  }

  /** One wake-up at nextWakeAt after each answer (the shell's heartbeat); it does not re-arm itself. */
  private heartbeat(holder: Holder): void {
    if (holder.lease.renewing || holder.lease.left) return;
    const at = nextWakeAt(holder.lease);
    if (at === null) return;
    const now = holder.lt.iso.clock(this.now);
    this.at(this.now + Math.max(1, at - now), { kind: "heartbeat", holder });
  }

  private onHeartbeat(holder: Holder): void {
    const now = holder.lt.iso.clock(this.now);
    this.pumpHolder(holder, now);
    this.kick(holder);
    this.trace(holder.lt, () => `heartbeat renewing=${holder.lease.renewing}`);
    this.afterEdge(holder);
  }

  /**
   * The waiters' own loops, merged: while a lease has waiters, each sleeps until
   * min(its expiry, nextWakeAt) and then pumps and kicks. Their union is one wake-up at
   * nextWakeAt; the 1 ms polls while a late renewal is out change nothing and are only counted.
   */
  private scheduleLeaseWake(holder: Holder): void {
    if (holder.waiters.size === 0) {
      holder.wakeAt = Number.POSITIVE_INFINITY;
      return;
    }
    const now = holder.lt.iso.clock(this.now);
    const next = nextWakeAt(holder.lease) ?? Number.POSITIVE_INFINITY;
    let target: number;
    if (next > now) target = next;
    else if (holder.lease.renewing) target = earliestExpiry(holder.lease.queue) ?? Number.POSITIVE_INFINITY;
    else target = now + 1;
    if (!Number.isFinite(target)) return;
    const t = this.now + Math.max(1, target - now);
    if (holder.wakeAt > this.now && holder.wakeAt <= t) return;
    holder.wakeGen += 1;
    holder.wakeAt = t;
    this.at(t, { kind: "leaseWake", holder, gen: holder.wakeGen });
  }

  private onLeaseWake(holder: Holder, gen: number): void {
    if (gen !== holder.wakeGen) return;
    holder.wakeAt = Number.POSITIVE_INFINITY;
    if (holder.waiters.size === 0) return;
    this.pumpHolder(holder, holder.lt.iso.clock(this.now));
    this.kick(holder);
    this.afterEdge(holder);
  }

  private afterEdge(holder: Holder): void {
    this.scheduleLeaseWake(holder);
    this.observe(holder.lt);
  }

  // ---------------------------------------------------------------- the object's shell (src/tenant-guard.ts)

  private deliver(object: ObjectSim, task: ObjectTask): void {
    object.inbox.push(task);
    if (!object.busy) this.runObject(object);
  }

  private runObject(object: ObjectSim): void {
    const task = object.inbox[object.inboxHead];
    if (!task) return;
    object.inboxHead += 1;
    if (object.inboxHead > 1024) {
      object.inbox.splice(0, object.inboxHead);
      object.inboxHead = 0;
    }
    const cost = task.kind === "lease" ? this.config.objectCallMs : this.config.objectWakeMs;
    const delay = this.now - task.at;
    object.maxQueueDelayMs = Math.max(object.maxQueueDelayMs, delay);
    object.queueDelaySum += delay;
    object.tasks += 1;
    object.busy = true;
    object.busyMs += cost;
    object.taskEnd = this.now + cost;
    const started = performance.now();
    if (task.kind === "lease") this.lease(object, task.report, task.from);
    else this.servePending(object, object.clock(this.now));
    object.cpuMs += performance.now() - started;
    this.afterObject(object);
    this.at(object.taskEnd, { kind: "objectFree", object });
  }

  private reply(object: ObjectSim, holder: Holder, answer: LeaseAnswer | null): void {
    if (answer?.kind === "lease" && answer.slotsGranted > holder.answeredGranted) {
      const b = this.bin();
      object.tenant.binGrantedSlots[b] =
        (object.tenant.binGrantedSlots[b] ?? 0) + answer.slotsGranted - holder.answeredGranted;
      holder.answeredGranted = answer.slotsGranted;
    }
    this.at(object.taskEnd + holder.lt.iso.oneWay(), { kind: "answer", holder, answer });
  }

  private lease(object: ObjectSim, raw: LeaseReport, from: Holder): void {
    const limits = object.tenant.spec.limits;
    let report = raw;
    if (this.config.parseReports) {
      const parsed = leaseReportSchema.safeParse(raw);
      if (!parsed.success) {
        object.invalidReports += 1;
        object.firstInvalid ??= `${from.lt.key} at ${this.now.toFixed(1)} ms: ${parsed.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`;
        this.reply(object, from, null);
        return;
      }
      report = parsed.data;
    }
    const now = object.clock(this.now);
    object.calls += 1;
    object.counters = countCall(object.counters, "lease");
    object.book = this.reclaimed(object, now);
    const applied = applyReport(object.book, limits, report, now);
    object.book = applied.book;
    if (applied.kind === "applied") object.counters = countTally(object.counters, applied.delta);
    const prior = object.pending.get(report.holder);
    if (prior) {
      object.pending.delete(report.holder);
      object.adapterGrants += 1;
      const result = this.timedGrant(object, report.holder, now);
      object.book = result.book;
      this.reply(object, prior.holder, result.answer);
    }
    object.adapterGrants += 1;
    const result = this.timedGrant(object, report.holder, now);
    object.book = result.book;
    this.servePending(object, now);
    const waiting = sumCounts(report.waiting);
    this.trace(
      from.lt,
      () =>
        `object ${applied.kind} seq=${report.seq} granted+=${result.answer.kind === "lease" ? result.answer.slotsGranted : "-"} g=${result.granted} pending=${!(result.granted || report.leaving || report.waitMs === 0 || waiting === 0 || applied.kind === "full")}`,
    );
    if (result.granted || report.leaving || report.waitMs === 0 || waiting === 0 || applied.kind === "full") {
      this.reply(object, from, result.answer);
      return;
    }
    const priority = Math.max(...PRIORITIES.map((p, rank) => (report.waiting[p] > 0 ? rank : -1)));
    object.pending.set(report.holder, { holder: from, until: now + report.waitMs, priority, since: this.now });
    object.longPolls += 1;
    this.scheduleWake(object, now);
  }

  /** Grants to waiting renewals, highest waiting priority first; answers those whose wait ran out anyway. */
  private servePending(object: ObjectSim, now: number): void {
    const limits = object.tenant.spec.limits;
    if (object.pending.size > 0) {
      const order = [...object.pending.entries()].sort((a, b) => b[1].priority - a[1].priority);
      let view = bookView(object.book, now);
      for (const [id, waiting] of order) {
        object.adapterGrants += 1;
        // The adapter calls grant() for every pending renewal; most get nothing and the answer
        // it builds (O(holders)) is thrown away. The sim asks a cheaper predicate built from the
        // same pure pieces first, and checks it against grant() on a sample (all with --verify).
        if (waiting.until > now && this.shortcutOk(object) && !grantsSomething(view, limits, id, now)) {
          object.shortcuts += 1;
          if (this.config.verifyShortcut || object.shortcuts % 64 === 0) {
            if (this.timedGrant(object, id, now).granted) {
              object.shortcutDrift += 1;
              this.fail(
                object.tenant,
                "sim shortcut disagrees with grant(): shortcut turned off",
                id,
                "see grantsSomething() in bench/sim/world.ts",
              );
            }
          }
          continue;
        }
        const result = this.timedGrant(object, id, now);
        if (!result.granted && waiting.until > now) continue;
        object.book = result.book;
        object.pending.delete(id);
        if (result.granted) {
          object.longPollGranted += 1;
          view = bookView(object.book, now);
        } else object.longPollEmpty += 1;
        object.longPollMsSum += this.now - waiting.since;
        this.reply(object, waiting.holder, result.answer);
      }
    }
    this.scheduleWake(object, now);
  }

  private shortcutOk(object: ObjectSim): boolean {
    return object.shortcutDrift === 0;
  }

  private timedGrant(object: ObjectSim, id: string, now: number): ReturnType<typeof grant> {
    const started = performance.now();
    const result = grant(object.book, object.tenant.spec.limits, id, now);
    object.grantMs += performance.now() - started;
    object.grants += 1;
    return result;
  }

  private scheduleWake(object: ObjectSim, now: number): void {
    object.wakeGen += 1;
    let at: number | null = null;
    for (const { until } of object.pending.values()) at = at === null ? until : Math.min(at, until);
    if (at === null) return;
    this.at(this.now + Math.max(0, at - now), { kind: "objectWake", object, gen: object.wakeGen });
  }

  private reclaimed(object: ObjectSim, now: number): LeaseBook {
    const result = reclaimExpired(object.book, object.tenant.spec.limits, now);
    for (const h of result.reclaimed) {
      object.reclaimedHolders += 1;
      object.reclaimedSlots += slotsHeld(h);
      const holder = object.byId.get(h.id);
      if (holder)
        this.trace(
          holder.lt,
          () =>
            `object RECLAIMED holder ${h.id.slice(0, 8)} slots=${slotsHeld(h)} granted=${h.slotsGranted} returned=${h.slotsReturned}`,
        );
    }
    return result.book;
  }

  /** The totals' invariants, and what each isolate holds in the object's view. */
  private afterObject(object: ObjectSim): void {
    const tenant = object.tenant;
    const limits = tenant.spec.limits;
    const out = slotsOut(object.book);
    object.maxSlotsOut = Math.max(object.maxSlotsOut, out);
    if (out > limits.maxInFlight) {
      object.slotsOverLimit += 1;
      this.fail(tenant, "slots out above maxInFlight", "object", `slotsOut=${out} > ${limits.maxInFlight}`);
    }
    const tokens = object.book.bucket.tokens + tokensOut(object.book);
    object.maxTokensOverBurst = Math.max(object.maxTokensOverBurst, tokens - limits.burst);
    if (tokens > limits.burst + 1e-6) {
      object.tokensOverBurst += 1;
      this.fail(
        tenant,
        "bucket + tokens out above burst",
        "object",
        `bucket+out=${tokens.toFixed(3)} > ${limits.burst}`,
      );
    }
    const epoch = object.tasks;
    for (const lt of tenant.lts) lt.nextObjHeld = 0;
    for (const h of object.book.holders) {
      const holder = object.byId.get(h.id);
      if (!holder) continue;
      holder.lt.nextObjHeld += slotsHeld(h);
      holder.seenEpoch = epoch;
      holder.objGranted = h.slotsGranted;
    }
    for (const lt of tenant.lts) {
      let changed = lt.nextObjHeld !== lt.objHeld;
      for (const holder of lt.holders) {
        if (holder.seenEpoch !== epoch && holder.objGranted !== 0) {
          holder.objGranted = 0;
          changed = true;
        }
      }
      if (lt.holders.length > 1) lt.holders = lt.holders.filter((h) => h.seenEpoch === epoch || h === lt.holder);
      if (changed) {
        lt.objHeld = lt.nextObjHeld;
        this.observe(lt);
      }
    }
  }

  // ---------------------------------------------------------------- measurement

  private fail(tenant: TenantRun, what: string, key: string, detail: string): void {
    if (tenant.failures.filter((f) => f.what === what).length < 5)
      tenant.failures.push({ what, at: this.now, key, detail });
  }

  /** Re-reads one isolate-tenant after anything touched it: overshoot, safety, starvation and stranding. */
  private observe(lt: Lt): void {
    const tenant = lt.tenant;
    const holder = lt.holder;
    const lease = holder?.lease ?? null;
    const inUse = lease ? inUseTotal(lease) : 0;
    const t = this.now;

    if (inUse !== lt.inUse) {
      tenant.areaInUse += tenant.inUseSum * (t - tenant.areaLastT);
      tenant.areaLastT = t;
      tenant.inUseSum += inUse - lt.inUse;
      lt.inUse = inUse;
      if (tenant.inUseSum > tenant.maxInUseSum) tenant.maxInUseSum = tenant.inUseSum;
      const over = tenant.inUseSum - tenant.spec.limits.maxInFlight;
      if (over > tenant.overshootMax) tenant.overshootMax = over;
      if (over > 0)
        this.fail(
          tenant,
          "overshoot: in use across isolates above maxInFlight",
          lt.key,
          `in use ${tenant.inUseSum} > ${tenant.spec.limits.maxInFlight}`,
        );
    }
    if (inUse > lt.objHeld) {
      tenant.edgeOverObject += 1;
      this.fail(
        tenant,
        "an isolate has more in use than the object counts it holding",
        lt.key,
        `in use ${inUse} > held per object ${lt.objHeld} (edge granted ${lease?.slotsGranted}, returned ${lease?.slotsReturned})`,
      );
    }

    const usable = lease ? Math.min(heldSlots(lease), lease.targetSlots) - inUse : 0;
    // Starved for a slot: waiters, no usable slot, and a slot would let it admit (it holds a
    // token, or has no valid lease yet and asks for both). A lease short of tokens only is not.
    const starved =
      (holder?.waiters.size ?? 0) > 0 &&
      usable <= 0 &&
      lease !== null &&
      (heldTokens(lease) >= 1 || !isValid(lease, lt.iso.clock(t)));
    const S = tenant.strandedNow(t);
    if (starved !== lt.starved) {
      tenant.starvedIntegral = S;
      tenant.starvedLastT = t;
      tenant.starvedCount += starved ? 1 : -1;
      lt.starved = starved;
    }

    // Free slots this isolate keeps: counted out to it by the object, not in use, and not still on
    // their way to it (a grant in flight is the object's latency, not the isolate keeping it).
    let toIsolate = 0;
    for (const h of lt.holders) toIsolate += Math.max(0, h.objGranted - h.lease.slotsGranted);
    const free = Math.max(0, lt.objHeld - inUse - toIsolate);
    if (free > lt.free) {
      for (let k = lt.free; k < free; k += 1) {
        lt.stampT.push(t);
        lt.stampS.push(S);
      }
    } else if (free < lt.free) {
      for (let k = free; k < lt.free; k += 1) this.closeStamp(lt, S);
    }
    lt.free = free;
  }

  private closeStamp(lt: Lt, S: number): void {
    const since = lt.stampS.shift();
    const from = lt.stampT.shift();
    if (since === undefined || from === undefined) return;
    const tenant = lt.tenant;
    const ms = S - since;
    tenant.strandedTotal += 1;
    const bucket = Math.min(tenant.strandedHist.length - 1, Math.max(0, Math.round(ms)));
    tenant.strandedHist[bucket] = (tenant.strandedHist[bucket] ?? 0) + 1;
    if (ms > lt.maxStrandedMs) lt.maxStrandedMs = ms;
    const boundMs = LEASE_TIMING.renewEveryMs + lt.iso.maxOneWayMs;
    if (!tenant.strandedWorst || ms > tenant.strandedWorst.ms)
      tenant.strandedWorst = { ms, key: lt.key, at: from, boundMs };
    if (ms > LEASE_TIMING.renewEveryMs + 3 * lt.iso.maxOneWayMs) tenant.strandedOverRoundTripBound += 1;
    if (ms > boundMs) {
      tenant.strandedOverBound += 1;
      if (
        !tenant.strandedOverBoundWorst ||
        ms - boundMs > tenant.strandedOverBoundWorst.ms - tenant.strandedOverBoundWorst.boundMs
      ) {
        tenant.strandedOverBoundWorst = { ms, key: lt.key, at: from, boundMs };
      }
    }
  }

  private closeStamps(lt: Lt): void {
    const S = lt.tenant.strandedNow(this.now);
    while (lt.stampT.length > 0) this.closeStamp(lt, S);
  }

  private sampleSlotStates(tenant: TenantRun, b: number): void {
    const book = tenant.object.book;
    const states = Object.fromEntries(SLOT_STATES.map((k) => [k, 0])) as Record<SlotState, number>;
    states.atObject = tenant.spec.limits.maxInFlight - slotsOut(book);
    const tokens = Object.fromEntries(TOKEN_STATES.map((k) => [k, 0])) as Record<TokenState, number>;
    tokens.bucket = book.bucket.tokens;
    for (const h of book.holders) {
      const holder = tenant.object.byId.get(h.id);
      if (!holder) continue;
      const l = holder.lease;
      states.toIsolate += Math.max(0, h.slotsGranted - l.slotsGranted);
      states.toObject += Math.max(0, l.slotsReturned - h.slotsReturned);
      tokens.toIsolate += Math.max(0, h.tokensGranted - l.tokensGranted);
      tokens.spentUnreported += Math.max(0, l.tokensSpent - h.tokensSpent);
      tokens.returnedUnreported += Math.max(0, l.tokensReturned - h.tokensReturned);
      const unspent = Math.max(0, heldTokens(l));
      const usable = Math.min(heldSlots(l), l.targetSlots) - inUseTotal(l);
      if (l.queue.length === 0) tokens.atIsolateNoDemand += unspent;
      else if (usable <= 0) tokens.atIsolateNoSlot += unspent;
      else tokens.atIsolateOther += unspent;
    }
    for (const k of TOKEN_STATES) tenant.binTokenStates[k][b] = tokens[k];
    for (const lt of tenant.lts) {
      const holder = lt.holder;
      if (!holder) continue;
      const l = holder.lease;
      const inUse = inUseTotal(l);
      const held = heldSlots(l);
      const usable = Math.max(0, Math.min(held, l.targetSlots) - inUse);
      states.inUse += inUse;
      states.heldUnusable += Math.max(0, held - inUse - usable);
      if (usable === 0) continue;
      const now = lt.iso.clock(this.now);
      if (l.queue.length === 0) states.freeNoDemand += usable;
      else if (!isValid(l, now)) states.freeExpired += usable;
      else if (heldTokens(l) < 1) states.freeNoToken += usable;
      else states.freeOther += usable;
    }
    for (const k of SLOT_STATES) tenant.binSlotStates[k][b] = states[k];
  }

  private onSample(): void {
    const b = this.bin(this.now - 1e-9);
    for (const tenant of this.tenants) {
      tenant.areaInUse += tenant.inUseSum * (this.now - tenant.areaLastT);
      tenant.areaLastT = this.now;
      tenant.binUtil[b] = tenant.areaInUse / (this.config.binMs * tenant.spec.limits.maxInFlight);
      tenant.areaInUse = 0;
      tenant.binSlotsOut[b] = slotsOut(tenant.object.book);
      tenant.binTokens[b] = tenant.object.book.bucket.tokens + tokensOut(tenant.object.book);
      tenant.binBucket[b] = tenant.object.book.bucket.tokens;
      this.sampleSlotStates(tenant, b);
      let waiting = 0;
      for (const lt of tenant.lts) {
        const lease = lt.holder?.lease;
        waiting += lease?.queue.length ?? 0;
        const s = lt.series;
        if (s) {
          s.held[b] = lease ? heldSlots(lease) : 0;
          s.objHeld[b] = lt.objHeld;
          s.inUse[b] = lt.inUse;
          s.waiting[b] = lease?.queue.length ?? 0;
        }
      }
      tenant.binWaiting[b] = waiting;
      tenant.binStarved[b] = tenant.starvedCount;
    }
    this.at(this.now + this.config.binMs, { kind: "sample" });
  }
}

interface BookView {
  readonly book: LeaseBook;
  readonly byId: ReadonlyMap<string, HolderLease>;
  /** Demand (in use + waiting) of the holders whose lease is valid now. */
  readonly activeDemand: number;
  readonly slotsOut: number;
  readonly tokensOut: number;
}

const demandOf = (h: HolderLease) => sumCounts(h.inUse) + sumCounts(h.waiting);

function bookView(book: LeaseBook, now: number): BookView {
  let activeDemand = 0;
  for (const h of book.holders) if (h.validUntil > now) activeDemand += demandOf(h);
  return {
    book,
    byId: new Map(book.holders.map((h) => [h.id, h])),
    activeDemand,
    slotsOut: slotsOut(book),
    tokensOut: tokensOut(book),
  };
}

/**
 * Whether grant(book, limits, id, now) would grant anything, without building its answer: a
 * token when the holder still wants one and the refilled bucket has a whole one; a slot when
 * one is free and the holder's target (it asking first, active holders after) is above what it
 * holds. When demand fills the limit there is no spare, and no share exceeds its own demand, so
 * a holder holding its demand gets no slot. Mirrors the decision part of grant(); World checks
 * it against grant() on a sample of calls (all of them with --verify).
 */
function grantsSomething(view: BookView, limits: AdmissionLimits, id: string, now: number): boolean {
  const holder = view.byId.get(id);
  if (!holder) return false;
  const capacity = Math.max(0, limits.burst - view.tokensOut);
  const available = Math.floor(refill(view.book.bucket, { rate: limits.rate, burst: capacity }, now).tokens);
  if (available >= 1 && holder.wantTokens - tokensHeld(holder) >= 1) return true;
  if (limits.maxInFlight - view.slotsOut <= 0) return false;
  const own = demandOf(holder);
  const total = view.activeDemand + (holder.validUntil > now ? 0 : own);
  if (total >= limits.maxInFlight && own <= slotsHeld(holder)) return false;
  const ordered = [holder, ...view.book.holders.filter((h) => h.validUntil > now && h.id !== id)];
  const [target = 0] = slotTargets(ordered, limits.maxInFlight);
  return target - slotsHeld(holder) > 0;
}

function pickPriority(mix: readonly (readonly [Priority, number])[], u: number): Priority {
  let acc = 0;
  for (const [priority, share] of mix) {
    acc += share;
    if (u < acc) return priority;
  }
  return (mix[mix.length - 1] as readonly [Priority, number])[0];
}
