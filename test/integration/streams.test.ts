import { afterEach, describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { DEFAULT_TIMEOUT_MS } from "../../src/admission/deadline";
import { LEASE_GRACE_MS } from "../../src/admission/leases";
import { LEASE_TIMING } from "../../src/lease/lease-protocol";
import type { OriginGuard } from "../../src/origin-guard";
import { clearTenantLeases } from "../../src/proxy/tenant-stage";
import type { TenantGuard } from "../../src/tenant-guard";
import { type FakeOrigin, type OriginHandler, eventStreamOrigin, installFakeOrigin } from "./fake-origin";
import type { TenantConfig } from "../../src/tenant/tenant-config";
import {
  admin,
  createTenant,
  proxied,
  recordingGuard,
  stats,
  statsReported,
  statsWhen,
  tenantStub,
  uniqueTenant,
} from "./support";

let origin: FakeOrigin | undefined;
afterEach(async () => {
  origin?.restore();
  origin = undefined;
  await admin("DELETE", "/origin");
});

/** A deadline of 300 ms on every route; `/events` streams, `/plain` does not. */
function streamingTenant(label: string, stream: { maxStreamMs?: number } = {}, limits: Partial<TenantConfig> = {}) {
  const tenant = uniqueTenant(label);
  const routes = [
    { method: "GET", path: "/events", stream: true, timeoutMs: 300, ...stream },
    { method: "GET", path: "/plain", timeoutMs: 300 },
  ];
  return { tenant, key: createTenant(tenant, { routes, ...limits }) };
}

/** `/events` answers with the event stream, every other path at once. */
function eventsAndPlain(events: OriginHandler): OriginHandler {
  return (request) => (new URL(request.url).pathname === "/events" ? events(request) : new Response("ok"));
}

/** Reads a body to its end (or its failure), noting when each chunk came. */
async function readAll(response: Response, startedAt: number) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const chunks: Array<{ text: string; atMs: number }> = [];
  let failure: unknown = null;
  for (;;) {
    try {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push({ text: decoder.decode(value), atMs: Date.now() - startedAt });
    } catch (error) {
      failure = error;
      break;
    }
  }
  const events = chunks.flatMap((c) => c.text.split("\n\n").filter((e) => e.startsWith("data:")));
  return { chunks, events, failure, endedAtMs: Date.now() - startedAt };
}

