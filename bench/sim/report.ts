/** Turns one simulated run into figures (JSON) and a readable report (Markdown). */
import { ADMISSION_SHED_REASONS } from "../../src/admission/shed-reason";
import { LEASE_TIMING } from "../../src/lease/lease-protocol";
import { slotsOut, tokensOut } from "../../src/lease/lease-book";
import type { Probe } from "./probes";
import type { Built, Cell, Layout, Phase } from "./scenario";

const cellLimit = (c: { readonly flood: { readonly maxInFlightLimit: number } }) => c.flood.maxInFlightLimit;
import {
  type Lt,
  SHED_KINDS,
  SLOT_STATES,
  type ShedKind,
  type SlotState,
  TOKEN_STATES,
  type TenantRun,
  type TokenState,
} from "./world";

const round = (x: number, digits = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);
const sumOf = (xs: Iterable<number>) => {
  let s = 0;
  for (const x of xs) s += x;
  return s;
};
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
function histQuantile(hist: Int32Array, total: number, q: number): number {
  if (total === 0) return 0;
  const want = q * total;
  let acc = 0;
  for (let i = 0; i < hist.length; i += 1) {
    acc += hist[i] as number;
    if (acc >= want) return i;
  }
  return hist.length - 1;
}

export interface PhaseFigures {
  readonly phase: string;
  readonly seconds: number;
  readonly arrivalsPerS: number;
  readonly admittedPerS: number;
  readonly successRate: number;
  readonly completedPerS: number;
  readonly goodputOfCapacity: number | null;
  readonly utilisation: { readonly mean: number; readonly p5: number; readonly p50: number; readonly max: number };
  readonly slotsOutMean: number;
  /** Mean number of the maxInFlight slots in each state (see SLOT_STATES in world.ts). */
  readonly slotStates: Record<SlotState, number>;
  /** Slots the object granted per second: capacity moving between isolates. */
  readonly slotsGrantedPerS: number;
  /** Mean tokens of the burst in each state (see TOKEN_STATES in world.ts). */
  readonly tokenStates: Record<TokenState, number>;
  readonly bucketMean: number;
  readonly objectCallsPerS: number;
  readonly objectCallsPerArrival: number;
  readonly perIsolateCallsPerS: {
    readonly isolates: number;
    readonly p50: number;
    readonly p90: number;
    readonly max: number;
    readonly maxKey: string;
  };
  readonly waitMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly admittedAfterAsking: number;
  readonly sheds: Record<ShedKind, number>;
  readonly shedTotal: number;
  readonly shedAtArrivalShare: number;
  readonly shedAfterWaitShare: number;
}

