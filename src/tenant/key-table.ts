import { type KeyAddition, type KeyPosition, MAX_KEYS_PER_TENANT } from "./key-ring";
import type { KeyRecord } from "./tenant-store";

interface KeyRow extends Record<string, SqlStorageValue> {
  id: string;
  hash: string;
  hint: string;
  name: string | null;
  created_at: number;
  expires_at: number | null;
}

const fromRow = (row: KeyRow): KeyRecord => ({
  id: row.id,
  hash: row.hash,
  hint: row.hint,
  name: row.name,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
});

/**
 * A tenant's API key records (hashes only), one SQLite row each in the tenant object: nothing
 * on the request path reads them, the admin API reads one page at a time, and a batch of a
 * thousand is one synchronous run of inserts (written together, as the object's writes between
 * two awaits are). At most MAX_KEYS_PER_TENANT rows; the hash is unique, so one tenant never
 * records one key twice.
 */
export class KeyTable {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS tenant_key (
      id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL, name TEXT,
      created_at INTEGER NOT NULL, expires_at INTEGER)`);
    sql.exec("CREATE INDEX IF NOT EXISTS tenant_key_order ON tenant_key (created_at, id)");
  }

  count(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM tenant_key").one().n;
  }

  /** Adds each record unless its hash is recorded already; past the bound, the rest are `full`. */
  insert(records: readonly KeyRecord[]): KeyAddition[] {
    let count = this.count();
    return records.map((record) => {
      const present = this.byHash(record.hash);
      if (present) return { kind: "present", id: present.id };
      if (count >= MAX_KEYS_PER_TENANT) return { kind: "full", max: MAX_KEYS_PER_TENANT };
      this.sql.exec(
        "INSERT INTO tenant_key (id, hash, hint, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        record.id,
        record.hash,
        record.hint,
        record.name ?? null,
        record.createdAt,
        record.expiresAt ?? null,
      );
      count += 1;
      return { kind: "added", id: record.id };
    });
  }

  remove(id: string): KeyRecord | null {
    const row = this.sql.exec<KeyRow>("DELETE FROM tenant_key WHERE id = ? RETURNING *", id).toArray()[0];
    return row ? fromRow(row) : null;
  }

  /** Up to `limit` keys after `after` in (createdAt, id) order (see KeyPosition in key-ring.ts). */
  page(after: KeyPosition | null, limit: number): KeyRecord[] {
    const rows = after
      ? this.sql.exec<KeyRow>(
          "SELECT * FROM tenant_key WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?",
          after.createdAt,
          after.id,
          limit,
        )
      : this.sql.exec<KeyRow>("SELECT * FROM tenant_key ORDER BY created_at, id LIMIT ?", limit);
    return rows.toArray().map(fromRow);
  }

  /** Every record, for deleting the tenant: at most MAX_KEYS_PER_TENANT. */
  all(): KeyRecord[] {
    return this.page(null, MAX_KEYS_PER_TENANT);
  }

  deleteAll(): void {
    this.sql.exec("DELETE FROM tenant_key");
  }

  private byHash(hash: string): KeyRecord | null {
    const row = this.sql.exec<KeyRow>("SELECT * FROM tenant_key WHERE hash = ?", hash).toArray()[0];
    return row ? fromRow(row) : null;
  }
}
