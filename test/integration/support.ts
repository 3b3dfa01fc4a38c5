import { env, exports } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import type { DecisionEvent } from "../../src/analytics";
import type { Env } from "../../src/env";
import type { LeaseAnswer, LeaseReport } from "../../src/lease/lease-protocol";
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
 * The object learns of an isolate's decisions only with its next renewal (every 250 ms while the
 * lease holds or wants anything; see src/lease/lease-protocol.ts), so stats read right after a
 * response may lag it. Waits for the condition a bounded number of turns, then returns the last
 * stats either way: the caller's assertions say what was expected.
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

/**
 * Stats once the isolate has reported `arrived` arrivals and nothing of them is still in use or
 * queued: the report that carried the last release carried the in-use count with it, so the
 * counters then cover every decision made for them.
 */
export function statsReported(tenant: string, arrived: number): Promise<TenantStats> {
  return statsWhen(tenant, (s) => s.counters.arrived >= arrived && s.state.inFlight === 0 && s.state.queued === 0, 200);
}

/**
 * Stats once every isolate gave its lease back (idle for LEASE_TIMING.idleReturnMs, 1 s): its
 * leaving report settles every slot and token, so the counters are final and nothing is out.
 */
export function statsReturned(tenant: string): Promise<TenantStats> {
  return statsWhen(tenant, (s) => s.state.leases.holders === 0 && s.counters.arrived > 0, 400);
}

export function proxied(tenantKey: string, path = "/api/thing", init: RequestInit = {}) {
  return guardFetch(path, {
    ...init,
    headers: { "x-api-key": tenantKey, ...(init.headers as Record<string, string>) },
  });
}

/**
 * After any fault, the counters still add up: every arrival was admitted, shed or is queued;
 * every admission was released, reaped, or still holds a slot. Evaluate it on stats taken after
 * the isolate reported (statsReported, statsReturned): between renewals the object's counters
 * and in-flight count lag the edge. A slot lingering after a deadline abort is already released
 * but still in use, so evaluate it once no slot lingers.
 */
export function expectReconciled(s: TenantStats): void {
  const { arrived, admitted, shed, gone, released, reaped } = s.counters;
  if (arrived !== admitted + shed + gone + s.state.queued) {
    throw new Error(
      `arrived ${arrived} != admitted ${admitted} + shed ${shed} + gone ${gone} + queued ${s.state.queued}`,
    );
  }
  if (admitted !== released + reaped + s.state.inFlight) {
    throw new Error(`admitted ${admitted} != released ${released} + reaped ${reaped} + in flight ${s.state.inFlight}`);
  }
}

/**
 * The real Worker with a recording analytics sink (and no jitter), on `env` with `overrides`
 * (a faulty namespace, another fail mode). `send` reads the body unless told not to (a held
 * origin's response must stay open); `signal` stands for the client: aborting it is the client
 * going away. `settled` waits for the request's waitUntil work: its release, and the renewals
 * that ran in its context (a renewal's heartbeat keeps renewing until the lease is given back
 * after LEASE_TIMING.idleReturnMs idle, so it can take over a second).
 */
export function recordingGuard(overrides: Partial<Record<keyof Env, unknown>> = {}) {
  const events: DecisionEvent[] = [];
  const app = createApp({ sink: () => ({ record: (event) => events.push(event) }), random: () => 0 });
  const guardEnv = { ...env, ...overrides } as Env;
  const send = async (
    key: string,
    headers: Record<string, string> = {},
    options: { read?: boolean; signal?: AbortSignal; path?: string } = {},
  ) => {
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request(`http://guard.test${options.path ?? "/flood"}`, {
        headers: { "x-api-key": key, ...headers },
        ...(options.signal ? { signal: options.signal } : {}),
      }),
      guardEnv,
      ctx,
    );
    const body = options.read === false ? "" : await response.text();
    return { response, body, settled: () => waitOnExecutionContext(ctx) };
  };
  return { events, send };
}

/**
 * The tenant objects behind a switch, for `recordingGuard({ TENANT_GUARD: objects.namespace })`:
 * "pass" forwards each lease call to the real object; "freeze" holds every call and every answer
 * until switched back (the object is out of reach, yet nothing fails); "throw" fails every call
 * as a broken object would. `answered` counts the answers delivered, `refused` the calls the
 * real object threw on, `waitingReports` the reports sent while the isolate had requests queued.
 * Held calls poll the switch on a timer: the pool turns cross-request promise resolution off.
 */
export function switchableObjects() {
  let mode: "pass" | "freeze" | "throw" = "pass";
  let answered = 0;
  let refused = 0;
  let waitingReports = 0;
  const held = async () => {
    for (let waited = 0; mode === "freeze" && waited < 10_000; waited += 2) await scheduler.wait(2);
  };
  const namespace = {
    getByName: (name: string) => ({
      lease: async (report: LeaseReport): Promise<LeaseAnswer> => {
        await held();
        if (mode === "throw") throw new Error("tenant object broke");
        if (Object.values(report.waiting).some((n) => n > 0)) waitingReports += 1;
        const answer = await env.TENANT_GUARD.getByName(name)
          .lease(report)
          .catch((error: unknown) => {
            refused += 1;
            throw error;
          });
        await held();
        answered += 1;
        return answer;
      },
    }),
  };
  return {
    namespace,
    set(next: typeof mode) {
      mode = next;
    },
    get answered() {
      return answered;
    },
    get refused() {
      return refused;
    },
    get waitingReports() {
      return waitingReports;
    },
  };
}
