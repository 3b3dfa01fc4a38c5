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
  return { requests, restore: () => void (globalThis.fetch = original) };
}

/** An origin response held open until the test lets it go. */
export function heldResponses() {
  const pending: Array<(response: Response) => void> = [];
  const handler: OriginHandler = () => new Promise<Response>((resolve) => pending.push(resolve));
  return {
    handler,
    get waiting() {
      return pending.length;
    },
    releaseNext(response: Response = new Response("done")) {
      const next = pending.shift();
      if (!next) throw new Error("no held origin response");
      next(response);
    },
  };
}

/** An origin that never answers, but honours the abort signal like a real fetch. */
export const hangingOrigin: OriginHandler = (request) =>
  new Promise<Response>((_, reject) => {
    request.signal.addEventListener("abort", () => reject(request.signal.reason));
  });