describe("streamed routes: the deadline bounds the time to headers", () => {
  it("passes every event of a stream that runs three times past the deadline, as it comes", async () => {
    origin = installFakeOrigin(eventStreamOrigin(10, 100));
    const { key } = streamingTenant("sse");
    const startedAt = Date.now();
    const response = await proxied(await key, "/events");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const read = await readAll(response, startedAt);
    expect(read.failure).toBeNull();
    expect(read.events).toEqual(Array.from({ length: 10 }, (_, i) => `data: ${i + 1}`));
    expect(read.endedAtMs).toBeGreaterThanOrEqual(900);
    // Streamed, not gathered: the first event arrived long before the last.
    expect(read.chunks[0]!.atMs).toBeLessThan(read.endedAtMs - 500);
    // What the origin is told: its deadline is for the headers, the body may run 5 minutes after.
    const seen = origin.requests[0]!;
    expect(Number(seen.headers.get("x-request-timeout-ms"))).toBeLessThanOrEqual(300);
    expect(seen.headers.get("x-stream-max-ms")).toBe("300000");
  });

  it("holds the tenant's slot for the whole stream, frees it at the end, and samples its hold at the headers", async () => {
    origin = installFakeOrigin(eventsAndPlain(eventStreamOrigin(8, 100)));
    const { tenant, key } = streamingTenant("held", {}, { maxInFlight: 1, maxQueue: 0 });
    const apiKey = await key;
    const startedAt = Date.now();
    const streaming = proxied(apiKey, "/events").then((response) => readAll(response, startedAt));
    await scheduler.wait(400);
    // Past the stream's deadline, its slot is still taken: the only slot, and no queue.
    const refused = await proxied(apiKey, "/plain");
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { reason: string }).reason).toBe("queue_full");
    expect(origin.requests).toHaveLength(1);
    const read = await streaming;
    expect(read.events).toHaveLength(8);
    const after = await proxied(apiKey, "/plain");
    expect(after.status).toBe(200);
    await after.text();
    const s = await statsReported(tenant, 3);
    expect(s.counters).toMatchObject({ admitted: 2, released: 2, deadlineExceeded: 0 });
    // The hold estimate took the stream's time to headers, not its 800 ms.
    expect(s.state.holdMsEwma).not.toBeNull();
    expect(s.state.holdMsEwma!).toBeLessThan(300);
  });

  it("cuts a stream at maxStreamMs with an error the client sees, and frees its slot at once", async () => {
    origin = installFakeOrigin(eventsAndPlain(eventStreamOrigin(50, 100)));
    const { tenant, key } = streamingTenant("cut", { maxStreamMs: 450 }, { maxInFlight: 1, maxQueue: 0 });
    const apiKey = await key;
    const guard = recordingGuard();
    const startedAt = Date.now();
    const sent = await guard.send(apiKey, {}, { path: "/events", read: false });
    expect(sent.response.status).toBe(200);
    const read = await readAll(sent.response, startedAt);
    expect(read.failure).not.toBeNull();
    expect(read.events.length).toBeGreaterThanOrEqual(2);
    expect(read.events.length).toBeLessThan(10);
    expect(read.endedAtMs).toBeGreaterThanOrEqual(400);
    expect(read.endedAtMs).toBeLessThan(1_500);
    expect(guard.events.at(-1)).toMatchObject({ outcome: "admitted", reason: "stream_cut", status: 200 });
    // Nothing runs on at the origin (its connection was closed), so nothing lingers.
    const next = await guard.send(apiKey, {}, { path: "/plain", read: false });
    expect(next.response.status).toBe(200);
    await next.response.body?.cancel();
    const s = await statsWhen(tenant, (x) => x.counters.released >= 2 && x.state.inFlight === 0);
    expect(s.counters).toMatchObject({ deadlineExceeded: 0, reaped: 0 });
  });

  it("counts a client that leaves mid-stream as cancelled, never as an origin failure", async () => {
    origin = installFakeOrigin(eventStreamOrigin(20, 100));
    const { tenant, key } = streamingTenant("leave");
    const guard = recordingGuard();
    const client = new AbortController();
    const sent = await guard.send(await key, {}, { path: "/events", read: false, signal: client.signal });
    const reader = sent.response.body!.getReader();
    await reader.read();
    await reader.read();
    client.abort();
    await expect(reader.read()).rejects.toBeDefined();
    expect(guard.events.at(-1)).toMatchObject({ outcome: "admitted", reason: "cancelled" });
    const s = await statsWhen(tenant, (x) => x.counters.released >= 1 && x.state.inFlight === 0);
    expect(s.counters).toMatchObject({ originFailed: 0, released: 1 });
  });

  it("still cuts a route that does not stream at its deadline, body included", async () => {
    origin = installFakeOrigin(eventStreamOrigin(10, 100));
    const { key } = streamingTenant("plain");
    const guard = recordingGuard();
    const startedAt = Date.now();
    const sent = await guard.send(await key, {}, { path: "/plain", read: false });
    const read = await readAll(sent.response, startedAt);
    expect(read.failure).not.toBeNull();
    expect(read.events.length).toBeLessThan(4);
    expect(read.endedAtMs).toBeLessThan(900);
    expect(guard.events.at(-1)).toMatchObject({ outcome: "error", reason: "deadline_exceeded" });
    expect(origin.requests[0]!.headers.has("x-stream-max-ms")).toBe(false);
  });

  it("keeps the origin stage's service time to the stream's headers", async () => {
    const put = await admin("PUT", "/origin", { maxInFlight: 4, minInFlight: 1 });
    expect(put.status).toBe(200);
    origin = installFakeOrigin(eventStreamOrigin(6, 100));
    const { key } = streamingTenant("stage");
    const response = await proxied(await key, "/events");
    expect((await readAll(response, Date.now())).events).toHaveLength(6);
    type View = { stats: { inFlight: number; counters: { released: number }; latency: { serviceMs: number | null } } };
    let view = (await (await admin("GET", "/origin")).json()) as View;
    for (let turn = 0; turn < 200 && view.stats.counters.released < 1; turn += 1) {
      await scheduler.wait(10);
      view = (await (await admin("GET", "/origin")).json()) as View;
    }
    expect(view.stats.inFlight).toBe(0);
    expect(view.stats.latency.serviceMs).not.toBeNull();
    expect(view.stats.latency.serviceMs!).toBeLessThan(300);
  });

  it("keeps a stream's slots past where a deadline's lease would be reclaimed, up to its maxStreamMs", async () => {
    const put = await admin("PUT", "/origin", { maxInFlight: 4, minInFlight: 1 });
    expect(put.status).toBe(200);
    origin = installFakeOrigin(eventStreamOrigin(10, 100));
    const { tenant, key } = streamingTenant("reap", { maxStreamMs: 60_000 });
    const startedAt = Date.now();
    const streaming = proxied(await key, "/events").then((response) => readAll(response, startedAt));
    await statsWhen(tenant, (x) => x.state.inFlight === 1);
    const shard = env.ORIGIN_GUARD.getByName("origin:0");
    const inFlightAt = async (now: number) => {
      await runInDurableObject(shard, (instance: OriginGuard) => instance.reapAt(now));
      const view = (await (await admin("GET", "/origin")).json()) as { stats: { inFlight: number } };
      return view.stats.inFlight;
    };
    // Past its deadline (300 ms) and the grace, the stream still runs: its origin slot stays taken.
    expect(await inFlightAt(startedAt + 300 + LEASE_GRACE_MS + 1_000)).toBe(1);
    // Past the stream's own limit too, its holder is presumed gone.
    expect(await inFlightAt(startedAt + 300 + 60_000 + LEASE_GRACE_MS + 1_000)).toBe(0);
    // The tenant's object keeps a vanished isolate's slots as long as a stream could run.
    clearTenantLeases();
    const lapse = startedAt + LEASE_TIMING.ttlMs + DEFAULT_TIMEOUT_MS + LEASE_TIMING.graceMs + 1_000;
    await runInDurableObject(tenantStub(tenant), (instance: TenantGuard) => instance.reapAt(lapse));
    expect((await stats(tenant)).state.inFlight).toBe(1);
    expect((await streaming).events).toHaveLength(10);
  });
});
