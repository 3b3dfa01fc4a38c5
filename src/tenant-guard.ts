import { DurableObject } from "cloudflare:workers";
import type { Counters } from "./admission/counters";
import { type Clock, systemClock } from "./clock";
import {
  type ConnectionBook,
  closeConnection,
  emptyConnectionBook,
  openConnection,
  openTotal,
  reclaimConnections,
  renewConnections,
} from "./connections/connection-book";
import {
  type ConnectionAnswer,
  type ConnectionClose,
  type ConnectionOpen,
  type ConnectionRenew,
  type ConnectionStats,
  connectionCloseSchema,
  connectionOpenSchema,
  connectionRenewSchema,
} from "./connections/connection-rpc";
import type { Env } from "./env";
import { LeaseDesk } from "./lease/lease-desk";
import { type LeaseAnswer, type LeaseReport, leaseReportSchema } from "./lease/lease-protocol";
import { type LeaseState, leaseState } from "./lease/lease-stats";
import { ObjectShell } from "./storage/object-shell";
import { z } from "zod";
import { type KeyBatchChange, type KeyChange, type KeyPosition, MAX_KEYS_PER_TENANT } from "./tenant/key-ring";
import { KeyTable } from "./tenant/key-table";
import { type TenantConfig, limitsOf, maxConnectionsOf, tenantConfigSchema } from "./tenant/tenant-config";
import { type KeyRecord, TenantStore, keyRecordSchema } from "./tenant/tenant-store";

/** A bulk import's batch (src/admin/key-import.ts sends at most this many). */
export const MAX_KEY_BATCH = 1_000;
const keyBatchSchema = z.array(keyRecordSchema).max(MAX_KEY_BATCH);
const keyPageSchema = z.strictObject({
  after: z.strictObject({ createdAt: z.number().int(), id: z.string() }).nullable(),
  // One more than a page, so the caller learns whether another page follows.
  limit: z
    .number()
    .int()
    .min(1)
    .max(MAX_KEY_BATCH + 1),
});

/** Counters and returns are written at most this often; grants are written before they are answered. */
export const FLUSH_INTERVAL_MS = 250;

export interface TenantStats {
  readonly limits: TenantConfig | null;
  readonly state: LeaseState;
  readonly counters: Counters;
  readonly keys: number;
  readonly connections: ConnectionStats;
}

export type { KeyBatchChange, KeyChange } from "./tenant/key-ring";

/**
 * One tenant's totals: the single writer of its bucket and in-flight limit, which it leases to
 * the isolates that have demand. A thin shell around the lease desk (src/lease/lease-desk.ts):
 * each call reads the clock once, parses its input, calls the desk, and hands what it returns to
 * the shell both guard objects share (src/storage/object-shell.ts): answers the renewals the desk
 * let go, persists as told and arms the timers.
 */
