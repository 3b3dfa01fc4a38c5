/**
 * An admitted request's way to the origin: through the origin stage (when on), then forwarded
 * streaming with its deadline, and every slot it holds released when its response ends.
 */
import { remainingMs } from "../admission/deadline";
import type { DecisionSink } from "../analytics";
import type { Clock } from "../clock";
import { type GuardConfig, guardConfig } from "../config";
import type { Env } from "../env";
import { ORIGIN_BOUNDS, type OriginConfig } from "../origin/origin-config";
import type { OriginRelease } from "../origin/origin-rpc";
import { guardErrorResponse } from "../guard-errors";
import { setRateLimitFields } from "../ratelimit-fields";
import type { ReleaseOutcome } from "../admission/counters";
import { type OriginFetch, forwardToOrigin, originTarget } from "./forward";
import { clientIpOf, credentialHeader } from "../identity/credential";
import { clientResponseHeaders, originRequestHeaders } from "./header-hygiene";
import { capacityGrant, retryAfterMs } from "./origin-feedback";
import { holdKindOf } from "../origin/origin-holds";
import { type OriginTicket, acquireOrigin, holdAtEdge, originAsk, releaseOrigin } from "./origin-stage";
import type { Admitted, Plan } from "./plan";
import { clientGone, planEvent, shed } from "./shed-answer";
import { type BodyEnd, releaseOnEnd } from "./release-on-end";
import { failedOutcome } from "./origin-abort";
import { signForwarded } from "./sign-request";
import { keepStreamed } from "./streamed-response";
import { UNAVAILABLE_SHED, whenUnreachable } from "./fail-mode";

export interface ProxyPorts {
  readonly originFetch: OriginFetch;
  readonly sink: DecisionSink;
  readonly random: () => number;
  /** Read at the start of the request, and again only where time has passed (after I/O). */
  readonly clock: Clock;
}

/** What a stage needs of the ports: its jitter and its clock. */
export type StagePorts = Pick<ProxyPorts, "random" | "clock">;

export interface ForwardContext {
  readonly request: Request;
  readonly url: URL;
  readonly env: Env;
  readonly ctx: ExecutionContext;
  readonly ports: ProxyPorts;
  readonly plan: Plan;
  /** The origin stage's config, or null when the stage is off. */
  readonly origin: OriginConfig | null;
}

/**
 * Less than this left of the budget and the request is not sent: no origin answers in time, and
 * the Worker's clock, which only moves at I/O, may already be a few ms behind (the lab saw
 * requests reach the origin 2 ms past their deadline).
 */
const MIN_FORWARD_BUDGET_MS = 10;

/** After a 504 the origin was slow, not full: a short, jittered pause before a retry. */
const DEADLINE_RETRY_MS = 1_000;

export const DEGRADED_HEADER = "x-guard-degraded";

/** A bound origin (`ORIGIN`) wins over the port, which fetches ORIGIN_URL over the network. */
export function originFetchOf(config: GuardConfig, ports: ProxyPorts): OriginFetch {
  const service = config.originService;
  return service ? (input, init) => service.fetch(input, init) : ports.originFetch;
}

/** What the origin's answer showed, for the origin stage's release. */
type OriginAnswer = Omit<OriginRelease, "outcome" | "clientBudget" | "streamed">;

const NO_ANSWER: OriginAnswer = { status: 0, latencyMs: null, retryAfterMs: null, capacity: null, wholeOrigin: false };

/** Clamped to what the stage can use, so an outsized header can never make the release invalid. */
function originAnswer(response: Response, origin: OriginConfig | null, latencyMs: number, now: number): OriginAnswer {
  const kind = holdKindOf(response.status);
  const hold = kind ? retryAfterMs(response.headers.get("retry-after"), now) : null;
  const grant = origin?.capacityHeader ? capacityGrant(response.headers.get(origin.capacityHeader)) : null;
  const globalHold = origin?.globalHoldHeader ?? null;
  return {
    status: response.status,
    latencyMs,
    retryAfterMs: hold === null || !origin ? null : Math.min(hold, origin.maxBackoffMs),
    capacity: grant === null ? null : Math.min(grant, ORIGIN_BOUNDS.maxInFlight),
    wholeOrigin: kind === "unavailable" && globalHold !== null && response.headers.has(globalHold),
  };
}

function originOutcome(outcome: ReleaseOutcome): OriginRelease["outcome"] {
  return outcome === "not_forwarded" ? "cancelled" : outcome;
}

