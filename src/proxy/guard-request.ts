import { waitBudgetMs } from "../admission/admission";
import { deadlineBudgetMs, parseClientTimeoutMs, remainingMs } from "../admission/deadline";
import { decideLocally } from "../admission/saturation";
import type { FullBehaviour } from "../admission/limits";
import type { Priority } from "../admission/priority";
import { effectivePriority } from "../admission/priority-hint";
import type { AdmissionShedReason } from "../admission/shed-reason";
import type { DecisionSink } from "../analytics";
import { guardConfig } from "../config";
import type { Env } from "../env";
import {
  FLUSH_AFTER_MS,
  type LedgerAction,
  overflowingObject,
  recordLocalShed,
  reportFired,
  restoreLocalSheds,
  takeLocalSheds,
} from "../edge/local-shed-ledger";
import {
  type CreditReturn,
  askForCredit,
  creditAnswered,
  endCreditUse,
  expireCredit,
  holdCredit,
  spendCredit,
} from "../edge/credit-store";
import { cachedVerdict, forgetVerdict, holdVerdict } from "../edge/verdict-cache";
import { GUARD_PROBLEM_BASE, problemResponse } from "../problem";
import { setRateLimitFields } from "../ratelimit-fields";
import { pessimisticQuota, shedResponse } from "../signals";
import type { AdmitDecision, Quota, ReleaseOutcome } from "../tenant/rpc";
import { TenantDirectory } from "../tenant/tenant-directory";
import { type OriginFetch, forwardToOrigin, originTarget } from "./forward";
import { clientResponseHeaders, originRequestHeaders } from "./header-hygiene";
import { type Identity, anonymousIdentity, resolveIdentity } from "./identity";
import { releaseOnEnd } from "./release-on-end";

export interface ProxyPorts {
  readonly originFetch: OriginFetch;
  readonly sink: DecisionSink;
  readonly random: () => number;
}

/** What the edge decided about a request before asking for admission. */
interface Plan {
  readonly identity: Identity;
  readonly route: string;
  readonly priority: Priority;
  readonly fullBehaviour: FullBehaviour;
  readonly budgetMs: number;
  readonly deadline: number;
}

type Admission = AdmitDecision | { readonly kind: "unavailable" };

/** An admitted request's hold on a slot, however it was admitted. */
interface Admitted {
  readonly requestId: string;
  readonly waitedMs: number;
  readonly quota: Quota;
  readonly decidedAt: "object" | "edge";
  /** Gives the slot back; never blocks the response. */
  readonly release: (outcome: ReleaseOutcome) => void;
}

/**
 * Less than this left of the budget and the request is not sent: no origin answers in time, and
 * the Worker's clock, which only moves at I/O, may already be a few ms behind (the lab saw
 * requests reach the origin 2 ms past their deadline).
 */
const MIN_FORWARD_BUDGET_MS = 10;

/** After a 504 the origin was slow, not full: a short, jittered pause before a retry. */
const DEADLINE_RETRY_MS = 1_000;

/** How long a client should stay away when the guard itself cannot decide. */
const UNAVAILABLE_RETRY_MS = 2_000;

function plan(request: Request, url: URL, identity: Identity, now: number): Plan {
  const { config, classify } = identity.tenant;
  const routeClass = classify(request.method, url.pathname);
  const priority = effectivePriority(routeClass.priority, request.headers.get("x-priority"), config.maxClientPriority);
  const clientBudget = parseClientTimeoutMs(request.headers.get("x-request-timeout-ms"));
  const budgetMs = deadlineBudgetMs(clientBudget, routeClass.timeoutMs);
  return {
    identity,
    route: routeClass.route,
    priority,
    fullBehaviour: routeClass.fullBehaviour,
    budgetMs,
    deadline: now + budgetMs,
  };
}

type TenantStub = ReturnType<Env["TENANT_GUARD"]["getByName"]>;

function objectFor(env: Env, identity: Identity): TenantStub {
  return env.TENANT_GUARD.getByName(identity.objectName);
}