function phaseFigures(
  tenant: TenantRun,
  phases: readonly Phase[],
  index: number,
  binMs: number,
  capacityPerS: number | null,
): PhaseFigures {
  const phase = phases[index] as Phase;
  const seconds = (phase.to - phase.from) / 1000;
  const settle = index === phases.length - 1 ? 0 : Math.min(2_000, (phase.to - phase.from) / 4);
  const fromBin = Math.floor((phase.from + settle) / binMs);
  const toBin = Math.floor(phase.to / binMs);
  const windowS = ((toBin - fromBin) * binMs) / 1000;
  const util = Array.from(tenant.binUtil.slice(fromBin, toBin)).sort((a, b) => a - b);
  const completed = sumOf(tenant.binCompleted.slice(fromBin, toBin));
  const arrivals = tenant.arrivalsByPhase[index] ?? 0;
  const admitted = tenant.admittedByPhase[index] ?? 0;
  const calls = sumOf(tenant.lts.map((lt) => lt.calls[index] ?? 0));
  const perLt = tenant.lts
    .filter((lt) => (lt.arrivals[index] ?? 0) > 0 || (lt.calls[index] ?? 0) > 0)
    .map((lt) => ({ key: lt.key, perS: (lt.calls[index] ?? 0) / seconds }))
    .sort((a, b) => a.perS - b.perS);
  const waits = [...(tenant.waits[index] ?? [])].sort((a, b) => a - b);
  const sheds = tenant.sheds[index] as Record<ShedKind, number>;
  const shedTotal = sumOf(Object.values(sheds));
  const last = perLt[perLt.length - 1];
  const completedPerS = windowS > 0 ? completed / windowS : 0;
  return {
    phase: phase.name,
    seconds,
    arrivalsPerS: round(arrivals / seconds),
    admittedPerS: round(admitted / seconds),
    successRate: arrivals > 0 ? round(admitted / arrivals, 4) : Number.NaN,
    completedPerS: round(completedPerS),
    goodputOfCapacity: capacityPerS ? round(completedPerS / capacityPerS, 3) : null,
    utilisation: {
      mean: round(util.length ? sumOf(util) / util.length : 0, 3),
      p5: round(quantile(util, 0.05), 3),
      p50: round(quantile(util, 0.5), 3),
      max: round(util[util.length - 1] ?? 0, 3),
    },
    slotsOutMean: round(sumOf(tenant.binSlotsOut.slice(fromBin, toBin)) / Math.max(1, toBin - fromBin)),
    slotStates: Object.fromEntries(
      SLOT_STATES.map((k) => [
        k,
        round(sumOf(tenant.binSlotStates[k].slice(fromBin, toBin)) / Math.max(1, toBin - fromBin)),
      ]),
    ) as Record<SlotState, number>,
    tokenStates: Object.fromEntries(
      TOKEN_STATES.map((k) => [
        k,
        round(sumOf(tenant.binTokenStates[k].slice(fromBin, toBin)) / Math.max(1, toBin - fromBin)),
      ]),
    ) as Record<TokenState, number>,
    slotsGrantedPerS: round(windowS > 0 ? sumOf(tenant.binGrantedSlots.slice(fromBin, toBin)) / windowS : 0),
    bucketMean: round(sumOf(tenant.binBucket.slice(fromBin, toBin)) / Math.max(1, toBin - fromBin)),
    objectCallsPerS: round(calls / seconds),
    objectCallsPerArrival: arrivals > 0 ? round(calls / arrivals, 4) : Number.NaN,
    perIsolateCallsPerS: {
      isolates: perLt.length,
      p50: round(
        quantile(
          perLt.map((x) => x.perS),
          0.5,
        ),
      ),
      p90: round(
        quantile(
          perLt.map((x) => x.perS),
          0.9,
        ),
      ),
      max: round(last?.perS ?? 0),
      maxKey: last?.key ?? "-",
    },
    waitMs: {
      p50: round(quantile(waits, 0.5)),
      p99: round(quantile(waits, 0.99)),
      max: round(waits[waits.length - 1] ?? 0),
    },
    admittedAfterAsking: tenant.askedByPhase[index] ?? 0,
    sheds,
    shedTotal,
    shedAtArrivalShare: shedTotal > 0 ? round((tenant.shedAtArrival[index] ?? 0) / shedTotal, 4) : Number.NaN,
    shedAfterWaitShare:
      shedTotal > 0
        ? round(((tenant.shedAfterWait[index] ?? 0) + (tenant.shedAfterAsking[index] ?? 0)) / shedTotal, 4)
        : Number.NaN,
  };
}

export interface Follow {
  readonly key: string;
  readonly latencyMs: number;
  readonly arrivalsPerS: number;
  /** maxInFlight x its share of the tenant's arrivals: the share if slots followed arrivals. */
  readonly proportionalSlots: number;
  /** Mean slots it held over the second half of the phase: the share the protocol converged to. */
  readonly convergedSlots: number;
  readonly firstAdmitMs: number | null;
  readonly held50Ms: number | null;
  readonly held90Ms: number | null;
  /** Until its admitted/arrived ratio (per 100 ms) first reached 90% of its converged ratio. */
  readonly served90Ms: number | null;
  readonly convergedSuccess: number;
}

