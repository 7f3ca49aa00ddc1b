import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { Kysely, Migrator, MysqlDialect, sql, SqliteDialect } from "kysely";
import { createConnection, createPool } from "mysql2";
import type { Backend } from "../backend.js";
import { migrationProvider } from "./migrations/index.js";
import { parseSqlUrl, type SqlTarget } from "./sql-url.js";

export type SqlDialect = SqlTarget["dialect"];

/** The SQL store: a Kysely instance over SQLite or MySQL/MariaDB, migrated to the latest schema. */
export interface SqlBackend extends Backend {
  readonly dialect: SqlDialect;
  /** Untyped on purpose: each domain narrows it to its own tables with `db.withTables<...>()`. */
  readonly db: Kysely<unknown>;
}

export interface SqlBackendOptions {
  /** How long a health ping may take before the store counts as down, in ms (default 2000). */
  readonly pingTimeoutMs?: number;
}

/** Opens the store named by a `sqlite:` or `mysql://` URL (creating the database if missing) and migrates it. */
export async function openSqlBackend(url: string, options: SqlBackendOptions = {}): Promise<SqlBackend> {
  const target = parseSqlUrl(url);
  const db = target.dialect === "sqlite" ? openSqlite(target.file) : await openMysql(target);
  try {
    await migrate(db, target.dialect);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const pingTimeoutMs = options.pingTimeoutMs ?? 2000;
  return {
    name: "sql",
    kind: target.dialect,
    dialect: target.dialect,
    db,
    ping: () => withTimeout(sql`select 1`.execute(db).then(() => undefined), pingTimeoutMs, "sql ping"),
    close: () => db.destroy(),
  };
}

function openSqlite(file: string): Kysely<unknown> {
  const memory = file === ":memory:";
  if (!memory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const database = new Database(memory ? ":memory:" : file);
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  database.pragma("busy_timeout = 5000");
  database.pragma("foreign_keys = ON");
  return new Kysely<unknown>({ dialect: new SqliteDialect({ database }) });
}

async function openMysql(target: Extract<SqlTarget, { dialect: "mysql" }>): Promise<Kysely<unknown>> {
  const connection = {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    charset: "utf8mb4",
    connectTimeout: 5000,
  };
  await ensureDatabase(connection, target.database);
  const pool = createPool({
    ...connection,
    database: target.database,
    connectionLimit: target.connectionLimit,
    // Exact numbers: DECIMAL sums as numbers, BIGINTs past 2^53 as strings rather than rounded.
    decimalNumbers: true,
    supportBigNumbers: true,
    timezone: "Z",
    enableKeepAlive: true,
  });
  return new Kysely<unknown>({ dialect: new MysqlDialect({ pool }) });
}

function ensureDatabase(options: object, database: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(options);
    conn.query(
      `create database if not exists \`${database}\` character set utf8mb4 collate utf8mb4_bin`,
      (err) => {
        conn.end();
        if (err) reject(err);
        else resolve();
      },
    );
  });
}

async function migrate(db: Kysely<unknown>, dialect: SqlDialect): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    migrationTableName: "schema_migrations",
    migrationLockTableName: "schema_migrations_lock",
  });
  // MySQL serializes concurrent starts with GET_LOCK inside Kysely. SQLite has no cross-process lock
  // there, so an instance that loses the race for the file's write lock tries again.
  for (let attempt = 1; ; attempt++) {
    const { error } = await migrator.migrateToLatest();
    if (!error) return;
    const busy = dialect === "sqlite" && /SQLITE_BUSY|database is locked/i.test(String((error as Error).message ?? error));
    if (!busy || attempt >= 20) throw error;
    await new Promise((r) => setTimeout(r, 50 * attempt));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
