/**
 * Holds: traffic the origin asked the guard to keep back (a 503 or 429 with Retry-After), each
 * scoped to what the origin said it for, so that one route's maintenance page or one party's
 * requests cannot stop everyone. Pure: state in, state out, `now` passed in.
 *
 * - 429 + Retry-After holds the party that got it, on every route (its rate is its own).
 * - 503 + Retry-After holds the party that got it on that route class. The same answer to
 *   ROUTE_QUORUM parties on one route within SIGHTING_WINDOW_MS holds the route for everyone;
 *   to GLOBAL_QUORUM parties on at least GLOBAL_ROUTES route classes, the whole origin (one
 *   route's maintenance page, however many parties hit it, is that route's). Parties are counted
 *   as for fair shares: every anonymous address together is one, so a spray of addresses is one
 *   voice. A route class here is the path prefix alone: a maintenance page covers every method.
 * - The whole origin is held at once only when the origin says so explicitly, with the
 *   configured `globalHoldHeader` on the 503.
 * Every map is bounded: expired entries go first, then those ending (or seen) soonest.
 */
import { z } from "zod";
import { own } from "../own-keys";
import { putBounded } from "./bounded-record";
import { ORIGIN_PARTY, ROUTE_PREFIX } from "./origin-party";

export const ROUTE_QUORUM = 2;
export const GLOBAL_QUORUM = 3;
export const GLOBAL_ROUTES = 2;
export const SIGHTING_WINDOW_MS = 10_000;
export const MAX_HOLDS = 1_000;
export const MAX_SIGHTINGS = 64;

/** A party and a route class prefix, as origin-party.ts derives them. */
export interface HoldSubject {
  readonly party: string;
  readonly route: string;
}

export type HoldScope =
  | { readonly kind: "all" }
  | { readonly kind: "route"; readonly route: string }
  | { readonly kind: "party-route"; readonly party: string; readonly route: string }
  | { readonly kind: "party"; readonly party: string };

/** A 503 + Retry-After a party (counted as for fair shares) got on a route class. */
export interface Sighting {
  readonly voter: string;
  readonly route: string;
  readonly at: number;
}

export interface OriginHolds {
  readonly allUntil: number;
  /** Keyed by `holdKey`; values are when each hold ends. */
  readonly scoped: Readonly<Record<string, number>>;
  /** Recent 503 + Retry-After answers, one per party and route: the agreement wider holds need. */
  readonly sightings: Readonly<Record<string, Sighting>>;
}

export const NO_HOLDS: OriginHolds = { allUntil: 0, scoped: {}, sightings: {} };

export function holdKey(scope: Exclude<HoldScope, { kind: "all" }>): string {
  switch (scope.kind) {
    case "route":
      return `r ${scope.route}`;
    case "party-route":
      return `pr ${scope.party} ${scope.route}`;
    case "party":
      return `p ${scope.party}`;
  }
}

/** The scopes that cover `who`, widest first. */
export function scopesOf(who: HoldSubject): HoldScope[] {
  return [
    { kind: "all" },
    { kind: "route", route: who.route },
    { kind: "party-route", party: who.party, route: who.route },
    { kind: "party", party: who.party },
  ];
}

/**
 * What an origin's answer asks to be held back, with a Retry-After: a 429 its party's rate
 * (`rate`), a 503 that the origin or a route is unavailable (`unavailable`); other statuses,
 * nothing. The one place that reads a status as a hold.
 */
export type HoldKind = "rate" | "unavailable";

export function holdKindOf(status: number): HoldKind | null {
  if (status === 429) return "rate";
  if (status === 503) return "unavailable";
  return null;
}

/**
 * The scope one answer of `kind` holds on its own: the party (rate), the party on its route
 * class (unavailable), or the whole origin when the origin said so. Wider holds need agreement.
 */
export function firstScope(kind: HoldKind, who: HoldSubject, wholeOrigin: boolean): HoldScope {
  if (kind === "rate") return { kind: "party", party: who.party };
  return wholeOrigin ? { kind: "all" } : { kind: "party-route", party: who.party, route: who.route };
}

/** A 429 hold is the party's own rate; every other hold says the origin (or a route) is unavailable. */
export function isRateHold(scope: HoldScope): boolean {
  return scope.kind === "party";
}

