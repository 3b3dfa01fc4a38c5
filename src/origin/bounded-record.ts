/**
 * Records keyed by untrusted strings that must stay small (per-party and per-route state in the
 * origin stage, persisted as JSON): a write builds a new record with `Object.fromEntries`, which
 * defines own properties even for keys like `__proto__`; reads go through `own`.
 */

/**
 * A copy of `record` with `key` set to `value`, without the entries `keep` rejects, and past
 * `max` entries without those ranked lowest by `rank` (the full-behaviour: evict the stalest).
 */
export function putBounded<V>(
  record: Readonly<Record<string, V>>,
  key: string,
  value: V,
  max: number,
  rank: (entry: V) => number,
  keep: (entry: V) => boolean = () => true,
): Record<string, V> {
  const entries = Object.entries(record).filter(([name, entry]) => name !== key && keep(entry));
  entries.push([key, value]);
  if (entries.length > max) {
    entries.sort((a, b) => rank(b[1]) - rank(a[1]));
    entries.length = max;
  }
  return Object.fromEntries(entries);
}