export class TenantGuard extends DurableObject<Env> {
  private readonly store: TenantStore;
  private config: TenantConfig | null;
  private readonly keys: KeyTable;
  private readonly desk: LeaseDesk;
  /** Open WebSockets per isolate (src/connections/connection-book.ts), written on each change. */
  private connections: ConnectionBook;
  private readonly clock: Clock = systemClock;
  /** Holds the promises of the renewals the desk holds: at most one per holder. */
  private readonly shell: ObjectShell<LeaseAnswer>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new TenantStore(ctx.storage.sql);
    this.config = this.store.loadConfig();
    this.keys = new KeyTable(ctx.storage.sql);
    this.keys.insert(this.store.takeLegacyKeys());
    this.connections = this.store.loadConnections() ?? emptyConnectionBook();
    const runtime = this.store.loadRuntime();
    this.desk = new LeaseDesk(
      this.config ? limitsOf(this.config) : null,
      runtime && { ...runtime, book: { bucket: runtime.bucket, holders: runtime.holders, departed: runtime.departed } },
    );
    this.shell = new ObjectShell(ctx.storage, this.desk, this.clock, () => this.flush(), FLUSH_INTERVAL_MS);
    this.shell.timers.ensureAlarm(this.desk.reclaimAt());
  }

  async lease(raw: LeaseReport): Promise<LeaseAnswer> {
    const report = leaseReportSchema.parse(raw);
    const { reply, effects } = this.desk.lease(report, this.clock.now());
    this.shell.apply(effects);
    return reply.kind === "answer" ? reply.answer : this.shell.answerLater(report.holder);
  }

  async configure(raw: TenantConfig): Promise<TenantConfig> {
    const config = tenantConfigSchema.parse(raw);
    this.store.saveConfig(config);
    this.config = config;
    this.shell.apply(this.desk.configure(limitsOf(config), this.clock.now()));
    return config;
  }

  async stats(): Promise<TenantStats> {
    const book = this.desk.bookNow(this.clock.now());
    const state = leaseState(book, this.desk.limits());
    const connections = reclaimConnections(this.connections, this.clock.now());
    return {
      limits: this.config,
      state,
      counters: this.desk.countersNow(),
      keys: this.keys.count(),
      connections: {
        open: openTotal(connections),
        limit: this.config ? maxConnectionsOf(this.config) : null,
        holders: connections.holders.length,
      },
    };
  }

  /** A WebSocket wants to open: counted if the tenant is below its limit (its own, else the caller's). */
  async openConnection(raw: ConnectionOpen): Promise<ConnectionAnswer> {
    const call = connectionOpenSchema.parse(raw);
    const limit = this.config ? maxConnectionsOf(this.config) : call.limit;
    const result = openConnection(this.connections, call.holder, limit, this.clock.now());
    this.keepConnections(result.book);
    return { kind: result.kind, open: result.open, limit };
  }

  async closeConnection(raw: ConnectionClose): Promise<void> {
    const call = connectionCloseSchema.parse(raw);
    this.keepConnections(closeConnection(this.connections, call.holder, this.clock.now()));
  }

  async renewConnections(raw: ConnectionRenew): Promise<void> {
    const call = connectionRenewSchema.parse(raw);
    this.keepConnections(renewConnections(this.connections, call.holder, call.open, this.clock.now()));
  }

  private keepConnections(book: ConnectionBook): void {
    if (book === this.connections) return;
    this.connections = book;
    this.store.saveConnections(book);
  }

  async addKey(raw: KeyRecord): Promise<KeyChange> {
    const key = keyRecordSchema.parse(raw);
    if (!this.config) return { kind: "unconfigured" };
    const [addition] = this.keys.insert([key]);
    if (addition?.kind === "full") return { kind: "too_many_keys", max: MAX_KEYS_PER_TENANT };
    return { kind: "ok", key };
  }

  /** Records a batch of keys; each answer says whether it was stored, already there, or over the bound. */
  async addKeys(raw: readonly KeyRecord[]): Promise<KeyBatchChange> {
    const keys = keyBatchSchema.parse(raw);
    if (!this.config) return { kind: "unconfigured" };
    return { kind: "ok", additions: this.keys.insert(keys) };
  }

  async removeKey(id: string): Promise<KeyChange> {
    const key = this.keys.remove(z.string().parse(id));
    return key ? { kind: "ok", key } : { kind: "not_found" };
  }

  /** One page of keys, in creation order (see KeyPosition in src/tenant/key-ring.ts). */
  async listKeys(raw: { after: KeyPosition | null; limit: number }): Promise<readonly KeyRecord[]> {
    const page = keyPageSchema.parse(raw);
    return this.keys.page(page.after, page.limit);
  }

  /** Forgets the tenant. Held renewals are answered `unconfigured`; returns the key records. */
  async destroy(): Promise<readonly KeyRecord[]> {
    const keys = this.keys.all();
    this.shell.apply(this.desk.reset());
    this.shell.timers.clear();
    this.config = null;
    this.keys.deleteAll();
    this.connections = emptyConnectionBook();
    this.store.deleteAll();
    await this.shell.timers.deleteAlarm();
    return keys;
  }

  override async alarm(): Promise<void> {
    this.reapAt(this.shell.alarmFired());
  }

  /**
   * Takes back the leases of holders that vanished and cleans an idle anonymous bucket, as of
   * `now`: the alarm's body, with the clock passed in so tests can run it "later".
   */
  reapAt(now: number): void {
    const { effects, forget } = this.desk.reap(now, Math.min(now, this.clock.now()));
    // An idle bucket with sockets still open keeps their count: forgetting it would free them all.
    if (forget && reclaimConnections(this.connections, now).holders.length === 0) {
      this.shell.apply(this.desk.reset());
      this.shell.timers.clear();
      this.store.deleteAll();
      return;
    }
    this.shell.apply(effects);
  }

  /** Writes the runtime record now; normally called by the flush timer. */
  flush(): void {
    this.shell.timers.flushing();
    const { book, ...rest } = this.desk.record();
    if (book) this.store.saveRuntime({ ...rest, bucket: book.bucket, holders: book.holders, departed: book.departed });
  }
}
