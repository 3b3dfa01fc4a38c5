import { afterEach, describe, expect, it } from "vitest";
import { type FakeOrigin, type OriginHandler, heldResponses, installFakeOrigin } from "./fake-origin";
import { createTenant, guardFetch, proxied, stats, statsWhen, uniqueTenant } from "./support";

let origin: FakeOrigin | undefined;
afterEach(() => {
  origin?.restore();
  origin = undefined;
});

/**
 * An origin that upgrades every upgrade request and echoes each message; "close:<code>" makes it close
 * with that code. Like a real fetch, the socket is cut if the fetch's signal aborts, so a guard
 * that let its deadline reach an open socket would be seen.
 */
const echoOrigin: OriginHandler = (request) => {
  if (request.headers.get("upgrade") !== "websocket") return new Response("plain");
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  server.addEventListener("message", (event) => {
    const text = String(event.data);
    if (text.startsWith("close:")) server.close(Number(text.slice(6)), "origin done");
    else server.send(`echo ${text}`);
  });
  request.signal.addEventListener("abort", () => server.close(1011, "fetch aborted"));
  return new Response(null, { status: 101, webSocket: client });
};

function open(key: string, path = "/ws") {
  return proxied(key, path, { headers: { upgrade: "websocket" } });
}

/** The client's end of an upgraded answer, accepted, with its messages and close collected. */
function clientSocket(response: Response) {
  const socket = response.webSocket;
  if (!socket) throw new Error(`no WebSocket in the answer (status ${response.status})`);
  socket.accept();
  const messages: string[] = [];
  let closedWith: number | null = null;
  socket.addEventListener("message", (event) => {
    messages.push(String(event.data));
  });
  socket.addEventListener("close", (event) => {
    closedWith = event.code;
  });
  const until = async (condition: () => boolean) => {
    for (let waited = 0; !condition() && waited < 2_000; waited += 5) await scheduler.wait(5);
  };
  return {
    socket,
    messages,
    get closedWith() {
      return closedWith;
    },
    async echo(text: string): Promise<string | undefined> {
      const before = messages.length;
      socket.send(text);
      await until(() => messages.length > before);
      return messages[before];
    },
    async closed(): Promise<number | null> {
      await until(() => closedWith !== null);
      return closedWith;
    },
  };
}

const openCount = (tenant: string, n: number) => statsWhen(tenant, (s) => s.connections.open === n);

