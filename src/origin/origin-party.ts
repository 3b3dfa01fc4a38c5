/**
 * Who and what a request is to the origin stage, in the guard's own words: the party it counts
 * against and the route class it is for. Both are derived by the guard, bounded, and checked
 * again at the object boundary, since they key the stage's per-party and per-route state.
 */

/**
 * A party: a tenant's name, or for the anonymous tenant `anonymous` (one party for fairness and
 * for the adaptive limit) or its per-client bucket `anonymous:<ip or /64>` (for 429 holds).
 */
export const ORIGIN_PARTY = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

/** A route class prefix: a normalised path of at most two segments, printable ASCII. */
export const ROUTE_PREFIX = /^\/[\x21-\x7e]{0,127}$/;

/** A request method as the stage keys it; anything else is `OTHER`. */
export const ROUTE_METHOD = /^[A-Z]{1,16}$/;

const ROUTE_SEGMENTS = 2;
const SEGMENT_CHARS = 60;

/** A segment that names one item rather than a resource: all digits, or long with a digit in it. */
const ID_SEGMENT = /^(\d+|(?=[^/]*\d)[^/]{8,})$/;

/**
 * The route class prefix of a normalised path: its first two segments, each cut to
 * SEGMENT_CHARS, with ids read as `:id`. `/v1/reports/42` and `/v1/reports/43` share
 * `/v1/reports`, and `/users/42` and `/users/9f8e7d6c-...` share `/users/:id`: routes of one
 * resource tend to share a speed, and ids must not make every request a class of its own.
 */
export function routePrefix(pathname: string): string {
  const segments = pathname
    .split("/")
    .filter((segment) => segment.length > 0)
    .slice(0, ROUTE_SEGMENTS)
    .map((segment) => (ID_SEGMENT.test(segment) ? ":id" : segment.slice(0, SEGMENT_CHARS)))
    .map((segment) => segment.replace(/[^\x21-\x7e]/g, "_"));
  return `/${segments.join("/")}`;
}

export function routeMethod(method: string): string {
  return ROUTE_METHOD.test(method) ? method : "OTHER";
}

/** The route class the adaptive limit keeps baselines for: method and prefix (`GET /v1/reports`). */
export function routeClassKey(method: string, prefix: string): string {
  return `${method} ${prefix}`;
}
