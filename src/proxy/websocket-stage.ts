/**
 * A WebSocket upgrade, once the tenant stage admitted it (a token spent, an in-flight slot for
 * the handshake): one of the tenant's `maxConnections` is taken from its object, the origin is
 * asked to upgrade within the request's deadline, and then the in-flight slot goes back; the
 * open socket holds only its connection, released exactly once when either side closes or fails.
 * The deadline bounds the handshake only: an open socket is never cut by it.
 */
import { remainingMs } from "../admission/deadline";
import type { ConnectionAnswer } from "../connections/connection-rpc";
import { CONNECTION_TIMING } from "../connections/connection-book";
import { guardConfig } from "../config";
import { connectionClosed, connectionHolder, connectionOpened, renewalDue } from "../edge/open-connections";
import { guardErrorResponse } from "../guard-errors";
import { placement } from "../object-placement";
import { setRateLimitFields } from "../ratelimit-fields";
import { maxConnectionsOf } from "../tenant/tenant-config";
import { UNAVAILABLE_RETRY_MS } from "./fail-mode";
import { type ForwardContext, originFetchOf, originRequest } from "./forward-admitted";
import { clientResponseHeaders } from "./header-hygiene";
import type { Admitted } from "./plan";
import { clientGone, planEvent, shed } from "./shed-answer";
import { relay } from "./websocket-relay";

/** No better estimate of when a socket closes: a few seconds, jittered by the Retry-After maths. */
export const CONNECTIONS_RETRY_MS = 5_000;

/** After a handshake the origin did not answer in time: a short pause before a retry. */
const HANDSHAKE_RETRY_MS = 1_000;

/** Per hop: the runtime makes its own handshake to the origin; the subprotocol goes on. */
const HANDSHAKE_HEADERS = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"];

export function isWebSocketUpgrade(request: Request): boolean {
  return request.method === "GET" && request.headers.get("upgrade")?.trim().toLowerCase() === "websocket";
}

export async function forwardWebSocket(fc: ForwardContext, admission: Admitted): Promise<Response> {
  const { request, env, ctx, ports, plan } = fc;
  const tenant = plan.identity.tenant.name;
  const limit = maxConnectionsOf(plan.identity.tenant.config);
  if (limit === 0) {
    admission.release("not_forwarded");
    return guardErrorResponse("websockets_refused", `tenant '${tenant}' accepts no WebSockets (maxConnections is 0)`, {
      reason: "websockets_refused",
    });
  }
  const objectName = plan.identity.objectName;
  const holder = connectionHolder();
  const object = () => env.TENANT_GUARD.getByName(objectName, placement(env));
  const refuse = (reason: "connections_full" | "guard_unavailable", retryAfterMs: number) => {
    admission.release("not_forwarded");
    const stage = reason === "connections_full" ? "tenant" : "guard";
    return shed(ports, request, plan, { reason, retryAfterMs, quota: admission.quota, waitedMs: 0, stage });
  };

  let answer: ConnectionAnswer;
  try {
    answer = await object().openConnection({ holder, limit });
  } catch (error) {
    console.error(`connection count of '${tenant}' unavailable`, error);
    return refuse("guard_unavailable", UNAVAILABLE_RETRY_MS);
  }
  if (answer.kind === "full") return refuse("connections_full", CONNECTIONS_RETRY_MS);
  connectionOpened(objectName, ports.clock.now());

  let closed = false;
  const closeConnection = () => {
    if (closed) return;
    closed = true;
    const told = object()
      .closeConnection({ holder })
      .catch((error: unknown) => console.error(`closing a connection of '${tenant}' failed`, error))
      .finally(() => connectionClosed(objectName));
    ctx.waitUntil(told);
  };

  const handshake = await upgradeAtOrigin(fc, admission);
  if (handshake.kind === "answer") {
    closeConnection();
    return handshake.response;
  }
  // The handshake is over: its in-flight slot goes back, the socket holds its connection only.
  admission.release("completed");
  const upstream = handshake.socket;
  upstream.accept();
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  const renewal = setInterval(() => {
    const open = renewalDue(objectName, ports.clock.now());
    if (open === null) return;
    const renewed = object()
      .renewConnections({ holder, open })
      .catch((error: unknown) => console.error(`renewing connections of '${tenant}' failed`, error));
    ctx.waitUntil(renewed);
  }, CONNECTION_TIMING.renewEveryMs);
  relay(server, upstream, () => {
    clearInterval(renewal);
    closeConnection();
  });

  const headers = new Headers();
  const protocol = handshake.headers.get("sec-websocket-protocol");
  if (protocol) headers.set("sec-websocket-protocol", protocol);
  setRateLimitFields(headers, admission.quota, null);
  return new Response(null, { status: 101, webSocket: client, headers });
}