/** One round trip to the tenant's object; carries this isolate's unreported local sheds. */
async function askAdmission(env: Env, ctx: ExecutionContext, stub: TenantStub, plan: Plan): Promise<Admission> {
  const objectName = plan.identity.objectName;
  const localSheds = takeLocalSheds(objectName);
  const wantCredit = askForCredit(objectName, Date.now());
  let decision: AdmitDecision;
  try {
    decision = await stub.admit({
      priority: plan.priority,
      deadline: plan.deadline,
      fullBehaviour: plan.fullBehaviour,
      ...(plan.identity.carriedLimits ? { limits: plan.identity.carriedLimits } : {}),
      ...(localSheds ? { localSheds } : {}),
      ...(wantCredit ? { wantCredit } : {}),
    });
  } catch (error) {
    console.error(`admission for '${objectName}' failed`, error);
    if (localSheds) followLedger(env, ctx, objectName, restoreLocalSheds(objectName, localSheds, Date.now()));
    return { kind: "unavailable" };
  } finally {
    if (wantCredit) creditAnswered(objectName);
  }
  if (decision.kind === "shed" && decision.saturation) {
    holdVerdict(objectName, decision.saturation, decision.quota, Date.now());
  } else if (decision.kind === "admit" && decision.waitedMs === 0) {
    // Admitted at once: the tenant has room again. An admission out of the queue says nothing
    // of the kind (its call began before the verdict), so it leaves the verdict standing.
    forgetVerdict(objectName);
  }
  return decision;
}

async function sendCreditReturn(env: Env, back: CreditReturn): Promise<void> {
  try {
    await env.TENANT_GUARD.getByName(back.objectName).returnCredit(back.creditId, back.report);
  } catch (error) {
    console.error(`returning a credit to '${back.objectName}' failed; the object reclaims it on its own`, error);
  }
}

/** Keeps a credit the object granted, and makes sure it goes back once it can no longer be spent. */
function keepCredit(
  env: Env,
  ctx: ExecutionContext,
  objectName: string,
  decision: Extract<AdmitDecision, { kind: "admit" }>,
) {
  if (!decision.credit) return;
  const credit = decision.credit;
  for (const back of holdCredit(objectName, credit, decision.quota, Date.now()))
    ctx.waitUntil(sendCreditReturn(env, back));
  ctx.waitUntil(
    scheduler.wait(credit.usableForMs).then(() => {
      const back = expireCredit(objectName, Date.now());
      return back ? sendCreditReturn(env, back) : undefined;
    }),
  );
}

/** Admits on this isolate's credit for the tenant (hot tenants), without a round trip. */
function admitOnCredit(env: Env, ctx: ExecutionContext, plan: Plan, now: number): Admitted | null {
  const credit = spendCredit(plan.identity.objectName, plan.priority, plan.budgetMs, now);
  if (!credit) return null;
  return {
    requestId: crypto.randomUUID(),
    waitedMs: 0,
    quota: credit.quota,
    decidedAt: "edge",
    release: (outcome) => {
      const back = endCreditUse(credit, outcome, Date.now());
      if (back) ctx.waitUntil(sendCreditReturn(env, back));
    },
  };
}

function admittedByObject(
  env: Env,
  ctx: ExecutionContext,
  plan: Plan,
  decision: Extract<AdmitDecision, { kind: "admit" }>,
): Admitted {
  return {
    requestId: decision.leaseId,
    waitedMs: decision.waitedMs,
    quota: decision.quota,
    decidedAt: "object",
    // Off the response path: the client does not wait for the release to land. A stub made now,
    // not the one that admitted: a stub stays bound to the object instance it talked to, and an
    // instance restarted meanwhile would refuse it, leaving the slot to lease expiry.
    release: (outcome) =>
      ctx.waitUntil(
        objectFor(env, plan.identity)
          .release(decision.leaseId, outcome)
          .catch((error: unknown) => {
            console.error("release failed; the lease expires on its own", error);
          }),
      ),
  };
}

