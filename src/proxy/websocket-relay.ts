/**
 * Two accepted WebSockets joined: every message goes across as it came, and the first close or
 * error on either side closes the other with the same code and ends the relay exactly once.
 * Nothing is buffered here: a message is sent on as it arrives (the platform bounds a message
 * at 1 MiB).
 */
export type RelayEnd =
  | { readonly by: "client" | "origin"; readonly kind: "closed"; readonly code: number; readonly reason: string }
  | { readonly by: "client" | "origin"; readonly kind: "error" };

/** Codes a peer may report but no endpoint may send (RFC 6455 §7.4.1): sent on as 1000 or 1011. */
const UNSENDABLE: ReadonlyMap<number, number> = new Map([
  [1004, 1011],
  [1005, 1000],
  [1006, 1011],
  [1015, 1011],
]);

export function sendableCode(code: number): number {
  const mapped = UNSENDABLE.get(code);
  if (mapped !== undefined) return mapped;
  return code === 1000 || (code >= 1001 && code <= 1014) || (code >= 3000 && code <= 4999) ? code : 1011;
}

function closeQuietly(socket: WebSocket, code: number, reason: string): void {
  try {
    socket.close(sendableCode(code), reason.slice(0, 120));
  } catch {
    // Already closing or closed: the other side's close is the one that counts.
  }
}

export function relay(client: WebSocket, origin: WebSocket, ended: (end: RelayEnd) => void): void {
  let done = false;
  const end = (result: RelayEnd, other: WebSocket) => {
    if (done) return;
    done = true;
    if (result.kind === "closed") closeQuietly(other, result.code, result.reason);
    else closeQuietly(other, 1011, "the other side of the relay failed");
    ended(result);
  };
  const join = (from: WebSocket, to: WebSocket, by: "client" | "origin", other: "client" | "origin") => {
    from.addEventListener("message", (event) => {
      try {
        to.send(event.data);
      } catch {
        // The side it was sent to is broken: the one it came from is closed.
        end({ by: other, kind: "error" }, from);
      }
    });
    from.addEventListener("close", (event) => end({ by, kind: "closed", code: event.code, reason: event.reason }, to));
    from.addEventListener("error", () => end({ by, kind: "error" }, to));
  };
  join(client, origin, "client", "origin");
  join(origin, client, "origin", "client");
}
