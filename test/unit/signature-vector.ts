import vector from "../../examples/signature-vector.json";

/** The known-answer vector every verifier in examples/ is held to, and the fields it signs. */
export const VECTOR = vector;

export const VECTOR_FIELDS = {
  timestamp: Number(vector.headers["x-guard-timestamp"]),
  requestId: vector.headers["x-guard-request-id"],
  tenant: vector.headers["x-guard-tenant"],
  priority: vector.headers["x-guard-priority"],
  deadline: Number(vector.headers["x-request-deadline"]),
  method: vector.method,
  pathAndQuery: vector.path,
};

/** The vector as a verifier's input, with `changes` applied to its headers or request line. */
export function vectorRequest(changes: { headers?: Record<string, string>; method?: string; path?: string } = {}) {
  return {
    method: changes.method ?? vector.method,
    path: changes.path ?? vector.path,
    headers: { ...vector.headers, ...changes.headers } as Record<string, string>,
  };
}