/** Reports an object's pending local sheds; on failure they are put back and reported later. */
async function reportLocalSheds(env: Env, ctx: ExecutionContext, objectName: string): Promise<void> {
  const batch = takeLocalSheds(objectName);
  if (!batch) return;
  try {
    await env.TENANT_GUARD.getByName(objectName).recordLocalSheds(batch);
  } catch (error) {
    console.error(`reporting local sheds to '${objectName}' failed; kept for the next report`, error);
    followLedger(env, ctx, objectName, restoreLocalSheds(objectName, batch, Date.now()));
  }
}

/** Does what the ledger asks after counting: report now, or schedule the one report per second. */
function followLedger(env: Env, ctx: ExecutionContext, objectName: string, action: LedgerAction): void {
  if (action === "flush-now") ctx.waitUntil(reportLocalSheds(env, ctx, objectName));
  if (action === "schedule-flush") {
    ctx.waitUntil(
      scheduler.wait(FLUSH_AFTER_MS).then(() => {
        reportFired(objectName);
        return reportLocalSheds(env, ctx, objectName);
      }),
    );
  }
}

/**
 * Sheds without a round trip when this isolate holds a verdict from the tenant's object that
 * covers the request; null when the object must be asked.
 */
function shedAtEdge(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  ports: ProxyPorts,
  plan: Plan,
  now: number,
): Response | null {
  const objectName = plan.identity.objectName;
  const cached = cachedVerdict(objectName, now);
  if (!cached) return null;
  const waitBudget = waitBudgetMs(plan.identity.tenant.config, plan, now, cached.verdict.serviceMs);
  const local = decideLocally(
    cached.verdict,
    { priority: plan.priority, fullBehaviour: plan.fullBehaviour, waitBudgetMs: waitBudget },
    now,
  );
  if (local.kind === "ask") return null;
  followLedger(env, ctx, objectName, recordLocalShed(objectName, local.reason, plan.priority, now));
  const overflow = overflowingObject();
  if (overflow) ctx.waitUntil(reportLocalSheds(env, ctx, overflow));
  return shed(ports, request, plan, local.reason, local.retryAfterMs, cached.quota, 0, 0, "edge");
}

/**
 * The proxy path: resolve the tenant, classify, ask the tenant's object for admission, then
 * forward (streaming, deadline attached, slot released when the body ends) or shed at once.
 */
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

  let current = plan(request, url, await resolveIdentity(apiKey, clientIp, directory, config, now), now);
  const onCredit = admitOnCredit(env, ctx, current, now);
  if (onCredit) return forwardAdmitted(request, url, env, ports, current, onCredit);
  const shedLocally = shedAtEdge(request, env, ctx, ports, current, now);
  if (shedLocally) return shedLocally;
  let stub = objectFor(env, current.identity);
  let admission = await askAdmission(env, ctx, stub, current);
  if (admission.kind === "unconfigured" && !current.identity.carriedLimits) {
    // The tenant was deleted while this isolate still had its key cached: forget it here now.
    directory.forget(apiKey, current.identity.tenant.name);
    current = plan(request, url, await anonymousIdentity(apiKey, clientIp, directory, config, now), now);
    stub = objectFor(env, current.identity);
    admission = await askAdmission(env, ctx, stub, current);
  }

  switch (admission.kind) {
    case "admit":
      keepCredit(env, ctx, current.identity.objectName, admission);
      return forwardAdmitted(request, url, env, ports, current, admittedByObject(env, ctx, current, admission));
    case "shed":
      return shed(
        ports,
        request,
        current,
        admission.reason,
        admission.retryAfterMs,
        admission.quota,
        admission.waitedMs,
      );
    case "unconfigured":
    case "unavailable":
      return shed(ports, request, current, "guard_unavailable", UNAVAILABLE_RETRY_MS, null, 0);
  }
}

/** The fields every decision record takes from the request and its plan. */
function planEvent(request: Request, plan: Plan) {
  return {
    tenant: plan.identity.tenant.name,
    priority: plan.priority,
    route: plan.route,
    method: request.method,
    budgetMs: plan.budgetMs,
  };
}