describe("WebSockets through the guard", () => {
  it("relays an echo both ways and counts the socket open until the client closes it", async () => {
    origin = installFakeOrigin(echoOrigin);
    const tenant = uniqueTenant("ws-echo");
    const key = await createTenant(tenant);
    const response = await open(key);
    expect(response.status).toBe(101);
    const ws = clientSocket(response);
    expect(await ws.echo("hello")).toBe("echo hello");
    expect(await ws.echo("again")).toBe("echo again");
    expect((await stats(tenant)).connections).toMatchObject({ open: 1, limit: 100 });
    expect(origin.requests[0]?.headers.get("upgrade")).toBe("websocket");
    expect(origin.requests[0]?.headers.get("x-guard-tenant")).toBe(tenant);
    ws.socket.close(1000, "bye");
    expect((await openCount(tenant, 0)).connections.open).toBe(0);
  });

  it("sheds the socket past maxConnections with 503 connections_full and every signal; the origin never sees it", async () => {
    origin = installFakeOrigin(echoOrigin);
    const tenant = uniqueTenant("ws-full");
    const key = await createTenant(tenant, { maxConnections: 1 });
    const first = clientSocket(await open(key));
    expect(await first.echo("one")).toBe("echo one");

    const second = await open(key);
    expect(second.status).toBe(503);
    expect(second.webSocket).toBeNull();
    expect(second.headers.get("content-type")).toContain("application/problem+json");
    expect(Number(second.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(second.headers.get("ratelimit-policy")).toBeTruthy();
    expect(second.headers.get("ratelimit")).toBeTruthy();
    expect(await second.json()).toMatchObject({ reason: "connections_full", tenant, status: 503 });
    expect(origin.requests).toHaveLength(1);
    // The first socket is not disturbed by the refusal.
    expect(await first.echo("still")).toBe("echo still");
  });

  it("frees the connection when the first socket closes, so a new one opens", async () => {
    origin = installFakeOrigin(echoOrigin);
    const tenant = uniqueTenant("ws-free");
    const key = await createTenant(tenant, { maxConnections: 1 });
    const first = clientSocket(await open(key));
    expect(await first.echo("a")).toBe("echo a");
    first.socket.close(1000, "done");
    await openCount(tenant, 0);

    const next = await open(key);
    expect(next.status).toBe(101);
    expect(await clientSocket(next).echo("b")).toBe("echo b");
  });

  it("frees the connection and passes the origin's close code on when the origin closes", async () => {
    origin = installFakeOrigin(echoOrigin);
    const tenant = uniqueTenant("ws-origin-close");
    const key = await createTenant(tenant, { maxConnections: 1 });
    const ws = clientSocket(await open(key));
    ws.socket.send("close:4001");
    expect(await ws.closed()).toBe(4001);
    expect((await openCount(tenant, 0)).connections.open).toBe(0);
    expect((await open(key)).status).toBe(101);
  });

  it("bounds only the handshake by the deadline: a socket open past timeoutMs still echoes", async () => {
    origin = installFakeOrigin(echoOrigin);
    const tenant = uniqueTenant("ws-deadline");
    const key = await createTenant(tenant, { timeoutMs: 200 });
    const ws = clientSocket(await open(key));
    await scheduler.wait(500);
    expect(ws.closedWith).toBeNull();
    expect(await ws.echo("late")).toBe("echo late");
  });

  it("holds no in-flight slot while open, and plain requests still queue and shed on maxInFlight", async () => {
    const held = heldResponses();
    origin = installFakeOrigin((request) =>
      request.headers.has("upgrade") ? echoOrigin(request) : held.handler(request),
    );
    const tenant = uniqueTenant("ws-inflight");
    const key = await createTenant(tenant, { maxInFlight: 1, maxQueue: 0, maxConnections: 5 });
    const ws = clientSocket(await open(key));
    expect(await ws.echo("x")).toBe("echo x");

    const plain = proxied(key, "/plain");
    for (let waited = 0; held.waiting < 1 && waited < 2_000; waited += 5) await scheduler.wait(5);
    expect(held.waiting).toBe(1);
    const over = await proxied(key, "/plain");
    expect(over.status).toBe(503);
    expect(await over.json()).toMatchObject({ reason: "queue_full" });
    held.releaseNext("served");
    expect(await (await plain).text()).toBe("served");
    expect(await ws.echo("y")).toBe("echo y");
  });

  it("spends a rate token per upgrade: past the burst it sheds 429 rate_limited", async () => {
    origin = installFakeOrigin(echoOrigin);
    const tenant = uniqueTenant("ws-rate");
    const key = await createTenant(tenant, { rate: 0.01, burst: 1, maxConnections: 5 });
    expect((await open(key)).status).toBe(101);
    const second = await open(key);
    expect(second.status).toBe(429);
    expect(await second.json()).toMatchObject({ reason: "rate_limited" });
    expect(origin.requests).toHaveLength(1);
  });

  it("refuses every WebSocket with 403 websockets_refused when maxConnections is 0", async () => {
    origin = installFakeOrigin(echoOrigin);
    const tenant = uniqueTenant("ws-off");
    const key = await createTenant(tenant, { maxConnections: 0 });
    const response = await open(key);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ reason: "websockets_refused" });
    expect(origin.requests).toHaveLength(0);
    // Plain requests are not affected.
    expect((await proxied(key, "/plain")).status).toBe(200);
  });

  it("shows the open sockets and the limit in the tenant's admin stats", async () => {
    origin = installFakeOrigin(echoOrigin);
    const tenant = uniqueTenant("ws-stats");
    const key = await createTenant(tenant, { maxConnections: 3 });
    clientSocket(await open(key));
    clientSocket(await open(key));
    const answer = await guardFetch(`/__guard/tenants/${tenant}`, {
      headers: { authorization: "Bearer test-admin-token-0123456789" },
    });
    expect(await answer.json()).toMatchObject({ connections: { open: 2, limit: 3, holders: 1 } });
  });
});
