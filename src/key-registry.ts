import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import type { Env } from "./env";
import { RecordTable } from "./storage/record-table";
import {
  type ClaimResult,
  type KeyOwner,
  type OwnerRecord,
  type ReleaseResult,
  claim,
  keyOwnerSchema,
  ownerRecordSchema,
  publish,
  release,
} from "./tenant/key-claim";
import { TenantDirectory } from "./tenant/tenant-directory";

const keyRefSchema = keyOwnerSchema.extend({ hash: z.string().regex(/^[0-9a-f]{64}$/) });
const publishSchema = keyRefSchema.extend({ expiresAt: z.number().int().nullable() });
export type KeyRef = z.infer<typeof keyRefSchema>;
export type KeyPublication = z.infer<typeof publishSchema>;

/**
 * One API key's owner, one object per key hash (`key:<hash>`): the strongly consistent record
 * behind key registration (src/tenant/key-claim.ts holds the rules), and the single writer of
 * the key's KV entry, which the edge reads. Its KV reads and writes are made here, in this
 * object's invocation, so a bulk import costs the Worker object calls, not KV operations (KV
 * allows 1,000 per invocation). Each call runs alone (blockConcurrencyWhile): a publish and a
 * release of one key must not interleave their KV writes, and one key's object is never busy.
 */
export class KeyRegistry extends DurableObject<Env> {
  private readonly table = new RecordTable(this.ctx.storage.sql, "key registry");
  private owner: OwnerRecord | null = this.table.parsed("owner", ownerRecordSchema);
  private readonly directory = new TenantDirectory(this.env.TENANTS);

  async claim(raw: KeyRef): Promise<ClaimResult> {
    const ref = keyRefSchema.parse(raw);
    return this.ctx.blockConcurrencyWhile(async () => {
      // A key registered before the registry existed is known to KV only: its entry is its owner.
      const legacy = this.owner ? null : await this.directory.getKey(ref.hash);
      const next = claim(this.owner ?? (legacy && { ...legacy, published: true }), owner(ref));
      this.save(next.owner);
      return next.result;
    });
  }

  /** Writes the KV entry the edge resolves the key with, once its tenant recorded the key. */
  async publish(raw: KeyPublication): Promise<"published" | "not_owner"> {
    const entry = publishSchema.parse(raw);
    return this.ctx.blockConcurrencyWhile(async () => {
      const next = publish(this.owner, owner(entry));
      if (next.step.kind === "not_owner") return "not_owner";
      if (next.step.kind === "publish") {
        await this.directory.putKey(entry.hash, {
          tenant: entry.tenant,
          id: entry.id,
          ...(entry.expiresAt === null ? {} : { expiresAt: entry.expiresAt }),
        });
        this.save(next.owner);
      }
      return "published";
    });
  }

  /** Frees the key if `raw` owns it, and removes its KV entry; another tenant's entry is never touched. */
  async release(raw: KeyRef): Promise<ReleaseResult> {
    const ref = keyRefSchema.parse(raw);
    return this.ctx.blockConcurrencyWhile(async () => {
      const next = release(this.owner, owner(ref));
      if (next.result.kind === "released") await this.directory.deleteKey(ref.hash);
      if (next.result.kind === "unclaimed") {
        const entry = await this.directory.getKey(ref.hash);
        if (entry?.tenant === ref.tenant && entry.id === ref.id) await this.directory.deleteKey(ref.hash);
      }
      this.save(next.owner);
      return next.result;
    });
  }

  private save(owner: OwnerRecord | null): void {
    if (owner === this.owner) return;
    this.owner = owner;
    if (owner) this.table.write("owner", owner);
    else this.table.deleteAll();
  }
}

function owner(ref: KeyOwner): KeyOwner {
  return { tenant: ref.tenant, id: ref.id };
}
