import type { ReleaseOutcome } from "../admission/counters";

/**
 * When an origin fetch is aborted. An ordinary route: at its deadline, headers and body alike
 * (`AbortSignal.timeout`, which closes the origin's connection). A streamed route: at its
 * deadline until the response headers come, then `maxStreamMs` after them, when the body is cut.
 * The deadline of a stream bounds the origin's time to answer, not how long the answer may run:
 * an event feed or a download that outlasts it is the point of the route.
 */
export type AbortCause = "deadline" | "stream_limit";

export interface OriginAbort {
  /** For the origin fetch: aborting it errors the response body too. */
  readonly signal: AbortSignal;
  /** Why the fetch was aborted; null while it was not. */
  cause(): AbortCause | null;
  /** The response headers came: a streamed route's deadline ends and its body's limit starts. */
  headersCame(): void;
  /** The response is over, however it ended: no timer is left behind. */
  stop(): void;
}

export function originAbort(timeoutMs: number, maxStreamMs: number | null): OriginAbort {
  if (maxStreamMs === null) {
    const signal = AbortSignal.timeout(timeoutMs);
    return { signal, cause: () => (signal.aborted ? "deadline" : null), headersCame() {}, stop() {} };
  }
  const controller = new AbortController();
  let cause: AbortCause | null = null;
  let streaming = false;
  const abort = (why: AbortCause) => {
    if (cause !== null) return;
    cause = why;
    const what = why === "deadline" ? "deadline passed" : `stream ran past maxStreamMs (${maxStreamMs} ms)`;
    controller.abort(new DOMException(`origin request aborted: ${what}`, "TimeoutError"));
  };
  let timer = setTimeout(() => abort("deadline"), timeoutMs);
  return {
    signal: controller.signal,
    cause: () => cause,
    headersCame() {
      if (streaming || cause !== null) return;
      streaming = true;
      clearTimeout(timer);
      timer = setTimeout(() => abort("stream_limit"), maxStreamMs);
    },
    stop() {
      clearTimeout(timer);
    },
  };
}

/**
 * How a request whose body failed ended, by what aborted it. A stream cut at `maxStreamMs`
 * releases as `cancelled`: the guard closed the origin's connection itself, so nothing is left
 * running there and its slot is free at once (a deadline abort's slot lingers, since the origin
 * may still be at work). Analytics tells the cut apart as `stream_cut`. A body that failed after
 * its client left (the client's signal aborts the fetch too) is the client's cancel, not an
 * origin failure: leaving an event feed is what its clients do, and an origin failure is a drop
 * for the adaptive limit, which no client may pull down by coming and going.
 */
export function failedOutcome(
  cause: AbortCause | null,
  clientGone: boolean,
): {
  readonly outcome: ReleaseOutcome;
  readonly reason: string;
} {
  if (cause === "deadline") return { outcome: "deadline_exceeded", reason: "deadline_exceeded" };
  if (cause === "stream_limit") return { outcome: "cancelled", reason: "stream_cut" };
  if (clientGone) return { outcome: "cancelled", reason: "cancelled" };
  return { outcome: "origin_failed", reason: "origin_failed" };
}
