import { guardConfig } from "./config";
import type { Env } from "./env";

/**
 * The options of every `getByName` on the guard's namespaces: the location hint, so that an
 * object is created near the origin, not near whichever request happened to ask first. Only the
 * first `get` of an object counts, so passing it on every call costs nothing and misses none.
 */
export function placement(env: Env): DurableObjectNamespaceGetDurableObjectOptions | undefined {
  const { locationHint } = guardConfig(env);
  return locationHint ? { locationHint } : undefined;
}
