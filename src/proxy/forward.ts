import { remainingMs } from "../admission/deadline";
import { type OriginAbort, originAbort } from "./origin-abort";

export type ForwardResult =
  /** `abort` goes on governing the body: it says what cut it, and must be stopped when it ends. */
  | { readonly kind: "response"; readonly response: Response; readonly abort: OriginAbort }
  | { readonly kind: "deadline_exceeded" }
  | { readonly kind: "client_gone" }
  | { readonly kind: "failed"; readonly error: unknown };

/** The origin fetch as a port, so tests and the bench can swap the origin. */
export type OriginFetch = (input: Request | string | URL, init?: RequestInit) => Promise<Response>;

/**
 * Sends the request to the origin, streaming the body both ways, aborted when the deadline
 * passes (for a streamed route, `maxStreamMs`: the deadline until the headers, that long after
 * them; see origin-abort.ts) or the client goes away. Compressed origin bodies are passed
 * through as they are (`encodeResponseBody: "manual"`): never decoded and re-encoded on the way.
 */
export async function forwardToOrigin(
  target: URL,
  request: Request,
  headers: Headers,
  deadline: number,
  now: number,
  originFetch: OriginFetch = fetch,
  maxStreamMs: number | null = null,
): Promise<ForwardResult> {
  const abort = originAbort(Math.max(1, remainingMs(deadline, now)), maxStreamMs);
  const signal = AbortSignal.any([abort.signal, request.signal]);
  const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  try {
    const response = await originFetch(target, {
      method: request.method,
      headers,
      body: hasBody ? request.body : null,
      redirect: "manual",
      signal,
      encodeResponseBody: "manual",
    });
    abort.headersCame();
    return { kind: "response", response, abort };
  } catch (error) {
    abort.stop();
    if (abort.cause() === "deadline") return { kind: "deadline_exceeded" };
    if (request.signal.aborted) return { kind: "client_gone" };
    return { kind: "failed", error };
  }
}

/** Origin URL + the request's path and query, exactly as the client sent them. */
export function originTarget(origin: URL, requestUrl: URL): URL {
  const base = origin.pathname.endsWith("/") ? origin.pathname.slice(0, -1) : origin.pathname;
  const target = new URL(origin.toString());
  target.pathname = base + requestUrl.pathname;
  target.search = requestUrl.search;
  return target;
}