function shed(
  ports: ProxyPorts,
  request: Request,
  plan: Plan,
  reason: AdmissionShedReason | "guard_unavailable" | "deadline_exceeded",
  retryAfterMs: number,
  quota: Quota | null,
  waitedMs: number,
  originMs = 0,
  decidedAt: Admitted["decidedAt"] = "object",
): Response {
  const effectiveQuota = quota ?? pessimisticQuota(plan.identity.tenant.config);
  const response = shedResponse(
    {
      reason,
      retryAfterMs,
      quota: effectiveQuota,
      tenant: plan.identity.tenant.name,
      priority: plan.priority,
      waitedMs,
      budgetMs: plan.budgetMs,
    },
    ports.random,
  );
  ports.sink.record({
    ...planEvent(request, plan),
    outcome: reason === "deadline_exceeded" ? "error" : "shed",
    reason,
    decidedAt,
    queueWaitMs: waitedMs,
    queueDepth: effectiveQuota.queued,
    status: response.status,
    originMs,
    inFlight: effectiveQuota.inFlight,
  });
  return response;
}

async function forwardAdmitted(
  request: Request,
  url: URL,
  env: Env,
  ports: ProxyPorts,
  plan: Plan,
  admission: Admitted,
): Promise<Response> {
  const forwardedAt = Date.now();
  let released = false;
  /** Releases the slot once; records the outcome unless a shed answer already recorded it. */
  const finish = (outcome: ReleaseOutcome, status: number, recorded = false) => {
    if (released) return;
    released = true;
    admission.release(outcome);
    if (!recorded) {
      ports.sink.record({
        ...planEvent(request, plan),
        outcome: outcome === "origin_failed" || outcome === "deadline_exceeded" ? "error" : "admitted",
        reason: outcome,
        decidedAt: admission.decidedAt,
        queueWaitMs: admission.waitedMs,
        queueDepth: admission.quota.queued,
        status,
        originMs: Date.now() - forwardedAt,
        inFlight: admission.quota.inFlight,
      });
    }
  };

  /** The 504: releases the slot as `outcome` and answers with the shed signals. */
  const deadlineAnswer = (outcome: ReleaseOutcome, originMs: number) => {
    finish(outcome, 504, true);
    return shed(
      ports,
      request,
      plan,
      "deadline_exceeded",
      DEADLINE_RETRY_MS,
      admission.quota,
      admission.waitedMs,
      originMs,
      admission.decidedAt,
    );
  };

  const timeoutMs = remainingMs(plan.deadline, forwardedAt);
  // Admitted at the last moment: sending it now would only be late work for the origin.
  if (timeoutMs < MIN_FORWARD_BUDGET_MS) return deadlineAnswer("cancelled", 0);
  const config = guardConfig(env);
  const headers = originRequestHeaders(request.headers, {
    tenant: plan.identity.tenant.name,
    priority: plan.priority,
    deadline: plan.deadline,
    timeoutMs,
    clientIp: request.headers.get("cf-connecting-ip"),
    publicUrl: url,
    requestId: admission.requestId,
  });
  const result = await forwardToOrigin(
    originTarget(config.originUrl, url),
    request,
    headers,
    plan.deadline,
    forwardedAt,
    ports.originFetch,
  );

  switch (result.kind) {
    case "deadline_exceeded":
      return deadlineAnswer("deadline_exceeded", Date.now() - forwardedAt);
    case "client_gone":
      finish("cancelled", 0);
      return new Response(null, { status: 499 });
    case "failed":
      console.error(`origin fetch for '${plan.identity.tenant.name}' failed`, result.error);
      finish("origin_failed", 502);
      return problemResponse({
        type: `${GUARD_PROBLEM_BASE}origin-unreachable`,
        title: "Bad Gateway",
        status: 502,
        detail: "the origin could not be reached or reset the connection",
        reason: "origin_failed",
      });
    case "response": {
      const upstream = result.response;
      const responseHeaders = clientResponseHeaders(upstream.headers);
      setRateLimitFields(responseHeaders, admission.quota, null);
      const body = upstream.body
        ? releaseOnEnd(upstream.body, result.deadlineSignal, (outcome) => finish(outcome, upstream.status))
        : null;
      if (!body) finish("completed", upstream.status);
      return new Response(body, {
        status: upstream.status,
        statusText: upstream.statusText,
        headers: responseHeaders,
        encodeBody: "manual",
      });
    }
  }
}