function follow(
  lt: Lt,
  phases: readonly Phase[],
  index: number,
  binMs: number,
  maxInFlight: number,
  tenantArrivals: number,
): Follow | null {
  const s = lt.series;
  const phase = phases[index] as Phase;
  if (!s) return null;
  const fromBin = Math.floor(phase.from / binMs);
  const toBin = Math.floor(phase.to / binMs);
  const half = fromBin + Math.floor((toBin - fromBin) / 2);
  const converged = sumOf(s.held.slice(half, toBin)) / Math.max(1, toBin - half);
  const arr = sumOf(s.arrivals.slice(half, toBin));
  const ratio = arr > 0 ? sumOf(s.admitted.slice(half, toBin)) / arr : 0;
  const firstBin = (pred: (b: number) => boolean) => {
    for (let b = fromBin; b < toBin; b += 1) if (pred(b)) return (b + 1) * binMs - phase.from;
    return null;
  };
  const seconds = (phase.to - phase.from) / 1000;
  const arrivals = lt.arrivals[index] ?? 0;
  const first = lt.firstAdmit[index] as number;
  return {
    key: lt.key,
    latencyMs: round(lt.iso.latencyMs),
    arrivalsPerS: round(arrivals / seconds),
    proportionalSlots: round((maxInFlight * arrivals) / Math.max(1, tenantArrivals)),
    convergedSlots: round(converged),
    firstAdmitMs: Number.isNaN(first) ? null : round(first - phase.from),
    held50Ms: converged > 0 ? firstBin((b) => (s.held[b] as number) >= 0.5 * converged) : null,
    held90Ms: converged > 0 ? firstBin((b) => (s.held[b] as number) >= 0.9 * converged) : null,
    served90Ms:
      ratio > 0
        ? firstBin(
            (b) =>
              (s.arrivals[b] as number) > 0 && (s.admitted[b] as number) / (s.arrivals[b] as number) >= 0.9 * ratio,
          )
        : null,
    convergedSuccess: round(ratio, 3),
  };
}

export interface Release {
  readonly key: string;
  readonly latencyMs: number;
  readonly heldAtStart: number;
  /** Until the object counted it holding nothing, for good (null: still holding at the phase end). */
  readonly releasedMs: number | null;
  readonly heldAtEnd: number;
}

function release(lt: Lt, phases: readonly Phase[], index: number, binMs: number): Release | null {
  const s = lt.series;
  const phase = phases[index] as Phase;
  if (!s) return null;
  const fromBin = Math.floor(phase.from / binMs);
  const toBin = Math.floor(phase.to / binMs);
  let b = toBin - 1;
  while (b >= fromBin && (s.objHeld[b] as number) === 0) b -= 1;
  const heldAtEnd = s.objHeld[toBin - 1] as number;
  return {
    key: lt.key,
    latencyMs: round(lt.iso.latencyMs),
    heldAtStart: s.objHeld[Math.max(0, fromBin - 1)] as number,
    releasedMs: heldAtEnd === 0 ? (b + 2) * binMs - phase.from : null,
    heldAtEnd,
  };
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly safety: boolean;
  readonly detail: string;
}

function tenantFigures(
  tenant: TenantRun,
  phases: readonly Phase[],
  binMs: number,
  capacityPerS: number | null,
  durationMs: number,
) {
  const o = tenant.object;
  const stranded = {
    slots: tenant.strandedTotal,
    p50Ms: histQuantile(tenant.strandedHist, tenant.strandedTotal, 0.5),
    p99Ms: histQuantile(tenant.strandedHist, tenant.strandedTotal, 0.99),
    p999Ms: histQuantile(tenant.strandedHist, tenant.strandedTotal, 0.999),
    maxMs: round(tenant.strandedWorst?.ms ?? 0),
    worst: tenant.strandedWorst,
    overBound: tenant.strandedOverBound,
    overRoundTripBound: tenant.strandedOverRoundTripBound,
    overBoundWorst: tenant.strandedOverBoundWorst,
  };
  const counters = o.counters;
  const simArrived = sumOf(tenant.arrivalsByPhase);
  const simAdmitted = sumOf(tenant.admittedByPhase);
  const simShed: Record<string, number> = {};
  for (const r of ADMISSION_SHED_REASONS) simShed[r] = sumOf(tenant.sheds.map((s) => s[r]));
  return {
    maxInFlightLimit: tenant.spec.limits.maxInFlight,
    phases: phases.map((_, i) => phaseFigures(tenant, phases, i, binMs, capacityPerS)),
    overshootMax: tenant.overshootMax,
    maxInUse: tenant.maxInUseSum,
    maxSlotsOut: o.maxSlotsOut,
    maxBucketPlusOutMinusBurst: round(o.maxTokensOverBurst, 3),
    edgeInUseAboveObjectHeld: tenant.edgeOverObject,
    stranded,
    object: {
      calls: o.calls,
      busyShare: round(o.busyMs / durationMs, 4),
      meanQueueDelayMs: round(o.queueDelaySum / Math.max(1, o.tasks), 3),
      maxQueueDelayMs: round(o.maxQueueDelayMs, 2),
      cpuPerCallUs: round((o.cpuMs * 1000) / Math.max(1, o.tasks), 1),
      adapterGrantsPerCall: round(o.adapterGrants / Math.max(1, o.calls), 1),
      grantsRunPerCall: round(o.grants / Math.max(1, o.calls), 1),
      shortcutDrift: o.shortcutDrift,
      grantUs: round((o.grantMs * 1000) / Math.max(1, o.grants), 1),
      /** The adapter as written calls grant() adapterGrantsPerCall times a call: its CPU per call at the measured grant() cost. */
      adapterMsPerCallEstimate: round(
        (o.adapterGrants * (o.grantMs / Math.max(1, o.grants))) / Math.max(1, o.calls),
        2,
      ),
      adapterBusyShareEstimate: round((o.adapterGrants * (o.grantMs / Math.max(1, o.grants))) / durationMs, 2),
      longPolls: o.longPolls,
      longPollGranted: o.longPollGranted,
      longPollEmpty: o.longPollEmpty,
      longPollMeanMs: round(o.longPollMsSum / Math.max(1, o.longPollGranted + o.longPollEmpty)),
      reclaimedHolders: o.reclaimedHolders,
      reclaimedSlots: o.reclaimedSlots,
      invalidReports: o.invalidReports,
      firstInvalid: o.firstInvalid,
      atEnd: { holders: o.book.holders.length, slotsOut: slotsOut(o.book), tokensOut: tokensOut(o.book) },
    },
    shellSpinWakesPerS: round(tenant.spinWakes / (durationMs / 1000)),
    counters: {
      object: {
        arrived: counters.arrived,
        admitted: counters.admitted,
        shedByReason: counters.shedByReason,
        shedAtEdge: counters.shedAtEdge,
        released: counters.released,
      },
      sim: {
        arrived: simArrived,
        admitted: simAdmitted,
        shedByReason: simShed,
        unavailable: sumOf(tenant.sheds.map((s) => s.unavailable)),
      },
    },
    failures: tenant.failures,
  };
}

