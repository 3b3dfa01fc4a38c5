/**
 * The edge's side of the origin stage: shed from what the stage (or the origin) said before,
 * ask a shard for an origin slot, give it back with what the origin's answer showed.
 */
import { systemClock } from "../clock";
import type { StagePorts } from "./forward-admitted";
import { type LocalRequest, decideLocally } from "../admission/saturation";
import { FLUSH_AFTER_MS, type LedgerAction, ShedLedger } from "../edge/local-shed-ledger";
import {
  forgetOriginSaturation,
  holdOriginVerdict,
  holdSaturationVerdict,
  originVerdictsFor,
} from "../edge/origin-verdicts";
import type { Env } from "../env";
import { originShardName } from "../origin/origin-shards";
import type { OriginConfig } from "../origin/origin-config";
import { type AcquireDecision, type OriginRelease, bareRelease } from "../origin/origin-rpc";
import { ORIGIN_PARTY } from "../origin/origin-party";
import { type HoldKind, firstScope } from "../origin/origin-holds";
import type { Plan } from "./plan";
import { ANONYMOUS_TENANT } from "../tenant/tenant-config";
import type { Identity } from "./identity";
import type { OriginShedCause, OriginShedReason } from "../origin/origin-shed";
import { callObject } from "./object-calls";
import { placement } from "../object-placement";
import type { OriginArrival } from "../origin/origin-waiter";

/** An origin slot held by a request: which shard, which lease, the limit it was admitted under. */
export interface OriginTicket {
  readonly shard: number;
  readonly leaseId: string;
  readonly limit: number;
  readonly waitedMs: number;
}

export type OriginGate =
  | { readonly kind: "pass"; readonly ticket: OriginTicket | null }
  /** The client went away while the request waited at the shard: nothing to answer. */
  | { readonly kind: "gone" }
  | {
      readonly kind: "shed";
      readonly reason: OriginShedReason;
      readonly retryAfterMs: number;
      readonly waitedMs: number;
      readonly decidedAt: "object" | "edge";
    }
  | { readonly kind: "unavailable"; readonly error: unknown };

/** What the edge asks an origin shard for: an arrival as the core sees it, less the id the shard gives it. */
export type OriginAsk = Omit<OriginArrival, "id">;

const ledger = new ShedLedger<OriginShedCause>();

function causeOf(reason: OriginShedReason, noRoom: boolean): OriginShedCause {
  if (reason === "origin_backoff") return "backoff";
  if (reason === "origin_rate_limited") return "tenant_backoff";
  return noRoom ? "queue_full" : "wait_exceeds_deadline";
}

function pickShard(shards: number, random: () => number): number {
  return Math.min(shards - 1, Math.floor(random() * shards));
}

/**
 * Who a request counts against at the origin stage. Clients without a key are one party for
 * fair shares and the adaptive limit, so a spray from many addresses weighs as one tenant; a
 * 429's hold still covers only the client's own bucket (see ORIGIN_PARTY).
 */
export function originParties(identity: Identity): { readonly party: string; readonly holdParty: string } {
  if (identity.tenant.name !== ANONYMOUS_TENANT)
    return { party: identity.tenant.name, holdParty: identity.tenant.name };
  const bucket = identity.objectName;
  return { party: ANONYMOUS_TENANT, holdParty: ORIGIN_PARTY.test(bucket) ? bucket : ANONYMOUS_TENANT };
}

/** What the origin stage is asked for a planned request. */
export function originAsk(plan: Plan): OriginAsk {
  const { party, holdParty } = originParties(plan.identity);
  return {
    tenant: party,
    holdParty,
    method: plan.originRoute.method,
    route: plan.originRoute.prefix,
    weight: plan.identity.tenant.config.weight,
    priority: plan.priority,
    deadline: plan.deadline,
    ...(plan.maxStreamMs !== null ? { streamMs: plan.maxStreamMs } : {}),
  };
}

function verdictSubject(ask: OriginAsk) {
  return { party: ask.tenant, hold: { party: ask.holdParty, route: ask.route } };
}