type Handshake =
  | { readonly kind: "socket"; readonly socket: WebSocket; readonly headers: Headers }
  /** No socket: the answer to send (its admission already released). */
  | { readonly kind: "answer"; readonly response: Response };

/** Asks the origin to upgrade, aborted if it has not answered by the deadline; the timer stops at its answer. */
async function upgradeAtOrigin(fc: ForwardContext, admission: Admitted): Promise<Handshake> {
  const { request, env, ports, plan } = fc;
  const startedAt = ports.clock.now();
  const timeoutMs = remainingMs(plan.deadline, startedAt);
  const { headers, target } = await originRequest(fc, admission, {
    timeoutMs,
    sentAt: startedAt,
    maxStreamMs: null,
    originLimit: null,
  });
  for (const name of HANDSHAKE_HEADERS) headers.delete(name);
  headers.set("upgrade", "websocket");

  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new DOMException("handshake deadline", "TimeoutError")), timeoutMs);
  const record = (status: number, reason: string) =>
    ports.sink.record({
      ...planEvent(request, plan),
      outcome: reason === "origin_failed" ? "error" : "admitted",
      reason,
      decidedAt: admission.decidedAt,
      stage: "forward",
      queueWaitMs: admission.waitedMs,
      queueDepth: admission.quota.queued,
      status,
      originMs: ports.clock.now() - startedAt,
      inFlight: admission.quota.inFlight,
      originLimit: 0,
    });
  try {
    const response = await originFetchOf(guardConfig(env), ports)(target, {
      method: "GET",
      headers,
      redirect: "manual",
      signal: AbortSignal.any([deadline.signal, request.signal]),
    });
    const socket = response.webSocket;
    if (response.status === 101 && socket) {
      record(101, "websocket");
      return { kind: "socket", socket, headers: response.headers };
    }
    // The origin declined the upgrade: its answer goes to the client as it is.
    admission.release("completed");
    record(response.status, "websocket_declined");
    const answer = new Response(response.body, {
      status: response.status,
      headers: clientResponseHeaders(response.headers),
    });
    return { kind: "answer", response: answer };
  } catch (error) {
    if (deadline.signal.aborted) {
      admission.release("deadline_exceeded");
      const response = shed(ports, request, plan, {
        reason: "deadline_exceeded",
        retryAfterMs: HANDSHAKE_RETRY_MS,
        quota: admission.quota,
        waitedMs: admission.waitedMs,
        stage: "forward",
        decidedAt: admission.decidedAt,
        originMs: ports.clock.now() - startedAt,
      });
      return { kind: "answer", response };
    }
    if (request.signal.aborted) {
      admission.release("abandoned");
      return { kind: "answer", response: clientGone() };
    }
    console.error(`WebSocket handshake for '${plan.identity.tenant.name}' failed`, error);
    admission.release("origin_failed");
    record(502, "origin_failed");
    const response = guardErrorResponse("origin_unreachable", "the origin could not be reached for the WebSocket", {
      reason: "origin_failed",
    });
    return { kind: "answer", response };
  } finally {
    clearTimeout(timer);
  }
}