function figuresOf(
  cell: Cell,
  built: Built,
  phases: readonly Phase[],
  binMs: number,
  durationMs: number,
  wallMs: number,
  events: number,
) {
  const [flood, quiet] = built.world.tenants as [TenantRun, TenantRun];
  const maxInFlight = cell.flood.limits.maxInFlight;
  const floodArr = (i: number) => flood.arrivalsByPhase[i] ?? 0;
  const figures = {
    cell: cell.name,
    title: cell.title,
    capacityPerS: cell.capacityPerS,
    wallMs: Math.round(wallMs),
    events,
    flood: tenantFigures(flood, phases, binMs, cell.capacityPerS, durationMs),
    quiet: tenantFigures(quiet, phases, binMs, null, durationMs),
    follow: {
      newIsolatesWhenMoved: built.newLts.map((lt) => follow(lt, phases, 1, binMs, maxInFlight, floodArr(1))),
      hotIsolatesWhenBack: built.movedLts.map((lt) => follow(lt, phases, 2, binMs, maxInFlight, floodArr(2))),
      hotIsolatesGoingQuiet: built.movedLts.map((lt) => release(lt, phases, 1, binMs)),
      newIsolatesGoingQuiet: built.newLts.map((lt) => release(lt, phases, 2, binMs)),
    },
    leasesAtEnd: built.flood
      .concat(built.quiet)
      .filter((lt) => lt.holder && !lt.holder.lease.left)
      .map((lt) => {
        const l = (lt.holder as NonNullable<Lt["holder"]>).lease;
        return `${lt.key}: not left; slots granted ${l.slotsGranted} returned ${l.slotsReturned}, tokens held ${l.tokensGranted - l.tokensSpent - l.tokensReturned}, renewing ${l.renewing}, queue ${l.queue.length}, in use ${lt.inUse}, last sent ${l.sentAt - lt.iso.skewMs} ms (sim)`;
      }),
    series: perSecond(flood, built, binMs, durationMs),
    quietSeries: perSecond(quiet, built, binMs, durationMs),
  };
  return figures;
}

type Figures = ReturnType<typeof figuresOf>;
export type CellFigures = Figures & { readonly checks: Check[] };

export function summarise(
  cell: Cell,
  built: Built,
  phases: readonly Phase[],
  binMs: number,
  durationMs: number,
  wallMs: number,
  events: number,
): CellFigures {
  const figures = figuresOf(cell, built, phases, binMs, durationMs, wallMs, events);
  return { ...figures, checks: checks(figures, cell) };
}

