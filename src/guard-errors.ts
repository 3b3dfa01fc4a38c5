/**
 * Every error the Worker answers that is not a shed (sheds are in signals.ts, with their own
 * retry signals): a closed list, each code with its status, problem `type` and title in one
 * place. Call sites name a code and say what went wrong; they never spell a status or a type.
 */
import { GUARD_PROBLEM_BASE, type Problem, ProblemError, problemResponse } from "./problem";

interface ErrorKind {
  readonly status: number;
  readonly type: string;
  readonly title: string;
}

export const GUARD_ERRORS = {
  /** A request body or parameter failed validation (the fields are named in `errors`). */
  invalid_request: { status: 400, type: `${GUARD_PROBLEM_BASE}invalid-request`, title: "Invalid request" },
  /** A proxied path the guard will not classify or forward (request-path.ts). */
  bad_path: { status: 400, type: "about:blank", title: "Bad Request" },
  /** No or a wrong admin token, or (UNKNOWN_KEYS=reject) no registered API key. */
  unauthorized: { status: 401, type: "about:blank", title: "Unauthorized" },
  /** IDENTITY=jwt: the bearer token failed verification; `reason` says which check (identity/jwt-verifier.ts). */
  invalid_token: { status: 401, type: `${GUARD_PROBLEM_BASE}invalid-token`, title: "Unauthorized" },
  /**
   * The API key is registered but past its `expiresAt`: refused whatever UNKNOWN_KEYS says, so
   * the client learns to rotate its key instead of sliding into the anonymous limits unseen.
   */
  key_expired: { status: 401, type: `${GUARD_PROBLEM_BASE}key-expired`, title: "Unauthorized" },
  /** A WebSocket upgrade for a tenant whose `maxConnections` is 0. */
  websockets_refused: { status: 403, type: `${GUARD_PROBLEM_BASE}websockets-refused`, title: "Forbidden" },
  not_found: { status: 404, type: "about:blank", title: "Not Found" },
  /** An admin change that contradicts what is stored (a key owned by another tenant, say). */
  conflict: { status: 409, type: `${GUARD_PROBLEM_BASE}conflict`, title: "Conflict" },
  body_too_large: { status: 413, type: `${GUARD_PROBLEM_BASE}body-too-large`, title: "Content Too Large" },
  unsupported_media_type: {
    status: 415,
    type: `${GUARD_PROBLEM_BASE}unsupported-media-type`,
    title: "Unsupported Media Type",
  },
  /** A setting the proxy needs is missing or malformed: the answer names it, never its value. */
  misconfigured: { status: 500, type: "about:blank", title: "Internal Server Error" },
  /** Anything the guard did not expect; logged. */
  unexpected: { status: 500, type: "about:blank", title: "Internal Server Error" },
  /** The origin could not be reached, or reset the connection. */
  origin_unreachable: { status: 502, type: `${GUARD_PROBLEM_BASE}origin-unreachable`, title: "Bad Gateway" },
  /** The admin API is off because of its own bad setting; the proxy still serves. */
  admin_disabled: { status: 503, type: "about:blank", title: "Service Unavailable" },
} as const satisfies Record<string, ErrorKind>;

export type GuardErrorCode = keyof typeof GUARD_ERRORS;

/** The status a client that went away is recorded with; nobody reads the (empty) answer. */
export const CLIENT_GONE_STATUS = 499;

/** The problem for `code`: extensions add fields, but cannot change its status, type, title or detail. */
export function guardProblem(code: GuardErrorCode, detail: string, extensions: Record<string, unknown> = {}): Problem {
  const { status: _s, type: _t, title: _ti, detail: _d, ...extra } = extensions;
  return { ...GUARD_ERRORS[code], detail, ...extra };
}

/** A problem to throw from below the app; `app.onError` answers it. */
export function guardError(
  code: GuardErrorCode,
  detail: string,
  extensions: Record<string, unknown> = {},
  headers?: HeadersInit,
): ProblemError {
  return new ProblemError(guardProblem(code, detail, extensions), headers);
}

export function guardErrorResponse(
  code: GuardErrorCode,
  detail: string,
  extensions: Record<string, unknown> = {},
  headers?: HeadersInit,
): Response {
  return problemResponse(guardProblem(code, detail, extensions), headers);
}

export function badRequest(detail: string, extensions: Record<string, unknown> = {}): ProblemError {
  return guardError("invalid_request", detail, extensions);
}

export function notFound(detail: string): ProblemError {
  return guardError("not_found", detail);
}
