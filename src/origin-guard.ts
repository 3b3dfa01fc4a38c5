import { DurableObject } from "cloudflare:workers";
import { type Clock, systemClock } from "./clock";
import type { Env } from "./env";
import { type OriginConfig, originConfigSchema } from "./origin/origin-config";
import type { OriginShedCount } from "./origin/origin-counters";
import { OriginDesk, type OriginEffects } from "./origin/origin-desk";
import {
  type AcquireDecision,
  type AcquireRequest,
  type HoldRequest,
  acquireRequestSchema,
  holdRequestSchema,
  legacyHold,
  readOriginRelease,
} from "./origin/origin-rpc";
import type { OriginShardStats } from "./origin/origin-shard-stats";
import { originShardName } from "./origin/origin-shards";
import { OriginStore } from "./origin/origin-store";
import { ObjectShell } from "./storage/object-shell";

/** Runtime state is written at most this often (as in the tenant object; see FLUSH_INTERVAL_MS there). */
const ORIGIN_FLUSH_INTERVAL_MS = 250;

/**
 * One shard of the origin stage: its share of the origin's in-flight limit, across all tenants.
 * A thin shell around its desk (src/origin/origin-desk.ts), as TenantGuard is around its lease
 * desk: each RPC reads the clock once, parses its input, calls the desk, answers the queued
 * requests it names, persists as told, tells sibling shards of the origin's holds, arms timers.
 */
export class OriginGuard extends DurableObject<Env> {
  private readonly clock: Clock = systemClock;
  private readonly store: OriginStore;
  private readonly desk: OriginDesk;
  private readonly shell: ObjectShell<AcquireDecision>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new OriginStore(ctx.storage.sql);
    this.desk = new OriginDesk(this.store.loadPlacement(), this.store.loadRuntime(), this.clock.now());
    this.shell = new ObjectShell(ctx.storage, this.desk, this.clock, () => this.flush(), ORIGIN_FLUSH_INTERVAL_MS);
    this.shell.timers.ensureAlarm(this.desk.alarmsAt()[0] ?? null);
  }

  /** Installs the config as shard `index` of `config.shards`; a shard past the count retires. */
  async configure(raw: OriginConfig, index: number): Promise<void> {
    const config = originConfigSchema.parse(raw);
    this.apply(this.desk.configure(config, index, this.clock.now()));
  }

  /** Turns the stage off here: waiters are let through unguarded, state forgotten. */
  async disable(): Promise<void> {
    this.apply(this.desk.disable());
    await this.shell.timers.deleteAlarm();
  }

  async acquire(raw: AcquireRequest): Promise<AcquireDecision> {
    const request = acquireRequestSchema.parse(raw);
    const id = crypto.randomUUID();
    const { reply, effects } = this.desk.acquire(request, id, this.clock.now());
    this.apply(effects);
    return reply.kind === "answer" ? reply.decision : this.shell.answerLater(id);
  }

  /**
   * Idempotent (see OriginDesk.release). A report with bad feedback still frees the slot (see
   * readOriginRelease): a slot must never leak over a malformed field.
   */
  async release(leaseId: string, raw: unknown): Promise<void> {
    this.apply(this.desk.release(String(leaseId), readOriginRelease(raw), this.clock.now()));
  }

  /** A hold another shard learnt from the origin. */
  async hold(raw: HoldRequest, legacyUntilMs?: number): Promise<void> {
    // A shard of the previous version calls hold(tenant | null, untilMs) during a rolling deploy.
    const hold = holdRequestSchema.parse(legacyUntilMs === undefined ? raw : legacyHold(raw, legacyUntilMs));
    this.apply(this.desk.hold(hold, this.clock.now()));
  }

  /** Sheds isolates decided from this shard's verdicts and holds, reported in batches. */
  async recordLocalSheds(batch: OriginShedCount[]): Promise<void> {
    const parsed = acquireRequestSchema.shape.localSheds.parse(batch) ?? [];
    this.apply(this.desk.recordLocalSheds(parsed));
  }

  async stats(): Promise<{ readonly config: OriginConfig | null; readonly shard: OriginShardStats | null }> {
    const now = this.clock.now();
    this.apply(this.desk.wake(now));
    return this.desk.stats(now);
  }

  override async alarm(): Promise<void> {
    this.reapAt(this.shell.alarmFired());
  }

  /** Frees leases whose holder vanished and slots that lingered long enough, as of `now`. */
  reapAt(now: number): void {
    this.apply(this.desk.reap(now, Math.min(now, this.clock.now())));
  }

  flush(): void {
    this.shell.timers.flushing();
    const record = this.desk.record();
    if (record) this.store.saveRuntime(record);
  }

  private apply(effects: OriginEffects): void {
    if (effects.store?.wipe) {
      this.shell.timers.clear();
      this.store.deleteAll();
    }
    if (effects.store?.placement) this.store.savePlacement(effects.store.placement);
    this.shell.apply(effects);
    for (const { shard, hold } of effects.tell) this.tellShard(shard, hold);
  }

  private tellShard(index: number, hold: HoldRequest): void {
    const shard = this.env.ORIGIN_GUARD.getByName(originShardName(index));
    const told = shard
      .hold(hold)
      .catch((error: unknown) => console.error(`telling shard ${index} of a hold failed`, error));
    this.ctx.waitUntil(told);
  }
}
