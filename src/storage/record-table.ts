import type { z } from "zod";

/**
 * Named JSON records in one SQLite table, each written whole. Every record is parsed with its
 * schema on load: one written by an older version, or damaged, is dropped with a log line
 * instead of poisoning the object.
 */
export class RecordTable {
  constructor(
    private readonly sql: SqlStorage,
    private readonly label: string,
  ) {
    sql.exec("CREATE TABLE IF NOT EXISTS record (name TEXT PRIMARY KEY, value TEXT NOT NULL)");
  }

  private read(name: string): unknown {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM record WHERE name = ?", name).toArray()[0];
    if (!row) return undefined;
    try {
      return JSON.parse(row.value);
    } catch {
      return undefined;
    }
  }

  write(name: string, value: unknown): void {
    this.sql.exec(
      "INSERT INTO record (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
      name,
      JSON.stringify(value),
    );
  }

  parsed<T>(name: string, schema: z.ZodType<T>): T | null {
    const raw = this.read(name);
    if (raw === undefined) return null;
    const result = schema.safeParse(raw);
    if (result.success) return result.data;
    console.error(`${this.label} record '${name}' failed validation and was ignored`, result.error.issues);
    return null;
  }

  remove(name: string): void {
    this.sql.exec("DELETE FROM record WHERE name = ?", name);
  }

  deleteAll(): void {
    this.sql.exec("DELETE FROM record");
  }
}