/**
 * The target and headers a forwarded request is sent with: hop-by-hop and client-asserted
 * headers dropped, the guard's own set, and signed when ORIGIN_SIGNING_SECRET is set. Shared by
 * plain requests and WebSocket handshakes, so both reach the origin asserted and signed alike.
 */
export async function originRequest(
  fc: ForwardContext,
  admission: Admitted,
  send: { timeoutMs: number; sentAt: number; maxStreamMs: number | null; originLimit: number | null },
): Promise<{ headers: Headers; target: URL }> {
  const { request, url, env, plan } = fc;
  const config = guardConfig(env);
  const headers = originRequestHeaders(request.headers, {
    tenant: plan.identity.tenant.name,
    priority: plan.priority,
    deadline: plan.deadline,
    timeoutMs: send.timeoutMs,
    clientIp: clientIpOf(request.headers),
    publicUrl: url,
    requestId: admission.requestId,
    ...(config.credentialToOrigin === "strip" ? { stripCredential: credentialHeader(config.identity) } : {}),
    maxStreamMs: send.maxStreamMs,
  });
  if (send.originLimit !== null) headers.set("x-guard-origin-limit", String(send.originLimit));
  const target = originTarget(config.originUrl, url);
  if (config.signingSecret) {
    await signForwarded(headers, config.signingSecret, {
      timestamp: send.sentAt,
      requestId: admission.requestId,
      tenant: plan.identity.tenant.name,
      priority: plan.priority,
      deadline: plan.deadline,
      method: request.method,
      pathAndQuery: target.pathname + target.search,
    });
  }
  return { headers, target };
}

export async function forwardAdmitted(fc: ForwardContext, admission: Admitted): Promise<Response> {
  const { request, env, ctx, ports, plan } = fc;
  let ticket: OriginTicket | null = null;
  let leaveFailOpen: (() => void) | null = null;
  if (fc.origin) {
    const gate = await acquireOrigin(env, ctx, fc.origin, originAsk(plan), ports, request.signal ?? null);
    if (gate.kind === "gone") {
      // The client left while queued at the origin stage: its tenant slot goes back unused.
      admission.release("not_forwarded");
      return clientGone();
    }
    if (gate.kind === "shed") {
      admission.release("not_forwarded");
      return shed(ports, request, plan, {
        reason: gate.reason,
        retryAfterMs: gate.retryAfterMs,
        quota: admission.quota,
        waitedMs: admission.waitedMs + gate.waitedMs,
        stage: "origin",
        decidedAt: gate.decidedAt,
      });
    }
    if (gate.kind === "unavailable") {
      console.error("origin stage unavailable", gate.error);
      // Already let through on the fail-open limiter: that one slot covers this stage too.
      const fail = whenUnreachable(guardConfig(env), admission.failOpen);
      if (fail.kind === "shed") {
        admission.release("not_forwarded");
        return shed(ports, request, plan, {
          ...UNAVAILABLE_SHED,
          quota: admission.quota,
          waitedMs: admission.waitedMs,
        });
      }
      leaveFailOpen = fail.leave;
    } else {
      ticket = gate.ticket;
    }
  }
  const degraded = admission.failOpen || leaveFailOpen !== null;
  return send(fc, admission, ticket, degraded, leaveFailOpen);
}

