/**
 * The edge's side of the origin stage: shed from what the stage (or the origin) said before,
 * ask a shard for an origin slot, give it back with what the origin's answer showed.
 */
import type { Priority } from "../admission/priority";
import { type LocalRequest, decideLocally } from "../admission/saturation";
import { FLUSH_AFTER_MS, type LedgerAction, ShedLedger } from "../edge/local-shed-ledger";
import { forgetOriginSaturation, holdOriginVerdict, originVerdictsFor } from "../edge/origin-verdicts";
import type { Env } from "../env";
import { originShardName } from "../origin-guard";
import type { OriginConfig } from "../origin/origin-config";
import type { AcquireDecision, OriginRelease } from "../origin/origin-rpc";
import type { OriginShedCause, OriginShedReason } from "../origin/origin-shed";
import { callObject } from "./object-calls";

/** An origin slot held by a request: which shard, which lease, the limit it was admitted under. */
export interface OriginTicket {
  readonly shard: number;
  readonly leaseId: string;
  readonly limit: number;
  readonly waitedMs: number;
}

export type OriginGate =
  | { readonly kind: "pass"; readonly ticket: OriginTicket | null }
  | {
      readonly kind: "shed";
      readonly reason: OriginShedReason;
      readonly retryAfterMs: number;
      readonly waitedMs: number;
      readonly decidedAt: "object" | "edge";
    }
  | { readonly kind: "unavailable"; readonly error: unknown };

export interface OriginAsk {
  readonly tenant: string;
  readonly weight: number;
  readonly priority: Priority;
  readonly deadline: number;
}

const ledger = new ShedLedger<OriginShedCause>();

function causeOf(reason: OriginShedReason, noRoom: boolean): OriginShedCause {
  if (reason === "origin_backoff") return "backoff";
  if (reason === "origin_rate_limited") return "tenant_backoff";
  return noRoom ? "queue_full" : "wait_exceeds_deadline";
}

function pickShard(config: OriginConfig, random: () => number): number {
  return Math.min(config.shards - 1, Math.floor(random() * config.shards));
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
  random: () => number,
): Extract<OriginGate, { kind: "shed" }> | null {
  for (const verdict of originVerdictsFor(ask.tenant, now)) {
    const request: LocalRequest = {
      priority: ask.priority,
      fullBehaviour: "evict-lowest",
      waitBudgetMs: Math.min(config.maxWaitMs, ask.deadline - now - (verdict.serviceMs ?? 0)),
    };
    const local = decideLocally(verdict, request, now);
    if (local.kind === "ask") continue;
    const shard = pickShard(config, random);
    const action = ledger.record(originShardName(shard), causeOf(local.reason, verdict.noRoom), ask.priority, now);
    followLedger(env, ctx, originShardName(shard), action);
    return { kind: "shed", reason: local.reason, retryAfterMs: local.retryAfterMs, waitedMs: 0, decidedAt: "edge" };
  }
  return null;
}

/** Asks one shard, chosen at random, for an origin slot. */
export async function acquireOrigin(
  env: Env,
  ctx: ExecutionContext,
  config: OriginConfig,
  ask: OriginAsk,
  random: () => number,
): Promise<OriginGate> {
  const shard = pickShard(config, random);
  const name = originShardName(shard);
  const localSheds = ledger.take(name)?.map(({ reason, priority, count }) => ({ cause: reason, priority, count }));
  let decision: AcquireDecision;
  try {
    decision = await callObject<AcquireDecision>(
      async () => await env.ORIGIN_GUARD.getByName(name).acquire({ ...ask, ...(localSheds ? { localSheds } : {}) }),
      ask.deadline - Date.now(),
      random,
    );
  } catch (error) {
    if (localSheds) {
      const back = localSheds.map(({ cause, priority, count }) => ({ reason: cause, priority, count }));
      followLedger(env, ctx, name, ledger.restore(name, back, Date.now()));
    }
    return { kind: "unavailable", error };
  }
  switch (decision.kind) {
    case "disabled":
      return { kind: "pass", ticket: null };
    case "admit":
      if (decision.waitedMs === 0) forgetOriginSaturation(ask.tenant);
      return {
        kind: "pass",
        ticket: { shard, leaseId: decision.leaseId, limit: decision.limit, waitedMs: decision.waitedMs },
      };
    case "shed":
      if (decision.saturation) holdOriginVerdict(ask.tenant, decision.saturation, Date.now());
      return {
        kind: "shed",
        reason: decision.reason,
        retryAfterMs: decision.retryAfterMs,
        waitedMs: decision.waitedMs,
        decidedAt: "object",
      };
  }
}

/** Gives the slot back with what the origin's answer showed; off the response path. */
export function releaseOrigin(env: Env, ctx: ExecutionContext, ticket: OriginTicket, report: OriginRelease): void {
  ctx.waitUntil(
    env.ORIGIN_GUARD.getByName(originShardName(ticket.shard))
      .release(ticket.leaseId, report)
      .catch((error: unknown) => console.error("origin release failed; the lease expires on its own", error)),
  );
}

/**
 * The origin asked for a hold: this isolate starts it at once, before its shard has heard, so
 * the requests right behind this one are not sent into the wall.
 */
export function holdAtEdge(tenant: string, status: number, retryAfterMs: number, maxBackoffMs: number, now: number) {
  const holdMs = Math.min(retryAfterMs, maxBackoffMs);
  if (holdMs <= 0) return;
  holdOriginVerdict(
    tenant,
    {
      reason: status === 503 ? "origin_backoff" : "origin_rate_limited",
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
    await env.ORIGIN_GUARD.getByName(name).recordLocalSheds(
      batch.map(({ reason, priority, count }) => ({ cause: reason, priority, count })),
    );
  } catch (error) {
    console.error(`reporting origin sheds to '${name}' failed; kept for the next report`, error);
    followLedger(env, ctx, name, ledger.restore(name, batch, Date.now()));
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
