/**
 * The one builder of `application/problem+json` responses (RFC 9457). Every error and every
 * shed answer goes through it, so clients parse one shape.
 */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly [extension: string]: unknown;
}

/** Problem types of our own, as tag URIs: stable identifiers that promise no web page. */
export const GUARD_PROBLEM_BASE = "tag:ingress-guard,2026:problem:";

export function problemResponse(problem: Problem, headers?: HeadersInit): Response {
  const response = new Response(JSON.stringify(problem), {
    status: problem.status,
    headers,
  });
  response.headers.set("content-type", "application/problem+json");
  response.headers.set("cache-control", "no-store");
  return response;
}

/** A problem thrown from anywhere below the app; `app.onError` turns it into its response. */
export class ProblemError extends Error {
  constructor(
    readonly problem: Problem,
    readonly headers?: HeadersInit,
  ) {
    super(problem.detail);
    this.name = "ProblemError";
  }

  response(): Response {
    return problemResponse(this.problem, this.headers);
  }
}