/**
 * Sheds without a round trip when this isolate holds a verdict or hold that covers the request;
 * null when a shard must be asked (or the stage is off).
 */
export function shedAtOriginEdge(
  env: Env,
  ctx: ExecutionContext,
  config: OriginConfig,
  ask: OriginAsk,
  now: number,
  ports: StagePorts,
): Extract<OriginGate, { kind: "shed" }> | null {
  for (const verdict of originVerdictsFor(verdictSubject(ask), now)) {
    const request: LocalRequest = {
      priority: ask.priority,
      fullBehaviour: "evict-lowest",
      waitBudgetMs: Math.min(config.maxWaitMs, ask.deadline - now - (verdict.serviceMs ?? 0)),
    };
    const local = decideLocally(verdict, request, now);
    if (local.kind === "ask") continue;
    const shard = pickShard(config.shards, ports.random);
    const action = ledger.record(originShardName(shard), causeOf(local.reason, verdict.noRoom), ask.priority, now);
    followLedger(env, ctx, originShardName(shard), action);
    return { kind: "shed", reason: local.reason, retryAfterMs: local.retryAfterMs, waitedMs: 0, decidedAt: "edge" };
  }
  return null;
}

/**
 * Asks one shard, chosen at random, for an origin slot. A shard retired by a lower shard count
 * says how many there are now, and one of those is asked instead (once).
 */
export async function acquireOrigin(
  env: Env,
  ctx: ExecutionContext,
  config: OriginConfig,
  ask: OriginAsk,
  ports: StagePorts,
  client: AbortSignal | null = null,
): Promise<OriginGate> {
  const first = await acquireFrom(env, ctx, pickShard(config.shards, ports.random), ask, ports, client);
  if (first.kind !== "moved") return first;
  const second = await acquireFrom(env, ctx, pickShard(first.shards, ports.random), ask, ports, client);
  // Moved twice: the shard count changed again meanwhile. Refuse rather than guess.
  return second.kind === "moved" ? { kind: "unavailable", error: new Error("origin shards moved twice") } : second;
}

async function acquireFrom(
  env: Env,
  ctx: ExecutionContext,
  shard: number,
  ask: OriginAsk,
  ports: StagePorts,
  client: AbortSignal | null,
): Promise<OriginGate | { readonly kind: "moved"; readonly shards: number }> {
  const name = originShardName(shard);
  const localSheds = ledger.take(name)?.map(({ reason, priority, count }) => ({ cause: reason, priority, count }));
  let decision: AcquireDecision | "gone";
  const call = callObject<AcquireDecision>(
    async () =>
      await env.ORIGIN_GUARD.getByName(name, placement(env)).acquire({ ...ask, ...(localSheds ? { localSheds } : {}) }),
    ask.deadline - ports.clock.now(),
    ports.random,
  );
  const left = client ? untilAborted(client) : null;
  try {
    decision = left ? await Promise.race([call, left.gone]) : await call;
  } catch (error) {
    if (localSheds) {
      const back = localSheds.map(({ cause, priority, count }) => ({ reason: cause, priority, count }));
      followLedger(env, ctx, name, ledger.restore(name, back, ports.clock.now()));
    }
    return { kind: "unavailable", error };
  } finally {
    left?.stop();
  }
  if (decision === "gone") {
    // An abandoned call is not cancelled: a slot the shard grants it later goes straight back,
    // never to the origin and never lingering (the client left before anything was sent).
    ctx.waitUntil(
      call.then(
        (late) => {
          if (late.kind !== "admit") return;
          const ticket = { shard, leaseId: late.leaseId, limit: late.limit, waitedMs: late.waitedMs };
          releaseOrigin(env, ctx, ticket, NOT_SENT);
        },
        () => undefined,
      ),
    );
    return { kind: "gone" };
  }
  switch (decision.kind) {
    case "moved":
      return decision;
    case "disabled":
      return { kind: "pass", ticket: null };
    case "admit":
      if (decision.waitedMs === 0) forgetOriginSaturation(ask.tenant);
      return {
        kind: "pass",
        ticket: { shard, leaseId: decision.leaseId, limit: decision.limit, waitedMs: decision.waitedMs },
      };
    case "shed":
      if (decision.saturation) {
        const now = ports.clock.now();
        if (decision.holdScope) holdOriginVerdict(decision.holdScope, decision.saturation, now);
        else holdSaturationVerdict(ask.tenant, decision.saturation, now);
      }
      return {
        kind: "shed",
        reason: decision.reason,
        retryAfterMs: decision.retryAfterMs,
        waitedMs: decision.waitedMs,
        decidedAt: "object",
      };
  }
}

