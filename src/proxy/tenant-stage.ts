/**
 * The edge's side of the tenant stage: shed from the tenant object's cached verdict, spend a
 * credit, or ask the tenant's object (one round trip, carrying this isolate's unreported sheds).
 */
import { waitBudgetMs } from "../admission/admission";
import { decideLocally } from "../admission/saturation";
import {
  type CreditReturn,
  askForCredit,
  creditAnswered,
  endCreditUse,
  expireCredit,
  holdCredit,
  spendCredit,
} from "../edge/credit-store";
import {
  FLUSH_AFTER_MS,
  type LedgerAction,
  overflowingObject,
  recordLocalShed,
  reportFired,
  restoreLocalSheds,
  takeLocalSheds,
} from "../edge/local-shed-ledger";
import { cachedVerdict, forgetVerdict, holdVerdict } from "../edge/verdict-cache";
import type { Env } from "../env";
import type { AdmitDecision } from "../tenant/rpc";
import type { Identity } from "./identity";
import { callObject } from "./object-calls";
import type { Admitted, Plan } from "./plan";
import { type ShedContext, shed } from "./shed-answer";

export type Admission = AdmitDecision | { readonly kind: "unavailable"; readonly error: unknown };

type TenantStub = ReturnType<Env["TENANT_GUARD"]["getByName"]>;

export function objectFor(env: Env, identity: Identity): TenantStub {
  return env.TENANT_GUARD.getByName(identity.objectName);
}

/** One round trip to the tenant's object; carries this isolate's unreported local sheds. */
export async function askAdmission(
  env: Env,
  ctx: ExecutionContext,
  plan: Plan,
  random: () => number,
): Promise<Admission> {
  const objectName = plan.identity.objectName;
  const localSheds = takeLocalSheds(objectName);
  const wantCredit = askForCredit(objectName, Date.now());
  let decision: AdmitDecision;
  try {
    decision = await callObject<AdmitDecision>(
      // A fresh stub per try: a stub that saw an error may stay broken.
      async () =>
        await objectFor(env, plan.identity).admit({
          priority: plan.priority,
          deadline: plan.deadline,
          fullBehaviour: plan.fullBehaviour,
          ...(plan.identity.carriedLimits ? { limits: plan.identity.carriedLimits } : {}),
          ...(localSheds ? { localSheds } : {}),
          ...(wantCredit ? { wantCredit } : {}),
        }),
      plan.deadline - Date.now(),
      random,
    );
  } catch (error) {
    console.error(`admission for '${objectName}' failed`, error);
    if (localSheds) followLedger(env, ctx, objectName, restoreLocalSheds(objectName, localSheds, Date.now()));
    return { kind: "unavailable", error };
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
export function keepCredit(
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
export function admitOnCredit(env: Env, ctx: ExecutionContext, plan: Plan, now: number): Admitted | null {
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

export function admittedByObject(
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
export function shedAtTenantEdge(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  ports: ShedContext,
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
  return shed(ports, request, plan, {
    reason: local.reason,
    retryAfterMs: local.retryAfterMs,
    quota: cached.quota,
    waitedMs: 0,
    stage: "tenant",
    decidedAt: "edge",
  });
}
