/**
 * What the adaptive origin limit may conclude from a window of responses, so that neither a
 * route mix nor one party can steer it. Pure: state in, state out, `now` passed in.
 *
 * - Latency is judged against the baseline of the same party on the same route class, never one
 *   number for the whole origin: a slow route is not an overloaded origin, and no party can make
 *   another's requests look slow by sending fast ones (or its own look fast by sending slow ones).
 *   A baseline is the lowest window mean seen for its key, creeping up by BASELINE_DRIFT per
 *   window towards higher ones, so a lasting slowdown is accepted within tens of windows while a
 *   queue the guard itself builds (latency up by the tolerance in a window or two) is caught.
 * - Each party's say is its latest window (for PARTY_HORIZON_MS): the window's latency ratio is
 *   the lower median over the parties heard lately, and drops shrink the limit only when most of
 *   those parties saw one in the latest window they were heard in. A party alone still steers
 *   the limit, but only while it is alone; everything else it does is outvoted by the parties it
 *   would harm.
 * Both maps are bounded (the stalest entry goes) and keyed by strings the guard derived; one
 * party keeps at most MAX_ROUTES_PER_PARTY baselines (its own stalest goes), so a party that
 * sprays route classes evicts only its own.
 */
import { own } from "../own-keys";
import { putBounded } from "./bounded-record";

export const MAX_ROUTE_BASELINES = 256;
export const MAX_ROUTES_PER_PARTY = 16;
export const MAX_PARTIES = 64;
/** How long a party's latest window counts: one that has been quiet longer has no say. */
export const PARTY_HORIZON_MS = 5_000;
export const BASELINE_DRIFT = 0.02;

/** A window's latency for one party on one route class: the sum and count of its samples. */
export interface WindowSum {
  readonly party: string;
  /** The route class (method and path prefix) the requests were for. */
  readonly route: string;
  readonly sumMs: number;
  readonly count: number;
}

export interface RouteBaseline {
  readonly ms: number;
  readonly seenAt: number;
}

export interface PartyEvidence {
  readonly seenAt: number;
  /** Its latest window's latency over its own baselines; null before it had a sample. */
  readonly ratio: number | null;
  /** The latest window it was heard in had a drop. */
  readonly dropped: boolean;
}

export interface Evidence {
  /** Keyed by `baselineKey(party, route)`. */
  readonly baselines: Readonly<Record<string, RouteBaseline>>;
  readonly parties: Readonly<Record<string, PartyEvidence>>;
}

export interface WindowVerdict {
  /** Most parties heard lately saw a drop in the window. */
  readonly dropsAgreed: boolean;
  /** Lower median over recent parties of latency / baseline; null when none has a ratio. */
  readonly ratio: number | null;
  readonly evidence: Evidence;
}

export const NO_EVIDENCE: Evidence = { baselines: {}, parties: {} };

export function baselineKey(party: string, route: string): string {
  return `${party} ${route}`;
}

/** `baselines` with `key` of `party` set, holding the party to MAX_ROUTES_PER_PARTY keys. */
function putBaseline(
  baselines: Readonly<Record<string, RouteBaseline>>,
  party: string,
  key: string,
  baseline: RouteBaseline,
): Record<string, RouteBaseline> {
  const next = putBounded(baselines, key, baseline, MAX_ROUTE_BASELINES, (b) => b.seenAt);
  const prefix = baselineKey(party, "");
  const mine = Object.entries(next).filter(([name]) => name.startsWith(prefix));
  if (mine.length <= MAX_ROUTES_PER_PARTY) return next;
  mine.sort((a, b) => a[1].seenAt - b[1].seenAt);
  const stale = new Set(mine.slice(0, mine.length - MAX_ROUTES_PER_PARTY).map(([name]) => name));
  return Object.fromEntries(Object.entries(next).filter(([name]) => !stale.has(name)));
}

/** Moves each key's baseline with its window mean; returns each party's sample-weighted ratio. */
function judgeLatency(
  baselines: Readonly<Record<string, RouteBaseline>>,
  sums: readonly WindowSum[],
  now: number,
): { readonly baselines: Record<string, RouteBaseline>; readonly ratios: Map<string, number> } {
  let next: Record<string, RouteBaseline> = { ...baselines };
  const weighted = new Map<string, { sum: number; count: number }>();
  for (const group of sums) {
    if (group.count <= 0) continue;
    const key = baselineKey(group.party, group.route);
    const mean = group.sumMs / group.count;
    const old = own(baselines, key);
    // A key's first window sets its baseline: nothing says it is slow yet.
    const ratio = old ? mean / Math.max(old.ms, 1e-3) : 1;
    const ms = !old || mean < old.ms ? mean : old.ms + BASELINE_DRIFT * (mean - old.ms);
    next = putBaseline(next, group.party, key, { ms, seenAt: now });
    const party = weighted.get(group.party) ?? { sum: 0, count: 0 };
    party.sum += ratio * group.count;
    party.count += group.count;
    weighted.set(group.party, party);
  }
  const ratios = new Map<string, number>();
  for (const [party, { sum, count }] of weighted) ratios.set(party, sum / count);
  return { baselines: next, ratios };
}

function hearParties(
  parties: Readonly<Record<string, PartyEvidence>>,
  ratios: ReadonlyMap<string, number>,
  dropParties: readonly string[],
  now: number,
): Record<string, PartyEvidence> {
  let next: Record<string, PartyEvidence> = { ...parties };
  const heard = new Set([...ratios.keys(), ...dropParties]);
  const dropped = new Set(dropParties);
  const fresh = (entry: PartyEvidence) => entry.seenAt >= now - PARTY_HORIZON_MS;
  for (const party of heard) {
    const old = own(next, party);
    const entry: PartyEvidence = {
      seenAt: now,
      ratio: ratios.get(party) ?? old?.ratio ?? null,
      dropped: dropped.has(party),
    };
    next = putBounded(next, party, entry, MAX_PARTIES, (p) => p.seenAt, fresh);
  }
  return next;
}

function lowerMedian(values: number[]): number | null {
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  return values[Math.floor((values.length - 1) / 2)] ?? null;
}

/** Weighs a closed window against what every recent party said in its latest window. */
export function weighWindow(
  evidence: Evidence,
  sums: readonly WindowSum[],
  dropParties: readonly string[],
  now: number,
): WindowVerdict {
  const latency = judgeLatency(evidence.baselines, sums, now);
  const parties = hearParties(evidence.parties, latency.ratios, dropParties, now);
  const recent = Object.values(parties).filter((party) => party.seenAt >= now - PARTY_HORIZON_MS);
  const dropping = recent.filter((party) => party.dropped).length;
  const ratios = recent.flatMap((party) => (party.ratio === null ? [] : [party.ratio]));
  return {
    dropsAgreed: dropping > 0 && dropping * 2 > recent.length,
    ratio: lowerMedian(ratios),
    evidence: { baselines: latency.baselines, parties },
  };
}

/** The baseline latency of `party` on `route`, if one was learnt. */
export function baselineOf(evidence: Evidence, party: string, route: string): number | null {
  return own(evidence.baselines, baselineKey(party, route))?.ms ?? null;
}
