/**
 * The proxy path, one stage after another: resolve the tenant, classify the request, the origin
 * stage's edge holds, the tenant stage (this isolate's lease), the origin stage (when configured),
 * then forward (streaming, deadline attached, every slot released once when the body ends) or
 * shed at once with every signal.
 */
import { guardConfig } from "../config";
import type { Env } from "../env";
import { apiKeyOf, clientIpOf, credentialOf } from "../identity/credential";
import { JwksUnavailable } from "../identity/jwks-source";
import { OriginDirectory } from "../origin/origin-directory";
import { pessimisticQuota } from "../signals";
import { DirectoryUnavailable, TenantDirectory } from "../tenant/tenant-directory";
import { type ForwardContext, type ProxyPorts, forwardAdmitted } from "./forward-admitted";
import { UNAVAILABLE_SHED, whenUnreachable } from "./fail-mode";
import { type Identity, anonymousIdentity, fallbackIdentity, resolveIdentity } from "./identity";
import { originAsk, shedAtOriginEdge } from "./origin-stage";
import { type Admitted, plan } from "./plan";
import { clientGone, shed } from "./shed-answer";
import { type TenantGate, passTenantStage } from "./tenant-stage";
import { forwardWebSocket, isWebSocketUpgrade } from "./websocket-stage";

export type { ProxyPorts } from "./forward-admitted";

/** `path` is the request's normalised path (src/request-path.ts): what is classified is what is forwarded. */
export async function guardRequest(
  request: Request,
  path: string,
  env: Env,
  ctx: ExecutionContext,
  ports: ProxyPorts,
): Promise<Response> {
  const now = ports.clock.now();
  const config = guardConfig(env);
  const directory = new TenantDirectory(env.TENANTS);
  const url = new URL(request.url);
  url.pathname = path;
  const clientIp = clientIpOf(request.headers);
  const credential = credentialOf(request.headers, config.identity);
  const origin = await new OriginDirectory(env.TENANTS).config(now);

  const identity = await orUnavailable(resolveIdentity(credential, clientIp, directory, config, now));
  let current = plan(request, url, identity ?? fallbackIdentity(clientIp), now);
  const forward = (admitted: Admitted) => {
    const fc: ForwardContext = { request, url, env, ctx, ports, plan: current, origin };
    return isWebSocketUpgrade(request) ? forwardWebSocket(fc, admitted) : forwardAdmitted(fc, admitted);
  };

  // KV could not tell who this is: the fail mode decides, on the built-in anonymous limits.
  if (!identity) return whenUnavailable();

  // The origin (or its stage) already said no to this tenant's kind of request: the cheapest
  // answer comes first, before any tenant token is spent.
  if (origin) {
    const held = shedAtOriginEdge(env, ctx, origin, originAsk(current), now, ports);
    if (held) return shed(ports, request, current, { ...held, quota: null, stage: "origin" });
  }

  let gate: TenantGate = await passTenantStage(env, ctx, request, current, ports);
  if (gate.kind === "unconfigured" && !current.identity.carriedLimits) {
    // The tenant was deleted while this isolate still had its key cached: forget it here now.
    directory.forget(apiKeyOf(credential), current.identity.tenant.name);
    const anonymous = await orUnavailable(anonymousIdentity(credential, clientIp, directory, config, now));
    current = plan(request, url, anonymous ?? fallbackIdentity(clientIp), ports.clock.now());
    if (!anonymous) return whenUnavailable();
    gate = await passTenantStage(env, ctx, request, current, ports);
  }

  switch (gate.kind) {
    case "admit":
      return current.identity.aggregate
        ? passAggregate(gate.admitted, current.identity.aggregate)
        : forward(gate.admitted);
    case "shed":
      return shed(ports, request, current, {
        reason: gate.reason,
        retryAfterMs: gate.retryAfterMs,
        quota: gate.quota,
        waitedMs: gate.waitedMs,
        stage: "tenant",
        decidedAt: gate.atEdge ? "edge" : "object",
      });
    case "gone":
      return clientGone();
    case "unavailable":
      return whenUnavailable();
    case "unconfigured":
      return unavailable();
  }

  /**
   * Anonymous traffic also passes the bound over all of it (after its own address's bucket, so
   * one address flooding is shed there first and cannot fill the shared queue). Refused there,
   * the address's slot goes back unused, its token refunded.
   */
  async function passAggregate(own: Admitted, aggregate: NonNullable<Identity["aggregate"]>): Promise<Response> {
    const identity = { ...current.identity, objectName: aggregate.objectName, carriedLimits: aggregate.limits };
    const whole = await passTenantStage(env, ctx, request, { ...current, identity }, ports);
    if (whole.kind === "admit") {
      const both = whole.admitted;
      return forward({
        ...own,
        waitedMs: own.waitedMs + both.waitedMs,
        release: (outcome, servedUntil) => {
          both.release(outcome, servedUntil);
          own.release(outcome, servedUntil);
        },
      });
    }
    switch (whole.kind) {
      case "shed":
        own.release("not_forwarded");
        return shed(ports, request, current, {
          reason: "anonymous_saturated",
          retryAfterMs: whole.retryAfterMs,
          quota: whole.quota,
          waitedMs: own.waitedMs + whole.waitedMs,
          stage: "tenant",
          decidedAt: whole.atEdge ? "edge" : "object",
        });
      case "gone":
        own.release("not_forwarded");
        return clientGone();
      case "unavailable":
      case "unconfigured":
        // The shared bound could not be asked: failing open, the address's own bound still holds.
        if (whenUnreachable(config, true).kind === "forward") return forward(own);
        own.release("not_forwarded");
        return unavailable();
    }
  }

  /** An object or KV could not be asked: FAIL_MODE=open forwards on this isolate's limiter. */
  function whenUnavailable(): Promise<Response> | Response {
    const fail = whenUnreachable(config, false);
    if (fail.kind === "shed" || !fail.leave) return unavailable();
    return forward(failOpenAdmission(fail.leave, pessimisticQuota(current.identity.tenant.config)));
  }

  function unavailable(): Response {
    return shed(ports, request, current, { ...UNAVAILABLE_SHED, quota: null, waitedMs: 0 });
  }
}

/** The identity, or null when the directory or the JWKS could not be read (logged); other errors go on. */
async function orUnavailable(resolving: Promise<Identity>): Promise<Identity | null> {
  try {
    return await resolving;
  } catch (error) {
    if (!(error instanceof DirectoryUnavailable || error instanceof JwksUnavailable)) throw error;
    console.error("identity unavailable", error.message, error.cause);
    return null;
  }
}

/** An admission on this isolate's own authority (FAIL_MODE=open): its release leaves the limiter. */
function failOpenAdmission(leave: () => void, quota: Admitted["quota"]): Admitted {
  return {
    requestId: crypto.randomUUID(),
    waitedMs: 0,
    quota,
    decidedAt: "fail-open",
    failOpen: true,
    release: () => leave(),
  };
}
