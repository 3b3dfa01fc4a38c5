/**
 * Records keyed by untrusted strings (tenant names, client addresses): a plain object would
 * answer `counts["constructor"]` with Object's constructor, so reads go through `own`, which
 * sees own keys only. Writes use computed keys in literals or `delete`, which never reach a
 * prototype; key patterns keep `__proto__` out besides.
 */
export function own<V>(record: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