/** The release of a slot whose request was never sent. */
const NOT_SENT: OriginRelease = bareRelease("cancelled");

/** Resolves "gone" when the client's signal aborts; `stop` removes the listener. */
function untilAborted(signal: AbortSignal): { readonly gone: Promise<"gone">; readonly stop: () => void } {
  let onAbort = () => {};
  const gone = new Promise<"gone">((resolve) => {
    onAbort = () => resolve("gone");
    if (signal.aborted) resolve("gone");
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  return { gone, stop: () => signal.removeEventListener("abort", onAbort) };
}

/** Gives the slot back with what the origin's answer showed; off the response path. */
export function releaseOrigin(env: Env, ctx: ExecutionContext, ticket: OriginTicket, report: OriginRelease): void {
  ctx.waitUntil(
    env.ORIGIN_GUARD.getByName(originShardName(ticket.shard), placement(env))
      .release(ticket.leaseId, report)
      .catch((error: unknown) => console.error("origin release failed; the lease expires on its own", error)),
  );
}

/**
 * The origin asked for a hold: this isolate starts it at once, before its shard has heard, so
 * the requests right behind this one are not sent into the wall. Scoped as the shard scopes it
 * at first (origin-holds.ts): a 429 holds the party, a 503 the party on this route class, or
 * the whole origin when the origin said so with its `globalHoldHeader`. Wider holds come from
 * the shard, which hears every party.
 */
export function holdAtEdge(
  ask: OriginAsk,
  answer: { readonly kind: HoldKind; readonly retryAfterMs: number; readonly wholeOrigin: boolean },
  maxBackoffMs: number,
  now: number,
) {
  const holdMs = Math.min(answer.retryAfterMs, maxBackoffMs);
  if (holdMs <= 0) return;
  holdOriginVerdict(
    firstScope(answer.kind, { party: ask.holdParty, route: ask.route }, answer.wholeOrigin),
    {
      reason: answer.kind === "unavailable" ? "origin_backoff" : "origin_rate_limited",
      coversUpTo: "critical",
      noRoom: true,
      waitMs: holdMs,
      holdForMs: Math.min(1_000, holdMs),
      retryAfterMs: holdMs,
      serviceMs: null,
    },
    now,
  );
}

async function reportSheds(env: Env, ctx: ExecutionContext, name: string): Promise<void> {
  const batch = ledger.take(name);
  if (!batch) return;
  try {
    await env.ORIGIN_GUARD.getByName(name, placement(env)).recordLocalSheds(
      batch.map(({ reason, priority, count }) => ({ cause: reason, priority, count })),
    );
  } catch (error) {
    console.error(`reporting origin sheds to '${name}' failed; kept for the next report`, error);
    // A background report: no request's clock to read.
    followLedger(env, ctx, name, ledger.restore(name, batch, systemClock.now()));
  }
}

function followLedger(env: Env, ctx: ExecutionContext, name: string, action: LedgerAction): void {
  if (action === "flush-now") ctx.waitUntil(reportSheds(env, ctx, name));
  if (action === "schedule-flush") {
    ctx.waitUntil(
      scheduler.wait(FLUSH_AFTER_MS).then(() => {
        ledger.reportFired(name);
        return reportSheds(env, ctx, name);
      }),
    );
  }
  const overflow = ledger.overflowing();
  if (overflow) ctx.waitUntil(reportSheds(env, ctx, overflow));
}
