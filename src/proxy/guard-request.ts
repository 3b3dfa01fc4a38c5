/**
 * The proxy path: resolve the tenant, classify, pass the tenant stage (the tenant's object, or
 * this isolate's verdict or credit), then the origin stage (when configured), then forward
 * (streaming, deadline attached, slots released when the body ends) or shed at once.
 */
import { guardConfig } from "../config";
import type { Env } from "../env";
import { OriginDirectory } from "../origin/origin-directory";
import { pessimisticQuota } from "../signals";
import type { Quota } from "../tenant/rpc";
import { TenantDirectory } from "../tenant/tenant-directory";
import {
  UNAVAILABLE_RETRY_MS,
  type ForwardContext,
  type ProxyPorts,
  failOpenSlot,
  forwardAdmitted,
} from "./forward-admitted";
import { anonymousIdentity, resolveIdentity } from "./identity";
import { originParty, shedAtOriginEdge } from "./origin-stage";
import { type Admitted, plan } from "./plan";
import { shed } from "./shed-answer";
import { admitOnCredit, admittedByObject, askAdmission, keepCredit, shedAtTenantEdge } from "./tenant-stage";

export type { ProxyPorts } from "./forward-admitted";

export async function guardRequest(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  ports: ProxyPorts,
): Promise<Response> {
  const now = Date.now();
  const config = guardConfig(env);
  const directory = new TenantDirectory(env.TENANTS);
  const url = new URL(request.url);
  const clientIp = request.headers.get("cf-connecting-ip");
  const apiKey = request.headers.get("x-api-key");
  const origin = await new OriginDirectory(env.TENANTS).config(now);

  let current = plan(request, url, await resolveIdentity(apiKey, clientIp, directory, config, now), now);
  const forward = (admitted: Admitted) => {
    const fc: ForwardContext = { request, url, env, ctx, ports, plan: current, origin };
    return forwardAdmitted(fc, admitted);
  };

  // The origin (or its stage) already said no to this tenant's kind of request: the cheapest
  // answer comes first, before any tenant token is spent.
  if (origin) {
    const held = shedAtOriginEdge(
      env,
      ctx,
      origin,
      {
        tenant: originParty(current.identity),
        weight: current.identity.tenant.config.weight,
        priority: current.priority,
        deadline: current.deadline,
      },
      now,
      ports.random,
    );
    if (held) return shed(ports, request, current, { ...held, quota: null, stage: "origin" });
  }

  const onCredit = admitOnCredit(env, ctx, current, now);
  if (onCredit) return forward(onCredit);
  const shedLocally = shedAtTenantEdge(request, env, ctx, ports, current, now);
  if (shedLocally) return shedLocally;
  let admission = await askAdmission(env, ctx, current, ports.random);
  if (admission.kind === "unconfigured" && !current.identity.carriedLimits) {
    // The tenant was deleted while this isolate still had its key cached: forget it here now.
    directory.forget(apiKey, current.identity.tenant.name);
    current = plan(request, url, await anonymousIdentity(apiKey, clientIp, directory, config, now), now);
    admission = await askAdmission(env, ctx, current, ports.random);
  }

  switch (admission.kind) {
    case "admit":
      keepCredit(env, ctx, current.identity.objectName, admission);
      return forward(admittedByObject(env, ctx, current, admission));
    case "shed":
      return shed(ports, request, current, {
        reason: admission.reason,
        retryAfterMs: admission.retryAfterMs,
        quota: admission.quota,
        waitedMs: admission.waitedMs,
        stage: "tenant",
      });
    case "unavailable": {
      const leave = failOpenSlot(config);
      if (leave) return forward(failOpenAdmission(leave, pessimisticQuota(current.identity.tenant.config)));
      return unavailable();
    }
    case "unconfigured":
      return unavailable();
  }

  function unavailable(): Response {
    return shed(ports, request, current, {
      reason: "guard_unavailable",
      retryAfterMs: UNAVAILABLE_RETRY_MS,
      quota: null,
      waitedMs: 0,
      stage: "guard",
    });
  }
}

/** An admission on this isolate's own authority (FAIL_MODE=open): its release leaves the limiter. */
function failOpenAdmission(leave: () => void, quota: Quota): Admitted {
  return {
    requestId: crypto.randomUUID(),
    waitedMs: 0,
    quota,
    decidedAt: "fail-open",
    release: () => leave(),
  };
}