async function send(
  fc: ForwardContext,
  admission: Admitted,
  ticket: OriginTicket | null,
  degraded: boolean,
  leaveFailOpen: (() => void) | null,
): Promise<Response> {
  const { request, env, ctx, ports, plan } = fc;
  const forwardedAt = ports.clock.now();
  const waitedMs = admission.waitedMs + (ticket?.waitedMs ?? 0);
  let answer = NO_ANSWER;
  let released = false;
  /** A streamed route's headers came then: its slots' service ended there (see `Admitted.release`). */
  let streamingSince: number | undefined;
  /**
   * Releases every slot once; records the outcome (as `reason` when analytics should tell it
   * apart) unless a shed answer already recorded it.
   */
  const finish = (outcome: ReleaseOutcome, status: number, recorded = false, reason: string = outcome) => {
    if (released) return;
    released = true;
    admission.release(outcome, streamingSince);
    if (ticket) {
      releaseOrigin(env, ctx, ticket, {
        outcome: originOutcome(outcome),
        ...answer,
        clientBudget: plan.clientBudget,
        streamed: streamingSince !== undefined,
      });
    }
    leaveFailOpen?.();
    if (!recorded) {
      ports.sink.record({
        ...planEvent(request, plan),
        outcome: outcome === "origin_failed" || outcome === "deadline_exceeded" ? "error" : "admitted",
        reason,
        decidedAt: degraded ? "fail-open" : admission.decidedAt,
        stage: degraded ? "guard" : "forward",
        queueWaitMs: waitedMs,
        queueDepth: admission.quota.queued,
        status,
        originMs: ports.clock.now() - forwardedAt,
        inFlight: admission.quota.inFlight,
        originLimit: ticket?.limit ?? 0,
      });
    }
  };

  /** The 504: releases the slots as `outcome` and answers with the shed signals. */
  const deadlineAnswer = (outcome: ReleaseOutcome, originMs: number) => {
    finish(outcome, 504, true);
    return shed(ports, request, plan, {
      reason: "deadline_exceeded",
      retryAfterMs: DEADLINE_RETRY_MS,
      quota: admission.quota,
      waitedMs,
      stage: "forward",
      decidedAt: degraded ? "fail-open" : admission.decidedAt,
      originMs,
      originLimit: ticket?.limit ?? 0,
    });
  };

  try {
    // The client left before anything was sent: the origin never sees it, nothing lingers.
    if (request.signal?.aborted) {
      finish("not_forwarded", 499);
      return clientGone();
    }
    const timeoutMs = remainingMs(plan.deadline, forwardedAt);
    // Admitted at the last moment: sending it now would only be late work for the origin.
    if (timeoutMs < MIN_FORWARD_BUDGET_MS) return deadlineAnswer("cancelled", 0);
    const config = guardConfig(env);
    const { headers, target } = await originRequest(fc, admission, {
      timeoutMs,
      sentAt: forwardedAt,
      maxStreamMs: plan.maxStreamMs,
      originLimit: ticket?.limit ?? null,
    });
    const result = await forwardToOrigin(
      target,
      request,
      headers,
      plan.deadline,
      forwardedAt,
      originFetchOf(config, ports),
      plan.maxStreamMs,
    );

    switch (result.kind) {
      case "deadline_exceeded":
        return deadlineAnswer("deadline_exceeded", ports.clock.now() - forwardedAt);
      case "client_gone":
        // Gone before the origin answered: the origin is still at work, so the slots linger.
        finish("abandoned", 0);
        return clientGone();
      case "failed":
        console.error(`origin fetch for '${plan.identity.tenant.name}' failed`, result.error);
        finish("origin_failed", 502);
        return guardErrorResponse("origin_unreachable", "the origin could not be reached or reset the connection", {
          reason: "origin_failed",
        });
      case "response": {
        const upstream = result.response;
        const now = ports.clock.now();
        if (plan.maxStreamMs !== null) streamingSince = now;
        answer = originAnswer(upstream, fc.origin, now - forwardedAt, now);
        const kind = holdKindOf(upstream.status);
        if (fc.origin && kind && answer.retryAfterMs !== null) {
          const held = { kind, retryAfterMs: answer.retryAfterMs, wholeOrigin: answer.wholeOrigin };
          holdAtEdge(originAsk(plan), held, fc.origin.maxBackoffMs, now);
        }
        const responseHeaders = clientResponseHeaders(upstream.headers);
        setRateLimitFields(responseHeaders, admission.quota, null);
        if (degraded) responseHeaders.set(DEGRADED_HEADER, "fail-open");
        keepStreamed(responseHeaders, plan.maxStreamMs !== null);
        // A HEAD answer has no body to pass on: nothing would ever read the origin's, and its
        // slot would stay taken (found by the proxy hunt: one slot leaked per HEAD request).
        const passBody = request.method !== "HEAD" ? upstream.body : null;
        if (!passBody) void upstream.body?.cancel().catch(() => undefined);
        const ended = (end: BodyEnd) => {
          result.abort.stop();
          if (end !== "failed") return finish(end, upstream.status);
          const { outcome, reason } = failedOutcome(result.abort.cause(), request.signal?.aborted === true);
          finish(outcome, upstream.status, false, reason);
        };
        const body = passBody ? releaseOnEnd(passBody, ended) : null;
        if (!body) ended("completed");
        return new Response(body, {
          status: upstream.status,
          statusText: upstream.statusText,
          headers: responseHeaders,
          encodeBody: "manual",
        });
      }
    }
  } catch (error) {
    // Nothing known throws past here; if something does, every slot still goes back at once.
    finish("origin_failed", 500);
    throw error;
  }
}