function untilOf(holds: OriginHolds, scope: HoldScope): number {
  return scope.kind === "all" ? holds.allUntil : (own(holds.scoped, holdKey(scope)) ?? 0);
}

/** Every hold that covers `who` now, widest first, with when it ends. */
export function holdsCovering(
  holds: OriginHolds,
  who: HoldSubject,
  now: number,
): Array<{ readonly scope: HoldScope; readonly until: number }> {
  return scopesOf(who).flatMap((scope) => {
    const until = untilOf(holds, scope);
    return until > now ? [{ scope, until }] : [];
  });
}

/** Holds `scope` until `until` (or longer, if it already was). */
export function hold(holds: OriginHolds, scope: HoldScope, until: number, now: number): OriginHolds {
  if (until <= now) return holds;
  if (scope.kind === "all") return { ...holds, allUntil: Math.max(holds.allUntil, until) };
  const key = holdKey(scope);
  const end = Math.max(own(holds.scoped, key) ?? 0, until);
  const scoped = putBounded(
    holds.scoped,
    key,
    end,
    MAX_HOLDS,
    (at) => at,
    (at) => at > now,
  );
  return { ...holds, scoped };
}

/** A 503 with Retry-After, as the origin gave it to one request. */
export interface Unavailable {
  /** Whom it held back on its own: the party (its 429 bucket) on the route class. */
  readonly who: HoldSubject;
  /** The party it counts as in the agreement: the fair-share party. */
  readonly voter: string;
  readonly wholeOrigin: boolean;
}

/** A 503 with Retry-After: held as far as the parties' agreement (or the origin) says. */
export function heedUnavailable(holds: OriginHolds, answer: Unavailable, until: number, now: number): OriginHolds {
  const { who, voter } = answer;
  const first = firstScope("unavailable", who, answer.wholeOrigin);
  if (first.kind === "all") return hold(holds, first, until, now);
  const sightings = putBounded(
    holds.sightings,
    `${voter} ${who.route}`,
    { voter, route: who.route, at: now },
    MAX_SIGHTINGS,
    (s) => s.at,
    (s) => s.at > now - SIGHTING_WINDOW_MS,
  );
  let next: OriginHolds = hold({ ...holds, sightings }, first, until, now);
  const recent = Object.values(sightings);
  const onRoute = new Set(recent.filter((s) => s.route === who.route).map((s) => s.voter));
  const voters = new Set(recent.map((s) => s.voter));
  const routes = new Set(recent.map((s) => s.route));
  if (onRoute.size >= ROUTE_QUORUM) next = hold(next, { kind: "route", route: who.route }, until, now);
  if (voters.size >= GLOBAL_QUORUM && routes.size >= GLOBAL_ROUTES) next = hold(next, { kind: "all" }, until, now);
  return next;
}

/** The earliest end of a hold that may let waiters in (or shed them); Infinity when none. */
export function nextHoldEnd(holds: OriginHolds, now: number): number {
  let at = holds.allUntil > now ? holds.allUntil : Number.POSITIVE_INFINITY;
  for (const end of Object.values(holds.scoped)) if (end > now) at = Math.min(at, end);
  return at;
}

/** Parties held back on every route right now (429 holds), for stats. */
export function partiesHeld(holds: OriginHolds, now: number): number {
  return Object.entries(holds.scoped).filter(([key, end]) => key.startsWith("p ") && end > now).length;
}

/** Routes held back for everyone right now, for stats. */
export function routesHeld(holds: OriginHolds, now: number): number {
  return Object.entries(holds.scoped).filter(([key, end]) => key.startsWith("r ") && end > now).length;
}

export const holdScopeSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("all") }),
  z.strictObject({ kind: z.literal("route"), route: z.string().regex(ROUTE_PREFIX) }),
  z.strictObject({
    kind: z.literal("party-route"),
    party: z.string().regex(ORIGIN_PARTY),
    route: z.string().regex(ROUTE_PREFIX),
  }),
  z.strictObject({ kind: z.literal("party"), party: z.string().regex(ORIGIN_PARTY) }),
]);

export const originHoldsSchema = z.object({
  allUntil: z.number(),
  scoped: z.record(z.string(), z.number()),
  sightings: z.record(z.string(), z.object({ voter: z.string(), route: z.string(), at: z.number() })).catch({}),
});
