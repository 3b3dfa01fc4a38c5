import { DurableObject } from "cloudflare:workers";
import type { Counters } from "./admission/counters";
import type { Env } from "./env";
import { type DeskEffects, LeaseDesk } from "./lease/lease-desk";
import { type LeaseAnswer, type LeaseReport, leaseReportSchema } from "./lease/lease-protocol";
import { type LeaseState, leaseState } from "./lease/lease-stats";
import { ObjectTimers } from "./storage/object-timers";
import { type KeyChange, addKey, removeKey } from "./tenant/key-ring";
import { type TenantConfig, limitsOf, tenantConfigSchema } from "./tenant/tenant-config";
import { type KeyRecord, TenantStore } from "./tenant/tenant-store";

/** Counters and returns are written at most this often; grants are written before they are answered. */
export const FLUSH_INTERVAL_MS = 250;

export interface TenantStats {
  readonly limits: TenantConfig | null;
  readonly state: LeaseState;
  readonly counters: Counters;
  readonly keys: number;
}

export type { KeyChange } from "./tenant/key-ring";

/**
 * One tenant's totals: the single writer of its bucket and in-flight limit, which it leases to
 * the isolates that have demand. A thin shell around the lease desk (src/lease/lease-desk.ts):
 * each call reads the clock once, parses its input, calls the desk, answers the renewals the
 * desk let go, persists as told and arms the timers.
 */
export class TenantGuard extends DurableObject<Env> {
  private readonly store: TenantStore;
  private config: TenantConfig | null;
  private keys: readonly KeyRecord[];
  private readonly desk: LeaseDesk;
  /** The promises of the renewals the desk holds: at most one per holder. */
  private readonly held = new Map<string, (answer: LeaseAnswer) => void>();
  private readonly timers = new ObjectTimers(this.ctx.storage, () => this.flush(), FLUSH_INTERVAL_MS);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new TenantStore(ctx.storage.sql);
    this.config = this.store.loadConfig();
    this.keys = this.store.loadKeys();
    const runtime = this.store.loadRuntime();
    this.desk = new LeaseDesk(
      this.config ? limitsOf(this.config) : null,
      runtime && { ...runtime, book: { bucket: runtime.bucket, holders: runtime.holders, departed: runtime.departed } },
    );
    this.timers.ensureAlarm(this.desk.reclaimAt());
  }

  async lease(raw: LeaseReport): Promise<LeaseAnswer> {
    const report = leaseReportSchema.parse(raw);
    const { reply, effects } = this.desk.lease(report, Date.now());
    this.apply(effects);
    if (reply.kind === "answer") return reply.answer;
    return new Promise<LeaseAnswer>((resolve) => this.held.set(report.holder, resolve));
  }

  async configure(raw: TenantConfig): Promise<TenantConfig> {
    const config = tenantConfigSchema.parse(raw);
    this.store.saveConfig(config);
    this.config = config;
    this.apply(this.desk.configure(limitsOf(config), Date.now()));
    return config;
  }

  async stats(): Promise<TenantStats> {
    const book = this.desk.bookNow(Date.now());
    const state = leaseState(book, this.desk.limits());
    return { limits: this.config, state, counters: this.desk.countersNow(), keys: this.keys.length };
  }

  async addKey(key: KeyRecord): Promise<KeyChange> {
    if (!this.config) return { kind: "unconfigured" };
    return this.changeKeys(addKey(this.keys, key));
  }

  async removeKey(id: string): Promise<KeyChange> {
    return this.changeKeys(removeKey(this.keys, id));
  }

  private changeKeys(result: { keys: readonly KeyRecord[]; change: KeyChange }): KeyChange {
    if (result.change.kind === "ok") {
      this.keys = result.keys;
      this.store.saveKeys(this.keys);
    }
    return result.change;
  }

  async listKeys(): Promise<readonly KeyRecord[]> {
    return this.keys;
  }

  /** Forgets the tenant. Held renewals are answered `unconfigured`; returns the key records. */
  async destroy(): Promise<readonly KeyRecord[]> {
    const keys = this.keys;
    this.apply(this.desk.reset());
    this.timers.clear();
    this.config = null;
    this.keys = [];
    this.store.deleteAll();
    await this.timers.deleteAlarm();
    return keys;
  }

  override async alarm(): Promise<void> {
    this.timers.alarmFired();
    this.reapAt(Date.now());
  }

  /**
   * Takes back the leases of holders that vanished and cleans an idle anonymous bucket, as of
   * `now`: the alarm's body, with the clock passed in so tests can run it "later".
   */
  reapAt(now: number): void {
    const { effects, forget } = this.desk.reap(now, Math.min(now, Date.now()));
    if (forget) {
      this.apply(this.desk.reset());
      this.timers.clear();
      this.store.deleteAll();
      return;
    }
    this.apply(effects);
  }

  /** Writes the runtime record now; normally called by the flush timer. */
  flush(): void {
    this.timers.flushing();
    const { book, ...rest } = this.desk.record();
    if (book) this.store.saveRuntime({ ...rest, bucket: book.bucket, holders: book.holders, departed: book.departed });
  }

  private apply(effects: DeskEffects): void {
    for (const { holder, answer } of effects.answers) {
      this.held.get(holder)?.(answer);
      this.held.delete(holder);
    }
    if (effects.persist === "now") this.flush();
    else if (effects.persist === "soon") this.timers.markDirty();
    this.timers.ensureAlarm(this.desk.reclaimAt());
    this.timers.ensureAlarm(this.desk.idleCleanupAt());
    this.timers.wakeAt(this.desk.heldUntil(), () => this.apply(this.desk.wake(Date.now())));
  }
}