function perSecond(tenant: TenantRun, built: Built, binMs: number, durationMs: number) {
  const perS = 1000 / binMs;
  const rows = [];
  const isFlood = tenant.spec.name === "flood";
  for (let s = 0; s * 1000 < durationMs; s += 1) {
    const from = s * perS;
    const to = Math.min(tenant.binUtil.length, from + perS);
    const slice = <T extends ArrayLike<number>>(a: T) => Array.from(a as ArrayLike<number>).slice(from, to);
    const mean = (a: number[]) => (a.length ? sumOf(a) / a.length : 0);
    const last = to - 1;
    rows.push({
      s,
      util: round(mean(slice(tenant.binUtil)), 3),
      slotsOut: tenant.binSlotsOut[last] ?? 0,
      tokens: round(tenant.binTokens[last] ?? 0),
      waiting: tenant.binWaiting[last] ?? 0,
      starved: tenant.binStarved[last] ?? 0,
      arrivals: sumOf(slice(tenant.binArrivals)),
      admitted: sumOf(slice(tenant.binAdmitted)),
      completed: sumOf(slice(tenant.binCompleted)),
      calls: sumOf(slice(tenant.binCalls)),
      sheds: sumOf(slice(tenant.binShed)),
      newHeld: isFlood ? sumOf(built.newLts.map((lt) => lt.series?.objHeld[last] ?? 0)) : null,
      movedHeld: isFlood ? sumOf(built.movedLts.map((lt) => lt.series?.objHeld[last] ?? 0)) : null,
    });
  }
  return rows;
}

function checks(f: Figures, cell: Cell): Check[] {
  const out: Check[] = [];
  for (const [name, t, limits] of [
    ["flood", f.flood, cell.flood.limits],
    ["quiet", f.quiet, cell.quiet.limits],
  ] as const) {
    out.push({
      name: `${name}: overshoot (max in use across isolates - maxInFlight) <= 0`,
      ok: t.overshootMax <= 0,
      safety: true,
      detail: `max in use ${t.maxInUse} of ${limits.maxInFlight}: overshoot ${t.overshootMax}`,
    });
    out.push({
      name: `${name}: slots out at holders <= maxInFlight`,
      ok: t.maxSlotsOut <= limits.maxInFlight,
      safety: true,
      detail: `max ${t.maxSlotsOut} of ${limits.maxInFlight}`,
    });
    out.push({
      name: `${name}: bucket + tokens out <= burst`,
      ok: t.maxBucketPlusOutMinusBurst <= 1e-6,
      safety: true,
      detail: `max (bucket + out - burst) = ${t.maxBucketPlusOutMinusBurst}`,
    });
    out.push({
      name: `${name}: no isolate has more in use than the object counts it holding`,
      ok: t.edgeInUseAboveObjectHeld === 0,
      safety: true,
      detail: `${t.edgeInUseAboveObjectHeld} observations`,
    });
    out.push({
      name: `${name}: every report passes the protocol schema`,
      ok: t.object.invalidReports === 0,
      safety: true,
      detail: t.object.firstInvalid ?? "0 invalid",
    });
    out.push({
      name: `${name}: stranding: no free slot kept > renewEveryMs (${LEASE_TIMING.renewEveryMs}) + its one-way latency while another isolate starves`,
      ok: t.stranded.overBound === 0,
      safety: false,
      detail: `max ${t.stranded.maxMs} ms (${t.stranded.worst?.key ?? "-"} from ${round(t.stranded.worst?.at ?? 0)} ms, bound ${round(t.stranded.worst?.boundMs ?? 0)}); p99 ${t.stranded.p99Ms} ms; ${t.stranded.overBound} of ${t.stranded.slots} free slots over their bound, ${t.stranded.overRoundTripBound} over renewEveryMs + 3 one-way latencies`,
    });
    const c = t.counters;
    const same =
      c.object.arrived === c.sim.arrived &&
      c.object.admitted === c.sim.admitted &&
      ADMISSION_SHED_REASONS.every((r) => c.object.shedByReason[r] === c.sim.shedByReason[r]);
    out.push({
      name: `${name}: the object's counters (from renewal tallies) match what the isolates did, after the drain`,
      ok: same,
      safety: false,
      detail: `object arrived ${c.object.arrived} admitted ${c.object.admitted} shed ${JSON.stringify(c.object.shedByReason)}; sim arrived ${c.sim.arrived} (unavailable ${c.sim.unavailable}) admitted ${c.sim.admitted} shed ${JSON.stringify(c.sim.shedByReason)}`,
    });
    out.push({
      name: `${name}: every lease went home after the drain`,
      ok: t.object.atEnd.slotsOut === 0 && t.object.atEnd.tokensOut === 0,
      safety: false,
      detail: `holders ${t.object.atEnd.holders}, slots out ${t.object.atEnd.slotsOut}, tokens out ${t.object.atEnd.tokensOut}`,
    });
  }
  return out;
}

