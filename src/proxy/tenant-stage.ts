/**
 * The tenant stage of the request path: this isolate's lease of the tenant's slots and tokens
 * (src/edge/tenant-leases.ts). A request is admitted, queued or shed here; the tenant's object
 * is called only to renew the lease, in batches, off the request's own path unless the lease
 * is cold.
 */
import { DEFAULT_TIMEOUT_MS } from "../admission/deadline";
import type { StagePorts } from "./forward-admitted";
import { guardConfig } from "../config";
import { type StageVerdict, TenantLeases } from "../edge/tenant-leases";
import type { Env } from "../env";
import type { LeaseAnswer, LeaseReport } from "../lease/lease-protocol";
import { pessimisticQuota } from "../signals";
import { maxStreamMsOf } from "../tenant/route-rules";
import { type TenantConfig, limitsOf } from "../tenant/tenant-config";
import { callObject } from "./object-calls";
import type { Admitted, Plan } from "./plan";
import { placement } from "../object-placement";

/** One per isolate: the leases every request of this isolate shares. */
const leases = new TenantLeases();

/** For tests: forgets this isolate's leases (their objects reclaim them). */
export function clearTenantLeases(): void {
  leases.clear();
}

export function tenantLeaseSnapshot(objectName: string) {
  return leases.snapshot(objectName);
}

/**
 * The longest a tenant's request may hold a slot: its longest deadline budget, and for a
 * streamed route that budget (to the headers) plus the body's `maxStreamMs`.
 */
export function coverMsOf(config: TenantConfig): number {
  const fallback = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let longest = fallback;
  for (const route of config.routes) {
    const budget = route.timeoutMs ?? (route.stream ? fallback : 0);
    longest = Math.max(longest, budget + (maxStreamMsOf(route) ?? 0));
  }
  return longest;
}

export type TenantGate =
  | { readonly kind: "admit"; readonly admitted: Admitted }
  | Exclude<StageVerdict, { kind: "admit" }>;

export async function passTenantStage(
  env: Env,
  ctx: ExecutionContext,
  request: Request,
  plan: Plan,
  ports: StagePorts,
): Promise<TenantGate> {
  const { identity } = plan;
  const verdict = await leases.enter(
    {
      objectName: identity.objectName,
      arrival: {
        id: crypto.randomUUID(),
        priority: plan.priority,
        deadline: plan.deadline,
        fullBehaviour: plan.fullBehaviour,
      },
      limits: identity.carriedLimits ?? limitsOf(identity.tenant.config),
      carriedLimits: identity.carriedLimits,
      coverMs: coverMsOf(identity.tenant.config),
      signal: request.signal ?? null,
    },
    {
      call: (objectName: string, report: LeaseReport) =>
        callObject<LeaseAnswer>(
          // A fresh stub per try: a stub that saw an error may stay broken.
          async () => await env.TENANT_GUARD.getByName(objectName, placement(env)).lease(report),
          plan.deadline - ports.clock.now(),
          ports.random,
        ),
      now: () => ports.clock.now(),
      wait: (ms: number) => scheduler.wait(ms),
      waitUntil: (work: Promise<unknown>) => ctx.waitUntil(work),
      wakeByPromise: guardConfig(env).waiterWake === "promise",
    },
  );
  if (verdict.kind !== "admit") return verdict;
  const { slot } = verdict;
  return {
    kind: "admit",
    admitted: {
      requestId: crypto.randomUUID(),
      waitedMs: slot.waitedMs,
      quota: slot.quota ?? pessimisticQuota(identity.tenant.config),
      decidedAt: slot.decidedAt,
      failOpen: false,
      release: slot.release,
    },
  };
}
