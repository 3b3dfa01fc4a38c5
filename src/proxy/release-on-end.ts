import type { ReleaseOutcome } from "../admission/counters";

/**
 * Wraps an origin body so that `onEnd` runs exactly once when the body is over, whichever way
 * it ends: read to the end, cancelled by the client, or failed (origin reset, or the fetch
 * aborted at the deadline). This is what makes a slot's release impossible to skip on the
 * normal path; the object's lease expiry covers an invocation that dies outright.
 * Pull-based with no buffer of its own: one chunk is read from the origin per chunk the client
 * takes, so a slow client slows the origin read instead of filling memory.
 */
export function releaseOnEnd(
  body: ReadableStream<Uint8Array>,
  deadlineSignal: AbortSignal,
  onEnd: (outcome: ReleaseOutcome) => void,
): ReadableStream<Uint8Array> {
  let ended = false;
  const end = (outcome: ReleaseOutcome) => {
    if (ended) return;
    ended = true;
    onEnd(outcome);
  };
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            controller.close();
            end("completed");
          } else {
            controller.enqueue(value);
          }
        } catch (error) {
          end(deadlineSignal.aborted ? "deadline_exceeded" : "origin_failed");
          controller.error(error);
        }
      },
      async cancel(reason) {
        end("cancelled");
        await reader.cancel(reason).catch(() => undefined);
      },
    },
    { highWaterMark: 0 },
  );
}