// ---------------------------------------------------------------- Markdown

const pct = (x: number | null) => (x === null || Number.isNaN(x) ? "-" : `${round(x * 100, 1)}%`);
const ms = (x: number | null) => (x === null ? "never" : `${round(x)} ms`);

export function markdown(
  cells: readonly CellFigures[],
  probes: readonly Probe[],
  meta: {
    seed: number;
    wallMs: number;
    layout: Layout;
    phases: readonly Phase[];
    config: Record<string, unknown>;
    head: string;
  },
): string {
  const L: string[] = [];
  const { layout } = meta;
  L.push("# Lease protocol simulation", "");
  L.push(
    `Seed ${meta.seed}; ${cells.length} cells in ${round(meta.wallMs / 1000)} s wall (Node, one process). Source: ${meta.head}.`,
    "",
    `A discrete-event simulation that drives the project's pure lease modules (\`src/lease/lease-book.ts\`, \`edge-lease.ts\`, \`slot-allocation.ts\`, \`tally.ts\`) with the two shells reproduced as \`src/tenant-guard.ts\` and \`src/edge/tenant-leases.ts\` drive them (long polls served highest priority first; one heartbeat per answer; waiters wake at min(expiry, nextWakeAt)). ` +
      `${layout.isolates} isolates (+${layout.newIsolates} that join when demand moves), one-way latency to the object ${layout.latencyMs[0]}-${layout.latencyMs[1]} ms per isolate (+-10% jitter per message and a small tail), clock skew up to +-${layout.skewMs} ms per isolate (each side passes its own clock), ` +
      `the flood at ${layout.floodRate} req/s over the isolates by Zipf(s=${layout.zipfS}) of a random rank, the quiet tenant at ${layout.quietRates.join(" + ")} req/s on the isolates of flood rank ${layout.quietRanks.join(", ")}. ` +
      `Object: single-threaded, ${meta.config.objectCallMs} ms per lease call, ${meta.config.objectWakeMs} ms per long-poll wake-up; every report is checked with the protocol's zod schema.`,
    "",
    `Phases: ${meta.phases.map((p) => `${p.name} ${p.from / 1000}-${p.to / 1000} s`).join("; ")}. At "moved" the ${layout.movedHot} hottest isolates go quiet and the ${layout.newIsolates} new isolates share their traffic; at "back" it returns to them; at "drain" all traffic stops. Rates and shares per phase are over the whole phase; utilisation, goodput and slots out over the phase after a settling time (2 s, or a quarter of the phase).`,
    "",
  );
  const allChecks = cells.flatMap((c) => c.checks.map((k) => ({ ...k, cell: c.cell })));
  const failedSafety = allChecks.filter((k) => !k.ok && k.safety);
  const failedOther = allChecks.filter((k) => !k.ok && !k.safety);
  L.push("## Verdict", "");
  L.push(
    failedSafety.length === 0
      ? "**PASS: no overshoot, slots out never above maxInFlight, bucket + tokens out never above burst, no isolate ever used more than the object counted it holding.**"
      : `**FAIL: ${failedSafety.length} safety check(s) failed:** ${failedSafety.map((k) => `${k.cell} / ${k.name}`).join("; ")}`,
    "",
  );
  if (failedOther.length > 0)
    L.push(`**Claims not met:** ${failedOther.map((k) => `${k.cell} / ${k.name}`).join("; ")}`, "");
  L.push(
    "| cell | goodput / capacity (steady, moved, back) | util mean | slots in transit (to isolate + to object) | object calls / s (per arrival) | new isolates: 90% of converged slots | quiet: success, p99 wait | max overshoot | max stranded |",
    "|---|---|---|---|---|---|---|---|---|",
  );
  for (const c of cells) {
    const [st, mv, bk] = c.flood.phases;
    if (!st || !mv || !bk) continue;
    const transit = round(st.slotStates.toIsolate + st.slotStates.toObject);
    const held90 = c.follow.newIsolatesWhenMoved
      .map((x) => (x?.held90Ms === null || x === null ? "never" : `${x.held90Ms}`))
      .join(" / ");
    const qWaits = c.quiet.phases.slice(0, 3).map((p) => p.waitMs.p99);
    const qArr = sumOf(c.quiet.phases.map((p) => p.arrivalsPerS * p.seconds));
    const qAdm = sumOf(c.quiet.phases.map((p) => p.admittedPerS * p.seconds));
    L.push(
      `| ${c.cell} | ${pct(st.goodputOfCapacity)}, ${pct(mv.goodputOfCapacity)}, ${pct(bk.goodputOfCapacity)} | ${st.utilisation.mean} | ${transit} of ${cellLimit(c)} | ${st.objectCallsPerS} (${st.objectCallsPerArrival}) | ${held90} ms | ${pct(qArr > 0 ? qAdm / qArr : Number.NaN)}, ${Math.max(...qWaits)} ms | ${Math.max(c.flood.overshootMax, c.quiet.overshootMax)} | ${c.flood.stranded.maxMs} ms |`,
    );
  }
  L.push("");
  L.push("## Probes: minimal reproductions on the pure modules", "");
  for (const p of probes) {
    L.push(
      `### \`${p.name}\`: ${p.reproduced ? "**REPRODUCED**" : "not reproduced (behaves as designed)"}`,
      "",
      p.defect,
      "",
      "```",
      ...p.trace,
      "```",
      "",
    );
  }

  for (const c of cells) {
    L.push(`## Cell \`${c.cell}\`: ${c.title}`, "");
    L.push(
      `Flood capacity ${c.capacityPerS} req/s (offered ${layout.floodRate}, ${round(layout.floodRate / c.capacityPerS)}x). Simulated ${c.events.toLocaleString("en-US")} events in ${round(c.wallMs / 1000)} s.`,
      "",
    );
    L.push("### Checks", "", "| check | result | detail |", "|---|---|---|");
    for (const k of c.checks)
      L.push(
        `| ${k.name} | ${k.ok ? "ok" : k.safety ? "**FAIL**" : "**NOT MET**"} | ${k.detail.replace(/\|/g, "/")} |`,
      );
    L.push("");
    for (const [name, t] of [
      ["flood", c.flood],
      ["quiet", c.quiet],
    ] as const) {
      L.push(`### ${name} tenant by phase`, "");
      L.push(
        "| phase | arrivals/s | admitted/s | success | completed/s | goodput / capacity | util mean (p5, p50) | slots out | object calls/s | calls / arrival | per-isolate calls/s p50 / p90 / max | wait p50 / p99 / max (admitted) | sheds | shed at arrival | shed after waiting |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
      );
      for (const p of t.phases) {
        L.push(
          `| ${p.phase} | ${p.arrivalsPerS} | ${p.admittedPerS} | ${pct(p.successRate)} | ${p.completedPerS} | ${pct(p.goodputOfCapacity)} | ${p.utilisation.mean} (${p.utilisation.p5}, ${p.utilisation.p50}) | ${p.slotsOutMean} | ${p.objectCallsPerS} | ${p.objectCallsPerArrival} | ${p.perIsolateCallsPerS.p50} / ${p.perIsolateCallsPerS.p90} / ${p.perIsolateCallsPerS.max} (${p.perIsolateCallsPerS.isolates} isolates) | ${p.waitMs.p50} / ${p.waitMs.p99} / ${p.waitMs.max} ms | ${p.shedTotal} | ${pct(p.shedAtArrivalShare)} | ${pct(p.shedAfterWaitShare)} |`,
        );
      }
      L.push("");
      L.push(
        "Where the slots are (mean over the settled window): " +
          t.phases
            .map(
              (p) =>
                `${p.phase}: ${SLOT_STATES.filter((k) => p.slotStates[k] > 0)
                  .map((k) => `${k} ${p.slotStates[k]}`)
                  .join(
                    ", ",
                  )}; ${p.slotsGrantedPerS} slots granted/s; tokens: ${TOKEN_STATES.map((k) => `${k} ${p.tokenStates[k]}`).join(", ")}`,
            )
            .join(" | ") +
          ".",
        "",
      );
      L.push(
        "Sheds by reason: " +
          t.phases
            .map(
              (p) =>
                `${p.phase}: ${
                  SHED_KINDS.filter((k) => p.sheds[k] > 0)
                    .map((k) => `${k} ${p.sheds[k]}`)
                    .join(", ") || "none"
                }`,
            )
            .join("; ") +
          ".",
        "",
      );
      const o = t.object;
      L.push(
        `Object: ${o.calls} lease calls, busy ${pct(o.busyShare)} of the run, queueing mean ${o.meanQueueDelayMs} ms / max ${o.maxQueueDelayMs} ms; CPU in this Node process ${o.cpuPerCallUs} us per call as simulated; the adapter as written calls grant() ${o.adapterGrantsPerCall} times per call (once per pending long poll) at ${o.grantUs} us each: about ${o.adapterMsPerCallEstimate} ms per call, ${pct(o.adapterBusyShareEstimate)} of one CPU over the run; long polls ${o.longPolls} (${o.longPollGranted} answered with a grant, ${o.longPollEmpty} empty at their time; mean hold ${o.longPollMeanMs} ms); holders reclaimed ${o.reclaimedHolders} (${o.reclaimedSlots} slots). ` +
          `Stranding: ${t.stranded.slots} slot-frees, p50 ${t.stranded.p50Ms} ms, p99 ${t.stranded.p99Ms} ms, p99.9 ${t.stranded.p999Ms} ms, max ${t.stranded.maxMs} ms. ` +
          `Shell waiter 1 ms polls while a renewal is late (estimate): ${t.shellSpinWakesPerS}/s. Every shed was decided at the edge by the tally: ${t.counters.object.shedAtEdge} of ${sumOf(Object.values(t.counters.object.shedByReason))}.`,
        "",
      );
    }
    const f = c.follow;
    L.push("### Demand moves", "");
    L.push(
      "Times from the phase start. *proportional* = maxInFlight x the isolate's share of arrivals; *converged* = mean slots it held over the second half of the phase; *served 90%* = until its admitted/arrived ratio per 100 ms first reached 90% of its converged ratio.",
      "",
    );
    L.push(
      "| when | isolate | latency | arrivals/s | proportional slots | converged slots | first admit | 50% held | 90% held | served 90% | converged success |",
      "|---|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const [when, list] of [
      ["moved: new isolate", f.newIsolatesWhenMoved],
      ["back: hot isolate", f.hotIsolatesWhenBack],
    ] as const) {
      for (const x of list) {
        if (!x) continue;
        L.push(
          `| ${when} | ${x.key} | ${x.latencyMs} ms | ${x.arrivalsPerS} | ${x.proportionalSlots} | ${x.convergedSlots} | ${ms(x.firstAdmitMs)} | ${ms(x.held50Ms)} | ${ms(x.held90Ms)} | ${ms(x.served90Ms)} | ${pct(x.convergedSuccess)} |`,
        );
      }
    }
    L.push("");
    L.push(
      "| when | isolate | latency | slots held at start | back to 0 slots after | held at phase end |",
      "|---|---|---|---|---|---|",
    );
    for (const [when, list] of [
      ["moved: hot isolate goes quiet", f.hotIsolatesGoingQuiet],
      ["back: new isolate goes quiet", f.newIsolatesGoingQuiet],
    ] as const) {
      for (const x of list)
        if (x)
          L.push(
            `| ${when} | ${x.key} | ${x.latencyMs} ms | ${x.heldAtStart} | ${ms(x.releasedMs)} | ${x.heldAtEnd} |`,
          );
    }
    L.push("");
    L.push("### Flood over time (per second; slots/tokens/waiting/starved at the second's end)", "");
    L.push(
      "| s | util | slots out | tokens (bucket + out) | waiting | starved isolates | arrivals | admitted | completed | object calls | sheds | new isolates hold | moved isolates hold |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const r of c.series)
      L.push(
        `| ${r.s} | ${r.util} | ${r.slotsOut} | ${r.tokens} | ${r.waiting} | ${r.starved} | ${r.arrivals} | ${r.admitted} | ${r.completed} | ${r.calls} | ${r.sheds} | ${r.newHeld} | ${r.movedHeld} |`,
      );
    L.push("");
    const failures = [...c.flood.failures, ...c.quiet.failures];
    if (failures.length > 0) {
      L.push("### First failures", "");
      for (const x of failures) L.push(`- ${round(x.at, 2)} ms, ${x.key}: ${x.what}: ${x.detail}`);
      L.push("");
    }
  }
  return L.join("\n");
}
