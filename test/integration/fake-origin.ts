/**
 * A counting stand-in for the origin. The Worker's origin fetch is the global `fetch`, which
 * tests and the Worker share inside workerd, so replacing it here replaces the origin.
 * Every shed test asserts the count stays at zero.
 */
export interface FakeOrigin {
  readonly requests: Request[];
  restore(): void;
}

export type OriginHandler = (request: Request) => Response | Promise<Response>;

export function installFakeOrigin(handler: OriginHandler = () => Response.json({ ok: true })): FakeOrigin {
  const original = globalThis.fetch;
  const requests: Request[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    requests.push(request);
    return handler(request);
  }) as typeof fetch;
  return {
    requests,
    restore: () => {
      globalThis.fetch = original;
    },
  };
}

/**
 * Origin responses held open until the test lets them go, in arrival order. The origin side
 * polls its gate with a timer and builds its response itself: workerd forbids reading I/O
 * objects made in another context, and treats a wait on a promise only another context can
 * settle as a deadlock. The poll is bounded by HOLD_LIMIT_MS.
 */
const HOLD_LIMIT_MS = 10_000;

export function heldResponses() {
  const gates: Array<{ open: boolean; body: string; status: number }> = [];
  let released = 0;
  const handler: OriginHandler = async () => {
    const gate = { open: false, body: "done", status: 200 };
    gates.push(gate);
    for (let waited = 0; !gate.open && waited < HOLD_LIMIT_MS; waited += 2) await scheduler.wait(2);
    return new Response(gate.status === 204 ? null : gate.body, { status: gate.status });
  };
  return {
    handler,
    /** Requests that reached the origin and are still held. */
    get waiting() {
      return gates.length - released;
    },
    releaseNext(body = "done", status = 200) {
      const gate = gates[released];
      if (!gate) throw new Error("no held origin response");
      released += 1;
      Object.assign(gate, { open: true, body, status });
    },
  };
}

/** An origin that never answers, but honours the abort signal like a real fetch. */
export const hangingOrigin: OriginHandler = (request) =>
  new Promise<Response>((_, reject) => {
    request.signal.addEventListener("abort", () => reject(request.signal.reason));
  });

/**
 * An origin that answers at once and then writes `events` server-sent events `everyMs` apart
 * (`data: <n>`), like an event feed. Its body errors as soon as the fetch is aborted, as a real
 * fetch's does: the guard's cut reaches the client. The body exists in the guard's own request
 * context (the fake runs inside the guard's fetch), so nothing crosses contexts.
 */
export function eventStreamOrigin(events: number, everyMs: number): OriginHandler {
  return (request) => {
    const encoder = new TextEncoder();
    let sent = 0;
    let failed = false;
    const body = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          request.signal.addEventListener(
            "abort",
            () => {
              failed = true;
              controller.error(request.signal.reason);
            },
            { once: true },
          );
        },
        async pull(controller) {
          await scheduler.wait(everyMs);
          if (failed) return;
          sent += 1;
          controller.enqueue(encoder.encode(`data: ${sent}\n\n`));
          if (sent >= events) controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
  };
}
