import { DurableObject } from "cloudflare:workers";
import type { Env } from "./env";
import { RecordTable } from "./storage/record-table";
import {
  type ClaimResult,
  type KeyOwner,
  type ReleaseResult,
  claim,
  keyOwnerSchema,
  release,
} from "./tenant/key-claim";

/**
 * One API key's owner, one object per key hash (`key:<hash>`): the strongly consistent record
 * behind the admin API's key registration (src/tenant/key-claim.ts holds the rules). The edge
 * still reads KV to resolve keys; this object only decides who may write and delete that entry.
 */
export class KeyRegistry extends DurableObject<Env> {
  private readonly table = new RecordTable(this.ctx.storage.sql, "key registry");
  private owner: KeyOwner | null = this.table.parsed("owner", keyOwnerSchema);

  async claim(raw: KeyOwner): Promise<ClaimResult> {
    const next = claim(this.owner, keyOwnerSchema.parse(raw));
    this.save(next.owner);
    return next.result;
  }

  async release(raw: KeyOwner): Promise<ReleaseResult> {
    const next = release(this.owner, keyOwnerSchema.parse(raw));
    this.save(next.owner);
    return next.result;
  }

  private save(owner: KeyOwner | null): void {
    if (owner === this.owner) return;
    this.owner = owner;
    if (owner) this.table.write("owner", owner);
    else this.table.deleteAll();
  }
}
