import type { Kysely } from "kysely";
import type { Backend } from "../backend.js";

/** The `sql` role: what domains may know of the SQL store (the driver behind it is sql-backend.ts's business). */

export type SqlDialect = "sqlite" | "mysql";

/** The SQL store: a Kysely instance over SQLite or MySQL/MariaDB, migrated to the latest schema. */
export interface SqlBackend extends Backend {
  readonly dialect: SqlDialect;
  /** Untyped on purpose: each domain narrows it to its own tables with `db.withTables<...>()`. */
  readonly db: Kysely<unknown>;
  /** What the database's own catalog says each table holds (see TableSize). */
  tableSizes(tables: readonly string[]): Promise<TableSize[]>;
  /**
   * Takes (or renews) the lease `name` for `holder` for `ttlMs`, if nobody else holds an unexpired one.
   * Shared by every instance on the same database, so a scheduled job runs on one of them at a time.
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Ends the lease `name` if `holder` still holds it (a job done early frees it for the next run at once). */
  releaseLease(name: string, holder: string): Promise<void>;
}

/** What the database itself says a table holds. */
export interface TableSize {
  readonly table: string;
  readonly rows: number;
  readonly dataBytes: number;
  readonly indexBytes: number;
}
