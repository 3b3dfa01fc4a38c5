import { env, exports } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import type { DecisionEvent } from "../../src/analytics";
import { createApp } from "../../src/app";
import type { TenantConfig } from "../../src/tenant/tenant-config";
import type { TenantStats } from "../../src/tenant-guard";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
const BASE = "http://guard.test";

let counter = 0;
/** Every test gets its own tenant, so its Durable Object and KV entries are its own. */
export function uniqueTenant(label: string): string {
  counter += 1;
  return `${label}-${counter}-${Math.floor(Math.random() * 1e9).toString(36)}`;
}

export function guardFetch(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, init));
}

export function admin(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return guardFetch(`/__guard${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
}

export const LIMITS = { rate: 200, burst: 1000, maxInFlight: 10, maxQueue: 10, maxWaitMs: 2000 };

/** Creates a tenant with one API key; returns the key. */
export async function createTenant(tenant: string, config: Partial<TenantConfig> = {}): Promise<string> {
  const put = await admin("PUT", `/tenants/${tenant}`, { ...LIMITS, ...config });
  if (put.status !== 200) throw new Error(`PUT tenant failed: ${put.status} ${await put.text()}`);
  const key = `key-${tenant}-0123456789abcdef`;
  const post = await admin("POST", `/tenants/${tenant}/keys`, { key });
  if (post.status !== 201) throw new Error(`POST key failed: ${post.status} ${await post.text()}`);
  return key;
}

export function tenantStub(tenant: string) {
  return env.TENANT_GUARD.getByName(`tenant:${tenant}`);
}

export async function stats(tenant: string): Promise<TenantStats> {
  return tenantStub(tenant).stats();
}

/**
 * Releases travel in waitUntil, after the response: a test that reads stats right after a body
 * ends may arrive first. Waits for the condition a bounded number of turns.
 */
export async function statsWhen(
  tenant: string,
  condition: (s: TenantStats) => boolean,
  turns = 100,
): Promise<TenantStats> {
  let last = await stats(tenant);
  for (let attempt = 0; attempt < turns && !condition(last); attempt += 1) {
    await scheduler.wait(10);
    last = await stats(tenant);
  }
  return last;
}

export function proxied(tenantKey: string, path = "/api/thing", init: RequestInit = {}) {
  return guardFetch(path, {
    ...init,
    headers: { "x-api-key": tenantKey, ...(init.headers as Record<string, string>) },
  });
}

/**
 * After any fault, the counters still add up: every arrival was admitted, shed or is queued;
 * every admission was released, reaped, or still holds a slot (lingering slots are already
 * counted as released; credit slots belong to admissions not yet reported).
 */
export function expectReconciled(s: TenantStats): void {
  const { arrived, admitted, shed, released, reaped } = s.counters;
  if (arrived !== admitted + shed + s.state.queued) {
    throw new Error(`arrived ${arrived} != admitted ${admitted} + shed ${shed} + queued ${s.state.queued}`);
  }
  const holding = s.state.inFlight - s.state.lingering - s.state.creditSlots;
  if (admitted !== released + reaped + holding) {
    throw new Error(`admitted ${admitted} != released ${released} + reaped ${reaped} + holding ${holding}`);
  }
}

/**
 * The real Worker with a recording analytics sink (and no jitter). `send` reads the body unless
 * told not to (a held origin's response must stay open); `settled` waits for the request's
 * waitUntil work: releases, reports, credit returns.
 */
export function recordingGuard() {
  const events: DecisionEvent[] = [];
  const app = createApp({ sink: () => ({ record: (event) => events.push(event) }), random: () => 0 });
  const send = async (key: string, headers: Record<string, string> = {}, options: { read?: boolean } = {}) => {
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request("http://guard.test/flood", { headers: { "x-api-key": key, ...headers } }),
      env,
      ctx,
    );
    const body = options.read === false ? "" : await response.text();
    return { response, body, settled: () => waitOnExecutionContext(ctx) };
  };
  return { events, send };
}
